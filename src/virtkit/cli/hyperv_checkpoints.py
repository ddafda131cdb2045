"""``virtkit hyperv checkpoint-vm``, ``get-vm-snapshot``, ``restore-vm-snapshot``, ``remove-vm-snapshot`` and
``rename-vm-snapshot``: Hyper-V's checkpoint cmdlets (:mod:`virtkit.hyperv.checkpoints`)."""

from __future__ import annotations

import json

import click
from rich.table import Table

from virtkit.cli.common import Target, console, host_options, json_option, out, print_change, what_if_option
from virtkit.cli.common import connected as _host

__all__ = ["CHECKPOINT_COMMANDS"]


@click.command("checkpoint-vm")
@click.argument("name")
@click.option("--snapshot-name", default=None, help="the checkpoint's name (-SnapshotName; default: VM and time)")
@host_options
@what_if_option
@json_option
def checkpoint_vm(name: str, snapshot_name: str | None, target: Target, what_if: bool, as_json: bool) -> None:
    """Checkpoint-VM: take a checkpoint of VM NAME of the kind its CheckpointType says (Standard: disks and memory;
    Production: disks, file systems frozen by the guest agent, Standard without one; ProductionOnly: fails then)."""
    from virtkit import hyperv as hv

    with _host(target) as host, console.status(f"checkpoint of {name}"):
        change = hv.checkpoint_vm(host, name, snapshot_name, what_if=what_if)
    print_change(change, as_json)


@click.command("get-vm-snapshot")
@click.argument("vm_name")
@click.option("--name", default=None, help="only this checkpoint (-Name)")
@host_options
@json_option
def get_vm_snapshot(vm_name: str, name: str | None, target: Target, as_json: bool) -> None:
    """Get-VMSnapshot: the checkpoints of VM VM_NAME, oldest first; * marks the one its present state descends from."""
    from virtkit import hyperv as hv

    with _host(target) as host:
        shown = hv.get_vm_snapshot(host, vm_name, name)
    if as_json:
        out.print_json(json.dumps([s.to_dict() for s in shown]))
        return
    table = Table("Name", "SnapshotType", "CreationTime", "ParentSnapshotName", "State", "")
    for s in shown:
        created = s.creation_time.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(s.name, s.snapshot_type, created, s.parent_snapshot_name or "", s.info.vm_state.value,
                      "*" if s.is_current else "")  # fmt: skip
    out.print(table)


@click.command("restore-vm-snapshot")
@click.argument("vm_name")
@click.argument("name")
@host_options
@what_if_option
@json_option
def restore_vm_snapshot(vm_name: str, name: str, target: Target, what_if: bool, as_json: bool) -> None:
    """Restore-VMSnapshot: bring VM VM_NAME back to checkpoint NAME (a Production checkpoint leaves it off)."""
    from virtkit import hyperv as hv

    with _host(target) as host, console.status(f"restoring {vm_name} to {name}"):
        change = hv.restore_vm_snapshot(host, vm_name, name, what_if=what_if)
    print_change(change, as_json)


@click.command("remove-vm-snapshot")
@click.argument("vm_name")
@click.argument("name")
@click.option("--include-all-child-snapshots", is_flag=True, help="its descendants too (-IncludeAllChildSnapshots)")
@host_options
@what_if_option
@json_option
def remove_vm_snapshot(
    vm_name: str, name: str, *, include_all_child_snapshots: bool, target: Target, what_if: bool, as_json: bool
) -> None:
    """Remove-VMSnapshot: delete checkpoint NAME of VM VM_NAME, merging its disks into the present ones."""
    from virtkit import hyperv as hv

    with _host(target) as host, console.status(f"removing checkpoint {name} of {vm_name}"):
        change = hv.remove_vm_snapshot(
            host, vm_name, name, include_all_child_snapshots=include_all_child_snapshots, what_if=what_if
        )
    print_change(change, as_json)


@click.command("rename-vm-snapshot")
@click.argument("vm_name")
@click.argument("name")
@click.argument("new_name")
@host_options
@what_if_option
@json_option
def rename_vm_snapshot(vm_name: str, name: str, new_name: str, *, target: Target, what_if: bool, as_json: bool) -> None:
    """Rename-VMSnapshot: call checkpoint NAME of VM VM_NAME NEW_NAME from now on."""
    from virtkit import hyperv as hv

    with _host(target) as host:
        change = hv.rename_vm_snapshot(host, vm_name, name, new_name, what_if=what_if)
    print_change(change, as_json)


#: The commands of this module, added to the ``virtkit hyperv`` group by :mod:`virtkit.cli.hyperv`.
CHECKPOINT_COMMANDS = (checkpoint_vm, get_vm_snapshot, restore_vm_snapshot, remove_vm_snapshot, rename_vm_snapshot)
