"""Moving a VM between hosts, and the processor that lets it move: Move-VM, Set-VMProcessor and Get-VMProcessor.

``move_vm`` is a live migration (:func:`virtkit.migrate`): with shared storage (the disks stay where both hosts see
them), or with ``include_storage`` shared nothing (its disks are copied to the destination while it runs, each
into an empty image made there first: on this machine, or on the host over SSH when it was connected with
``ssh=``). Its checks are the migration's preflight, the same with ``what_if``: a destination that cannot run the
VM's CPU is refused naming ``DestinationHost``, a directory outside the destination's storage roots naming
``DestinationStoragePath``, with nothing changed.

Processor compatibility for migration is, on KVM, the VM's CPU model: ``set_vm_processor(...,
compatibility_for_migration_enabled=True)`` gives the VM the baseline CPU of the hosts it may move between (a named
model with features every one of them runs: :func:`virtkit.cpu_baseline`), and ``False`` gives it the host's own
CPU (``host-model``: every feature of the processor it runs on, Hyper-V's behaviour with compatibility off, and
virtkit's default CPU under KVM).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from virtkit.errors import Conflict, CPUIncompatible, InvalidSpec, NotFound, Unsupported
from virtkit.hyperv.spec import MAX_PROCESSORS
from virtkit.hyperv.words import in_hyperv_words, naming
from virtkit.models.change import Change
from virtkit.models.cpu import HOST_CPU_MODES
from virtkit.models.migration import MigrationMode, MigrationProgress
from virtkit.models.results import MigrationResult
from virtkit.models.vm import VMSpec
from virtkit.ops.args import check_host
from virtkit.ops.cpu import cpu_baseline
from virtkit.ops.host import Host
from virtkit.ops.vm import VM
from virtkit.validate import check_flag, check_list, check_name, shown

__all__ = ["VMProcessor", "get_vm_processor", "move_vm", "set_vm_processor"]

#: The CPU of a VM without processor compatibility: the host's own (libvirt expands it on the host it starts on).
_HOST_CPU = "host-model"

# The neutral calls' arguments as the cmdlets name them, for errors.
_MOVE_WORDS = {"to": "DestinationHost", "storage": "DestinationStoragePath", "vm": "Name"}
_PROCESSOR_WORDS = {
    "vcpus": "Count",
    "max_vcpus": "Count",
    "cpu_model": "CompatibilityForMigrationEnabled",
    "cpu_features": "CompatibilityForMigrationEnabled",
}


@dataclasses.dataclass(frozen=True)
class VMProcessor:
    """A VM's processor as Get-VMProcessor shows it; ``model`` and ``features`` are the KVM CPU behind
    ``compatibility_for_migration_enabled`` (a named model: a baseline, or QEMU's own ``qemu64`` that a TCG VM gets
    by default, which every host runs), ``None`` and empty for the host's own CPU."""

    vm_name: str
    count: int
    compatibility_for_migration_enabled: bool
    model: str | None
    features: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain data with Get-VMProcessor's property names."""
        return {
            "VMName": self.vm_name,
            "Count": self.count,
            "CompatibilityForMigrationEnabled": self.compatibility_for_migration_enabled,
        }


def get_vm_processor(host: Host, name: str) -> VMProcessor:
    """Get-VMProcessor: the VM's virtual processors and whether its CPU is fixed for migration.

    :raises InvalidSpec: (field ``Name``) not a VM name.
    :raises NotFound: no VM of that name.
    """
    return _processor(_vm(host, name).spec())


