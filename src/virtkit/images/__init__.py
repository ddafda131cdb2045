"""Disk images through ``qemu-img``: create, inspect, resize, convert, compare and remove.

Every function takes ``roots``, the storage roots: a path outside them, or one that resolves outside them through a
symlink, is refused with :class:`~virtkit.errors.InvalidSpec` before anything is touched, and so is a backing chain
that leaves them (see :mod:`virtkit.images.chain`). ``roots`` is a list of directories on this machine, or the
:class:`~virtkit.storage.StorageRoots` of a host (``host.storage.roots``), which also names the machine: then
qemu-img runs on the host where the VM runs, over SSH when it was connected with ``ssh=``. ``tool`` names the
machine for a plain list (a :class:`~virtkit.backends.base.files.HostFiles`; this machine by default).

Facts measured with qemu-img 7.2 and libvirt 9.0 (Debian 12), which this module relies on:

- VHD is QEMU's ``vpc`` format. libvirt 9.0 cannot attach VHDX ("unknown driver format value 'vhdx'"): convert it
  to qcow2 (or vhd) first.
- ``qemu-img create -f vpc`` rounds the size up to a whole CHS geometry: 1 GiB gives 1,073,995,776 bytes
  (+248 KiB), 100 MiB gives 104,865,792 (+8 KiB), 1 MiB gives 1,079,296, one byte gives 34,816; the excess is
  always less than one cylinder of 16 heads x 255 sectors (2,088,960 bytes). :func:`create` reports the real size
  and ``exist_ok`` accepts that rounding. The largest VHD is 2040 GiB.
- :func:`convert` to vhd passes ``force_size=on`` so the virtual size stays exact: a guest's GPT keeps its backup
  header on the last sector, and a grown disk would move "the last sector".
- qemu-img 7.2 cannot resize vpc or vhdx ("Image format driver does not support resize"): :func:`resize` raises
  :class:`~virtkit.errors.Unsupported` for them.
- A qcow2 image's L1 table holds at most 4 Mi entries (32 MiB), each mapping one L2 table of ``cluster_size / 8``
  clusters (16 bytes an entry with extended L2): with 512-byte clusters an image holds at most 128 GiB, and
  ``qemu-img resize`` beyond that fails ("Failed to grow the L1 table: File too large").
- A qcow2 image that was not closed cleanly (the dirty flag of lazy refcounts) is repaired, in place, whenever it
  is opened for writing: a ``qemu-img resize`` that then fails has still changed it. :func:`resize` refuses such
  an image and a size beyond the image's capacity before qemu-img runs.
- A failed ``qemu-img create`` can leave a partial file behind (an empty one for a vpc above 2040 GiB), so images
  are written under a temporary name in the target directory and linked into place only when complete.
- Without ``fmt``, ``qemu-img info`` guesses the format from the content: a raw disk whose guest wrote a qcow2
  header into it would be read as qcow2, with a backing file of the guest's choosing. Pass ``fmt`` when it is known.
- An image a running QEMU writes to is locked: reading it needs ``-U`` (:func:`info` passes it), and writing or
  removing it is refused with :class:`~virtkit.errors.Conflict`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Literal

from virtkit.backends.base.files import HostFiles
from virtkit.errors import AlreadyExists, Conflict, ImageError, InvalidSpec, NotFound, Unsupported
from virtkit.images.chain import backing_chain, header_of
from virtkit.images.qemu_img import DATA_TIMEOUT, QEMU_FORMAT, QUICK_TIMEOUT, ImageInfo, run
from virtkit.images.qemu_img import info as _info
from virtkit.models.disk import DiskFormat
from virtkit.remote.local import LocalFiles
from virtkit.storage import Entry, Kind, StorageRoots
from virtkit.units import MAX_SIZE, GiB, parse_size
from virtkit.validate import check_flag, check_paths, check_timeout, shown

__all__ = ["ImageInfo", "Preallocation", "compare", "convert", "create", "info", "remove", "resize"]

Preallocation = Literal["off", "metadata", "falloc", "full"]

# Preallocation modes each format takes. For vhd/vhdx "full" is Hyper-V's fixed-size disk (subformat=fixed).
_PREALLOCATION: dict[DiskFormat, frozenset[str]] = {
    DiskFormat.QCOW2: frozenset({"off", "metadata", "falloc", "full"}),
    DiskFormat.RAW: frozenset({"off", "falloc", "full"}),
    DiskFormat.VHD: frozenset({"off", "full"}),
    DiskFormat.VHDX: frozenset({"off", "full"}),
}

_SECTOR = 512
_VHD_MAX = 2040 * GiB
_VHD_CYLINDER = 16 * 255 * _SECTOR  # the most qemu-img's CHS rounding adds to a vpc image
_QCOW2_MAX_L1_ENTRIES = 32 * 1024 * 1024 // 8  # QEMU's QCOW_MAX_L1_SIZE (32 MiB) of 8-byte entries

Roots = Iterable[Path | str] | StorageRoots


def info(
    path: Path | str, *, roots: Roots, fmt: DiskFormat | str | None = None, tool: HostFiles | None = None
) -> ImageInfo:
    """Describe the image at ``path``; works on images in use by a running VM (``qemu-img info -U``).

    :param fmt: the format, if known; otherwise qemu-img guesses it from the content (see the module notes).
    :raises InvalidSpec: bad path or format, or not a regular file (a directory, a FIFO, a device).
    :raises NotFound: no file at ``path``.
    :raises ImageError: qemu-img cannot read it (``fmt`` wrong, damaged image).
    :raises Unsupported: a format other than qcow2, raw, vpc or vhdx.
    """
    storage = storage_roots(roots, tool)
    f = None if fmt is None else check_format("fmt", fmt)
    entry = _image(storage, "path", path)
    return _info("path", entry.path, f, storage.files)


def create(
    path: Path | str,
    size: int | str | None,
    fmt: DiskFormat | str = DiskFormat.QCOW2,
    *,
    roots: Roots,
    backing: Path | str | None = None,
    preallocation: Preallocation | None = None,
    exist_ok: bool = False,
    timeout: float = DATA_TIMEOUT,
    tool: HostFiles | None = None,
) -> ImageInfo:
    """Create an image and return its info; a vhd may come out slightly larger (CHS rounding, module notes).

    :param size: bytes or a size string (``"10GiB"``), a multiple of 512; ``None`` takes the backing file's size.
    :param backing: a qcow2 overlay's backing image (a differencing disk), inside ``roots``.
    :param preallocation: ``off``, ``metadata`` (qcow2), ``falloc`` (qcow2, raw) or ``full``; for vhd/vhdx
        ``full`` makes a fixed-size disk.
    :param exist_ok: an existing image with the same format, size and backing file is returned as it is.
    :raises InvalidSpec: a bad argument (its field is named); nothing was created.
    :raises NotFound: ``backing`` does not exist.
    :raises AlreadyExists: ``path`` exists (and, with ``exist_ok``, differs).
    :raises ImageError: qemu-img failed; no partial image is left.
    :raises OperationTimeout: qemu-img ran longer than ``timeout`` seconds.
    """
    storage = storage_roots(roots, tool)
    f = check_format("fmt", fmt)
    check_flag("exist_ok", exist_ok)
    seconds = check_timeout("timeout", timeout)
    options: list[str] = []
    if preallocation is not None:
        if not isinstance(preallocation, str) or preallocation not in _PREALLOCATION[f]:
            allowed = ", ".join(sorted(_PREALLOCATION[f]))
            raise InvalidSpec("preallocation", f"{shown(preallocation)} is not valid for {f}; use one of {allowed}")
        if backing is not None and preallocation != "off":
            raise InvalidSpec("preallocation", "cannot be combined with a backing file")
        if f in (DiskFormat.VHD, DiskFormat.VHDX):
            options.append("subformat=fixed" if preallocation == "full" else "subformat=dynamic")
        else:
            options.append(f"preallocation={preallocation}")
    if size is None and backing is None:
        raise InvalidSpec("size", "is required unless a backing file is given")
    nbytes = None if size is None else check_size("size", size, f)
    target = storage.new("path", path)
    args = ["create", "-q", "-f", QEMU_FORMAT[f]]
    base: ImageInfo | None = None
    if backing is not None:
        if f is not DiskFormat.QCOW2:
            raise InvalidSpec("backing", f"only qcow2 images can have a backing file, not {f}")
        if storage.lookup("backing", backing).real == target.real:
            raise InvalidSpec("backing", "must not be the image itself")
        below = _image(storage, "backing", backing)
        # The format from the file's own header, never qemu-img's guess: it reads a fixed VHD (raw data and a
        # footer) as raw, and an overlay over it would then expose the footer as the disk's last sector.
        base = _info("backing", below.path, header_of(storage, "backing", below).format, storage.files)
        backing_chain(storage, "backing", below, base.format)
        if nbytes is None:
            nbytes = base.virtual_size
        elif nbytes < base.virtual_size:
            raise InvalidSpec("size", f"is smaller than the backing file ({base.virtual_size} bytes)")
        args += ["-b", str(below.path), "-F", QEMU_FORMAT[base.format]]
    assert nbytes is not None  # set from size or from the backing file above
    if storage.files.stat(target.path, follow_symlinks=False) is not None:
        if not exist_ok:
            raise AlreadyExists(f"{target.path} exists already")
        have = _info("path", _image(storage, "path", path).path, None, storage.files)
        if _matches(have, f, nbytes, base):
            return have
        raise AlreadyExists(
            f"{target.path} exists as {have.format} of {have.virtual_size} bytes"
            f"{f' over {have.backing_file}' if have.backing_file else ''}, not {f} of {nbytes} bytes"
        )
    if options:
        args += ["-o", ",".join(options)]
    with _staged(target, storage.files) as tmp:
        run([*args, str(tmp), str(nbytes)], timeout=seconds, files=storage.files)
        made = _info("path", tmp, f, storage.files)
    return replace(made, path=target.path)


def resize(
    path: Path | str, size: int | str, *, roots: Roots, shrink: bool = False, tool: HostFiles | None = None
) -> ImageInfo:
    """Grow the image at ``path`` to ``size`` bytes (shrink only with ``shrink=True``); the same size is a no-op.

    Shrinking discards everything past the new end: the guest's partitions must have been shrunk first. Every
    check is made before qemu-img runs, so a refused resize leaves the image as it was.

    :raises InvalidSpec: bad path or size, a smaller size without ``shrink=True``, or a size beyond what the image
        can hold (a qcow2 image with small clusters).
    :raises NotFound: no file at ``path``.
    :raises Unsupported: a vhd or vhdx image (qemu-img cannot resize them: convert to qcow2 and back).
    :raises Conflict: a running VM is using the image, or it was not closed cleanly (qemu-img would repair it in
        place first; check it with ``qemu-img check -r all``).
    :raises ImageError: qemu-img failed (e.g. shrinking a qcow2 that has internal snapshots).
    """
    storage = storage_roots(roots, tool)
    check_flag("shrink", shrink)
    entry = _image(storage, "path", path)
    current = _info("path", entry.path, None, storage.files)
    if current.format in (DiskFormat.VHD, DiskFormat.VHDX):
        raise Unsupported(
            f"qemu-img cannot resize {current.format} images; convert {entry.path} to qcow2, resize it, and convert "
            "it back"
        )
    backing_chain(storage, "path", entry, current.format)
    nbytes = check_size("size", size, current.format)
    capacity = _qcow2_capacity(current)
    if capacity is not None and nbytes > capacity:
        raise InvalidSpec(
            "size", f"{entry.path} has {current.cluster_size}-byte clusters: it holds at most {capacity} bytes"
        )
    if nbytes == current.virtual_size:
        return current
    if current.dirty:
        raise Conflict(
            f"{entry.path} was not closed cleanly: qemu-img would repair it in place before resizing it; check and "
            "repair it first (qemu-img check -r all)"
        )
    args = ["resize", "-q", "-f", QEMU_FORMAT[current.format]]
    if nbytes < current.virtual_size:
        if not shrink:
            raise InvalidSpec(
                "size", f"{nbytes} bytes is smaller than the image ({current.virtual_size}); pass shrink=True"
            )
        args.append("--shrink")
    run([*args, str(entry.path), str(nbytes)], timeout=QUICK_TIMEOUT, files=storage.files)
    return _info("path", entry.path, current.format, storage.files)


def convert(
    src: Path | str,
    dst: Path | str,
    fmt: DiskFormat | str,
    *,
    roots: Roots,
    compress: bool = False,
    progress: Callable[[float], None] | None = None,
    timeout: float = DATA_TIMEOUT,
    tool: HostFiles | None = None,
) -> ImageInfo:
    """Copy ``src`` into a new image ``dst`` in format ``fmt`` (a backing chain is flattened) and return its info.

    :param compress: compress the clusters (qcow2 only).
    :param progress: called with the percentage done (0 to 100, ending at 100); raising from it cancels the
        conversion, with nothing left behind.
    :raises InvalidSpec: a bad argument, or a backing chain of ``src`` leaving the storage roots.
    :raises NotFound: ``src`` does not exist.
    :raises AlreadyExists: ``dst`` exists.
    :raises Conflict: a running VM is writing to ``src``.
    :raises ImageError: qemu-img failed; no partial ``dst`` is left.
    :raises OperationTimeout: qemu-img ran longer than ``timeout`` seconds; no partial ``dst`` is left.
    """
    storage = storage_roots(roots, tool)
    f = check_format("fmt", fmt)
    check_flag("compress", compress)
    seconds = check_timeout("timeout", timeout)
    if progress is not None and not callable(progress):
        raise InvalidSpec("progress", f"must be a function of the percentage done, not {shown(progress)}")
    if compress and f is not DiskFormat.QCOW2:
        raise InvalidSpec("compress", f"only qcow2 images can be compressed, not {f}")
    source = _image(storage, "src", src)
    target = storage.new("dst", dst)
    if source.real == target.real:
        raise InvalidSpec("dst", "must differ from src")
    if storage.files.stat(target.path, follow_symlinks=False) is not None:
        raise AlreadyExists(f"{target.path} exists already")
    image = _info("src", source.path, None, storage.files)
    backing_chain(storage, "src", source, image.format)
    args = ["convert", "-f", QEMU_FORMAT[image.format], "-O", QEMU_FORMAT[f]]
    if f is DiskFormat.VHD:
        args += ["-o", "force_size=on"]
    if compress:
        args.append("-c")
    with _staged(target, storage.files) as tmp:
        run(
            [*args, "-p" if progress else "-q", str(source.path), str(tmp)],
            timeout=seconds,
            progress=progress,
            files=storage.files,
        )
        made = _info("dst", tmp, f, storage.files)
    return replace(made, path=target.path)


def remove(path: Path | str, *, roots: Roots, tool: HostFiles | None = None) -> bool:
    """Delete the image at ``path``; ``True`` if it was removed, ``False`` if there was nothing there.

    An image a running QEMU writes to is refused. A file a VM only reads (the backing file of its overlay) is not
    locked against removal: removing it is the caller's decision. A symlink is removed itself (never its target),
    and only when it points inside the roots.

    :raises InvalidSpec: bad path, or something that is not a regular file (a directory, a device, a FIFO).
    :raises Conflict: a running VM is using the image.
    """
    storage = storage_roots(roots, tool)
    entry = storage.lookup("path", path)
    if storage.files.stat(entry.path, follow_symlinks=False) is None:
        return False
    if entry.kind not in (None, Kind.FILE):
        raise InvalidSpec("path", f"{entry.path} is a {entry.kind.value}, not an image file")
    if entry.kind is Kind.FILE:
        # Without -U, qemu-img cannot open an image a running QEMU holds for writing: that raises Conflict. Any
        # other failure means it is no readable image, which is still a file we may delete.
        with suppress(ImageError):
            run(["info", "--output=json", str(entry.path)], timeout=QUICK_TIMEOUT, files=storage.files)
    return storage.files.unlink(entry.path)


def compare(
    a: Path | str,
    b: Path | str,
    *,
    roots: Roots,
    timeout: float = DATA_TIMEOUT,
    tool: HostFiles | None = None,
) -> bool:
    """``True`` if the guest sees the same content in ``a`` and ``b`` (formats and sizes may differ).

    The bytes past the end of the smaller image must be zero in the larger one (``qemu-img compare``'s rule).

    :raises InvalidSpec: bad paths, or a backing chain leaving the storage roots.
    :raises NotFound: either image does not exist.
    :raises Conflict: a running VM is writing to either image.
    :raises ImageError: qemu-img could not read them.
    :raises OperationTimeout: qemu-img ran longer than ``timeout`` seconds.
    """
    storage = storage_roots(roots, tool)
    seconds = check_timeout("timeout", timeout)
    found: list[tuple[Path, ImageInfo]] = []
    for field, value in (("a", a), ("b", b)):
        entry = _image(storage, field, value)
        image = _info(field, entry.path, None, storage.files)
        backing_chain(storage, field, entry, image.format)
        found.append((entry.path, image))
    (pa, ia), (pb, ib) = found
    args = ["compare", "-q", "-f", QEMU_FORMAT[ia.format], "-F", QEMU_FORMAT[ib.format], str(pa), str(pb)]
    return run(args, timeout=seconds, ok=(0, 1), files=storage.files)[0] == 0


# -- checks shared with the operations layer ---------------------------------------------------------------------


def storage_roots(roots: Roots, tool: HostFiles | None = None) -> StorageRoots:
    """``roots`` as :class:`StorageRoots` on the machine ``tool`` reaches (this one by default).

    :raises InvalidSpec: (field ``roots``) a single path, or something that is not a list of absolute paths;
        (field ``tool``) something that is not a :class:`HostFiles`.
    """
    if isinstance(roots, StorageRoots):
        if tool is not None and tool is not roots.files:
            raise InvalidSpec("tool", "give either StorageRoots (which name their machine) or a tool, not both")
        return roots
    if tool is None:
        tool = LocalFiles()
    elif not all(callable(getattr(tool, method, None)) for method in ("run", "stat", "read", "resolve", "unlink")):
        raise InvalidSpec("tool", f"must be a HostFiles (this machine's or a host's files), not {type(tool).__name__}")
    return StorageRoots(tool, check_paths("roots", roots))


def check_format(field: str, value: object) -> DiskFormat:
    """``value`` as a :class:`DiskFormat`.

    :raises InvalidSpec: not one.
    """
    if isinstance(value, DiskFormat):
        return value
    if isinstance(value, str) and value in DiskFormat.__members__.values():
        return DiskFormat(value)
    choices = ", ".join(f.value for f in DiskFormat)
    raise InvalidSpec(field, f"{shown(value)} is not a disk format; use one of {choices}")


def check_size(field: str, value: object, fmt: DiskFormat) -> int:
    """``value`` in bytes, a whole number of sectors within what ``fmt`` can hold.

    :raises InvalidSpec: not such a size.
    """
    size = parse_size(field, value, maximum=_VHD_MAX if fmt is DiskFormat.VHD else MAX_SIZE)
    if size % _SECTOR:
        raise InvalidSpec(field, f"{size} bytes is not a whole number of 512-byte sectors")
    return size


def _qcow2_capacity(image: ImageInfo) -> int | None:
    """The largest virtual size a qcow2 image can grow to with its cluster size (see the module notes)."""
    if image.format is not DiskFormat.QCOW2 or not image.cluster_size:
        return None
    entries_per_l2 = image.cluster_size // (16 if image.extended_l2 else 8)
    return _QCOW2_MAX_L1_ENTRIES * entries_per_l2 * image.cluster_size


def _image(storage: StorageRoots, field: str, value: object) -> Entry:
    """The existing image file at ``value``.

    :raises InvalidSpec: as :meth:`StorageRoots.lookup`, or not a regular file.
    :raises NotFound: nothing there.
    """
    entry = storage.lookup(field, value)
    if entry.kind is None:
        raise NotFound(f"{field}: no image at {entry.path}")
    if entry.kind is not Kind.FILE:
        raise InvalidSpec(field, f"{entry.path} is a {entry.kind.value}, not an image file")
    return entry


def _matches(have: ImageInfo, fmt: DiskFormat, size: int, base: ImageInfo | None) -> bool:
    if have.format is not fmt or have.backing_file != (None if base is None else base.path):
        return False
    if fmt is DiskFormat.VHD:  # qemu-img rounded it up to a CHS geometry
        return size <= have.virtual_size < size + _VHD_CYLINDER
    return have.virtual_size == size


@contextmanager
def _staged(target: Entry, files: HostFiles) -> Iterator[Path]:
    """A temporary name next to ``target`` (in its real directory, checked inside the roots); on success it is
    linked to the target's name (never over something there), always cleaned up."""
    tmp = target.real.parent / f".{target.path.name[:200]}.{secrets.token_hex(6)}.part"
    try:
        yield tmp
        try:
            files.link(tmp, target.real)
        except FileExistsError:
            raise AlreadyExists(f"{target.path} appeared while it was being written") from None
    finally:
        files.unlink(tmp)
