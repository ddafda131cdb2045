"""Running ``qemu-img`` on a machine and reading what it says: the one place that builds its command lines.

``qemu-img`` has no ``--`` separator, so only absolute paths reach it (they can never start with ``-``), and it always
runs from an argument list with a timeout, through a :class:`~virtkit.backends.base.files.HostFiles`.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from virtkit.backends.base.files import NOT_FOUND, HostFiles
from virtkit.errors import Conflict, ImageError, NotFound, Unsupported
from virtkit.models.disk import DiskFormat

__all__ = ["DATA_TIMEOUT", "QEMU_FORMAT", "QUICK_TIMEOUT", "ImageInfo", "info", "run"]

DATA_TIMEOUT = 3600.0  # seconds, for runs that may move data: create (preallocation), convert, compare
QUICK_TIMEOUT = 60.0  # info, resize and the lock probe touch metadata only

#: DiskFormat -> qemu-img's format name. VHD is "vpc" to QEMU.
QEMU_FORMAT = {DiskFormat.QCOW2: "qcow2", DiskFormat.RAW: "raw", DiskFormat.VHD: "vpc", DiskFormat.VHDX: "vhdx"}
_FROM_QEMU: dict[str, DiskFormat] = {name: fmt for fmt, name in QEMU_FORMAT.items()}

_LOCKED = re.compile(r'Failed to get (?:shared )?"\w+" lock')
_PROGRESS = re.compile(rb"\((\d+(?:\.\d+)?)/100%\)")


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    """What ``qemu-img info`` says about one image.

    ``actual_size`` is the space allocated on disk; ``dirty`` is qemu-img's flag for an image not closed cleanly;
    ``corrupt`` is reported by qcow2 only (``None`` otherwise); ``cluster_size`` is ``None`` for raw;
    ``extended_l2`` is a qcow2 image's subcluster allocation (its L2 entries are twice as large).
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
    extended_l2: bool = False


def info(field: str, path: Path, fmt: DiskFormat | None, files: HostFiles) -> ImageInfo:
    """``qemu-img info -U`` of ``path`` (a path already checked), as :class:`ImageInfo`.

    :raises NotFound: nothing at ``path``.
    :raises ImageError: qemu-img cannot read it, or says something virtkit cannot understand.
    :raises Unsupported: a format other than qcow2, raw, vpc or vhdx.
    """
    if files.stat(path) is None:
        raise NotFound(f"{field}: no image at {path}")
    args = ["info", "-U", "--output=json"]
    if fmt is not None:
        args += ["-f", QEMU_FORMAT[fmt]]
    _, out = run([*args, str(path)], timeout=QUICK_TIMEOUT, files=files)
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
        format=from_qemu(str(data["format"])),
        virtual_size=int(data["virtual-size"]),
        actual_size=int(data.get("actual-size", 0)),
        backing_file=Path(backing) if backing else None,
        backing_format=from_qemu(str(backing_fmt)) if backing_fmt else None,
        dirty=bool(data.get("dirty-flag", False)),
        corrupt=None if corrupt is None else bool(corrupt),
        cluster_size=None if cluster is None else int(cluster),
        extended_l2=bool(specific.get("extended-l2", False)),
    )


def from_qemu(name: str) -> DiskFormat:
    """The :class:`DiskFormat` of qemu-img's format name.

    :raises Unsupported: a format virtkit does not handle.
    """
    try:
        return _FROM_QEMU[name]
    except KeyError:
        shown = name[:40]
        raise Unsupported(f"qemu format {shown!r} is not handled by virtkit; convert it to qcow2 first") from None


def run(
    args: list[str],
    *,
    timeout: float,
    files: HostFiles,
    ok: tuple[int, ...] = (0,),
    progress: Callable[[float], None] | None = None,
) -> tuple[int, str]:
    """Run qemu-img through ``files`` and return its exit code and output; with ``progress``, pass on each
    "(12.50/100%)" it prints.

    :raises Conflict: an exit code outside ``ok`` because the image is locked by a running VM.
    :raises ImageError: any other exit code outside ``ok``.
    :raises OperationTimeout: it ran past ``timeout`` seconds and was killed.
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

    done = files.run(cmd, timeout=timeout, on_stdout=feed if progress is not None else None)
    if done.returncode == NOT_FOUND and done.returncode not in ok:
        raise ImageError(f"qemu-img is not installed on {files.where} (Debian package qemu-utils)")
    if done.returncode not in ok:
        raise _failure(cmd, done.returncode, done.stderr)
    if progress is not None and last < 100.0:
        progress(100.0)
    return done.returncode, done.stdout


def _failure(cmd: list[str], code: int, stderr: str) -> Conflict | ImageError:
    detail = stderr.strip()[:2000] or "(no message)"
    where = f"(exit code {code}, command: {shlex.join(cmd)})"
    if _LOCKED.search(stderr):
        return Conflict(f"the image is in use by another process: {detail} {where}")
    return ImageError(f"qemu-img {cmd[1]} failed: {detail} {where}")
