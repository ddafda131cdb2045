"""Stopping a host's VMs as each asks: ``on_host_stop`` (Hyper-V's AutomaticStopAction), before the host goes down.

``stop_vms(host)`` takes every running or paused VM of the host and, at once for all of them (up to
``max_concurrent`` at a time):

- ``save``: saves its state where the host keeps it (managed save); the next start resumes it. A VM that cannot be
  saved (a VHD disk: QEMU's vpc driver cannot carry its state) is shut down instead, and the result says so;
- ``shutdown``: asks the guest to power off (through the guest agent when its Shutdown service is on, by ACPI
  otherwise or when the agent does not answer), and powers it off hard after ``timeout`` seconds;
- ``power_off``: powers it off at once.

Whatever happens to one VM, the others are still stopped: no VM is left running because another failed. Run it from
the host's shutdown sequence (where a libvirt-guests service would run), or before maintenance.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from virtkit.errors import InvalidSpec, VirtkitError
from virtkit.models.change import Change
from virtkit.models.state import VMInfo, VMState
from virtkit.models.vm import AgentService, HostStopAction
from virtkit.ops.args import check_callbacks
from virtkit.ops.host import Host
from virtkit.ops.vm import VM
from virtkit.validate import check_flag

__all__ = ["StoppedVM", "VMsStopped", "stop_vms"]

# What has a QEMU process: running, paused, shutting down (a guest that may never finish), suspended to RAM.
_RUNNING = (VMState.RUNNING, VMState.PAUSED, VMState.SHUTTING_DOWN, VMState.SUSPENDED)


@dataclass(frozen=True)
class StoppedVM:
    """One VM: the action its spec asks for, what was done (``done``: another action when that one could not be
    taken), and the ``change``, or the ``error`` when nothing worked."""

    name: str
    action: HostStopAction
    done: HostStopAction | None
    change: Change[VMInfo] | None = None
    error: VirtkitError | None = None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return {
            "name": self.name,
            "action": self.action.value,
            "done": None if self.done is None else self.done.value,
            "error": None if self.error is None else f"{type(self.error).__name__}: {self.error}",
            "note": self.note,
        }


@dataclass(frozen=True)
class VMsStopped:
    """What :func:`stop_vms` did, VM by VM, and how long it took."""

    host: str
    vms: tuple[StoppedVM, ...]
    total_time: float
    check: bool = False

    @property
    def failed(self) -> tuple[StoppedVM, ...]:
        """The VMs that may still run: nothing worked for them."""
        return tuple(v for v in self.vms if v.error is not None)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return {
            "host": self.host,
            "check": self.check,
            "total_time": self.total_time,
            "vms": [v.as_dict() for v in self.vms],
        }


def stop_vms(
    host: Host,
    *,
    timeout: float = 60.0,
    max_concurrent: int = 4,
    on_done: Callable[[StoppedVM], None] | None = None,
    check: bool = False,
) -> VMsStopped:
    """Stop every running or paused VM of ``host`` as its ``on_host_stop`` says (see the module's docstring).

    :param timeout: seconds a guest has to shut down before it is powered off.
    :param max_concurrent: VMs handled at once.
    :param on_done: called with each VM's outcome as it is done, from the worker threads.
    :param check: report what each VM would get, changing nothing.
    :raises InvalidSpec: a bad argument (its field named); nothing was stopped.
    """
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 86400:
        raise InvalidSpec("timeout", f"must be a number of seconds in (0, 86400], got {timeout!r}")
    if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or not 1 <= max_concurrent <= 64:
        raise InvalidSpec("max_concurrent", f"must be a whole number from 1 to 64, got {max_concurrent!r}")
    check_flag("check", check)
    check_callbacks(on_done=on_done)
    started = time.monotonic()
    running = [vm for vm in host.list() if vm.state in _RUNNING]

    def one(vm: VM) -> StoppedVM:
        outcome = _stop(vm, timeout, check)
        if on_done is not None:
            on_done(outcome)
        return outcome

    with ThreadPoolExecutor(max_workers=max_concurrent, thread_name_prefix="virtkit-stop") as pool:
        outcomes = tuple(pool.map(one, running))
    return VMsStopped(host.uri, outcomes, time.monotonic() - started, check)


def _stop(vm: VM, timeout: float, check: bool) -> StoppedVM:
    try:
        spec = vm.spec()
    except VirtkitError as exc:  # unreadable: power it off rather than leave it running
        return _power_off(vm, HostStopAction.SAVE, check, note=f"its definition could not be read: {exc}")
    action = spec.on_host_stop
    agent = spec.guest_agent and AgentService.SHUTDOWN in spec.agent_services
    if action is HostStopAction.SAVE:
        try:
            return StoppedVM(vm.name, action, action, vm.managed_save(check=check))
        except VirtkitError as exc:
            note = f"could not be saved ({exc}); shut down instead"
            return _shut_down(vm, action, timeout, agent, check, note=note)
    if action is HostStopAction.SHUTDOWN:
        return _shut_down(vm, action, timeout, agent, check)
    return _power_off(vm, action, check)


def _shut_down(
    vm: VM, action: HostStopAction, timeout: float, agent: bool, check: bool, *, note: str | None = None
) -> StoppedVM:
    """Ask the guest (through its agent first when it has one, then by ACPI should the agent fail), and power it
    off after ``timeout``; power it off if asking fails altogether."""
    failures = []
    for through_agent in (True, False) if agent else (False,):
        try:
            change = vm.shutdown(timeout=timeout, force=True, agent=through_agent, check=check)
        except VirtkitError as exc:
            failures.append(f"{'agent' if through_agent else 'ACPI'} shutdown failed ({exc})")
            continue
        notes = [n for n in (note, *failures) if n]
        return StoppedVM(vm.name, action, HostStopAction.SHUTDOWN, change, note="; ".join(notes) or None)
    return _power_off(vm, action, check, note="; ".join(n for n in (note, *failures) if n))


def _power_off(vm: VM, action: HostStopAction, check: bool, *, note: str | None = None) -> StoppedVM:
    try:
        change = vm.destroy(check=check)
    except VirtkitError as exc:
        return StoppedVM(vm.name, action, None, error=exc, note=note)
    return StoppedVM(vm.name, action, HostStopAction.POWER_OFF, change, note=note)
