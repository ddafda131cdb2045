"""``virtkit hyperv move-vm``, ``set-vm-processor`` and ``get-vm-processor``: moving a VM between hosts, and the
processor that lets it move (:mod:`virtkit.hyperv.moves`).

``move-vm`` draws the migration's progress bar, as ``virtkit migrate`` does; Ctrl-C stops the move and the VM goes
on where it was.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

import click
from rich.table import Table

from virtkit.cli.common import Target, console, host_options, json_option, out, print_change, what_if_option
from virtkit.cli.common import connected as _host

__all__ = ["MOVE_COMMANDS"]


@click.command("move-vm")
@click.argument("name")
@click.option("--destination-host", required=True, help="libvirt URI of the host to move it to (-DestinationHost)")
@click.option("--include-storage", is_flag=True, help="copy its disks there while it runs (-IncludeStorage)")
@click.option(
    "--destination-storage-path",
    type=click.Path(path_type=Path),
    default=None,
    help="directory on the destination for the copied disks (-DestinationStoragePath; implies --include-storage)",
)
@click.option("--shared", multiple=True, type=click.Path(path_type=Path), help="a directory both hosts see")
@host_options
@what_if_option
@json_option
def move_vm(
    name: str,
    *,
    destination_host: str,
    include_storage: bool,
    destination_storage_path: Path | None,
    shared: tuple[Path, ...],
    target: Target,
    what_if: bool,
    as_json: bool,
) -> None:
    """Move-VM: move the running VM NAME to another host live, with a progress bar; --storage-root applies to both
    hosts."""
    import virtkit
    from virtkit import hyperv as hv
    from virtkit.cli.migrate import migration_bar, print_result

    with ExitStack() as stack:
        host = stack.enter_context(_host(target))
        roots = target.storage_roots or None
        destination = stack.enter_context(virtkit.connect(destination_host, storage_roots=roots))
        mode = "live-storage" if include_storage or destination_storage_path is not None else "live"
        progress, cancel = stack.enter_context(migration_bar(console, f"{mode} {name}"))
        result = hv.move_vm(
            host,
            name,
            destination,
            include_storage=include_storage,
            destination_storage_path=destination_storage_path,
            shared_storage=shared,
            what_if=what_if,
            progress=progress,
            cancel=cancel,
        )
    print_result(result, as_json)


@click.command("set-vm-processor")
@click.argument("name")
@click.option("--count", type=int, default=None, help="virtual processors, 1 to 240 (-Count)")
@click.option(
    "--compatibility-for-migration-enabled",
    "compatible",
    type=click.Choice(["On", "Off"], case_sensitive=False),
    default=None,
    help="On: the baseline CPU of this host and every --host; Off: the host's own CPU",
)
@click.option("--host", "hosts", multiple=True, help="libvirt URI of another host the VM may move to (repeat it)")
@host_options
@what_if_option
@json_option
def set_vm_processor(
    name: str,
    *,
    count: int | None,
    compatible: str | None,
    hosts: tuple[str, ...],
    target: Target,
    what_if: bool,
    as_json: bool,
) -> None:
    """Set-VMProcessor: the VM's processor count and processor compatibility for migration (the VM must be off)."""
    import virtkit
    from virtkit import hyperv as hv

    enabled = None if compatible is None else compatible.lower() == "on"
    with ExitStack() as stack:
        host = stack.enter_context(_host(target))
        others = [stack.enter_context(virtkit.connect(uri)) for uri in hosts]
        change = hv.set_vm_processor(
            host, name, count=count, compatibility_for_migration_enabled=enabled, hosts=others, what_if=what_if
        )
    print_change(change, as_json)


@click.command("get-vm-processor")
@click.argument("name")
@host_options
@json_option
def get_vm_processor(name: str, target: Target, as_json: bool) -> None:
    """Get-VMProcessor: the VM's processor count and whether its CPU is fixed for migration."""
    from virtkit import hyperv as hv

    with _host(target) as host:
        processor = hv.get_vm_processor(host, name)
    if as_json:
        out.print_json(json.dumps(processor.to_dict()))
        return
    table = Table("VMName", "Count", "CompatibilityForMigrationEnabled", "CPU")
    cpu = " ".join([processor.model, *processor.features]) if processor.model else "host's own"
    table.add_row(processor.vm_name, str(processor.count), str(processor.compatibility_for_migration_enabled), cpu)
    out.print(table)


MOVE_COMMANDS = (move_vm, set_vm_processor, get_vm_processor)
