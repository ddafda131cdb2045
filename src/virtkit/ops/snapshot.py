"""``Snapshots``: the checkpoints of one VM, reached as :attr:`virtkit.VM.snapshots`.

Hyper-V's checkpoint cmdlets map onto it: ``Checkpoint-VM`` is :meth:`Snapshots.create` (a Standard checkpoint is
kind ``memory``; a Production checkpoint is kind ``quiesced``, which falls back to ``memory`` unless
``fallback=False``, Hyper-V's ProductionOnly), ``Get-VMSnapshot`` is :meth:`Snapshots.list`, ``Restore-VMSnapshot``
is :meth:`Snapshots.revert`, ``Remove-VMSnapshot [-IncludeAllChildSnapshots]`` is :meth:`Snapshots.delete` and
``Rename-VMSnapshot`` is :meth:`Snapshots.rename`.

A memory snapshot of a UEFI VM (Generation 2) is an external one: its memory in a file and each disk under a new
overlay beside its image, with a copy of the VM's UEFI variable store taken while the VM is paused. Where the host
cannot revert to or delete external snapshots (libvirt before 9.9), virtkit does it itself
(:mod:`virtkit.ops.external_snapshots`). After a revert to a running state the guest's clock is set through its
agent when its time-sync service is on.

Like every operation, each one is idempotent, returns a :class:`Change`, has a check mode that touches nothing, and
refuses what the host cannot do (:class:`Unsupported`) before anything changes.
"""

from __future__ import annotations

import builtins
import dataclasses
import time
from pathlib import Path

from virtkit.backends.base import DomainBackend, HostBackend
from virtkit.errors import AlreadyExists, Conflict, InvalidSpec, NotFound, Unsupported
from virtkit.models.change import Change
from virtkit.models.snapshot import SnapshotInfo, SnapshotKind, SnapshotNode
from virtkit.models.state import VMInfo, VMState
from virtkit.models.vm import AgentService, SnapshotMode
from virtkit.ops.agent import GuestAgent
from virtkit.ops.blockers import refuse_blockers
from virtkit.ops.external_snapshots import ExternalSteps
from virtkit.ops.migration.inflight import refuse_if_migrating
from virtkit.ops.storage import HostStorage
from virtkit.validate import check_flag, check_name, check_text, shown

__all__ = ["Snapshots"]

# The power states a snapshot can be taken in, and reverted from. A saved VM is left out of both: its saved
# memory belongs with its disks as they are now (libvirt would revert the disks and keep the stale saved state).
_CREATE_FROM = (VMState.RUNNING, VMState.PAUSED, VMState.STOPPED)
_REVERT_FROM = (VMState.RUNNING, VMState.PAUSED, VMState.STOPPED, VMState.CRASHED)

# An existing snapshot of kind K satisfies a request for: itself; a disk-only request, when it is quiesced (a
# quiesced snapshot is a disk-only one, taken with more care); a quiesced request with fallback, when it is memory
# (what the fallback would have taken).
_SATISFIES = {
    SnapshotKind.MEMORY: {SnapshotKind.MEMORY},
    SnapshotKind.DISK_ONLY: {SnapshotKind.DISK_ONLY, SnapshotKind.QUIESCED},
    SnapshotKind.QUIESCED: {SnapshotKind.QUIESCED},
}


def _kind(value: SnapshotKind | str) -> SnapshotKind:
    try:
        return SnapshotKind(value)
    except (ValueError, TypeError):
        allowed = ", ".join(k.value for k in SnapshotKind)
        raise InvalidSpec("kind", f"{shown(value)} is not a snapshot kind; use one of {allowed}") from None


