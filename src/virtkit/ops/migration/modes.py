"""The moves themselves, one function per mode, each ending with the VM on exactly one host.

``run_live`` (live and live-storage) hands the move to libvirt under the monitor and reads the outcome from both
hosts; ``run_quick`` saves the VM to shared storage and restores it on the destination; ``run_offline`` moves a
stopped VM's definition, after copying its disks when asked. Each returns :class:`Done` or raises
:class:`~virtkit.errors.MigrationFailed` with the VM back where it was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path

from virtkit import images
from virtkit.backends.base import MigrationRequest
from virtkit.errors import HostUnavailable, MigrationFailed, NotFound, VirtkitError
from virtkit.models.migration import (
    Escalated,
    Location,
    MigrationProgress,
    MigrationStrategy,
    MigrationTuning,
    completion_timeout,
    downtime_schedule,
)
from virtkit.models.state import VMState
from virtkit.ops.migration.monitor import Monitored, Watch, run_monitored
from virtkit.ops.migration.outcome import Outcome
from virtkit.ops.migration.plan import Context, MovePlan, preflight
from virtkit.ops.migration.settle import Settled, Side, settle
from virtkit.storage import StorageRoots

__all__ = ["Context", "Done", "MovePlan", "preflight", "run_live", "run_offline", "run_quick"]


@dataclasses.dataclass(frozen=True)
class Done:
    """The figures of a finished move."""

    downtime: float | None = None
    data_moved: int | None = None
    iterations: int | None = None
    postcopy: bool = False
    notes: tuple[str, ...] = ()
    escalated: tuple[Escalated, ...] = ()
    max_downtime: float | None = None
    max_throttle: int | None = None
    strategy: MigrationStrategy | None = None


def _sides(ctx: Context) -> tuple[Side, Side]:
    return Side(ctx.src, ctx.srcm), Side(ctx.dst, ctx.dstm)


def _pause_source(ctx: Context) -> None:
    dom = ctx.src.lookup(ctx.name)
    if dom is None:
        raise NotFound(f"{ctx.name} is gone from {ctx.src.uri}")
    dom.pause()


def _remove(paths: list[Path] | tuple[Path, ...], ctx: Context, notes: list[str]) -> None:
    """Remove copies made on the destination; one a running VM uses there (the move succeeded) is refused."""
    for path in paths:
        try:
            images.remove(path, roots=ctx.dst_storage.roots)
        except VirtkitError as exc:
            notes.append(f"could not remove {path}: {exc}")


def _redefine_snapshots(ctx: Context, plan: MovePlan, notes: list[str], *, on_source: bool) -> None:
    """Define the snapshot metadata (dropped on the source to migrate) on the destination after the VM arrived
    there, or back on the source after a failed move; a failure becomes a note."""
    if not plan.snapshots:
        return
    host, side = (ctx.src, ctx.srcm) if on_source else (ctx.dst, ctx.dstm)
    try:
        side.import_snapshots(ctx.name, plan.snapshots)
    except VirtkitError as exc:
        notes.append(f"snapshot metadata could not be redefined on {host.uri}: {exc}")


def _failure(ctx: Context, cause: str, error: BaseException | None, settled: Settled | None) -> MigrationFailed:
    where: str | None = None
    if settled is not None and settled.confirmed:
        where = ctx.src.uri if settled.decision.outcome is Outcome.SOURCE else ctx.dst.uri
    message = f"{ctx.mode.value} migration of {ctx.name} from {ctx.src.uri} to {ctx.dst.uri} failed: {cause}"
    if error is not None:
        message += f" ({error})"
    if settled is not None and (settled.decision.steps or where is None):
        done = ", ".join(step.value for step in settled.decision.steps) or "nothing done"
        message += f"; {settled.decision.reason} ({done})"
    if settled is not None and settled.problems:
        message += "; " + "; ".join(settled.problems)
    message += f"; it runs on {where}" if where else "; where it runs could not be confirmed: check both hosts"
    restarted = settled is not None and settled.decision.restarts
    return MigrationFailed(message, cause=cause, host=where, restarted=restarted)


def _cause(mon: Monitored, settled: Settled) -> str:
    """Why the VM did not move, in a few words: the monitor's own reason, else what the hosts show."""
    if mon.cause is not None:
        return mon.cause
    if settled.destination.location is Location.UNKNOWN:
        return "the destination stopped answering"
    if settled.source.location is Location.UNKNOWN:
        return "the source stopped answering"
    if isinstance(mon.error, HostUnavailable):
        return "the connection to the source dropped"
    if mon.error is not None:
        return "the migration failed"
    return "the VM did not arrive on the destination"


