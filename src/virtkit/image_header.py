"""Read an image's format and virtual size from its header, without starting ``qemu-img`` (microseconds, not ms).

Used where a cheap check is enough (does this existing file look like the format the spec names?). For anything
more (backing chains, allocation, corruption) use :func:`virtkit.images.info`.

Header layouts: qcow2 starts with ``QFI\\xfb`` and keeps the virtual size as a big-endian u64 at byte 24; VHD (QEMU's
``vpc``) has a 512-byte footer starting with ``conectix``, at the end of the file and, for dynamic disks, also at its
start, with the current size as a big-endian u64 at byte 48; VHDX starts with ``vhdxfile``. Anything else is raw.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from virtkit.errors import NotFound
from virtkit.models.disk import DiskFormat

__all__ = ["probe"]

_QCOW2_MAGIC = b"QFI\xfb"
_VHD_COOKIE = b"conectix"
_VHDX_SIGNATURE = b"vhdxfile"


def probe(path: Path) -> tuple[DiskFormat, int | None]:
    """The format of the image at ``path`` and its virtual size in bytes (``None`` for vhdx, whose size sits deeper).

    :raises NotFound: no file at ``path``.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(512)
            size = os.fstat(f.fileno()).st_size
            if head[:4] == _QCOW2_MAGIC and len(head) >= 32:
                return DiskFormat.QCOW2, struct.unpack(">Q", head[24:32])[0]
            if head[:8] == _VHDX_SIGNATURE:
                return DiskFormat.VHDX, None
            footer = head
            if footer[:8] != _VHD_COOKIE and size >= 512:
                f.seek(size - 512)
                footer = f.read(512)
            if footer[:8] == _VHD_COOKIE and len(footer) >= 56:
                return DiskFormat.VHD, struct.unpack(">Q", footer[48:56])[0]
            return DiskFormat.RAW, size
    except FileNotFoundError as exc:
        raise NotFound(f"no image at {path}") from exc
