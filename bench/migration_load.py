"""Live migration of guests under a real memory load: virtkit's defaults and tunings against virsh, same run.

busy: the lab's 256 MiB guest rewriting 16 MiB as fast as its vCPU goes, every byte of every page changed on every
pass (``virtkit.dirty=16 virtkit.dirtymode=counter``: XBZRLE cannot shrink it), moved back and forth with the
same cap (10 MiB/s) and the same budget (45 s) on every side, the sides rotating which goes first:

- ``virsh``: ``virsh -c <src> migrate --live --p2p --persistent --undefinesource --unsafe --bandwidth 10 <vm>
  <dst>``, libvirt's defaults otherwise, aborted with ``virsh domjobabort`` when the budget is up;
- ``virsh post-copy``: the same with ``--auto-converge --postcopy --postcopy-after-precopy --postcopy-bandwidth
  10`` (the cap kept after the switch, as virtkit keeps it);
- ``virtkit``: ``virtkit.migrate`` with the default tuning but ``bandwidth=10, timeout_per_gib=1.0,
  timeout_min=45`` (its own completion timeout is the budget; ``on_timeout`` is ``force`` by default).

A move that ends after the budget (a post-copy cannot be aborted once it has switched) is counted apart.

switch: the same busy guest moved in post-copy from the start by virsh, the way virtkit does it: ``virsh migrate
... --postcopy --bandwidth <1 or 10> --postcopy-bandwidth 10`` with ``virsh migrate-postcopy`` retried every 20 ms
until libvirt accepts it; what the cap before the switch (virtkit holds pre-copy to 1 MiB/s) does to the downtime.

fill: a 1 GiB guest that filled 800 MiB once with incompressible data, different in every page, and checks every
page every 4 s (``virtkit.fill=800 virtkit.fillcheck=4``; 900 MiB does not fit: the guest's OOM killer takes the
load at about 886 MiB), moved with no cap by virtkit's defaults, virtkit pre-copy with XBZRLE,
pre-copy without compression, pre-copy over two connections, ``virsh migrate --live ...`` and the same with
``--parallel --parallel-connections 2``; throughput is the guest's 1024 MiB over the total time of the move.
After each move the guest's next page check that ran wholly on the destination must find every page intact.

copy: the plain rate of the same loopback path, 1 GiB from a socket bound to 127.0.0.2 to a receiver process
listening on 127.0.0.3 (one TCP stream, Python ``sendall``/``recv_into``), timed until the receiver acknowledges.

Downtimes come from the hosts' lifecycle events for every side (see ``migration.py``); after every move the guest
must go on (alive counter, no second boot, no "Oops"/"BUG:"/"panic" on its console), or it is counted and replaced.

    flock /tmp/virtkit-integration.lock .venv/bin/python bench/migration_load.py --only busy --busy-runs 10
    flock /tmp/virtkit-integration.lock .venv/bin/python bench/migration_load.py --only switch --switch-runs 3
    flock /tmp/virtkit-integration.lock .venv/bin/python bench/migration_load.py --only fill --fill-runs 3
    flock /tmp/virtkit-integration.lock .venv/bin/python bench/migration_load.py --only copy
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

import virtkit
from migration import VIRSH_LIVE, Guest, Lifecycle, cell, facts, ratio, rotated, table
from virtkit.lab import daemons, image
from virtkit.lab.paths import shared_dir
from virtkit.units import MiB

BUSY, FILL = "migbench-busy", "migbench-fill"
CAP = 10  # MiB/s, every side of the busy benchmark
DIRTY_MIB, FILL_MIB, FILL_CHECK = 16, 800, 4
FILL_MEMORY_MIB = 1024

BUSY_SIDES: dict[str, tuple[str, ...] | None] = {
    "virsh": (),
    "virsh post-copy": ("--auto-converge", "--postcopy", "--postcopy-after-precopy", "--postcopy-bandwidth", str(CAP)),
    "virtkit": None,
}
FILL_SIDES: dict[str, tuple[str, ...] | Mapping[str, Any]] = {
    "virsh": (),
    "virsh parallel 2": ("--parallel", "--parallel-connections", "2"),
    "virtkit": {},
    "virtkit precopy xbzrle": {"strategy": "precopy", "compression": "xbzrle"},
    "virtkit precopy none": {"strategy": "precopy", "compression": "none"},
    "virtkit precopy 2 conns": {"strategy": "precopy", "compression": "none", "connections": 2},
}


@dataclasses.dataclass
class Move:
    """One move: how it ended, after how long, and what the events say."""

    outcome: str  # moved (within the budget), late (after it), aborted (still on the source), failed
    total: float
    downtime: float | None = None
    postcopy: bool = False
    well: bool = True
    detail: str = ""


def _virsh_move(
    guest: Guest, src: virtkit.Host, dst: virtkit.Host, extra: tuple[str, ...], budget: float | None
) -> Move:
    argv = ["virsh", "-q", "-c", src.uri, "migrate", *VIRSH_LIVE, *extra, guest.name, dst.uri]
    started = time.perf_counter()
    aborted = ""
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as proc:
        try:
            _, err = proc.communicate(timeout=budget)
        except subprocess.TimeoutExpired:
            abort = subprocess.run(
                ["virsh", "-q", "-c", src.uri, "domjobabort", guest.name], capture_output=True, text=True, check=False
            )
            aborted = "domjobabort: " + (abort.stderr.strip() or "ok")
            _, err = proc.communicate()
    total = time.perf_counter() - started
    if proc.returncode == 0:
        outcome = "moved" if budget is None or total <= budget else "late"
    else:
        outcome = "aborted" if src.exists(guest.name) else "failed"
    return Move(outcome, total, detail="; ".join(filter(None, [aborted, err.strip()])))


def _virtkit_move(
    guest: Guest, src: virtkit.Host, dst: virtkit.Host, tuning: Mapping[str, Any], budget: float | None
) -> Move:
    started = time.perf_counter()
    try:
        result = virtkit.migrate(src.get(guest.name), dst, tuning=tuning, shared_storage=[shared_dir()])
    except virtkit.MigrationFailed as exc:
        total = time.perf_counter() - started
        return Move("aborted" if exc.host == src.uri else "failed", total, detail=str(exc))
    total = time.perf_counter() - started
    outcome = "moved" if budget is None or total <= budget else "late"
    steps = ", ".join(f"{e.action}@{e.elapsed:.1f}s({e.cause})" for e in result.escalated)
    return Move(outcome, total, detail=f"strategy {result.strategy}, postcopy {result.postcopy}; {steps}")


def _observe(move: Move, guest: Guest, events: Lifecycle, src: str, dst: str, since: float) -> None:
    if move.outcome in ("moved", "late"):
        move.downtime = events.downtime(guest.name, src, dst, since)
        move.postcopy = events.went_postcopy(guest.name, src, since)


# -- busy --------------------------------------------------------------------------------------------------------


def _busy(guest: Guest, events: Lifecycle, runs: int, budget: float) -> dict[str, list[Move]]:
    moves: dict[str, list[Move]] = {side: [] for side in BUSY_SIDES}
    tuning = {"bandwidth": CAP, "timeout_per_gib": 1.0, "timeout_min": budget}
    for i in range(runs):
        for side in rotated(list(BUSY_SIDES), i):
            src, dst = guest.where()
            mark, since = guest.mark(), time.perf_counter()
            extra = BUSY_SIDES[side]
            if extra is None:
                move = _virtkit_move(guest, src, dst, tuning, budget)
            else:
                move = _virsh_move(guest, src, dst, ("--bandwidth", str(CAP), *extra), budget)
            _observe(move, guest, events, src.uri, dst.uri, since)
            move.well = guest.survived(mark)
            moves[side].append(move)
            print(f"  busy {i + 1}/{runs} {side}: {move}", file=sys.stderr, flush=True)
    return moves


def _busy_table(moves: dict[str, list[Move]], budget: float) -> None:
    def count(side: str, outcome: str) -> str:
        return f"{sum(m.outcome == outcome for m in moves[side])} of {len(moves[side])}"

    def ended(side: str) -> list[Move]:
        return [m for m in moves[side] if m.outcome in ("moved", "late")]

    header = [f"256 MiB, {DIRTY_MIB} MiB counter load, {CAP} MiB/s, {budget:.0f} s", *BUSY_SIDES]
    rows = [
        [f"moved within {budget:.0f} s", *(count(s, "moved") for s in BUSY_SIDES)],
        ["moved after the budget", *(count(s, "late") for s in BUSY_SIDES)],
        ["aborted, still on the source", *(count(s, "aborted") for s in BUSY_SIDES)],
        ["failed", *(count(s, "failed") for s in BUSY_SIDES)],
        ["total time of the moves that ended, s", *(cell([m.total for m in ended(s)]) for s in BUSY_SIDES)],
        [
            "total, ratio to virsh post-copy",
            *(ratio([m.total for m in ended(s)], [m.total for m in ended("virsh post-copy")]) for s in BUSY_SIDES),
        ],
        ["downtime (events), ms", *(cell([m.downtime for m in ended(s)], 1000, "{:.0f}") for s in BUSY_SIDES)],
        ["moves that switched to post-copy", *(str(sum(m.postcopy for m in ended(s))) for s in BUSY_SIDES)],
        ["guest well afterwards", *(f"{sum(m.well for m in moves[s])} of {len(moves[s])}" for s in BUSY_SIDES)],
    ]
    table(header, rows)


# -- switch: post-copy from the start through virsh ---------------------------------------------------------------

#: The cap before the switch: virtkit's hold-back (1 MiB/s), and the busy benchmark's cap.
SWITCH_CAPS = (1, CAP)


def _virsh_postcopy_at_once(guest: Guest, src: virtkit.Host, dst: virtkit.Host, cap: int) -> Move:
    """virtkit's post-copy from the start, done with virsh: pre-copy held to ``cap`` MiB/s, ``virsh
    migrate-postcopy`` retried every 20 ms until libvirt accepts it, then the busy benchmark's cap."""
    extra = ("--postcopy", "--bandwidth", str(cap), "--postcopy-bandwidth", str(CAP))
    argv = ["virsh", "-q", "-c", src.uri, "migrate", *VIRSH_LIVE, *extra, guest.name, dst.uri]
    started = time.perf_counter()
    switched = None
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as proc:
        while switched is None and proc.poll() is None:
            done = subprocess.run(
                ["virsh", "-q", "-c", src.uri, "migrate-postcopy", guest.name], capture_output=True, check=False
            )
            if done.returncode == 0:
                switched = time.perf_counter() - started
            else:
                time.sleep(0.02)
        _, err = proc.communicate()
    total = time.perf_counter() - started
    outcome = "moved" if proc.returncode == 0 else "failed"
    when = f"switched at {switched:.2f} s" if switched is not None else "never switched"
    return Move(outcome, total, detail="; ".join(filter(None, [when, err.strip()])))


