"""Hyper-V's checkpoint cmdlets on virtkit's snapshots (:attr:`virtkit.VM.snapshots`).

| cmdlet | call | on KVM |
|---|---|---|
| ``Checkpoint-VM`` | :func:`checkpoint_vm` | a snapshot of the kind the VM's CheckpointType says |
| ``Get-VMSnapshot`` | :func:`get_vm_snapshot` | the VM's snapshots, oldest first, as :class:`VMSnapshot` |
| ``Restore-VMSnapshot`` | :func:`restore_vm_snapshot` | revert; a Production checkpoint leaves the VM off |
| ``Remove-VMSnapshot`` | :func:`remove_vm_snapshot` | delete (merging its overlays), with children on request |
| ``Rename-VMSnapshot`` | :func:`rename_vm_snapshot` | the name it is shown by; its files keep theirs |

CheckpointType (``Set-VM -CheckpointType``): ``Standard`` takes the disks and the memory (a ``memory`` snapshot);
``Production`` freezes the guest's file systems through its agent (VSS on Hyper-V) and takes the disks alone (a
``quiesced`` snapshot), and takes a Standard one when no agent answers; ``ProductionOnly`` fails instead;
``Disabled`` refuses. A checkpoint without memory reverts to a VM that is off, as on Hyper-V.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from virtkit.errors import AlreadyExists, Conflict, InvalidSpec, NotFound, Unsupported
from virtkit.hyperv.vocabulary import vm_state
from virtkit.hyperv.words import naming
from virtkit.models.change import Change
from virtkit.models.snapshot import SnapshotInfo, SnapshotKind
from virtkit.models.state import VMInfo
from virtkit.models.vm import SnapshotMode
from virtkit.ops.host import Host
from virtkit.ops.vm import VM
from virtkit.validate import check_flag, check_name

__all__ = [
    "VMSnapshot",
    "checkpoint_vm",
    "get_vm_snapshot",
    "remove_vm_snapshot",
    "rename_vm_snapshot",
    "restore_vm_snapshot",
]

# What Checkpoint-VM takes for each CheckpointType: the kind, and whether a quiesced one may fall back to memory.
_TAKE = {
    SnapshotMode.MEMORY: (SnapshotKind.MEMORY, True),
    SnapshotMode.QUIESCED: (SnapshotKind.QUIESCED, True),
    SnapshotMode.QUIESCED_ONLY: (SnapshotKind.QUIESCED, False),
}
# SnapshotType as Get-VMSnapshot shows it, for each kind.
_SNAPSHOT_TYPE = {
    SnapshotKind.MEMORY: "Standard",
    # Hyper-V's SnapshotType enumeration has no value for these (Hyper-V Manager calls them Production checkpoints):
    # virtkit's own label for the disks alone, frozen by the guest agent or taken while the VM was off.
    SnapshotKind.QUIESCED: "Production",
    SnapshotKind.DISK_ONLY: "Production",
}


@dataclasses.dataclass(frozen=True)
class VMSnapshot:
    """A checkpoint as Get-VMSnapshot shows it; ``info`` is the neutral view."""

    name: str
    vm_name: str
    snapshot_type: str
    creation_time: datetime.datetime
    parent_snapshot_name: str | None
    is_current: bool
    notes: str
    info: SnapshotInfo

    def to_dict(self) -> dict[str, Any]:
        """Plain data with Get-VMSnapshot's property names."""
        return {
            "Name": self.name,
            "VMName": self.vm_name,
            "SnapshotType": self.snapshot_type,
            "CreationTime": self.creation_time.isoformat(),
            "ParentSnapshotName": self.parent_snapshot_name,
            "IsCurrent": self.is_current,
            "Notes": self.notes,
            "State": vm_state(self.info.vm_state, "").value,
        }


def checkpoint_vm(
    host: Host, name: str, snapshot_name: str | None = None, *, what_if: bool = False
) -> Change[SnapshotInfo]:
    """Checkpoint-VM: take a checkpoint of the VM ``name`` of the kind its CheckpointType says (see the module's
    docstring); ``after.kind`` says what was taken. ``snapshot_name`` defaults to ``<VM>-<yyyyMMdd-HHmmss>`` (Hyper-V's
    "<VM> - (<date> - <time>)" holds characters a virtkit name refuses). A checkpoint of that name that exists, of
    the kind asked, changes nothing.

    :raises InvalidSpec: a bad VM name (``Name``) or checkpoint name (``SnapshotName``).
    :raises Conflict: CheckpointType is Disabled (``CheckpointType``); the VM is saved or in a transition.
    :raises Unsupported: ProductionOnly and no guest agent answers (``CheckpointType``), or the host cannot take it.
    :raises AlreadyExists: a checkpoint of that name exists of another kind (``SnapshotName``).
    """
    check_flag("what_if", what_if)
    vm = _vm(host, name)
    checkpoint = check_name("SnapshotName", snapshot_name) if snapshot_name is not None else _default(vm.name)
    mode = vm.spec().snapshot_mode
    if mode is SnapshotMode.DISABLED:
        raise Conflict(
            f"CheckpointType: checkpoints of {vm.name} are Disabled; Set-VM -CheckpointType Standard or Production "
            "first"
        )
    kind, fallback = _TAKE[mode]
    with _parameters(name="SnapshotName"):
        try:
            return vm.snapshots.create(checkpoint, kind=kind, fallback=fallback, check=what_if)
        except Unsupported as exc:
            if mode is not SnapshotMode.QUIESCED_ONLY:
                raise
            raise Unsupported(f"CheckpointType: ProductionOnly: {exc.message}") from exc


