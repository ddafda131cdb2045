"""The lab test guest's contents: its ``init`` script (package data next to this file) and the initramfs layout.

:mod:`virtkit.lab.image` downloads the kernel and busybox and caches the result; this package decides what goes
into the initramfs and how it is packed, without any network or apt call.
"""

from __future__ import annotations

__all__: list[str] = []
