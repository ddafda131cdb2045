"""What every ``virtkit`` command shares: the consoles, error printing, the Change report and common options."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from rich.console import Console

from virtkit.errors import VirtkitError
from virtkit.models.change import Change

__all__ = ["check_option", "console", "errors", "json_option", "out", "print_change", "step", "uri_option"]

T = TypeVar("T")
console = Console(stderr=True, soft_wrap=True)  # an error stays one line, however long
out = Console()


@contextmanager
def errors() -> Iterator[None]:
    """Print virtkit errors as one line and exit 1, instead of a traceback."""
    try:
        yield
    except VirtkitError as exc:
        console.print(f"[bold red]error[/]: {type(exc).__name__}: {exc}")
        sys.exit(1)


def step(message: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` under a spinner saying ``message``."""
    with console.status(message):
        return fn()


def print_change(change: Change[Any], as_json: bool) -> None:
    """Print what ``change`` did (or would do, in check mode) and the fields it changed, or the Change as JSON."""
    if as_json:
        out.print_json(json.dumps(change.as_dict()))
        return
    mark = "[yellow]changed[/]" if change.changed else "[green]ok[/]"
    check = " (check mode: nothing done)" if change.check else ""
    out.print(f"{mark}: {change.action} {change.target}{check}")
    for field, (before, after) in change.diff().items():
        out.print(f"  {field}: {before} -> {after}")


uri_option = click.option("--uri", "-c", default="qemu:///system", show_default=True, help="libvirt URI of the host")
check_option = click.option("--check", is_flag=True, help="report what would change, change nothing")
json_option = click.option("--json", "as_json", is_flag=True, help="print the Change as JSON")
