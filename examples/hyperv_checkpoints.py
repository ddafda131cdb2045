"""Hyper-V's checkpoints on KVM: a Generation 2 VM (UEFI, Secure Boot) from a VHDX, a Standard checkpoint while it
runs, Get-VMSnapshot, Rename-VMSnapshot, Restore-VMSnapshot (the guest goes back in time: its uptime, read on its
serial console, drops), Remove-VMSnapshot (the checkpoint's overlay merged back into the disk), all in Hyper-V's words.

    .venv/bin/python examples/hyperv_checkpoints.py --uri qemu+tcp://127.0.0.2:16509/system   # a lab host
    .venv/bin/python examples/hyperv_checkpoints.py                                           # qemu:///system

The boot disk is the lab's disk-bootable test guest, written as a VHDX into /var/lib/virtkit/shared; the guest says
on COM1 every few seconds how long it has been up. Everything made is removed at the end unless --keep.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import virtkit
from virtkit import hyperv
from virtkit.lab import bootdisk
from virtkit.lab.paths import shared_dir
from virtkit.lab.serial import GuestLog


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uri", default="qemu:///system", help="libvirt URI of the host")
    parser.add_argument("--name", default="hv-ckpt1", help="the VM's name")
    parser.add_argument("--keep", action="store_true", help="leave the VM, its checkpoint and its files")
    args = parser.parse_args()

    shared = shared_dir()
    shared.mkdir(parents=True, exist_ok=True)
    boot, com1 = shared / f"{args.name}-boot.vhdx", shared / f"{args.name}.com1.log"
    bootdisk.build_boot_disk("uefi").copy_to(boot, "vhdx")
    spec = {
        "Name": args.name,
        "Generation": 2,
        "MemoryStartupBytes": "512MB",  # a UEFI disk boot under TCG needs 512 MB
        "HardDrives": [{"Path": str(boot)}],
        "CheckpointType": "Standard",  # disks and memory: the guest resumes where it was
        "ComPort1": str(com1),
    }
    log = GuestLog(com1)
    with virtkit.connect(args.uri) as host:
        hyperv.new_vm(host, spec)
        hyperv.start_vm(host, args.name)
        log.wait_for_boot(timeout=300)
        at = log.wait_for_alive(timeout=60)
        taken = hyperv.checkpoint_vm(host, args.name, "first").after
        assert taken is not None
        print(f"Checkpoint-VM: {taken.name} ({taken.kind.value}) at guest uptime {at.uptime:.0f} s")
        hyperv.rename_vm_snapshot(host, args.name, "first", "baseline")
        later = log.wait_for_alive(timeout=60, after_line=log.wait_for_alive(timeout=60, after_line=at.line_no).line_no)
        for snap in hyperv.get_vm_snapshot(host, args.name):
            when = f"{snap.creation_time:%H:%M:%S}"
            print(f"Get-VMSnapshot: {snap.name} {snap.snapshot_type} {when} current={snap.is_current}")

        restored = hyperv.restore_vm_snapshot(host, args.name, "baseline").after
        assert restored is not None
        back = log.wait_for_alive(timeout=60, after_line=later.line_no)
        print(
            f"Restore-VMSnapshot: {restored.state.value}; the guest's uptime said {later.uptime:.0f} s before, "
            f"{back.uptime:.0f} s next"
        )
        if args.keep:
            print(f"kept: {args.name} runs with its checkpoint baseline")
            return 0
        hyperv.remove_vm_snapshot(host, args.name, "baseline")
        drive = hyperv.get_vm_hard_disk_drive(host, args.name)[0]
        print(f"Remove-VMSnapshot: merged; the VM runs on {Path(drive.path).name} again")
        hyperv.stop_vm(host, args.name, turn_off=True)
        hyperv.remove_vm(host, args.name)
    for path in shared.glob(f"{args.name}[-.]*"):
        path.unlink()
    print(f"Remove-VM: {args.name} and its files are gone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
