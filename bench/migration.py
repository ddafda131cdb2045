"""virtkit against virsh for live migration of an idle guest, same run, same guest; and quick migration of 512 MiB.

Live: the lab's 256 MiB test guest (idle but for its alive line every second) goes back and forth between host1 and
host2 on the shared directory, each round trip through one of three sides, the sides rotating which goes first:

- ``virsh``: ``virsh -c <src> migrate --live --p2p --persistent --undefinesource --unsafe <vm> <dst>``, a
  subprocess per move, as a script would call it (libvirt's defaults);
- ``virtkit``: ``virtkit.migrate(vm, dst, shared_storage=[shared])``, the default tuning (strategy ``auto``: under
  TCG with QEMU before 9.0 that is post-copy from the start);
- ``virtkit precopy``: the same with ``tuning={"strategy": "precopy"}``.

Every move's downtime is measured the same way, from lifecycle events: the source's ``suspended`` event to the
destination's next ``resumed`` event, both stamped on arrival by one process subscribed to both hosts. The figure
libvirt reports is printed beside it (``virsh domjobinfo --completed`` on the destination, or the result's
``downtime``): libvirt keeps none on the destination for a post-copy move. After each side's round trip the guest
must write a fresh alive line with the next counter, without a second boot and without "Oops", "BUG:" or "panic" on
its console; a guest that fails is counted, and a fresh one booted.

Quick: a 512 MiB guest saved to the shared directory and restored on the other host
(``virtkit.migrate(..., mode="quick")``), against ``virsh dumpxml`` + ``save`` + ``define`` + ``restore`` +
``undefine``. Prints medians (min-max) as Markdown tables. The memory-loaded guests are in ``migration_load.py``.

    flock /tmp/virtkit-integration.lock .venv/bin/python bench/migration.py --round-trips 10 --quick-runs 3
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence

import virtkit
from virtkit.errors import OperationTimeout
from virtkit.lab import daemons, image
from virtkit.lab.paths import shared_dir
from virtkit.lab.serial import GuestLog

LIVE, QUICK = "migbench", "migbench-quick"
#: The flags of a plain virsh live migration on the lab's shared directory.
VIRSH_LIVE = ("--live", "--p2p", "--persistent", "--undefinesource", "--unsafe")
#: What the guest kernel prints when it goes wrong.
CRASH = re.compile(rb"Oops|BUG:|panic", re.IGNORECASE)


# -- hosts and virsh -------------------------------------------------------------------------------------------------


def virsh(uri: str, *argv: str, check: bool = True) -> str:
    """``virsh -q -c <uri> <argv>``: its output."""
    done = subprocess.run(["virsh", "-q", "-c", uri, *argv], check=check, capture_output=True, text=True, timeout=300)
    return done.stdout


def virsh_downtime(uri: str, name: str) -> float | None:
    """The downtime libvirt kept for the last completed migration of ``name`` on ``uri``, in seconds."""
    match = re.search(r"Total downtime:\s+(\d+)\s+ms", virsh(uri, "domjobinfo", "--completed", name, check=False))
    return int(match.group(1)) / 1000 if match else None


def facts(uri: str) -> str:
    """The lab's versions as ``virsh version`` prints them, in one line."""
    found = dict(re.findall(r"^(Using library|Running hypervisor): (.+)$", virsh(uri, "version"), re.MULTILINE))
    return f"{found.get('Using library', '?')}, {found.get('Running hypervisor', '?')}"


