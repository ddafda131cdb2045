"""``virtkit snapshot``: the checkpoints of one VM (:attr:`virtkit.VM.snapshots`) on the command line.

``create`` is Hyper-V's Checkpoint-VM (``--kind memory`` a Standard checkpoint, ``quiesced`` a Production one,
``--no-fallback`` ProductionOnly), ``list`` Get-VMSnapshot, ``revert`` Restore-VMSnapshot, ``delete``
Remove-VMSnapshot (``--children`` is -IncludeAllChildSnapshots) and ``rename`` Rename-VMSnapshot.
"""

from __future__ import annotations

import json
import time

import click
from rich.table import Column, Table

from virtkit.cli.common import Target, check_option, connected, host_options, json_option, out, print_change, step
from virtkit.models._fields import dump
from virtkit.models.snapshot import SnapshotKind, SnapshotNode

__all__ = ["snapshot"]


@click.group()
def snapshot() -> None:
    """Take, list, revert to, delete and rename a VM's snapshots (Hyper-V's checkpoints)."""


@snapshot.command("create")
@click.argument("vm_name", metavar="VM")
@click.argument("name")
@click.option(
    "--kind",
    type=click.Choice([k.value for k in SnapshotKind], case_sensitive=False),
    default=SnapshotKind.MEMORY.value,
    show_default=True,
    help="memory: disks and memory (Standard); disk-only: the disks, crash-consistent; quiesced: the disks with the "
    "guest's file systems frozen by its agent (Production)",
)
@click.option(
    "--no-fallback",
    is_flag=True,
    help="quiesced only: refuse when the guest agent cannot freeze the guest, instead of taking a memory snapshot "
    "(Hyper-V's ProductionOnly)",
)
@click.option("--description", default="", help="free text kept with the snapshot")
@host_options
@check_option
@json_option
def create(
    vm_name: str,
    name: str,
    *,
    kind: str,
    no_fallback: bool,
    description: str,
    target: Target,
    check: bool,
    as_json: bool,
) -> None:
    """Take snapshot NAME of VM; taking it again changes nothing."""
    with connected(target) as host:
        snaps = host.get(vm_name).snapshots
        change = step(
            f"taking snapshot {name} of {vm_name}",
            lambda: snaps.create(name, kind=kind, description=description, fallback=not no_fallback, check=check),
        )
    print_change(change, as_json)
    taken = change.after.kind if change.after is not None else None
    if not as_json and change.changed and taken is not None and taken.value != kind.lower():
        out.print(
            f"  taken as {taken.value}: no quiesced snapshot was possible (the guest agent is missing or did not "
            "freeze the guest); --no-fallback refuses instead"
        )


@snapshot.command("list")
@click.argument("vm_name", metavar="VM")
@host_options
@click.option("--json", "as_json", is_flag=True, help="print the snapshots as JSON, oldest first")
def list_(vm_name: str, target: Target, as_json: bool) -> None:
    """List VM's snapshots as a tree: each under the one it was taken on top of; * marks the current one."""
    with connected(target) as host:
        snaps = host.get(vm_name).snapshots
        if as_json:
            out.print_json(json.dumps([dump(info) for info in snaps.list()]))
            return
        roots = snaps.tree()
    if not roots:
        out.print(f"{vm_name} has no snapshots")
        return
    table = Table("snapshot", "kind", "VM state", Column("created", no_wrap=True), "parent", "current", "description")
    for depth, node in _walk(roots):
        info = node.info
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.created))
        table.add_row(
            "  " * depth + info.name,
            info.kind.value,
            info.vm_state.value,
            created,
            info.parent or "-",
            "*" if info.current else "",
            info.description,
        )
    out.print(table)


def _walk(nodes: tuple[SnapshotNode, ...], depth: int = 0) -> list[tuple[int, SnapshotNode]]:
    """The nodes and their descendants, depth first, each with its depth in the tree."""
    rows: list[tuple[int, SnapshotNode]] = []
    for node in nodes:
        rows.append((depth, node))
        rows.extend(_walk(node.children, depth + 1))
    return rows


@snapshot.command("revert")
@click.argument("vm_name", metavar="VM")
@click.argument("name")
@host_options
@check_option
@json_option
def revert(vm_name: str, name: str, target: Target, check: bool, as_json: bool) -> None:
    """Bring VM back to snapshot NAME: its disks, and its memory and power state when the snapshot has them.
    What the VM did since is lost."""
    with connected(target) as host:
        snaps = host.get(vm_name).snapshots
        change = step(f"reverting {vm_name} to {name}", lambda: snaps.revert(name, check=check))
    print_change(change, as_json)


@snapshot.command("delete")
@click.argument("vm_name", metavar="VM")
@click.argument("name")
@click.option("--children", is_flag=True, help="delete the snapshots taken on top of it too (else they move up)")
@host_options
@check_option
@json_option
def delete(vm_name: str, name: str, *, children: bool, target: Target, check: bool, as_json: bool) -> None:
    """Delete snapshot NAME of VM, keeping the VM as it is now; deleting one that is not there changes nothing."""
    with connected(target) as host:
        snaps = host.get(vm_name).snapshots
        change = step(
            f"deleting snapshot {name} of {vm_name}", lambda: snaps.delete(name, children=children, check=check)
        )
    print_change(change, as_json)


@snapshot.command("rename")
@click.argument("vm_name", metavar="VM")
@click.argument("name")
@click.argument("new_name")
@host_options
@check_option
@json_option
def rename(vm_name: str, name: str, new_name: str, *, target: Target, check: bool, as_json: bool) -> None:
    """Call snapshot NAME of VM NEW_NAME from now on (Hyper-V's Rename-VMSnapshot); its files keep their names."""
    with connected(target) as host:
        print_change(host.get(vm_name).snapshots.rename(name, new_name, check=check), as_json)