# -- live and live with storage ----------------------------------------------------------------------------------


def run_live(ctx: Context, plan: MovePlan) -> Done:
    """Move a running VM with libvirt's live migration, watched by the monitor; see the package docs."""
    created: list[Path] = []
    notes = list(plan.notes)
    try:
        for copy in plan.copies:
            ctx.dst_storage.create_like(copy.dest, copy.image.virtual_size, copy.image.format)
            created.append(copy.dest)
    except VirtkitError as exc:
        _remove(created, ctx, notes)
        raise MigrationFailed(
            f"cannot prepare the disks of {ctx.name} on {ctx.dst.uri}: {exc}; it runs on {ctx.src.uri}",
            cause="destination storage",
            host=ctx.src.uri,
        ) from exc
    if plan.snapshots:
        ctx.srcm.forget_snapshots(ctx.name)
    try:
        return _live_move(ctx, plan, created, notes)
    except BaseException:
        # An interrupt (the monitor aborted the job) or a failure: whatever is left of the source's side goes back.
        # Harmless when the VM did move: the source has no domain to redefine snapshots on, and images in use
        # by the destination's VM are refused removal.
        _redefine_snapshots(ctx, plan, notes, on_source=True)
        _remove(created, ctx, notes)
        raise


def choose_strategy(tuning: MigrationTuning, *, sound: bool) -> tuple[MigrationStrategy, str | None]:
    """The strategy a live migration runs with, and a note when ``auto`` chose other than pre-copy.

    :param sound: the source's hypervisor tracks this guest's dirty memory soundly (a pre-copy is safe).
    """
    if tuning.strategy is not MigrationStrategy.AUTO:
        return tuning.strategy, None
    if sound:
        return MigrationStrategy.PRECOPY, None
    why = "the source's QEMU cannot track a TCG guest's dirty memory soundly before version 9.0"
    if tuning.postcopy_usable:
        return MigrationStrategy.POSTCOPY, f"{why}: moved in post-copy from the start"
    return MigrationStrategy.STOPPED, f"{why} and post-copy is not allowed: the guest was paused for the copy"


def _request(ctx: Context, plan: MovePlan, strategy: MigrationStrategy) -> MigrationRequest:
    tuning = ctx.tuning
    bandwidth = tuning.bandwidth
    if strategy is MigrationStrategy.POSTCOPY and not plan.copies:
        # Almost nothing moves before the switch, which the monitor makes as soon as the hypervisor lets it; the
        # caller's cap (or none) applies from then on. With disks to copy, the cap would hold them back too: the
        # monitor holds back memory alone (Watch.hold_speed).
        bandwidth = 1
    return MigrationRequest(
        live=True,
        unsafe=plan.unsafe,
        bandwidth=bandwidth,
        bandwidth_postcopy=tuning.bandwidth,
        auto_converge=tuning.auto_converge and strategy is MigrationStrategy.PRECOPY,
        throttle=(tuning.throttle_initial, tuning.throttle_increment),
        postcopy=tuning.postcopy_usable,
        xbzrle_cache=tuning.cache_size(plan.before.memory) if tuning.uses_xbzrle else None,
        connections=tuning.connections,
        copy_disks=tuple(c.disk.target for c in plan.copies),
        disk_paths={c.disk.target: c.dest for c in plan.copies if c.dest != c.disk.path},
    )


