"""Disk images through ``qemu-img``: create, inspect, resize, convert, compare and remove.

Every function takes ``roots``, the storage roots (real, resolved directories): a path outside them, or one that
resolves outside them through a symlink, is refused with :class:`~virtkit.errors.InvalidSpec` before anything is
touched. Every function also takes ``tool``, the machine whose files these are and where qemu-img runs (a
:class:`~virtkit.image_tool.ImageTool`): this machine by default, or a :class:`~virtkit.remote.RemoteHost` to work
on the host where a VM runs, over SSH; the checks and the commands are the same either way. ``qemu-img`` has no
``--`` separator, so only absolute paths reach it (they can never start with ``-``), and it always runs from an
argument list with a timeout.

Facts measured with qemu-img 7.2 and libvirt 9.0 (Debian 12), which this module relies on:

- VHD is QEMU's ``vpc`` format; a VHD attaches to a libvirt domain as driver type ``vpc``.
- libvirt 9.0 cannot attach VHDX ("unknown driver format value 'vhdx'"): convert it to qcow2 (or vhd) first.
  :func:`attachable_format` gives the libvirt driver type, or ``None`` for vhdx.
- ``qemu-img create -f vpc`` rounds the size up to a whole CHS geometry: 1 GiB gives 1,073,995,776 bytes
  (+248 KiB), 100 MiB gives 104,865,792 (+8 KiB), 1 MiB gives 1,079,296, one byte gives 34,816; the excess is
  always less than one cylinder of 16 heads x 255 sectors (2,088,960 bytes). :func:`create` reports the real size
  and ``exist_ok`` accepts that rounding. The largest VHD is 2040 GiB.
- :func:`convert` to vhd passes ``force_size=on`` so the virtual size stays exact: a guest's GPT keeps its backup
  header on the last sector, and a grown disk would move "the last sector".
- qemu-img 7.2 cannot resize vpc or vhdx ("Image format driver does not support resize"): :func:`resize` raises
  :class:`~virtkit.errors.Unsupported` for them.
- A failed ``qemu-img create`` can leave a partial file behind (an empty one for a vpc above 2040 GiB), so images
  are written under a temporary name in the target directory and linked into place only when complete.
- Without ``fmt``, ``qemu-img info`` guesses the format from the content: a raw disk whose guest wrote a qcow2
  header into it would be read as qcow2, with a backing file of the guest's choosing. Pass ``fmt`` when it is
  known; :func:`convert` and :func:`compare` also refuse backing chains that leave the storage roots.
- An image a running QEMU writes to is locked: reading it needs ``-U`` (:func:`info` passes it), and writing or
  removing it is refused with :class:`~virtkit.errors.Conflict`.
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from virtkit.errors import AlreadyExists, Conflict, ImageError, InvalidSpec, NotFound, Unsupported
from virtkit.image_tool import NOT_FOUND, ImageTool, LocalImageTool
from virtkit.models.disk import DiskFormat
from virtkit.units import MAX_SIZE, GiB, parse_size
from virtkit.validate import check_path

__all__ = [
    "ImageInfo",
    "Preallocation",
    "attachable_format",
    "compare",
    "convert",
    "create",
    "info",
    "remove",
    "resize",
]

Preallocation = Literal["off", "metadata", "falloc", "full"]

_DATA_TIMEOUT = 3600.0  # seconds, for runs that may move data: create (preallocation), convert, compare
_QUICK_TIMEOUT = 60.0  # info, resize and the lock probe touch metadata only

# DiskFormat -> qemu-img's format name, and back. VHD is "vpc" to QEMU.
_QEMU_FORMAT = {DiskFormat.QCOW2: "qcow2", DiskFormat.RAW: "raw", DiskFormat.VHD: "vpc", DiskFormat.VHDX: "vhdx"}
_FROM_QEMU: dict[str, DiskFormat] = {name: fmt for fmt, name in _QEMU_FORMAT.items()}

# DiskFormat -> libvirt <driver type='...'>. libvirt 9.0 has no vhdx driver type: None means "convert first".
_LIBVIRT_DRIVER = {DiskFormat.QCOW2: "qcow2", DiskFormat.RAW: "raw", DiskFormat.VHD: "vpc", DiskFormat.VHDX: None}

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
_MAX_CHAIN = 32
_LOCKED = re.compile(r'Failed to get (?:shared )?"\w+" lock')
_PROGRESS = re.compile(rb"\((\d+(?:\.\d+)?)/100%\)")
_LOCAL = LocalImageTool()


@dataclass(frozen=True)
class ImageInfo:
    """What ``qemu-img info`` says about one image.

    ``actual_size`` is the space allocated on disk; ``dirty`` is qemu-img's flag for an image not closed cleanly;
    ``corrupt`` is reported by qcow2 only (``None`` otherwise); ``cluster_size`` is ``None`` for raw.
    """

    path: Path
    format: DiskFormat
    virtual_size: int
    actual_size: int
    backing_file: Path | None = None
    backing_format: DiskFormat | None = None
    dirty: bool = False
    corrupt: bool | None = None
    cluster_size: int | None = None


def attachable_format(fmt: DiskFormat | str) -> str | None:
    """The libvirt disk driver type for ``fmt`` (``qcow2``, ``raw``, ``vpc``), or ``None`` for vhdx.

    :raises InvalidSpec: ``fmt`` is not a :class:`DiskFormat`.
    """
    return _LIBVIRT_DRIVER[_check_fmt("fmt", fmt)]


def info(
    path: Path | str, *, roots: Iterable[Path], fmt: DiskFormat | str | None = None, tool: ImageTool | None = None
) -> ImageInfo:
    """Describe the image at ``path``; works on images in use by a running VM (``qemu-img info -U``).

    :param fmt: the format, if known; otherwise qemu-img guesses it from the content (see the module notes).
    :raises InvalidSpec: bad path or format.
    :raises NotFound: no file at ``path``.
    :raises ImageError: qemu-img cannot read it (``fmt`` wrong, damaged image, not a regular file).
    :raises Unsupported: a format other than qcow2, raw, vpc or vhdx.
    """
    t = tool or _LOCAL
    p = _path("path", path, _roots(roots), t)
    return _info("path", p, None if fmt is None else _check_fmt("fmt", fmt), t)


def create(
    path: Path | str,
    size: int | str | None,
    fmt: DiskFormat | str = DiskFormat.QCOW2,
    *,
    roots: Iterable[Path],
    backing: Path | str | None = None,
    preallocation: Preallocation | None = None,
    exist_ok: bool = False,
    timeout: float = _DATA_TIMEOUT,
    tool: ImageTool | None = None,
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
    t = tool or _LOCAL
    root_list = _roots(roots)
    p = _path("path", path, root_list, t)
    f = _check_fmt("fmt", fmt)
    options: list[str] = []
    if preallocation is not None:
        if preallocation not in _PREALLOCATION[f]:
            allowed = ", ".join(sorted(_PREALLOCATION[f]))
            raise InvalidSpec("preallocation", f"{preallocation!r} is not valid for {f}; use one of {allowed}")
        if backing is not None and preallocation != "off":
            raise InvalidSpec("preallocation", "cannot be combined with a backing file")
        if f in (DiskFormat.VHD, DiskFormat.VHDX):
            options.append("subformat=fixed" if preallocation == "full" else "subformat=dynamic")
        else:
            options.append(f"preallocation={preallocation}")
    if size is None and backing is None:
        raise InvalidSpec("size", "is required unless a backing file is given")
    nbytes = None if size is None else _check_size("size", size, f)
    if not _is_dir(t, p.parent):
        raise InvalidSpec("path", f"the directory {p.parent} does not exist")
    args = ["create", "-q", "-f", _QEMU_FORMAT[f]]
    base: ImageInfo | None = None
    if backing is not None:
        if f is not DiskFormat.QCOW2:
            raise InvalidSpec("backing", f"only qcow2 images can have a backing file, not {f}")
        b = _path("backing", backing, root_list, t)
        if b == p:
            raise InvalidSpec("backing", "must not be the image itself")
        base = _info("backing", b, None, t)
        _check_chain("backing", base, root_list, t)
        if nbytes is None:
            nbytes = base.virtual_size
        elif nbytes < base.virtual_size:
            raise InvalidSpec("size", f"is smaller than the backing file ({base.virtual_size} bytes)")
        args += ["-b", str(b), "-F", _QEMU_FORMAT[base.format]]
    assert nbytes is not None  # set from size or from the backing file above
    if _lexists(t, p):
        if not exist_ok:
            raise AlreadyExists(f"{p} exists already")
        have = _info("path", p, None, t)
        if _matches(have, f, nbytes, base):
            return have
        raise AlreadyExists(
            f"{p} exists as {have.format} of {have.virtual_size} bytes"
            f"{f' over {have.backing_file}' if have.backing_file else ''}, not {f} of {nbytes} bytes"
        )
    if options:
        args += ["-o", ",".join(options)]
    with _staged(p, t) as tmp:
        _run([*args, str(tmp), str(nbytes)], timeout=timeout, tool=t)
        made = _info("path", tmp, f, t)
    return replace(made, path=p)


def resize(
    path: Path | str, size: int | str, *, roots: Iterable[Path], shrink: bool = False, tool: ImageTool | None = None
) -> ImageInfo:
    """Grow the image at ``path`` to ``size`` bytes (shrink only with ``shrink=True``); the same size is a no-op.

    Shrinking discards everything past the new end: the guest's partitions must have been shrunk first.

    :raises InvalidSpec: bad path or size, or a smaller size without ``shrink=True``.
    :raises NotFound: no file at ``path``.
    :raises Unsupported: a vhd or vhdx image (qemu-img cannot resize them: convert to qcow2 and back).
    :raises Conflict: a running VM is using the image.
    :raises ImageError: qemu-img failed (e.g. shrinking a qcow2 that has internal snapshots).
    """
    t = tool or _LOCAL
    p = _path("path", path, _roots(roots), t)
    current = _info("path", p, None, t)
    if current.format in (DiskFormat.VHD, DiskFormat.VHDX):
        raise Unsupported(
            f"qemu-img cannot resize {current.format} images; convert {p} to qcow2, resize it, and convert it back"
        )
    nbytes = _check_size("size", size, current.format)
    if nbytes == current.virtual_size:
        return current
    args = ["resize", "-q", "-f", _QEMU_FORMAT[current.format]]
    if nbytes < current.virtual_size:
        if not shrink:
            raise InvalidSpec(
                "size", f"{nbytes} bytes is smaller than the image ({current.virtual_size}); pass shrink=True"
            )
        args.append("--shrink")
    _run([*args, str(p), str(nbytes)], timeout=_QUICK_TIMEOUT, tool=t)
    return _info("path", p, current.format, t)


def convert(
    src: Path | str,
    dst: Path | str,
    fmt: DiskFormat | str,
    *,
    roots: Iterable[Path],
    compress: bool = False,
    progress: Callable[[float], None] | None = None,
    timeout: float = _DATA_TIMEOUT,
    tool: ImageTool | None = None,
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
    t = tool or _LOCAL
    root_list = _roots(roots)
    s = _path("src", src, root_list, t)
    d = _path("dst", dst, root_list, t)
    f = _check_fmt("fmt", fmt)
    if compress and f is not DiskFormat.QCOW2:
        raise InvalidSpec("compress", f"only qcow2 images can be compressed, not {f}")
    if s == d:
        raise InvalidSpec("dst", "must differ from src")
    if not _is_dir(t, d.parent):
        raise InvalidSpec("dst", f"the directory {d.parent} does not exist")
    if _lexists(t, d):
        raise AlreadyExists(f"{d} exists already")
    source = _info("src", s, None, t)
    _check_chain("src", source, root_list, t)
    args = ["convert", "-f", _QEMU_FORMAT[source.format], "-O", _QEMU_FORMAT[f]]
    if f is DiskFormat.VHD:
        args += ["-o", "force_size=on"]
    if compress:
        args.append("-c")
    with _staged(d, t) as tmp:
        _run([*args, "-p" if progress else "-q", str(s), str(tmp)], timeout=timeout, progress=progress, tool=t)
        made = _info("dst", tmp, f, t)
    return replace(made, path=d)


def remove(path: Path | str, *, roots: Iterable[Path], tool: ImageTool | None = None) -> bool:
    """Delete the image at ``path``; ``True`` if it was removed, ``False`` if there was nothing there.

    An image a running QEMU writes to is refused. A file a VM only reads (the backing file of its overlay) is not
    locked against removal: removing it is the caller's decision.

    :raises InvalidSpec: bad path, or a directory.
    :raises Conflict: a running VM is using the image.
    """
    t = tool or _LOCAL
    p = _path("path", path, _roots(roots), t)
    own = t.mode(p, follow_symlinks=False)
    if own is None:
        return False
    if stat.S_ISDIR(own):
        raise InvalidSpec("path", f"{p} is a directory, not an image")
    target = own if not stat.S_ISLNK(own) else t.mode(p)
    if target is not None and stat.S_ISREG(target):
        # Without -U, qemu-img cannot open an image a running QEMU holds for writing: that raises Conflict. Any
        # other failure means it is no readable image, which is still a file we may delete.
        with suppress(ImageError):
            _run(["info", "--output=json", str(p)], timeout=_QUICK_TIMEOUT, tool=t)
    return t.unlink(p)


def compare(
    a: Path | str,
    b: Path | str,
    *,
    roots: Iterable[Path],
    timeout: float = _DATA_TIMEOUT,
    tool: ImageTool | None = None,
) -> bool:
    """``True`` if the guest sees the same content in ``a`` and ``b`` (formats and sizes may differ).

    The bytes past the end of the smaller image must be zero in the larger one (``qemu-img compare``'s rule).

    :raises InvalidSpec: bad paths, or a backing chain leaving the storage roots.
    :raises NotFound: either image does not exist.
    :raises Conflict: a running VM is writing to either image.
    :raises ImageError: qemu-img could not read them.
    :raises OperationTimeout: qemu-img ran longer than ``timeout`` seconds.
    """
    t = tool or _LOCAL
    root_list = _roots(roots)
    found: list[tuple[Path, ImageInfo]] = []
    for field, value in (("a", a), ("b", b)):
        p = _path(field, value, root_list, t)
        image = _info(field, p, None, t)
        _check_chain(field, image, root_list, t)
        found.append((p, image))
    (pa, ia), (pb, ib) = found
    args = ["compare", "-q", "-f", _QEMU_FORMAT[ia.format], "-F", _QEMU_FORMAT[ib.format], str(pa), str(pb)]
    return _run(args, timeout=timeout, ok=(0, 1), tool=t)[0] == 0


# -- helpers -------------------------------------------------------------------------------------------------------


def _roots(roots: Iterable[Path]) -> list[Path]:
    if isinstance(roots, str | bytes | Path):
        raise InvalidSpec("roots", "must be a list of directories, not a single path")
    return [Path(r) for r in roots]


def _path(field: str, value: object, roots: list[Path], tool: ImageTool) -> Path:
    """check_path, then the same check on the path with its symlinks resolved (on the tool's machine)."""
    p = check_path(field, value, roots)
    real = tool.resolve(p)
    if real != p and not any(real.is_relative_to(tool.resolve(r)) for r in roots):
        raise InvalidSpec(field, f"{str(p)!r} resolves to {str(real)!r}, outside the storage roots")
    return p


def _lexists(tool: ImageTool, path: Path) -> bool:
    return tool.mode(path, follow_symlinks=False) is not None


def _is_dir(tool: ImageTool, path: Path) -> bool:
    mode = tool.mode(path)
    return mode is not None and stat.S_ISDIR(mode)


def _check_fmt(field: str, value: object) -> DiskFormat:
    if isinstance(value, DiskFormat):
        return value
    if isinstance(value, str) and value in DiskFormat.__members__.values():
        return DiskFormat(value)
    choices = ", ".join(f.value for f in DiskFormat)
    raise InvalidSpec(field, f"{value!r} is not a disk format; use one of {choices}")


def _check_size(field: str, value: object, fmt: DiskFormat) -> int:
    size = parse_size(field, value, maximum=_VHD_MAX if fmt is DiskFormat.VHD else MAX_SIZE)
    if size % _SECTOR:
        raise InvalidSpec(field, f"{size} bytes is not a whole number of 512-byte sectors")
    return size


def _matches(have: ImageInfo, fmt: DiskFormat, size: int, base: ImageInfo | None) -> bool:
    if have.format is not fmt or have.backing_file != (None if base is None else base.path):
        return False
    if fmt is DiskFormat.VHD:  # qemu-img rounded it up to a CHS geometry
        return size <= have.virtual_size < size + _VHD_CYLINDER
    return have.virtual_size == size


def _check_chain(field: str, image: ImageInfo, roots: list[Path], tool: ImageTool) -> None:
    """Refuse a backing chain that leaves the storage roots (qemu-img would read it)."""
    for _ in range(_MAX_CHAIN):
        if image.backing_file is None:
            return
        try:
            parent = _path(field, image.backing_file, roots, tool)
        except InvalidSpec as exc:
            raise InvalidSpec(field, f"backing file of {image.path}: {exc.reason}") from exc
        if tool.mode(parent) is None:
            return  # qemu-img reports the missing backing file itself
        image = _info(field, parent, image.backing_format, tool)
    raise InvalidSpec(field, f"the backing chain of {image.path} is longer than {_MAX_CHAIN} images")


def _info(field: str, path: Path, fmt: DiskFormat | None, tool: ImageTool) -> ImageInfo:
    if tool.mode(path) is None:
        raise NotFound(f"{field}: no image at {path}")
    args = ["info", "-U", "--output=json"]
    if fmt is not None:
        args += ["-f", _QEMU_FORMAT[fmt]]
    _, out = _run([*args, str(path)], timeout=_QUICK_TIMEOUT, tool=tool)
    try:
        data = json.loads(out)
        return _parse_info(path, data)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ImageError(f"cannot understand qemu-img info for {path}: {exc}") from exc


def _parse_info(path: Path, data: dict[str, Any]) -> ImageInfo:
    backing = data.get("full-backing-filename") or data.get("backing-filename")
    backing_fmt = data.get("backing-filename-format")
    specific = data.get("format-specific", {}).get("data", {})
    corrupt = specific.get("corrupt")
    cluster = data.get("cluster-size")
    return ImageInfo(
        path=path,
        format=_from_qemu(str(data["format"])),
        virtual_size=int(data["virtual-size"]),
        actual_size=int(data.get("actual-size", 0)),
        backing_file=Path(backing) if backing else None,
        backing_format=_from_qemu(str(backing_fmt)) if backing_fmt else None,
        dirty=bool(data.get("dirty-flag", False)),
        corrupt=None if corrupt is None else bool(corrupt),
        cluster_size=None if cluster is None else int(cluster),
    )


def _from_qemu(name: str) -> DiskFormat:
    try:
        return _FROM_QEMU[name]
    except KeyError:
        raise Unsupported(f"qemu format {name!r} is not handled by virtkit; convert it to qcow2 first") from None


@contextmanager
def _staged(dst: Path, tool: ImageTool) -> Iterator[Path]:
    """A temporary name next to ``dst``; on success it is moved to ``dst`` (never over it), always cleaned up."""
    tmp = dst.with_name(f".{dst.name[:200]}.{secrets.token_hex(6)}.part")
    try:
        yield tmp
        try:
            tool.link(tmp, dst)
        except FileExistsError:
            raise AlreadyExists(f"{dst} appeared while it was being written") from None
    finally:
        tool.unlink(tmp)


def _run(
    args: list[str],
    *,
    timeout: float,
    tool: ImageTool,
    ok: tuple[int, ...] = (0,),
    progress: Callable[[float], None] | None = None,
) -> tuple[int, str]:
    """Run qemu-img through ``tool`` and return its exit code and output; with ``progress``, pass on each
    "(12.50/100%)" it prints.

    An exit code outside ``ok`` becomes Conflict (image locked) or ImageError; past ``timeout`` it is killed
    (OperationTimeout).
    """
    cmd = ["qemu-img", *args]
    out, seen, last = bytearray(), 0, -1.0

    def feed(chunk: bytes) -> None:
        nonlocal seen, last
        assert progress is not None
        out.extend(chunk)
        while match := _PROGRESS.search(out, seen):
            seen, percent = match.end(), min(float(match[1]), 100.0)
            if percent != last:
                last = percent
                progress(percent)

    done = tool.run(cmd, timeout=timeout, on_stdout=feed if progress is not None else None)
    if done.returncode == NOT_FOUND and done.returncode not in ok:
        raise ImageError(f"qemu-img is not installed on {tool.where} (Debian package qemu-utils)")
    if done.returncode not in ok:
        raise _failure(cmd, done.returncode, done.stderr)
    if progress is not None and last < 100.0:
        progress(100.0)
    return done.returncode, done.stdout


def _failure(cmd: list[str], code: int, stderr: str) -> Conflict | ImageError:
    detail = stderr.strip() or "(no message)"
    where = f"(exit code {code}, command: {shlex.join(cmd)})"
    if _LOCKED.search(stderr):
        return Conflict(f"the image is in use by another process: {detail} {where}")
    return ImageError(f"qemu-img {cmd[1]} failed: {detail} {where}")
