"""``vm.disks``: list, hot-add and hot-remove the disks of one VM, live and persistent.

Each change is idempotent, returns a :class:`~virtkit.models.change.Change` of
:class:`~virtkit.models.attached.AttachedDisk` and has a check mode. Every input is checked before anything changes;
a failed attach leaves the persistent definition as it was and removes the image it created.

Hyper-V's ``Add-VMHardDiskDrive -ControllerType SCSI -ControllerNumber N -ControllerLocation L`` is
``vm.disks.attach(disk, controller=N, unit=L)`` with ``bus: scsi`` (a virtio-scsi controller, added when missing);
``Remove-VMHardDiskDrive`` is :meth:`Disks.detach`. A pass-through disk is a ``kind: block`` disk.
"""

from __future__ import annotations

import builtins
import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from virtkit.backends.base import DiskBackend, DomainBackend, HostBackend
from virtkit.errors import Conflict, InvalidSpec, Unsupported, VirtkitError
from virtkit.models._fields import load
from virtkit.models.attached import AttachedDisk, DiskLayout, ScsiController
from virtkit.models.change import Change
from virtkit.models.disk import MAX_SCSI_CONTROLLER, DiskBus, DiskSpec
from virtkit.models.state import VMInfo, VMState
from virtkit.ops.disks.slots import AttachPlan, AttachPoint, check_address, plan_attach
from virtkit.ops.migration.inflight import refuse_if_migrating
from virtkit.ops.storage import HostStorage
from virtkit.validate import check_flag, check_path, check_timeout, shown

__all__ = ["Disks"]

#: Buses QEMU can hot-plug a disk on: virtio-blk (a PCI device) and a disk on a virtio-scsi controller.
HOTPLUG_BUSES = (DiskBus.VIRTIO, DiskBus.SCSI)

_LIVE_STATES = (VMState.RUNNING, VMState.PAUSED)
_OFF_STATES = (VMState.STOPPED, VMState.CRASHED)
_TARGET_RE = re.compile(r"(?:vd|sd|hd)[a-z]{1,3}")
_ROLLBACK_TIMEOUT = 5.0  # seconds to wait for the guest to release a controller added for a failed attach


