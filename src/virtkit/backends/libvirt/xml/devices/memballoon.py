"""``<memballoon>``: the balloon device, which QEMU domains get unless the definition says ``model='none'``."""

from __future__ import annotations

from virtkit.backends.libvirt.xml.base import XMLProperty
from virtkit.backends.libvirt.xml.devices.device import Device

__all__ = ["MemBalloon"]


class MemBalloon(Device):
    """The ``<memballoon>``."""

    TAG = "memballoon"
    model = XMLProperty("./@model")  # virtio, none
