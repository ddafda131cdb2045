"""``virtkit migrate`` and ``virtkit drain``: move VMs between hosts with progress bars fed by the progress callback.

Ctrl-C cancels the migration (the VM goes on where it was) instead of leaving it to an interrupted call.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn

from virtkit.cli.common import out, print_change
from virtkit.cluster.drain import drain
from virtkit.errors import VirtkitError
from virtkit.models.migration import MigrationMode, MigrationProgress, MigrationTuning
from virtkit.models.results import DrainResult, MigrationResult

__all__ = ["describe", "migration_bar", "print_result", "run_drain", "run_migration"]


def _mib(value: int | None) -> str:
    return "?" if value is None else f"{value / 2**20:.0f} MiB"


def describe(p: MigrationProgress) -> str:
    """One line for the progress bar: phase, data sent, rate, pass, dirty rate and the expected downtime."""
    parts = [p.phase]
    if p.data_processed is not None:
        parts.append(f"{_mib(p.data_processed)} of {_mib(p.data_total)}")
    if p.rate:
        parts.append(f"{p.rate / 2**20:.1f} MiB/s")
    if p.iteration:
        parts.append(f"pass {p.iteration}")
    if p.dirty_rate:
        parts.append(f"dirtied {p.dirty_rate / 2**20:.1f} MiB/s")
    if p.throttle:
        parts.append(f"guest slowed {p.throttle}%")
    if p.expected_downtime is not None:
        parts.append(f"downtime ~{p.expected_downtime * 1000:.0f} ms")
    return ", ".join(parts)


def print_result(result: MigrationResult, as_json: bool) -> None:
    """Print the move as a Change (or JSON) and, when it happened, how it went: its time, downtime and passes, the
    strategy, each escalation step."""
    print_change(result, as_json)
    if as_json or result.check:
        return
    downtime = f"{result.downtime * 1000:.0f} ms" if result.downtime is not None else "-"
    out.print(f"  took {result.total_time:.2f} s, downtime {downtime}, {result.iterations or '-'} passes")
    if result.strategy is not None:
        out.print(f"  strategy {result.strategy.value}" + (", post-copy" if result.postcopy else ""))
    for step in result.escalated:
        value = f" to {step.value} ms" if step.value is not None else ""
        out.print(f"  at {step.elapsed:.1f} s: {step.action}{value} ({step.cause})")


@contextlib.contextmanager
def _ctrl_c_cancels(cancel: threading.Event) -> Iterator[None]:
    """While the block runs, Ctrl-C sets ``cancel`` instead of raising ``KeyboardInterrupt``."""

    def handler(_signum: int, _frame: FrameType | None) -> None:
        cancel.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def migration_bar(
    console: Console, description: str
) -> Iterator[tuple[Callable[[MigrationProgress], None], threading.Event]]:
    """A progress bar for one migration on ``console``: yields the progress callback that draws it and the event
    that cancels the migration, which Ctrl-C sets while the block runs."""
    cancel = threading.Event()
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with (
        Progress(*columns, TextColumn("{task.fields[detail]}"), console=console, transient=True) as bar,
        _ctrl_c_cancels(cancel),
    ):
        task = bar.add_task(description, total=None, detail="starting")

        def on_progress(p: MigrationProgress) -> None:
            fraction = p.fraction
            if fraction is None:
                bar.update(task, total=None, detail=describe(p))
            else:
                bar.update(task, total=1.0, completed=fraction, detail=describe(p))

        yield on_progress, cancel


def run_migration(
    name: str,
    source: str,
    destination: str,
    *,
    mode: MigrationMode,
    tuning: MigrationTuning,
    shared_storage: Sequence[Path],
    storage: Path | None,
    check: bool,
    console: Console,
) -> MigrationResult:
    """Connect to both hosts and migrate VM ``name``, drawing progress on ``console``.

    :raises VirtkitError: whatever :func:`virtkit.migrate` raises (``MigrationFailed`` names where the VM runs).
    """
    from virtkit.connect import connect  # opens libvirt: only when the command runs

    with (
        connect(source) as src,
        connect(destination) as dst,
        migration_bar(console, f"{mode.value} {name}") as (on_progress, cancel),
    ):
        return src.get(name).migrate(
            dst,
            mode=mode,
            tuning=tuning,
            progress=on_progress,
            cancel=cancel,
            shared_storage=shared_storage,
            storage=storage,
            check=check,
        )


def run_drain(
    source: str,
    destinations: Sequence[str],
    *,
    max_concurrent: int,
    include_stopped: bool,
    tuning: MigrationTuning,
    shared_storage: Sequence[Path],
    check: bool,
    console: Console,
) -> DrainResult:
    """Connect to every host and drain ``source``, drawing a progress bar per VM on ``console``.

    :raises VirtkitError: whatever :func:`virtkit.drain` raises (``DrainIncomplete`` carries the result).
    """
    from virtkit.connect import connect  # opens libvirt: only when the command runs

    cancel = threading.Event()
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with contextlib.ExitStack() as stack:
        src = stack.enter_context(connect(source))
        targets = [stack.enter_context(connect(uri)) for uri in destinations]
        bar = stack.enter_context(
            Progress(*columns, TextColumn("{task.fields[detail]}"), console=console, transient=True)
        )
        stack.enter_context(_ctrl_c_cancels(cancel))
        tasks: dict[str, TaskID] = {}
        lock = threading.Lock()

        def task(name: str) -> TaskID:
            with lock:
                if name not in tasks:
                    tasks[name] = bar.add_task(name, total=None, detail="starting")
                return tasks[name]

        def on_progress(name: str, p: MigrationProgress) -> None:
            fraction = p.fraction
            if fraction is None:
                bar.update(task(name), total=None, detail=describe(p))
            else:
                bar.update(task(name), total=1.0, completed=fraction, detail=describe(p))

        def on_done(name: str, outcome: MigrationResult | VirtkitError) -> None:
            if isinstance(outcome, VirtkitError):
                console.print(f"[red]failed[/]: {name}: {outcome}")
            else:
                console.print(f"[green]moved[/]: {name} to {outcome.destination} in {outcome.total_time:.2f} s")
            bar.update(task(name), visible=False)

        return drain(
            src,
            targets,
            max_concurrent=max_concurrent,
            include_stopped=include_stopped,
            tuning=tuning,
            shared_storage=shared_storage,
            progress=on_progress,
            on_done=on_done,
            cancel=cancel,
            check=check,
        )