def get_vm_snapshot(host: Host, vm_name: str, name: str | None = None) -> list[VMSnapshot]:
    """Get-VMSnapshot: the VM's checkpoints, oldest first (a parent before its children), or the one named.

    :raises InvalidSpec: a bad name (``VMName``, ``Name``).
    :raises NotFound: no such VM, or no checkpoint ``name`` (``Name``).
    """
    vm = _vm(host, vm_name, field="VMName")
    if name is not None:
        with _parameters(name="Name"):
            return [_shown(vm.snapshots.get(name))]
    return [_shown(info) for info in vm.snapshots.list()]


def restore_vm_snapshot(host: Host, vm_name: str, name: str, *, what_if: bool = False) -> Change[VMInfo]:
    """Restore-VMSnapshot: bring the VM back to checkpoint ``name``: a Standard checkpoint with its memory and power
    state, a Production one off. The guest's clock is set afterwards when Time Synchronization is on.

    :raises InvalidSpec: a bad name (``VMName``, ``Name``).
    :raises NotFound: the VM has no checkpoint ``name`` (``Name``): a checkpoint of another VM is not found either.
    :raises Conflict: the VM is saved or in a transition.
    """
    check_flag("what_if", what_if)
    vm = _vm(host, vm_name, field="VMName")
    with _parameters(name="Name"):
        return vm.snapshots.revert(name, check=what_if)


def remove_vm_snapshot(
    host: Host,
    vm_name: str,
    name: str,
    *,
    include_all_child_snapshots: bool = False,
    what_if: bool = False,
) -> Change[SnapshotInfo]:
    """Remove-VMSnapshot: delete checkpoint ``name`` and merge its disks into the VM's present ones (the VM keeps
    its present state); with ``include_all_child_snapshots`` its descendants too, else they move up to its parent.
    Removing one that is not there changes nothing.

    :raises InvalidSpec: a bad name (``VMName``, ``Name``) or flag (``IncludeAllChildSnapshots``).
    """
    check_flag("what_if", what_if)
    check_flag("IncludeAllChildSnapshots", include_all_child_snapshots)
    vm = _vm(host, vm_name, field="VMName")
    with _parameters(name="Name"):
        return vm.snapshots.delete(name, children=include_all_child_snapshots, check=what_if)


def rename_vm_snapshot(
    host: Host, vm_name: str, name: str, new_name: str, *, what_if: bool = False
) -> Change[SnapshotInfo]:
    """Rename-VMSnapshot: show checkpoint ``name`` as ``new_name`` from now on.

    :raises InvalidSpec: a bad name (``VMName``, ``Name``, ``NewName``).
    :raises NotFound: no checkpoint ``name`` (``Name``).
    :raises AlreadyExists: another checkpoint is called ``new_name`` (``NewName``).
    """
    check_flag("what_if", what_if)
    vm = _vm(host, vm_name, field="VMName")
    with _parameters(name="Name", new_name="NewName"):
        return vm.snapshots.rename(name, new_name, check=what_if)


# -- helpers ------------------------------------------------------------------------------------------------------


def _vm(host: Host, name: object, *, field: str = "Name") -> VM:
    with naming(field, NotFound):
        return host.get(check_name(field, name))


def _default(vm: str) -> str:
    """Checkpoint-VM's default name: the VM's name and the time, trimmed to a valid name."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{vm[: 63 - len(stamp) - 1]}-{stamp}"


@contextmanager
def _parameters(**names: str) -> Iterator[None]:
    """Errors of the neutral snapshot calls with the cmdlet's parameter named: ``name`` (the checkpoint) and
    ``new_name`` become the given parameters; a missing or existing checkpoint names the first one."""
    first = next(iter(names.values()))
    try:
        yield
    except InvalidSpec as exc:
        raise InvalidSpec(names.get(exc.field, exc.field), exc.reason) from None
    except (NotFound, AlreadyExists) as exc:
        field = names.get("new_name", first) if isinstance(exc, AlreadyExists) else first
        message = exc.message.removeprefix("new_name: ")
        raise type(exc)(f"{field}: {message}", code=exc.code, transient=exc.transient) from exc


def _shown(info: SnapshotInfo) -> VMSnapshot:
    return VMSnapshot(
        name=info.name,
        vm_name=info.vm,
        snapshot_type=_SNAPSHOT_TYPE[info.kind],
        creation_time=datetime.datetime.fromtimestamp(info.created, tz=datetime.UTC),
        parent_snapshot_name=info.parent,
        is_current=info.current,
        notes=info.description,
        info=info,
    )