class Snapshots:
    """The snapshots of one VM."""

    def __init__(self, host: HostBackend, dom: DomainBackend, storage: HostStorage) -> None:
        self._host = host
        self._dom = dom
        self._storage = storage
        self._snaps = dom.snapshots()
        self._steps = ExternalSteps(dom.name, dom, self._snaps, storage)

    def __repr__(self) -> str:
        return f"<Snapshots of {self._dom.name} on {self._host.uri}>"

    @property
    def _vm(self) -> str:
        return self._dom.name

    # -- reading ------------------------------------------------------------------------------------------------

    def list(self) -> builtins.list[SnapshotInfo]:
        """Every snapshot, oldest first (a parent before its children when taken in the same second)."""
        infos = self._snaps.list()
        parents = {i.name: i.parent for i in infos}

        def depth(name: str) -> int:
            seen: set[str] = set()
            parent = parents.get(name)
            while parent is not None and parent not in seen:
                seen.add(parent)
                parent = parents.get(parent)
            return len(seen)

        return sorted(infos, key=lambda i: (i.created, depth(i.name), i.name))

    def get(self, name: str) -> SnapshotInfo:
        """The snapshot of that name.

        :raises InvalidSpec: not a valid name.
        :raises NotFound: the VM has no snapshot of that name.
        """
        info = self._snaps.get(check_name("name", name))
        if info is None:
            raise NotFound(f"{self._vm} on {self._host.uri} has no snapshot named {name!r}")
        return info

    def exists(self, name: str) -> bool:
        """Whether the VM has a snapshot of that name.

        :raises InvalidSpec: not a valid name.
        """
        return self._snaps.get(check_name("name", name)) is not None

    def current(self) -> SnapshotInfo | None:
        """The snapshot the VM's present state descends from, or ``None``."""
        name = self._snaps.current_name()
        return self._snaps.get(name) if name is not None else None

    def tree(self) -> tuple[SnapshotNode, ...]:
        """The snapshots as a forest: the roots, oldest first, each with its children."""
        infos = self.list()
        names = {i.name for i in infos}
        children: dict[str | None, builtins.list[SnapshotInfo]] = {}
        for info in infos:
            children.setdefault(info.parent if info.parent in names else None, []).append(info)

        def node(info: SnapshotInfo) -> SnapshotNode:
            return SnapshotNode(info, tuple(node(c) for c in children.get(info.name, [])))

        return tuple(node(i) for i in children.get(None, []))

    # -- creating -----------------------------------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        kind: SnapshotKind | str | None = SnapshotKind.MEMORY,
        description: str = "",
        fallback: bool = True,
        check: bool = False,
    ) -> Change[SnapshotInfo]:
        """Take snapshot ``name`` of the VM; ``after.kind`` says what was really taken.

        ``kind=None`` takes what the VM's ``snapshot_mode`` says (Hyper-V's CheckpointType): ``memory``,
        ``quiesced`` (falling back to memory), ``quiesced_only`` (no fallback); ``disabled`` refuses.

        ``quiesced`` needs a guest agent that answers, with its ``fs_freeze`` service on; without, it falls back to
        ``memory`` when ``fallback`` (Hyper-V's Production checkpoint), else it is refused (ProductionOnly). Of a VM
        that is off it takes ``disk-only``: nothing runs, so the disks are consistent as they are. A
        snapshot of that name that exists already changes nothing if it is what the request would take (its
        description is left as it is).

        :raises InvalidSpec: a bad name, kind or description, or an overlay file of a disk-only snapshot that
            exists already or would lie outside the storage roots.
        :raises AlreadyExists: a snapshot of that name exists with another kind.
        :raises Conflict: the VM is saved, or in a transition; its snapshot_mode is disabled (``kind=None``).
        :raises Unsupported: the host cannot take this kind of snapshot of this VM; the message says why and what
            would work.
        """
        name = check_name("name", name)
        check_flag("fallback", fallback)
        if kind is None:
            kind, fallback = self._by_mode(fallback)
        kind = _kind(kind)
        description = check_text("description", description)
        check_flag("check", check)
        refuse_if_migrating(self._dom, self._vm, "take a snapshot of")
        target = f"{self._vm}/{name}"
        existing = self._snaps.get(name)
        if existing is not None:
            accepted = set(_SATISFIES[kind])
            if kind is SnapshotKind.QUIESCED and fallback:
                accepted.add(SnapshotKind.MEMORY)
            if kind is SnapshotKind.QUIESCED and existing.vm_state is VMState.STOPPED:
                accepted.add(SnapshotKind.DISK_ONLY)  # what a quiesced request takes of a VM that is off
            if existing.kind in accepted:
                return Change("create-snapshot", target, existing, existing, check)
            raise AlreadyExists(
                f"{self._vm} on {self._host.uri} has a snapshot named {name!r} of kind {existing.kind.value}, "
                f"not {kind.value}; delete it first or choose another name"
            )
        state = self._dom.info().state
        if state not in _CREATE_FROM:
            hint = "; start it (it resumes) or discard its saved state first" if state is VMState.SAVED else ""
            raise Conflict(f"cannot take a snapshot of {self._vm}: it is {state.value}{hint}")
        take = self._choose(kind, fallback)
        if take is SnapshotKind.MEMORY and state is not VMState.STOPPED:
            refuse_blockers(self._dom, "take a memory snapshot of")
        self._check_files(name, take)

        if check:
            predicted = SnapshotInfo(
                name=name,
                vm=self._vm,
                kind=take,
                created=int(time.time()),
                parent=self._snaps.current_name(),
                current=True,
                vm_state=state,
                quiesced=take is SnapshotKind.QUIESCED,
                description=description,
            )
            return Change("create-snapshot", target, None, predicted, check=True)
        nvram = self._snaps.nvram_files(name, take)
        if nvram is not None:
            return Change("create-snapshot", target, None, self._with_nvram(name, take, description, *nvram))
        try:
            after = self._snaps.create(name, take, description=description)
        except (Conflict, Unsupported):
            # The agent answered the ping but failed the freeze (it stopped meanwhile): libvirt took nothing then.
            # Fall back only after reading again that there is no such snapshot.
            if take is not SnapshotKind.QUIESCED or not fallback or self._snaps.get(name) is not None:
                raise
            self._check_take(SnapshotKind.MEMORY)
            refuse_blockers(self._dom, "take a memory snapshot of")
            after = self._snaps.create(name, SnapshotKind.MEMORY, description=description)
        return Change("create-snapshot", target, None, after)

    def _with_nvram(self, name: str, kind: SnapshotKind, description: str, nvram: Path, copy: Path) -> SnapshotInfo:
        """Take an external snapshot that keeps a copy of the UEFI variable store: the VM paused while the copy
        and the snapshot are taken (so both are of the same moment), resumed afterwards if it ran."""
        state = self._dom.info().state
        running = state is VMState.RUNNING
        if running:
            self._dom.pause()
        try:
            self._storage.copy_file("name", nvram, copy)
            try:
                return self._snaps.create(name, kind, description=description, nvram_copy=copy, vm_state=state)
            except BaseException:
                if self._snaps.get(name) is None:
                    self._storage.discard([copy])
                raise
        finally:
            if running:
                self._dom.resume()

    def _check_take(self, kind: SnapshotKind) -> None:
        """Refuse a snapshot of ``kind`` the host cannot take now, or whose copy of the UEFI variable store cannot
        be taken (the store is no file inside the storage roots).

        :raises Unsupported: why, and what would work instead.
        """
        self._snaps.check_create(kind)
        if (nvram := self._snaps.nvram_files("", kind)) is not None:
            try:
                self._storage.check_file("name", nvram[0])
            except InvalidSpec as exc:
                raise Unsupported(
                    f"cannot take a {kind.value} snapshot of {self._vm}: the copy of its UEFI variable store kept "
                    f"with the snapshot cannot be taken ({exc.reason}); take a disk-only snapshot"
                ) from None

    def _choose(self, kind: SnapshotKind, fallback: bool) -> SnapshotKind:
        """The kind to take for a request of ``kind``: the quiesced-to-memory fallback is decided here.

        :raises Unsupported: the kind cannot be taken, and no fallback is allowed or possible.
        """
        if kind is not SnapshotKind.QUIESCED:
            self._check_take(kind)
            return kind
        if self._dom.info().state is VMState.STOPPED:
            # Nothing runs, nothing is to freeze: the disks are consistent as they are (Hyper-V takes a Production
            # checkpoint of a VM that is off without its integration services).
            self._check_take(SnapshotKind.DISK_ONLY)
            return SnapshotKind.DISK_ONLY
        spec = self._dom.spec()
        if spec.guest_agent and AgentService.FS_FREEZE not in spec.agent_services:
            why = f"the file-system freeze service of {self._vm}'s agent is off (fs_freeze, Hyper-V's VSS)"
        elif self._snaps.agent_answers():
            try:
                self._check_take(SnapshotKind.QUIESCED)
                return SnapshotKind.QUIESCED
            except Unsupported as exc:
                if not fallback:
                    raise
                why = exc.message
        elif not spec.guest_agent:
            why = f"{self._vm} has no guest-agent channel (guest_agent: true in its spec, and qemu-guest-agent inside)"
        else:
            why = f"the guest agent of {self._vm} does not answer (the VM is not running, or the agent is not)"
        if not fallback:
            raise Unsupported(
                f"cannot take a quiesced snapshot: {why}; allow the fallback to a memory snapshot, or take a "
                "disk-only snapshot (crash-consistent)"
            )
        try:
            self._check_take(SnapshotKind.MEMORY)
        except Unsupported as exc:
            raise Unsupported(
                f"cannot take a quiesced snapshot: {why}; and the fallback to a memory snapshot is not possible "
                f"either: {exc.message}"
            ) from exc
        return SnapshotKind.MEMORY

    def _check_files(self, name: str, kind: SnapshotKind) -> None:
        """The overlays of a disk-only snapshot must lie inside the storage roots and not exist yet.

        :raises InvalidSpec: (field ``name``, which names the overlays) they do not.
        """
        for path in self._snaps.new_files(name, kind):
            try:
                self._storage.check_new("name", path)
            except InvalidSpec as exc:
                raise InvalidSpec("name", f"the overlay of snapshot {name}: {exc.reason}") from None

    # -- reverting and deleting ---------------------------------------------------------------------------------

    def _by_mode(self, fallback: bool) -> tuple[SnapshotKind, bool]:
        """The kind the VM's snapshot mode takes, and whether it may fall back to memory."""
        mode = self._dom.spec().snapshot_mode
        if mode is SnapshotMode.DISABLED:
            raise Conflict(f"snapshot_mode: snapshots of {self._vm} are disabled; configure another snapshot_mode")
        if mode is SnapshotMode.MEMORY:
            return SnapshotKind.MEMORY, fallback
        return SnapshotKind.QUIESCED, mode is SnapshotMode.QUIESCED

    def revert(self, name: str, *, check: bool = False) -> Change[VMInfo]:
        """Bring the VM back to snapshot ``name``: its disks, and its memory and power state when it has them
        (Hyper-V's Restore-VMSnapshot). Always acts (``acted`` is set): the VM's present state is discarded.

        :raises InvalidSpec: not a valid name.
        :raises NotFound: no such snapshot.
        :raises Conflict: the VM is saved (its saved state would no longer match its disks), or in a transition.
        A snapshot without memory (``disk-only``, ``quiesced``, or taken while the VM was off) leaves the VM off,
        as applying a Production checkpoint does on Hyper-V.

        :raises Unsupported: the host cannot revert to this snapshot.
        """
        check_flag("check", check)
        snap = self.get(name)
        refuse_if_migrating(self._dom, self._vm, "revert")
        before = self._dom.info()
        if before.state not in _REVERT_FROM:
            hint = "; discard its saved state first" if before.state is VMState.SAVED else ""
            raise Conflict(f"cannot revert {self._vm} to {name}: it is {before.state.value}{hint}")
        self._snaps.check_revert(name)
        by_hand = self._snaps.by_hand(name)
        if by_hand:
            self._steps.check_revert(name)
        target = f"{self._vm}/{name}"
        if check:
            with_memory = snap.kind is SnapshotKind.MEMORY and snap.vm_state in (VMState.RUNNING, VMState.PAUSED)
            state = snap.vm_state if with_memory else VMState.STOPPED
            predicted = dataclasses.replace(before, state=state, reason="from_snapshot", managed_save=False)
            return Change("revert-snapshot", target, before, predicted, check=True, acted=True)
        if by_hand:
            self._steps.revert(name)
        else:
            self._snaps.revert(name)
        after = self._dom.info()
        if after.state is VMState.RUNNING:
            GuestAgent(self._dom, self._storage).sync_clock()
        return Change("revert-snapshot", target, before, after, acted=True)

    def delete(self, name: str, *, children: bool = False, check: bool = False) -> Change[SnapshotInfo]:
        """Delete snapshot ``name``; with ``children`` its descendants too, else they move up to its parent. The
        VM's present state is kept (a disk-only snapshot's overlay is merged into the image below it). Deleting a
        snapshot that does not exist changes nothing.

        :raises InvalidSpec: not a valid name.
        :raises Unsupported: the host cannot delete it (a disk-only snapshot on top of a memory one).
        """
        name = check_name("name", name)
        check_flag("children", children)
        check_flag("check", check)
        refuse_if_migrating(self._dom, self._vm, "delete a snapshot of")
        target = f"{self._vm}/{name}"
        existing = self._snaps.get(name)
        if existing is None:
            return Change("delete-snapshot", target, None, None, check)
        self._snaps.check_delete(name, children=children)
        if not check:
            if self._snaps.by_hand(name):
                infos = self.list()
                doomed = [i.name for i in infos if i.name == name or (children and _descends(i, name, infos))]
                self._steps.delete(doomed, name, children=children)
            else:
                self._snaps.delete(name, children=children)
        return Change("delete-snapshot", target, existing, None, check)

    def rename(self, name: str, new_name: str, *, check: bool = False) -> Change[SnapshotInfo]:
        """Call snapshot ``name`` ``new_name`` from now on (Hyper-V's Rename-VMSnapshot). Its files keep their
        names; renaming to the name it has changes nothing.

        :raises InvalidSpec: not a valid name (``name``, ``new_name``).
        :raises NotFound: no snapshot ``name``.
        :raises AlreadyExists: another snapshot is called ``new_name``.
        """
        new_name = check_name("new_name", new_name)
        check_flag("check", check)
        before = self.get(name)
        target = f"{self._vm}/{name}"
        if new_name == before.name:
            return Change("rename-snapshot", target, before, before, check)
        if self._snaps.get(new_name) is not None:
            raise AlreadyExists(f"new_name: {self._vm} on {self._host.uri} has a snapshot named {new_name!r} already")
        predicted = dataclasses.replace(before, name=new_name)
        if check:
            return Change("rename-snapshot", target, before, predicted, check=True)
        self._snaps.rename(before.name, new_name)
        return Change("rename-snapshot", target, before, self.get(new_name))


def _descends(info: SnapshotInfo, root: str, infos: builtins.list[SnapshotInfo]) -> bool:
    """Whether ``info`` is snapshot ``root`` or one of its descendants."""
    parents = {i.name: i.parent for i in infos}
    seen: set[str] = set()
    name: str | None = info.name
    while name is not None and name not in seen:
        if name == root:
            return True
        seen.add(name)
        name = parents.get(name)
    return False
