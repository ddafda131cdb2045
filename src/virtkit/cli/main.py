"""The ``virtkit`` command line: VMs, the local lab, the JSON schema and the demo."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from virtkit.cli.apply import apply
from virtkit.cli.common import check_option, console, json_option, out, uri_option
from virtkit.cli.common import errors as _errors
from virtkit.cli.common import print_change as _print_change
from virtkit.cli.common import step as _step
from virtkit.cli.disk import disk
from virtkit.cli.hyperv import hyperv
from virtkit.cli.saved import SAVED_COMMANDS
from virtkit.cli.snapshot import snapshot

if TYPE_CHECKING:
    from virtkit.models.migration import MigrationTuning

__all__ = ["cli", "main"]


@click.group()
@click.version_option(package_name="virtkit")
def cli() -> None:
    """Automate KVM/QEMU virtual machines through libvirt."""


# -- VMs -----------------------------------------------------------------------------------------------------------


def tuning_options(fn: Callable[..., None]) -> Callable[..., None]:
    """The live migration tuning options, handed to the command as one ``tuning`` argument."""

    @functools.wraps(fn)
    def wrapper(
        *args: Any,
        bandwidth: int | None,
        max_downtime: int,
        strategy: str,
        postcopy: bool,
        on_timeout: str,
        compression: str,
        connections: int,
        timeout_per_gib: float,
        **kwargs: Any,
    ) -> None:
        from virtkit.models.migration import MigrationTuning

        with _errors():
            tuning = MigrationTuning.from_dict(
                {
                    "bandwidth": bandwidth,
                    "strategy": strategy,
                    "downtime_start": min(50, max_downtime),
                    "downtime_max": max_downtime,
                    "postcopy": postcopy,
                    "on_timeout": on_timeout,
                    "compression": compression,
                    "connections": connections,
                    "timeout_per_gib": timeout_per_gib,
                },
                "tuning",
            )
        fn(*args, tuning=tuning, **kwargs)

    for option in (
        click.option("--timeout-per-gib", type=float, default=300.0, show_default=True, help="timeout, s per GiB"),
        click.option(
            "--on-timeout",
            type=click.Choice(["force", "abort"]),
            default="force",
            show_default=True,
            help="at the timeout, or when it stops converging: finish (post-copy, else a pause) or give up",
        ),
        click.option(
            "--postcopy/--no-postcopy",
            default=True,
            show_default=True,
            help="allow post-copy (the VM depends on both hosts until it ends)",
        ),
        click.option("--connections", type=int, default=1, show_default=True, help="parallel connections (multifd)"),
        click.option(
            "--compression",
            type=click.Choice(["auto", "xbzrle", "none"]),
            default="auto",
            show_default=True,
            help="compression of pages sent again",
        ),
        click.option(
            "--strategy",
            type=click.Choice(["auto", "precopy", "postcopy", "stopped"]),
            default="auto",
            show_default=True,
            help="how memory is copied",
        ),
        click.option("--max-downtime", type=int, default=500, show_default=True, help="downtime ceiling, ms"),
        click.option("--bandwidth", type=int, default=None, help="transfer cap in MiB/s"),
    ):
        wrapper = option(wrapper)
    return wrapper


@cli.group()
def vm() -> None:
    """Create and run VMs."""


@vm.command("list")
@uri_option
def vm_list(uri: str) -> None:
    """List the VMs of a host."""
    import virtkit

    with _errors(), virtkit.connect(uri) as host:
        table = Table("VM", "state", "accel", "vCPUs", "memory", "host")
        for v in host.list():
            i = v.info()
            table.add_row(i.name, i.state.value, i.accel.value, str(i.vcpus), f"{i.memory // 2**20} MiB", host.uri)
        out.print(table)


@vm.command("create")
@click.argument("spec_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--start", is_flag=True, help="boot it after defining it")
@uri_option
@check_option
@json_option
def vm_create(spec_file: Path, start: bool, uri: str, check: bool, as_json: bool) -> None:
    """Create a VM from a YAML spec file."""
    import virtkit

    with _errors():
        spec = virtkit.VMSpec.from_file(spec_file)
        with virtkit.connect(uri) as host:
            _print_change(host.create(spec, start=start, check=check), as_json)


def _lifecycle(name: str, action: str, **kwargs: Any) -> None:
    import virtkit

    uri, check, as_json = kwargs.pop("uri"), kwargs.pop("check"), kwargs.pop("as_json")
    with _errors(), virtkit.connect(uri) as host:
        handle = host.get(name)
        _print_change(getattr(handle, action)(check=check, **kwargs), as_json)


for _action, _help in (
    ("start", "Boot a VM (a saved VM resumes)."),
    ("destroy", "Power a VM off at once."),
    ("pause", "Pause a VM's vCPUs."),
    ("resume", "Resume a paused VM."),
):

    def _make(action: str) -> Callable[..., None]:
        def command(name: str, **kwargs: Any) -> None:
            _lifecycle(name, action, **kwargs)

        return command

    vm.command(_action, help=_help)(click.argument("name")(uri_option(check_option(json_option(_make(_action))))))


@vm.command("shutdown")
@click.argument("name")
@click.option("--timeout", default=60.0, show_default=True, help="seconds to wait for the guest")
@click.option("--force", is_flag=True, help="power off hard after the timeout")
@uri_option
@check_option
@json_option
def vm_shutdown(name: str, timeout: float, force: bool, **kwargs: Any) -> None:
    """Shut a VM down gracefully, then hard if --force."""
    _lifecycle(name, "shutdown", timeout=timeout, force=force, **kwargs)


@vm.command("reboot")
@click.argument("name")
@click.option("--hard", is_flag=True, help="reset the virtual hardware instead of asking the guest")
@uri_option
@check_option
@json_option
def vm_reboot(name: str, hard: bool, **kwargs: Any) -> None:
    """Reboot a VM."""
    _lifecycle(name, "reboot", hard=hard, **kwargs)


@vm.command("delete")
@click.argument("name")
@click.option("--storage", is_flag=True, help="also remove its disk images and serial log")
@click.option("--force", is_flag=True, help="power it off first if it runs")
@uri_option
@check_option
@json_option
def vm_delete(name: str, storage: bool, force: bool, **kwargs: Any) -> None:
    """Delete a VM."""
    _lifecycle(name, "delete", storage=storage, force=force, **kwargs)


@cli.command("migrate")
@click.argument("name")
@click.option("--from", "source", required=True, help="libvirt URI of the host the VM is on")
@click.option("--to", "destination", required=True, help="libvirt URI of the host to move it to")
@click.option(
    "--mode",
    type=click.Choice(["live", "live-storage", "quick", "offline"]),
    default="live",
    show_default=True,
    help="live: shared storage; live-storage: copy its disks too; quick: save and restore; offline: a stopped VM",
)
@click.option("--shared", "shared", multiple=True, type=click.Path(path_type=Path), help="a directory both hosts see")
@click.option("--storage", type=click.Path(path_type=Path), default=None, help="directory on --to for copied disks")
@tuning_options
@check_option
@json_option
def migrate(
    name: str,
    *,
    source: str,
    destination: str,
    mode: str,
    shared: tuple[Path, ...],
    storage: Path | None,
    tuning: MigrationTuning,
    check: bool,
    as_json: bool,
) -> None:
    """Move VM NAME to another host, with a progress bar (Ctrl-C cancels: the VM stays where it was)."""
    from virtkit.cli.migrate import print_result, run_migration
    from virtkit.models.migration import MigrationMode

    with _errors():
        result = run_migration(
            name,
            source,
            destination,
            mode=MigrationMode(mode),
            tuning=tuning,
            shared_storage=shared,
            storage=storage,
            check=check,
            console=console,
        )
        print_result(result, as_json)


@cli.command("drain")
@click.argument("source")
@click.option("--to", "destinations", multiple=True, required=True, help="libvirt URI of a host to move VMs to")
@click.option("--max-concurrent", type=int, default=2, show_default=True, help="migrations at once")
@click.option("--shared", "shared", multiple=True, type=click.Path(path_type=Path), help="a directory all hosts see")
@click.option("--skip-stopped", is_flag=True, help="leave stopped VMs defined on SOURCE")
@tuning_options
@check_option
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def drain(
    source: str,
    *,
    destinations: tuple[str, ...],
    max_concurrent: int,
    shared: tuple[Path, ...],
    skip_stopped: bool,
    tuning: MigrationTuning,
    check: bool,
    as_json: bool,
) -> None:
    """Move every VM off the host at libvirt URI SOURCE, for maintenance (Ctrl-C cancels what is under way)."""
    from virtkit.cli.migrate import run_drain
    from virtkit.models.results import DrainIncomplete

    with _errors():
        try:
            result = run_drain(
                source,
                destinations,
                max_concurrent=max_concurrent,
                include_stopped=not skip_stopped,
                tuning=tuning,
                shared_storage=shared,
                check=check,
                console=console,
            )
        except DrainIncomplete as exc:
            if as_json:
                out.print_json(json.dumps(exc.result.as_dict()))
            raise
        if as_json:
            out.print_json(json.dumps(result.as_dict()))
            return
        for moved in result.moved:
            where = moved.after.host if moved.after is not None else moved.destination
            note = " (check mode: nothing done)" if moved.check else ""
            out.print(f"[yellow]moved[/]: {moved.target} ({moved.mode.value}) to {where}{note}")
        for name, reason in result.skipped:
            out.print(f"[red]skipped[/]: {name}: {reason}")
        out.print(f"  {len(result.moved)} moved, {len(result.skipped)} skipped in {result.total_time:.1f} s")


@cli.command("stop-vms")
@click.option("--timeout", default=60.0, show_default=True, help="seconds a guest has to shut down")
@click.option("--max-concurrent", type=int, default=4, show_default=True, help="VMs handled at once")
@uri_option
@check_option
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def stop_vms(timeout: float, max_concurrent: int, uri: str, check: bool, as_json: bool) -> None:
    """Stop every running VM of a host as each asks (on_host_stop, Hyper-V's AutomaticStopAction): save, shut down
    or power off. For the host's shutdown sequence, or before maintenance."""
    import virtkit

    with _errors(), virtkit.connect(uri) as host:
        result = _step(
            "stopping VMs", lambda: virtkit.stop_vms(host, timeout=timeout, max_concurrent=max_concurrent, check=check)
        )
    if as_json:
        out.print_json(json.dumps(result.as_dict()))
    else:
        table = Table("VM", "asks", "done", "note")
        for v in result.vms:
            done = v.done.value if v.done else "[red]failed[/]"
            table.add_row(v.name, v.action.value, done, v.note or (str(v.error) if v.error else ""))
        out.print(table)
        out.print(
            f"  {len(result.vms)} VMs in {result.total_time:.1f} s" + (" (check mode: nothing done)" if check else "")
        )
    if result.failed:
        sys.exit(1)


@cli.command()
def schema() -> None:
    """Print the JSON Schema of VM spec files (for editors)."""
    from virtkit.models.vm import VMSpec

    out.print_json(json.dumps(VMSpec.json_schema()))


# -- the lab -------------------------------------------------------------------------------------------------------


@cli.group()
def lab() -> None:
    """A local multi-host lab of real libvirt daemons, sharing one storage directory."""


@lab.command("up")
@click.option("--hosts", "count", default=2, show_default=True, help="how many hosts")
def lab_up(count: int) -> None:
    """Start (or reuse) the lab's hosts and print their URIs."""
    from virtkit.lab import daemons

    with _errors():
        started = _step(f"starting {count} lab hosts", lambda: daemons.up(count))
    table = Table("host", "address", "URI")
    for h in started:
        table.add_row(h.name, h.address, h.uri)
    out.print(table)


@lab.command("down")
def lab_down() -> None:
    """Stop every lab host, leaving no process, mount or VM behind."""
    from virtkit.lab import daemons

    with _errors():
        _step("stopping the lab", daemons.down)
    out.print("lab stopped")


@lab.command("status")
def lab_status() -> None:
    """Show the lab's hosts."""
    from virtkit.lab import daemons

    with _errors():
        table = Table("host", "URI", "running", "VMs")
        for s in daemons.status():
            table.add_row(s.host.name, s.host.uri, "yes" if s.running else "no", str(s.domains or 0))
        out.print(table)


@lab.command("image")
@click.option("--force", is_flag=True, help="rebuild even if cached")
@click.option(
    "--variant",
    type=click.Choice(["plain", "agent"]),
    default="plain",
    show_default=True,
    help="agent: with qemu-guest-agent on its virtio-serial port",
)
def lab_image(force: bool, variant: str) -> None:
    """Build (or reuse) the lab's test guest: a Debian kernel and a busybox initramfs."""
    from virtkit.lab import image

    with _errors(), console.status("guest image") as status:
        guest = image.build_guest(
            variant=variant, force=force, progress=lambda msg: status.update(f"guest image: {msg}")
        )
    console.print(f"guest image ({variant}): kernel {guest.kernel_version}, {guest.kernel}, {guest.initrd}")


@lab.command("boot-disk")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--firmware", type=click.Choice(["bios", "uefi"]), default="uefi", show_default=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["vhdx", "vhd", "qcow2", "raw"]),
    default=None,
    help="default: DEST's extension (.vhdx, .vhd, .qcow2, .img/.raw)",
)
@click.option("--unsigned", is_flag=True, help="strip the kernel's signature (Secure Boot then refuses it)")
@click.option("--variant", type=click.Choice(["plain", "agent"]), default="plain", show_default=True)
def lab_boot_disk(dest: Path, firmware: str, fmt: str | None, unsigned: bool, variant: str) -> None:
    """Write a disk-bootable test guest to DEST: SYSLINUX on MBR (bios), or signed shim, GRUB and kernel (uefi)."""
    from virtkit.errors import InvalidSpec
    from virtkit.lab import bootdisk

    by_suffix = {".vhdx": "vhdx", ".vhd": "vhd", ".qcow2": "qcow2", ".img": "raw", ".raw": "raw"}
    with _errors():
        if fmt is None and (fmt := by_suffix.get(dest.suffix.lower())) is None:
            raise InvalidSpec("dest", f"{dest} has no disk extension (.vhdx, .vhd, .qcow2, .img); or give --format")
    with _errors(), console.status("boot disk") as status:
        disk = bootdisk.build_boot_disk(
            firmware, variant=variant, signed=not unsigned, progress=lambda msg: status.update(f"boot disk: {msg}")
        )
        disk.copy_to(dest, fmt)
    console.print(f"boot disk ({firmware}, {fmt}, kernel {disk.kernel_version}): {dest}")


