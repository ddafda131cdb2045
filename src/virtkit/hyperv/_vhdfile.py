"""The files behind the VHD cmdlets (:mod:`virtkit.hyperv.vhd`): formats by extension, the VHDX metadata flags,
qemu-img's options, the in-use probe, and temporary files that become a disk or take its place.

VHDX layout (all numbers little-endian, GUIDs in their mixed-endian byte form): the region table at 192 KiB starts
with ``regi``, its entry count (u32) at byte 8 and 32-byte entries from byte 16 (GUID, file offset u64, length
u32, flags u32). The metadata region's table starts with ``metadata``, its entry count (u16) at byte 10 and 32-byte
entries from byte 32 (item GUID, offset u32 from the region's start, length u32, ...). The File Parameters item
holds the block size (u32), then flags (u32): bit 0 LeaveBlockAllocated (a fixed disk), bit 1 HasParent (a
differencing disk).
"""

from __future__ import annotations

import secrets
import struct
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from virtkit import images
from virtkit.errors import AlreadyExists, Conflict, ImageError, InvalidSpec, Unsupported, VirtkitError
from virtkit.images.qemu_img import DATA_TIMEOUT, QEMU_FORMAT, QUICK_TIMEOUT, ImageInfo, run
from virtkit.models.disk import DiskFormat
from virtkit.ops.storage import HostStorage
from virtkit.storage import Entry
from virtkit.units import GiB, MiB, TiB
from virtkit.validate import shown

Progress = Callable[[float], None]

#: A file's extension and the format it holds.
EXTENSIONS = {
    ".vhdx": DiskFormat.VHDX,
    ".vhd": DiskFormat.VHD,
    ".qcow2": DiskFormat.QCOW2,
    ".img": DiskFormat.RAW,
    ".raw": DiskFormat.RAW,
}
VHD_FIXED = 2  # a VHD footer's disk type (3 dynamic, 4 differencing)
VHDX_FIXED, VHDX_HAS_PARENT = 1, 2  # the File Parameters flags

# The largest disk of each format where QEMU has a limit of its own (a VHD's is 2040 GiB, a VHDX's 64 TiB).
_MAX_SIZE = {DiskFormat.VHD: 2040 * GiB, DiskFormat.VHDX: 64 * TiB}
# Block (cluster) sizes each format takes, and qemu-img's option for it; qemu-img writes VHD blocks of 2 MiB only.
_BLOCK_SIZE = {DiskFormat.VHDX: (MiB, 256 * MiB, "block_size"), DiskFormat.QCOW2: (512, 2 * MiB, "cluster_size")}
_VHD_BLOCK = 2 * MiB
_VHDX_REGION_TABLE = 192 * 1024
_VHDX_METADATA = uuid.UUID("8b7ca206-4790-4b9a-b8fe-575f050f886e").bytes_le
_VHDX_FILE_PARAMETERS = uuid.UUID("caa16737-fa36-4d43-b3b6-33f0aa44e76b").bytes_le
_QCOW2_MAX_L1_ENTRIES = 4 * 1024 * 1024  # QEMU's largest L1 table (32 MiB) of 8-byte entries


def format_of(field: str, path: Path) -> DiskFormat:
    """The format ``path``'s extension names.

    :raises Unsupported: Hyper-V's ``.avhdx``/``.avhd`` differencing disks.
    :raises InvalidSpec: any other extension than those of :data:`EXTENSIONS`.
    """
    suffix = path.suffix.lower()
    if suffix in (".avhdx", ".avhd"):
        raise Unsupported(f"{field}: {path.name} is a Hyper-V differencing disk, which QEMU cannot read or write")
    if suffix not in EXTENSIONS:
        raise InvalidSpec(field, f"{shown(path.name)} is not a .vhdx, .vhd, .qcow2, .img or .raw file")
    return EXTENSIONS[suffix]


def vhdx_flags(storage: HostStorage, field: str, entry: Entry) -> int:
    """The File Parameters flags of the VHDX file ``entry`` (see the layout above).

    :raises InvalidSpec: (``field``) no such metadata: not a valid VHDX.
    """
    read = storage.files.read
    try:
        table = read(entry.real, offset=_VHDX_REGION_TABLE, size=4096)
        if table[:4] != b"regi":
            raise ValueError("no region table")
        count = min(struct.unpack_from("<I", table, 8)[0], 127)
        regions = (struct.unpack_from("<16sQ", table, 16 + 32 * i) for i in range(count))
        where = next(offset for guid, offset in regions if guid == _VHDX_METADATA)
        meta = read(entry.real, offset=where, size=64 * 1024)
        if meta[:8] != b"metadata":
            raise ValueError("no metadata table")
        count = min(struct.unpack_from("<H", meta, 10)[0], 2047)
        items = (struct.unpack_from("<16sI", meta, 32 + 32 * i) for i in range(count))
        at = next(offset for guid, offset in items if guid == _VHDX_FILE_PARAMETERS)
        return int(struct.unpack("<I", read(entry.real, offset=where + at + 4, size=4))[0])
    except (ValueError, StopIteration, struct.error, OSError) as exc:
        reason = str(exc) or "no file parameters"
        raise InvalidSpec(field, f"{entry.path} is not a valid VHDX image: {reason}") from None


def check_new(storage: HostStorage, field: str, value: object) -> tuple[Entry, DiskFormat]:
    """A new disk's path inside the roots, in an existing directory, with nothing there, and its format.

    :raises InvalidSpec: a bad path or extension, outside the roots, in a missing directory.
    :raises AlreadyExists: something is there (a dangling symlink too).
    """
    target = storage.roots.new(field, value)
    fmt = format_of(field, target.path)
    if storage.files.stat(target.path, follow_symlinks=False) is not None:
        raise AlreadyExists(f"{field}: {target.path} exists already; choose another path or remove it")
    return target, fmt