def _watch(ctx: Context, plan: MovePlan, strategy: MigrationStrategy) -> Watch:
    tuning = ctx.tuning
    return Watch(
        ramp=downtime_schedule(plan.data, tuning),
        timeout=completion_timeout(plan.data, tuning),
        on_timeout=tuning.on_timeout,
        postcopy=tuning.postcopy_usable,
        downtime_max=tuning.downtime_max,
        stall_passes=tuning.stall_passes,
        auto_converge=tuning.auto_converge,
        start=strategy.value if strategy is not MigrationStrategy.AUTO else "precopy",
        hold_speed=1 if strategy is MigrationStrategy.POSTCOPY and plan.copies else None,
    )


def _live_move(ctx: Context, plan: MovePlan, created: list[Path], notes: list[str]) -> Done:
    tuning = ctx.tuning
    sound = True
    if tuning.strategy is MigrationStrategy.AUTO:
        sound = ctx.srcm.memory_tracking_sound(plan.before.accel)
    strategy, why = choose_strategy(tuning, sound=sound)
    if why is not None:
        notes.append(why)
    if tuning.postcopy and not tuning.postcopy_usable:
        notes.append(f"post-copy is not possible over {tuning.connections} parallel connections")
    move = _request(ctx, plan, strategy)
    mon = run_monitored(
        lambda: ctx.srcm.migrate(ctx.name, ctx.dst.uri, move),
        backend=ctx.srcm,
        name=ctx.name,
        watch=_watch(ctx, plan, strategy),
        pause_source=lambda: _pause_source(ctx),
        progress=ctx.progress,
        cancel=ctx.cancel,
    )
    notes += mon.notes
    if mon.postcopy or mon.error is not None:
        notes += recover_postcopy(ctx, move)
    src, dst = _sides(ctx)
    settled = settle(src, dst, ctx.name, ctx.uuid, definition=plan.definition, postcopy=mon.postcopy)
    if settled.decision.outcome is Outcome.DESTINATION and settled.confirmed and not settled.decision.restarts:
        if mon.error is not None:
            notes.append(f"libvirt reported an error, but the VM runs on the destination: {mon.error}")
        _redefine_snapshots(ctx, plan, notes, on_source=False)
        notes += [f"the source image {c.disk.path} was left in place" for c in plan.copies]
        # The destination keeps a pre-copy's figures; a post-copy's are only in the source's job-completed event.
        stats = ctx.dstm.completed_job(ctx.name) or ctx.srcm.completed_job(ctx.name)
        total = stats.data_processed if stats else mon.last.data_total if mon.last else None
        _report(ctx, "done", mon.elapsed, notes, total=total)
        return Done(
            # In post-copy: the pause of the switch (pages fetched on demand afterwards slow the guest, not stop it).
            downtime=stats.downtime if stats else None,
            data_moved=stats.data_processed if stats else None,
            iterations=stats.iteration if stats else None,
            postcopy=mon.postcopy,
            notes=tuple(notes),
            escalated=tuple(mon.escalated),
            max_downtime=mon.max_downtime / 1000 if mon.max_downtime is not None else None,
            max_throttle=mon.max_throttle,
            strategy=strategy,
        )
    error = _failure(ctx, _cause(mon, settled), mon.error, settled)
    raise error from mon.callback_error or mon.error


#: How long a post-copy that broke off is retried, and how often, in seconds.
RESUME_TIMEOUT, RESUME_INTERVAL = 120.0, 2.0


