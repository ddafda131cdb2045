"""The Hyper-V driver against the raw tools, same run, same lab host, same domain XML.

- create to boot, Generation 1 from a VHD and Generation 2 from a VHDX with Secure Boot: ``hyperv.new_vm`` +
  ``hyperv.start_vm`` against ``qemu-img convert`` (the import: QEMU cannot save or migrate a VHD, libvirt cannot
  attach a VHDX) + ``conn.defineXML`` + ``dom.create`` with the XML virtkit renders for the same spec; both wait for
  the guest's boot line on COM1, which the guest writes once its kernel runs from the disk.
- VHDX import: ``virtkit.images.convert`` (what New-VM and Add-VMHardDiskDrive do) against ``qemu-img convert``.
- Convert-VHD (VHDX to a dynamic VHD) and Optimize-VHD (compact a VHDX whose data was zeroed) against the
  ``qemu-img`` commands that do the same (``convert``, and ``convert`` to a file beside it plus a rename).

Prints medians over the runs and the ratio virtkit / raw, as Markdown tables.

    .venv/bin/python bench/hyperv.py --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import libvirt

import virtkit
from virtkit import hyperv
from virtkit.backends.libvirt.xml.domain import render, to_string
from virtkit.lab import bootdisk, daemons
from virtkit.lab.paths import shared_dir
from virtkit.lab.serial import GuestLog

_BOOT_TIMEOUT = 300.0
T = TypeVar("T")


def _hv_spec(name: str, generation: int, disk: Path) -> dict[str, Any]:
    return {
        "Name": name,
        "Generation": generation,
        "MemoryStartupBytes": "512MB",
        "HardDrives": [{"Path": str(disk)}],
        "ComPort1": str(shared_dir() / f"{name}.com1.log"),
    }


def _in_turn(sides: dict[str, T], run: int) -> list[tuple[str, T]]:
    """The sides, the raw one first on even runs and last on odd ones: neither gains from a cache the other warmed."""
    items = list(sides.items())
    return items if run % 2 == 0 else items[::-1]


def _gone(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _create_to_boot(conn: libvirt.virConnect, host: virtkit.Host, generation: int, runs: int) -> dict[str, list[float]]:
    firmware, fmt = ("uefi", "vhdx") if generation == 2 else ("bios", "vhd")
    disk = bootdisk.build_boot_disk(firmware)
    out: dict[str, list[float]] = {"raw": [], "virtkit": []}
    sources = {side: shared_dir() / f"bench-hv{generation}-{side}.{fmt}" for side in out}
    for path in sources.values():
        _gone(path)
        disk.copy_to(path, fmt)
    accel = host.accel()
    try:
        for run in range(runs):
            for side, source in _in_turn(sources, run):
                name = f"bench-hv{generation}-{side}"
                spec = hyperv.HyperVSpec.from_dict(_hv_spec(name, generation, source))
                com1, imported = shared_dir() / f"{name}.com1.log", Path(f"{source}.qcow2")
                _gone(com1, imported)
                t0 = time.perf_counter()
                names = (str(source), str(imported))
                if side == "raw":
                    subprocess.run(
                        ["qemu-img", "convert", "-q", "-f", "vpc" if fmt == "vhd" else fmt, "-O", "qcow2", *names],
                        check=True,
                    )
                    dom = conn.defineXML(to_string(render(spec.to_spec(), accel)))
                    dom.create()
                else:
                    hyperv.new_vm(host, spec)
                    hyperv.start_vm(host, name)
                GuestLog(com1).wait_for_boot(_BOOT_TIMEOUT)
                out[side].append(time.perf_counter() - t0)
                if side == "raw":
                    dom.destroy()
                    dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
                else:
                    hyperv.stop_vm(host, name, turn_off=True)
                    hyperv.remove_vm(host, name)
                _gone(com1, imported)
    finally:
        _gone(*sources.values())
    return out


def _import(runs: int) -> dict[str, list[float]]:
    roots = [shared_dir()]
    source, target = shared_dir() / "bench-import.vhdx", shared_dir() / "bench-import.qcow2"
    _gone(source, target)
    # 1 GiB, 256 MiB of it written with data that does not compress: what a small data disk holds.
    subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", str(source), "1G"], check=True)
    subprocess.run(["qemu-io", "-f", "vhdx", "-c", "write -P 0x5a 0 256M", str(source)], check=True, stdout=-3)
    out: dict[str, list[float]] = {"raw": [], "virtkit": []}
    sides: dict[str, Callable[[], object]] = {
        "raw": lambda: subprocess.run(
            ["qemu-img", "convert", "-q", "-f", "vhdx", "-O", "qcow2", str(source), str(target)], check=True
        ),
        "virtkit": lambda: virtkit.images.convert(source, target, virtkit.DiskFormat.QCOW2, roots=roots),
    }
    try:
        for run in range(runs):
            for side, call in _in_turn(sides, run):
                _gone(target)
                t0 = time.perf_counter()
                call()
                out[side].append(time.perf_counter() - t0)
    finally:
        _gone(source, target)
    return out


def _vhd_calls(host: virtkit.Host, runs: int) -> dict[str, dict[str, list[float]]]:
    """Convert-VHD and Optimize-VHD on a 1 GiB VHDX with 256 MiB written (and, for Optimize, then zeroed)."""
    shared = shared_dir()
    names = ("source.vhdx", "zeroed.vhdx", "work.vhdx", "out.vhd")
    source, zeroed, work, target = (shared / f"bench-vhd-{n}" for n in names)
    _gone(source, zeroed, work, target)
    for path in (source, zeroed):
        subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", str(path), "1G"], check=True)
        subprocess.run(["qemu-io", "-f", "vhdx", "-c", "write -P 0x5a 0 256M", str(path)], check=True, stdout=-3)
    subprocess.run(["qemu-io", "-f", "vhdx", "-c", "write -z 0 256M", str(zeroed)], check=True, stdout=-3)
    tmp = shared / "bench-vhd-work.tmp.vhdx"
    files = (str(source), str(target))
    convert: dict[str, Callable[[], object]] = {
        "raw": lambda: subprocess.run(
            ["qemu-img", "convert", "-q", "-f", "vhdx", "-O", "vpc", "-o", "subformat=dynamic,force_size=on", *files],
            check=True,
        ),
        "virtkit": lambda: hyperv.convert_vhd(host, source, target, vhd_type="Dynamic"),
    }

    def raw_optimize() -> None:
        subprocess.run(["qemu-img", "convert", "-q", "-f", "vhdx", "-O", "vhdx", str(work), str(tmp)], check=True)
        tmp.replace(work)

    optimize: dict[str, Callable[[], object]] = {
        "raw": raw_optimize,
        "virtkit": lambda: hyperv.optimize_vhd(host, work),
    }
    out: dict[str, dict[str, list[float]]] = {}
    sizes: dict[str, tuple[int, int]] = {}
    try:
        for op, sides, fresh in (("Convert-VHD, VHDX to VHD", convert, None), ("Optimize-VHD", optimize, zeroed)):
            out[op] = {"raw": [], "virtkit": []}
            for run in range(runs):
                for side, call in _in_turn(sides, run):
                    _gone(target, work, tmp)
                    if fresh is not None:
                        subprocess.run(["cp", "--sparse=always", str(fresh), str(work)], check=True)
                    before = work.stat().st_size if fresh is not None else 0
                    t0 = time.perf_counter()
                    call()
                    out[op][side].append(time.perf_counter() - t0)
                    if fresh is not None:
                        sizes[side] = (before, work.stat().st_size)
    finally:
        _gone(source, zeroed, work, target, tmp)
    for side, (before, after) in sizes.items():
        print(f"Optimize-VHD ({side}): file {before:,} -> {after:,} bytes")
    return out


def _table(title: str, rows: dict[str, dict[str, list[float]]], raw_name: str) -> None:
    print(f"\n{title}\n")
    print(f"| operation | {raw_name} | virtkit | difference | ratio |")
    print("|---|---|---|---|---|")
    for op, sides in rows.items():
        raw, vk = statistics.median(sides["raw"]), statistics.median(sides["virtkit"])
        print(f"| {op} | {raw * 1000:.1f} ms | {vk * 1000:.1f} ms | {(vk - raw) * 1000:+.1f} ms | {vk / raw:.2f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs per side (medians are reported)")
    args = parser.parse_args()

    lab = daemons.up(1)[0]
    conn = libvirt.open(lab.uri)
    host = virtkit.connect(lab.uri)
    try:
        boots = {
            "Generation 1, VHD, create to boot": _create_to_boot(conn, host, 1, args.runs),
            "Generation 2, VHDX + Secure Boot, create to boot": _create_to_boot(conn, host, 2, args.runs),
        }
        accel = host.accel()
    finally:
        host.close()
        conn.close()
    print(f"lab host {lab.uri}, accelerator {accel}, {args.runs} runs per side, medians")
    _table("Create to boot", boots, "raw (qemu-img + libvirt-python)")
    _table("VHDX import", {"1 GiB VHDX, 256 MiB written, to qcow2": _import(args.runs)}, "qemu-img")
    with virtkit.connect(lab.uri) as host:
        _table("VHD calls", _vhd_calls(host, args.runs), "qemu-img")
    return 0


if __name__ == "__main__":
    sys.exit(main())
