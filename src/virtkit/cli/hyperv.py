"""``virtkit hyperv``: the cmdlet-shaped calls of :mod:`virtkit.hyperv` on the command line.

Each verb is a cmdlet's name in kebab case (``new-vm`` is New-VM), its options the cmdlet's parameters
(``--turn-off`` is -TurnOff), and ``--what-if`` is -WhatIf: the same checks, nothing changed. Copies (VHD and VHDX
imports) draw a progress bar per drive.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from virtkit.cli.common import Target, console, host_options, json_option, out, print_change, what_if_option
from virtkit.cli.common import connected as _host
from virtkit.cli.hyperv_checkpoints import CHECKPOINT_COMMANDS
from virtkit.cli.hyperv_moves import MOVE_COMMANDS
from virtkit.models.change import Change

__all__ = ["hyperv"]


@contextmanager
def _bars() -> Iterator[Callable[[str, float], None]]:
    """A ``progress(field, percent)`` callback drawing one bar per field (a drive being copied); the bars appear
    with the first report, so a command that copies nothing draws nothing."""
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    bar = Progress(*columns, console=console, transient=True)
    tasks: dict[str, TaskID] = {}

    def progress(field: str, percent: float) -> None:
        if not tasks:
            bar.start()
        if field not in tasks:
            tasks[field] = bar.add_task(field if " " in field else f"copying {field}", total=100.0)
        bar.update(tasks[field], completed=percent)

    try:
        yield progress
    finally:
        if tasks:
            bar.stop()


@click.group()
def hyperv() -> None:
    """Hyper-V's cmdlets on KVM: new-vm, get-vm, start-vm, stop-vm, add-vm-hard-disk-drive..."""


@hyperv.command("new-vm")
@click.argument("spec_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--start", is_flag=True, help="start it once made (Start-VM)")
@host_options
@what_if_option
@json_option
def new_vm(spec_file: Path, start: bool, target: Target, what_if: bool, as_json: bool) -> None:
    """New-VM from a YAML or JSON file in Hyper-V's words (Name, Generation, MemoryStartupBytes, HardDrives...)."""
    from virtkit import hyperv as hv

    with _host(target) as host:
        spec = hv.HyperVSpec.from_file(spec_file)
        with _bars() as progress:
            change = hv.new_vm(host, spec, progress=progress, what_if=what_if)
        print_change(change, as_json)
        if start and what_if and change.before is None:
            out.print(f"  then start {spec.name} (check mode: nothing done)")
        elif start:
            print_change(hv.start_vm(host, spec.name, what_if=what_if), as_json)


@hyperv.command("get-vm")
@click.argument("name", required=False)
@host_options
@json_option
def get_vm(name: str | None, target: Target, as_json: bool) -> None:
    """Get-VM: one VM, or every VM of the host, with its Hyper-V state."""
    from virtkit import hyperv as hv

    with _host(target) as host:
        vms = [hv.get_vm(host, name)] if name is not None else hv.get_vm(host)
        if as_json:
            out.print_json(json.dumps([v.to_dict() for v in vms]))
            return
        table = Table("Name", "State", "Generation", "CPUs", "MemoryStartup", "CheckpointType", "Status")
        for v in vms:
            checkpoint = v.checkpoint_type.value if v.checkpoint_type else "-"
            generation = str(v.generation) if v.generation else "-"
            memory = f"{v.memory_startup // 2**20} MB"
            table.add_row(v.name, v.state.value, generation, str(v.processor_count), memory, checkpoint, v.status)
        out.print(table)


def _simple(verb: str, call: str, doc: str) -> None:
    @click.argument("name")
    @host_options
    @what_if_option
    @json_option
    def command(name: str, target: Target, what_if: bool, as_json: bool) -> None:
        from virtkit import hyperv as hv

        with _host(target) as host:
            print_change(getattr(hv, call)(host, name, what_if=what_if), as_json)

    command.__doc__ = doc
    hyperv.command(verb)(command)


