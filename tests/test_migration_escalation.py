"""The escalation of a live migration, as a pure policy over scripted job figures: the ramp, doubling the downtime
when passes stall, and the last resort at the deadline or when nothing is left to raise."""

from __future__ import annotations

from virtkit.models.migration import JobStats
from virtkit.ops.migration.escalation import Action, Escalation

RAMP = ((0.0, 50), (10.0, 100), (20.0, 150))


def _pass(iteration: int, remaining: int, throttle: int | None = None) -> JobStats:
    return JobStats(data_total=1000, data_remaining=remaining, iteration=iteration, throttle=throttle)


def test_the_ramp_raises_the_downtime_on_time_and_only_once_per_step() -> None:
    esc = Escalation(RAMP, downtime_max=150)
    assert esc.step(0.0, None) == [Action("downtime", "ramp", 50)]
    assert esc.step(5.0, None) == []
    assert esc.step(25.0, None) == [Action("downtime", "ramp", 100), Action("downtime", "ramp", 150)]
    assert esc.step(30.0, None) == []


def test_passes_that_shrink_what_is_left_are_progress() -> None:
    esc = Escalation(RAMP[:1], downtime_max=400, stall_passes=2)
    esc.step(0.0, None)
    actions = [esc.step(1.0 + i, _pass(i + 1, 1000 - 100 * i)) for i in range(6)]
    assert actions == [[]] * 6
    assert esc.downtime == 50


def test_stalled_passes_double_the_downtime_up_to_the_ceiling() -> None:
    esc = Escalation(RAMP[:1], downtime_max=300, stall_passes=2)
    esc.step(0.0, None)
    seen: list[Action] = []
    for i in range(1, 12):
        seen += esc.step(float(i), _pass(i, 500))
    assert [a.value for a in seen if a.kind == "downtime"] == [100, 200, 300]
    assert {a.cause for a in seen} == {"stalled"}
    assert not esc.ended  # the throttle has not reached its ceiling yet: auto-converge still works on it


def test_repeated_reads_of_the_same_pass_count_once() -> None:
    esc = Escalation(RAMP[:1], downtime_max=300, stall_passes=2)
    esc.step(0.0, None)
    for t in range(20):
        assert esc.step(1.0 + t / 10, _pass(2, 500)) == []


def test_stuck_at_the_ceiling_with_the_throttle_at_99_percent_forces_the_end() -> None:
    esc = Escalation(RAMP[:1], downtime_max=100, stall_passes=1)
    esc.step(0.0, None)
    actions: list[Action] = []
    for i in range(1, 6):
        actions += esc.step(float(i), _pass(i, 500, throttle=99))
    assert Action("downtime", "stalled", 100) in actions
    assert actions[-1] == Action("end", "stalled")
    assert esc.ended and esc.step(10.0, _pass(9, 500, throttle=99)) == []


def test_without_auto_converge_the_throttle_is_not_waited_for() -> None:
    esc = Escalation(RAMP[:1], downtime_max=50, stall_passes=1, auto_converge=False)
    esc.step(0.0, None)
    actions = [a for i in range(1, 4) for a in esc.step(float(i), _pass(i, 500))]
    assert actions == [Action("end", "stalled")]


def test_a_stall_never_aborts_only_the_timeout_does() -> None:
    esc = Escalation(RAMP[:1], downtime_max=50, stall_passes=1, timeout=60.0, force=False)
    esc.step(0.0, None)
    assert [a for i in range(1, 30) for a in esc.step(float(i), _pass(i, 500, throttle=99))] == []
    assert esc.step(61.0, _pass(31, 500, throttle=99)) == [Action("end", "timeout")]


def test_the_timeout_ends_it_even_while_it_progresses() -> None:
    esc = Escalation(RAMP, downtime_max=150, timeout=15.0)
    esc.step(0.0, None)
    assert esc.step(16.0, _pass(3, 10)) == [Action("downtime", "ramp", 100), Action("end", "timeout")]


def test_a_pass_whose_rest_fits_in_the_allowance_is_not_a_stall() -> None:
    # Nearly nothing left (an idle guest's last pages): not shrinking by 5 % means nothing when it fits.
    esc = Escalation(RAMP[:1], downtime_max=400, stall_passes=1)
    esc.step(0.0, None)
    fits = [JobStats(data_total=1000, data_remaining=8, iteration=i, downtime=0.02) for i in range(1, 6)]
    assert [a for i, s in enumerate(fits) for a in esc.step(1.0 + i, s)] == []
    too_big = JobStats(data_total=1000, data_remaining=8, iteration=6, downtime=0.2)
    assert esc.step(7.0, too_big) == [Action("downtime", "stalled", 100)]
