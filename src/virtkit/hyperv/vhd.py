"""The virtual hard disk cmdlets: New-VHD, Get-VHD, Convert-VHD, Resize-VHD, Optimize-VHD and Merge-VHD.

Each takes the :class:`~virtkit.Host` whose storage roots hold the files (every path, and every parent of a
differencing disk, must lie inside them once its symlinks are resolved), names errors with the cmdlet's parameter
(``Path``, ``ParentPath``, ``DestinationPath``, ``SizeBytes``...) and takes ``what_if`` (check mode: every check of
the real call, nothing changed). A file's extension says its format: ``.vhdx``, ``.vhd``, ``.qcow2``, and ``.img`` or
``.raw`` for raw; the file's content must agree (a ``.vhdx`` that holds anything but a VHDX is refused). A call that
fails leaves the files as they were and no new file behind.

Facts measured with qemu-img 7.2 (Debian 12), which this module relies on:

- A fixed VHD is raw data followed by a 512-byte footer: ``qemu-img info`` without ``-f vpc`` reads it as raw. The
  format is therefore read from the file's header and footer, never guessed by qemu-img.
- ``qemu-img info`` does not say whether a VHDX is fixed: the ``LeaveBlockAllocated`` bit of the VHDX metadata's
  File Parameters does (set by ``-o subformat=fixed``), and is read here. A VHD's footer holds its type.
- qemu-img makes fixed VHD and VHDX files sparse: a fixed 16 MiB VHDX is a 24 MiB file (FileSize) with 1.2 MiB
  allocated; its blocks are all present in the file's block table, as on Hyper-V.
- ``qemu-img create -f vpc`` rounds the size up to a CHS geometry (16 MiB gives 16,781,312 bytes); Hyper-V does not,
  so every VHD is written with ``force_size=on``.
- QEMU cannot write a differencing VHD or VHDX, nor read one Hyper-V made (``.avhdx``): a differencing disk here is
  a qcow2 overlay, whose parent may be a VHD, VHDX, qcow2 or raw disk.
- qemu-img 7.2 cannot resize vpc or vhdx: :func:`resize_vhd` copies such a disk into a temporary qcow2 beside it,
  grows that, copies it back with the same type and renames the result over the original.
- Rewriting an image with ``qemu-img convert`` leaves zeroed blocks out: 8 MiB written and then zeroed in a 64 MiB
  disk shrank its file from 8,716,288 to 196,616 bytes (qcow2), 16,777,216 to 8,388,608 (VHDX) and 8,393,216 to
  2,560 (VHD). :func:`optimize_vhd` is that rewrite.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

from virtkit import images
from virtkit.errors import Conflict, ImageError, InvalidSpec, NotFound, Unsupported
from virtkit.hyperv import _vhdfile as vf
from virtkit.images.chain import backing_chain, header_of
from virtkit.images.header import VHD_DIFFERENCING
from virtkit.images.qemu_img import QEMU_FORMAT, QUICK_TIMEOUT, ImageInfo, run
from virtkit.models.change import Change
from virtkit.models.disk import DiskFormat
from virtkit.ops.args import check_callbacks
from virtkit.ops.host import Host
from virtkit.ops.storage import HostStorage
from virtkit.storage import Entry, Kind
from virtkit.validate import check_flag, shown

__all__ = [
    "VhdFormat",
    "VhdType",
    "VirtualHardDisk",
    "convert_vhd",
    "get_vhd",
    "merge_vhd",
    "new_vhd",
    "optimize_vhd",
    "resize_vhd",
]


class VhdFormat(StrEnum):
    """Get-VHD's VhdFormat; ``QCOW2`` and ``RAW`` are KVM's own."""

    VHD = "VHD"
    VHDX = "VHDX"
    QCOW2 = "QCOW2"
    RAW = "RAW"


class VhdType(StrEnum):
    """Get-VHD's VhdType and Convert-VHD's -VHDType. A raw disk is fixed; a qcow2 disk is dynamic, or differencing
    when it has a parent."""

    FIXED = "Fixed"
    DYNAMIC = "Dynamic"
    DIFFERENCING = "Differencing"


_VHD_FORMAT = {f: VhdFormat[f.name] for f in DiskFormat}


@dataclasses.dataclass(frozen=True)
class VirtualHardDisk:
    """A virtual hard disk as Get-VHD shows it.

    ``file_size`` is the file's length; ``minimum_size`` is ``None`` (the end of the guest's last partition is not
    read); ``block_size`` is ``0`` for a disk without blocks (a fixed VHD, raw). In a check mode's prediction,
    ``file_size``, ``block_size`` and ``info`` are ``None``: not known before the disk is written. ``parent_chain``
    lists the parents, nearest first; ``info`` is the neutral view of the same image.
    """

    path: Path
    vhd_format: VhdFormat
    vhd_type: VhdType
    file_size: int | None
    size: int
    minimum_size: int | None = None
    block_size: int | None = None
    parent_path: Path | None = None
    parent_chain: tuple[Path, ...] = ()
    info: ImageInfo | None = dataclasses.field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain data with Get-VHD's property names (``ParentChain`` is KVM's own)."""
        return {
            "Path": str(self.path),
            "VhdFormat": self.vhd_format.value,
            "VhdType": self.vhd_type.value,
            "FileSize": self.file_size,
            "Size": self.size,
            "MinimumSize": self.minimum_size,
            "BlockSize": self.block_size,
            "ParentPath": None if self.parent_path is None else str(self.parent_path),
            "ParentChain": [str(p) for p in self.parent_chain],
        }


