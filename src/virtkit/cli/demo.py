"""``virtkit demo``: the main job end to end on a two-host lab, each step timed.

A Generation 2 VM from a Hyper-V spec (UEFI with Secure Boot, booting a VHDX that holds the lab guest with
qemu-guest-agent) on host1; a Production checkpoint (the guest's file systems frozen through its agent); a VHDX
hot-added, seen by the guest; a live migration to host2 over the lab's shared storage, with its progress bar; a
revert to the checkpoint (a Production checkpoint holds no memory: the VM is off afterwards, as on Hyper-V) and a
boot that sees the disks of the checkpoint again; then everything removed. What the guest sees is read from its
serial console.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from rich.console import Console
from rich.table import Table

from virtkit.errors import InvalidSpec
from virtkit.models.vm import Accel

if TYPE_CHECKING:
    from virtkit.hyperv import HyperVSpec
    from virtkit.lab.daemons import LabHost

__all__ = ["DEFAULT_SPEC", "run_demo"]

#: The Hyper-V spec the demo creates, relative to the repository root (where `make demo` runs).
DEFAULT_SPEC = Path("examples/specs/hyperv-demo.yml")
BOOT_TIMEOUT = 300.0  # seconds for a UEFI disk boot with Secure Boot under TCG (measured: 9-25 s)
SEEN_TIMEOUT = 30.0  # seconds for the guest to report a disk change (measured: under 1 s)
CHECKPOINT = "before-data-disk"
_ACCEL_WHY = {
    Accel.KVM: "kvm: hardware virtualization (vmx/svm) is present",
    Accel.TCG: "tcg: software emulation, because this host's CPU reports no vmx/svm",
}

T = TypeVar("T")


class _Steps:
    """Runs the demo's steps one by one, each under a spinner, and prints each with the seconds it took."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.rows: list[tuple[str, float, str]] = []

    def run(self, title: str, action: Callable[[], T], detail: Callable[[T], str] = str, *, spinner: bool = True) -> T:
        """Run ``action`` (under a spinner, unless it draws its own progress) and print ``detail(result)``."""
        started = time.monotonic()
        if spinner:
            with self.console.status(title):
                result = action()
        else:
            result = action()
        seconds = time.monotonic() - started
        said = detail(result)
        self.rows.append((title, seconds, said))
        self.console.print(f"[green]✓[/green] {title} [dim]({seconds:.2f} s)[/dim]" + (f": {said}" if said else ""))
        return result

    def table(self) -> Table:
        table = Table("step", "seconds", "what happened", title="virtkit demo: each step timed")
        for title, seconds, said in self.rows:
            table.add_row(title, f"{seconds:.2f}", said)
        table.add_row("[bold]all", f"[bold]{sum(r[1] for r in self.rows):.2f}", "")
        return table


def run_demo(*, keep: bool, spec_file: Path | None, console: Console) -> int:
    """Run the demo; return the process exit code.

    :raises VirtkitError: any step failed; the lab is left up for inspection in that case.
    """
    from virtkit import hyperv

    path = spec_file or DEFAULT_SPEC
    if not path.is_file():
        raise InvalidSpec("spec", f"{path} not found; run the demo from the repository root or pass --spec")
    spec = hyperv.HyperVSpec.from_file(path)
    if spec.generation != 2 or not spec.hard_drives or spec.com_port1 is None:
        raise InvalidSpec("spec", f"{path}: the demo needs a Generation 2 VM with a hard drive and ComPort1")
    return _Demo(spec, _Steps(console)).run(keep=keep)