def recover_postcopy(ctx: Context, move: MigrationRequest, *, timeout: float = RESUME_TIMEOUT) -> list[str]:
    """Resume a post-copy that broke off (the connection between the hosts dropped): the guest waits, paused, on
    the destination for the pages still on the source. Retried until the hosts reach each other again or
    ``timeout`` passes; the notes say what happened. Nothing to do when no side reports a failed post-copy."""
    notes: list[str] = []
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        try:
            here = ctx.srcm.presence(ctx.name, ctx.uuid)
            there = ctx.dstm.presence(ctx.name, ctx.uuid)
        except VirtkitError as exc:
            notes.append(f"could not read whether the post-copy broke off: {exc}")
            return notes
        if not (here.postcopy_failed or there.postcopy_failed):
            if attempt:
                notes.append(f"the post-copy that broke off was resumed (attempt {attempt})")
            return notes
        if time.monotonic() >= deadline:
            notes.append(f"the post-copy that broke off could not be resumed in {timeout:.0f} s ({attempt} attempts)")
            return notes
        attempt += 1
        try:
            ctx.srcm.resume_postcopy(ctx.name, ctx.dst.uri, move)
        except VirtkitError as exc:
            notes.append(f"resuming the post-copy, attempt {attempt}: {exc}")
            time.sleep(RESUME_INTERVAL)


# -- quick: save, restore ----------------------------------------------------------------------------------------


def _report(
    ctx: Context, phase: str, elapsed: float, notes: list[str] | None = None, *, total: int | None = None
) -> None:
    """Report a phase with no figures of its own; ``done`` says everything is sent. With ``notes``, a failing
    callback becomes a note (the move has happened and must not be reported as failed)."""
    if ctx.progress is None:
        return
    progress = MigrationProgress(total, 0 if phase == "done" else None, total, None, None, None, None, elapsed, phase)
    if notes is None:
        ctx.progress(progress)
        return
    try:
        ctx.progress(progress)
    except Exception as exc:  # the caller's code, after the VM moved
        notes.append(f"the progress callback failed after the move: {exc!r}")


def _back_on_source(ctx: Context, plan: MovePlan, error: BaseException | None, cause: str) -> MigrationFailed:
    """After a failed save or restore: the VM runs on the source again (from the save file if it was written)."""
    assert plan.save_path is not None
    with contextlib.suppress(VirtkitError):
        here = ctx.srcm.presence(ctx.name, ctx.uuid)
        if here.location is Location.DEFINED and ctx.src_storage.exists("shared_storage[0]", plan.save_path):
            ctx.src.restore(plan.save_path)
    src, dst = _sides(ctx)
    settled = settle(src, dst, ctx.name, ctx.uuid, definition=plan.definition, postcopy=False, allow_restart=False)
    ctx.src_storage.discard([plan.save_path])
    return _failure(ctx, cause, error, settled)


def run_quick(ctx: Context, plan: MovePlan) -> Done:
    """Save the VM to the shared directory, define and restore it on the destination, undefine it on the source."""
    path = plan.save_path
    assert path is not None
    # A stale file of an earlier, interrupted attempt: the VM runs, so it is outdated.
    ctx.src_storage.remove("shared_storage[0]", path)
    dom = ctx.src.lookup(ctx.name)
    if dom is None:
        raise NotFound(f"{ctx.name} is gone from {ctx.src.uri}")
    save = dom.save
    started = time.monotonic()
    mon = run_monitored(
        lambda: save(path),
        backend=ctx.srcm,
        name=ctx.name,
        watch=Watch(phase="saving"),
        pause_source=lambda: None,
        progress=ctx.progress,
        cancel=ctx.cancel,
    )
    if mon.error is not None or mon.cause is not None:
        failure = _back_on_source(ctx, plan, mon.error, mon.cause or "saving on the source failed")
        raise failure from mon.callback_error or mon.error
    size = ctx.src_storage.roots.lookup("shared_storage[0]", path).size or None
    _report(ctx, "restoring", time.monotonic() - started)
    try:
        ctx.dstm.define(plan.definition)
        ctx.dst.restore(path)
    except VirtkitError as exc:
        with contextlib.suppress(VirtkitError):
            there = ctx.dst.lookup(ctx.name)
            if there is not None:
                if there.info().state in (VMState.RUNNING, VMState.PAUSED, VMState.MIGRATING):
                    there.destroy()
                there.undefine()
        raise _back_on_source(ctx, plan, exc, "restoring on the destination failed") from exc
    downtime = time.monotonic() - started
    notes = list(plan.notes)
    _redefine_snapshots(ctx, plan, notes, on_source=False)
    try:
        dom = ctx.src.lookup(ctx.name)
        if dom is not None:
            dom.undefine()
    except VirtkitError as exc:
        notes.append(f"the definition on {ctx.src.uri} could not be removed: {exc}")
    ctx.src_storage.discard([path], notes)
    return Done(downtime=downtime, data_moved=size, notes=tuple(notes))


