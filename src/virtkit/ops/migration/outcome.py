"""Where a VM runs after a migration, and what to do so that it runs on exactly one host: a pure decision table.

The outcome is read from the hosts, never from an error message: :func:`decide` takes the VM's
:class:`~virtkit.models.migration.Presence` on the source and on the destination and returns the host that keeps
it and the steps that make the other one let go. The rules, in order:

1. A job still running on either side, or a host that matters not answering yet: wait and read again.
2. A copy whose vCPUs run on the destination has the newest state (without post-copy libvirt resumes the
   destination only once every page arrived): it is kept, unless the source runs too before post-copy started
   (then the source, which never stopped, is authoritative).
3. Before post-copy the source is authoritative: a paused source is resumed and the destination's copy destroyed.
   After post-copy started the destination is: it is resumed, the source's copy destroyed; if it died, the
   guest's memory is gone with it and the VM is booted afresh where its definition is.
4. A VM left running nowhere is booted where its definition is (the source's first), so it runs again.
5. Leftover definitions go: the host that does not keep the VM has none afterwards.

When a host never answers, the last read is decided with ``final=True``: a source that runs the VM keeps it
(libvirt discards an unfinished incoming copy when its daemon comes back); anything else is left alone
(``UNKNOWN``) rather than resumed blind.
"""

from __future__ import annotations

import dataclasses
from enum import StrEnum

from virtkit.models.migration import Location, Presence

__all__ = ["Decision", "Outcome", "Step", "decide"]


class Outcome(StrEnum):
    """Which host keeps the VM."""

    SOURCE = "source"
    DESTINATION = "destination"
    WAIT = "wait"  # not decided yet: read both hosts again
    UNKNOWN = "unknown"  # cannot be decided without a host that does not answer; nothing is done blind


class Step(StrEnum):
    """One repair step, run in the order given."""

    DESTROY_SOURCE = "destroy-source"
    DESTROY_DEST = "destroy-destination"
    UNDEFINE_SOURCE = "undefine-source"
    UNDEFINE_DEST = "undefine-destination"
    DEFINE_SOURCE = "define-source"  # from the definition read before the migration
    DEFINE_DEST = "define-destination"
    RESUME_SOURCE = "resume-source"
    RESUME_DEST = "resume-destination"
    START_SOURCE = "start-source"  # a cold boot: the guest's memory was lost
    START_DEST = "start-destination"


@dataclasses.dataclass(frozen=True)
class Decision:
    """The host that keeps the VM, the steps to get there, and why."""

    outcome: Outcome
    steps: tuple[Step, ...]
    reason: str

    @property
    def restarts(self) -> bool:
        """Whether the VM is booted afresh (its running state was lost)."""
        return Step.START_SOURCE in self.steps or Step.START_DEST in self.steps


_ACTIVE = (Location.RUNNING, Location.PAUSED)


def _drop(p: Presence, destroy: Step, undefine: Step) -> tuple[Step, ...]:
    """Steps that remove the VM from a host that does not keep it."""
    steps: tuple[Step, ...] = ()
    if p.location in _ACTIVE:
        steps += (destroy,)
    if p.persistent or p.location is Location.DEFINED:
        steps += (undefine,)
    return steps


def _keep_dest(src: Presence, dst: Presence, reason: str) -> Decision:
    steps = _drop(src, Step.DESTROY_SOURCE, Step.UNDEFINE_SOURCE)
    if not dst.persistent:
        steps += (Step.DEFINE_DEST,)
    if dst.location is Location.PAUSED:
        steps += (Step.RESUME_DEST,)
    return Decision(Outcome.DESTINATION, steps, reason)


def _keep_source(src: Presence, dst: Presence, reason: str) -> Decision:
    steps = _drop(dst, Step.DESTROY_DEST, Step.UNDEFINE_DEST)
    if not src.persistent:
        steps += (Step.DEFINE_SOURCE,)
    if src.location is Location.PAUSED:
        steps += (Step.RESUME_SOURCE,)
    return Decision(Outcome.SOURCE, steps, reason)


def _boot(src: Presence, dst: Presence, reason: str) -> Decision:
    """Neither host runs the guest: boot it where its definition is, the source first."""
    if src.location is Location.DEFINED or dst.location is not Location.DEFINED:
        steps = _drop(dst, Step.DESTROY_DEST, Step.UNDEFINE_DEST)
        if src.location in _ACTIVE:
            steps = (Step.DESTROY_SOURCE, *steps)
        if src.location is Location.ABSENT:
            steps += (Step.DEFINE_SOURCE,)
        return Decision(Outcome.SOURCE, (*steps, Step.START_SOURCE), reason)
    steps = _drop(src, Step.DESTROY_SOURCE, Step.UNDEFINE_SOURCE)
    return Decision(Outcome.DESTINATION, (*steps, Step.START_DEST), reason)


def decide(src: Presence, dst: Presence, *, postcopy: bool, final: bool = False) -> Decision:
    """Which host keeps the VM and how to get there (see the module's docstring for the rules).

    :param postcopy: the caller switched the migration to post-copy (the hosts' own word is taken too).
    :param final: no more reads will come: decide with what is known instead of waiting.
    """
    s, d = src.location, dst.location
    post = postcopy or src.postcopy or dst.postcopy
    if src.job_active or dst.job_active:
        if not final:
            return Decision(Outcome.WAIT, (), "a migration job still runs")
        return Decision(Outcome.UNKNOWN, (), "a migration job still runs and did not end in time")
    unknown = Location.UNKNOWN
    if d is unknown and s is Location.RUNNING:
        return Decision(
            Outcome.SOURCE,
            (),
            "it runs on the source; the destination did not answer (its libvirt discards an unfinished incoming "
            "VM when it comes back)",
        )
    if s is unknown and d is Location.RUNNING and final:
        return Decision(Outcome.DESTINATION, (), "it runs on the destination; the source did not answer")
    if unknown in (s, d):
        if not final:
            return Decision(Outcome.WAIT, (), "a host did not answer")
        return Decision(Outcome.UNKNOWN, (), f"the {'source' if s is unknown else 'destination'} did not answer")
    if d is Location.RUNNING:
        if s is Location.RUNNING and not post:
            return _keep_source(src, dst, "it ran on both hosts before post-copy: the source is authoritative")
        return _keep_dest(src, dst, "it runs on the destination")
    if d is Location.PAUSED:
        if post:
            return _keep_dest(src, dst, "post-copy started: the destination is authoritative")
        if s in _ACTIVE:
            return _keep_source(src, dst, "the migration did not finish: the source is authoritative")
        return _keep_dest(src, dst, "the source let it go and the destination holds all of it, paused")
    # The destination has no running copy.
    if s is Location.RUNNING:
        return _keep_source(src, dst, "it runs on the source")
    if s is Location.PAUSED and not post:
        return _keep_source(src, dst, "the migration did not finish: the source is authoritative")
    if s is Location.PAUSED:
        return _boot(src, dst, "post-copy started and the destination lost the guest: its memory is gone")
    return _boot(src, dst, "it ran on neither host")