_simple("start-vm", "start_vm", "Start-VM: boot the VM, or resume it from its saved state.")
_simple("suspend-vm", "suspend_vm", "Suspend-VM: pause the VM.")
_simple("resume-vm", "resume_vm", "Resume-VM: go on running a paused VM.")
_simple("save-vm", "save_vm", "Save-VM: save the VM's memory and stop it.")
_simple("add-vm-scsi-controller", "add_vm_scsi_controller", "Add-VMScsiController: one more SCSI controller.")


@hyperv.command("stop-vm")
@click.argument("name")
@click.option("--turn-off", is_flag=True, help="power off at once (-TurnOff)")
@click.option("--save", is_flag=True, help="save its state instead (-Save)")
@click.option("--force", is_flag=True, help="turn it off if the guest does not shut down in time (-Force)")
@click.option("--timeout", default=60.0, show_default=True, help="seconds to wait for the guest")
@host_options
@what_if_option
@json_option
def stop_vm(name: str, target: Target, what_if: bool, as_json: bool, **options: Any) -> None:
    """Stop-VM: shut the guest down (through its Shutdown integration service when on, else ACPI)."""
    from virtkit import hyperv as hv

    with _host(target) as host:
        print_change(hv.stop_vm(host, name, what_if=what_if, **options), as_json)


@hyperv.command("restart-vm")
@click.argument("name")
@click.option(
    "--type", "kind", type=click.Choice(["Reset", "Reboot"], case_sensitive=False), default="Reset", show_default=True
)
@host_options
@what_if_option
@json_option
def restart_vm(name: str, kind: str, target: Target, what_if: bool, as_json: bool) -> None:
    """Restart-VM: reset the virtual hardware, or ask the guest to reboot."""
    from virtkit import hyperv as hv

    with _host(target) as host:
        print_change(hv.restart_vm(host, name, type=kind, what_if=what_if), as_json)


@hyperv.command("remove-vm")
@click.argument("name")
@click.option("--force", is_flag=True, help="turn it off first if it runs")
@host_options
@what_if_option
@json_option
def remove_vm(name: str, force: bool, target: Target, what_if: bool, as_json: bool) -> None:
    """Remove-VM: delete the VM; its drives' files stay."""
    from virtkit import hyperv as hv

    with _host(target) as host:
        print_change(hv.remove_vm(host, name, force=force, what_if=what_if), as_json)


@hyperv.command("set-vm-firmware")
@click.argument("name")
@click.option("--enable-secure-boot", type=click.Choice(["On", "Off"], case_sensitive=False), default=None)
@click.option("--secure-boot-template", default=None, help="MicrosoftUEFICertificateAuthority")
@host_options
@what_if_option
@json_option
def set_vm_firmware(name: str, target: Target, what_if: bool, as_json: bool, **options: Any) -> None:
    """Set-VMFirmware: Secure Boot on or off for a Generation 2 VM that is off."""
    from virtkit import hyperv as hv

    with _host(target) as host:
        print_change(hv.set_vm_firmware(host, name, what_if=what_if, **options), as_json)


def _location_options(fn: Callable[..., None]) -> Callable[..., None]:
    for option in (
        click.option("--controller-location", type=int, default=None, help="-ControllerLocation"),
        click.option("--controller-number", type=int, default=None, help="-ControllerNumber"),
        click.option(
            "--controller-type",
            type=click.Choice(["IDE", "SCSI", "VirtIO", "SATA"], case_sensitive=False),
            default=None,
            help="-ControllerType (Generation 2: SCSI; Generation 1: IDE)",
        ),
    ):
        fn = option(fn)
    return fn


@hyperv.command("add-vm-hard-disk-drive")
@click.argument("name")
@click.argument("path")
@_location_options
@host_options
@what_if_option
@json_option
def add_drive(name: str, path: str, target: Target, what_if: bool, as_json: bool, **location: Any) -> None:
    """Add-VMHardDiskDrive: attach PATH (a VHDX or VHD is imported first, with a progress bar)."""
    from virtkit import hyperv as hv

    with _host(target) as host, _bars() as progress:
        change = hv.add_vm_hard_disk_drive(host, name, path, progress=progress, what_if=what_if, **location)
    print_change(change, as_json)