class Lifecycle:
    """Lifecycle events of both hosts, stamped with ``time.perf_counter()`` when they arrive (one event thread)."""

    def __init__(self, hosts: Sequence[virtkit.Host]) -> None:
        self._lock = threading.Lock()
        self._seen: list[tuple[float, str, str, str, str]] = []
        self._subs = [host.subscribe(self._on) for host in hosts]

    def _on(self, event: virtkit.LifecycleEvent) -> None:
        with self._lock:
            self._seen.append((time.perf_counter(), event.host, event.vm, event.event, event.detail))

    def close(self) -> None:
        for sub in self._subs:
            sub.close()

    def downtime(self, name: str, src: str, dst: str, since: float, wait: float = 3.0) -> float | None:
        """Seconds from the first ``suspended`` event of ``name`` on ``src`` after ``since`` to the first
        ``resumed`` on ``dst`` after it (in post-copy the guest resumes on the destination before its memory is
        all there; that pause is what the guest feels). ``None`` if they have not arrived within ``wait`` s."""
        deadline = time.monotonic() + wait
        while True:
            with self._lock:
                seen = [e for e in self._seen if e[0] >= since and e[2] == name]
            paused = next((t for t, host, _, ev, _ in seen if host == src and ev == "suspended"), None)
            if paused is not None:
                after = (t for t, host, _, ev, _ in seen if host == dst and ev == "resumed" and t >= paused)
                if (resumed := next(after, None)) is not None:
                    return resumed - paused
            if time.monotonic() > deadline:
                return None
            time.sleep(0.02)

    def went_postcopy(self, name: str, src: str, since: float) -> bool:
        """Whether ``name`` was suspended on ``src`` for post-copy (detail ``postcopy``) after ``since``."""
        with self._lock:
            return any(
                t >= since and vm == name and host == src and ev == "suspended" and detail == "postcopy"
                for t, host, vm, ev, detail in self._seen
            )


# -- the guest -------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Guest:
    """One lab guest on the shared directory, moved between two hosts; its serial log tells whether it survived."""

    name: str
    memory: str
    image: image.GuestImage
    cmdline: str
    hosts: tuple[virtkit.Host, virtkit.Host]
    log: GuestLog = dataclasses.field(init=False)
    crashes: list[str] = dataclasses.field(default_factory=list)

    def remove(self) -> None:
        for host in self.hosts:
            with contextlib.suppress(virtkit.NotFound):
                host.get(self.name).delete(force=True)
        for path in shared_dir().glob(f"{self.name}.*"):
            path.unlink(missing_ok=True)

    def boot(self, boot_timeout: float = 180) -> None:
        """A fresh guest on the first host (whatever was left removed), booted and alive."""
        self.remove()
        shared = shared_dir()
        self.hosts[0].create(
            {
                "name": self.name,
                "memory": self.memory,
                "kernel": {
                    "kernel": str(self.image.kernel),
                    "initrd": str(self.image.initrd),
                    "cmdline": self.cmdline,
                },
                "disks": [{"path": str(shared / f"{self.name}.qcow2"), "size": "64MiB"}],
                "serial_log": str(shared / f"{self.name}.serial.log"),
            },
            start=True,
        )
        self.log = GuestLog(shared / f"{self.name}.serial.log")
        self.log.wait_for_boot(timeout=boot_timeout)
        self.log.wait_for_alive(timeout=30)

    def where(self) -> tuple[virtkit.Host, virtkit.Host]:
        """(the host it runs on, the other one)."""
        a, b = self.hosts
        return (a, b) if a.exists(self.name) else (b, a)

    def mark(self) -> int:
        """A position in the serial log (its size in bytes) to scan for a crash from."""
        try:
            return self.log.path.stat().st_size
        except FileNotFoundError:
            return 0

    def trouble(self, since: int, timeout: float = 20.0) -> str | None:
        """Why the guest is not well since log position ``since``, or ``None``: it must write a fresh alive line
        with the next counter, not boot again, and print nothing the kernel prints when it goes wrong."""
        last = self.log.last_alive()
        boots = len(self.log.boots())
        why = None
        try:
            fresh = self.log.wait_for_alive(timeout=timeout, after_line=last.line_no if last else 0)
            if last is not None and fresh.counter != (last.counter or 0) + 1:
                why = f"alive counter went from {last.counter} to {fresh.counter}"
        except OperationTimeout:
            why = f"no alive line for {timeout:.0f} s"
        if len(self.log.boots()) != boots:
            why = "it booted again"
        with open(self.log.path, "rb") as fh:
            fh.seek(since)
            text = fh.read()
        if (crash := CRASH.search(text)) is not None:
            start = text.rfind(b"\n", 0, crash.start()) + 1
            end = text.find(b"\n", crash.end())
            why = "console: " + text[start : end if end >= 0 else None].decode(errors="replace").strip()
        return why

    def survived(self, since: int) -> bool:
        """Whether it is well (see :meth:`trouble`); if not, the reason is kept and a fresh guest booted."""
        why = self.trouble(since)
        if why is None:
            return True
        self.crashes.append(why)
        print(f"  {self.name}: {why}; booting a fresh guest", file=sys.stderr, flush=True)
        self.boot()
        return False


