"""virtkit against virsh for checkpoints, same run, same host, same running guest.

Memory snapshot create, revert and delete, save to a file and restore from it: each run does every operation once
through `virsh -c <uri> ...` (a subprocess per command, as a script would call it) and once through virtkit (one
open connection), alternating which side goes first. The script prints medians over the runs, the difference and
the ratio virtkit / virsh as a Markdown table; the first row is what a virsh call costs before it does anything.

    .venv/bin/python bench/checkpoints.py --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import virtkit
from virtkit.lab import daemons, image
from virtkit.lab.paths import shared_dir
from virtkit.lab.serial import GuestLog

NAME = "snapbench"
OPS = ("virsh start-up and connect", "snapshot create", "snapshot revert", "snapshot delete", "save", "restore")


def _timed(fn: Callable[..., object], *args: Any) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def _cell(samples: list[float]) -> str:
    ms = [t * 1000 for t in samples]
    return f"{statistics.median(ms):.1f} ms ({min(ms):.0f}-{max(ms):.0f})"


def _cleanup(uri: str) -> None:
    with virtkit.connect(uri) as host:
        if host.exists(NAME):
            host.get(NAME).delete(force=True)
    for path in shared_dir().glob(f"{NAME}.*"):
        path.unlink(missing_ok=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs per side (medians are reported)")
    args = parser.parse_args()

    guest = image.build_guest()
    lab = daemons.up(1)[0]
    _cleanup(lab.uri)
    shared = shared_dir()
    spec = virtkit.VMSpec.from_dict(
        {
            "name": NAME,
            "memory": "256MiB",
            "kernel": {"kernel": str(guest.kernel), "initrd": str(guest.initrd), "cmdline": guest.cmdline},
            "disks": [{"path": str(shared / f"{NAME}.qcow2"), "size": "256MiB"}],
            "serial_log": str(shared / f"{NAME}.serial.log"),
        }
    )
    virsh = ["virsh", "-q", "-c", lab.uri]

    def run(*argv: str) -> None:
        subprocess.run([*virsh, *argv], check=True, capture_output=True)

    times: dict[str, dict[str, list[float]]] = {op: {"virsh": [], "virtkit": []} for op in OPS}
    host = virtkit.connect(lab.uri)
    try:
        host.create(spec, start=True)
        GuestLog(shared / f"{NAME}.serial.log").wait_for_boot(timeout=180)
        vm = host.get(NAME)
        for i in range(args.runs):
            for side in ("virsh", "virtkit") if i % 2 == 0 else ("virtkit", "virsh"):
                snap = f"{side}{i}"
                saved = shared / f"{NAME}.{side}{i}.save"
                steps: list[tuple[str, Callable[..., object], tuple[Any, ...]]]
                if side == "virsh":
                    steps = [
                        (OPS[0], run, ("uri",)),
                        ("snapshot create", run, ("snapshot-create-as", NAME, snap)),
                        ("snapshot revert", run, ("snapshot-revert", NAME, snap)),
                        ("snapshot delete", run, ("snapshot-delete", NAME, snap)),
                        ("save", run, ("save", NAME, str(saved))),
                        ("restore", run, ("restore", str(saved))),
                    ]
                else:
                    steps = [
                        ("snapshot create", vm.snapshots.create, (snap,)),
                        ("snapshot revert", vm.snapshots.revert, (snap,)),
                        ("snapshot delete", vm.snapshots.delete, (snap,)),
                        ("save", vm.save, (saved,)),
                        ("restore", host.restore, (saved,)),
                    ]
                for op, fn, argv in steps:
                    times[op][side].append(_timed(fn, *argv))
                saved.unlink()
    finally:
        host.close()
        _cleanup(lab.uri)

    print(f"lab host {lab.uri}, TCG guest with 256 MiB, {args.runs} runs per side, medians (min-max)\n")
    print("| operation | virsh | virtkit | difference | ratio |")
    print("|---|---|---|---|---|")
    for op, sides in times.items():
        raw = statistics.median(sides["virsh"])
        if not sides["virtkit"]:
            print(f"| {op} | {_cell(sides['virsh'])} | - | - | - |")
            continue
        vk = statistics.median(sides["virtkit"])
        diff = (vk - raw) * 1000
        print(f"| {op} | {_cell(sides['virsh'])} | {_cell(sides['virtkit'])} | {diff:+.1f} ms | {vk / raw:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
