"""The seam between virtkit's operations and a hypervisor backend: protocols only, no libvirt.

``virtkit.ops`` talks to these; ``virtkit.backends.libvirt`` implements them (and :mod:`virtkit.remote` implements
:class:`HostFiles`). A backend does exactly what it is told: idempotence, check mode and policy are the operations
layer's.
"""

from __future__ import annotations

from virtkit.backends.base.agent import GuestAgentBackend
from virtkit.backends.base.disks import DiskBackend
from virtkit.backends.base.domain import DomainBackend
from virtkit.backends.base.files import NOT_FOUND, CompletedRun, FileStat, HostFiles
from virtkit.backends.base.host import HostBackend, Subscription
from virtkit.backends.base.migration import MigratableDisk, MigrationBackend, MigrationRequest, SnapshotExport
from virtkit.backends.base.snapshots import SnapshotBackend

__all__ = [
    "NOT_FOUND",
    "CompletedRun",
    "DiskBackend",
    "DomainBackend",
    "FileStat",
    "GuestAgentBackend",
    "HostBackend",
    "HostFiles",
    "MigratableDisk",
    "MigrationBackend",
    "MigrationRequest",
    "SnapshotBackend",
    "SnapshotExport",
    "Subscription",
]
