"""Character devices: what ``<serial>``, ``<console>`` and ``<channel>`` share, a host-side source and a guest-side
target. See https://libvirt.org/formatdomain.html#consoles-serial-parallel-channel-devices."""

from __future__ import annotations

from pathlib import Path

from virtkit.backends.libvirt.xml.base import INT, ON_OFF, PATH, XMLProperty
from virtkit.backends.libvirt.xml.devices.device import Device

__all__ = ["CharDevice"]


class CharDevice(Device):
    """A character device; :mod:`~virtkit.backends.libvirt.xml.devices.serial` and
    :mod:`~virtkit.backends.libvirt.xml.devices.channel` name the element."""

    type = XMLProperty("./@type")  # pty, file, unix, spicevmc...
    source_path = XMLProperty("./source/@path", PATH)
    source_append = XMLProperty("./source/@append", ON_OFF)
    target_type = XMLProperty("./target/@type")
    target_port = XMLProperty("./target/@port", INT)
    target_name = XMLProperty("./target/@name")
    target_state = XMLProperty("./target/@state")  # a channel's, in the running definition

    def log_to(self, path: Path) -> None:
        """Send what the guest writes to the file ``path``, appended to what it holds."""
        self.type = "file"
        self.source_path = path
        self.source_append = True