def get_vhd(host: Host, path: Path | str) -> VirtualHardDisk:
    """Get-VHD: the disk at ``path`` (read with ``qemu-img info -U``, so a disk in use can be read too).

    :raises InvalidSpec: (``Path``) outside the storage roots, not a regular file, an unknown extension, content of
        another format than the extension's; (``ParentPath``) a parent missing or outside the roots.
    :raises NotFound: no file at ``path``.
    :raises Unsupported: a differencing VHD or VHDX made by Hyper-V (QEMU cannot read them).
    """
    return _open(host.storage, "Path", path)[1]


def new_vhd(
    host: Host,
    path: Path | str,
    size_bytes: int | str | None = None,
    *,
    fixed: bool = False,
    dynamic: bool = True,
    differencing: bool = False,
    parent_path: Path | str | None = None,
    block_size_bytes: int | None = None,
    what_if: bool = False,
    progress: Callable[[float], None] | None = None,
) -> Change[VirtualHardDisk]:
    """New-VHD: make a dynamic disk (the default), a ``fixed`` one, or a ``differencing`` one over ``parent_path``.

    The extension gives the format: ``.vhdx``, ``.vhd`` or ``.qcow2`` (not fixed: qcow2 has no such kind). A
    differencing disk is a qcow2 overlay, as QEMU cannot write a differencing VHD or VHDX: its ``path`` must end in
    ``.qcow2``; it has its parent's size; the parent may be a VHD, VHDX, qcow2 or raw disk. ``size_bytes`` (bytes,
    or ``"10GiB"``) is exact, a VHD's too. ``block_size_bytes``: a VHDX's block size (1-256 MiB) or a qcow2 cluster
    size (512 bytes-2 MiB), a power of two. ``progress`` is called with 100 once the disk is made.

    :raises InvalidSpec: a bad value, named (``SizeBytes``, ``ParentPath``...); a path outside the storage roots.
    :raises Unsupported: a differencing disk not named ``.qcow2``; a fixed qcow2.
    :raises AlreadyExists: something is at ``path`` already.
    :raises NotFound: no parent at ``parent_path``.
    :raises Conflict: a running VM writes to the parent.
    :raises ImageError: qemu-img failed; no file is left.
    """
    storage = host.storage
    check_flag("WhatIf", what_if)
    check_callbacks(progress=progress)
    kind = _new_type(fixed, dynamic, differencing)
    target, fmt = vf.check_new(storage, "Path", path)
    if fmt is DiskFormat.RAW:
        raise InvalidSpec("Path", f"New-VHD makes .vhdx, .vhd or .qcow2 disks, not raw {target.path.name}")
    args = ["create", "-q", "-f", QEMU_FORMAT[fmt]]
    chain: tuple[Path, ...] = ()
    if kind is VhdType.DIFFERENCING:
        if fmt is not DiskFormat.QCOW2:
            raise Unsupported(
                f"Path: QEMU cannot write a differencing {_VHD_FORMAT[fmt].value}; a differencing disk is a qcow2 "
                f"overlay: name it {target.path.stem}.qcow2"
            )
        if size_bytes is not None:
            raise InvalidSpec("SizeBytes", "a differencing disk has its parent's size; grow it later with resize_vhd")
        if parent_path is None:
            raise InvalidSpec("ParentPath", "a differencing disk needs the path of its parent")
        below, parent = _open(storage, "ParentPath", parent_path)
        vf.not_in_use(storage, below, _format(parent), "ParentPath")  # a parent must not change under its child
        args += ["-b", str(parent.path), "-F", QEMU_FORMAT[_format(parent)]]
        chain, nbytes = (parent.path, *parent.parent_chain), parent.size
    else:
        if parent_path is not None:
            raise InvalidSpec("ParentPath", "only a differencing disk has a parent")
        if size_bytes is None:
            raise InvalidSpec("SizeBytes", "is required for a fixed or dynamic disk")
        if kind is VhdType.FIXED and fmt is DiskFormat.QCOW2:
            raise Unsupported("Fixed: qcow2 has no fixed kind; make a fixed .vhdx or .vhd, or a dynamic .qcow2")
        nbytes = vf.check_size("SizeBytes", size_bytes, fmt)
    block = vf.check_block_size(fmt, block_size_bytes)
    if what_if:
        parent_of = chain[0] if chain else None
        predicted = VirtualHardDisk(target.path, _VHD_FORMAT[fmt], kind, None, nbytes, None, None, parent_of, chain)
        return Change("create", str(target.path), None, predicted, check=True)
    options = vf.options(fmt, fixed=kind is VhdType.FIXED, block_size=block)
    args += ["-o", ",".join(options)] if options else []
    with vf.temporary(storage, target) as tmp:
        run([*args, str(tmp), str(nbytes)], **vf.copying(storage, None))
        made = _read(storage, "Path", storage.roots.lookup("Path", tmp), fmt)
        vf.link(storage, "Path", tmp, target)
    if progress is not None:
        progress(100.0)
    return Change("create", str(target.path), None, _renamed(made, target.path))


