"""A Hyper-V administrator's VM on KVM: New-VM -Generation 2 from a VHDX with Secure Boot, a drive added while it
runs, Get-VM, Stop-VM, Remove-VM, all in Hyper-V's words.

    .venv/bin/python examples/hyperv_vm.py                        # on qemu:///system, Generation 2
    .venv/bin/python examples/hyperv_vm.py --generation 1         # BIOS, booting from a VHD on IDE
    .venv/bin/python examples/hyperv_vm.py --uri qemu+tcp://127.0.0.2:16509/system   # a lab host

The boot disk is the lab's disk-bootable test guest (Debian's signed shim, GRUB and kernel on an EFI system
partition, or SYSLINUX for Generation 1), written as a VHDX or VHD into /var/lib/virtkit/shared. The guest reports
on COM1 which firmware booted it and whether Secure Boot is on. Everything made is removed at the end unless --keep.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import virtkit
from virtkit import hyperv
from virtkit.lab import bootdisk
from virtkit.lab.paths import shared_dir
from virtkit.lab.serial import GuestLog


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uri", default="qemu:///system", help="libvirt URI of the host")
    parser.add_argument("--name", default="hv-web1", help="the VM's name")
    parser.add_argument("--generation", type=int, choices=(1, 2), default=2)
    parser.add_argument("--keep", action="store_true", help="leave the VM and its files")
    args = parser.parse_args()

    gen2 = args.generation == 2
    shared = shared_dir()
    shared.mkdir(parents=True, exist_ok=True)
    boot = shared / f"{args.name}-boot.{'vhdx' if gen2 else 'vhd'}"
    data = shared / f"{args.name}-data.vhdx"
    com1 = shared / f"{args.name}.com1.log"
    made = [Path(f"{boot}.qcow2"), data, Path(f"{data}.qcow2"), com1]
    if not boot.exists():  # made here, so removed at the end; a disk that was there stays
        disk = bootdisk.build_boot_disk("uefi" if gen2 else "bios", progress=lambda msg: print(f"  {msg}"))
        disk.copy_to(boot, "vhdx" if gen2 else "vhd")
        made.append(boot)
    spec = {
        "Name": args.name,
        "Generation": args.generation,
        "MemoryStartupBytes": "512MB",  # a UEFI disk boot under TCG needs 512 MB
        "ProcessorCount": 1,
        "HardDrives": [{"Path": str(boot)}],
        "CheckpointType": "Production",
        "ComPort1": str(com1),
        "Notes": "made by examples/hyperv_vm.py",
    }
    with virtkit.connect(args.uri) as host:
        started = time.monotonic()
        made_vm = hyperv.new_vm(
            host, spec, progress=lambda field, pct: print(f"\r  import {field}: {pct:5.1f} %", end="")
        )
        print(f"\nNew-VM: {'made' if made_vm.changed else 'there already'} {args.name}")
        hyperv.start_vm(host, args.name)
        booted = GuestLog(com1).wait_for_boot(timeout=300)
        print(
            f"booted in {time.monotonic() - started:.1f} s from its {boot.suffix} through {booted.firmware}, "
            f"Secure Boot {'on' if booted.secure_boot else 'off'}"
        )
        if gen2:  # SCSI drives come and go while the VM runs; IDE drives (Generation 1) only while it is off
            subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", str(data), "64M"], check=True)
            hyperv.add_vm_scsi_controller(host, args.name)
            hyperv.add_vm_hard_disk_drive(host, args.name, data, controller_number=1)
            seen = GuestLog(com1).wait_for_disks(lambda d: len(d) == 2, timeout=60)
            print(f"Add-VMHardDiskDrive: the guest sees {', '.join(seen)}")
        for drive in hyperv.get_vm_hard_disk_drive(host, args.name):
            where = f"{drive.controller_number}:{drive.controller_location}"
            print(f"  {drive.controller_type.value} {where} {drive.path}")
        vm = hyperv.get_vm(host, args.name)
        print(f"Get-VM: {vm.name} {vm.state.value}, Generation {vm.generation}, {vm.checkpoint_type}")
        if args.keep:
            print(f"kept: {args.name} runs; remove it with `virtkit hyperv remove-vm {args.name} --force`")
            return 0
        hyperv.stop_vm(host, args.name, turn_off=True)
        hyperv.remove_vm(host, args.name)
    for path in made:
        path.unlink(missing_ok=True)
    print(f"Remove-VM: {args.name} and its files are gone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
