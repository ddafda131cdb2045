"""After a migration call: read where the VM is on both hosts, make it run on exactly one, and check that it does.

:func:`settle` reads both hosts until :func:`~virtkit.ops.migration.outcome.decide` can decide (a daemon that restarts
meanwhile is waited for), runs the repair steps, and reads again: the VM must run, not paused, on the host the
decision keeps, and nowhere else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time

from virtkit.backends.base import DomainBackend, HostBackend
from virtkit.backends.base.migration import MigrationBackend
from virtkit.errors import NotFound, VirtkitError
from virtkit.models.migration import Location, Presence
from virtkit.ops.migration.outcome import Decision, Outcome, Step, decide

__all__ = ["Side", "settle"]

#: How long a host that does not answer, or a job that still runs, is waited for, in seconds.
SETTLE_TIMEOUT = 90.0
_READ_INTERVAL = 0.5


@dataclasses.dataclass(frozen=True)
class Side:
    """One end of a migration: the host and its migration backend."""

    host: HostBackend
    migrations: MigrationBackend


@dataclasses.dataclass(frozen=True)
class Settled:
    """What :func:`settle` found and did."""

    decision: Decision
    #: The VM on the source and on the destination, as last read before deciding.
    source: Presence
    destination: Presence
    #: Problems met while repairing, for the error message; empty when the repair went through.
    problems: tuple[str, ...]
    #: Whether the VM runs (not paused) on the host the decision keeps, and nowhere else.
    confirmed: bool


def _read(src: Side, dst: Side, name: str, uuid: str) -> tuple[Presence, Presence]:
    return src.migrations.presence(name, uuid), dst.migrations.presence(name, uuid)


def _lookup(side: Side, name: str) -> DomainBackend:
    dom = side.host.lookup(name)
    if dom is None:
        raise NotFound(f"{name} is gone from {side.host.uri}")
    return dom


# Each repair step: the side it acts on, and what it does there.
_STEPS: dict[Step, tuple[bool, str]] = {
    Step.DESTROY_SOURCE: (True, "destroy"),
    Step.DESTROY_DEST: (False, "destroy"),
    Step.UNDEFINE_SOURCE: (True, "undefine"),
    Step.UNDEFINE_DEST: (False, "undefine"),
    Step.DEFINE_SOURCE: (True, "define"),
    Step.DEFINE_DEST: (False, "define"),
    Step.RESUME_SOURCE: (True, "resume"),
    Step.RESUME_DEST: (False, "resume"),
    Step.START_SOURCE: (True, "start"),
    Step.START_DEST: (False, "start"),
}


def _run(step: Step, src: Side, dst: Side, name: str, definition: str) -> None:
    on_source, action = _STEPS[step]
    side = src if on_source else dst
    if action == "define":
        side.migrations.define(definition)
        return
    dom = _lookup(side, name)
    {"destroy": dom.destroy, "undefine": dom.undefine, "resume": dom.resume, "start": dom.start}[action]()


def settle(
    src: Side,
    dst: Side,
    name: str,
    uuid: str,
    *,
    definition: str,
    postcopy: bool,
    allow_restart: bool = True,
    timeout: float = SETTLE_TIMEOUT,
) -> Settled:
    """Decide where the VM keeps running, make it so, and check.

    :param definition: the VM's persistent definition read before the migration, for a host that lost it.
    :param allow_restart: boot the VM afresh when it runs nowhere (a live migration); else leave it be.
    """
    deadline = time.monotonic() + timeout
    while True:
        s, d = _read(src, dst, name, uuid)
        final = time.monotonic() >= deadline
        decision = decide(s, d, postcopy=postcopy, final=final)
        if decision.outcome is not Outcome.WAIT:
            break
        time.sleep(_READ_INTERVAL)
    if decision.restarts and not allow_restart:
        decision = Decision(Outcome.UNKNOWN, (), f"{decision.reason}; not booted afresh")
    problems: list[str] = []
    for step in decision.steps:
        try:
            _run(step, src, dst, name, definition)
        except VirtkitError as exc:
            problems.append(f"{step.value}: {exc}")
    if decision.outcome not in (Outcome.SOURCE, Outcome.DESTINATION):
        return Settled(decision, s, d, tuple(problems), confirmed=False)
    keep, other = (src, dst) if decision.outcome is Outcome.SOURCE else (dst, src)
    confirmed = False
    with contextlib.suppress(VirtkitError):
        here = keep.migrations.presence(name, uuid)
        there = other.migrations.presence(name, uuid)
        confirmed = (
            here.location is Location.RUNNING
            and here.persistent
            and there.location in (Location.ABSENT, Location.UNKNOWN)
        )
        if not confirmed:
            problems.append(f"afterwards it is {here.location.value} there and {there.location.value} on the other")
    return Settled(decision, s, d, tuple(problems), confirmed)
