"""``migrate``: move a VM to another host, live, live with its storage, quick or offline; monitored and safe.

One call for every mode (see :class:`~virtkit.models.migration.MigrationMode`)::

    result = virtkit.migrate(vm, host2, shared_storage=["/var/lib/virtkit/shared"])
    print(result.total_time, result.downtime)

The invariant, whatever fails: afterwards the VM runs on exactly one host, not paused, with its persistent
definition there and nowhere else. The outcome is read from both hosts, never guessed from an error message
(:mod:`virtkit.ops.migration.outcome`); a failure raises :class:`~virtkit.errors.MigrationFailed` naming its cause
and the host the VM runs on. While a VM is moving, a second migration or a lifecycle call on it is refused with
:class:`~virtkit.errors.Conflict`.

Shared storage: libvirt cannot tell that a directory on a local file system is shared between hosts (the lab's
shared volume, or a cluster file system it does not recognise), and calls such a migration unsafe. The caller
vouches instead: ``shared_storage`` names the directories every host sees at the same path. A live migration passes
libvirt's ``UNSAFE`` flag only when every writable disk lies in one of them; a quick migration writes the VM's
memory to the first of them and needs every disk in them.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from virtkit.errors import InvalidSpec, MigrationFailed
from virtkit.models.migration import MigrationMode, MigrationProgress, MigrationTuning
from virtkit.models.results import MigrationResult
from virtkit.models.state import VMState
from virtkit.ops.agent import GuestAgent
from virtkit.ops.args import check_callbacks, check_host, check_tuning, check_vm
from virtkit.ops.migration import inflight as _inflight
from virtkit.ops.migration.modes import Context, preflight, run_live, run_offline, run_quick
from virtkit.validate import check_flag, check_paths, shown

if TYPE_CHECKING:
    from virtkit.ops.host import Host
    from virtkit.ops.vm import VM

__all__ = ["migrate"]


def _mode(value: MigrationMode | str) -> MigrationMode:
    try:
        return MigrationMode(value)
    except ValueError:
        allowed = ", ".join(m.value for m in MigrationMode)
        raise InvalidSpec("mode", f"{shown(value)} is not a migration mode; use one of {allowed}") from None


def migrate(
    vm: VM,
    to: Host,
    *,
    mode: MigrationMode | str = MigrationMode.LIVE,
    tuning: MigrationTuning | Mapping[str, Any] | None = None,
    progress: Callable[[MigrationProgress], None] | None = None,
    cancel: threading.Event | None = None,
    shared_storage: Sequence[Path | str] = (),
    storage: Path | str | None = None,
    check: bool = False,
) -> MigrationResult:
    """Move ``vm`` to host ``to``; its persistent definition (and its snapshots' metadata) goes with it.

    A VM already on ``to`` (and gone from its old host) changes nothing.

    :param mode: ``live`` (shared storage), ``live-storage`` (its disks are copied while it runs), ``quick`` (save,
        restore on ``to``) or ``offline`` (a stopped VM's definition; its disks too when ``storage`` is given).
    :param tuning: how a live migration runs and what makes a busy guest's migration end: strategy, bandwidth,
        downtime ramp, auto-converge, compression, parallel connections, post-copy and completion timeout (a
        :class:`MigrationTuning`, or a mapping of its fields).
    :param progress: called about four times a second from this thread while data moves, until the end; the last
        call of a move that succeeded has phase ``done``.
    :param cancel: set it from another thread to cancel; the VM then goes on where it was.
    :param shared_storage: directories both hosts see at the same path (see the module's docstring).
    :param storage: a directory on ``to`` for the copied disks (``live-storage``, ``offline``); by default they
        keep their paths, which is refused when both hosts are this machine (a copy onto itself).
    :param check: check everything and report what would happen, moving nothing.
    :raises InvalidSpec: a bad argument (its field named); nothing changed.
    :raises NotFound: the VM is on neither host.
    :raises AlreadyExists: ``to`` has a VM of that name, or a copied disk's file exists there.
    :raises Conflict: the VM is in the wrong state for the mode, transient, or already being migrated.
    :raises Unsupported: the mode cannot move this VM (a storage copy of a VM with snapshots, an offline copy
        between hosts whose files are not both this machine's).
    :raises CPUIncompatible: ``to`` cannot run the VM's CPU (an :class:`Unsupported`; the message names the missing
        features).
    :raises MigrationFailed: it did not move; ``host`` says where it runs now.
    """
    vm, to = check_vm("vm", vm), check_host("to", to)
    mode = _mode(mode)
    tuning = check_tuning(tuning)
    # One package: the operations layer reaches the backends behind its own VM and Host objects.
    src, dst = vm._host, to._backend
    if src.uri == dst.uri:
        raise InvalidSpec("to", f"{dst.uri} is the host {vm.name} is on")
    check_flag("check", check)
    check_callbacks(progress=progress, cancel=cancel)
    shared = check_paths("shared_storage", shared_storage)
    target = to._storage.check_directory("storage", storage).path if storage is not None else None
    uuid = vm._dom.uuid
    ctx = Context(
        src=src,
        dst=dst,
        src_storage=vm._storage,
        dst_storage=to._storage,
        name=vm.name,
        uuid=uuid,
        mode=mode,
        tuning=tuning,
        shared=shared,
        storage=target,
        progress=progress,
        cancel=cancel,
    )
    with _inflight.claim(uuid, vm.name, f"{mode.value} migration to {dst.uri}"):
        plan = preflight(ctx)
        if plan.noop is not None:
            return MigrationResult(
                "migrate", vm.name, plan.noop, plan.noop, check, mode=mode, source=src.uri, destination=dst.uri
            )
        before = plan.before
        if check:
            after = dataclasses.replace(before, host=dst.uri)
            return MigrationResult(
                "migrate", vm.name, before, after, True, mode=mode, source=src.uri, destination=dst.uri
            )
        started = time.monotonic()
        runner = {MigrationMode.QUICK: run_quick, MigrationMode.OFFLINE: run_offline}.get(mode, run_live)
        done = runner(ctx, plan)
        total = time.monotonic() - started
        arrived = dst.lookup(vm.name)
        if arrived is None:
            raise MigrationFailed(
                f"{vm.name} moved to {dst.uri} but is not found there now", cause="vanished", host=None
            )
        after = arrived.info()
        if after.state is VMState.RUNNING:
            GuestAgent(arrived, to._storage).sync_clock()  # a quick migration stopped the guest's clock
        return MigrationResult(
            "migrate",
            vm.name,
            before,
            after,
            mode=mode,
            source=src.uri,
            destination=dst.uri,
            total_time=total,
            downtime=done.downtime,
            data_moved=done.data_moved,
            iterations=done.iterations,
            postcopy=done.postcopy,
            notes=done.notes,
            strategy=done.strategy,
            escalated=done.escalated,
            max_downtime=done.max_downtime,
            max_throttle=done.max_throttle,
        )
