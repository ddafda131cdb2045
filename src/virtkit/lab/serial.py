"""Read what the lab's test guest reports on its serial port.

The guest's ``/init`` (``virtkit/lab/guest/init``) writes three kinds of line, among the kernel's own messages::

    VIRTKIT-BOOT uptime=2.41
    VIRTKIT-DISKS uptime=2.43 disks=sda,vda        (empty after "disks=" when there is none)
    VIRTKIT-ALIVE uptime=12.45 counter=1

its memory load (``virtkit/lab/guest/virtkit-load.c``) two more, when the kernel command line asks for a load::

    VIRTKIT-DIRTY uptime=2.60 mib=64 mode=counter  (virtkit.dirty=<MiB>: once, when the load runs; mode: DIRTY_MODES)
    VIRTKIT-DIRTY uptime=7.60 mib=64 mode=counter passes=52   (every virtkit.dirtyreport=<s>: passes so far)
    VIRTKIT-FILL uptime=3.10 filled mib=256        (virtkit.fill=<MiB>: once, when the memory is filled)
    VIRTKIT-FILL uptime=8.12 ok pass=1             (every virtkit.fillcheck=<s>: check number 1 found every page intact)
    VIRTKIT-FILL uptime=13.12 bad=3 pass=2         (check number 2 found 3 pages changed)

and the ``agent`` variant's guest (``virtkit/lab/guest/agent-init``) one more, once per boot::

    VIRTKIT-AGENT uptime=3.45 started              (or "no-port", "failed": see AGENT_STATUSES)

Older guests wrote DIRTY lines without ``mode=``: they still parse (``mode`` is then ``None``).

The serial log is opened in append mode, so a guest that reboots adds a second BOOT line to the same file. Only
whole lines count: a last line without its newline is still being written and is left for the next read.
"""

from __future__ import annotations

import os
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Literal, get_args

from virtkit.errors import OperationTimeout

__all__ = [
    "AGENT_STATUSES",
    "DIRTY_MODES",
    "FILL_STATUSES",
    "DirtyMode",
    "GuestEvent",
    "GuestEventKind",
    "GuestLog",
    "parse_log",
]

_TAIL_LINES = 200  # lines kept for error messages


class GuestEventKind(StrEnum):
    """What a guest line reports; compares equal to the plain strings ``"boot"``, ``"disks"``, ``"alive"``,
    ``"agent"``, ``"dirty"`` and ``"fill"``."""

    BOOT = "boot"
    DISKS = "disks"
    ALIVE = "alive"
    AGENT = "agent"
    DIRTY = "dirty"
    FILL = "fill"


# What an AGENT line says: qemu-ga runs with its port open (it answers from now on); the VM has no agent channel;
# qemu-ga exited or never opened its port.
AGENT_STATUSES = ("started", "no-port", "failed")
# How the dirty load rewrites its memory (kernel option virtkit.dirtymode=): the same bytes on every pass, or
# every byte of every page changed on every pass (nothing for XBZRLE or a compressor to save).
DirtyMode = Literal["pattern", "counter"]
DIRTY_MODES: tuple[DirtyMode, ...] = get_args(DirtyMode)
# What a FILL line says: the memory is filled; a check found every page as written; a check found changed pages.
FILL_STATUSES = ("filled", "ok", "bad")


@dataclass(frozen=True)
class GuestEvent:
    """One marker line of the guest; the fields a kind of line does not carry are ``None``.

    - DISKS: ``disks``;
    - ALIVE: ``counter``;
    - AGENT: ``status``, one of :data:`AGENT_STATUSES`;
    - DIRTY: ``mib`` rewritten (also in ``counter``, where it always was), ``mode`` (one of :data:`DIRTY_MODES`;
      ``None`` from a guest older than the modes) and, on the periodic report lines only, ``passes`` written so far;
    - BOOT: ``firmware`` (``"bios"`` or ``"efi"``) and ``secure_boot`` (the kernel found Secure Boot on); both
      ``None`` from a guest older than these fields;
    - FILL: ``status``, one of :data:`FILL_STATUSES`; ``mib`` filled on the ``filled`` line; on check lines,
      ``passes``, the check's number from 1, and ``bad_pages``, the pages that differ from what was written (0 when
      ``ok``).

    ``uptime`` is the guest's own /proc/uptime in seconds; ``line_no`` counts the log's lines from 1.
    """

    kind: GuestEventKind
    uptime: float
    disks: tuple[str, ...] | None
    counter: int | None
    line_no: int
    status: str | None = None
    mib: int | None = None
    mode: str | None = None
    passes: int | None = None
    bad_pages: int | None = None
    firmware: str | None = None
    secure_boot: bool | None = None


