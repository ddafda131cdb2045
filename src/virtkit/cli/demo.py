"""``virtkit demo``: a two-host lab, a VM created from a spec file, its boot read from its serial console."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from virtkit.connect import connect
from virtkit.errors import InvalidSpec
from virtkit.models.vm import Accel, VMSpec

__all__ = ["DEFAULT_SPEC", "run_demo"]

#: The spec the demo creates, relative to the repository root (where `make demo` runs).
DEFAULT_SPEC = Path("examples/specs/demo-vm.yml")
BOOT_TIMEOUT = 180.0

_ACCEL_WHY = {
    Accel.KVM: "kvm: hardware virtualization (vmx/svm) is present",
    Accel.TCG: "tcg: software emulation, because this host's CPU reports no vmx/svm",
}


def run_demo(*, keep: bool, spec_file: Path | None, console: Console) -> int:
    """Run the demo; return the process exit code.

    :raises VirtkitError: any step failed; the lab is left up for inspection in that case.
    """
    from virtkit.lab import daemons, image
    from virtkit.lab.serial import GuestLog

    path = spec_file or DEFAULT_SPEC
    if not path.is_file():
        raise InvalidSpec("spec", f"{path} not found; run the demo from the repository root or pass --spec")
    spec = VMSpec.from_file(path)
    with console.status("building the test guest (cached after the first time)"):
        image.build_guest()
    t0 = time.monotonic()
    with console.status("starting a two-host lab of libvirt daemons"):
        hosts = daemons.up(2)
    console.print(f"lab: {len(hosts)} hosts up in {time.monotonic() - t0:.1f} s: " + ", ".join(h.uri for h in hosts))
    target = hosts[0]
    with connect(target.uri) as host:
        if host.exists(spec.name):
            host.get(spec.name).delete(storage=True, force=True)
        if spec.serial_log is not None:
            spec.serial_log.unlink(missing_ok=True)
        log = GuestLog(spec.serial_log) if spec.serial_log else None
        started = time.monotonic()
        change = host.create(spec, start=True)
        assert change.after is not None
        console.print(f"created {spec.name} on {target.name} ({_ACCEL_WHY[change.after.accel]})")
        boot_seconds: float | None = None
        marker = ""
        if log is not None:
            with console.status(f"waiting for {spec.name}'s boot marker on its serial console"):
                event = log.wait_for_boot(BOOT_TIMEOUT)
            boot_seconds = time.monotonic() - started
            marker = f"guest uptime {event.uptime:.2f} s at the marker"
        info = host.get(spec.name).info()
        table = Table("VM", "host", "accelerator", "state", "seconds to boot", title="virtkit demo")
        table.add_row(
            info.name,
            f"{target.name} ({host.hostname})",
            info.accel.value,
            info.state.value,
            f"{boot_seconds:.2f}" if boot_seconds is not None else "-",
        )
        console.print(table)
        if log is not None:
            boot_lines = [line for line in log.tail(200) if "VIRTKIT-BOOT" in line]
            console.print(f"serial console: {boot_lines[-1] if boot_lines else '?'} ({marker})")
        if keep:
            console.print(f"kept: {spec.name} runs on {target.uri}; `virtkit lab down` removes everything")
            return 0
        host.get(spec.name).delete(storage=True, force=True)
    with console.status("stopping the lab"):
        daemons.down()
    console.print("lab stopped; nothing left behind")
    return 0
