"""The ``image`` task: a disk image (qcow2, raw, VHD, VHDX) present, grown, converted from another, or absent."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from virtkit import images
from virtkit.errors import ImageError, InvalidSpec, NotFound
from virtkit.models.disk import DiskFormat
from virtkit.playbook.tasks.common import Params, chosen, given, opened, plain, renamed, required
from virtkit.units import parse_size

__all__ = ["STATES", "image"]

#: What ``state`` may say.
STATES = ("present", "absent")


def image(params: Params, *, check: bool = False, diff: bool = False) -> dict[str, Any]:
    """The image at ``path``: ``present`` makes it when missing (``size`` bytes of ``format``, on ``backing``, or a
    copy of ``source`` converted to ``format``) and grows it to ``size`` when it is smaller; ``absent`` deletes it.

    The image is made on the host of ``uri`` (over SSH when ``ssh`` is given), or on this machine when ``uri`` is
    left out. Its path must lie inside ``storage_roots``. An image that exists in another format than ``format``
    is refused (convert it to a new path). The result holds ``changed``, ``image`` (what ``qemu-img info`` says
    afterwards, ``None`` once absent) and ``progress`` (a conversion's percentages); with ``diff``, Ansible's
    ``diff``.

    :raises InvalidSpec: a bad option, a path outside the storage roots; nothing changed.
    :raises Conflict: a running VM uses the image. :raises Unsupported: growing a VHD or VHDX.
    """
    path = required(params, "path")
    state = chosen(params, "state", STATES)
    fmt = params.get("format")
    size = params.get("size")
    wanted = None if size is None else parse_size("size", size)
    progress: list[float] = []
    with _roots(params) as roots:
        before = _info(path, roots, fmt if state == "present" else None)
        after = before
        if state == "absent":
            changed = before is not None
            if changed and not check:
                images.remove(path, roots=roots)
            after = None
        elif before is not None:
            if fmt is not None and before.format is not DiskFormat(fmt):
                raise InvalidSpec("format", f"{path} is a {before.format.value} image, not {fmt}")
            changed = wanted is not None and before.virtual_size < wanted
            if wanted is not None and changed and not check:
                after = images.resize(path, wanted, roots=roots)
        else:
            changed = True
            after = None if check else _make(params, path, fmt=fmt, size=wanted, roots=roots, progress=progress)
        result: dict[str, Any] = {
            "changed": changed,
            "image": plain(after) if after is not None else None,
            "progress": progress,
        }
    if diff and changed:
        result["diff"] = {
            "before": _shown(before),
            "after": _shown(after) if not check else _planned(path, state, fmt, wanted, before),
            "before_header": str(path),
            "after_header": str(path),
        }
    return result


@contextmanager
def _roots(params: Params) -> Iterator[Any]:
    """The storage roots the image must lie in: the host's (over SSH with ``ssh``), or this machine's."""
    if params.get("uri") is not None:
        with opened(params) as host:
            yield host.storage.roots
        return
    roots = params.get("storage_roots")
    if not roots:
        raise InvalidSpec("storage_roots", "is required when uri is left out (the directories images may be in)")
    if not isinstance(roots, list | tuple):
        raise InvalidSpec("storage_roots", f"must be a list of directories, not {type(roots).__name__}")
    with renamed({"roots": "storage_roots"}):
        yield list(roots)


def _info(path: Any, roots: Any, fmt: str | None) -> images.ImageInfo | None:
    """What qemu-img says of the image (read as ``fmt`` when given), ``None`` when there is none.

    :raises InvalidSpec: (``format``) it is an image of another format.
    """
    try:
        return images.info(path, roots=roots, fmt=fmt)
    except NotFound:
        return None
    except ImageError:
        if fmt is None:
            raise
        actual = images.info(path, roots=roots)  # read by its content, to say what it is
        if actual.format is DiskFormat(fmt):
            raise
        raise InvalidSpec("format", f"{path} is a {actual.format.value} image, not {fmt}") from None


def _make(
    params: Params, path: Any, *, fmt: str | None, size: int | None, roots: Any, progress: list[float]
) -> images.ImageInfo:
    source = params.get("source")
    if source is not None:
        with renamed({"src": "source", "dst": "path", "fmt": "format"}):  # convert's names for its arguments
            return images.convert(
                source,
                path,
                fmt or DiskFormat.QCOW2,
                roots=roots,
                compress=given(params, "compress", False),
                progress=lambda pct: _percent(progress, pct),
            )
    return images.create(
        path,
        size,
        fmt or DiskFormat.QCOW2,
        roots=roots,
        backing=params.get("backing"),
        preallocation=params.get("preallocation"),
    )


def _percent(progress: list[float], pct: float) -> None:
    if not progress or pct >= 100 or pct - progress[-1] >= 10:
        progress.append(round(pct, 1))


def _planned(
    path: Any, state: str, fmt: str | None, size: int | None, before: images.ImageInfo | None
) -> dict[str, Any]:
    """What check mode expects the image to be: nothing once absent, else its path, format and size."""
    if state == "absent":
        return {}
    shown = _shown(before) or {"path": str(path), "format": fmt or DiskFormat.QCOW2.value}
    if size is not None:
        shown["virtual_size"] = size
    return shown


def _shown(info: images.ImageInfo | None) -> dict[str, Any]:
    if info is None:
        return {}
    return {"path": str(info.path), "format": info.format.value, "virtual_size": info.virtual_size}
