"""An image's format, virtual size and backing file, read from its header without starting ``qemu-img``.

Microseconds instead of milliseconds, and nothing but the file itself is opened (``qemu-img info`` would follow a
backing file of the image's own choosing). Used where a cheap check is enough: does this existing file look like the
format the spec names, and where does its backing chain lead? For more (allocation, corruption) use
:func:`virtkit.images.info`.

Header layouts: qcow2 starts with ``QFI\\xfb``; its version (u32) is at byte 4, the offset (u64) and length (u32) of
the backing file name at bytes 8 and 16, the virtual size (u64) at byte 24 and, from version 3, the incompatible
feature bits (u64) at byte 72, where bit 2 means an external data file. VHD (QEMU's ``vpc``) has a 512-byte footer
starting with ``conectix``, at the end of the file and, for dynamic disks, also at its start: the current size (u64)
at byte 48 and the disk type (u32: 2 fixed, 3 dynamic, 4 differencing) at byte 60. VHDX starts with ``vhdxfile``.
Anything else is raw. All numbers are big-endian.
"""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

from virtkit.backends.base.files import HostFiles
from virtkit.models.disk import DiskFormat

__all__ = ["VHD_DIFFERENCING", "Header", "probe", "read_header"]

_QCOW2_MAGIC = b"QFI\xfb"
_VHD_COOKIE = b"conectix"
_VHDX_SIGNATURE = b"vhdxfile"
_QCOW2_EXTERNAL_DATA = 1 << 2
#: The longest backing file name a qcow2 header may hold (QEMU's limit).
MAX_BACKING_NAME = 1023
#: The VHD footer's disk type of a differencing disk.
VHD_DIFFERENCING = 4


@dataclasses.dataclass(frozen=True)
class Header:
    """What an image's header says."""

    format: DiskFormat
    #: Bytes the guest sees; ``None`` for vhdx, whose size sits deeper.
    virtual_size: int | None
    #: The backing file name as the header stores it (qcow2), or ``None``.
    backing: str | None = None
    #: A qcow2 image whose data lives in another file, named in a header extension.
    external_data: bool = False
    #: The VHD footer's disk type (2 fixed, 3 dynamic, 4 differencing).
    vhd_type: int | None = None


def read_header(files: HostFiles, path: Path, size: int) -> Header:
    """The header of the regular file ``path`` (of ``size`` bytes) on the machine ``files`` reaches.

    :raises OSError: it cannot be read (or is not a regular file).
    :raises ValueError: a qcow2 header that names an impossible backing file.
    """
    head = files.read(path, offset=0, size=512)
    if head[:4] == _QCOW2_MAGIC and len(head) >= 32:
        return _qcow2(files, path, head)
    if head[:8] == _VHDX_SIGNATURE:
        return Header(DiskFormat.VHDX, None)
    footer = head
    if footer[:8] != _VHD_COOKIE and size >= 512:
        footer = files.read(path, offset=size - 512, size=512)
    if footer[:8] == _VHD_COOKIE and len(footer) >= 64:
        current, disk_type = struct.unpack(">Q", footer[48:56])[0], struct.unpack(">I", footer[60:64])[0]
        return Header(DiskFormat.VHD, current, vhd_type=disk_type)
    return Header(DiskFormat.RAW, size)


def _qcow2(files: HostFiles, path: Path, head: bytes) -> Header:
    version = struct.unpack(">I", head[4:8])[0]
    offset, length = struct.unpack(">QI", head[8:20])
    virtual_size = struct.unpack(">Q", head[24:32])[0]
    external = version >= 3 and len(head) >= 80 and bool(struct.unpack(">Q", head[72:80])[0] & _QCOW2_EXTERNAL_DATA)
    backing = None
    if offset:
        if not 0 < length <= MAX_BACKING_NAME:
            raise ValueError(f"a backing file name of {length} bytes")
        raw = files.read(path, offset=offset, size=length)
        if len(raw) != length:
            raise ValueError("a backing file name past the end of the file")
        backing = raw.decode("utf-8", errors="replace")
    return Header(DiskFormat.QCOW2, virtual_size, backing=backing, external_data=external)


def probe(path: Path) -> tuple[DiskFormat, int | None]:
    """The format of the image at ``path`` on this machine and its virtual size in bytes (``None`` for vhdx).

    :raises NotFound: no file at ``path``.
    :raises InvalidSpec: something that is not a regular file (refused without opening it).
    """
    from virtkit.errors import InvalidSpec, NotFound
    from virtkit.remote.local import LocalFiles
    from virtkit.storage import Kind, kind_of

    files = LocalFiles()
    found = files.stat(path)
    if found is None:
        raise NotFound(f"no image at {path}")
    if kind_of(found.mode) is not Kind.FILE:
        raise InvalidSpec("path", f"{path} is a {kind_of(found.mode).value}, not an image file")
    header = read_header(files, path, found.size)
    return header.format, header.virtual_size