@lab.command("system-daemons")
def lab_system_daemons() -> None:
    """Start this machine's own libvirt daemons (qemu:///system) when no systemd runs them."""
    from virtkit.lab import daemons

    with _errors():
        _step("libvirt daemons for qemu:///system", daemons.ensure_system_daemons)
    console.print("libvirt daemons: qemu:///system answers")


@cli.command()
@click.option("--keep", is_flag=True, help="leave the lab and the VM running afterwards")
@click.option(
    "--spec",
    "spec_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="a Hyper-V spec of a Generation 2 VM (default examples/specs/hyperv-demo.yml)",
)
def demo(keep: bool, spec_file: Path | None) -> None:
    """The main job end to end on a two-host lab, each step timed: a Generation 2 VM from a Hyper-V spec, a
    Production checkpoint, a VHDX hot-added, a live migration, a revert, then everything removed."""
    from virtkit.cli.demo import run_demo

    with _errors():
        sys.exit(run_demo(keep=keep, spec_file=spec_file, console=out))


cli.add_command(apply)
cli.add_command(hyperv)
cli.add_command(snapshot)
cli.add_command(disk)
for _saved in SAVED_COMMANDS:
    vm.add_command(_saved)


def main() -> None:
    """Entry point of the ``virtkit`` command."""
    cli()


if __name__ == "__main__":
    main()
