"""Network adapters: synthetic (virtio) or legacy (e1000), on a libvirt network, a bridge, or user-mode NAT."""

from __future__ import annotations

import dataclasses
import re
from enum import StrEnum

from virtkit.errors import InvalidSpec
from virtkit.models._fields import Spec, normalize, spec_field
from virtkit.validate import shown

__all__ = ["NicKind", "NicModel", "NicSpec"]

_MAC = r"[0-9a-f]{2}(:[0-9a-f]{2}){5}"
_IFNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}")


class NicKind(StrEnum):
    """What the adapter plugs into: a libvirt network (a virtual switch), a host bridge, or QEMU's user NAT."""

    NETWORK = "network"
    BRIDGE = "bridge"
    USER = "user"


class NicModel(StrEnum):
    """Adapter models. Hyper-V's synthetic adapter maps to ``virtio``, its legacy adapter to ``e1000``."""

    VIRTIO = "virtio"
    E1000 = "e1000"
    E1000E = "e1000e"
    RTL8139 = "rtl8139"


@dataclasses.dataclass(frozen=True)
class NicSpec(Spec):
    """One network adapter."""

    kind: NicKind = spec_field("network, bridge or user", default=NicKind.NETWORK)
    source: str | None = spec_field("network or bridge name (not for user)", default=None)
    model: NicModel = spec_field("adapter model", default=NicModel.VIRTIO)
    mac: str | None = spec_field(
        "MAC address, lower-case aa:bb:cc:dd:ee:ff; libvirt picks one if omitted",
        default=None,
        pattern=_MAC,
        expected="a lower-case MAC address like 52:54:00:12:34:56",
    )
    mtu: int | None = spec_field("MTU in bytes (jumbo frames: 9000)", default=None, minimum=68, maximum=65535)

    def __post_init__(self) -> None:
        normalize(self)
        if self.kind is NicKind.USER:
            if self.source is not None:
                raise InvalidSpec("source", "user-mode networking has no source")
        elif self.source is None:
            raise InvalidSpec("source", f"a {self.kind.value} adapter needs the {self.kind.value} name")
        elif not _IFNAME_RE.fullmatch(self.source):
            raise InvalidSpec("source", f"{shown(self.source)} is not a valid {self.kind.value} name")
        if self.mac is not None and int(self.mac[:2], 16) & 1:
            raise InvalidSpec("mac", f"{self.mac} is a multicast address")
