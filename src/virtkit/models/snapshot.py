"""Snapshots (Hyper-V's checkpoints) and saved-state files, in neutral terms.

| Hyper-V                                   | virtkit                                             |
|-------------------------------------------|-----------------------------------------------------|
| Standard checkpoint                       | ``memory`` snapshot                                 |
| Production checkpoint                     | ``quiesced`` snapshot, falling back to ``memory``   |
| Production checkpoint, ProductionOnly     | ``quiesced`` snapshot with ``fallback=False``       |
| (crash-consistent disk checkpoint)        | ``disk-only`` snapshot                              |
"""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from pathlib import Path

from virtkit.models.state import VMState
from virtkit.models.vm import Accel, VMSpec

__all__ = ["SavedImage", "SnapshotInfo", "SnapshotKind", "SnapshotNode"]


class SnapshotKind(StrEnum):
    """What a snapshot holds.

    ``memory``: the whole VM, its disks and (when it runs) its memory, kept inside the qcow2 images (libvirt's
    internal snapshot); reverting brings back the power state too. ``disk-only``: the disks alone, as new overlay
    images the VM writes to from then on (libvirt's external snapshot); crash-consistent. ``quiesced``: a
    ``disk-only`` snapshot taken while the guest agent froze the guest's file systems (application-consistent).
    """

    MEMORY = "memory"
    DISK_ONLY = "disk-only"
    QUIESCED = "quiesced"


@dataclasses.dataclass(frozen=True)
class SnapshotInfo:
    """One snapshot of one VM, as the host keeps it. ``kind`` is what was really taken."""

    name: str
    vm: str
    kind: SnapshotKind
    #: When it was taken, in seconds since the epoch.
    created: int
    #: The snapshot it was taken on top of, or ``None`` for a root.
    parent: str | None
    #: Whether the VM's present state descends from it (the next snapshot becomes its child).
    current: bool
    #: The VM's power state when it was taken; reverting returns to it.
    vm_state: VMState
    #: The guest's file systems were frozen by its agent while the disks were captured (kind ``quiesced``).
    quiesced: bool
    description: str


@dataclasses.dataclass(frozen=True)
class SnapshotNode:
    """A snapshot and the snapshots taken on top of it, oldest first."""

    info: SnapshotInfo
    children: tuple[SnapshotNode, ...]

    def walk(self) -> list[SnapshotInfo]:
        """This snapshot and its descendants, depth first, parents before children."""
        out = [self.info]
        for child in self.children:
            out.extend(child.walk())
        return out


@dataclasses.dataclass(frozen=True)
class SavedImage:
    """What a saved-state file (from :meth:`virtkit.VM.save`) says about the VM in it."""

    name: str
    uuid: str
    accel: Accel
    vcpus: int
    #: Memory in use and the ceiling, in bytes.
    memory: int
    max_memory: int
    #: The VM's definition as a spec: checked like any spec before anything runs from the file.
    spec: VMSpec | None = None
    #: Files the definition names that a spec does not model (CD-ROM images, more consoles): checked too.
    other_files: tuple[Path, ...] = ()
