"""Create a VM from a spec file on a host, boot it, pause and resume it, then shut it down and delete it.

Run it against a lab host (`virtkit lab up` prints the URIs) or the machine's own libvirt:

    .venv/bin/python examples/lifecycle.py --uri qemu+tcp://127.0.0.2:16509/system examples/specs/demo-vm.yml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import virtkit
from virtkit.lab.serial import GuestLog


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", type=Path, help="a VM spec file (YAML)")
    parser.add_argument("--uri", default="qemu:///system", help="libvirt URI of the host")
    parser.add_argument("--keep", action="store_true", help="leave the VM running")
    args = parser.parse_args()

    spec = virtkit.VMSpec.from_file(args.spec)
    with virtkit.connect(args.uri) as host:
        change = host.create(spec, start=True)
        print(f"create: changed={change.changed}, accelerator={change.after.accel if change.after else '?'}")
        vm = host.get(spec.name)
        if spec.serial_log is not None:
            boot = GuestLog(spec.serial_log).wait_for_boot(timeout=180)
            print(f"guest booted: uptime {boot.uptime:.2f} s at its boot marker")
        for step in (vm.pause, vm.resume):
            c = step()
            print(f"{c.action}: {c.before.state if c.before else None} -> {c.after.state if c.after else None}")
        if args.keep:
            return 0
        stopped = vm.shutdown(timeout=5, force=True).after
        print(f"shutdown: {stopped.state if stopped else None} (forced after 5 s: the test guest has no ACPI daemon)")
        vm.delete(storage=True)
        print(f"deleted {spec.name} and its storage")
    return 0


if __name__ == "__main__":
    sys.exit(main())