# -- offline -----------------------------------------------------------------------------------------------------


def run_offline(ctx: Context, plan: MovePlan) -> Done:
    """Copy the disks when asked, then move the stopped VM's definition with libvirt's offline migration."""
    notes = list(plan.notes)
    copied: list[Path] = []
    total = sum(c.image.actual_size for c in plan.copies) or None
    done_bytes = 0
    started = time.monotonic()
    try:
        for copy in plan.copies:

            def step(percent: float, base: int = done_bytes, size: int = copy.image.actual_size) -> None:
                if ctx.progress is not None:
                    moved = base + int(size * percent / 100)
                    remaining = total - moved if total is not None else None
                    elapsed = time.monotonic() - started
                    ctx.progress(MigrationProgress(total, remaining, moved, None, None, None, None, elapsed, "copying"))

            roots = StorageRoots(ctx.src_storage.files, (*ctx.src_storage.roots.roots, *ctx.dst_storage.roots.roots))
            assert copy.disk.path is not None
            images.convert(copy.disk.path, copy.dest, copy.image.format, roots=roots, progress=step)
            copied.append(copy.dest)
            done_bytes += copy.image.actual_size
    except Exception as exc:  # qemu-img, or the caller's progress callback: nothing has moved yet
        _remove(copied, ctx, notes)
        raise MigrationFailed(
            f"offline migration of {ctx.name}: copying its disks failed: {exc}; it stays on {ctx.src.uri}",
            cause="disk copy",
            host=ctx.src.uri,
        ) from exc
    if plan.snapshots:
        ctx.srcm.forget_snapshots(ctx.name)
    move = MigrationRequest(live=False, disk_paths={c.disk.target: c.dest for c in plan.copies})
    error: VirtkitError | None = None
    try:
        ctx.srcm.migrate(ctx.name, ctx.dst.uri, move)
    except VirtkitError as exc:
        error = exc
    here = ctx.srcm.presence(ctx.name, ctx.uuid)
    there = ctx.dstm.presence(ctx.name, ctx.uuid)
    if there.location is Location.DEFINED:
        if here.location is not Location.ABSENT:
            with contextlib.suppress(VirtkitError):
                dom = ctx.src.lookup(ctx.name)
                if dom is not None:
                    dom.undefine()
        _redefine_snapshots(ctx, plan, notes, on_source=False)
        notes += [f"the source image {c.disk.path} was left in place" for c in plan.copies]
        return Done(notes=tuple(notes))
    if here.location is Location.ABSENT:
        with contextlib.suppress(VirtkitError):
            ctx.srcm.define(plan.definition)
    _redefine_snapshots(ctx, plan, notes, on_source=True)
    _remove(copied, ctx, notes)
    raise MigrationFailed(
        f"offline migration of {ctx.name} to {ctx.dst.uri} failed: {error}; it stays defined on {ctx.src.uri}",
        cause="libvirt refused the move",
        host=ctx.src.uri,
    ) from error
