"""virtkit: automate real KVM/QEMU virtual machines through libvirt.

>>> import virtkit
>>> with virtkit.connect("qemu:///system") as host:          # doctest: +SKIP
...     change = host.create(virtkit.VMSpec.from_file("web1.yml"), start=True)
...     host.get("web1").pause()
"""

from __future__ import annotations

from virtkit import images
from virtkit.cluster.drain import drain
from virtkit.cluster.hoststop import StoppedVM, VMsStopped, stop_vms
from virtkit.connect import connect
from virtkit.errors import (
    AlreadyExists,
    BackendError,
    CommandFailed,
    Conflict,
    CPUIncompatible,
    GuestAgentUnavailable,
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
from virtkit.images import ImageInfo
from virtkit.models.agent import GuestInfo, GuestInterface
from virtkit.models.attached import AttachedDisk
from virtkit.models.change import Change
from virtkit.models.cpu import CPUModel
from virtkit.models.disk import DiskBus, DiskCache, DiskFormat, DiskKind, DiskSpec
from virtkit.models.events import LifecycleEvent
from virtkit.models.migration import (
    Compression,
    Escalated,
    MigrationMode,
    MigrationProgress,
    MigrationStrategy,
    MigrationTuning,
    TimeoutAction,
)
from virtkit.models.nic import NicKind, NicModel, NicSpec
from virtkit.models.results import DrainIncomplete, DrainResult, MigrationResult
from virtkit.models.snapshot import SnapshotInfo, SnapshotKind, SnapshotNode
from virtkit.models.state import VMInfo, VMState, VMStatus
from virtkit.models.vm import Accel, BootDevice, Firmware, KernelBoot, Machine, VMSpec
from virtkit.ops.agent import GuestAgent
from virtkit.ops.cpu import cpu_baseline
from virtkit.ops.disks import Disks
from virtkit.ops.host import Host
from virtkit.ops.migration import migrate
from virtkit.ops.snapshot import Snapshots
from virtkit.ops.storage import HostStorage
from virtkit.ops.vm import VM
from virtkit.remote.config import SSHConfig

__all__ = [
    "VM",
    "Accel",
    "AlreadyExists",
    "AttachedDisk",
    "BackendError",
    "BootDevice",
    "CPUIncompatible",
    "CPUModel",
    "Change",
    "CommandFailed",
    "Compression",
    "Conflict",
    "DiskBus",
    "DiskCache",
    "DiskFormat",
    "DiskKind",
    "DiskSpec",
    "Disks",
    "DrainIncomplete",
    "DrainResult",
    "Escalated",
    "Firmware",
    "GuestAgent",
    "GuestAgentUnavailable",
    "GuestInfo",
    "GuestInterface",
    "Host",
    "HostKeyRejected",
    "HostStorage",
    "HostUnavailable",
    "ImageError",
    "ImageInfo",
    "InvalidSpec",
    "KernelBoot",
    "LabError",
    "LifecycleEvent",
    "Machine",
    "MigrationFailed",
    "MigrationMode",
    "MigrationProgress",
    "MigrationResult",
    "MigrationStrategy",
    "MigrationTuning",
    "NicKind",
    "NicModel",
    "NicSpec",
    "NotFound",
    "OperationTimeout",
    "SSHConfig",
    "SnapshotInfo",
    "SnapshotKind",
    "SnapshotNode",
    "Snapshots",
    "StoppedVM",
    "TimeoutAction",
    "Unsupported",
    "VMInfo",
    "VMSpec",
    "VMState",
    "VMStatus",
    "VMsStopped",
    "VirtkitError",
    "connect",
    "cpu_baseline",
    "drain",
    "images",
    "migrate",
    "stop_vms",
]