def convert_vhd(
    host: Host,
    path: Path | str,
    destination_path: Path | str,
    *,
    vhd_type: VhdType | str | None = None,
    what_if: bool = False,
    progress: Callable[[float], None] | None = None,
) -> Change[VirtualHardDisk]:
    """Convert-VHD: copy the disk at ``path`` into a new disk at ``destination_path``, whose extension gives the
    format (``.vhdx``, ``.vhd``, ``.qcow2``, ``.img``/``.raw``); a differencing disk's parents are copied into it.

    ``vhd_type``: ``Fixed`` or ``Dynamic``; by default the source's (a qcow2 copy is always dynamic, a raw one
    fixed). ``progress`` is called with the percentage done; raising from it cancels the copy.

    :raises InvalidSpec: a bad value or path (``Path``, ``DestinationPath``, ``VHDType``), the same file twice, a
        disk too large for the destination's format (a VHD holds 2040 GiB).
    :raises Unsupported: a type the destination's format lacks (a fixed qcow2, a dynamic raw), or ``Differencing``.
    :raises AlreadyExists: something is at ``destination_path`` (it is never overwritten).
    :raises Conflict: a running VM writes to the disk.
    :raises ImageError: qemu-img failed; no destination file is left.
    """
    storage = host.storage
    check_flag("WhatIf", what_if)
    check_callbacks(progress=progress)
    entry, source = _open(storage, "Path", path)
    target, fmt = vf.check_new(storage, "DestinationPath", destination_path)
    if target.real == entry.real:
        raise InvalidSpec("DestinationPath", "must differ from Path")
    kind = _converted_type(source.vhd_type, vhd_type, fmt)
    vf.check_fits("DestinationPath", source.size, fmt)
    source_format = _format(source)
    vf.not_in_use(storage, entry, source_format)
    if what_if:
        predicted = VirtualHardDisk(target.path, _VHD_FORMAT[fmt], kind, None, source.size)
        return Change("convert", str(target.path), None, predicted, check=True)
    options = vf.options(fmt, fixed=kind is VhdType.FIXED, block_size=None)
    args = ["convert", "-f", QEMU_FORMAT[source_format], "-O", QEMU_FORMAT[fmt], vf.quiet(progress)]
    args += ["-o", ",".join(options)] if options else []
    with vf.temporary(storage, target) as tmp:
        run([*args, str(entry.path), str(tmp)], **vf.copying(storage, progress))
        made = _read(storage, "DestinationPath", storage.roots.lookup("DestinationPath", tmp), fmt)
        vf.link(storage, "DestinationPath", tmp, target)
    return Change("convert", str(target.path), None, _renamed(made, target.path))