@hyperv.command("remove-vm-hard-disk-drive")
@click.argument("name")
@click.option("--path", default=None, help="the drive's file or device, instead of its location")
@_location_options
@host_options
@what_if_option
@json_option
def remove_drive(name: str, path: str | None, target: Target, what_if: bool, as_json: bool, **location: Any) -> None:
    """Remove-VMHardDiskDrive: detach the drive at a controller location, or of --path; its file stays."""
    from virtkit import hyperv as hv

    with _host(target) as host:
        print_change(hv.remove_vm_hard_disk_drive(host, name, path=path, what_if=what_if, **location), as_json)


@hyperv.command("get-vm-hard-disk-drive")
@click.argument("name")
@host_options
@json_option
def get_drives(name: str, target: Target, as_json: bool) -> None:
    """Get-VMHardDiskDrive: the VM's drives with their controller locations."""
    from virtkit import hyperv as hv

    with _host(target) as host:
        drives = hv.get_vm_hard_disk_drive(host, name)
    if as_json:
        out.print_json(json.dumps([d.to_dict() for d in drives]))
        return
    table = Table("ControllerType", "ControllerNumber", "ControllerLocation", "Path")
    for d in drives:
        number = "-" if d.controller_number is None else str(d.controller_number)
        location = "-" if d.controller_location is None else str(d.controller_location)
        table.add_row(d.controller_type.value, number, location, str(d.path))
    out.print(table)


@hyperv.command("schema")
def schema() -> None:
    """Print the JSON Schema of Hyper-V spec files (for editors)."""
    from virtkit.hyperv import HyperVSpec

    out.print_json(json.dumps(HyperVSpec.json_schema()))


# -- virtual hard disks -------------------------------------------------------------------------------------------


@contextmanager
def _bar(what: str) -> Iterator[Callable[[float], None]]:
    """A ``progress(percent)`` callback drawing one bar, which appears with the first report."""
    with _bars() as progress:
        yield lambda percent: progress(what, percent)


def _print_vhd_change(change: Change[Any], as_json: bool) -> None:
    """A Change of a virtual hard disk, with Get-VHD's property names."""
    before = None if change.before is None else change.before.to_dict()
    after = None if change.after is None else change.after.to_dict()
    if as_json:
        head = {"action": change.action, "target": change.target, "changed": change.changed, "check": change.check}
        out.print_json(json.dumps({**head, "before": before, "after": after}))
        return
    mark = "[yellow]changed[/]" if change.changed else "[green]ok[/]"
    out.print(f"{mark}: {change.action} {change.target}" + (" (check mode: nothing done)" if change.check else ""))
    for key in dict.fromkeys([*(before or {}), *(after or {})]):
        old, new = (before or {}).get(key), (after or {}).get(key)
        if old != new:
            out.print(f"  {key}: {old} -> {new}")


def _print_disk(disk: Any, as_json: bool) -> None:
    data = disk.to_dict()
    if as_json:
        out.print_json(json.dumps(data))
        return
    for key, value in data.items():
        out.print(f"{key:<12} : {value if value not in (None, []) else '-'}")


@hyperv.command("new-vhd")
@click.argument("path")
@click.option("--size-bytes", default=None, help="the disk's size (40GB, 512MB); not for --differencing")
@click.option("--fixed", is_flag=True, help="fully allocated (-Fixed)")
@click.option("--differencing", is_flag=True, help="a qcow2 overlay on --parent-path (-Differencing)")
@click.option("--parent-path", default=None, help="the parent of a differencing disk (-ParentPath)")
@click.option("--block-size-bytes", type=int, default=None, help="-BlockSizeBytes")
@host_options
@what_if_option
@json_option
def new_vhd(path: str, target: Target, what_if: bool, as_json: bool, **options: Any) -> None:
    """New-VHD: a new VHDX, VHD or qcow2 disk at PATH (the extension says which); dynamic unless --fixed."""
    from virtkit import hyperv as hv

    differencing, fixed = options.pop("differencing"), options.pop("fixed")
    with _host(target) as host:
        change = hv.new_vhd(
            host, path, fixed=fixed, dynamic=not (fixed or differencing), differencing=differencing,
            what_if=what_if, **options,
        )  # fmt: skip
        _print_vhd_change(change, as_json)


