"""virtkit against raw libvirt-python, same run, same host, same domain XML.

For each operation (define, start, destroy, undefine) and for create-to-boot-marker, both sides do the same work on
the same lab host; the script prints medians over the runs and the ratio virtkit / raw, as a Markdown table.

    .venv/bin/python bench/lifecycle.py --runs 7
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import libvirt

import virtkit
from virtkit.backends.libvirt.xml.domain import render, to_string
from virtkit.lab import daemons, image
from virtkit.lab.paths import shared_dir
from virtkit.lab.serial import GuestLog


def _spec(guest: image.GuestImage, name: str) -> virtkit.VMSpec:
    shared = shared_dir()
    return virtkit.VMSpec.from_dict(
        {
            "name": name,
            "memory": "256MiB",
            "kernel": {"kernel": str(guest.kernel), "initrd": str(guest.initrd), "cmdline": guest.cmdline},
            "disks": [{"path": str(shared / "bench.qcow2")}],
            "serial_log": str(shared / f"{name}.serial.log"),
        }
    )


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _wait_marker(log: Path, timeout: float = 180.0) -> None:
    GuestLog(log).wait_for_boot(timeout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="runs per side (medians are reported)")
    args = parser.parse_args()

    guest = image.build_guest()
    lab = daemons.up(1)[0]
    disk = shared_dir() / "bench.qcow2"
    virtkit.images.remove(disk, roots=[shared_dir()])
    virtkit.images.create(disk, "256MiB", roots=[shared_dir()])

    raw_spec = _spec(guest, "bench-raw")
    vk_spec = _spec(guest, "bench-vk")
    accel = virtkit.Accel.TCG
    with virtkit.connect(lab.uri) as host:
        accel = host.accel()
    raw_xml = to_string(render(raw_spec, accel))

    times: dict[str, dict[str, list[float]]] = {
        op: {"raw": [], "virtkit": []} for op in ("define", "start", "destroy", "undefine", "create to boot marker")
    }
    conn = libvirt.open(lab.uri)
    host = virtkit.connect(lab.uri)
    try:
        for _ in range(args.runs):
            # raw libvirt-python
            dom: libvirt.virDomain | None = None

            def define() -> None:
                nonlocal dom
                dom = conn.defineXML(raw_xml)

            times["define"]["raw"].append(_timed(define))
            assert dom is not None
            times["start"]["raw"].append(_timed(dom.create))
            times["destroy"]["raw"].append(_timed(dom.destroy))
            times["undefine"]["raw"].append(_timed(dom.undefine))
            # virtkit
            times["define"]["virtkit"].append(_timed(lambda: host.create(vk_spec)))
            vm = host.get("bench-vk")
            times["start"]["virtkit"].append(_timed(vm.start))
            times["destroy"]["virtkit"].append(_timed(vm.destroy))
            times["undefine"]["virtkit"].append(_timed(vm.delete))

            # create to boot marker: define + start + the guest's first line on its serial console
            for side, spec in (("raw", raw_spec), ("virtkit", vk_spec)):
                assert spec.serial_log is not None
                spec.serial_log.unlink(missing_ok=True)
                t0 = time.perf_counter()
                if side == "raw":
                    d = conn.defineXML(raw_xml)
                    d.create()
                else:
                    host.create(spec, start=True)
                _wait_marker(spec.serial_log)
                times["create to boot marker"][side].append(time.perf_counter() - t0)
                if side == "raw":
                    d.destroy()
                    d.undefine()
                else:
                    host.get(spec.name).delete(force=True)
    finally:
        host.close()
        conn.close()
        virtkit.images.remove(disk, roots=[shared_dir()])
        for spec in (raw_spec, vk_spec):
            if spec.serial_log is not None:
                spec.serial_log.unlink(missing_ok=True)

    print(f"lab host {lab.uri}, accelerator {accel}, {args.runs} runs per side, medians\n")
    print("| operation | raw libvirt-python | virtkit | difference | ratio |")
    print("|---|---|---|---|---|")
    for op, sides in times.items():
        raw, vk = statistics.median(sides["raw"]), statistics.median(sides["virtkit"])
        print(f"| {op} | {raw * 1000:.2f} ms | {vk * 1000:.2f} ms | {(vk - raw) * 1000:+.2f} ms | {vk / raw:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
