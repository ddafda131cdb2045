"""The decision table: where a VM runs after a migration (read on both hosts) -> which host keeps it, and how."""

from __future__ import annotations

import pytest

from virtkit.models.migration import Location, Presence
from virtkit.ops.migration.outcome import Outcome, Step, decide

ABSENT = Presence(Location.ABSENT)
UNKNOWN = Presence(Location.UNKNOWN)
RUNNING = Presence(Location.RUNNING, persistent=True)
PAUSED = Presence(Location.PAUSED, persistent=True)
DEFINED = Presence(Location.DEFINED, persistent=True)
# The destination's copy during a migration: transient until libvirt makes it persistent at the end.
DST_RUNNING = Presence(Location.RUNNING, persistent=True)
DST_PAUSED = Presence(Location.PAUSED)
DST_POSTCOPY = Presence(Location.RUNNING, postcopy=True, persistent=True)
SRC_POSTCOPY_PAUSED = Presence(Location.PAUSED, postcopy=True, persistent=True)
BUSY = Presence(Location.RUNNING, job_active=True, persistent=True)

D, S = Outcome.DESTINATION, Outcome.SOURCE


@pytest.mark.parametrize(
    ("src", "dst", "postcopy", "outcome", "steps"),
    [
        # A finished migration: the source let go, the destination runs it.
        (ABSENT, DST_RUNNING, False, D, ()),
        # ...but libvirt failed to undefine the source: the leftover definition goes.
        (DEFINED, DST_RUNNING, False, D, (Step.UNDEFINE_SOURCE,)),
        # The destination resumed, the source's confirm step never came: the destination has the newest state.
        (PAUSED, DST_RUNNING, False, D, (Step.DESTROY_SOURCE, Step.UNDEFINE_SOURCE)),
        # A failed migration: the source runs on, the destination has nothing.
        (RUNNING, ABSENT, False, S, ()),
        # ...the source was left paused (a forced completion that failed): resume it.
        (PAUSED, ABSENT, False, S, (Step.RESUME_SOURCE,)),
        # ...the destination's incoming copy is still there, paused: it goes first, then the source resumes.
        (PAUSED, DST_PAUSED, False, S, (Step.DESTROY_DEST, Step.RESUME_SOURCE)),
        (RUNNING, DST_PAUSED, False, S, (Step.DESTROY_DEST,)),
        # ...a definition reached the destination without the VM: it goes.
        (RUNNING, DEFINED, False, S, (Step.UNDEFINE_DEST,)),
        # Running on both before post-copy: the source never stopped, it is authoritative.
        (RUNNING, DST_RUNNING, False, S, (Step.DESTROY_DEST, Step.UNDEFINE_DEST)),
        # Running on both after post-copy started: the destination is.
        (RUNNING, DST_RUNNING, True, D, (Step.DESTROY_SOURCE, Step.UNDEFINE_SOURCE)),
        # Post-copy, both paused: the destination holds the newest state; it is resumed.
        (SRC_POSTCOPY_PAUSED, DST_PAUSED, False, D, (Step.DESTROY_SOURCE, Step.UNDEFINE_SOURCE, Step.DEFINE_DEST,
                                                     Step.RESUME_DEST)),
        # Post-copy and the destination died: the source's memory is stale; boot afresh where the definition is.
        (SRC_POSTCOPY_PAUSED, ABSENT, False, S, (Step.DESTROY_SOURCE, Step.START_SOURCE)),
        # Running nowhere, defined on the source: boot it there.
        (DEFINED, ABSENT, False, S, (Step.START_SOURCE,)),
        # Running nowhere, the definition only on the destination: boot it there.
        (ABSENT, DEFINED, False, D, (Step.START_DEST,)),
        # Gone everywhere: define it again from what was read before, and boot it on the source.
        (ABSENT, ABSENT, False, S, (Step.DEFINE_SOURCE, Step.START_SOURCE)),
        # The source let go and the destination holds it all, paused (never resumed): resume it there.
        (ABSENT, Presence(Location.PAUSED, persistent=True), False, D, (Step.RESUME_DEST,)),
    ],
)  # fmt: skip
def test_decision_table(
    src: Presence, dst: Presence, postcopy: bool, outcome: Outcome, steps: tuple[Step, ...]
) -> None:
    decision = decide(src, dst, postcopy=postcopy)
    assert (decision.outcome, decision.steps) == (outcome, steps), decision.reason
    assert decision.reason


