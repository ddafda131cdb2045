"""The drive cmdlets: Add-VMHardDiskDrive, Remove-VMHardDiskDrive, Get-VMHardDiskDrive and Add-VMScsiController.

SCSI drives are hot-added to and removed from a running VM, as on Hyper-V (a virtio-scsi controller, Hyper-V's
synthetic SCSI controller); IDE drives change only while the VM is off, as on Hyper-V. A VHD or VHDX is imported
first (:mod:`virtkit.hyperv.imports`). Each call takes ``what_if`` (check mode).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

from virtkit.errors import Conflict, InvalidSpec
from virtkit.hyperv.imports import importing, plan_imports
from virtkit.hyperv.results import VMHardDiskDrive
from virtkit.hyperv.spec import HardDrive, disk_of, drive_of, place_drives
from virtkit.hyperv.vocabulary import ControllerType
from virtkit.hyperv.words import in_hyperv_words
from virtkit.models._fields import Spec, normalize, spec_field
from virtkit.models.attached import AttachedDisk, ScsiController
from virtkit.models.change import Change
from virtkit.models.disk import MAX_SCSI_CONTROLLER, MAX_SCSI_UNIT, DiskBus, DiskFormat
from virtkit.models.state import VMState
from virtkit.models.vm import Machine, VMSpec
from virtkit.ops.args import check_callbacks
from virtkit.ops.host import Host
from virtkit.ops.vm import VM
from virtkit.validate import check_flag, check_name, check_path, check_timeout

__all__ = [
    "Location",
    "add_vm_hard_disk_drive",
    "add_vm_scsi_controller",
    "get_vm_hard_disk_drive",
    "remove_vm_hard_disk_drive",
]


def get_vm_hard_disk_drive(host: Host, vm_name: str) -> list[VMHardDiskDrive]:
    """Get-VMHardDiskDrive: the VM's drives, in its running and its persistent definition.

    :raises NotFound: no VM of that name.
    """
    vm = _vm(host, vm_name)
    return [_hard_disk_drive(vm.name, d) for d in vm.disks.list()]


def add_vm_hard_disk_drive(
    host: Host,
    vm_name: str,
    path: Path | str,
    *,
    controller_type: ControllerType | str | None = None,
    controller_number: int | None = None,
    controller_location: int | None = None,
    progress: Callable[[str, float], None] | None = None,
    what_if: bool = False,
) -> Change[AttachedDisk] | Change[VMSpec]:
    """Add-VMHardDiskDrive: attach the drive at ``path``; SCSI on a Generation 2 VM, IDE on Generation 1 unless
    ``controller_type`` says otherwise; the first free location unless given.

    A SCSI (or VirtIO) drive goes to the running VM and its persistent definition at once; an IDE drive only to a
    VM that is off (the change is then to its definition, and the result a ``Change`` of its spec). Adding a drive
    that is attached already, where asked, changes nothing.

    :raises InvalidSpec: a bad value (named as Hyper-V names it: ``Path``, ``ControllerLocation``...), a file
        outside the storage roots, a ``.vhdx`` that is no VHDX, IDE on Generation 2.
    :raises Conflict: the location is taken, IDE on a running VM, the VM is in a state where drives cannot change.
    """
    check_flag("what_if", what_if)
    check_callbacks(progress=progress)
    vm = _vm(host, vm_name)
    spec = vm.spec()
    generation = 2 if spec.machine is Machine.Q35 else 1
    asked = HardDrive.from_dict(
        {
            "Path": path,
            "ControllerType": controller_type,
            "ControllerNumber": controller_number,
            "ControllerLocation": controller_location,
        }
    )
    kind = asked.controller_type or (ControllerType.SCSI if generation == 2 else ControllerType.IDE)
    if kind is ControllerType.IDE:
        drive = dataclasses.replace(asked, controller_type=kind)
        return _add_ide(host, vm, spec, drive, generation=generation, what_if=what_if, progress=progress)
    drive = dataclasses.replace(asked, controller_type=kind)
    plan = plan_imports(host, _imports(drive))
    disk = disk_of(drive)
    with in_hyperv_words():  # the neutral call names disk.path; the cmdlet's parameter is Path
        # Every check of the attach first (a location taken, a VM that cannot take disks now), before any copy.
        pending = {p.target: p.size for p in plan if not p.exists}
        planned = vm.disks.attach(dataclasses.replace(disk, size=pending.get(disk.path)), check=True)
        if what_if:
            return planned
        with importing(host, plan, progress):
            return vm.disks.attach(disk)


def remove_vm_hard_disk_drive(
    host: Host,
    vm_name: str,
    *,
    controller_type: ControllerType | str | None = None,
    controller_number: int | None = None,
    controller_location: int | None = None,
    path: Path | str | None = None,
    timeout: float = 10.0,
    what_if: bool = False,
) -> Change[AttachedDisk] | Change[VMSpec]:
    """Remove-VMHardDiskDrive: detach the drive at that controller location, or the drive of ``path`` (VirtIO and
    SATA drives have no location). The file stays. Removing a drive that is not there changes nothing.

    :raises InvalidSpec: a bad value; neither a full location nor a path.
    :raises Conflict: an IDE drive of a running VM (as on Hyper-V), or a state where drives cannot change.
    :raises OperationTimeout: the guest did not release a SCSI drive within ``timeout`` seconds; it stays.
    """
    check_flag("what_if", what_if)
    timeout = check_timeout("timeout", timeout)
    at = Location.from_dict(
        {
            "ControllerType": controller_type,
            "ControllerNumber": controller_number,
            "ControllerLocation": controller_location,
        }
    )
    wanted = None if path is None else check_path("path", path)
    if wanted is None and (
        at.controller_type is None or at.controller_number is None or at.controller_location is None
    ):
        raise InvalidSpec(
            "ControllerLocation",
            "name the drive by ControllerType, ControllerNumber and ControllerLocation, or by path",
        )
    vm = _vm(host, vm_name)
    drives = get_vm_hard_disk_drive(host, vm.name)
    if wanted is not None:
        # The path given, or the import a VHD or VHDX given at Add-VMHardDiskDrive runs from.
        imported = HardDrive(path=wanted).runs_from if wanted.suffix.lower() in (".vhd", ".vhdx") else wanted
        found = next((d for d in drives if d.path in (wanted, imported)), None)
        key = f"{vm.name}:{wanted}"
    else:
        where = (at.controller_type, at.controller_number, at.controller_location)
        found = next(
            (d for d in drives if (d.controller_type, d.controller_number, d.controller_location) == where), None
        )
        key = f"{vm.name}:{at.controller_type}:{at.controller_number}:{at.controller_location}"
    if found is None:
        return Change("detach", key, None, None, what_if)
    if found.controller_type is ControllerType.IDE:
        spec = vm.spec()
        _must_be_off(vm, "remove an IDE drive from")
        kept = tuple(d for d in spec.disks if d.target != found.target)
        return vm.update(dataclasses.replace(spec, disks=kept), check=what_if)
    return vm.disks.detach(found.target, timeout=timeout, check=what_if)


@dataclasses.dataclass(frozen=True)
class Location(Spec):
    """A drive's place, as Remove-VMHardDiskDrive names it."""

    controller_type: ControllerType | None = spec_field("IDE, SCSI, VirtIO or SATA", default=None, key="ControllerType")
    controller_number: int | None = spec_field(
        "the controller", default=None, minimum=0, maximum=MAX_SCSI_CONTROLLER, key="ControllerNumber"
    )
    controller_location: int | None = spec_field(
        "the location", default=None, minimum=0, maximum=MAX_SCSI_UNIT, key="ControllerLocation"
    )

    def __post_init__(self) -> None:
        normalize(self)


