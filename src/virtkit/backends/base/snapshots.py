"""The seam for snapshots between :mod:`virtkit.ops.snapshot` and a hypervisor backend. No libvirt here.

The backend knows what its hypervisor can and cannot do and says so through the ``check_*`` methods, which read
and never change anything; it takes, reverts and deletes exactly what it is told. Idempotence, check mode, the
quiesced-to-memory fallback and name validation are the operations layer's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from virtkit.models.snapshot import SnapshotInfo, SnapshotKind

__all__ = ["SnapshotBackend"]


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

    def create(self, name: str, kind: SnapshotKind, *, description: str) -> SnapshotInfo:
        """Take the snapshot (``quiesced`` freezes the guest's file systems through its agent) and read it back."""

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
