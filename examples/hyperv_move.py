"""Move-VM on the lab, in Hyper-V's words: a VM given processor compatibility for migration (Set-VMProcessor: the
baseline CPU of both hosts), started, and moved live to the other host with its disk copied there
(Move-VM -IncludeStorage); its guest goes on counting on its serial log throughout.

    virtkit lab up --hosts 2
    .venv/bin/python examples/hyperv_move.py --from qemu+tcp://127.0.0.2:16509/system \\
        --to qemu+tcp://127.0.0.3:16509/system
    .venv/bin/python examples/hyperv_move.py --from ... --to ... --over-ssh   # each host's files over SSH

By default the disk moves between two directories of the lab's shared volume (both hosts' files are this machine's).
With --over-ssh both hosts are reached over SSH too (the lab runs an sshd per host), the disk lies in each host's
own /var/lib/libvirt/images, and the destination's image is made there by qemu-img over SSH. The VM is the lab's
test guest (direct kernel boot, which Hyper-V has no word for, so it is made with the neutral API); it is removed
at the end unless --keep.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import virtkit
from virtkit import hyperv
from virtkit.lab import daemons, image
from virtkit.lab.paths import lab_root, shared_dir
from virtkit.lab.serial import GuestLog

PRIVATE = Path("/var/lib/libvirt/images")  # on a lab host reached over SSH: that host's own directory


def _connect(uri: str, over_ssh: bool) -> virtkit.Host:
    if not over_ssh:
        return virtkit.connect(uri)
    lab = next((h for h in daemons.hosts() if h.uri == uri), None)
    if lab is None:
        raise SystemExit(f"{uri} is no lab host: --over-ssh uses the lab's sshd")
    host = virtkit.connect(uri, storage_roots=[PRIVATE, lab_root()], ssh=daemons.ssh_config(lab))
    host.storage.files.run(["mkdir", "-p", str(PRIVATE)], timeout=30)
    return host


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="source", required=True, help="libvirt URI of the lab host to start it on")
    parser.add_argument("--to", dest="destination", required=True, help="libvirt URI of the lab host to move it to")
    parser.add_argument("--name", default="hv-mover", help="the VM's name")
    parser.add_argument("--over-ssh", action="store_true", help="reach both hosts' files over SSH")
    parser.add_argument("--keep", action="store_true", help="leave the VM running on the destination")
    args = parser.parse_args()

    guest = image.build_guest()
    shared = shared_dir()
    if args.over_ssh:  # the same path on each host, each its own file: the copy keeps it
        disk_dir, target = PRIVATE, None
    else:  # both hosts' files are this machine's: the copy goes into another directory
        disk_dir, target = shared / f"{args.name}-from", shared / f"{args.name}-to"
        disk_dir.mkdir(exist_ok=True)
        target.mkdir(exist_ok=True)
    disk = disk_dir / f"{args.name}.qcow2"
    log = shared / f"{args.name}.serial.log"
    spec = {
        "name": args.name,
        "memory": "256MiB",
        "kernel": {"kernel": str(guest.kernel), "initrd": str(guest.initrd), "cmdline": guest.cmdline_for(alive=1)},
        "disks": [{"path": str(disk), "size": "64MiB"}],
        "serial_log": str(log),
    }
    with _connect(args.source, args.over_ssh) as src, _connect(args.destination, args.over_ssh) as dst:
        src.create(spec)
        cpu = hyperv.set_vm_processor(src, args.name, compatibility_for_migration_enabled=True, hosts=[dst]).after
        print(f"Set-VMProcessor -CompatibilityForMigrationEnabled: CPU {cpu.cpu_model if cpu else '?'}")
        hyperv.start_vm(src, args.name)
        GuestLog(log).wait_for_boot(timeout=180)
        before = GuestLog(log).wait_for_alive(timeout=30)

        def show(p: virtkit.MigrationProgress) -> None:
            done = f"{p.fraction:5.1%}" if p.fraction is not None else "  ..."
            print(f"\r  {p.elapsed:5.1f} s {p.phase:10} {done}", end="", flush=True)

        result = hyperv.move_vm(
            src, args.name, dst, include_storage=True, destination_storage_path=target, progress=show
        )
        after = GuestLog(log).wait_for_alive(timeout=30, after_line=before.line_no)
        downtime = f"{result.downtime * 1000:.0f} ms" if result.downtime is not None else "unknown"
        print(f"\nMove-VM: {args.name} runs on {result.destination}: {result.total_time:.2f} s, downtime {downtime}")
        print(f"  its disk there: {dst.get(args.name).spec().disks[0].path}")
        print(f"  the guest's counter went on: {before.counter} before, {after.counter} after")
        if args.keep:
            print(f"kept: remove it with `virtkit hyperv remove-vm {args.name} --force --uri {dst.uri}`")
            return 0
        dst.get(args.name).delete(storage=True, force=True)
        src.storage.remove("disk", disk)  # the source's image, which a storage copy leaves in place
    if target is not None:
        disk_dir.rmdir()
        target.rmdir()
    print(f"removed {args.name} and its disks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
