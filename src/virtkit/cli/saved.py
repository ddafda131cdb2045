"""Saved state on the command line, under ``virtkit vm``: ``save`` and ``restore`` (to and from a file the caller
names), ``managed-save`` (the host keeps the state, the VM reads ``saved``, ``virtkit vm start`` resumes it; Hyper-V's
Save-VM) and ``discard-saved`` (Remove-VMSavedState). Each runs under a spinner: writing or reading a VM's memory
takes a while, and the calls report no progress.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from virtkit.cli.common import Target, check_option, connected, host_options, json_option, print_change, step

if TYPE_CHECKING:
    from virtkit.models.change import Change
    from virtkit.models.state import VMInfo
    from virtkit.ops.vm import VM

__all__ = ["SAVED_COMMANDS"]


@click.command("save")
@click.argument("name")
@click.argument("path")
@host_options
@check_option
@json_option
def save(name: str, path: str, *, target: Target, check: bool, as_json: bool) -> None:
    """Write VM NAME's memory to PATH (inside the storage roots) and stop it; `virtkit vm restore PATH` resumes it.
    A file at PATH is replaced only when it is an earlier saved state of the same VM."""
    with connected(target) as host:
        vm = host.get(name)
        change = step(f"saving {name} to {path}", lambda: vm.save(path, check=check))
    print_change(change, as_json)


@click.command("restore")
@click.argument("path")
@host_options
@check_option
@json_option
def restore(path: str, *, target: Target, check: bool, as_json: bool) -> None:
    """Start the VM saved in PATH, in the state it was saved in: into its definition when the host has one, else as
    a transient VM. The file stays: remove it once the VM runs, as restoring it again later would bring old memory
    back over newer disks."""
    with connected(target) as host:
        change = step(f"restoring {path}", lambda: host.restore(path, check=check))
    print_change(change, as_json)


def _on_vm(verb: str, doing: str, call: Callable[[VM, bool], Change[VMInfo]], doc: str) -> click.Command:
    """A command ``verb NAME`` that runs ``call(vm, check)`` under a spinner saying ``doing NAME``."""

    @click.argument("name")
    @host_options
    @check_option
    @json_option
    def command(name: str, *, target: Target, check: bool, as_json: bool) -> None:
        with connected(target) as host:
            vm = host.get(name)
            change = step(f"{doing} {name}", lambda: call(vm, check))
        print_change(change, as_json)

    command.__doc__ = doc
    return click.command(verb)(command)


managed_save = _on_vm(
    "managed-save",
    "saving the state of",
    lambda vm, check: vm.managed_save(check=check),
    "Save VM NAME's state where the host keeps it and stop it: it reads saved, and `virtkit vm start` resumes it "
    "(Hyper-V's Save-VM).",
)
discard_saved = _on_vm(
    "discard-saved",
    "discarding the saved state of",
    lambda vm, check: vm.discard_saved_state(check=check),
    "Drop VM NAME's saved state (from managed-save): its next start boots afresh (Hyper-V's Remove-VMSavedState).",
)

#: The commands to register under ``virtkit vm``.
SAVED_COMMANDS = (save, restore, managed_save, discard_saved)
