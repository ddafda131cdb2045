"""``virtkit apply``: bring a site's hosts to what its site file says, or (``--check``) say what would change.

The exit code is ``terraform plan -detailed-exitcode``'s: 0 nothing to do, 2 changes (made, or planned with
``--check``), 1 an error (usage errors too, so that 2 always means changes).
"""

from __future__ import annotations

import difflib
import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import yaml
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from virtkit.cli.common import console, out
from virtkit.cli.migrate import describe
from virtkit.errors import VirtkitError

if TYPE_CHECKING:
    from virtkit.models.migration import MigrationProgress
    from virtkit.playbook import Report, Step, StepResult, VMDiff

__all__ = ["apply"]


class _UsageError(click.UsageError):
    exit_code = 1


class _Command(click.Command):
    """A command whose usage errors exit 1: its exit code 2 means changes."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            raise _UsageError(exc.message, exc.ctx) from None


@click.command(cls=_Command)
@click.argument("site_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="only say what would change (the plan), change nothing")
@click.option("--diff", "show_diff", is_flag=True, help="also show each changed VM's fields before and after")
@click.option("--allow-restart", is_flag=True, help="make changes that need a VM off: shut it down, change it, restart")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def apply(site_file: Path, check: bool, show_diff: bool, allow_restart: bool, as_json: bool) -> None:
    """Bring the hosts of SITE_FILE to what it says: define, change (live where possible: memory, vCPUs and disks
    of a running VM), start, stop, migrate, checkpoint, delete. Exit 0: nothing to do, 2: changes, 1: an error."""
    from virtkit.playbook import Engine, SiteSpec

    try:
        site = SiteSpec.from_file(site_file)
        with Engine(site) as engine:
            if check:
                report = engine.run(check=True)
            else:
                with _bars() as (on_step, progress, planned):
                    observed = engine.observe()
                    steps = engine.plan(observed)
                    planned(len(steps))
                    from virtkit.playbook import Report

                    results = engine.apply(steps, allow_restart=allow_restart, on_step=on_step, progress=progress)
                    report = Report(steps, results, engine.diffs(steps, observed))
    except VirtkitError as exc:
        console.print(f"[bold red]error[/]: {site_file}: {type(exc).__name__}: {exc}")
        sys.exit(1)
    _print(report, show_diff=show_diff, as_json=as_json)
    sys.exit(report.exit_code)


def _print(report: Report, *, show_diff: bool, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
        return
    if show_diff:
        for d in report.diffs:
            out.print(_unified(d), end="", markup=False, highlight=False)
    out.print(report.text(), end="", markup=False, highlight=False)
    if report.held:
        out.print(f"{len(report.held)} step(s) need their VM off: run again with --allow-restart to make them.")


def _unified(d: VMDiff) -> str:
    def lines(side: dict[str, Any] | None) -> list[str]:
        return [] if side is None else yaml.safe_dump(side, sort_keys=False).splitlines(keepends=True)

    return "".join(difflib.unified_diff(lines(d.before), lines(d.after), f"before: {d.vm}", f"after: {d.vm}"))


@contextmanager
def _bars() -> Iterator[tuple[Any, Any, Any]]:
    """A bar counting the steps, and one per migration while it moves data."""
    from virtkit.playbook.report import render_step

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, TextColumn("{task.fields[detail]}"), console=console, transient=True) as bar:
        total = bar.add_task("applying", total=None, detail="observing the hosts")
        moving: dict[str, TaskID] = {}
        lock = threading.Lock()

        def planned(n: int) -> None:
            bar.update(total, total=n, detail="")

        def on_step(r: StepResult) -> None:
            console.print(f"{render_step(r.step)}: {r.status.value}" + (f": {r.error}" if r.error else ""))
            bar.advance(total)

        def progress(s: Step, p: MigrationProgress) -> None:
            with lock:
                if s.vm not in moving:
                    moving[s.vm] = bar.add_task(f"migrate {s.vm}", total=None, detail="")
            task = moving[s.vm]
            if p.fraction is None:
                bar.update(task, detail=describe(p))
            else:
                bar.update(task, total=1.0, completed=p.fraction, detail=describe(p))
            if p.phase == "done":
                bar.update(task, visible=False)

        yield on_step, progress, planned