def check_size(field: str, value: object, fmt: DiskFormat) -> int:
    """A size in bytes (or a size string) that ``fmt`` holds, a whole number of sectors.

    :raises InvalidSpec: anything else.
    """
    return check_fits(field, images.check_size(field, value, fmt), fmt)


def check_fits(field: str, size: int, fmt: DiskFormat) -> int:
    """:raises InvalidSpec: a disk of ``fmt`` cannot be ``size`` bytes large."""
    if size > _MAX_SIZE.get(fmt, size):
        raise InvalidSpec(
            field, f"{size} bytes is too large; the largest {fmt.value.upper()} is {_MAX_SIZE[fmt]} bytes"
        )
    return size


def check_block_size(fmt: DiskFormat, value: object) -> int | None:
    """A block size for ``fmt``, or ``None`` for qemu-img's own.

    :raises InvalidSpec: (``BlockSizeBytes``) not a power of two in the format's range.
    """
    if value is None or (fmt is DiskFormat.VHD and value == _VHD_BLOCK and not isinstance(value, bool)):
        return None
    if fmt not in _BLOCK_SIZE:
        raise InvalidSpec("BlockSizeBytes", f"qemu-img writes {fmt.value} blocks of 2 MiB only; leave it out")
    low, high, _ = _BLOCK_SIZE[fmt]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high or value & (value - 1):
        raise InvalidSpec("BlockSizeBytes", f"{shown(value)} is not a power of two from {low} to {high} bytes")
    return value


def options(fmt: DiskFormat, *, fixed: bool, block_size: int | None) -> list[str]:
    """qemu-img's ``-o`` options for a disk of ``fmt``; a VHD keeps its exact size (no CHS rounding)."""
    out = []
    if fmt in (DiskFormat.VHD, DiskFormat.VHDX):
        out.append(f"subformat={'fixed' if fixed else 'dynamic'}")
    if fmt is DiskFormat.VHD:
        out.append("force_size=on")
    elif block_size is not None and fmt in _BLOCK_SIZE:
        out.append(f"{_BLOCK_SIZE[fmt][2]}={block_size}")
    return out


def qcow2_capacity(info: ImageInfo) -> int | None:
    """The largest size a qcow2 image can grow to with its cluster size (see :mod:`virtkit.images`)."""
    if info.format is not DiskFormat.QCOW2 or not info.cluster_size:
        return None
    return _QCOW2_MAX_L1_ENTRIES * (info.cluster_size // (16 if info.extended_l2 else 8)) * info.cluster_size


def not_in_use(storage: HostStorage, entry: Entry, fmt: DiskFormat, field: str = "Path") -> None:
    """Refuse a disk a running QEMU writes to, or one of its parents: without ``-U`` qemu-img cannot open those.

    :raises Conflict: it is in use.
    """
    args = ["info", "--output=json", "-f", QEMU_FORMAT[fmt], str(entry.path)]
    try:
        run(args, timeout=QUICK_TIMEOUT, files=storage.files)
    except Conflict as exc:
        raise Conflict(f"{field}: {entry.path} is in use by a running VM or another process: {exc.message}") from None


def copying(storage: HostStorage, progress: Progress | None) -> dict[str, Any]:
    """The arguments of :func:`~virtkit.images.qemu_img.run` for a run that moves data."""
    return {"timeout": DATA_TIMEOUT, "files": storage.files, "progress": progress}


def quiet(progress: Progress | None) -> str:
    """qemu-img's flag to print progress, or nothing."""
    return "-p" if progress else "-q"


def halves(progress: Progress | None) -> tuple[Progress | None, Progress | None]:
    """``progress`` for two copies in a row: the first reports 0-50, the second 50-100."""
    if progress is None:
        return None, None
    return (lambda pct: progress(pct / 2)), (lambda pct: progress(50 + pct / 2))


@contextmanager
def temporary(storage: HostStorage, beside: Entry) -> Iterator[Path]:
    """A temporary name in the real directory of ``beside``, removed afterwards whatever happens."""
    tmp = beside.real.parent / f".{beside.real.name[:200]}.{secrets.token_hex(6)}.part"
    try:
        yield tmp
    finally:
        with suppress(VirtkitError, OSError):
            storage.files.unlink(tmp)


def link(storage: HostStorage, field: str, tmp: Path, target: Entry) -> None:
    """Give the finished ``tmp`` the new name ``target``, never over something there.

    :raises AlreadyExists: something appeared there meanwhile.
    """
    try:
        storage.files.link(tmp, target.real)
    except FileExistsError:
        raise AlreadyExists(f"{field}: {target.path} appeared while it was being written") from None


def replace(storage: HostStorage, tmp: Path, entry: Entry) -> None:
    """Put ``tmp`` in the place of the file ``entry`` at once (a rename in its directory), with its owner and mode.

    :raises ImageError: that failed; ``entry`` is as it was.
    """
    reference = f"--reference={entry.real}"
    for args in (
        ["chown", reference, str(tmp)],
        ["chmod", reference, str(tmp)],
        ["mv", "-f", "-T", str(tmp), str(entry.real)],
    ):
        done = storage.files.run(args, timeout=QUICK_TIMEOUT)
        if done.returncode != 0:
            detail = done.stderr.strip()[:300] or f"exit status {done.returncode}"
            raise ImageError(f"cannot put the rewritten {entry.path} in place ({args[0]}): {detail}")
