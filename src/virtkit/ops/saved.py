"""Saved state: a VM's memory written out and the VM stopped, to be resumed later where it was.

Two forms, as in Hyper-V and libvirt: :func:`save` writes to a file the caller names and :func:`restore` starts the
VM from it (also how Quick Migration moves a VM); :func:`managed_save` keeps the state where the host keeps it, the
VM reads ``saved`` (Hyper-V's Saved state) and its next start resumes it, unless :func:`discard_saved_state`
(Remove-VMSavedState) dropped it. These functions are reached through :class:`virtkit.VM` and :class:`virtkit.Host`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

from virtkit.backends.base import DomainBackend, HostBackend
from virtkit.errors import AlreadyExists, Conflict, InvalidSpec, VirtkitError
from virtkit.models.change import Change
from virtkit.models.state import VMInfo, VMState
from virtkit.ops.blockers import refuse_blockers
from virtkit.ops.storage import HostStorage
from virtkit.storage import Entry

__all__ = ["discard_saved_state", "managed_save", "restore", "save"]

_ACTIVE = (VMState.RUNNING, VMState.PAUSED)
_OFF = (VMState.STOPPED, VMState.CRASHED)


def _holds(host: HostBackend, entry: Entry, uuid: str) -> bool:
    """Whether the regular file ``entry`` is a saved state of the VM with ``uuid``."""
    if not entry.exists:
        return False
    try:
        return host.saved_image(entry.real).uuid == uuid
    except InvalidSpec:
        return False


def save(
    host: HostBackend, dom: DomainBackend, storage: HostStorage, path: str | Path, *, check: bool = False
) -> Change[VMInfo]:
    """Write the VM's memory and device state to ``path`` (inside the storage roots) and stop it.

    A stopped VM whose saved state ``path`` already holds changes nothing. A file at ``path`` is replaced only when
    it is an earlier saved state of the same VM, and only once the new one is complete: a save that fails leaves
    the file as it was (the state is written beside it first).

    :raises InvalidSpec: (field ``path``) outside the storage roots, in a missing directory, or an existing file
        that is not a saved state of this VM.
    :raises Conflict: the VM is neither running nor paused (and ``path`` holds no saved state of it).
    :raises Unsupported: the VM has a disk that cannot be saved (a VHD).
    """
    before = dom.info()
    target = storage.check_new(
        "path", path, replace=lambda e: _holds(host, e, before.uuid), what=f"a saved state of {dom.name}"
    )
    if before.state in _OFF and _holds(host, target, before.uuid):
        return Change("save", dom.name, before, before, check)
    if before.state not in _ACTIVE:
        raise Conflict(f"cannot save {dom.name}: it is {before.state.value}")
    refuse_blockers(dom, "save")
    if check:
        predicted = dataclasses.replace(before, state=VMState.STOPPED, reason="saved")
        return Change("save", dom.name, before, predicted, check=True)
    with storage.replacing("path", target) as tmp:
        dom.save(tmp)
    return Change("save", dom.name, before, dom.info())


def restore(host: HostBackend, storage: HostStorage, path: str | Path, *, check: bool = False) -> Change[VMInfo]:
    """Start the VM saved in ``path`` from it, in the power state it was saved in: into its definition when the
    host has one, else as a transient VM. The file stays; restoring it again after the VM has run on would take its
    memory back while its disks went on, so remove it when done.

    A VM that already runs changes nothing. If the restore fails (a truncated or corrupted file), the VM is left
    as it was: not running, and not there at all when it was not defined.

    :raises InvalidSpec: (field ``path``) outside the storage roots, missing, or not a saved state; or the VM it
        holds names files outside the storage roots, or of the wrong kind (``path.disks[0].path``...): a saved
        state is checked like a spec before anything runs from it.
    :raises AlreadyExists: another VM of the same name (a different UUID) is defined on the host.
    :raises Conflict: the VM is saved (managed) or in a transition.
    :raises VirtkitError: libvirt failed to restore it.
    """
    entry = storage.check_file("path", path)
    image = host.saved_image(entry.real)
    storage.check_saved(image)
    existing = host.lookup(image.name)
    before = existing.info() if existing is not None else None
    if before is not None:
        if before.uuid != image.uuid:
            raise AlreadyExists(
                f"{path} holds VM {image.name} ({image.uuid}), but {host.uri} has another VM of that name "
                f"({before.uuid})"
            )
        if before.state in _ACTIVE:
            return Change("restore", image.name, before, before, check)
        if before.state not in _OFF:
            hint = "; start it, or discard its saved state first" if before.state is VMState.SAVED else ""
            raise Conflict(f"cannot restore {image.name} from {path}: it is {before.state.value}{hint}")
    if check:
        predicted = VMInfo(
            name=image.name,
            uuid=image.uuid,
            state=VMState.RUNNING,
            reason="restored",
            accel=image.accel,
            vcpus=image.vcpus,
            memory=image.memory,
            max_memory=image.max_memory,
            persistent=before.persistent if before is not None else False,
            autostart=before.autostart if before is not None else False,
            managed_save=False,
            host=host.uri,
        )
        return Change("restore", image.name, before, predicted, check=True)
    try:
        dom = host.restore(entry.real)
    except VirtkitError:
        _undo_restore(host, image.name)
        raise
    return Change("restore", image.name, before, dom.info())


def _undo_restore(host: HostBackend, name: str) -> None:
    """After a failed restore: stop whatever QEMU the attempt left (a transient VM then disappears with it)."""
    with contextlib.suppress(VirtkitError):  # the restore's own error is the one to report
        dom = host.lookup(name)
        if dom is not None and dom.info().state not in (*_OFF, VMState.SAVED):
            dom.destroy()


def managed_save(dom: DomainBackend, *, check: bool = False) -> Change[VMInfo]:
    """Save the VM's state where the host keeps it and stop it; it then reads ``saved`` and its next start
    resumes it (Hyper-V's Save-VM). A VM already saved changes nothing.

    :raises Conflict: the VM is neither running nor paused, or it is transient (only a defined VM has a place
        for its saved state: use :func:`save` with a path).
    :raises Unsupported: the VM has a disk that cannot be saved (a VHD).
    """
    before = dom.info()
    if before.state is VMState.SAVED:
        return Change("managed-save", dom.name, before, before, check)
    if before.state not in _ACTIVE:
        raise Conflict(f"cannot save the state of {dom.name}: it is {before.state.value}")
    if not before.persistent:
        raise Conflict(f"cannot keep the saved state of {dom.name}: it is a transient VM; save it to a file instead")
    refuse_blockers(dom, "save the state of")
    if check:
        predicted = dataclasses.replace(before, state=VMState.SAVED, reason="saved", managed_save=True)
        return Change("managed-save", dom.name, before, predicted, check=True)
    dom.managed_save()
    return Change("managed-save", dom.name, before, dom.info())


def discard_saved_state(dom: DomainBackend, *, check: bool = False) -> Change[VMInfo]:
    """Drop the VM's managed saved state; its next start boots afresh (Hyper-V's Remove-VMSavedState). A VM
    without one changes nothing."""
    before = dom.info()
    if not before.managed_save:
        return Change("discard-saved-state", dom.name, before, before, check)
    if check:
        predicted = dataclasses.replace(before, state=VMState.STOPPED, managed_save=False)
        return Change("discard-saved-state", dom.name, before, predicted, check=True)
    dom.discard_saved_state()
    return Change("discard-saved-state", dom.name, before, dom.info())
