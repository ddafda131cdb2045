"""The migration monitor: run the blocking migration call in a worker thread and watch its job from this one.

About every 0.2 s the monitor reads the job on the source, reports it to the ``progress`` callback, raises the
maximum downtime along the ramp, and acts on a cancel request or on the completion timeout. It never decides the
outcome: that is read from the hosts afterwards (:mod:`virtkit.ops.migration.outcome`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Sequence

from virtkit.backends.base.migration import MigrationBackend
from virtkit.errors import VirtkitError
from virtkit.models.migration import JobStats, MigrationProgress, TimeoutAction

__all__ = ["Monitored", "Watch", "run_monitored"]

#: Seconds between two reads of the job.
POLL_INTERVAL = 0.2


@dataclasses.dataclass(frozen=True)
class Watch:
    """What the monitor does besides reporting progress."""

    #: ``(seconds after the start, maximum downtime in ms)`` steps; empty for none (a save, an offline move).
    ramp: Sequence[tuple[float, int]] = ()
    timeout: float | None = None
    on_timeout: TimeoutAction = TimeoutAction.ABORT
    #: Force completion by switching to post-copy (else by pausing the source).
    postcopy: bool = False
    phase: str = "precopy"


@dataclasses.dataclass
class Monitored:
    """How the watched call ended."""

    #: What the call raised, or ``None``.
    error: BaseException | None = None
    #: Why the monitor stopped the job: ``cancelled``, ``timeout``, or the progress callback's failure.
    cause: str | None = None
    #: The progress callback's exception, to chain from.
    callback_error: BaseException | None = None
    postcopy: bool = False
    forced_pause: bool = False
    elapsed: float = 0.0
    last: JobStats | None = None
    notes: list[str] = dataclasses.field(default_factory=list)


def _progress(stats: JobStats, elapsed: float, phase: str, max_downtime: int | None) -> MigrationProgress:
    return MigrationProgress(
        data_total=stats.data_total,
        data_remaining=stats.data_remaining,
        data_processed=stats.data_processed,
        rate=stats.rate,
        dirty_rate=stats.dirty_rate,
        iteration=stats.iteration,
        expected_downtime=stats.downtime,
        elapsed=elapsed,
        phase=phase,
        max_downtime=max_downtime / 1000 if max_downtime is not None else None,
        throttle=stats.throttle,
    )


class _Run:
    """The state of one monitored call (kept off the loop so each decision reads as one small method)."""

    def __init__(
        self,
        backend: MigrationBackend,
        name: str,
        watch: Watch,
        pause_source: Callable[[], None],
        progress: Callable[[MigrationProgress], None] | None,
    ) -> None:
        self.backend = backend
        self.name = name
        self.watch = watch
        self.pause_source = pause_source
        self.progress = progress
        self.result = Monitored()
        self.aborted = False
        self.timed_out = False
        self.step = 0
        self.downtime: int | None = None

    def abort(self, cause: str) -> None:
        if self.aborted:
            return
        if self.result.postcopy:
            self.result.notes.append(f"{cause}: ignored, post-copy had started (the guest runs on the destination)")
            return
        self.aborted = True
        self.result.cause = cause
        try:
            self.backend.abort_job(self.name)
        except VirtkitError as exc:
            self.result.notes.append(f"abort after {cause}: {exc}")

    def ramp(self, elapsed: float) -> None:
        steps = self.watch.ramp
        while self.step < len(steps) and steps[self.step][0] <= elapsed:
            milliseconds = steps[self.step][1]
            self.step += 1
            with contextlib.suppress(VirtkitError):  # the job may have just ended
                self.backend.set_max_downtime(self.name, milliseconds)
                self.downtime = milliseconds

    def on_timeout(self) -> None:
        self.timed_out = True
        if self.watch.on_timeout is TimeoutAction.ABORT:
            self.abort("timeout")
            return
        if self.watch.postcopy:
            try:
                self.backend.start_postcopy(self.name)
                self.result.postcopy = True
                return
            except VirtkitError as exc:
                self.result.notes.append(f"post-copy could not start ({exc}); pausing the source instead")
        try:
            self.pause_source()
            self.result.forced_pause = True
        except VirtkitError as exc:
            self.result.notes.append(f"could not pause the source to force completion: {exc}")

    def report(self, elapsed: float) -> None:
        try:
            stats = self.backend.job(self.name)
        except VirtkitError:
            return  # the host dropped the connection: the call itself will say so
        if stats is None:
            return
        self.result.last = stats
        if self.progress is None:
            return
        phase = "postcopy" if self.result.postcopy else self.watch.phase
        try:
            self.progress(_progress(stats, elapsed, phase, self.downtime))
        except Exception as exc:  # the caller's code: any failure stops the migration, then is re-raised
            self.result.callback_error = exc
            self.abort(f"the progress callback failed: {exc!r}")


def run_monitored(
    call: Callable[[], None],
    *,
    backend: MigrationBackend,
    name: str,
    watch: Watch,
    pause_source: Callable[[], None],
    progress: Callable[[MigrationProgress], None] | None = None,
    cancel: threading.Event | None = None,
    interval: float = POLL_INTERVAL,
) -> Monitored:
    """Run ``call`` in a worker thread and watch the job of VM ``name`` on ``backend`` (the source) until it ends.

    The first ramp step is set before ``call`` starts. An interrupt (Ctrl-C) aborts the job, waits for the call to
    end, and is re-raised.
    """
    run = _Run(backend, name, watch, pause_source, progress)
    run.ramp(0.0)

    def worker() -> None:
        try:
            call()
        except BaseException as exc:  # handed over to the caller, which decides from the hosts' state
            run.result.error = exc

    thread = threading.Thread(target=worker, name=f"virtkit-migrate-{name}", daemon=True)
    start = time.monotonic()
    thread.start()
    try:
        while True:
            thread.join(interval)
            if not thread.is_alive():
                break
            elapsed = time.monotonic() - start
            if cancel is not None and cancel.is_set():
                run.abort("cancelled")
            if watch.timeout is not None and elapsed > watch.timeout and not run.timed_out:
                run.on_timeout()
            run.ramp(elapsed)
            run.report(elapsed)
    except BaseException:
        run.abort("interrupted")
        thread.join()
        raise
    run.result.elapsed = time.monotonic() - start
    return run.result