class _Demo:
    """The demo's phases, on one Hyper-V spec (see the module's docstring)."""

    def __init__(self, spec: HyperVSpec, steps: _Steps) -> None:
        from virtkit.lab.serial import GuestLog

        assert spec.com_port1 is not None  # checked by run_demo
        self.spec = spec
        self.steps = steps
        self.name = spec.name
        self.boot_vhdx = spec.hard_drives[0].path
        self.data_vhdx = self.boot_vhdx.with_name(f"{spec.name}-data.vhdx")
        self.log = GuestLog(spec.com_port1)

    def run(self, *, keep: bool) -> int:
        from virtkit.lab import daemons

        hosts = self.steps.run("start a two-host lab", lambda: daemons.up(2), lambda hs: ", ".join(h.name for h in hs))
        source, destination = hosts[0], hosts[1]
        self._clear(hosts)
        self._on_source(source)
        self._migrate(source, destination)
        self._revert(destination)
        if keep:
            self.steps.console.print(self.steps.table())
            self.steps.console.print(f"kept: {self.name} runs on {destination.uri}; `virtkit lab down` removes all")
            return 0
        self._remove(destination)
        self.steps.run("stop the lab", daemons.down, lambda _: "nothing left behind")
        self.steps.console.print(self.steps.table())
        return 0

    def _clear(self, hosts: list[LabHost]) -> None:
        """Remove what an interrupted demo left behind: its VM on any host, its files."""
        from virtkit import hyperv
        from virtkit.connect import connect
        from virtkit.lab.paths import shared_dir

        for lab in hosts:
            with connect(lab.uri) as host:
                if host.exists(self.name):
                    vm = host.get(self.name)
                    for root in vm.snapshots.tree():
                        vm.snapshots.delete(root.info.name, children=True)
                    hyperv.remove_vm(host, self.name, force=True)
        for stale in vm_files(shared_dir(), self.name):
            stale.unlink(missing_ok=True)

    def _on_source(self, source: LabHost) -> None:
        from virtkit import hyperv
        from virtkit.connect import connect
        from virtkit.lab import bootdisk

        log, name = self.log, self.name
        self.steps.run(
            "write the boot VHDX (shim, GRUB, kernel, qemu-guest-agent)",
            lambda: bootdisk.build_boot_disk("uefi", variant="agent").copy_to(self.boot_vhdx, "vhdx").name,
        )
        with connect(source.uri) as host:
            self.steps.run(
                f"New-VM {name}: Generation 2, Secure Boot",
                lambda: hyperv.new_vm(host, self.spec),
                lambda change: _ACCEL_WHY[change.after.accel] if change.after is not None else "",
            )

            def boot() -> str:
                hyperv.start_vm(host, name)
                event = log.wait_for_boot(BOOT_TIMEOUT)
                agent = log.wait_for_agent(BOOT_TIMEOUT)
                disks = log.wait_for_disks(bool, SEEN_TIMEOUT)
                secure = "on" if event.secure_boot else "off"
                return f"{event.firmware}, Secure Boot {secure}, disks {','.join(disks)}, agent {agent.status}"

            self.steps.run(f"Start-VM on {source.name}, the guest boots", boot)

            def checkpoint() -> str:
                taken = hyperv.checkpoint_vm(host, name, CHECKPOINT).after  # as its CheckpointType says
                assert taken is not None
                return "file systems frozen by the agent" if taken.quiesced else "no agent: a Standard one"

            self.steps.run(f"Checkpoint-VM {CHECKPOINT} (CheckpointType {self.spec.checkpoint_type.value})", checkpoint)

            def add_disk() -> str:
                before = log.last_disks() or ()
                hyperv.new_vhd(host, self.data_vhdx, "64MB")
                hyperv.add_vm_hard_disk_drive(host, name, self.data_vhdx)
                seen = log.wait_for_disks(lambda d: len(d) > len(before), SEEN_TIMEOUT)
                return f"the guest sees {','.join(seen)}"

            self.steps.run("New-VHD, Add-VMHardDiskDrive (VHDX, live)", add_disk)

    def _migrate(self, source: LabHost, destination: LabHost) -> None:
        from virtkit.cli.migrate import run_migration
        from virtkit.lab.paths import shared_dir
        from virtkit.models.migration import MigrationMode, MigrationTuning

        result = self.steps.run(
            f"live migration {source.name} -> {destination.name}",
            lambda: run_migration(
                self.name,
                source.uri,
                destination.uri,
                mode=MigrationMode.LIVE,
                tuning=MigrationTuning(),
                shared_storage=[shared_dir()],
                storage=None,
                check=False,
                console=self.steps.console,
            ),
            lambda r: f"downtime {r.downtime * 1000:.0f} ms" if r.downtime is not None else "moved",
            spinner=False,  # it draws its own progress bar
        )
        del result

    def _revert(self, destination: LabHost) -> None:
        from virtkit import hyperv
        from virtkit.connect import connect

        log, name = self.log, self.name
        with connect(destination.uri) as host:

            def revert() -> str:
                change = hyperv.restore_vm_snapshot(host, name, CHECKPOINT)
                assert change.after is not None
                return f"{change.after.state.value}: a Production checkpoint holds no memory"

            self.steps.run(f"Restore-VMSnapshot on {destination.name}", revert)

            def boot_again() -> str:
                boots = len(log.boots())
                hyperv.start_vm(host, name)
                log.wait_for_boot(BOOT_TIMEOUT, after_boots=boots)
                disks = log.wait_for_disks(bool, SEEN_TIMEOUT)
                return f"the guest sees {','.join(disks)}, the disks of the checkpoint"

            self.steps.run(f"Start-VM on {destination.name}", boot_again)

    def _remove(self, destination: LabHost) -> None:
        from virtkit import hyperv
        from virtkit.connect import connect
        from virtkit.lab.paths import shared_dir

        def clean() -> str:
            with connect(destination.uri) as host:
                hyperv.remove_vm_snapshot(host, self.name, CHECKPOINT)
                hyperv.remove_vm(host, self.name, force=True)
            files = vm_files(shared_dir(), self.name)
            for leftover in files:
                leftover.unlink()
            return f"checkpoint merged, VM and its {len(files)} files removed"

        self.steps.run("Remove-VMSnapshot, Remove-VM", clean)


def vm_files(directory: Path, name: str) -> list[Path]:
    """The files in ``directory`` named after VM ``name`` (its disks, overlays, variable store, console log)."""
    return sorted(p for p in directory.iterdir() if p.name.startswith((f"{name}.", f"{name}-")))
