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

from virtkit.backend import DomainBackend, HostBackend
from virtkit.errors import AlreadyExists, Conflict, InvalidSpec, VirtkitError
from virtkit.models.state import VMInfo, VMState
from virtkit.ops.change import Change
from virtkit.validate import check_path

__all__ = ["discard_saved_state", "managed_save", "restore", "save"]

_ACTIVE = (VMState.RUNNING, VMState.PAUSED)
_OFF = (VMState.STOPPED, VMState.CRASHED)


def _holds(host: HostBackend, path: Path, uuid: str) -> bool:
    """Whether ``path`` is a saved state of the VM with ``uuid``."""
    if host.is_local and not path.is_file():
        return False
    try:
        return host.saved_image(path).uuid == uuid
    except InvalidSpec:
        return False


def save(host: HostBackend, dom: DomainBackend, path: str | Path, *, check: bool = False) -> Change[VMInfo]:
    """Write the VM's memory and device state to ``path`` (inside the storage roots) and stop it.

    A stopped VM whose saved state ``path`` already holds changes nothing. A file at ``path`` is overwritten only
    when it is an earlier saved state of the same VM.

    :raises InvalidSpec: (field ``path``) outside the storage roots, in a missing directory, or an existing file
        that is not a saved state of this VM.
    :raises Conflict: the VM is neither running nor paused (and ``path`` holds no saved state of it).
    """
    path = check_path("path", path, host.storage_roots())
    before = dom.info()
    if before.state in _OFF and _holds(host, path, before.uuid):
        return Change("save", dom.name, before, before, check)
    if before.state not in _ACTIVE:
        raise Conflict(f"cannot save {dom.name}: it is {before.state.value}")
    if host.is_local:
        if not path.parent.is_dir():
            raise InvalidSpec("path", f"directory {path.parent} does not exist")
        if path.exists() and not _holds(host, path, before.uuid):
            raise InvalidSpec("path", f"{path} exists and is not a saved state of {dom.name}; choose another path")
    if check:
        predicted = dataclasses.replace(before, state=VMState.STOPPED, reason="saved")
        return Change("save", dom.name, before, predicted, check=True)
    dom.save(path)
    return Change("save", dom.name, before, dom.info())


def restore(host: HostBackend, path: str | Path, *, check: bool = False) -> Change[VMInfo]:
    """Start the VM saved in ``path`` from it, in the power state it was saved in: into its definition when the
    host has one, else as a transient VM. The file stays; restoring it again after the VM has run on would take its
    memory back while its disks went on, so remove it when done.

    A VM that already runs changes nothing. If the restore fails (a truncated or corrupted file), the VM is left
    as it was: not running, and not there at all when it was not defined.

    :raises InvalidSpec: (field ``path``) outside the storage roots, missing, or not a saved state.
    :raises AlreadyExists: another VM of the same name (a different UUID) is defined on the host.
    :raises Conflict: the VM is saved (managed) or in a transition.
    :raises VirtkitError: libvirt failed to restore it.
    """
    path = check_path("path", path, host.storage_roots())
    if host.is_local and not path.is_file():
        raise InvalidSpec("path", f"{path} does not exist")
    image = host.saved_image(path)
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
        dom = host.restore(path)
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
    """
    before = dom.info()
    if before.state is VMState.SAVED:
        return Change("managed-save", dom.name, before, before, check)
    if before.state not in _ACTIVE:
        raise Conflict(f"cannot save the state of {dom.name}: it is {before.state.value}")
    if not before.persistent:
        raise Conflict(f"cannot keep the saved state of {dom.name}: it is a transient VM; save it to a file instead")
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
