"""virtkit against virsh for live migration, same run, same guest; and virtkit's quick migration of 512 MiB.

Live: the lab's 256 MiB test guest goes back and forth between host1 and host2 on the shared directory, each
round trip either through `virsh -c <src> migrate --live --p2p --persistent --undefinesource --unsafe <vm> <dst>`
(a subprocess per move, as a script would call it; the downtime from `virsh domjobinfo --completed` on the
destination) or through `virtkit.migrate` (one open connection per host; the downtime from the result), alternating
which side goes first. Quick: a 512 MiB guest saved to the shared directory and restored on the other host
(`virtkit.migrate(..., mode="quick")`), against `virsh save` + `virsh restore` + `virsh define` on the other host.
The guest's alive counter is checked after each run: it never rebooted. Dirtying: a 256 MiB guest that rewrites
8 MiB of memory in a loop (`virtkit.dirty=8`), both sides capped at 10 MiB/s and given the same time budget:
`virsh migrate --live ... --bandwidth 10` (libvirt's defaults), aborted with `virsh domjobabort` when the budget is
up, against `virtkit.migrate` with its default tuning and the same cap and budget. Prints medians (min-max) as
Markdown tables.

    .venv/bin/python bench/migration.py --round-trips 10 --dirty-runs 3
"""

from __future__ import annotations

import argparse
import contextlib
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import virtkit
from virtkit.lab import daemons, image
from virtkit.lab.paths import shared_dir
from virtkit.lab.serial import GuestLog

LIVE, QUICK, DIRTY = "migbench", "migbench-quick", "migbench-dirty"
DIRTY_BUDGET = 60.0  # seconds each side gets to move the dirtying guest


def _virsh(uri: str, *argv: str) -> str:
    return subprocess.run(["virsh", "-q", "-c", uri, *argv], check=True, capture_output=True, text=True).stdout


def _virsh_downtime(uri: str, name: str) -> float:
    text = _virsh(uri, "domjobinfo", "--completed", name)
    match = re.search(r"Total downtime:\s+(\d+)\s+ms", text)
    assert match, text
    return int(match.group(1)) / 1000


def _remove(uris: list[str], name: str) -> None:
    for uri in uris:
        with virtkit.connect(uri) as host, contextlib.suppress(virtkit.NotFound):
            host.get(name).delete(force=True)
    for path in shared_dir().glob(f"{name}.*"):
        path.unlink(missing_ok=True)


def _boot(host: virtkit.Host, guest: image.GuestImage, name: str, memory: str, dirty: int | None = None) -> GuestLog:
    shared = shared_dir()
    host.create(
        {
            "name": name,
            "memory": memory,
            "kernel": {
                "kernel": str(guest.kernel),
                "initrd": str(guest.initrd),
                "cmdline": guest.cmdline_for(alive=1, dirty=dirty),
            },
            "disks": [{"path": str(shared / f"{name}.qcow2"), "size": "64MiB"}],
            "serial_log": str(shared / f"{name}.serial.log"),
        },
        start=True,
    )
    log = GuestLog(shared / f"{name}.serial.log")
    log.wait_for_boot(timeout=180)
    log.wait_for_alive(timeout=15)
    return log


def _still_running(log: GuestLog) -> None:
    last = log.last_alive()
    assert last is not None
    following = log.wait_for_alive(timeout=15, after_line=last.line_no)
    assert following.counter == (last.counter or 0) + 1 and len(log.boots()) == 1, log.tail()


def _cell(samples: list[float], unit: float = 1.0, fmt: str = "{:.2f}") -> str:
    values = [s * unit for s in samples]
    low, high = fmt.format(min(values)), fmt.format(max(values))
    return f"{fmt.format(statistics.median(values))} ({low}-{high})"


def _live(hosts: tuple[virtkit.Host, virtkit.Host], round_trips: int) -> dict[str, dict[str, list[float]]]:
    """Round trips through virsh and through virtkit: total times and downtimes per side."""
    shared = [shared_dir()]
    samples: dict[str, dict[str, list[float]]] = {s: {"total": [], "downtime": []} for s in ("virsh", "virtkit")}

    def virsh_move(src: virtkit.Host, dst: virtkit.Host) -> None:
        flags = ["--live", "--p2p", "--persistent", "--undefinesource", "--unsafe"]
        started = time.perf_counter()
        _virsh(src.uri, "migrate", *flags, LIVE, dst.uri)
        samples["virsh"]["total"].append(time.perf_counter() - started)
        samples["virsh"]["downtime"].append(_virsh_downtime(dst.uri, LIVE))

    def virtkit_move(src: virtkit.Host, dst: virtkit.Host) -> None:
        started = time.perf_counter()
        result = virtkit.migrate(src.get(LIVE), dst, shared_storage=shared)
        samples["virtkit"]["total"].append(time.perf_counter() - started)
        assert result.downtime is not None
        samples["virtkit"]["downtime"].append(result.downtime)

    a, b = hosts
    moves: dict[str, Callable[[virtkit.Host, virtkit.Host], None]] = {"virsh": virsh_move, "virtkit": virtkit_move}
    for i in range(round_trips):
        for side in ("virsh", "virtkit") if i % 2 == 0 else ("virtkit", "virsh"):
            moves[side](a, b)
            moves[side](b, a)
    return samples