@hyperv.command("get-vhd")
@click.argument("path")
@host_options
@json_option
def get_vhd(path: str, target: Target, as_json: bool) -> None:
    """Get-VHD: format, type, sizes and the parent chain of the disk at PATH."""
    from virtkit import hyperv as hv

    with _host(target) as host:
        _print_disk(hv.get_vhd(host, path), as_json)


@hyperv.command("convert-vhd")
@click.argument("path")
@click.argument("destination_path")
@click.option(
    "--vhd-type", type=click.Choice(["Fixed", "Dynamic"], case_sensitive=False), default=None, help="-VHDType"
)
@host_options
@what_if_option
@json_option
def convert_vhd(path: str, destination_path: str, vhd_type: str | None, target: Target, **flags: Any) -> None:
    """Convert-VHD: copy PATH into a new disk at DESTINATION_PATH (vhdx, vhd, qcow2, img/raw), with a progress bar."""
    from virtkit import hyperv as hv

    with _host(target) as host, _bar(f"converting {path}") as progress:
        change = hv.convert_vhd(
            host, path, destination_path, vhd_type=vhd_type, what_if=flags["what_if"], progress=progress
        )
    _print_vhd_change(change, flags["as_json"])


@hyperv.command("resize-vhd")
@click.argument("path")
@click.option("--size-bytes", required=True, help="the new, larger size (60GB)")
@host_options
@what_if_option
@json_option
def resize_vhd(path: str, size_bytes: str, target: Target, what_if: bool, as_json: bool) -> None:
    """Resize-VHD: grow the disk at PATH."""
    from virtkit import hyperv as hv

    with _host(target) as host, _bar(f"resizing {path}") as progress:
        change = hv.resize_vhd(host, path, size_bytes, what_if=what_if, progress=progress)
    _print_vhd_change(change, as_json)


@hyperv.command("optimize-vhd")
@click.argument("path")
@host_options
@what_if_option
@json_option
def optimize_vhd(path: str, target: Target, what_if: bool, as_json: bool) -> None:
    """Optimize-VHD: compact a dynamic or differencing disk, reclaiming its zeroed blocks."""
    from virtkit import hyperv as hv

    with _host(target) as host, _bar(f"compacting {path}") as progress:
        change = hv.optimize_vhd(host, path, what_if=what_if, progress=progress)
    _print_vhd_change(change, as_json)
    if not as_json and not what_if and change.before is not None and change.after is not None:
        before, after = change.before.file_size or 0, change.after.file_size or 0
        out.print(f"  file {before:,} -> {after:,} bytes ({before - after:,} reclaimed)")


@hyperv.command("merge-vhd")
@click.argument("path")
@click.option("--destination-path", default=None, help="an ancestor to merge into (default: the parent)")
@host_options
@what_if_option
@json_option
def merge_vhd(path: str, destination_path: str | None, target: Target, what_if: bool, as_json: bool) -> None:
    """Merge-VHD: merge the differencing disk at PATH into its parent, then delete it."""
    from virtkit import hyperv as hv

    with _host(target) as host, _bar(f"merging {path}") as progress:
        change = hv.merge_vhd(host, path, destination_path, what_if=what_if, progress=progress)
    _print_vhd_change(change, as_json)