def resize_vhd(
    host: Host,
    path: Path | str,
    size_bytes: int | str,
    *,
    what_if: bool = False,
    progress: Callable[[float], None] | None = None,
) -> Change[VirtualHardDisk]:
    """Resize-VHD: grow the disk at ``path`` to ``size_bytes``; its present size is a no-op.

    A qcow2 or raw disk grows in place. A VHD or VHDX (which qemu-img cannot resize) is copied into a temporary
    qcow2 beside it, grown, copied back with the same type, and renamed over the original, which is untouched until
    then; ``progress`` follows both copies. Shrinking is refused: Hyper-V shrinks only down to the end of the last
    partition, which is not read here; shrink the guest's partitions first, then a qcow2 or raw copy of the disk
    with ``virtkit.images.resize(..., shrink=True)``.

    :raises InvalidSpec: a bad path or size (``SizeBytes``: smaller, zero, beyond the format's largest).
    :raises Conflict: a running VM uses the disk; a qcow2 not closed cleanly.
    :raises ImageError: qemu-img failed; the disk is as it was, no temporary file is left.
    """
    storage = host.storage
    check_flag("WhatIf", what_if)
    check_callbacks(progress=progress)
    entry, disk = _open(storage, "Path", path)
    fmt = _format(disk)
    nbytes = vf.check_size("SizeBytes", size_bytes, fmt)
    if nbytes < disk.size:
        raise InvalidSpec("SizeBytes", f"{nbytes} bytes is smaller than the disk ({disk.size}); shrinking is refused")
    if nbytes == disk.size:
        return Change("resize", str(entry.path), disk, disk, what_if)
    assert disk.info is not None
    capacity = vf.qcow2_capacity(disk.info)
    if capacity is not None and nbytes > capacity:
        raise InvalidSpec("SizeBytes", f"{entry.path} has {disk.block_size}-byte clusters: it holds {capacity} bytes")
    if disk.info.dirty:
        raise Conflict(f"Path: {entry.path} was not closed cleanly; check and repair it first (qemu-img check -r all)")
    vf.not_in_use(storage, entry, fmt)
    if what_if:
        predicted = dataclasses.replace(disk, size=nbytes, file_size=None, info=None)
        return Change("resize", str(entry.path), disk, predicted, check=True)
    if fmt in (DiskFormat.QCOW2, DiskFormat.RAW):
        images.resize(entry.path, nbytes, roots=storage.roots)
        if progress is not None:
            progress(100.0)
    else:
        fixed = disk.vhd_type is VhdType.FIXED
        options = vf.options(fmt, fixed=fixed, block_size=disk.block_size or None)
        first, second = vf.halves(progress)
        with vf.temporary(storage, entry) as scratch, vf.temporary(storage, entry) as out:
            there = ["convert", "-f", QEMU_FORMAT[fmt], "-O", "qcow2", vf.quiet(progress), str(entry.path)]
            run([*there, str(scratch)], **vf.copying(storage, first))
            run(["resize", "-q", "-f", "qcow2", str(scratch), str(nbytes)], timeout=QUICK_TIMEOUT, files=storage.files)
            back = ["convert", "-f", "qcow2", "-O", QEMU_FORMAT[fmt], "-o", ",".join(options), vf.quiet(progress)]
            run([*back, str(scratch), str(out)], **vf.copying(storage, second))
            vf.replace(storage, out, entry)
    return Change("resize", str(entry.path), disk, _read(storage, "Path", _again(storage, entry), fmt))