def test_a_running_job_is_waited_for() -> None:
    assert decide(BUSY, ABSENT, postcopy=False).outcome is Outcome.WAIT
    assert decide(RUNNING, Presence(Location.PAUSED, job_active=True), postcopy=False).outcome is Outcome.WAIT
    final = decide(BUSY, ABSENT, postcopy=False, final=True)
    assert final.outcome is Outcome.UNKNOWN and final.steps == ()


def test_an_unreachable_destination_with_the_vm_running_on_the_source_is_decided_at_once() -> None:
    decision = decide(RUNNING, UNKNOWN, postcopy=False)
    assert decision.outcome is Outcome.SOURCE and decision.steps == ()
    assert "discards" in decision.reason


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        (PAUSED, UNKNOWN),  # did the destination resume it? a blind resume could run it twice
        (DEFINED, UNKNOWN),
        (ABSENT, UNKNOWN),
        (UNKNOWN, ABSENT),
        (UNKNOWN, DST_PAUSED),
        (UNKNOWN, UNKNOWN),
    ],
)
def test_an_unreachable_host_is_waited_for_then_nothing_is_done_blind(src: Presence, dst: Presence) -> None:
    assert decide(src, dst, postcopy=False).outcome is Outcome.WAIT
    final = decide(src, dst, postcopy=False, final=True)
    assert final.outcome is Outcome.UNKNOWN and final.steps == ()


def test_a_running_destination_is_kept_when_the_source_never_answers() -> None:
    assert decide(UNKNOWN, DST_RUNNING, postcopy=False).outcome is Outcome.WAIT
    final = decide(UNKNOWN, DST_RUNNING, postcopy=False, final=True)
    assert final.outcome is Outcome.DESTINATION and final.steps == ()


def test_the_hosts_own_word_on_postcopy_counts() -> None:
    # The caller did not switch to post-copy, but the source says it is in post-copy: the destination decides.
    decision = decide(SRC_POSTCOPY_PAUSED, DST_POSTCOPY, postcopy=False)
    assert decision.outcome is Outcome.DESTINATION
    assert decision.steps == (Step.DESTROY_SOURCE, Step.UNDEFINE_SOURCE)


def test_restarts_are_flagged() -> None:
    assert decide(DEFINED, ABSENT, postcopy=False).restarts
    assert not decide(PAUSED, ABSENT, postcopy=False).restarts


def test_every_decision_leaves_exactly_one_host_keeping_the_vm() -> None:
    """Over every combination of placements: a decided outcome never keeps a copy on the other host."""
    placements = [Presence(p, persistent=p is not Location.ABSENT) for p in Location]
    for src in placements:
        for dst in placements:
            for postcopy in (False, True):
                decision = decide(src, dst, postcopy=postcopy, final=True)
                if decision.outcome is Outcome.SOURCE:
                    other, destroy = dst, Step.DESTROY_DEST
                elif decision.outcome is Outcome.DESTINATION:
                    other, destroy = src, Step.DESTROY_SOURCE
                else:
                    assert decision.steps == ()
                    continue
                if other.location in (Location.RUNNING, Location.PAUSED):
                    assert destroy in decision.steps, (src, dst, postcopy, decision)


def test_every_repair_step_has_a_side_and_an_action() -> None:
    from virtkit.ops.migration import settle

    assert set(settle._STEPS) == set(Step)