def _switch(guest: Guest, events: Lifecycle, runs: int) -> dict[int, list[Move]]:
    moves: dict[int, list[Move]] = {cap: [] for cap in SWITCH_CAPS}
    for i in range(runs):
        for cap in SWITCH_CAPS if i % 2 == 0 else reversed(SWITCH_CAPS):
            src, dst = guest.where()
            mark, since = guest.mark(), time.perf_counter()
            move = _virsh_postcopy_at_once(guest, src, dst, cap)
            _observe(move, guest, events, src.uri, dst.uri, since)
            move.well = guest.survived(mark)
            moves[cap].append(move)
            print(f"  switch {i + 1}/{runs} {cap} MiB/s: {move}", file=sys.stderr, flush=True)
    return moves


def _switch_table(moves: dict[int, list[Move]]) -> None:
    caps = [f"{cap} MiB/s before the switch" for cap in SWITCH_CAPS]
    rows = [
        ["moved", *(f"{sum(m.outcome == 'moved' for m in moves[c])} of {len(moves[c])}" for c in SWITCH_CAPS)],
        ["total, s", *(cell([m.total for m in moves[c] if m.outcome == "moved"]) for c in SWITCH_CAPS)],
        ["downtime (events), ms", *(cell([m.downtime for m in moves[c]], 1000, "{:.0f}") for c in SWITCH_CAPS)],
        ["guest well afterwards", *(f"{sum(m.well for m in moves[c])} of {len(moves[c])}" for c in SWITCH_CAPS)],
    ]
    table([f"busy guest, virsh post-copy at once, {CAP} MiB/s after", *caps], rows)


