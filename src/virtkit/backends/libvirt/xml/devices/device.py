"""What every device element may carry: the ``<alias>`` libvirt names it by, and its ``<address>`` on a bus."""

from __future__ import annotations

from virtkit.backends.libvirt.xml.base import INT, XMLChild, XMLObject, XMLProperty

__all__ = ["Address", "Device"]


class Address(XMLObject):
    """A device's place: a PCI slot (``type='pci'``, hexadecimal numbers, not modelled), or a drive on a disk
    controller (``type='drive'``: controller, bus, target and unit)."""

    TAG = "address"
    type = XMLProperty("./@type")
    controller = XMLProperty("./@controller", INT)
    bus = XMLProperty("./@bus", INT)
    target = XMLProperty("./@target", INT)
    unit = XMLProperty("./@unit", INT)

    @property
    def drive(self) -> tuple[int, int] | None:
        """(controller, unit) of a drive address, or ``None`` for any other kind."""
        if self.type != "drive":
            return None
        return self.controller or 0, self.unit or 0

    def set_drive(self, controller: int, unit: int) -> None:
        """Make it the drive address of ``unit`` on ``controller`` (bus and target 0, as virtio-scsi numbers LUNs)."""
        self.type = "drive"
        self.controller = controller
        self.bus = 0
        self.target = 0
        self.unit = unit


class Device(XMLObject):
    """A device element; subclasses declare their own fields, which go before these two."""

    alias = XMLProperty("./alias/@name")
    address = XMLChild(Address)