def add_vm_scsi_controller(host: Host, vm_name: str, *, what_if: bool = False) -> Change[ScsiController]:
    """Add-VMScsiController: add the next SCSI controller (a virtio-scsi controller), live when the VM runs."""
    check_flag("what_if", what_if)
    return _vm(host, vm_name).disks.add_scsi_controller(check=what_if)


# -- helpers ------------------------------------------------------------------------------------------------------


def _vm(host: Host, name: object) -> VM:
    return host.get(check_name("vm_name", name))


def _imports(drive: HardDrive) -> list[tuple[str, Path, Path, DiskFormat]]:
    if drive.runs_from == drive.path:
        return []
    return [("Path", drive.path, drive.runs_from, drive.image_format)]


def _must_be_off(vm: VM, action: str) -> None:
    state = vm.state
    if state is not VMState.STOPPED:
        raise Conflict(
            f"cannot {action} {vm.name}: it is {state.value}; IDE drives change only while the VM is off (as on "
            "Hyper-V); use a SCSI drive to change a running VM"
        )


def _add_ide(
    host: Host,
    vm: VM,
    spec: VMSpec,
    drive: HardDrive,
    *,
    generation: int,
    what_if: bool,
    progress: Callable[[str, float], None] | None,
) -> Change[VMSpec]:
    existing = tuple(drive_of(d) for d in spec.disks)
    same = next((i for i, d in enumerate(existing) if d.runs_from == drive.runs_from), None)
    placed = _placed(vm, generation, existing, drive) if same is None else existing[same]
    if same is not None and (
        placed.controller_type is not ControllerType.IDE
        or (drive.controller_number not in (None, placed.controller_number))
        or (drive.controller_location not in (None, placed.controller_location))
    ):
        raise Conflict(f"{drive.path} is attached to {vm.name} elsewhere already; remove it first")
    if same is not None:
        return Change("update", vm.name, spec, spec, what_if)
    taken = {(d.controller_number, d.controller_location) for d in existing if d.controller_type is ControllerType.IDE}
    if (placed.controller_number, placed.controller_location) in taken and drive.controller_number is not None:
        raise Conflict(
            f"IDE {placed.controller_number}:{placed.controller_location} of {vm.name} holds another drive already"
        )
    _must_be_off(vm, "add an IDE drive to")
    plan = plan_imports(host, _imports(placed))
    disk = disk_of(placed)
    if what_if:
        pending = {p.target: p.size for p in plan if not p.exists}
        disk = dataclasses.replace(disk, size=pending.get(disk.path))
        return vm.update(dataclasses.replace(spec, disks=(*spec.disks, disk)), check=True)
    with importing(host, plan, progress):
        return vm.update(dataclasses.replace(spec, disks=(*spec.disks, disk)))