# -- tables ----------------------------------------------------------------------------------------------------------


def cell(samples: Sequence[float | None], unit: float = 1.0, fmt: str = "{:.2f}") -> str:
    """``median (min-max)`` of the known samples, scaled by ``unit``; ``n/a`` when there is none."""
    values = [s * unit for s in samples if s is not None]
    if not values:
        return "n/a"
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def ratio(samples: Sequence[float | None], base: Sequence[float | None]) -> str:
    ours, theirs = [s for s in samples if s is not None], [s for s in base if s is not None]
    return f"{statistics.median(ours) / statistics.median(theirs):.2f}" if ours and theirs else "n/a"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()


def rotated(items: Sequence[str], i: int) -> list[str]:
    """``items`` starting at the ``i``-th (so each goes first in turn)."""
    k = i % len(items)
    return [*items[k:], *items[:k]]


# -- live, idle guest ------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Samples:
    total: list[float] = dataclasses.field(default_factory=list)
    downtime: list[float | None] = dataclasses.field(default_factory=list)  # from the lifecycle events
    reported: list[float | None] = dataclasses.field(default_factory=list)  # what libvirt / virtkit reported
    postcopy: int = 0
    trips: int = 0
    survived: int = 0


LIVE_SIDES = ("virsh", "virtkit", "virtkit precopy")


def _live(guest: Guest, events: Lifecycle, round_trips: int) -> dict[str, Samples]:
    shared = [shared_dir()]
    samples = {side: Samples() for side in LIVE_SIDES}

    def move(side: str) -> None:
        src, dst = guest.where()
        out = samples[side]
        started = time.perf_counter()
        if side == "virsh":
            virsh(src.uri, "migrate", *VIRSH_LIVE, guest.name, dst.uri)
            out.total.append(time.perf_counter() - started)
            out.reported.append(virsh_downtime(dst.uri, guest.name))
        else:
            tuning = {"strategy": "precopy"} if side == "virtkit precopy" else None
            result = virtkit.migrate(src.get(guest.name), dst, tuning=tuning, shared_storage=shared)
            out.total.append(time.perf_counter() - started)
            out.reported.append(result.downtime)
            out.postcopy += result.postcopy
        out.downtime.append(events.downtime(guest.name, src.uri, dst.uri, started))

    for i in range(round_trips):
        for side in rotated(LIVE_SIDES, i):
            since = guest.mark()
            move(side)
            move(side)
            samples[side].trips += 1
            samples[side].survived += guest.survived(since)
    return samples


def _live_table(samples: dict[str, Samples]) -> None:
    base = samples["virsh"]
    header = ["256 MiB idle guest", *(f"{side} ({len(samples[side].total)} moves)" for side in LIVE_SIDES)]
    rows = [
        ["total, s", *(cell(samples[s].total) for s in LIVE_SIDES)],
        ["total, ratio to virsh", *(ratio(samples[s].total, base.total) for s in LIVE_SIDES)],
        ["downtime (events), ms", *(cell(samples[s].downtime, 1000, "{:.0f}") for s in LIVE_SIDES)],
        [
            "downtime libvirt reports, ms",
            *(
                cell(samples[s].reported, 1000, "{:.0f}") + f", none for {samples[s].reported.count(None)}"
                for s in LIVE_SIDES
            ),
        ],
        ["moves in post-copy", *(str(samples[s].postcopy) for s in LIVE_SIDES)],
        ["guest well after the round trip", *(f"{samples[s].survived} of {samples[s].trips}" for s in LIVE_SIDES)],
    ]
    table(header, rows)


