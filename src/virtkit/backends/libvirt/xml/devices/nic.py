"""``<interface>``: an adapter on a libvirt network, a host bridge or QEMU's user-mode NAT.

See https://libvirt.org/formatdomain.html#network-interfaces.
"""

from __future__ import annotations

from virtkit.backends.libvirt.xml.base import INT, XMLProperty, enum_codec
from virtkit.backends.libvirt.xml.devices.device import Device
from virtkit.models.nic import NicKind, NicModel, NicSpec

__all__ = ["Interface"]


class Interface(Device):
    """One ``<interface>``. Its fields are named after :class:`NicSpec`'s."""

    TAG = "interface"
    kind = XMLProperty("./@type", enum_codec(NicKind))
    mac = XMLProperty("./mac/@address")
    source_network = XMLProperty("./source/@network")
    source_bridge = XMLProperty("./source/@bridge")
    # Lossy: an adapter without a model is QEMU's default for the machine (rtl8139 or e1000e), read as virtio here;
    # virtkit always writes the model.
    model = XMLProperty("./model/@type", enum_codec(NicModel), default=NicModel.VIRTIO)
    mtu = XMLProperty("./mtu/@size", INT)
    boot_order = XMLProperty("./boot/@order", INT)

    #: The :class:`NicSpec` fields an ``<interface>`` holds, in the order they are written.
    SPEC_FIELDS = ("kind", "mac", "source", "model", "mtu")

    @classmethod
    def new(cls, spec: NicSpec) -> Interface:
        """An ``<interface>`` for ``spec``; libvirt chooses the MAC address if ``spec`` has none."""
        nic = cls()
        nic.update(spec)
        return nic

    @property
    def modelled(self) -> bool:
        """Whether a :class:`NicSpec` describes it (a network, bridge or user adapter)."""
        return Interface.kind.raw(self) in {k.value for k in NicKind}

    @property
    def source(self) -> str | None:
        """The network or bridge name, by kind; ``None`` for user-mode networking."""
        if self.kind is NicKind.NETWORK:
            return self.source_network
        if self.kind is NicKind.BRIDGE:
            return self.source_bridge
        return None

    @source.setter
    def source(self, value: str | None) -> None:
        # The new attribute first, so that <source> is never left empty (and removed) in between.
        if self.kind is NicKind.NETWORK:
            self.source_network = value
            self.source_bridge = None
        elif self.kind is NicKind.BRIDGE:
            self.source_bridge = value
            self.source_network = None
        else:
            self.source_network = self.source_bridge = None

    def spec(self) -> NicSpec:
        """The adapter as a spec.

        :raises Unsupported: a kind or model virtkit does not model.
        """
        return NicSpec(**self.read(self.SPEC_FIELDS))

    def update(self, spec: NicSpec) -> None:
        """Write what ``spec`` says; a spec without a MAC address keeps the one the adapter has."""
        self.write(spec, [f for f in self.SPEC_FIELDS if f != "mac" or spec.mac is not None])
