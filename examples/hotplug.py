"""Hot-add a new 1 GiB disk to a running VM on its virtio-scsi controller, wait until the guest sees it, hot-remove it.

The disk is attached live and persistently (Hyper-V's Add-VMHardDiskDrive on the SCSI controller); the controller
is added if the VM has none. The guest's view is read from its serial log, which the lab's test guest writes its
block devices to; for another guest the example shows what the definitions say instead. Try it on a lab VM:

    .venv/bin/python examples/lifecycle.py --uri qemu+tcp://127.0.0.2:16509/system --keep examples/specs/demo-vm.yml
    .venv/bin/python examples/hotplug.py --uri qemu+tcp://127.0.0.2:16509/system demo1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import virtkit
from virtkit.lab.serial import GuestLog


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("vm", help="name of a running VM")
    parser.add_argument("--uri", default="qemu:///system", help="libvirt URI of the host")
    parser.add_argument("--size", default="1GiB", help="size of the new disk (default 1GiB)")
    parser.add_argument("--image", type=Path, help="the new image (default: <vm>-hotplug.qcow2 next to its first disk)")
    parser.add_argument("--keep-image", action="store_true", help="leave the image file after the detach")
    args = parser.parse_args()

    with virtkit.connect(args.uri) as host:
        vm = host.get(args.vm)
        spec = vm.spec()
        image = args.image or spec.disks[0].path.with_name(f"{spec.name}-hotplug.qcow2")
        log = GuestLog(spec.serial_log) if spec.serial_log is not None else None
        before = log.last_disks() if log is not None else None

        change = vm.disks.attach({"path": str(image), "size": args.size, "bus": "scsi"})
        disk = change.after
        assert disk is not None
        print(f"attached {image} as {disk.target}: SCSI controller {disk.controller}, unit {disk.unit}")
        if log is not None and before is not None:
            seen = log.wait_for_disks(lambda d: len(d) > len(before), timeout=30)
            print(f"the guest sees: {', '.join(seen)} (new: {', '.join(sorted(set(seen) - set(before)))})")
        else:
            print("no guest log to watch; the definitions list:", ", ".join(d.target for d in vm.disks.list()))

        removed = vm.disks.detach(disk.target)
        print(f"detached {disk.target}: changed={removed.changed}")
        if log is not None and before is not None:
            print(f"the guest sees: {', '.join(log.wait_for_disks(lambda d: d == before, timeout=30))}")
        if not args.keep_image:  # detach never deletes an image: that is the caller's choice
            virtkit.images.remove(image, roots=host.storage_roots)
            print(f"removed {image}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
