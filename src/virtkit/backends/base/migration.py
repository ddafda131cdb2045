"""The seam for migration between :mod:`virtkit.ops.migration` and a hypervisor backend. No libvirt here.

A :class:`MigrationBackend` belongs to one host and names VMs by name on every call: it looks the VM up afresh
each time, so it keeps working after its connection was dropped and re-opened (a daemon restarted in the middle
of a migration). It runs exactly what it is told; choosing the mode, the tuning, the order of steps and what to
do after a failure is the operations layer's job.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from virtkit.models.disk import DiskFormat
from virtkit.models.migration import JobStats, Presence
from virtkit.models.vm import Accel

__all__ = ["MigratableDisk", "MigrationBackend", "MigrationRequest", "SnapshotExport"]


@dataclasses.dataclass(frozen=True)
class MigratableDisk:
    """One disk of a running or defined VM, as a migration sees it."""

    target: str
    #: ``file``, ``block``, ``network`` or ``volume``.
    kind: str
    #: The image file or device; ``None`` for an empty drive or a network disk.
    path: Path | None
    #: ``None`` when the format is unknown or not one virtkit handles.
    format: DiskFormat | None
    #: Read-only disks and removable drives are never copied.
    readonly: bool


@dataclasses.dataclass(frozen=True)
class MigrationRequest:
    """One migration call: what moves and how."""

    #: Move a running VM (memory included); ``False`` moves a stopped VM's definition only.
    live: bool
    #: The caller vouches that the disks lie on storage both hosts share, though the hypervisor cannot tell.
    unsafe: bool = False
    #: Transfer cap in MiB/s, ``None`` for none.
    bandwidth: int | None = None
    #: The cap after a switch to post-copy, in MiB/s, ``None`` for none.
    bandwidth_postcopy: int | None = None
    #: Slow the guest's vCPUs down while it dirties memory faster than it is sent.
    auto_converge: bool = False
    #: Auto-converge's first throttle and its increment, in percent (``None``: the hypervisor's defaults).
    throttle: tuple[int, int] | None = None
    #: Allow a switch to post-copy (:meth:`MigrationBackend.start_postcopy`).
    postcopy: bool = False
    #: XBZRLE compression of pages sent again, with a cache of this many bytes; ``None`` for none.
    xbzrle_cache: int | None = None
    #: Parallel connections for memory (multifd); 1 for one stream.
    connections: int = 1
    #: The disks (by target) whose contents are copied to the destination while the VM runs.
    copy_disks: tuple[str, ...] = ()
    #: Where disks live on the destination, by target, when not at the same path as on the source.
    disk_paths: Mapping[str, Path] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class SnapshotExport:
    """A VM's snapshot metadata, to be defined again on another host (the data stays in the disk images)."""

    #: Opaque snapshot definitions, each parent before its children.
    definitions: tuple[str, ...]
    #: The name of the current snapshot, or ``None``.
    current: str | None

    def __bool__(self) -> bool:
        return bool(self.definitions)


class MigrationBackend(Protocol):
    """Migration on one host, the source or the destination of a move."""

    def presence(self, name: str, uuid: str) -> Presence:
        """Where the VM with this name and UUID is on this host; ``UNKNOWN`` when the host does not answer (never
        raises for that)."""

    def job(self, name: str) -> JobStats | None:
        """The VM's active job (a migration or save under way), or ``None`` when there is none."""

    def completed_job(self, name: str) -> JobStats | None:
        """The statistics of the VM's last completed job on this host (with the real downtime), or ``None``."""

    def set_max_downtime(self, name: str, milliseconds: int) -> None:
        """Set the longest the VM may be paused for the final copy of a live migration, now or when one starts."""

    def set_max_speed(self, name: str, mib_per_second: int) -> None:
        """Cap the memory transfer of the VM's running migration, in MiB/s (disk copies keep their own cap)."""

    def start_postcopy(self, name: str) -> None:
        """Switch the VM's running migration (started with post-copy allowed) to post-copy."""

    def resume_postcopy(self, name: str, destination: str, plan: MigrationRequest) -> None:
        """Resume a post-copy migration of the VM to ``destination`` that broke off (both sides paused in
        post-copy); ``plan`` is the request the migration was started with. Blocks until it ends.

        :raises VirtkitError: translated from the hypervisor (for example while the hosts cannot reach each other).
        """

    def memory_tracking_sound(self, accel: Accel) -> bool:
        """Whether this host's hypervisor tracks a running guest's dirty memory soundly under ``accel``: a pre-copy
        migration from this host then leaves no stale page behind."""

    def abort_job(self, name: str) -> None:
        """Cancel the VM's running job."""

    def disks(self, name: str) -> Sequence[MigratableDisk]:
        """The VM's disks: the running definition's while it runs, else the persistent one's."""

    def migrate(self, name: str, destination: str, plan: MigrationRequest) -> None:
        """Move the VM to the host at URI ``destination`` (its definition made persistent there and removed
        here); blocks until the hypervisor says it is done.

        :raises VirtkitError: translated from the hypervisor; where the VM runs now is for the caller to find out.
        """

    def definition(self, name: str) -> str:
        """The VM's persistent definition, opaque (for :meth:`define` on another host of the same kind)."""

    def define(self, definition: str) -> None:
        """Define a VM persistently from :meth:`definition` text, exactly as it was."""

    def export_snapshots(self, name: str) -> SnapshotExport:
        """The VM's snapshot metadata, parents first."""

    def forget_snapshots(self, name: str) -> None:
        """Drop the VM's snapshot metadata on this host, leaving the snapshots' data in its images."""

    def import_snapshots(self, name: str, snapshots: SnapshotExport) -> None:
        """Define ``snapshots`` (from :meth:`export_snapshots` on another host) for the VM here."""