def optimize_vhd(
    host: Host, path: Path | str, *, what_if: bool = False, progress: Callable[[float], None] | None = None
) -> Change[VirtualHardDisk]:
    """Optimize-VHD: compact a dynamic or differencing disk, rewriting it without its zeroed blocks.

    The disk is copied with its format, block size and parent into a temporary file beside it, which replaces it
    (a rename) only if it came out smaller: ``before.file_size - after.file_size`` bytes were reclaimed. In check
    mode ``after`` is ``before`` and ``acted`` is set: what a rewrite reclaims is known only once it is made.

    :raises InvalidSpec: a bad path; a fixed disk (it has its full size by design).
    :raises Conflict: a running VM uses the disk.
    :raises ImageError: qemu-img failed; the disk is as it was, no temporary file is left.
    """
    storage = host.storage
    check_flag("WhatIf", what_if)
    check_callbacks(progress=progress)
    entry, disk = _open(storage, "Path", path)
    fmt = _format(disk)
    if disk.vhd_type is VhdType.FIXED:
        raise InvalidSpec("Path", f"{entry.path} is a fixed disk; Optimize-VHD compacts dynamic and differencing disks")
    vf.not_in_use(storage, entry, fmt)
    if what_if:
        return Change("optimize", str(entry.path), disk, disk, check=True, acted=True)
    assert disk.info is not None
    options = vf.options(fmt, fixed=False, block_size=disk.block_size or None)
    options += ["extended_l2=on"] if disk.info.extended_l2 else []
    args = ["convert", "-f", QEMU_FORMAT[fmt], "-O", QEMU_FORMAT[fmt], "-o", ",".join(options), vf.quiet(progress)]
    if disk.parent_path is not None:  # the copy keeps the parent, named as the disk's header names it
        named = header_of(storage.roots, "ParentPath", entry).backing
        below = header_of(storage.roots, "ParentPath", storage.roots.existing("ParentPath", disk.parent_path))
        args += ["-B", str(named), "-F", QEMU_FORMAT[disk.info.backing_format or below.format]]
    with vf.temporary(storage, entry) as tmp:
        run([*args, str(entry.path), str(tmp)], **vf.copying(storage, progress))
        written = storage.files.stat(tmp)
        if written is not None and disk.file_size is not None and written.size < disk.file_size:
            vf.replace(storage, tmp, entry)
    return Change("optimize", str(entry.path), disk, _read(storage, "Path", _again(storage, entry), fmt))


def merge_vhd(
    host: Host,
    path: Path | str,
    destination_path: Path | str | None = None,
    *,
    what_if: bool = False,
    progress: Callable[[float], None] | None = None,
) -> Change[VirtualHardDisk]:
    """Merge-VHD: write the differencing disk at ``path`` into its parent (``qemu-img commit``), or into its
    ancestor ``destination_path`` with the disks between, then delete the merged disks, as Hyper-V does.

    The result's ``before`` is the merged disk and ``after`` is ``None``; read the destination with
    :func:`get_vhd`. Any other differencing disk made from the destination or from a merged disk sees its parent
    change under it (as on Hyper-V): merge only a chain nothing else is built on.

    :raises InvalidSpec: a bad path; (``Path``) a disk without a parent; (``DestinationPath``) none of its parents.
    :raises Conflict: a running VM uses the disk or one of its parents.
    :raises ImageError: qemu-img failed; nothing was deleted.
    """
    storage = host.storage
    check_flag("WhatIf", what_if)
    check_callbacks(progress=progress)
    entry, disk = _open(storage, "Path", path)
    if not disk.parent_chain:
        raise InvalidSpec("Path", f"{entry.path} is not a differencing disk: it has no parent to merge into")
    chain = backing_chain(storage.roots, "ParentPath", entry, DiskFormat.QCOW2)
    depth = 0
    if destination_path is not None:
        wanted = storage.roots.lookup("DestinationPath", destination_path)
        depth = next((i for i, e in enumerate(chain) if e.real == wanted.real), -1)
        if depth < 0:
            parents = ", ".join(str(e.path) for e in chain)
            raise InvalidSpec("DestinationPath", f"{wanted.path} is not a parent of {entry.path}; they are {parents}")
    vf.not_in_use(storage, entry, DiskFormat.QCOW2)
    if what_if:
        return Change("merge", str(entry.path), disk, None, check=True)
    base = ["-b", str(chain[depth].real)] if depth else []
    run(["commit", "-d", "-f", "qcow2", *base, vf.quiet(progress), str(entry.path)], **vf.copying(storage, progress))
    for merged in (entry, *chain[:depth]):
        try:
            storage.files.unlink(merged.real)
            if merged.path != merged.real:
                storage.files.unlink(merged.path)  # the symlink that named it
        except OSError as exc:
            raise ImageError(f"merged into {chain[depth].path}, but {merged.path} could not be removed: {exc}") from exc
    return Change("merge", str(entry.path), disk, None)


# -- helpers ------------------------------------------------------------------------------------------------------


def _open(storage: HostStorage, field: str, value: object) -> tuple[Entry, VirtualHardDisk]:
    """The existing disk at ``value``, checked and read."""
    entry = storage.roots.lookup(field, value)
    fmt = vf.format_of(field, entry.path)
    if entry.kind is None:
        raise NotFound(f"{field}: no virtual hard disk at {entry.path}")
    if entry.kind is not Kind.FILE:
        raise InvalidSpec(field, f"{entry.path} is a {entry.kind.value}, not a virtual hard disk")
    return entry, _read(storage, field, entry, fmt)