# A marker may follow kernel noise on the same line (both write to ttyS0), so it is searched, not matched at the
# start; a marker whose fields do not parse exactly (a line garbled by interleaved output) is ignored.
_MARKER = re.compile(
    r"VIRTKIT-(?P<kind>BOOT|DISKS|ALIVE|AGENT|DIRTY|FILL) uptime=(?P<uptime>\d+(?:\.\d+)?)(?P<rest>.*?)\s*$"
)
_FIELDS = {
    "BOOT": re.compile(r"(?: firmware=(?P<firmware>bios|efi) secureboot=(?P<secureboot>on|off))?"),
    "DISKS": re.compile(r" disks=(?P<disks>(?:[\w.:-]+(?:,[\w.:-]+)*)?)"),
    "ALIVE": re.compile(r" counter=(?P<counter>\d+)"),
    "DIRTY": re.compile(
        r" mib=(?P<mib>\d+)(?: mode=(?P<mode>" + "|".join(DIRTY_MODES) + r")(?: passes=(?P<passes>\d+))?)?"
    ),
    "AGENT": re.compile(r" (?P<status>" + "|".join(re.escape(s) for s in AGENT_STATUSES) + r")"),
    # Named groups cannot repeat across alternatives: "ok" and "bad" lines each have their own pass group.
    "FILL": re.compile(
        r" (?:filled mib=(?P<mib>\d+)|ok pass=(?P<ok_pass>\d+)|bad=(?P<bad_pages>\d+) pass=(?P<passes>\d+))"
    ),
}

_NUMBERS = frozenset({"counter", "mib", "passes", "ok_pass", "bad_pages"})  # the groups that hold whole numbers


def parse_log(text: str) -> list[GuestEvent]:
    """The guest's marker lines in ``text``, in order; kernel noise, garbled markers and a partial last line ignored."""
    lines = text.split("\n")
    del lines[-1]  # after the last newline: empty, or a line still being written
    return _parse_lines(lines, first_line_no=1)


def _parse_lines(lines: list[str], *, first_line_no: int) -> list[GuestEvent]:
    events = []
    for line_no, line in enumerate(lines, start=first_line_no):
        if "VIRTKIT-" in line and (event := _parse_line(line, line_no)) is not None:
            events.append(event)
    return events


def _parse_line(line: str, line_no: int) -> GuestEvent | None:
    marker = _MARKER.search(line)
    if marker is None or (fields := _FIELDS[marker["kind"]].fullmatch(marker["rest"])) is None:
        return None
    kind = GuestEventKind(marker["kind"].lower())
    found = fields.groupdict()
    disks, status = found.get("disks"), found.get("status")
    numbers = {name: int(value) for name, value in found.items() if name in _NUMBERS and value is not None}
    if kind is GuestEventKind.DIRTY:
        numbers["counter"] = numbers["mib"]  # where DIRTY lines kept their MiB before the field had its own name
    elif kind is GuestEventKind.FILL:
        if "mib" in numbers:
            status = "filled"
        elif "ok_pass" in numbers:
            status, numbers["passes"], numbers["bad_pages"] = "ok", numbers.pop("ok_pass"), 0
        else:
            status = "bad"
    return GuestEvent(
        kind=kind,
        uptime=float(marker["uptime"]),
        disks=None if disks is None else tuple(disks.split(",")) if disks else (),
        counter=numbers.get("counter"),
        line_no=line_no,
        status=status,
        mib=numbers.get("mib"),
        mode=found.get("mode"),
        passes=numbers.get("passes"),
        bad_pages=numbers.get("bad_pages"),
        firmware=found.get("firmware"),
        secure_boot=None if found.get("secureboot") is None else found["secureboot"] == "on",
    )


