"""``<controller>``: the buses devices sit on. virtkit writes SCSI controllers; the others it keeps as they are."""

from __future__ import annotations

from virtkit.backends.libvirt.xml.base import INT, XMLProperty
from virtkit.backends.libvirt.xml.devices.device import Device

__all__ = ["Controller"]


class Controller(Device):
    """One ``<controller>``."""

    TAG = "controller"
    type = XMLProperty("./@type")  # scsi, sata, ide, usb, pci, virtio-serial
    index = XMLProperty("./@index", INT, default=0)
    model = XMLProperty("./@model")

    @classmethod
    def new(cls, type: str, index: int, model: str | None = None) -> Controller:
        """A controller of ``type`` with ``index`` and ``model``."""
        controller = cls()
        controller.type = type
        controller.index = index
        controller.model = model
        return controller