def set_vm_processor(
    host: Host,
    name: str,
    *,
    count: int | None = None,
    compatibility_for_migration_enabled: bool | None = None,
    hosts: Sequence[Host] = (),
    what_if: bool = False,
) -> Change[VMSpec]:
    """Set-VMProcessor: the number of virtual processors, and processor compatibility for migration.

    Both change the VM's hardware, so the VM must be off, as on Hyper-V (virtkit has no live vCPU change). A value
    the VM has already changes nothing, in any state. Its other settings stay; a vCPU ceiling for hot-add below the
    new count is dropped.

    :param count: virtual processors, 1 to 240.
    :param compatibility_for_migration_enabled: ``True``: the VM's CPU becomes the baseline of its host and
        ``hosts`` (every host it may move to), after each of them confirmed it runs it. ``False``: the host's own
        CPU (``host-model``).
    :param hosts: the other hosts of the cluster, for the baseline.
    :raises InvalidSpec: a bad argument, named as the cmdlet names it (``Count``,
        ``CompatibilityForMigrationEnabled``, ``Name``), or ``hosts[i]`` that is no :class:`~virtkit.Host`.
    :raises NotFound: no VM of that name.
    :raises Conflict: the VM is not off (the message names the parameter).
    :raises Unsupported: (``CompatibilityForMigrationEnabled``) the hosts have no CPU in common, run VMs under
        different accelerators, or one cannot run the baseline.
    """
    check_flag("what_if", what_if)
    wanted = None if count is None else _count(count)
    compatible = None
    if compatibility_for_migration_enabled is not None:
        compatible = check_flag("CompatibilityForMigrationEnabled", compatibility_for_migration_enabled)
    cluster = check_list("hosts", hosts, check_host)
    vm = _vm(host, name)
    before = vm.spec()
    changes: dict[str, Any] = {}
    given = []
    if wanted is not None:
        given.append("Count")
        changes["vcpus"] = wanted
        if before.max_vcpus is not None and before.max_vcpus < wanted:
            changes["max_vcpus"] = None
    if compatible is not None:
        given.append("CompatibilityForMigrationEnabled")
        changes.update(cpu_model=_HOST_CPU, cpu_features=())
        if compatible:
            with naming("CompatibilityForMigrationEnabled", Unsupported):
                cpu = cpu_baseline([host, *cluster], accel=before.accel)
            changes.update(cpu_model=cpu.model, cpu_features=cpu.features)
    with naming(", ".join(given) or "Name", Conflict), in_hyperv_words(_PROCESSOR_WORDS):
        return vm.update(dataclasses.replace(before, **changes), check=what_if)


def move_vm(
    host: Host,
    name: str,
    destination_host: Host,
    *,
    include_storage: bool = False,
    destination_storage_path: Path | str | None = None,
    shared_storage: Sequence[Path | str] = (),
    what_if: bool = False,
    progress: Callable[[MigrationProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> MigrationResult:
    """Move-VM: move the running VM to ``destination_host`` live; the guest goes on running there.

    :param include_storage: copy its disks to the destination while it runs (shared nothing): into
        ``destination_storage_path``, or to the same paths there (refused when both hosts' files are this
        machine's: a copy onto itself). Without it, the disks stay where both hosts must see them.
    :param destination_storage_path: a directory on the destination, inside its storage roots, for the copies;
        giving it implies ``include_storage``.
    :param shared_storage: directories both hosts see at the same path (the cluster shared volumes, which libvirt
        cannot recognise on a local file system): see :mod:`virtkit.ops.migration`.
    :param what_if: run every check of the move and move nothing.
    :param progress: called with each :class:`~virtkit.MigrationProgress` while data moves.
    :param cancel: set it from another thread to stop the move (as Ctrl-C stops Move-VM); the VM goes on where it was.
    :returns: the neutral :class:`~virtkit.MigrationResult` (downtime, data moved, notes).
    :raises InvalidSpec: a bad argument, named as the cmdlet names it (``Name``, ``DestinationHost``,
        ``IncludeStorage``, ``DestinationStoragePath``); nothing changed.
    :raises CPUIncompatible: (``DestinationHost``) the destination cannot run the VM's CPU; nothing changed.
    :raises NotFound: (``Name``) no VM of that name on either host.
    :raises Conflict: (``Name``) the VM is not running, is transient, or another job runs on it.
    :raises AlreadyExists: the destination has a VM of that name, or a file a copy would make.
    :raises Unsupported: a disk that cannot be copied or moved live (snapshots, a VHD), files that cannot be reached.
    :raises MigrationFailed: it did not move; ``host`` says where it runs now.
    """
    check_flag("what_if", what_if)
    check_flag("IncludeStorage", include_storage)
    to = check_host("DestinationHost", destination_host)
    copy = include_storage or destination_storage_path is not None
    vm = _vm(host, name)
    with (
        naming("Name", Conflict, NotFound),
        naming("DestinationHost", CPUIncompatible),
        in_hyperv_words(_MOVE_WORDS),
    ):
        return vm.migrate(
            to,
            mode=MigrationMode.LIVE_STORAGE if copy else MigrationMode.LIVE,
            progress=progress,
            cancel=cancel,
            shared_storage=shared_storage,
            storage=destination_storage_path,
            check=what_if,
        )


# -- helpers ------------------------------------------------------------------------------------------------------


def _vm(host: object, name: object) -> VM:
    checked = check_name("Name", name)
    with naming("Name", NotFound):
        return check_host("host", host).get(checked)


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PROCESSORS:
        raise InvalidSpec(
            "Count", f"must be a number of virtual processors from 1 to {MAX_PROCESSORS}, not {shown(value)}"
        )
    return value


def _processor(spec: VMSpec) -> VMProcessor:
    named = spec.cpu_model is not None and spec.cpu_model not in HOST_CPU_MODES
    return VMProcessor(
        vm_name=spec.name,
        count=spec.vcpus,
        compatibility_for_migration_enabled=named,
        model=spec.cpu_model if named else None,
        features=spec.cpu_features if named else (),
    )