def _quick(hosts: tuple[virtkit.Host, virtkit.Host], runs: int, log: GuestLog) -> dict[str, list[float]]:
    """Quick migrations of the 512 MiB guest: virtkit's, and the same steps through virsh."""
    shared = shared_dir()
    times: dict[str, list[float]] = {"virsh": [], "virtkit": []}
    a, b = hosts
    for i in range(runs):
        for side in ("virsh", "virtkit") if i % 2 == 0 else ("virtkit", "virsh"):
            for src, dst in ((a, b), (b, a)):
                started = time.perf_counter()
                if side == "virtkit":
                    virtkit.migrate(src.get(QUICK), dst, mode="quick", shared_storage=[shared])
                else:
                    xml = shared / f"{QUICK}.xml"
                    state = shared / f"{QUICK}.save"
                    xml.write_text(_virsh(src.uri, "dumpxml", "--inactive", "--security-info", QUICK))
                    _virsh(src.uri, "save", QUICK, str(state))
                    _virsh(dst.uri, "define", str(xml))
                    _virsh(dst.uri, "restore", str(state))
                    _virsh(src.uri, "undefine", QUICK)
                    state.unlink()
                    xml.unlink()
                times[side].append(time.perf_counter() - started)
        _still_running(log)
    return times


def _dirty(hosts: tuple[virtkit.Host, virtkit.Host], runs: int, log: GuestLog) -> dict[str, list[float | None]]:
    """The dirtying guest moved by virsh (libvirt's defaults) and by virtkit, each within DIRTY_BUDGET seconds:
    the time it took, or ``None`` when it had not finished by then (then it was aborted)."""
    times: dict[str, list[float | None]] = {"virsh": [], "virtkit": []}
    tuning = virtkit.MigrationTuning(bandwidth=10, timeout_per_gib=1.0, timeout_min=DIRTY_BUDGET)
    where = list(hosts)
    for i in range(runs):
        for side in ("virsh", "virtkit") if i % 2 == 0 else ("virtkit", "virsh"):
            src, dst = where
            started = time.perf_counter()
            if side == "virtkit":
                try:
                    virtkit.migrate(src.get(DIRTY), dst, tuning=tuning, shared_storage=[shared_dir()])
                    times[side].append(time.perf_counter() - started)
                    where.reverse()
                except virtkit.MigrationFailed:
                    times[side].append(None)
            else:
                flags = ["--live", "--p2p", "--persistent", "--undefinesource", "--unsafe", "--bandwidth", "10"]
                argv = ["virsh", "-q", "-c", src.uri, "migrate", *flags, DIRTY, dst.uri]
                with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
                    try:
                        proc.wait(timeout=DIRTY_BUDGET)
                    except subprocess.TimeoutExpired:
                        _virsh(src.uri, "domjobabort", DIRTY)
                        proc.wait()
                if proc.returncode == 0:
                    times[side].append(time.perf_counter() - started)
                    where.reverse()
                else:
                    times[side].append(None)
            _still_running(log)
    return times


def _dirty_cell(samples: list[float | None]) -> str:
    done = [s for s in samples if s is not None]
    text = f"{len(done)} of {len(samples)} within {DIRTY_BUDGET:.0f} s"
    return f"{text}, {_cell(done)} s" if done else text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--round-trips", type=int, default=10, help="live round trips per side (medians reported)")
    parser.add_argument("--quick-runs", type=int, default=3, help="quick-migration round trips per side")
    parser.add_argument("--dirty-runs", type=int, default=3, help="moves of the memory-dirtying guest per side")
    args = parser.parse_args()

    guest = image.build_guest()
    lab = daemons.up(2)
    uris = [h.uri for h in lab]
    for name in (LIVE, QUICK, DIRTY):
        _remove(uris, name)
    with virtkit.connect(lab[0].uri) as a, virtkit.connect(lab[1].uri) as b:
        try:
            log = _boot(a, guest, LIVE, "256MiB")
            live = _live((a, b), args.round_trips)
            _still_running(log)
            _remove(uris, LIVE)
            quick_log = _boot(a, guest, QUICK, "512MiB")
            quick = _quick((a, b), args.quick_runs, quick_log)
            _remove(uris, QUICK)
            dirty_log = _boot(a, guest, DIRTY, "256MiB", dirty=8)
            dirty = _dirty((a, b), args.dirty_runs, dirty_log)
        finally:
            for name in (LIVE, QUICK, DIRTY):
                _remove(uris, name)

    moves = 2 * args.round_trips
    print(f"lab hosts {uris[0]} <-> {uris[1]}, TCG, shared directory; medians (min-max)\n")
    print("| migration | virsh | virtkit | ratio |")
    print("|---|---|---|---|")
    for label, key, unit, fmt in (
        (f"live, 256 MiB guest: total ({moves} moves per side), s", "total", 1.0, "{:.2f}"),
        (f"live, 256 MiB guest: downtime ({moves} moves per side), ms", "downtime", 1000.0, "{:.0f}"),
    ):
        raw, ours = live["virsh"][key], live["virtkit"][key]
        ratio = statistics.median(ours) / statistics.median(raw)
        print(f"| {label} | {_cell(raw, unit, fmt)} | {_cell(ours, unit, fmt)} | {ratio:.2f} |")
    raw_q, ours_q = quick["virsh"], quick["virtkit"]
    label = f"quick, 512 MiB guest: total ({len(ours_q)} moves per side), s"
    ratio = statistics.median(ours_q) / statistics.median(raw_q)
    print(f"| {label} | {_cell(raw_q)} | {_cell(ours_q)} | {ratio:.2f} |")
    print("\nvirsh quick = dumpxml + save + define + restore + undefine, one virsh process each\n")
    print("| guest rewriting 8 MiB, 10 MiB/s cap | virsh (libvirt defaults) | virtkit (default tuning) |")
    print("|---|---|---|")
    print(f"| moved | {_dirty_cell(dirty['virsh'])} | {_dirty_cell(dirty['virtkit'])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
