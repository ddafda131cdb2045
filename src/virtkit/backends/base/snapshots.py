"""The seam for snapshots between :mod:`virtkit.ops.snapshot` and a hypervisor backend. No libvirt here.

The backend knows what its hypervisor can and cannot do and says so through the ``check_*`` methods, which read
and never change anything; it takes, reverts and deletes exactly what it is told. Idempotence, check mode, the
quiesced-to-memory fallback and name validation are the operations layer's job.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from virtkit.models.disk import DiskFormat
from virtkit.models.snapshot import SnapshotInfo, SnapshotKind
from virtkit.models.state import VMState

__all__ = ["ExternalSnapshot", "SnapshotBackend"]


@dataclasses.dataclass(frozen=True)
class ExternalSnapshot:
    """The files of an external snapshot, for reverting to it and deleting it where the hypervisor cannot."""

    name: str
    #: The VM's power state when it was taken (running or paused: ``memory`` holds its memory).
    vm_state: VMState
    memory: Path | None
    #: The copy of the VM's UEFI variable store taken with it, and the store itself.
    nvram_copy: Path | None
    nvram: Path | None
    #: Per disk target: the image the snapshot keeps as it was then (read-only since), and the overlay the VM
    #: went on writing to.
    bases: Mapping[str, Path]
    overlays: Mapping[str, Path]


class SnapshotBackend(Protocol):
    """The snapshots of one VM."""

    def list(self) -> Sequence[SnapshotInfo]:
        """Every snapshot of the VM, in no particular order."""

    def get(self, name: str) -> SnapshotInfo | None:
        """The snapshot of that name, or ``None``."""

    def current_name(self) -> str | None:
        """The name of the current snapshot, or ``None`` when there is none."""

    def agent_answers(self) -> bool:
        """Whether the VM runs, has a guest-agent channel and its agent answers a ping now."""

    def check_create(self, kind: SnapshotKind) -> None:
        """Refuse a snapshot of ``kind`` that the hypervisor cannot take of this VM as it is now.

        :raises Unsupported: why, and what would work instead.
        """

    def new_files(self, name: str, kind: SnapshotKind) -> Sequence[Path]:
        """The files taking snapshot ``name`` of ``kind`` would create (the overlays of a disk-only snapshot)."""

    def nvram_files(self, name: str, kind: SnapshotKind) -> tuple[Path, Path] | None:
        """For a snapshot of ``kind`` that keeps the VM's UEFI variable store: the store and the copy to take of it
        (``None`` when the snapshot keeps no copy)."""

    def create(
        self,
        name: str,
        kind: SnapshotKind,
        *,
        description: str,
        nvram_copy: Path | None = None,
        vm_state: VMState | None = None,
    ) -> SnapshotInfo:
        """Take the snapshot (``quiesced`` freezes the guest's file systems through its agent) and read it back;
        ``nvram_copy`` is the copy of the UEFI variable store taken with it (by the caller, who paused the VM for
        it: ``vm_state`` is then the state to record, the one the VM was in before)."""

    def rename(self, name: str, new_name: str) -> None:
        """Show snapshot ``name`` as ``new_name`` from now on (its files keep their names)."""

    # -- external snapshots the hypervisor cannot revert or delete: their files, and the steps around them -------

    def by_hand(self, name: str) -> bool:
        """Whether reverting to or deleting snapshot ``name`` is the caller's work (through the methods below),
        because the hypervisor cannot do it."""

    def external(self) -> Sequence[ExternalSnapshot]:
        """Every external snapshot of the VM, with its files."""

    def disk_images(self) -> dict[str, Path]:
        """The image each writable disk of the VM uses now (the top of its chain), by target."""

    def owned(self) -> set[Path]:
        """The overlays made for snapshots and reverts that are kept while something needs them."""

    def set_owned(self, paths: set[Path]) -> None:
        """Replace the set :meth:`owned` returns."""

    def restore(self, name: str, overlays: Mapping[str, Path]) -> None:
        """Bring the VM back to external snapshot ``name`` with ``overlays`` (new, on the snapshot's bases) as its
        disks: power off, define the definition it had then, and restore its memory when it has memory."""

    def forget(self, name: str, *, children: bool) -> None:
        """Delete the hypervisor's record of ``name`` (and its descendants), no file touched; children left
        behind move up to its parent."""

    def commit_live(self, target: str, *, timeout: float) -> None:
        """Merge the running VM's top image of disk ``target`` into the image below it, and go on with that one.

        :raises OperationTimeout: the merge did not finish in ``timeout`` seconds (it is cancelled; the VM goes
            on with its top image).
        """

    def repoint(self, target: str, path: Path, fmt: DiskFormat) -> None:
        """Make the VM's persistent definition use the image ``path`` of format ``fmt`` for disk ``target``."""

    def check_revert(self, name: str) -> None:
        """Refuse a revert to ``name`` that the hypervisor cannot do.

        :raises Unsupported: why, and what would work instead.
        """

    def revert(self, name: str) -> None:
        """Bring the VM back to snapshot ``name``: disks, memory and power state as they were then."""

    def check_delete(self, name: str, *, children: bool) -> None:
        """Refuse a delete the hypervisor cannot do.

        :raises Unsupported: why, and what would work instead.
        """

    def delete(self, name: str, *, children: bool) -> None:
        """Delete snapshot ``name`` (its data merged so the VM's present state is kept), with its descendants when
        ``children``; without, its children move up to its parent."""
