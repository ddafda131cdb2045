"""The migration monitor's own decisions, over a scripted job: the downtime ramp, cancel, the completion timeout
and its two actions, and a failing progress callback. (The real job runs in integration/test_migration.py.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from virtkit.backends.base.migration import MigratableDisk, MigrationRequest, SnapshotExport
from virtkit.errors import Conflict, Unsupported
from virtkit.models.migration import JobStats, Location, MigrationProgress, Presence, TimeoutAction
from virtkit.ops.migration.monitor import Monitored, Watch, run_monitored


class ScriptedJob:
    """A migration job that runs until aborted or until ``duration`` passes; records what the monitor asked."""

    def __init__(self, duration: float = 5.0, *, postcopy_works: bool = True) -> None:
        self.duration = duration
        self.postcopy_works = postcopy_works
        self.calls: list[tuple[str, object]] = []
        self.done = threading.Event()

    def run(self) -> None:
        if not self.done.wait(self.duration):
            return
        raise RuntimeError("operation aborted: job canceled by client")

    # -- what the monitor calls ----------------------------------------------------------------------------------

    def job(self, name: str) -> JobStats | None:
        return None if self.done.is_set() else JobStats(data_total=100, data_remaining=50, iteration=1)

    def set_max_downtime(self, name: str, milliseconds: int) -> None:
        self.calls.append(("downtime", milliseconds))

    def set_max_speed(self, name: str, mib_per_second: int) -> None:
        self.calls.append(("speed", mib_per_second))

    def abort_job(self, name: str) -> None:
        self.calls.append(("abort", None))
        self.done.set()

    def start_postcopy(self, name: str) -> None:
        if not self.postcopy_works:
            raise Unsupported("post-copy is not available")
        self.calls.append(("postcopy", None))
        self.done.set()

    # -- the rest of the protocol, unused by the monitor ---------------------------------------------------------

    def presence(self, name: str, uuid: str) -> Presence:
        return Presence(Location.RUNNING)

    def completed_job(self, name: str) -> JobStats | None:
        return None

    def disks(self, name: str) -> Sequence[MigratableDisk]:
        return ()

    def migrate(self, name: str, destination: str, plan: MigrationRequest) -> None:
        self.run()

    def definition(self, name: str) -> str:
        return ""

    def define(self, definition: str) -> None:
        pass

    def export_snapshots(self, name: str) -> SnapshotExport:
        return SnapshotExport((), None)

    def forget_snapshots(self, name: str) -> None:
        pass

    def import_snapshots(self, name: str, snapshots: SnapshotExport) -> None:
        pass


def _watch(
    job: ScriptedJob,
    watch: Watch,
    *,
    cancel: threading.Event | None = None,
    progress: Callable[[MigrationProgress], None] | None = None,
) -> tuple[Monitored, list[str]]:
    paused: list[str] = []

    def pause() -> None:
        paused.append("paused")
        job.done.set()

    result = run_monitored(
        job.run,
        backend=job,
        name="vm1",
        watch=watch,
        pause_source=pause,
        cancel=cancel,
        progress=progress,
        interval=0.02,
    )
    return result, paused


def test_the_ramp_raises_the_downtime_in_order_while_the_job_runs() -> None:
    job = ScriptedJob(duration=0.5)
    result, _ = _watch(job, Watch(ramp=[(0.0, 50), (0.1, 100), (0.2, 150), (60.0, 500)]))
    assert job.calls == [("downtime", 50), ("downtime", 100), ("downtime", 150)]  # the last step never came
    assert result.error is None and result.cause is None


def test_the_first_step_is_set_before_the_job_starts() -> None:
    job = ScriptedJob(duration=0.0)
    _watch(job, Watch(ramp=[(0.0, 30)]))
    assert job.calls == [("downtime", 30)]


def test_cancel_aborts_the_job_once() -> None:
    job = ScriptedJob()
    cancel = threading.Event()
    threading.Timer(0.1, cancel.set).start()
    started = time.monotonic()
    result, _ = _watch(job, Watch(), cancel=cancel)
    assert time.monotonic() - started < 2
    assert job.calls == [("abort", None)]
    assert result.cause == "cancelled"
    assert isinstance(result.error, RuntimeError)


def test_timeout_with_abort() -> None:
    job = ScriptedJob()
    result, paused = _watch(job, Watch(timeout=0.1, on_timeout=TimeoutAction.ABORT))
    assert job.calls == [("abort", None)] and not paused
    assert result.cause == "timeout"


def test_timeout_forcing_completion_by_postcopy() -> None:
    job = ScriptedJob()
    result, paused = _watch(job, Watch(timeout=0.1, on_timeout=TimeoutAction.FORCE, postcopy=True))
    assert job.calls == [("postcopy", None)] and not paused
    assert result.postcopy and result.cause is None


def test_timeout_forcing_completion_by_pausing_the_source() -> None:
    job = ScriptedJob()
    result, paused = _watch(job, Watch(timeout=0.1, on_timeout=TimeoutAction.FORCE))
    assert paused == ["paused"] and job.calls == []
    assert result.forced_pause


def test_postcopy_that_cannot_start_falls_back_to_a_pause() -> None:
    job = ScriptedJob(postcopy_works=False)
    result, paused = _watch(job, Watch(timeout=0.1, on_timeout=TimeoutAction.FORCE, postcopy=True))
    assert paused == ["paused"]
    assert any("post-copy could not start" in n for n in result.notes)


def test_a_cancel_after_postcopy_started_is_ignored() -> None:
    job = ScriptedJob()
    job.start_postcopy = lambda name: job.calls.append(("postcopy", None))  # type: ignore[method-assign]
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    threading.Timer(0.5, job.done.set).start()
    result, _ = _watch(job, Watch(timeout=0.05, on_timeout=TimeoutAction.FORCE, postcopy=True), cancel=cancel)
    assert ("abort", None) not in job.calls
    assert any("post-copy had started" in n for n in result.notes)


def test_progress_reaches_the_callback_and_its_failure_aborts() -> None:
    job = ScriptedJob()
    seen: list[MigrationProgress] = []

    def progress(p: MigrationProgress) -> None:
        seen.append(p)
        if len(seen) == 3:
            raise ValueError("the caller's bug")

    result, _ = _watch(job, Watch(ramp=[(0.0, 50)]), progress=progress)
    assert len(seen) == 3
    assert seen[0].data_total == 100 and seen[0].fraction == 0.5 and seen[0].max_downtime == 0.05
    assert seen[0].elapsed < seen[2].elapsed
    assert ("abort", None) in job.calls
    assert isinstance(result.callback_error, ValueError)
    assert "progress callback failed" in (result.cause or "")


class NotReadyAtFirst(ScriptedJob):
    """A job that refuses the switch to post-copy until it has been asked ``refusals`` times."""

    def __init__(self, refusals: int) -> None:
        super().__init__()
        self.refusals = refusals
        self.asked = 0

    def start_postcopy(self, name: str) -> None:
        self.asked += 1
        if self.asked <= self.refusals:
            raise Conflict("post-copy can only be started while outgoing migration is in progress")
        super().start_postcopy(name)


def test_a_migration_started_in_postcopy_switches_as_soon_as_the_hypervisor_lets_it() -> None:
    job = NotReadyAtFirst(refusals=3)
    seen: list[MigrationProgress] = []
    result, paused = _watch(job, Watch(start="postcopy", postcopy=True), progress=seen.append)
    assert job.asked == 4 and job.calls == [("postcopy", None)] and not paused
    assert result.postcopy and result.notes == []
    assert [(e.action, e.cause) for e in result.escalated] == [("postcopy", "strategy")]
    assert all(p.phase == "postcopy" for p in seen)  # nothing reported as pre-copy while racing for the switch


def test_a_stopped_migration_pauses_the_guest_at_once() -> None:
    job = ScriptedJob()
    result, paused = _watch(job, Watch(start="stopped"))
    assert paused == ["paused"] and result.forced_pause
    assert [(e.action, e.cause) for e in result.escalated] == [("pause", "strategy")]


class Stalling(ScriptedJob):
    """A job whose every read is a new pass that leaves as much to send as the last, at the throttle's ceiling."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def job(self, name: str) -> JobStats | None:
        if self.done.is_set():
            return None
        self.reads += 1
        return JobStats(data_total=100, data_remaining=50, iteration=self.reads, throttle=99)


