"""The lab test guest's contents and ingredients, for :mod:`virtkit.lab.image` (which caches the result).

- ``init`` (the plain guest's PID 1), ``agent-init`` (the agent variant's PID 1) and ``shutdown`` (its
  ``/sbin/shutdown``): busybox sh scripts shipped as package data next to this file;
- ``virtkit-load.c``: the memory load init starts for ``virtkit.dirty=`` and ``virtkit.fill=``, compiled by
  :mod:`~virtkit.lab.guest.memload` with this machine's gcc;
- :mod:`~virtkit.lab.guest.initramfs`: what goes into the initramfs and how it is packed, without network or apt;
- :mod:`~virtkit.lab.guest.fetch`: getting the kernel, busybox and qemu-ga out of Debian packages (apt, dpkg-deb,
  ldd).
"""

from __future__ import annotations

__all__: list[str] = []