def _placed(vm: VM, generation: int, existing: tuple[HardDrive, ...], drive: HardDrive) -> HardDrive:
    """``drive`` placed after the VM's ``existing`` drives; errors name this call's parameters, not a spec's list."""
    prefix = f"HardDrives[{len(existing)}]."
    try:
        return place_drives(generation, (*existing, drive))[-1]
    except InvalidSpec as exc:
        taken = re.search(r"holds HardDrives\[(\d+)\] already", exc.reason)
        if taken is not None:
            other = existing[int(taken.group(1))]
            where = exc.reason[: taken.start()].strip()
            raise Conflict(f"{where} of {vm.name} holds {other.path} already; remove it first") from None
        raise InvalidSpec(exc.field.removeprefix(prefix), exc.reason) from None


def _hard_disk_drive(vm_name: str, attached: AttachedDisk) -> VMHardDiskDrive:
    drive = drive_of(dataclasses.replace(attached.disk, target=attached.target))
    kind = drive.controller_type or ControllerType.SCSI
    return VMHardDiskDrive(
        vm_name=vm_name,
        path=attached.disk.path,
        controller_type=kind,
        controller_number=attached.controller if attached.disk.bus is DiskBus.SCSI else drive.controller_number,
        controller_location=attached.unit if attached.disk.bus is DiskBus.SCSI else drive.controller_location,
        target=attached.target,
        live=attached.live,
        persistent=attached.persistent,
    )
