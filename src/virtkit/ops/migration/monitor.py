"""The migration monitor: run the blocking migration call in a worker thread and watch its job from this one.

About every 0.2 s the monitor reads the job on the source, reports it to the ``progress`` callback, carries out
what the escalation decides (:mod:`virtkit.ops.migration.escalation`: raise the maximum downtime, or end the
migration by post-copy, a pause or an abort), and acts on a cancel request. A migration started in post-copy is
switched over as soon as the hypervisor lets it; one started stopped has its guest paused at once. The monitor never
decides the outcome: that is read from the hosts afterwards (:mod:`virtkit.ops.migration.outcome`).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence

from virtkit.backends.base.migration import MigrationBackend
from virtkit.errors import VirtkitError
from virtkit.models.migration import Escalated, JobStats, MigrationProgress, TimeoutAction
from virtkit.ops.migration.escalation import Action, Escalation

__all__ = ["Monitored", "Watch", "run_monitored"]

#: Seconds between two reads of the job.
POLL_INTERVAL = 0.2
#: Seconds between two attempts to switch a migration started in post-copy, while the hypervisor is not ready.
SWITCH_INTERVAL = 0.02
#: How long a migration started in post-copy may refuse the switch before the monitor gives up on it (it then
#: escalates like any other), in seconds.
SWITCH_TIMEOUT = 30.0


@dataclasses.dataclass(frozen=True)
class Watch:
    """What the monitor does besides reporting progress."""

    #: ``(seconds after the start, maximum downtime in ms)`` steps; empty for none (a save, an offline move).
    ramp: Sequence[tuple[float, int]] = ()
    timeout: float | None = None
    on_timeout: TimeoutAction = TimeoutAction.ABORT
    #: Post-copy is allowed: the last resort and ``start="postcopy"`` switch to it (else the source is paused).
    postcopy: bool = False
    #: The ceiling for doubling the downtime when passes stall; ``None`` for the ramp's last step.
    downtime_max: int | None = None
    stall_passes: int = 2
    auto_converge: bool = True
    #: ``precopy``, ``postcopy`` (switch as soon as possible) or ``stopped`` (pause the guest at once).
    start: str = "precopy"
    #: Cap the memory transfer at this many MiB/s at the first poll (a migration that starts in post-copy after a
    #: disk copy: the disks go at full speed, memory is held back until the switch).
    hold_speed: int | None = None
    phase: str = "precopy"


@dataclasses.dataclass
class Monitored:
    """How the watched call ended."""

    #: What the call raised, or ``None``.
    error: BaseException | None = None
    #: Why the monitor stopped the job: ``cancelled``, ``timeout``, ``stalled``, or the progress callback's failure.
    cause: str | None = None
    #: The progress callback's exception, to chain from.
    callback_error: BaseException | None = None
    postcopy: bool = False
    forced_pause: bool = False
    elapsed: float = 0.0
    last: JobStats | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    #: What the escalation did, in order.
    escalated: list[Escalated] = dataclasses.field(default_factory=list)
    #: The highest maximum downtime set, in ms, and the highest throttle the job reported, in percent.
    max_downtime: int | None = None
    max_throttle: int | None = None


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
        ceiling = watch.downtime_max
        if ceiling is None:
            ceiling = watch.ramp[-1][1] if watch.ramp else 0
        self.escalation = Escalation(
            watch.ramp,
            downtime_max=ceiling,
            stall_passes=watch.stall_passes,
            timeout=watch.timeout,
            auto_converge=watch.auto_converge,
            force=watch.on_timeout is TimeoutAction.FORCE,
        )
        self.switch_pending = watch.start == "postcopy"
        self.pause_pending = watch.start == "stopped"
        self.hold_pending = watch.hold_speed is not None

    def note(self, elapsed: float, action: str, cause: str, value: int | None = None) -> None:
        self.result.escalated.append(Escalated(round(elapsed, 3), action, cause, value))

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

    def set_downtime(self, milliseconds: int) -> bool:
        try:
            self.backend.set_max_downtime(self.name, milliseconds)
        except VirtkitError:
            return False  # the job may have just ended
        self.result.max_downtime = max(self.result.max_downtime or 0, milliseconds)
        return True

    def act(self, elapsed: float, actions: list[Action]) -> None:
        for action in actions:
            if action.kind == "downtime" and action.value is not None:
                if self.set_downtime(action.value) and elapsed > 0:
                    self.note(elapsed, "downtime", action.cause, action.value)
            elif action.kind == "end":
                self.end(elapsed, action.cause)

    def end(self, elapsed: float, cause: str) -> None:
        """The last resort: abort, or complete by post-copy or by pausing the guest."""
        if self.result.postcopy or self.result.forced_pause:
            return
        if self.watch.on_timeout is TimeoutAction.ABORT:
            self.note(elapsed, "abort", cause)
            self.abort(cause)
            return
        if self.watch.postcopy and self.switch(elapsed, cause):
            return
        self.pause(elapsed, cause)

    def switch(self, elapsed: float, cause: str, *, quiet: bool = False) -> bool:
        try:
            self.backend.start_postcopy(self.name)
        except VirtkitError as exc:
            if not quiet:
                self.result.notes.append(f"post-copy could not start ({exc}); pausing the source instead")
            return False
        self.result.postcopy = True
        self.switch_pending = False
        self.note(elapsed, "postcopy", cause)
        return True

    def pause(self, elapsed: float, cause: str) -> None:
        self.pause_pending = False
        try:
            self.pause_source()
        except VirtkitError as exc:
            self.result.notes.append(f"could not pause the source to force completion: {exc}")
            return
        self.result.forced_pause = True
        self.note(elapsed, "pause", cause)

    def start(self, elapsed: float) -> None:
        """A migration started in post-copy or stopped: switch or pause as soon as the hypervisor lets it."""
        if self.pause_pending:
            self.pause(elapsed, "strategy")
        if self.hold_pending and self.watch.hold_speed is not None:
            self.hold(self.watch.hold_speed)
        if not self.switch_pending:
            return
        if self.switch(elapsed, "strategy", quiet=True):
            return
        if elapsed > SWITCH_TIMEOUT:
            self.switch_pending = False
            self.result.notes.append(
                f"post-copy could not start within {SWITCH_TIMEOUT:.0f} s; the migration escalates as pre-copy"
            )

    def hold(self, mib_per_second: int) -> None:
        """Cap memory once data flows: the disk copies, which come first, have taken their cap at their start."""
        try:
            stats = self.backend.job(self.name)
            if stats is not None and (stats.data_processed or 0) > 0:
                self.backend.set_max_speed(self.name, mib_per_second)
                self.hold_pending = False
        except VirtkitError:
            pass  # the job has not started yet, or just ended: the next poll tries again

    def phase(self) -> str:
        if self.result.postcopy:
            return "postcopy"
        if self.result.forced_pause:
            return "stopped"
        return self.watch.phase

    def report(self, elapsed: float) -> JobStats | None:
        try:
            stats = self.backend.job(self.name)
        except VirtkitError:
            stats = None  # the host dropped the connection: the call itself will say so
        phase = self.phase()
        if stats is None:
            if self.result.last is None:
                return None
            stats, phase = self.result.last, "completing"  # the switch-over: the job reports no figures now
        else:
            self.result.last = stats
            if stats.throttle is not None:
                self.result.max_throttle = max(self.result.max_throttle or 0, stats.throttle)
        if self.progress is not None:
            try:
                self.progress(_progress(stats, elapsed, phase, self.escalation.downtime))
            except Exception as exc:  # the caller's code: any failure stops the migration, then is re-raised
                self.result.callback_error = exc
                self.abort(f"the progress callback failed: {exc!r}")
        return stats if phase != "completing" else None


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
    run.act(0.0, run.escalation.step(0.0, None))

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
            thread.join(SWITCH_INTERVAL if run.switch_pending else interval)
            if not thread.is_alive():
                break
            elapsed = time.monotonic() - start
            if cancel is not None and cancel.is_set():
                run.abort("cancelled")
            run.start(elapsed)
            if run.switch_pending:
                continue  # no reports while racing for the switch: the first pass must not get under way
            stats = run.report(elapsed)
            if not (run.aborted or run.result.postcopy or run.result.forced_pause):  # nothing left to escalate
                run.act(elapsed, run.escalation.step(elapsed, stats))
    except BaseException:
        run.abort("interrupted")
        thread.join()
        raise
    run.result.elapsed = time.monotonic() - start
    return run.result
