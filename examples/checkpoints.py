"""Take a checkpoint of a running VM, let it run on, then revert to the checkpoint and see that it went back.

With the lab's test guest the serial log shows it: the guest's in-memory counter goes back to where it was when
the checkpoint was taken. Run it against a VM on a lab host (`virtkit lab up` prints the URIs):

    .venv/bin/python examples/checkpoints.py --uri qemu+tcp://127.0.0.2:16509/system web1
"""

from __future__ import annotations

import argparse
import sys
import time

import virtkit
from virtkit.lab.serial import GuestLog


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("vm", help="name of a running VM")
    parser.add_argument("--uri", default="qemu:///system", help="libvirt URI of the host")
    parser.add_argument("--name", default="example-checkpoint", help="name of the checkpoint")
    parser.add_argument(
        "--kind",
        choices=[k.value for k in virtkit.SnapshotKind],
        default="memory",
        help="memory (Hyper-V Standard), quiesced (Production), or disk-only",
    )
    parser.add_argument("--wait", type=float, default=5.0, help="seconds the VM runs on before the revert")
    parser.add_argument("--keep", action="store_true", help="keep the checkpoint afterwards")
    args = parser.parse_args()

    with virtkit.connect(args.uri) as host:
        vm = host.get(args.vm)
        serial = vm.spec().serial_log
        log = GuestLog(serial) if serial is not None else None
        try:
            taken = vm.snapshots.create(args.name, kind=args.kind, description="taken by examples/checkpoints.py")
        except virtkit.Unsupported as exc:
            print(f"not possible here: {exc}")
            return 1
        info = taken.after
        assert info is not None
        print(f"checkpoint {info.name}: {info.kind} (quiesced: {info.quiesced}), the VM was {info.vm_state}")
        at = log.last_alive() if log is not None else None

        time.sleep(args.wait)
        before = log.last_alive() if log is not None else None
        try:
            reverted = vm.snapshots.revert(args.name)
        except virtkit.Unsupported as exc:
            print(f"cannot revert here: {exc}")
            return 1
        state = reverted.after.state if reverted.after is not None else None
        print(f"reverted to {args.name}: the VM is {state}")
        if log is not None and at is not None and before is not None:
            back = log.wait_for_alive(timeout=30, after_line=before.line_no)
            print(f"guest counter: {at.counter} at the checkpoint, {before.counter} before the revert, ", end="")
            print(f"{back.counter} after it")

        if not args.keep:
            vm.snapshots.delete(args.name)
            print(f"deleted checkpoint {args.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
