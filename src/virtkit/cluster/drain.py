"""``drain``: move every VM off a host for maintenance, a few at a time (Hyper-V's "Pause and drain roles").

Each VM goes the way its state allows: a running VM moves with ``mode`` (``live`` by default), a paused one with a
quick migration (it needs ``shared_storage``), a stopped one offline (its definition; its disks stay where they are,
so they should be on shared storage too). A VM that cannot move at all (a transient VM, one with saved state on the
host's disk) is reported as skipped with the reason, never silently left behind.

Each VM gets the destination that can run its CPU and has the least memory committed to VMs, counting the VMs
this drain already sent there. At most ``max_concurrent`` migrations run at once. One VM's failure does not stop
the others; the failures are raised together at the end (:class:`~virtkit.errors.DrainIncomplete`, which carries
the whole :class:`DrainResult`), after every VM was tried. Every migration keeps its own invariant: a VM that did
not move runs where it was.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from virtkit.cluster.placement import Placer
from virtkit.errors import InvalidSpec, VirtkitError
from virtkit.models.migration import MigrationMode, MigrationProgress, MigrationTuning
from virtkit.models.results import DrainIncomplete, DrainResult, MigrationResult
from virtkit.models.state import VMState
from virtkit.ops.args import check_callbacks, check_host, check_hosts, check_tuning
from virtkit.ops.migration import migrate
from virtkit.validate import check_flag, check_paths, shown

if TYPE_CHECKING:
    from virtkit.ops.host import Host
    from virtkit.ops.vm import VM

__all__ = ["DrainResult", "drain"]


@dataclasses.dataclass
class _Move:
    vm: VM
    mode: MigrationMode
    memory: int


def _mode_for(state: VMState, live_mode: MigrationMode, shared: Sequence[Path | str]) -> MigrationMode | str:
    """The mode that moves ``vm`` from ``state``, or the reason it cannot be moved."""
    if state is VMState.RUNNING:
        return live_mode
    if state is VMState.PAUSED:
        return MigrationMode.QUICK if shared else "it is paused: resume it, or give shared storage for a quick move"
    if state in (VMState.STOPPED, VMState.CRASHED):
        return MigrationMode.OFFLINE
    if state is VMState.SAVED:
        return "its saved state is on this host's disk: start it (it resumes) or discard the saved state"
    return f"it is {state.value}"


def _check_args(host: object, to: object, mode: object, max_concurrent: object) -> tuple[list[Host], MigrationMode]:
    """The destinations and the mode for running VMs, checked with the number of migrations at once.

    :raises InvalidSpec: (the argument's name) a bad one.
    """
    host = check_host("host", host)
    targets = check_hosts("to", to if isinstance(to, list | tuple) else [to])
    if any(t.uri == host.uri for t in targets):
        raise InvalidSpec("to", f"{host.uri} is the host being drained")
    if not isinstance(mode, str) or mode not in (MigrationMode.LIVE, MigrationMode.LIVE_STORAGE):
        raise InvalidSpec("mode", f"running VMs move live or live-storage, not {shown(mode)}")
    if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or max_concurrent < 1:
        raise InvalidSpec("max_concurrent", f"must be a whole number of at least 1, not {shown(max_concurrent)}")
    return targets, MigrationMode(mode)


def drain(
    host: Host,
    to: Host | Sequence[Host],
    *,
    mode: MigrationMode | str = MigrationMode.LIVE,
    max_concurrent: int = 2,
    include_stopped: bool = True,
    tuning: MigrationTuning | Mapping[str, Any] | None = None,
    shared_storage: Sequence[Path | str] = (),
    progress: Callable[[str, MigrationProgress], None] | None = None,
    on_done: Callable[[str, MigrationResult | VirtkitError], None] | None = None,
    cancel: threading.Event | None = None,
    check: bool = False,
) -> DrainResult:
    """Move every VM off ``host`` to the hosts ``to`` (see the module's docstring).

    :param mode: how running VMs move: ``live`` (shared storage) or ``live-storage``.
    :param max_concurrent: migrations at once.
    :param include_stopped: move stopped VMs' definitions too (offline); else they are skipped.
    :param progress: ``(vm name, progress)``, called from the worker threads.
    :param on_done: ``(vm name, result or error)`` as each VM is done, from the worker threads.
    :param cancel: set it to cancel the migrations under way and start no more; those VMs stay where they were.
    :param check: report where each VM would go, moving nothing.
    :raises InvalidSpec: a bad argument (its field named); nothing moved.
    :raises DrainIncomplete: some VMs failed to move (each error is in its ``result``); the others moved.
    """
    targets, live_mode = _check_args(host, to, mode, max_concurrent)
    check_flag("include_stopped", include_stopped)
    tuning = check_tuning(tuning)
    shared_storage = check_paths("shared_storage", shared_storage)
    check_callbacks(progress=progress, on_done=on_done, cancel=cancel)
    check_flag("check", check)
    started = time.monotonic()
    moves: list[_Move] = []
    skipped: list[tuple[str, str]] = []
    for vm in host.list():
        info = vm.info()
        why = _mode_for(info.state, live_mode, shared_storage)
        if not info.persistent:
            why = "it is transient (it has no definition to move): define it"
        elif why is MigrationMode.OFFLINE and not include_stopped:
            why = "it is stopped (include_stopped is off)"
        if isinstance(why, MigrationMode):
            moves.append(_Move(vm, why, info.memory))
        else:
            skipped.append((vm.name, why))
    moves.sort(key=lambda m: (-m.memory, m.vm.name))  # the largest first: they balance the hosts best
    placer = Placer(targets, lambda target, vm: target.can_run_cpu(vm))

    def move(item: _Move) -> MigrationResult | VirtkitError:
        name = item.vm.name
        if cancel is not None and cancel.is_set():
            outcome: MigrationResult | VirtkitError = VirtkitError(f"{name}: the drain was cancelled before it moved")
        else:
            dest = placer.choose(item.vm, item.memory)
            if isinstance(dest, str):
                outcome = VirtkitError(f"{name}: {dest}")
            else:
                outcome = _one(
                    item, dest, tuning=tuning, shared=shared_storage, progress=progress, cancel=cancel, check=check
                )
        if on_done is not None:
            on_done(name, outcome)
        return outcome

    with ThreadPoolExecutor(max_workers=max_concurrent, thread_name_prefix="virtkit-drain") as pool:
        outcomes = list(pool.map(move, moves))
    moved = tuple(o for o in outcomes if isinstance(o, MigrationResult))
    failed = tuple((m.vm.name, o) for m, o in zip(moves, outcomes, strict=True) if isinstance(o, VirtkitError))
    result = DrainResult(host.uri, moved, failed, tuple(skipped), time.monotonic() - started, check)
    if failed:
        names = ", ".join(n for n, _ in failed)
        raise DrainIncomplete(f"draining {host.uri}: {len(failed)} VM(s) did not move ({names})", result=result)
    return result


def _one(
    item: _Move,
    dest: Host,
    *,
    tuning: MigrationTuning,
    shared: Sequence[Path | str],
    progress: Callable[[str, MigrationProgress], None] | None,
    cancel: threading.Event | None,
    check: bool,
) -> MigrationResult | VirtkitError:
    name = item.vm.name
    report = (lambda p: progress(name, p)) if progress is not None else None
    try:
        return migrate(
            item.vm,
            dest,
            mode=item.mode,
            tuning=tuning,
            progress=report,
            cancel=cancel,
            shared_storage=shared,
            check=check,
        )
    except VirtkitError as exc:
        return exc
