"""Disk hot-plug: virtkit's ``vm.disks.attach``/``detach`` against ``virsh attach-disk``/``detach-disk``.

Same run, same lab host, same running guest, same kind of image. Each attach is timed from the call until the guest
lists the new disk on its serial console (``VIRTKIT-DISKS``), each detach until it no longer does; the time for the
call itself to return is shown too. Both sides change the live and the persistent definition (virsh with
``--live --config``), on virtio-scsi (the guest's controller exists before the first run) and on virtio-blk. The
sides alternate which goes first; the script prints medians over the runs as a Markdown table.

    .venv/bin/python bench/hotplug.py --runs 7
"""

from __future__ import annotations

import argparse
import functools
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import virtkit
from virtkit.lab import daemons, image
from virtkit.lab.paths import shared_dir
from virtkit.lab.serial import GuestEvent, GuestEventKind, GuestLog

_NAME = "hotbench"
_SEEN = 30.0  # seconds for the guest to report a change of its disks


def _measure(act: Callable[[], object], log: GuestLog, done: Callable[[tuple[str, ...]], bool]) -> tuple[float, float]:
    """(seconds until ``act`` returned, seconds until the guest's disks satisfy ``done``), both from the call."""
    t0 = time.perf_counter()
    act()
    returned = time.perf_counter() - t0
    # GuestLog.wait_for_disks polls every 0.1 s; 10 ms keeps the reading error well below the guest's own 0.25 s
    # polling of its block devices, which both sides share.
    log.wait_for(lambda evs: done(_last_disks(evs)), _SEEN, interval=0.01, description="matching DISKS line")
    return returned, time.perf_counter() - t0


def _last_disks(events: list[GuestEvent]) -> tuple[str, ...]:
    return next((e.disks for e in reversed(events) if e.kind is GuestEventKind.DISKS and e.disks is not None), ())


def _virsh(uri: str, *args: str) -> None:
    subprocess.run(["virsh", "-q", "-c", uri, *args], check=True, capture_output=True, timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="runs per side and bus (medians are reported)")
    args = parser.parse_args()

    guest = image.build_guest()
    lab = daemons.up(1)[0]
    shared = shared_dir()
    roots = [shared]
    boot_disk, serial = shared / f"{_NAME}.qcow2", shared / f"{_NAME}.serial.log"
    images = {
        (side, bus): shared / f"{_NAME}-{side}-{bus}.qcow2"
        for side in ("virsh", "virtkit")
        for bus in ("scsi", "virtio")
    }
    for path in (boot_disk, serial, *images.values()):
        path.unlink(missing_ok=True)
    for path in images.values():
        virtkit.images.create(path, "16MiB", roots=roots)
    spec = virtkit.VMSpec.from_dict(
        {
            "name": _NAME,
            "memory": "256MiB",
            "kernel": {"kernel": str(guest.kernel), "initrd": str(guest.initrd), "cmdline": guest.cmdline},
            "disks": [{"path": str(boot_disk), "size": "64MiB"}],
            "serial_log": str(serial),
        }
    )
    # (operation, bus, what) -> side -> seconds
    times: dict[tuple[str, str, str], dict[str, list[float]]] = {}

    def record(op: str, bus: str, side: str, returned: float, seen: float) -> None:
        guest_sees = "gone in the guest" if op == "detach" else "seen by the guest"
        times.setdefault((op, bus, guest_sees), {"virsh": [], "virtkit": []})[side].append(seen)
        times.setdefault((op, bus, "call returned"), {"virsh": [], "virtkit": []})[side].append(returned)

    with virtkit.connect(lab.uri) as host:
        accel = host.accel()
        try:
            host.create(spec, start=True)
            log = GuestLog(serial)
            log.wait_for_boot(timeout=180)
            base = log.wait_for_disks(lambda d: d == ("vda",), timeout=_SEEN)
            vm = host.get(_NAME)
            # The virtio-scsi controller, once, outside the measurements (virsh would add an lsilogic one).
            warm = vm.disks.attach({"path": str(images["virtkit", "scsi"]), "bus": "scsi"})
            log.wait_for_disks(lambda d: len(d) == 2, timeout=_SEEN)
            vm.disks.detach(warm.after.target if warm.after else "sda")
            log.wait_for_disks(lambda d: d == base, timeout=_SEEN)

            def added(d: tuple[str, ...]) -> bool:
                return len(d) == len(base) + 1

            def removed(d: tuple[str, ...]) -> bool:
                return d == base

            for run in range(args.runs):
                for bus, target in (("scsi", "sdb"), ("virtio", "vdb")):
                    order = ("virsh", "virtkit") if run % 2 == 0 else ("virtkit", "virsh")
                    for side in order:
                        image_path = str(images[side, bus])
                        attach: Callable[[], object]
                        detach: Callable[[], object]
                        if side == "virtkit":
                            attach = functools.partial(vm.disks.attach, {"path": image_path, "bus": bus})
                            detach = functools.partial(vm.disks.detach, image_path)
                        else:
                            flags = ("--subdriver", "qcow2", "--live", "--config")
                            attach = functools.partial(
                                _virsh, lab.uri, "attach-disk", _NAME, image_path, target, "--targetbus", bus, *flags
                            )
                            detach = functools.partial(
                                _virsh, lab.uri, "detach-disk", _NAME, target, "--live", "--config"
                            )
                        record("attach", bus, side, *_measure(attach, log, added))
                        record("detach", bus, side, *_measure(detach, log, removed))
        finally:
            if host.exists(_NAME):
                host.get(_NAME).delete(storage=True, force=True)
            for path in images.values():
                path.unlink(missing_ok=True)

    print(f"lab host {lab.uri}, accelerator {accel}, {args.runs} runs per side and bus, medians\n")
    print("| operation | bus | measured until | virsh | virtkit | difference |")
    print("|---|---|---|---|---|---|")
    for (op, bus, what), by_side in sorted(times.items(), key=lambda kv: (*kv[0][:2], kv[0][2] != "call returned")):
        vs, vk = statistics.median(by_side["virsh"]), statistics.median(by_side["virtkit"])
        print(f"| {op} | {bus} | {what} | {vs * 1000:.0f} ms | {vk * 1000:.0f} ms | {(vk - vs) * 1000:+.0f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