@hyperv.command("export-vm")
@click.argument("name")
@click.argument("path")
@host_options
@what_if_option
@json_option
def export_vm(name: str, path: str, target: Target, what_if: bool, as_json: bool) -> None:
    """Export-VM: write NAME's drives as VHDX files and its spec into PATH/NAME/, with a bar per drive."""
    from virtkit import hyperv as hv

    with _host(target) as host, _bars() as progress:
        change = hv.export_vm(host, name, path, what_if=what_if, progress=progress)
    if as_json:
        head = {"action": change.action, "target": change.target, "changed": change.changed, "check": change.check}
        out.print_json(json.dumps({**head, "after": None if change.after is None else change.after.to_dict()}))
        return
    mark = "[yellow]changed[/]" if change.changed else "[green]ok[/]"
    out.print(f"{mark}: export {name} to {change.target}" + (" (check mode: nothing done)" if change.check else ""))
    for drive in change.after.hard_drives if change.after else ():
        out.print(f"  {drive.path}")


# -- Set-VM and the integration services ------------------------------------------------------------------------


@hyperv.command("set-vm")
@click.argument("name")
@click.option(
    "--checkpoint-type",
    type=click.Choice(["Standard", "Production", "ProductionOnly", "Disabled"], case_sensitive=False),
    default=None,
)
@click.option(
    "--automatic-stop-action", type=click.Choice(["Save", "ShutDown", "TurnOff"], case_sensitive=False), default=None
)
@click.option("--notes", default=None, help="free text kept with the VM ('' removes it)")
@host_options
@what_if_option
@json_option
def set_vm(name: str, notes: str | None, target: Target, what_if: bool, as_json: bool, **options: Any) -> None:
    """Set-VM: checkpoint type, automatic stop action, notes; the VM may run."""
    from virtkit import hyperv as hv

    extra: dict[str, Any] = {} if notes is None else {"notes": notes or None}
    with _host(target) as host:
        print_change(hv.set_vm(host, name, what_if=what_if, **options, **extra), as_json)


@hyperv.command("get-vm-integration-service")
@click.argument("name")
@click.option("--name", "service", default=None, help="one service (Heartbeat, Time Synchronization...)")
@host_options
@json_option
def get_integration(name: str, service: str | None, target: Target, as_json: bool) -> None:
    """Get-VMIntegrationService: each service, whether it is enabled, and its status."""
    from virtkit import hyperv as hv

    with _host(target) as host:
        services = hv.get_vm_integration_service(host, name, service)
    if as_json:
        out.print_json(json.dumps([s.to_dict() for s in services]))
        return
    table = Table("VMName", "Name", "Enabled", "PrimaryStatusDescription")
    for s in services:
        table.add_row(s.vm_name, s.name, str(s.enabled), s.primary_status_description or "")
    out.print(table)


def _integration(verb: str, call: str, doc: str) -> None:
    @click.argument("name")
    @click.argument("service")
    @host_options
    @what_if_option
    @json_option
    def command(name: str, service: str, target: Target, what_if: bool, as_json: bool) -> None:
        from virtkit import hyperv as hv

        with _host(target) as host:
            print_change(getattr(hv, call)(host, name, service, what_if=what_if), as_json)

    command.__doc__ = doc
    hyperv.command(verb)(command)


_integration("enable-vm-integration-service", "enable_vm_integration_service", "Enable-VMIntegrationService.")
_integration("disable-vm-integration-service", "disable_vm_integration_service", "Disable-VMIntegrationService.")


@hyperv.command("copy-vm-file")
@click.argument("name")
@click.argument("source_path")
@click.argument("destination_path")
@click.option("--create-full-path", is_flag=True, help="make the missing directories in the guest")
@click.option("--force", is_flag=True, help="replace a file there")
@host_options
@what_if_option
def copy_file(name: str, source_path: str, destination_path: str, target: Target, **options: Any) -> None:
    """Copy-VMFile: a host file into the running guest, through its Guest Service Interface, with a bar."""
    from virtkit import hyperv as hv

    with _host(target) as host, _bar(f"copying {source_path}") as progress:
        copied = hv.copy_vm_file(host, name, source_path, destination_path, progress=progress, **options)
    out.print(f"{'would copy' if options['what_if'] else 'copied'} {copied:,} bytes to {name}:{destination_path}")


for _command in (*MOVE_COMMANDS, *CHECKPOINT_COMMANDS):
    hyperv.add_command(_command)