def test_stalled_passes_escalate_to_postcopy_through_the_monitor() -> None:
    job = Stalling()
    watch = Watch(ramp=[(0.0, 50)], downtime_max=100, stall_passes=1, on_timeout=TimeoutAction.FORCE, postcopy=True)
    result, paused = _watch(job, watch)
    assert job.calls == [("downtime", 50), ("downtime", 100), ("postcopy", None)] and not paused
    assert [(e.action, e.cause, e.value) for e in result.escalated] == [
        ("downtime", "stalled", 100),
        ("postcopy", "stalled", None),
    ]
    assert result.max_downtime == 100 and result.max_throttle == 99


class GoesQuiet(ScriptedJob):
    """A job that reports figures for a while, then none while it completes (the switch-over)."""

    def __init__(self) -> None:
        super().__init__(duration=0.6)
        self.started = time.monotonic()

    def job(self, name: str) -> JobStats | None:
        if time.monotonic() - self.started > 0.2:
            return None
        return super().job(name)


def test_progress_goes_on_while_the_job_completes() -> None:
    job = GoesQuiet()
    seen: list[MigrationProgress] = []
    _watch(job, Watch(), progress=seen.append)
    phases = [p.phase for p in seen]
    assert phases[0] == "precopy" and phases[-1] == "completing"
    assert phases.index("completing") > 0 and set(phases) == {"precopy", "completing"}
    assert seen[-1].elapsed > 0.4  # the callbacks did not stop with the figures


class DisksFirst(NotReadyAtFirst):
    """A storage copy: nothing flows for a few reads, then the disks, and only later may it switch."""

    def __init__(self) -> None:
        super().__init__(refusals=10)
        self.reads = 0

    def job(self, name: str) -> JobStats | None:
        self.reads += 1
        return JobStats(data_total=100, data_processed=0 if self.reads < 4 else 10, iteration=1)


def test_memory_is_held_back_once_the_disk_copy_flows_and_until_the_switch() -> None:
    job = DisksFirst()
    result, _ = _watch(job, Watch(start="postcopy", postcopy=True, hold_speed=1))
    assert job.calls == [("speed", 1), ("postcopy", None)]  # once, after data flowed, before the switch
    assert job.reads >= 4 and result.postcopy


def test_nothing_escalates_after_the_switch_to_post_copy() -> None:
    job = ScriptedJob(duration=0.6)
    job.start_postcopy = lambda name: job.calls.append(("postcopy", None))  # type: ignore[method-assign]
    result, _ = _watch(job, Watch(ramp=[(0.0, 50), (0.2, 100), (0.4, 150)], start="postcopy", postcopy=True))
    assert job.calls == [("downtime", 50), ("postcopy", None)]  # the later ramp steps were not sent
    assert [e.action for e in result.escalated] == ["postcopy"]
