"""``<serial>`` and ``<console>``: the serial port and the console libvirt mirrors it to.

virtkit's serial log is the first serial port writing to a file; a console whose target is serial port 0 is
libvirt's alias of that port, and libvirt rewrites it to match the port (it is written along with it).
"""

from __future__ import annotations

from virtkit.backends.libvirt.xml.devices.chardev import CharDevice

__all__ = ["Console", "Serial"]


class Serial(CharDevice):
    """One ``<serial>`` port."""

    TAG = "serial"


class Console(CharDevice):
    """One ``<console>``."""

    TAG = "console"

    @property
    def mirrors_serial(self) -> bool:
        """Whether it is libvirt's alias of serial port 0 (target type ``serial``, port 0)."""
        return self.target_type == "serial" and (self.target_port or 0) == 0
