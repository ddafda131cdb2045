"""``VM``: lifecycle operations on one VM, each idempotent, each returning a :class:`Change`, each with check mode.

Every operation reads the state first and does nothing when the VM is already where it was asked to go; a VM in a
state from which the operation makes no sense raises :class:`Conflict` with nothing changed.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import EllipsisType
from typing import TYPE_CHECKING, Any

from virtkit.backends.base import DomainBackend, HostBackend
from virtkit.errors import Conflict, InvalidSpec, NotFound, OperationTimeout
from virtkit.models._fields import dump
from virtkit.models.change import Change
from virtkit.models.disk import DiskKind
from virtkit.models.migration import MigrationMode, MigrationProgress, MigrationTuning
from virtkit.models.results import MigrationResult
from virtkit.models.state import VMInfo, VMState
from virtkit.models.vm import AgentService, HostStopAction, SnapshotMode, VMSpec
from virtkit.ops import saved
from virtkit.ops.agent import GuestAgent
from virtkit.ops.disks import Disks
from virtkit.ops.migration import migrate as _migrate
from virtkit.ops.migration.inflight import refuse_if_migrating
from virtkit.ops.snapshot import Snapshots
from virtkit.ops.storage import HostStorage
from virtkit.ops.wait import wait_for
from virtkit.validate import check_flag, check_timeout, shown

if TYPE_CHECKING:
    from virtkit.ops.host import Host

__all__ = ["VM"]

_OFF = (VMState.STOPPED, VMState.SAVED, VMState.CRASHED)


class VM:
    """One VM on one host. Get one from :meth:`virtkit.Host.get`."""

    def __init__(self, host: HostBackend, dom: DomainBackend, storage: HostStorage) -> None:
        self._host = host
        self._dom = dom
        self._storage = storage

    def __repr__(self) -> str:
        return f"<VM {self._dom.name} on {self._host.uri}>"

    @property
    def name(self) -> str:
        """The VM's name."""
        return self._dom.name

    @property
    def host(self) -> str:
        """The URI of the host the VM is on."""
        return self._host.uri

    def info(self) -> VMInfo:
        """State and resources now.

        :raises NotFound: the VM no longer exists.
        """
        return self._dom.info()

    @property
    def state(self) -> VMState:
        """The power state now."""
        return self._dom.info().state

    def spec(self) -> VMSpec:
        """The persistent definition, as a spec in canonical form."""
        return self._dom.spec()

    def update(self, spec: VMSpec | Mapping[str, Any], *, check: bool = False) -> Change[VMSpec]:
        """Change the definition of the stopped VM to ``spec``, in place: its UUID, its NVRAM, its saved snapshots'
        metadata and whatever in the definition virtkit does not model stay. Disks ``spec`` adds with a ``size``
        are created (and removed again if the update fails). The same spec again changes nothing.

        Changes to a running VM go through their own calls (:attr:`disks` hot-plugs); this one wants it off.

        :raises InvalidSpec: a bad spec, another ``name`` (field ``name``), a file outside the storage roots.
        :raises Conflict: the VM is not stopped (running, paused, or saved: a saved state holds the old hardware).
        :raises Unsupported: as :meth:`Host.create`.
        """
        spec = VMSpec.from_dict(spec) if isinstance(spec, Mapping) else spec
        if not isinstance(spec, VMSpec):
            raise InvalidSpec("spec", f"must be a VMSpec or a mapping of its fields, not {type(spec).__name__}")
        check_flag("check", check)
        if spec.name != self.name:
            raise InvalidSpec("name", f"{shown(spec.name)} is not {self.name}: renaming is not an update")
        refuse_if_migrating(self._dom, self.name, "update")
        before = self._dom.spec()
        accel = self._host.resolve_accel(spec.accel)
        wanted = self._host.canonical(spec, accel).adopt_generated(before)
        if wanted == before:
            return Change("update", self.name, before, before, check)
        state = self._dom.info().state
        if state is not VMState.STOPPED:
            raise Conflict(
                f"cannot update {self.name}: it is {state.value}; stop it first (a saved VM: discard "
                "its saved state or start and stop it)"
            )
        to_create = self._storage.check_spec(spec)
        if check:
            return Change("update", self.name, before, wanted, check=True)
        created: list[Path] = []
        try:
            for disk in to_create:
                self._storage.create_image(disk)
                created.append(disk.path)
            self._host.define(spec, accel)
        except BaseException:
            self._storage.discard(created)
            raise
        return Change("update", self.name, before, self._dom.spec())

    def set_resources(
        self, *, memory: int | str | None = None, vcpus: int | None = None, check: bool = False
    ) -> Change[VMSpec]:
        """Change the memory (a size: ``1GiB``, or bytes) and/or the vCPUs, within the VM's ``max_memory`` and
        ``max_vcpus``: on a running or paused VM live (memory through the balloon, vCPUs by hot-plug) and in its
        definition at once; on a stopped VM in its definition (as :meth:`update`). The same values again change
        nothing.

        :raises InvalidSpec: a bad value, or one above its maximum (field ``memory`` or ``vcpus``; raising a
            maximum needs the VM off: :meth:`update`).
        :raises Conflict: the VM is saved, crashed or in a transition.
        """
        check_flag("check", check)
        before = self._dom.spec()
        given = {k: v for k, v in (("memory", memory), ("vcpus", vcpus)) if v is not None}
        alone = VMSpec.from_dict({"name": self.name, **given})  # each value checked, named by its field
        new_memory = alone.memory if memory is not None else before.memory
        new_vcpus = alone.vcpus if vcpus is not None else before.vcpus
        if new_memory > before.effective_max_memory:
            raise InvalidSpec(
                "memory", f"{shown(memory)} is above max_memory; raising the maximum needs the VM off (update)"
            )
        if new_vcpus > before.effective_max_vcpus:
            raise InvalidSpec("vcpus", f"{vcpus} is above max_vcpus; raising the maximum needs the VM off (update)")
        wanted = dataclasses.replace(before, memory=new_memory, vcpus=new_vcpus)
        if wanted == before:
            return Change("set-resources", self.name, before, before, check)
        refuse_if_migrating(self._dom, self.name, "change the resources of")
        state = self._dom.info().state
        if state is VMState.STOPPED:
            return dataclasses.replace(self.update(wanted, check=check), action="set-resources")
        if state not in (VMState.RUNNING, VMState.PAUSED):
            raise Conflict(f"cannot change the resources of {self.name}: it is {state.value}")
        if check:
            return Change("set-resources", self.name, before, wanted, check=True)
        self._dom.set_resources(
            memory=wanted.memory if wanted.memory != before.memory else None,
            vcpus=wanted.vcpus if wanted.vcpus != before.vcpus else None,
        )
        return Change("set-resources", self.name, before, self._dom.spec())

    def configure(
        self,
        *,
        snapshot_mode: SnapshotMode | str | None = None,
        on_host_stop: HostStopAction | str | None = None,
        agent_services: Sequence[AgentService | str] | None = None,
        description: str | EllipsisType | None = ...,
        check: bool = False,
    ) -> Change[VMSpec]:
        """Change what only virtkit reads of the VM, in any state, running too: the snapshot mode, the host-stop
        action, the agent services (of a VM with an agent channel) and the description (``None`` removes it). The
        hardware is :meth:`update`'s. Arguments left out (``description``: left at ``...``) stay as they are.

        :raises InvalidSpec: a bad value (its field named).
        :raises Conflict: agent services for a VM without an agent channel (give it one with :meth:`update`).
        """
        check_flag("check", check)
        before = self._dom.spec()
        given: dict[str, Any] = {
            k: v
            for k, v in (
                ("snapshot_mode", snapshot_mode),
                ("on_host_stop", on_host_stop),
                ("agent_services", agent_services),
            )
            if v is not None
        }
        if description is not ...:
            given["description"] = description
        wanted = VMSpec.from_dict({**before.to_dict(), **{k: dump(v) for k, v in given.items()}})
        if "agent_services" in given and not before.guest_agent:
            raise Conflict(f"{self.name} has no guest agent channel: give it one (update with guest_agent) first")
        if wanted == before:
            return Change("configure", self.name, before, before, check)
        refuse_if_migrating(self._dom, self.name, "configure")
        if check:
            return Change("configure", self.name, before, wanted, check=True)
        self._dom.set_policy(wanted)
        return Change("configure", self.name, before, self._dom.spec())

    @property
    def agent(self) -> GuestAgent:
        """The VM's guest agent: ping, guest information, clock, file copy (:class:`virtkit.ops.agent.GuestAgent`)."""
        return GuestAgent(self._dom, self._storage)

    @property
    def disks(self) -> Disks:
        """The VM's disks: list, hot-add and hot-remove them (:class:`virtkit.ops.disks.Disks`)."""
        return Disks(self._host, self._dom, self._storage)

    def _change(
        self,
        action: str,
        *,
        check: bool,
        noop: Callable[[VMInfo], bool],
        allowed: tuple[VMState, ...],
        act: Callable[[], None],
        predict: Callable[[VMInfo], VMInfo],
    ) -> Change[VMInfo]:
        """The shape of every lifecycle operation: read, decide, (act), read again."""
        check_flag("check", check)
        refuse_if_migrating(self._dom, self.name, action)
        before = self._dom.info()
        if noop(before):
            return Change(action, self.name, before, before, check)
        if before.state not in allowed:
            raise Conflict(f"cannot {action} {self.name}: it is {before.state.value}")
        if check:
            return Change(action, self.name, before, predict(before), check=True)
        act()
        try:
            after: VMInfo | None = self._dom.info()
        except NotFound:
            after = None  # a transient VM (one restored from a file without a definition) is gone once it stops
        return Change(action, self.name, before, after)

    def start(self, *, check: bool = False) -> Change[VMInfo]:
        """Boot the VM; a saved VM resumes from its saved state, and then its guest's clock is set through its
        agent when its time-sync service is on (see :meth:`GuestAgent.sync_clock`).

        :raises Conflict: the VM is paused (use :meth:`resume`) or shutting down.
        """
        saved = self._dom.info().state is VMState.SAVED
        change = self._change(
            "start",
            check=check,
            noop=lambda i: i.state is VMState.RUNNING,
            allowed=_OFF,
            act=self._dom.start,
            predict=lambda i: dataclasses.replace(i, state=VMState.RUNNING, reason="booted", managed_save=False),
        )
        if saved and change.changed and not check:
            self.agent.sync_clock()  # the guest's clock stood still while it was saved
        return change

    def destroy(self, *, check: bool = False) -> Change[VMInfo]:
        """Power off at once, like pulling the plug (Hyper-V's Stop-VM -TurnOff)."""
        return self._change(
            "destroy",
            check=check,
            noop=lambda i: i.state in _OFF,
            allowed=(VMState.RUNNING, VMState.PAUSED, VMState.SHUTTING_DOWN, VMState.SUSPENDED, VMState.UNKNOWN),
            act=self._dom.destroy,
            predict=lambda i: dataclasses.replace(i, state=VMState.STOPPED, reason="destroyed"),
        )

    def pause(self, *, check: bool = False) -> Change[VMInfo]:
        """Stop the vCPUs; memory stays (Hyper-V's Suspend-VM)."""
        return self._change(
            "pause",
            check=check,
            noop=lambda i: i.state is VMState.PAUSED,
            allowed=(VMState.RUNNING,),
            act=self._dom.pause,
            predict=lambda i: dataclasses.replace(i, state=VMState.PAUSED, reason="user"),
        )

    def resume(self, *, check: bool = False) -> Change[VMInfo]:
        """Restart the vCPUs of a paused VM."""
        return self._change(
            "resume",
            check=check,
            noop=lambda i: i.state is VMState.RUNNING,
            allowed=(VMState.PAUSED,),
            act=self._dom.resume,
            predict=lambda i: dataclasses.replace(i, state=VMState.RUNNING, reason="unpaused"),
        )

    def reboot(self, *, hard: bool = False, check: bool = False) -> Change[VMInfo]:
        """Ask the guest to reboot (ACPI), or with ``hard`` reset the virtual hardware at once.

        A guest without ACPI handling (like the lab's busybox guest) ignores the soft request.

        :raises Conflict: the VM is not running.
        """
        check_flag("hard", hard)
        check_flag("check", check)
        refuse_if_migrating(self._dom, self.name, "reboot")
        before = self._dom.info()
        if before.state is not VMState.RUNNING:
            raise Conflict(f"cannot reboot {self.name}: it is {before.state.value}")
        if not check:
            self._dom.reboot(hard=hard)
        return Change("reboot", self.name, before, before if check else self._dom.info(), check, acted=True)

    def shutdown(
        self, *, timeout: float = 60.0, force: bool = False, agent: bool | None = None, check: bool = False
    ) -> Change[VMInfo]:
        """Ask the guest to power off and wait up to ``timeout`` seconds for it; then power off hard if ``force``.

        :param agent: ask through the guest agent (default: when the VM has an agent channel), else by ACPI.
        :raises OperationTimeout: the guest did not power off in time and ``force`` is false (it still runs).
        :raises Conflict: the VM is paused and ``force`` is false (a paused guest cannot act on the request).
        """
        timeout = check_timeout("timeout", timeout, allow_zero=True)
        check_flag("force", force)
        check_flag("check", check)
        if agent is not None:
            check_flag("agent", agent)
        refuse_if_migrating(self._dom, self.name, "shut down")
        before = self._dom.info()
        if before.state in _OFF:
            return Change("shutdown", self.name, before, before, check)
        if before.state is not VMState.RUNNING and not force:
            raise Conflict(f"cannot shut down {self.name} gracefully: it is {before.state.value}; use force")
        if check:
            return Change("shutdown", self.name, before, dataclasses.replace(before, state=VMState.STOPPED), True)
        use_agent = self._dom.spec().guest_agent if agent is None else agent
        if before.state is VMState.RUNNING:
            self._dom.shutdown(agent=use_agent)
            try:
                wait_for(
                    self._dom.info,
                    lambda i: i.state in _OFF,
                    timeout=timeout,
                    what=f"{self.name} to power off",
                )
            except OperationTimeout:
                if not force:
                    raise
        if self._dom.info().state not in _OFF:
            self._dom.destroy()
        return Change("shutdown", self.name, before, self._dom.info())

    @property
    def snapshots(self) -> Snapshots:
        """The VM's snapshots (checkpoints): create, list, tree, revert, delete (see :mod:`virtkit.ops.snapshot`)."""
        return Snapshots(self._host, self._dom, self._storage)

    def save(self, path: str | Path, *, check: bool = False) -> Change[VMInfo]:
        """Write the VM's memory to ``path`` and stop it; :meth:`virtkit.Host.restore` resumes it from there.

        :raises InvalidSpec: (field ``path``) outside the storage roots, or an existing file of something else.
        :raises Conflict: the VM is neither running nor paused, or is being migrated.
        """
        check_flag("check", check)
        refuse_if_migrating(self._dom, self.name, "save")
        return saved.save(self._host, self._dom, self._storage, path, check=check)

    def managed_save(self, *, check: bool = False) -> Change[VMInfo]:
        """Save the VM's state where the host keeps it and stop it (Hyper-V's Save-VM): it reads ``saved``, and
        :meth:`start` resumes it.

        :raises Conflict: the VM is neither running nor paused, is transient, or is being migrated.
        """
        check_flag("check", check)
        refuse_if_migrating(self._dom, self.name, "save the state of")
        return saved.managed_save(self._dom, check=check)

    def discard_saved_state(self, *, check: bool = False) -> Change[VMInfo]:
        """Drop the state :meth:`managed_save` kept; the next start boots afresh (Hyper-V's Remove-VMSavedState)."""
        check_flag("check", check)
        return saved.discard_saved_state(self._dom, check=check)

    def migrate(
        self,
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
        """Move the VM to host ``to``: the same as :func:`virtkit.migrate` (its parameters and errors).

        Afterwards this object still names the VM on its old host: get it from ``to`` to go on.

        :raises MigrationFailed: it did not move; ``host`` says where it runs now.
        """
        return _migrate(
            self,
            to,
            mode=mode,
            tuning=tuning,
            progress=progress,
            cancel=cancel,
            shared_storage=shared_storage,
            storage=storage,
            check=check,
        )

    def wait_for_state(self, state: VMState, *, timeout: float = 60.0) -> VMInfo:
        """Wait until the VM is in ``state``.

        :raises InvalidSpec: not a state, or a timeout that is not a finite, positive number of seconds.
        :raises OperationTimeout: it did not get there in time.
        """
        if not isinstance(state, VMState):
            state = _state(state)
        timeout = check_timeout("timeout", timeout)
        return wait_for(self._dom.info, lambda i: i.state is state, timeout=timeout, what=f"{self.name} to be {state}")

    def delete(self, *, storage: bool = False, force: bool = False, check: bool = False) -> Change[VMInfo]:
        """Remove the VM's definition (with its saved state and snapshot metadata); with ``storage`` also its
        writable disk image files and serial log.

        Deleting a VM that is already gone changes nothing.

        :raises InvalidSpec: a file it owns lies outside the storage roots (resolved) or is no regular file: then
            nothing is deleted.
        :raises Conflict: the VM is running and ``force`` is false.
        :raises Unsupported: ``storage`` on a host whose files cannot be reached (connect with ``ssh=``).
        """
        check_flag("storage", storage)
        check_flag("force", force)
        check_flag("check", check)
        refuse_if_migrating(self._dom, self.name, "delete")
        try:
            before = self._dom.info()
        except NotFound:
            return Change("delete", self.name, None, None, check)
        if before.state not in _OFF and not force:
            raise Conflict(f"cannot delete {self.name}: it is {before.state.value}; stop it first or use force")
        files = self._owned_files() if storage else []
        if storage and (external := [s.name for s in self._dom.snapshots().external()]):
            # Its disks are chains of overlays: removing the files it names now would leave the images below.
            raise Conflict(
                f"cannot delete the storage of {self.name}: its snapshots {', '.join(sorted(external))} keep its "
                "disks as chains of overlays (and memory files); delete the snapshots first (that merges the "
                "overlays back), or delete the VM without storage"
            )
        if check:
            return Change("delete", self.name, before, None, True)
        if before.state not in _OFF:
            self._dom.destroy()
        self._dom.undefine()
        for field, path in files:
            self._storage.remove(field, path)  # on the host itself, where its files are
        return Change("delete", self.name, before, None)

    def _owned_files(self) -> list[tuple[str, Path]]:
        """The files ``delete(storage=True)`` removes, each checked: writable image files and the serial log.

        :raises InvalidSpec: one lies outside the roots, or is no regular file.
        """
        spec = self._dom.spec()
        wanted = [
            (f"disks[{i}].path", d.path) for i, d in enumerate(spec.disks) if d.kind is DiskKind.FILE and not d.readonly
        ]
        if spec.serial_log is not None:
            wanted.append(("serial_log", spec.serial_log))
        return [(field, path) for field, path in wanted if self._storage.owned(field, path) is not None]


def _state(value: object) -> VMState:
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return VMState(value)
    except ValueError:
        allowed = ", ".join(s.value for s in VMState)
        raise InvalidSpec("state", f"{shown(value)} is not a VM state; use one of {allowed}") from None