def _read(storage: HostStorage, field: str, entry: Entry, fmt: DiskFormat) -> VirtualHardDisk:
    """The regular file ``entry`` read as ``fmt``: its header must agree, its parents lie inside the roots."""
    header = header_of(storage.roots, field, entry)
    name = _VHD_FORMAT[fmt].value
    if fmt is not DiskFormat.RAW and header.format is not fmt:  # raw is raw, whatever its content looks like
        raise InvalidSpec(field, f"{entry.path} is not a {name} image: it holds {_VHD_FORMAT[header.format].value}")
    vhd_type = header.vhd_type if fmt is DiskFormat.VHD else None
    flags = vf.vhdx_flags(storage, field, entry) if fmt is DiskFormat.VHDX else 0
    if vhd_type == VHD_DIFFERENCING or flags & vf.VHDX_HAS_PARENT:
        raise Unsupported(f"{field}: {entry.path} is a Hyper-V differencing disk, which QEMU cannot read")
    fixed = fmt is DiskFormat.RAW or vhd_type == vf.VHD_FIXED or bool(flags & vf.VHDX_FIXED)
    chain = backing_chain(storage.roots, "ParentPath", entry, fmt) if fmt is DiskFormat.QCOW2 else ()
    try:  # after the chain is checked: qemu-img opens nothing unchecked
        found = images.info(entry.path, roots=storage.roots, fmt=fmt)
    except ImageError as exc:
        raise InvalidSpec(field, f"{entry.path} is not a readable {name} image: {exc.message}") from None
    return VirtualHardDisk(
        path=entry.path,
        vhd_format=_VHD_FORMAT[fmt],
        vhd_type=VhdType.DIFFERENCING if chain else VhdType.FIXED if fixed else VhdType.DYNAMIC,
        file_size=entry.size,
        size=found.virtual_size,
        block_size=found.cluster_size or 0,
        parent_path=chain[0].path if chain else None,
        parent_chain=tuple(e.path for e in chain),
        info=found,
    )


def _renamed(disk: VirtualHardDisk, path: Path) -> VirtualHardDisk:
    """``disk``, read under its temporary name, as it is once linked into place at ``path``."""
    info = None if disk.info is None else dataclasses.replace(disk.info, path=path)
    return dataclasses.replace(disk, path=path, info=info)


def _format(disk: VirtualHardDisk) -> DiskFormat:
    assert disk.info is not None  # read from a file, not predicted
    return disk.info.format


def _again(storage: HostStorage, entry: Entry) -> Entry:
    return storage.roots.lookup("Path", entry.path)


def _new_type(fixed: object, dynamic: object, differencing: object) -> VhdType:
    for field, value in (("Fixed", fixed), ("Dynamic", dynamic), ("Differencing", differencing)):
        check_flag(field, value)
    if fixed and differencing:
        raise InvalidSpec("Differencing", "New-VHD makes one kind of disk: Fixed, Dynamic or Differencing")
    if not (fixed or dynamic or differencing):
        raise InvalidSpec("Dynamic", "give one of Fixed, Dynamic or Differencing")
    return VhdType.FIXED if fixed else VhdType.DIFFERENCING if differencing else VhdType.DYNAMIC


def _converted_type(source: VhdType, asked: object, fmt: DiskFormat) -> VhdType:
    if asked is None:
        if fmt is DiskFormat.RAW:
            return VhdType.FIXED
        return VhdType.DYNAMIC if fmt is DiskFormat.QCOW2 or source is VhdType.DIFFERENCING else source
    kind = next((t for t in VhdType if isinstance(asked, str) and t.value.lower() == asked.lower()), None)
    if kind is None:
        raise InvalidSpec("VHDType", f"{shown(asked)} is not a disk type; use Fixed or Dynamic")
    if kind is VhdType.DIFFERENCING:
        raise Unsupported("VHDType: a converted disk holds its parents' data; make a differencing disk with new_vhd")
    if (fmt, kind) in ((DiskFormat.QCOW2, VhdType.FIXED), (DiskFormat.RAW, VhdType.DYNAMIC)):
        raise Unsupported(f"VHDType: a {fmt.value} disk cannot be {kind.value}; use .vhdx or .vhd for either kind")
    return kind