class Disks:
    """The disks of one VM; get it as :attr:`virtkit.VM.disks`."""

    def __init__(self, host: HostBackend, dom: DomainBackend, storage: HostStorage) -> None:
        self._host = host
        self._dom = dom
        self._storage = storage

    def __repr__(self) -> str:
        return f"<Disks of {self._dom.name} on {self._host.uri}>"

    def _backend(self) -> DiskBackend:
        return self._dom.disks()

    def list(self) -> builtins.list[AttachedDisk]:
        """Every disk of the running and the persistent definition, each once, in target order.

        CD-ROMs and disks virtkit does not model (network disks) are left out.

        :raises NotFound: the VM no longer exists.
        """
        return builtins.list(self._backend().layout().disks)

    # -- attach -------------------------------------------------------------------------------------------------

    def attach(
        self,
        disk: DiskSpec | Mapping[str, Any],
        *,
        live: bool = True,
        persistent: bool = True,
        controller: int | None = None,
        unit: int | None = None,
        check: bool = False,
    ) -> Change[AttachedDisk]:
        """Attach ``disk`` to the running VM (``live``) and to its persistent definition (``persistent``).

        ``disk`` is a new image (a ``size`` and a path that does not exist yet: it is created with
        :func:`virtkit.images.create`), an existing qcow2, raw or vhd file, or a host block device (``kind:
        block``). On the ``scsi`` bus the disk goes on a virtio-scsi controller, added when missing: the lowest
        free ``unit`` of the first such ``controller``, or the ones given (Hyper-V's ControllerNumber and
        ControllerLocation). On ``virtio`` it is a virtio-blk disk at the next free ``vdX`` target. On a stopped
        VM only the persistent definition changes.

        Attaching a disk that is already attached (same path; same target, controller and unit when given)
        changes nothing, or only adds it to the definition that lacked it. If the attach fails, the persistent
        definition is left as it was and an image created for it is removed.

        :raises InvalidSpec: bad input, a path outside the storage roots (field ``disk.path``), a missing file
            without a size, an existing file of another format, an address out of range.
        :raises Unsupported: a vhdx image (convert it to qcow2 or vhd first), a bus that cannot be hot-plugged
            (ide, sata), a new image on a remote host.
        :raises Conflict: the target, controller or unit is taken, the path is attached elsewhere, the VM is in a
            state where disks cannot be changed (saved, shutting down, migrating), or ``live`` only on a stopped
            VM, or ``persistent`` on a transient one.
        :raises VirtkitError: the hypervisor refused the attach (translated); nothing was changed.
        """
        spec = disk if isinstance(disk, DiskSpec) else load(DiskSpec, disk, "disk")
        check_flag("check", check)
        refuse_if_migrating(self._dom, self._dom.name, "attach a disk to")
        if spec.bus not in HOTPLUG_BUSES:
            raise Unsupported(
                f"disk.bus: {spec.bus.value} disks cannot be hot-plugged (QEMU cannot add IDE or SATA disks to a "
                "VM); use scsi (virtio-scsi) or virtio (virtio-blk)"
            )
        check_address(spec.bus, controller, unit)
        controller = spec.controller if controller is None else controller
        unit = spec.unit if unit is None else unit
        _check_flags(live, persistent)
        create = self._storage.check_disk("disk", spec)
        info = self._dom.info()
        live = self._live_allowed("attach a disk to", info, live=live, persistent=persistent)
        if persistent and not info.persistent:
            raise Conflict(f"{self._dom.name} is transient: it has no persistent definition; pass persistent=False")
        backend = self._backend()
        plan = plan_attach(spec, backend.layout(), live=live, persistent=persistent, controller=controller, unit=unit)
        key = self._key(plan.placement.target)
        if not (plan.live or plan.persistent):
            return Change("attach", key, plan.before, plan.before, check)
        if check:
            return Change("attach", key, plan.before, plan.predicted(), check=True)
        self._apply(backend, plan, image=spec if create else None)
        return Change("attach", key, plan.before, _by_target(backend.layout(), plan.placement.target))

    def _apply(self, backend: DiskBackend, plan: AttachPlan, *, image: DiskSpec | None) -> None:
        """Create the image, add the controller, attach; on any failure undo the first two, then re-raise."""
        placement = plan.placement
        created = added = False
        try:
            if image is not None:
                self._storage.create_image(image)
                created = True
            if placement.controller is not None and (
                placement.add_controller_live or placement.add_controller_persistent
            ):
                backend.add_scsi_controller(
                    placement.controller,
                    live=placement.add_controller_live,
                    persistent=placement.add_controller_persistent,
                )
                added = True
            backend.attach(
                plan.defined,
                controller=placement.controller,
                unit=placement.unit,
                live=plan.live,
                persistent=plan.persistent,
            )
        except BaseException as exc:
            if added:
                _remove_controller(backend, placement, exc)
            if created:
                self._storage.discard([plan.defined.path])
            raise

    # -- detach -------------------------------------------------------------------------------------------------

    def detach(
        self,
        target_or_path: str,
        *,
        live: bool = True,
        persistent: bool = True,
        timeout: float = 10.0,
        check: bool = False,
    ) -> Change[AttachedDisk]:
        """Remove a disk, named by its target (``sdb``) or its path, from the running VM and/or the persistent
        definition. The image file is never deleted: remove it with :func:`virtkit.images.remove` if wanted.

        The live removal comes first: the guest is asked to release the disk and virtkit waits up to ``timeout``
        seconds for the hypervisor's device-removed event, asking again meanwhile (a guest may be slow); only then
        is the persistent definition changed. Detaching a disk that is not attached changes nothing. The SCSI
        controller stays (as on Hyper-V).

        :raises InvalidSpec: not a target name or an absolute path, a timeout that is not positive.
        :raises Conflict: the path is attached more than once (name the target), or the VM is in a state where
            disks cannot be changed (saved, shutting down, migrating).
        :raises OperationTimeout: the guest did not release the disk in time; it is still attached and the
            persistent definition is unchanged.
        :raises VirtkitError: the hypervisor refused the detach (translated).
        """
        key = _check_key(target_or_path)
        _check_flags(live, persistent)
        timeout = check_timeout("timeout", timeout)
        check_flag("check", check)
        refuse_if_migrating(self._dom, self._dom.name, "detach a disk from")
        info = self._dom.info()
        live = self._live_allowed("detach a disk from", info, live=live, persistent=True)
        backend = self._backend()
        found = backend.layout().find(key)
        if len(found) > 1:
            targets = ", ".join(d.target for d in found)
            raise Conflict(f"{key} is attached to {self._dom.name} more than once ({targets}); name the target")
        if not found:
            return Change("detach", self._key(key), None, None, check)
        before = found[0]
        do_live, do_persistent = live and before.live, persistent and before.persistent
        if not (do_live or do_persistent):
            return Change("detach", self._key(before.target), before, before, check)
        rest = dataclasses.replace(
            before, live=before.live and not do_live, persistent=before.persistent and not do_persistent
        )
        if check:
            predicted = rest if rest.live or rest.persistent else None
            return Change("detach", self._key(before.target), before, predicted, check=True)
        backend.detach(before.target, live=do_live, persistent=do_persistent, timeout=float(timeout))
        return Change("detach", self._key(before.target), before, _by_target(backend.layout(), before.target))

    # -- controllers --------------------------------------------------------------------------------------------

    def controllers(self) -> builtins.list[ScsiController]:
        """The SCSI controllers of the running and persistent definitions, by index."""
        return builtins.list(self._backend().layout().controllers)

    def add_scsi_controller(
        self, index: int | None = None, *, live: bool = True, persistent: bool = True, check: bool = False
    ) -> Change[ScsiController]:
        """Add a virtio-scsi controller (Hyper-V's Add-VMScsiController): ``index``, or the lowest free one.

        A controller that is there already, with that index, changes nothing (or is only added to the definition
        that lacks it). On a stopped VM only the persistent definition changes.

        :raises InvalidSpec: an index out of range 0-31.
        :raises Conflict: that index is an emulated (not virtio) SCSI controller, every index is taken, or the VM
            is in a state where devices cannot change.
        :raises VirtkitError: the hypervisor refused (no free PCI slot for it, for one).
        """
        if index is not None:
            check_address(DiskBus.SCSI, index, None)
        _check_flags(live, persistent)
        check_flag("check", check)
        live = self._live_allowed(
            "add a SCSI controller to", info := self._dom.info(), live=live, persistent=persistent
        )
        if persistent and not info.persistent:
            raise Conflict(f"{self._dom.name} is transient: it has no persistent definition; pass persistent=False")
        backend = self._backend()
        have = {c.index: c for c in backend.layout().controllers}
        if index is None:
            index = next((i for i in range(MAX_SCSI_CONTROLLER + 1) if i not in have), None)
            if index is None:
                raise Conflict(f"{self._dom.name} has every SCSI controller index taken")
        before = have.get(index)
        if before is not None and not before.virtio:
            raise Conflict(f"SCSI controller {index} of {self._dom.name} is not a virtio-scsi controller")
        add_live = live and not (before is not None and before.live)
        add_persistent = persistent and not (before is not None and before.persistent)
        key = f"{self._dom.name}:scsi{index}"
        if not (add_live or add_persistent):
            return Change("add_scsi_controller", key, before, before, check)
        after = ScsiController(
            index,
            True,
            live=add_live or (before is not None and before.live),
            persistent=add_persistent or (before is not None and before.persistent),
        )
        if not check:
            backend.add_scsi_controller(index, live=add_live, persistent=add_persistent)
            after = next(c for c in backend.layout().controllers if c.index == index)
        return Change("add_scsi_controller", key, before, after, check)

    # -- helpers ------------------------------------------------------------------------------------------------

    def _key(self, target: str) -> str:
        return f"{self._dom.name}:{target}"

    def _live_allowed(self, action: str, info: VMInfo, *, live: bool, persistent: bool) -> bool:
        """``live`` as it applies in the VM's state: a stopped VM has only its persistent definition.

        :raises Conflict: a state in which disks cannot change, or only ``live`` asked of a stopped VM.
        """
        if info.state in _LIVE_STATES:
            return live
        if info.state not in _OFF_STATES:
            raise Conflict(f"cannot {action} {self._dom.name}: it is {info.state.value}")
        if not persistent:
            raise Conflict(f"cannot {action} {self._dom.name} live only: it is {info.state.value}")
        return False


