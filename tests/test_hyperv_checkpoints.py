"""Hyper-V's checkpoint cmdlets on libvirt's test driver: CheckpointType decides what Checkpoint-VM takes, and
Get/Restore/Remove/Rename-VMSnapshot, with every refusal naming the cmdlet's parameter and changing nothing. (Taken,
reverted and merged on real daemons, inside the guest: integration/test_checkpoints_uefi.py and test_snapshots.py.)"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest

import virtkit
from virtkit import AlreadyExists, Conflict, InvalidSpec, NotFound, Unsupported, VirtkitError, hyperv


def _vm(host: virtkit.Host, storage: Path, name: str = "ck1", **extra: Any) -> virtkit.VM:
    """A running VM with a qcow2 disk (the test driver takes memory snapshots of it)."""
    data = {"name": name, "memory": "64MiB", "disks": [{"path": str(storage / f"{name}.qcow2"), "size": "16MiB"}]}
    host.create({**data, **extra}, start=True)
    return host.get(name)


def _names(host: virtkit.Host, vm: str) -> list[str]:
    return [s.name for s in hyperv.get_vm_snapshot(host, vm)]


def test_checkpoint_type_decides_what_is_taken(host: virtkit.Host, storage: Path) -> None:
    _vm(host, storage)
    hyperv.set_vm(host, "ck1", checkpoint_type="Standard")
    taken = hyperv.checkpoint_vm(host, "ck1", "std").after
    assert taken is not None and taken.kind is virtkit.SnapshotKind.MEMORY
    # Production without an agent falls back to Standard, as Hyper-V does.
    hyperv.set_vm(host, "ck1", checkpoint_type="Production")
    fell = hyperv.checkpoint_vm(host, "ck1", "prod").after
    assert fell is not None and fell.kind is virtkit.SnapshotKind.MEMORY
    # ProductionOnly refuses, naming CheckpointType; nothing is taken.
    hyperv.set_vm(host, "ck1", checkpoint_type="ProductionOnly")
    with pytest.raises(Unsupported, match=r"^CheckpointType: ProductionOnly: .*no guest-agent channel"):
        hyperv.checkpoint_vm(host, "ck1", "only")
    hyperv.set_vm(host, "ck1", checkpoint_type="Disabled")
    with pytest.raises(Conflict, match=r"^CheckpointType: checkpoints of ck1 are Disabled"):
        hyperv.checkpoint_vm(host, "ck1", "off")
    assert _names(host, "ck1") == ["std", "prod"]


def test_production_only_of_a_vm_that_is_off_needs_no_agent(host: virtkit.Host, storage: Path) -> None:
    vm = _vm(host, storage)
    vm.destroy()
    hyperv.set_vm(host, "ck1", checkpoint_type="ProductionOnly")
    # Nothing runs, nothing is to freeze: the disks alone, without an agent (the test driver takes no disk-only
    # snapshot, so what would be taken is read in check mode).
    predicted = hyperv.checkpoint_vm(host, "ck1", "off", what_if=True).after
    assert predicted is not None and predicted.kind is virtkit.SnapshotKind.DISK_ONLY


def test_default_name_what_if_and_idempotence(host: virtkit.Host, storage: Path) -> None:
    _vm(host, storage)
    hyperv.set_vm(host, "ck1", checkpoint_type="Standard")
    predicted = hyperv.checkpoint_vm(host, "ck1", what_if=True)
    assert predicted.check and predicted.after is not None and _names(host, "ck1") == []
    taken = hyperv.checkpoint_vm(host, "ck1").after
    assert taken is not None and taken.name.startswith("ck1-20") and len(taken.name) == len("ck1-yyyymmdd-hhmmss")
    assert not hyperv.checkpoint_vm(host, "ck1", taken.name).changed  # the same checkpoint again changes nothing


def test_get_restore_rename_remove(host: virtkit.Host, storage: Path) -> None:
    vm = _vm(host, storage)
    hyperv.set_vm(host, "ck1", checkpoint_type="Standard")
    hyperv.checkpoint_vm(host, "ck1", "a")
    hyperv.checkpoint_vm(host, "ck1", "b")
    shown = hyperv.get_vm_snapshot(host, "ck1")
    assert [(s.name, s.parent_snapshot_name, s.is_current, s.snapshot_type) for s in shown] == [
        ("a", None, False, "Standard"),
        ("b", "a", True, "Standard"),
    ]
    assert shown[0].creation_time.tzinfo is datetime.UTC
    assert shown[1].to_dict()["ParentSnapshotName"] == "a" and shown[1].to_dict()["State"] == "Running"
    assert hyperv.get_vm_snapshot(host, "ck1", "b") == [shown[1]]

    vm.destroy()
    assert hyperv.restore_vm_snapshot(host, "ck1", "a", what_if=True).check and vm.state is virtkit.VMState.STOPPED
    restored = hyperv.restore_vm_snapshot(host, "ck1", "a")
    assert restored.after is not None and restored.after.state is virtkit.VMState.RUNNING

    assert hyperv.rename_vm_snapshot(host, "ck1", "a", "base").changed
    assert _names(host, "ck1") == ["base", "b"]
    assert hyperv.get_vm_snapshot(host, "ck1", "b")[0].parent_snapshot_name == "base"
    # Without -IncludeAllChildSnapshots the child moves up; with it the subtree goes.
    assert hyperv.remove_vm_snapshot(host, "ck1", "base").changed
    assert [(s.name, s.parent_snapshot_name) for s in hyperv.get_vm_snapshot(host, "ck1")] == [("b", None)]
    hyperv.restore_vm_snapshot(host, "ck1", "b")
    hyperv.checkpoint_vm(host, "ck1", "c")  # a child of b, the checkpoint the VM descends from now
    assert hyperv.remove_vm_snapshot(host, "ck1", "b", include_all_child_snapshots=True, what_if=True).check
    assert _names(host, "ck1") == ["b", "c"]
    assert hyperv.remove_vm_snapshot(host, "ck1", "b", include_all_child_snapshots=True).changed
    assert _names(host, "ck1") == []
    assert not hyperv.remove_vm_snapshot(host, "ck1", "b").changed  # gone already: nothing to do


@pytest.mark.parametrize(
    ("call", "error", "field"),
    [
        # "a" exists as a Standard checkpoint; ProductionOnly asks for a Production one under that name
        (lambda h: hyperv.checkpoint_vm(h, "ck1", "a"), AlreadyExists, "SnapshotName"),
        (lambda h: hyperv.checkpoint_vm(h, "ck1", "bad name"), InvalidSpec, "SnapshotName"),
        (lambda h: hyperv.checkpoint_vm(h, "ck1", 7), InvalidSpec, "SnapshotName"),
        (lambda h: hyperv.checkpoint_vm(h, "ck1", "x"), Unsupported, "CheckpointType"),  # ProductionOnly, no agent
        (lambda h: hyperv.checkpoint_vm(h, "nope", "x"), NotFound, "Name"),
        (lambda h: hyperv.checkpoint_vm(h, "ck1", "x", what_if=1), InvalidSpec, "what_if"),
        (lambda h: hyperv.get_vm_snapshot(h, "ck1", "zz"), NotFound, "Name"),
        (lambda h: hyperv.get_vm_snapshot(h, "ck\n1"), InvalidSpec, "VMName"),
        (lambda h: hyperv.restore_vm_snapshot(h, "ck1", "other"), NotFound, "Name"),  # another VM's checkpoint
        (lambda h: hyperv.restore_vm_snapshot(h, "ck1", "../a"), InvalidSpec, "Name"),
        (lambda h: hyperv.rename_vm_snapshot(h, "ck1", "a", "b"), AlreadyExists, "NewName"),
        (lambda h: hyperv.rename_vm_snapshot(h, "ck1", "a", "x" * 64), InvalidSpec, "NewName"),
        (lambda h: hyperv.rename_vm_snapshot(h, "ck1", "zz", "y"), NotFound, "Name"),
        (lambda h: hyperv.remove_vm_snapshot(h, "ck1", "a", include_all_child_snapshots="yes"), InvalidSpec, None),
    ],
)
def test_bad_input_names_the_parameter_and_changes_nothing(
    host: virtkit.Host, storage: Path, call: Any, error: type[VirtkitError], field: str | None
) -> None:
    vm = _vm(host, storage)
    _vm(host, storage, "ck2")
    hyperv.set_vm(host, "ck2", checkpoint_type="Standard")
    hyperv.checkpoint_vm(host, "ck2", "other")
    hyperv.set_vm(host, "ck1", checkpoint_type="Standard")
    hyperv.checkpoint_vm(host, "ck1", "a")
    hyperv.checkpoint_vm(host, "ck1", "b")
    hyperv.set_vm(host, "ck1", checkpoint_type="ProductionOnly")
    before, state = hyperv.get_vm_snapshot(host, "ck1"), vm.info().state
    with pytest.raises(error) as err:
        call(host)
    if isinstance(err.value, InvalidSpec):
        assert err.value.field == (field or "IncludeAllChildSnapshots")
    else:
        assert str(err.value).startswith(f"{field}: "), err.value
    assert hyperv.get_vm_snapshot(host, "ck1") == before and vm.info().state is state