# -- fill --------------------------------------------------------------------------------------------------------


def _fill_boot(guest: Guest) -> None:
    guest.boot()
    guest.log.wait_for_fill(timeout=180)  # "filled"
    guest.log.wait_for_fill(timeout=120, after_line=guest.log.events()[-1].line_no, checked=True)


def _fill_intact(guest: Guest) -> str | None:
    """``None`` if the guest's first page check that ran wholly after now found every page intact, else why not."""
    first = guest.log.wait_for_fill(timeout=120, after_line=guest.log.events()[-1].line_no, checked=True)
    second = guest.log.wait_for_fill(timeout=120, after_line=first.line_no, checked=True)
    return None if second.status == "ok" else f"fill check {second.passes}: {second.bad_pages} pages changed"


def _fill(guest: Guest, events: Lifecycle, runs: int) -> dict[str, list[Move]]:
    moves: dict[str, list[Move]] = {side: [] for side in FILL_SIDES}
    for i in range(runs):
        for side in rotated(list(FILL_SIDES), i):
            src, dst = guest.where()
            mark, since = guest.mark(), time.perf_counter()
            how = FILL_SIDES[side]
            if isinstance(how, tuple):
                move = _virsh_move(guest, src, dst, how, None)
            else:
                move = _virtkit_move(guest, src, dst, how, None)
            _observe(move, guest, events, src.uri, dst.uri, since)
            bad = _fill_intact(guest) if move.outcome == "moved" else None
            if bad is not None:
                move.detail += f"; {bad}"
                guest.crashes.append(f"{side}: {bad}")
            move.well = guest.trouble(mark) is None and bad is None
            if not move.well:
                print(f"  fill {side}: not well; booting a fresh guest", file=sys.stderr, flush=True)
                _fill_boot(guest)
            moves[side].append(move)
            print(f"  fill {i + 1}/{runs} {side}: {move}", file=sys.stderr, flush=True)
    return moves