class GuestLog:
    """A guest's serial log file, read incrementally: each call reads only what was appended since the last one.

    The file may not exist yet (QEMU creates it when the VM starts): it then reads as empty. If the file shrinks
    or is replaced, it is read again from the start.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the file read so far
        self._offset = 0  # bytes consumed: always just after a newline
        self._line_count = 0
        self._tail: deque[str] = deque(maxlen=_TAIL_LINES)
        self._events: list[GuestEvent] = []

    def __repr__(self) -> str:
        return f"GuestLog({str(self.path)!r})"

    def events(self) -> list[GuestEvent]:
        """Every marker in the log so far, oldest first."""
        self._refresh()
        return list(self._events)

    def boots(self) -> list[GuestEvent]:
        """The BOOT markers: one per boot of the guest since the log was created."""
        return [e for e in self.events() if e.kind is GuestEventKind.BOOT]

    def last_disks(self) -> tuple[str, ...] | None:
        """The block devices of the latest DISKS line, or ``None`` before the first one."""
        return _last_disks(self.events())

    def last_alive(self) -> GuestEvent | None:
        """The latest ALIVE line, or ``None`` before the first one."""
        return next((e for e in reversed(self.events()) if e.kind is GuestEventKind.ALIVE), None)

    def last_agent(self) -> GuestEvent | None:
        """The latest AGENT line (its ``status`` says whether qemu-ga started), or ``None`` before the first one."""
        return next((e for e in reversed(self.events()) if e.kind is GuestEventKind.AGENT), None)

    def last_fill(self) -> GuestEvent | None:
        """The latest FILL line (``status`` filled, ok or bad), or ``None`` before the first one."""
        return next((e for e in reversed(self.events()) if e.kind is GuestEventKind.FILL), None)

    def tail(self, count: int = 20) -> list[str]:
        """The last ``count`` whole lines of the log, carriage returns stripped (for error messages)."""
        self._refresh()
        return list(self._tail)[-count:] if count > 0 else []

    def wait_for(
        self,
        predicate: Callable[[list[GuestEvent]], bool],
        timeout: float,
        interval: float = 0.1,
        *,
        description: str = "the expected guest output",
    ) -> list[GuestEvent]:
        """Poll the log until ``predicate(events)`` is true; return those events.

        :raises OperationTimeout: ``timeout`` seconds passed first; the message ends with the log's last lines.
        """
        deadline = time.monotonic() + timeout
        while True:
            events = self.events()
            if predicate(events):
                return events
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                tail = "\n".join(f"  | {line}" for line in self.tail(15)) or "  (empty or missing)"
                raise OperationTimeout(f"no {description} in {self.path} after {timeout:g} s; last lines:\n{tail}")
            time.sleep(min(interval, remaining))

    def wait_for_boot(self, timeout: float, after_boots: int = 0) -> GuestEvent:
        """Wait until the log holds more than ``after_boots`` BOOT markers; return the latest.

        Pass ``len(log.boots())`` taken before a reboot to wait for the next boot.

        :raises OperationTimeout: no new boot marker within ``timeout`` seconds.
        """
        events = self.wait_for(
            lambda evs: _count(evs, GuestEventKind.BOOT) > after_boots,
            timeout,
            description=f"boot marker number {after_boots + 1}",
        )
        return next(e for e in reversed(events) if e.kind is GuestEventKind.BOOT)

    def wait_for_disks(self, predicate: Callable[[tuple[str, ...]], bool], timeout: float) -> tuple[str, ...]:
        """Wait until the latest DISKS line satisfies ``predicate(disks)``; return those disks.

        :raises OperationTimeout: the guest did not report such a set of disks within ``timeout`` seconds.
        """

        seen: list[tuple[str, ...]] = []

        def done(events: list[GuestEvent]) -> bool:
            disks = _last_disks(events)
            if disks is not None and predicate(disks):
                seen.append(disks)
                return True
            return False

        self.wait_for(done, timeout, description="matching DISKS line")
        return seen[-1]

    def wait_for_alive(self, timeout: float, after_line: int = 0) -> GuestEvent:
        """Wait for an ALIVE line after line ``after_line`` of the log (an event's ``line_no``); return it.

        :raises OperationTimeout: no such line within ``timeout`` seconds (the guest is stopped or hung).
        """

        def fresh(events: list[GuestEvent]) -> list[GuestEvent]:
            return [e for e in events if e.kind is GuestEventKind.ALIVE and e.line_no > after_line]

        events = self.wait_for(lambda evs: bool(fresh(evs)), timeout, description=f"ALIVE line after line {after_line}")
        return fresh(events)[0]

    def wait_for_agent(self, timeout: float, after_line: int = 0) -> GuestEvent:
        """Wait for an AGENT line after line ``after_line`` and return it, whatever its ``status``.

        The agent starts in the background while the guest boots, so its line usually follows the BOOT marker but
        need not: to wait for the agent of the next boot, pass the ``line_no`` of the previous AGENT line.

        :raises OperationTimeout: no such line within ``timeout`` seconds (not the agent variant, or a hung guest).
        """

        def fresh(events: list[GuestEvent]) -> list[GuestEvent]:
            return [e for e in events if e.kind is GuestEventKind.AGENT and e.line_no > after_line]

        events = self.wait_for(lambda evs: bool(fresh(evs)), timeout, description=f"AGENT line after line {after_line}")
        return fresh(events)[0]

    def wait_for_fill(self, timeout: float, after_line: int = 0, *, checked: bool = False) -> GuestEvent:
        """Wait for a FILL line after line ``after_line``; with ``checked``, for a check's line (ok or bad), not
        the ``filled`` one. Return it, whatever it says.

        To see whether memory came through a migration intact, pass ``checked=True`` and the ``line_no`` of the
        log's last line once the migration has finished: the line returned is from a check that ended on the
        destination, its ``status`` ``"ok"`` or ``"bad"`` (``bad_pages`` says how many). That check may have begun
        before the switch-over; for one that ran wholly on the destination, wait again after that line.

        :raises OperationTimeout: no such line within ``timeout`` seconds (no fill load, or a hung guest).
        """

        def fresh(events: list[GuestEvent]) -> list[GuestEvent]:
            return [
                e
                for e in events
                if e.kind is GuestEventKind.FILL and e.line_no > after_line and not (checked and e.status == "filled")
            ]

        what = "FILL check line" if checked else "FILL line"
        events = self.wait_for(lambda evs: bool(fresh(evs)), timeout, description=f"{what} after line {after_line}")
        return fresh(events)[0]

    def _refresh(self) -> None:
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                identity = (st.st_dev, st.st_ino)
                if identity != self._identity or st.st_size < self._offset:
                    self._reset(identity)
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            self._reset(None)
            return
        end = chunk.rfind(b"\n") + 1
        if end == 0:
            return
        self._offset += end
        lines = [line.rstrip("\r") for line in chunk[:end].decode(errors="replace").split("\n")[:-1]]
        self._events += _parse_lines(lines, first_line_no=self._line_count + 1)
        self._line_count += len(lines)
        self._tail.extend(lines)

    def _reset(self, identity: tuple[int, int] | None) -> None:
        self._identity, self._offset, self._line_count = identity, 0, 0
        self._tail.clear()
        self._events = []


def _last_disks(events: list[GuestEvent]) -> tuple[str, ...] | None:
    return next((e.disks for e in reversed(events) if e.kind is GuestEventKind.DISKS), None)


def _count(events: list[GuestEvent], kind: GuestEventKind) -> int:
    return sum(1 for e in events if e.kind is kind)
