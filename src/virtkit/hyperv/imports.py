"""Importing VHD and VHDX drives: each runs from a qcow2 copy beside it, made once and kept with the VM.

QEMU cannot live-migrate, save or memory-snapshot a VM with a VHD (``vpc``) disk, and libvirt 9.0 cannot attach
VHDX at all, so a drive given as ``web.vhdx`` runs from ``web.vhdx.qcow2``. The import is a full copy made by
``qemu-img convert`` (zero clusters are skipped); the original is never written, and
:func:`virtkit.hyperv.convert_vhd` turns the qcow2 back into a VHDX (Hyper-V's Export). An import that exists already
is used as it is: after the first boot it holds the VM's writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from virtkit import images
from virtkit.errors import ImageError, InvalidSpec
from virtkit.models.disk import DiskFormat
from virtkit.ops.host import Host

__all__ = ["Import", "importing", "plan_imports"]


@dataclass(frozen=True)
class Import:
    """One drive to import: ``source`` (a VHD or VHDX) into ``target`` (qcow2); ``field`` names the drive."""

    field: str
    source: Path
    target: Path
    size: int  # the source's virtual size, which the import has
    exists: bool  # the import was made before: it is used as it is


def plan_imports(host: Host, drives: Sequence[tuple[str, Path, Path, DiskFormat]]) -> list[Import]:
    """Check each ``(field, source, target, format)`` before anything changes.

    :raises InvalidSpec: (the drive's field) a source outside the storage roots, missing, or not the format its
        name says (a ``.vhdx`` that is no VHDX); a target that exists and is no qcow2 image.
    """
    storage = host.storage
    out = []
    for field, source, target, fmt in drives:
        entry = storage.check_file(field, source)
        try:
            found = storage.image_info(field, entry.path, fmt)
        except ImageError as exc:
            raise InvalidSpec(field, f"{entry.path} is not a {fmt.value.upper()} image: {exc.message}") from None
        if storage.exists(field, target):
            have = storage.image_info(field, storage.check_file(field, target).path)
            if have.format is not DiskFormat.QCOW2:
                raise InvalidSpec(field, f"{target} exists and is no qcow2 image: remove it or rename the drive")
            out.append(Import(field, entry.path, target, found.virtual_size, exists=True))
        else:
            storage.check_new(field, target)
            out.append(Import(field, entry.path, target, found.virtual_size, exists=False))
    return out


@contextmanager
def importing(
    host: Host, plan: Sequence[Import], progress: Callable[[str, float], None] | None = None
) -> Iterator[list[Path]]:
    """Make the imports ``plan`` lists; if the body raises, remove the ones made here, then re-raise.

    :param progress: called with the drive's field and the percentage done of its copy.
    :raises VirtkitError: from :func:`virtkit.images.convert`; a failed copy leaves no file behind.
    """
    made: list[Path] = []
    try:
        for item in plan:
            if item.exists:
                continue
            report = None if progress is None else _for_field(progress, item.field)
            images.convert(item.source, item.target, DiskFormat.QCOW2, roots=host.storage.roots, progress=report)
            made.append(item.target)
        yield made
    except BaseException:
        host.storage.discard(made)
        raise


def _for_field(progress: Callable[[str, float], None], field: str) -> Callable[[float], None]:
    return lambda pct: progress(field, pct)
