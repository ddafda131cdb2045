"""Disks as a VM's definitions hold them: where each one sits (target, SCSI controller and unit) and in which
definition (the running one, the persistent one, or both).

Hyper-V's SCSI ``ControllerNumber`` and ``ControllerLocation`` are :attr:`AttachedDisk.controller` (the index of a
virtio-scsi controller) and :attr:`AttachedDisk.unit`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from virtkit.models.disk import DiskSpec

__all__ = ["AttachedDisk", "DiskLayout", "DiskSlot", "ScsiController"]


@dataclasses.dataclass(frozen=True)
class AttachedDisk:
    """One disk attached to a VM.

    ``disk`` is the disk as defined (its ``target`` set, ``size`` unset: a size is a creation request). On the
    ``scsi`` bus, ``controller`` and ``unit`` give its address; they are ``None`` on other buses. ``live`` says the
    running VM has it, ``persistent`` that the persistent definition has it (so it comes back after a restart).
    """

    disk: DiskSpec
    target: str
    controller: int | None = None
    unit: int | None = None
    live: bool = False
    persistent: bool = False


@dataclasses.dataclass(frozen=True)
class DiskSlot:
    """A target name (and on ``scsi`` a controller unit) taken by any disk device of either definition, including
    CD-ROMs and disks virtkit does not model: what a new disk must not collide with."""

    target: str
    source: Path | None = None
    controller: int | None = None
    unit: int | None = None


@dataclasses.dataclass(frozen=True)
class ScsiController:
    """A SCSI controller of a VM; ``virtio`` tells a virtio-scsi controller from an emulated one (lsilogic...)."""

    index: int
    virtio: bool
    live: bool = False
    persistent: bool = False


@dataclasses.dataclass(frozen=True)
class DiskLayout:
    """The disks, occupied slots and SCSI controllers of a VM's running and persistent definitions together."""

    disks: tuple[AttachedDisk, ...] = ()
    slots: tuple[DiskSlot, ...] = ()
    controllers: tuple[ScsiController, ...] = ()

    def find(self, target_or_path: str | Path) -> list[AttachedDisk]:
        """The disks whose target is ``target_or_path``, or whose path is it (an absolute path)."""
        key = str(target_or_path)
        if key.startswith("/"):
            return [d for d in self.disks if str(d.disk.path) == str(Path(key))]
        return [d for d in self.disks if d.target == key]
