"""``virtkit disk``: list, hot-add and hot-remove a VM's disks (:attr:`virtkit.VM.disks`) on the command line.

``add`` puts a disk on the running VM and in its persistent definition (only the definition when the VM is off); on
``--bus scsi`` ``--controller`` and ``--unit`` are Hyper-V's ControllerNumber and ControllerLocation. ``remove`` takes
the disk out the same way and leaves its image file where it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

import click
from rich.table import Column, Table

from virtkit.cli.common import Target, check_option, connected, host_options, json_option, out, print_change, step
from virtkit.models._fields import dump
from virtkit.models.disk import DiskBus, DiskCache, DiskFormat, DiskKind
from virtkit.ops.disks import HOTPLUG_BUSES

__all__ = ["disk"]


def _scope_options(fn: Callable[..., None]) -> Callable[..., None]:
    """``--live/--no-live`` and ``--persistent/--no-persistent``: which of the VM's definitions to change."""
    fn = click.option(
        "--persistent/--no-persistent",
        default=True,
        show_default=True,
        help="change the persistent definition (what the VM has after a restart)",
    )(fn)
    return click.option("--live/--no-live", default=True, show_default=True, help="change the running VM")(fn)


@click.group()
def disk() -> None:
    """List, add and remove a VM's disks, while it runs or while it is off."""


@disk.command("list")
@click.argument("vm_name", metavar="VM")
@host_options
@click.option("--json", "as_json", is_flag=True, help="print the disks as JSON")
def list_(vm_name: str, target: Target, as_json: bool) -> None:
    """List VM's disks: target, bus, SCSI address (controller:unit), file, and where it is: the running VM (live),
    the persistent definition, or both."""
    with connected(target) as host:
        disks = host.get(vm_name).disks.list()
    if as_json:
        out.print_json(json.dumps([dump(d) for d in disks]))
        return
    table = Table("target", "bus", "address", Column("path", overflow="fold"), "format", Column("in", no_wrap=True))
    for d in disks:
        address = f"{d.controller}:{d.unit}" if d.controller is not None else "-"
        where = "+".join(name for name, there in (("live", d.live), ("persistent", d.persistent)) if there)
        table.add_row(
            d.target,
            d.disk.bus.value,
            address,
            str(d.disk.path),
            d.disk.format.value + (", read-only" if d.disk.readonly else ""),
            where,
        )
    out.print(table)


def _choice(values: Iterable[DiskFormat | DiskBus | DiskCache | DiskKind]) -> click.Choice[str]:
    return click.Choice([v.value for v in values], case_sensitive=False)


@disk.command("add")
@click.argument("vm_name", metavar="VM")
@click.argument("path")
@click.option("--size", default=None, help="make a new image of this size when PATH does not exist (512MB, 2GiB)")
@click.option("--format", "fmt", type=_choice(DiskFormat), default=None, help="image format [default: qcow2]")
@click.option(
    "--bus",
    type=_choice(HOTPLUG_BUSES),
    default=None,
    help="virtio (virtio-blk) or scsi (virtio-scsi); QEMU cannot add IDE or SATA disks  [default: virtio]",
)
@click.option("--target", "device", default=None, help="guest device name (vdb, sdc); the next free one by default")
@click.option("--kind", type=_choice(DiskKind), default=None, help="block: pass a host block device through")
@click.option("--cache", type=_choice(DiskCache), default=None, help="host cache mode")
@click.option("--readonly", is_flag=True, help="attach it read-only")
@click.option("--controller", type=int, default=None, help="scsi: the virtio-scsi controller (added when missing)")
@click.option("--unit", type=int, default=None, help="scsi: the unit on it; the lowest free one by default")
@_scope_options
@host_options
@check_option
@json_option
def add(
    vm_name: str,
    path: str,
    *,
    size: str | None,
    fmt: str | None,
    bus: str | None,
    device: str | None,
    kind: str | None,
    cache: str | None,
    readonly: bool,
    controller: int | None,
    unit: int | None,
    live: bool,
    persistent: bool,
    target: Target,
    check: bool,
    as_json: bool,
) -> None:
    """Attach the image or block device at PATH to VM; attaching it again changes nothing."""
    given = {"size": size, "format": fmt, "bus": bus, "target": device, "kind": kind, "cache": cache}
    spec = {"path": path, "readonly": readonly, **{k: v for k, v in given.items() if v is not None}}
    with connected(target) as host:
        disks = host.get(vm_name).disks
        change = disks.attach(spec, live=live, persistent=persistent, controller=controller, unit=unit, check=check)
    print_change(change, as_json)


@disk.command("remove")
@click.argument("vm_name", metavar="VM")
@click.argument("target_or_path", metavar="TARGET-OR-PATH")
@click.option("--timeout", default=10.0, show_default=True, help="seconds the guest has to release the disk")
@_scope_options
@host_options
@check_option
@json_option
def remove(
    vm_name: str,
    target_or_path: str,
    *,
    timeout: float,
    live: bool,
    persistent: bool,
    target: Target,
    check: bool,
    as_json: bool,
) -> None:
    """Detach the disk of VM named by its target (sdb) or its path; its image file stays."""
    with connected(target) as host:
        disks = host.get(vm_name).disks
        change = step(
            f"detaching {target_or_path} from {vm_name}",
            lambda: disks.detach(target_or_path, live=live, persistent=persistent, timeout=timeout, check=check),
        )
    print_change(change, as_json)