# -- quick -----------------------------------------------------------------------------------------------------------


def _quick(guest: Guest, runs: int) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Quick migrations of the 512 MiB guest: virtkit's, and the same steps through virsh."""
    shared = shared_dir()
    times: dict[str, list[float]] = {"virsh": [], "virtkit": []}
    well = {"virsh": 0, "virtkit": 0}

    def virsh_quick(src: virtkit.Host, dst: virtkit.Host) -> None:
        xml, state = shared / f"{guest.name}.xml", shared / f"{guest.name}.save"
        xml.write_text(virsh(src.uri, "dumpxml", "--inactive", "--security-info", guest.name))
        virsh(src.uri, "save", guest.name, str(state))
        virsh(dst.uri, "define", str(xml))
        virsh(dst.uri, "restore", str(state))
        virsh(src.uri, "undefine", guest.name)
        state.unlink()
        xml.unlink()

    moves: dict[str, Callable[[virtkit.Host, virtkit.Host], object]] = {
        "virsh": virsh_quick,
        "virtkit": lambda src, dst: virtkit.migrate(src.get(guest.name), dst, mode="quick", shared_storage=[shared]),
    }
    for i in range(runs):
        for side in rotated(("virsh", "virtkit"), i):
            since = guest.mark()
            for _ in range(2):
                src, dst = guest.where()
                started = time.perf_counter()
                moves[side](src, dst)
                times[side].append(time.perf_counter() - started)
            well[side] += guest.survived(since)
    return times, well


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--round-trips", type=int, default=10, help="live round trips per side (medians reported)")
    parser.add_argument("--quick-runs", type=int, default=3, help="quick-migration round trips per side")
    parser.add_argument("--only", choices=("live", "quick"), help="run one of the two benchmarks")
    args = parser.parse_args()

    guest_image = image.build_guest()
    lab = daemons.up(2)
    with virtkit.connect(lab[0].uri) as a, virtkit.connect(lab[1].uri) as b:
        print(f"lab hosts {a.uri} <-> {b.uri}, TCG, shared directory; {facts(a.uri)}; medians (min-max)\n")
        live = Guest(LIVE, "256MiB", guest_image, guest_image.cmdline_for(alive=1), (a, b))
        quick = Guest(QUICK, "512MiB", guest_image, guest_image.cmdline_for(alive=1), (a, b))
        events = Lifecycle((a, b))
        try:
            if args.only in (None, "live"):
                live.boot()
                samples = _live(live, events, args.round_trips)
                live.remove()
                _live_table(samples)
            if args.only in (None, "quick"):
                quick.boot()
                times, well = _quick(quick, args.quick_runs)
                quick.remove()
                table(
                    ["512 MiB guest", "virsh", "virtkit quick", "ratio"],
                    [
                        [
                            f"quick: total ({len(times['virtkit'])} moves per side), s",
                            cell(times["virsh"]),
                            cell(times["virtkit"]),
                            ratio(times["virtkit"], times["virsh"]),
                        ],
                        [
                            "guest well after the round trip",
                            f"{well['virsh']} of {args.quick_runs}",
                            f"{well['virtkit']} of {args.quick_runs}",
                            "",
                        ],
                    ],
                )
                print("virsh quick = dumpxml + save + define + restore + undefine, one virsh process each\n")
        finally:
            events.close()
            live.remove()
            quick.remove()
        for why in live.crashes + quick.crashes:
            print(f"- guest not well: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
