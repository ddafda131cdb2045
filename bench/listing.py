"""Listing every VM of a host with its state: virtkit's ``Host.statuses()`` against one raw ``getAllDomainStats``
call on the same connection, in the same run, and the per-VM path (``host.list()`` then ``vm.info()``) for
contrast.

Two hosts: libvirt's test driver loaded with N running VMs, and a lab host with N defined (stopped) QEMU VMs. The
script prints medians over the runs and the ratio to the raw call, as a Markdown table.

    .venv/bin/python bench/listing.py --vms 1000 --runs 15
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import libvirt

import virtkit
from virtkit.lab import daemons

_STATS = libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_BALLOON | libvirt.VIR_DOMAIN_STATS_VCPU


def _domain(name: str) -> ET.Element:
    dom = ET.Element("domain", type="qemu")
    ET.SubElement(dom, "name").text = name
    ET.SubElement(dom, "uuid").text = str(uuid.uuid4())
    ET.SubElement(dom, "memory", unit="MiB").text = "256"
    ET.SubElement(dom, "vcpu").text = "1"
    os_ = ET.SubElement(dom, "os")
    ET.SubElement(os_, "type", arch="x86_64").text = "hvm"
    return dom


def _median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _row(where: str, host: virtkit.Host, conn: libvirt.virConnect, count: int, runs: int) -> list[str]:
    assert len(host.statuses()) >= count
    raw = _median_ms(lambda: conn.getAllDomainStats(_STATS, 0), runs)
    read = _median_ms(lambda: [(d.name(), s["state.state"]) for d, s in conn.getAllDomainStats(_STATS, 0)], runs)
    ours = _median_ms(host.statuses, runs)
    per_vm = _median_ms(lambda: [vm.info() for vm in host.list()], max(3, runs // 5))
    return [
        f"| {where}, {count} VMs | {raw:.1f} | {read:.1f} | {ours:.1f} | {ours / raw:.2f} | {ours / read:.2f} "
        f"| {per_vm:.1f} | {per_vm / raw:.1f} |"
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vms", type=int, default=1000, help="VMs on each host")
    parser.add_argument("--runs", type=int, default=15, help="runs per side (medians are reported)")
    parser.add_argument("--no-lab", action="store_true", help="the test driver only")
    args = parser.parse_args()

    rows = [
        "| host | raw call (ms) | raw call + each name and state (ms) | virtkit statuses() (ms) | ratio to the call "
        "| ratio to call + names | list() then info() (ms) | ratio to the call |",
        "|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        node = ET.Element("node")
        node.extend(_domain(f"bench{i:04d}") for i in range(args.vms))
        path = Path(tmp) / "node.xml"
        ET.ElementTree(node).write(path)
        uri = f"test://{path}"
        with virtkit.connect(uri) as host:
            conn = libvirt.open(uri)  # the test driver: a separate driver per connection, loaded from the same file
            rows += _row("test driver (running)", host, conn, args.vms, args.runs)
            conn.close()
    if not args.no_lab:
        lab = daemons.up(1)[0]
        conn = libvirt.open(lab.uri)
        names = [f"bench-list{i:04d}" for i in range(args.vms)]
        try:
            for name in names:
                conn.defineXML(ET.tostring(_domain(name), encoding="unicode"))
            with virtkit.connect(lab.uri) as host:
                rows += _row("lab host (defined, stopped)", host, conn, args.vms, args.runs)
        finally:
            for name in names:
                with contextlib.suppress(libvirt.libvirtError):
                    conn.lookupByName(name).undefine()
            conn.close()
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