def _fill_table(moves: dict[str, list[Move]], copy: list[float]) -> None:
    def moved(side: str) -> list[Move]:
        return [m for m in moves[side] if m.outcome == "moved"]

    def rate(side: str) -> list[float | None]:
        return [FILL_MEMORY_MIB / m.total for m in moved(side)]

    base = rate("virsh")
    header = [
        f"1 GiB guest, {FILL_MIB} MiB filled, no cap",
        "moved",
        "total, s",
        "MiB/s",
        "ratio to virsh",
        "downtime (events), ms",
        "pages intact, guest well",
    ]
    rows = [
        [
            side,
            f"{len(moved(side))} of {len(moves[side])}",
            cell([m.total for m in moved(side)]),
            cell(rate(side), fmt="{:.0f}"),
            ratio(rate(side), base),
            cell([m.downtime for m in moved(side)], 1000, "{:.0f}"),
            f"{sum(m.well for m in moves[side])} of {len(moves[side])}",
        ]
        for side in FILL_SIDES
    ]
    if copy:
        rows.append(["plain TCP copy, 127.0.0.2 to 127.0.0.3", "", "", cell(copy, fmt="{:.0f}"), "", "", ""])
    table(header, rows)


# -- copy --------------------------------------------------------------------------------------------------------

_RECEIVER = """
import socket, sys
size = int(sys.argv[1])
server = socket.create_server(("127.0.0.3", 0))
print(server.getsockname()[1], flush=True)
conn, _ = server.accept()
buf = bytearray(4 << 20)
view = memoryview(buf)
got = 0
while got < size:
    n = conn.recv_into(view)
    if n == 0:
        sys.exit(1)
    got += n
conn.sendall(b"k")
conn.close()
"""


