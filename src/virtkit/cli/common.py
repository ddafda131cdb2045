"""What every ``virtkit`` command shares: the consoles, error printing, the Change report and common options."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console

from virtkit.errors import VirtkitError
from virtkit.models.change import Change

if TYPE_CHECKING:
    from virtkit.ops.host import Host

__all__ = [
    "Target",
    "check_option",
    "connected",
    "console",
    "errors",
    "host_options",
    "json_option",
    "out",
    "print_change",
    "step",
    "uri_option",
    "what_if_option",
]

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
what_if_option = click.option(
    "--what-if", "--check", "what_if", is_flag=True, help="check everything, change nothing (Hyper-V's -WhatIf)"
)


@dataclass(frozen=True)
class Target:
    """The host a command works on: its libvirt URI and the storage roots its files must lie in."""

    uri: str
    storage_roots: tuple[Path, ...]


def host_options(fn: Callable[..., None]) -> Callable[..., None]:
    """``--uri`` and ``--storage-root``, handed to the command as one ``target`` argument."""

    @functools.wraps(fn)
    def wrapper(*args: Any, uri: str, storage_roots: tuple[Path, ...], **kwargs: Any) -> None:
        fn(*args, target=Target(uri, storage_roots), **kwargs)

    wrapper = click.option(
        "--storage-root",
        "storage_roots",
        multiple=True,
        type=click.Path(path_type=Path),
        help="a directory (or block device) the VM's files may lie in; repeat it for more "
        "[default: /var/lib/libvirt/images, /var/lib/virtkit]",
    )(wrapper)
    return uri_option(wrapper)


@contextmanager
def connected(target: Target) -> Iterator[Host]:
    """The host of ``target``, connected; its errors (and the body's) printed by :func:`errors`."""
    import virtkit

    with errors(), virtkit.connect(target.uri, storage_roots=target.storage_roots or None) as host:
        yield host
