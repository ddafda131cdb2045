"""Hyper-V's VHD cmdlets on KVM: New-VHD, Get-VHD, Merge-VHD, Resize-VHD, Optimize-VHD and Convert-VHD.

In DIRECTORY (a storage root of the host), it makes a dynamic VHDX, a differencing disk over it (a qcow2 overlay:
QEMU cannot write differencing VHDX), merges that back, grows the VHDX, compacts it, and exports a fixed VHD:

    .venv/bin/python examples/hyperv_vhd.py /var/lib/virtkit/vhd-demo

With --what-if, every call only checks what it would do (Hyper-V's -WhatIf) and nothing is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import virtkit
from virtkit import hyperv


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", type=Path, help="an existing, empty directory for the disks (a storage root)")
    parser.add_argument("--uri", default="qemu:///system", help="libvirt URI of the host")
    parser.add_argument("--what-if", action="store_true", help="check each call, change nothing")
    args = parser.parse_args()

    where = args.directory.resolve()
    vhdx, child, vhd = where / "web.vhdx", where / "web-diff.qcow2", where / "web.vhd"
    with virtkit.connect(args.uri, storage_roots=[where]) as host:
        made = hyperv.new_vhd(host, vhdx, "64MiB", what_if=args.what_if)
        print("New-VHD:", made.after.to_dict() if made.after else None)
        if args.what_if:  # the later calls need the disk the first one would have made
            return 0
        print("Get-VHD:", hyperv.get_vhd(host, vhdx).to_dict())

        diff = hyperv.new_vhd(host, child, differencing=True, parent_path=vhdx)
        assert diff.after is not None
        print(f"differencing disk {child.name}: parent {diff.after.parent_path}")
        hyperv.merge_vhd(host, child)
        print(f"Merge-VHD: {child.name} merged into {vhdx.name} and removed: {not child.exists()}")

        grown = hyperv.resize_vhd(host, vhdx, "128MiB", progress=lambda pct: print(f"  {pct:5.1f} %", end="\r"))
        assert grown.before is not None and grown.after is not None
        print(f"Resize-VHD: {grown.before.size} -> {grown.after.size} bytes, still {grown.after.vhd_type}")

        compact = hyperv.optimize_vhd(host, vhdx)
        assert compact.before is not None and compact.after is not None
        reclaimed = (compact.before.file_size or 0) - (compact.after.file_size or 0)
        print(f"Optimize-VHD: {reclaimed} bytes reclaimed")

        exported = hyperv.convert_vhd(host, vhdx, vhd, vhd_type="Fixed")
        print("Convert-VHD:", exported.after.to_dict() if exported.after else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