def copy_rate(size: int = 1024 * MiB) -> float:
    """MiB/s of one TCP stream moving ``size`` bytes from 127.0.0.2 to a receiver process on 127.0.0.3."""
    with subprocess.Popen([sys.executable, "-c", _RECEIVER, str(size)], stdout=subprocess.PIPE, text=True) as receiver:
        assert receiver.stdout is not None
        port = int(receiver.stdout.readline())
        chunk = os.urandom(4 * MiB)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.2", 0))
            started = time.perf_counter()
            sock.connect(("127.0.0.3", port))
            sent = 0
            while sent < size:
                sock.sendall(chunk[: min(len(chunk), size - sent)])
                sent += min(len(chunk), size - sent)
            ack = sock.recv(1)
            elapsed = time.perf_counter() - started
        assert ack == b"k"
        receiver.wait()
    return size / MiB / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("busy", "switch", "fill", "copy"), help="run one of the benchmarks")
    parser.add_argument("--busy-runs", type=int, default=10, help="moves of the busy guest per side")
    parser.add_argument("--budget", type=float, default=45.0, help="seconds each busy move may take")
    parser.add_argument("--switch-runs", type=int, default=3, help="moves per cap of the switch experiment")
    parser.add_argument("--fill-runs", type=int, default=3, help="moves of the filled guest per side")
    parser.add_argument("--copy-runs", type=int, default=3, help="plain 1 GiB copies")
    args = parser.parse_args()

    guest_image = image.build_guest()
    lab = daemons.up(2)
    copy = [copy_rate() for _ in range(args.copy_runs)] if args.only in (None, "copy", "fill") else []
    if args.only == "copy":
        print(f"plain TCP copy 127.0.0.2 -> 127.0.0.3, 1 GiB, {len(copy)} runs: {cell(copy, fmt='{:.0f}')} MiB/s")
        return 0
    with virtkit.connect(lab[0].uri) as a, virtkit.connect(lab[1].uri) as b:
        print(f"lab hosts {a.uri} <-> {b.uri}, TCG, shared directory; {facts(a.uri)}; medians (min-max)\n")
        busy_cmd = guest_image.cmdline_for(alive=1, dirty=DIRTY_MIB, dirty_mode="counter")
        busy = Guest(BUSY, "256MiB", guest_image, busy_cmd, (a, b))
        fill_cmd = guest_image.cmdline_for(alive=1, fill=FILL_MIB, fill_check=FILL_CHECK)
        filled = Guest(FILL, f"{FILL_MEMORY_MIB}MiB", guest_image, fill_cmd, (a, b))
        events = Lifecycle((a, b))
        try:
            if args.only in (None, "busy"):
                busy.boot()
                busy_moves = _busy(busy, events, args.busy_runs, args.budget)
                busy.remove()
                _busy_table(busy_moves, args.budget)
            if args.only in (None, "switch"):
                busy.boot()
                switch_moves = _switch(busy, events, args.switch_runs)
                busy.remove()
                _switch_table(switch_moves)
            if args.only in (None, "fill"):
                _fill_boot(filled)
                fill_moves = _fill(filled, events, args.fill_runs)
                filled.remove()
                _fill_table(fill_moves, copy)
        finally:
            events.close()
            busy.remove()
            filled.remove()
        for why in busy.crashes + filled.crashes:
            print(f"- guest not well: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
