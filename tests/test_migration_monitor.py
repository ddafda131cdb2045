"""The migration monitor's own decisions, over a scripted job: the downtime ramp, cancel, the completion timeout
and its two actions, and a failing progress callback. (The real job runs in integration/test_migration.py.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from virtkit.backends.base.migration import MigratableDisk, MigrationRequest, SnapshotExport
from virtkit.errors import Unsupported
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