def _remove_controller(backend: DiskBackend, placement: AttachPoint, exc: BaseException) -> None:
    """Remove the controller added for a failed attach: from the persistent definition first (immediate), then
    from the running VM (waited for); a failure is noted on ``exc``, which is re-raised by the caller."""
    assert placement.controller is not None
    for live, persistent in ((False, placement.add_controller_persistent), (placement.add_controller_live, False)):
        if not (live or persistent):
            continue
        try:
            backend.remove_scsi_controller(
                placement.controller, live=live, persistent=persistent, timeout=_ROLLBACK_TIMEOUT
            )
        except VirtkitError as undo:
            exc.add_note(f"virtkit could not remove SCSI controller {placement.controller} it added: {undo}")


def _check_flags(live: object, persistent: object) -> None:
    for field, value in (("live", live), ("persistent", persistent)):
        check_flag(field, value)
    if not (live or persistent):
        raise InvalidSpec("persistent", "live and persistent are both false: nothing would change")


def _check_key(value: object) -> str:
    if isinstance(value, Path) or (isinstance(value, str) and value.startswith("/")):
        return str(check_path("target_or_path", value))
    if not isinstance(value, str) or not _TARGET_RE.fullmatch(value):
        raise InvalidSpec("target_or_path", f"{shown(value)} is neither a target like vdb or sdb nor an absolute path")
    return value


def _by_target(layout: DiskLayout, target: str) -> AttachedDisk | None:
    return next((d for d in layout.disks if d.target == target), None)
