"""Convert a Hyper-V VHDX disk to qcow2 so libvirt can attach it (libvirt 9.0 has no vhdx driver), with progress.

    .venv/bin/python examples/convert_vhdx.py /var/lib/virtkit/shared/web1.vhdx /var/lib/virtkit/shared/web1.qcow2

With --demo, it first makes a 1 GiB VHDX to convert.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from virtkit import DiskFormat, images

ROOTS = [Path("/var/lib/virtkit"), Path("/var/lib/libvirt/images")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path, help="the .vhdx (or .vhd, .raw, .qcow2) image")
    parser.add_argument("dst", type=Path, help="the qcow2 image to write")
    parser.add_argument("--demo", action="store_true", help="create a 1 GiB vhdx at SRC first")
    args = parser.parse_args()

    if args.demo:
        images.create(args.src, "1GiB", DiskFormat.VHDX, roots=ROOTS, exist_ok=True)
    before = images.info(args.src, roots=ROOTS)
    print(f"{before.path}: {before.format}, {before.virtual_size} bytes")
    after = images.convert(
        args.src, args.dst, DiskFormat.QCOW2, roots=ROOTS, progress=lambda pct: print(f"  {pct:5.1f} %", end="\r")
    )
    print(
        f"\n{after.path}: {after.format}, {after.virtual_size} bytes, identical: "
        f"{images.compare(args.src, args.dst, roots=ROOTS)}"
    )
    print(f"attach it with a disk of format {after.format.value!r}: {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
