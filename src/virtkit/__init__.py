"""virtkit: automate real KVM/QEMU virtual machines through libvirt.

>>> import virtkit
>>> with virtkit.connect("qemu:///system") as host:          # doctest: +SKIP
...     change = host.create(virtkit.VMSpec.from_file("web1.yml"), start=True)
...     host.get("web1").pause()
"""

from __future__ import annotations

from virtkit.backend import LifecycleEvent
from virtkit.connect import connect
from virtkit.errors import (
    AlreadyExists,
    BackendError,
    CommandFailed,
    Conflict,
    DrainIncomplete,
    HostKeyRejected,
    HostUnavailable,
    ImageError,
    InvalidSpec,
    LabError,
    MigrationFailed,
    NotFound,
    OperationTimeout,
    Unsupported,
    VirtkitError,
)
from virtkit.models.attached import AttachedDisk
from virtkit.models.cpu import CPUModel
from virtkit.models.disk import DiskBus, DiskCache, DiskFormat, DiskKind, DiskSpec
from virtkit.models.migration import Convergence, MigrationMode, MigrationProgress, MigrationTuning, TimeoutAction
from virtkit.models.nic import NicKind, NicModel, NicSpec
from virtkit.models.snapshot import SnapshotInfo, SnapshotKind, SnapshotNode
from virtkit.models.state import VMInfo, VMState
from virtkit.models.vm import Accel, BootDevice, Firmware, KernelBoot, Machine, VMSpec
from virtkit.ops.change import Change
from virtkit.ops.cpu import cpu_baseline
from virtkit.ops.drain import DrainResult, drain
from virtkit.ops.host import Host
from virtkit.ops.migrate import MigrationResult, migrate
from virtkit.ops.vm import VM

__all__ = [
    "VM",
    "Accel",
    "AlreadyExists",
    "AttachedDisk",
    "BackendError",
    "BootDevice",
    "CPUModel",
    "Change",
    "CommandFailed",
    "Conflict",
    "Convergence",
    "DiskBus",
    "DiskCache",
    "DiskFormat",
    "DiskKind",
    "DiskSpec",
    "DrainIncomplete",
    "DrainResult",
    "Firmware",
    "Host",
    "HostKeyRejected",
    "HostUnavailable",
    "ImageError",
    "InvalidSpec",
    "KernelBoot",
    "LabError",
    "LifecycleEvent",
    "Machine",
    "MigrationFailed",
    "MigrationMode",
    "MigrationProgress",
    "MigrationResult",
    "MigrationTuning",
    "NicKind",
    "NicModel",
    "NicSpec",
    "NotFound",
    "OperationTimeout",
    "SnapshotInfo",
    "SnapshotKind",
    "SnapshotNode",
    "TimeoutAction",
    "Unsupported",
    "VMInfo",
    "VMSpec",
    "VMState",
    "VirtkitError",
    "connect",
    "cpu_baseline",
    "drain",
    "migrate",
]
