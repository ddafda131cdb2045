"""Where a hot-added disk goes: its target name and, on SCSI, its controller and unit. Pure functions of a
:class:`~virtkit.models.attached.DiskLayout`; nothing here talks to a host.

Targets and units are allocated against both definitions together (running and persistent), even for a change to
one of them, so a disk attached live only can later be made persistent at the same place.
"""

from __future__ import annotations

import contextlib
import dataclasses

from virtkit.errors import Conflict, InvalidSpec
from virtkit.models.attached import AttachedDisk, DiskLayout
from virtkit.models.disk import MAX_SCSI_CONTROLLER, MAX_SCSI_UNIT, DiskBus, DiskSpec
from virtkit.models.vm import assign_targets
from virtkit.validate import shown

__all__ = [
    "MAX_SCSI_CONTROLLER",
    "MAX_SCSI_UNIT",
    "AttachPlan",
    "AttachPoint",
    "check_address",
    "next_target",
    "place",
    "plan_attach",
]


@dataclasses.dataclass(frozen=True)
class AttachPoint:
    """Where a disk will be attached, and which definitions still need its virtio-scsi controller."""

    target: str
    controller: int | None = None
    unit: int | None = None
    add_controller_live: bool = False
    add_controller_persistent: bool = False


def check_address(bus: DiskBus, controller: int | None, unit: int | None) -> None:
    """Check an explicit SCSI address (Hyper-V's ControllerNumber/ControllerLocation) before anything changes.

    :raises InvalidSpec: an address for a bus other than scsi, or out of range.
    """
    if bus is not DiskBus.SCSI:
        for field, value in (("controller", controller), ("unit", unit)):
            if value is not None:
                raise InvalidSpec(field, f"only disks on the scsi bus have a controller and unit, not {bus.value}")
        return
    for field, value, top in (("controller", controller, MAX_SCSI_CONTROLLER), ("unit", unit, MAX_SCSI_UNIT)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidSpec(field, f"must be an integer, not {shown(value)}")
        if not 0 <= value <= top:
            raise InvalidSpec(field, f"{shown(value)} is out of range 0-{top}")


def next_target(disk: DiskSpec, layout: DiskLayout) -> str:
    """``disk.target`` if it is free, else the first free name of its bus (``vdb`` after ``vda``).

    :raises Conflict: the requested target is taken by another device.
    """
    taken = {s.target: s for s in layout.slots}
    if disk.target is not None:
        slot = taken.get(disk.target)
        if slot is not None:
            used_by = f" by {slot.source}" if slot.source is not None else ""
            raise Conflict(f"target {disk.target} is already used{used_by}")
        return disk.target
    # Stand-ins holding the taken names, so assign_targets (create's rule) skips them; a name that is not of this
    # bus (hda, or sdb for virtio) is refused by DiskSpec and cannot collide anyway.
    holders: list[DiskSpec] = []
    for name in sorted(taken):
        with contextlib.suppress(InvalidSpec):
            holders.append(DiskSpec(path=disk.path, bus=disk.bus, target=name))
    return assign_targets((*holders, dataclasses.replace(disk, target=None)))[-1]


def place(
    disk: DiskSpec,
    layout: DiskLayout,
    *,
    live: bool,
    persistent: bool,
    controller: int | None = None,
    unit: int | None = None,
) -> AttachPoint:
    """The target, controller and unit for ``disk``; the lowest free ones unless given.

    On the scsi bus without ``controller``, the lowest-indexed virtio-scsi controller with a free unit is used, or
    a new one with the lowest free index. ``live`` and ``persistent`` say which definitions will get the disk, so
    which of them must get the controller too.

    :raises Conflict: the target, controller or unit is taken (or the controller is not virtio-scsi).
    """
    target = next_target(disk, layout)
    if disk.bus is not DiskBus.SCSI:
        return AttachPoint(target)
    by_index = {c.index: c for c in layout.controllers}
    used: dict[int, dict[int, str]] = {}
    for slot in layout.slots:
        if slot.controller is not None and slot.unit is not None:
            used.setdefault(slot.controller, {})[slot.unit] = slot.target
    if controller is None:
        controller = _auto_controller(layout, used, any_unit=unit is None)
    existing = by_index.get(controller)
    if existing is not None and not existing.virtio:
        raise Conflict(f"SCSI controller {controller} is not a virtio-scsi controller; name another controller")
    taken = used.get(controller, {})
    if unit is None:
        unit = next((u for u in range(MAX_SCSI_UNIT + 1) if u not in taken), None)
        if unit is None:
            raise Conflict(f"SCSI controller {controller} has no free unit")
    elif unit in taken:
        raise Conflict(f"unit {unit} of SCSI controller {controller} is already used by {taken[unit]}")
    return AttachPoint(
        target,
        controller,
        unit,
        add_controller_live=live and not (existing is not None and existing.live),
        add_controller_persistent=persistent and not (existing is not None and existing.persistent),
    )


def _auto_controller(layout: DiskLayout, used: dict[int, dict[int, str]], *, any_unit: bool) -> int:
    """The lowest-indexed virtio-scsi controller (with a free unit when ``any_unit``), else the lowest free index.

    With an explicit unit, the first virtio-scsi controller is taken as it is (a used unit is then a conflict).
    """
    for c in layout.controllers:
        if c.virtio and (not any_unit or len(used.get(c.index, {})) <= MAX_SCSI_UNIT):
            return c.index
    indexes = {c.index for c in layout.controllers}
    free = next((i for i in range(MAX_SCSI_CONTROLLER + 1) if i not in indexes), None)
    if free is None:
        raise Conflict("no SCSI controller has a free unit and no controller index is free")
    return free


@dataclasses.dataclass(frozen=True)
class AttachPlan:
    """An attach worked out: the attachment before, where the disk goes, and which definitions still lack it."""

    before: AttachedDisk | None
    placement: AttachPoint
    defined: DiskSpec
    live: bool
    persistent: bool

    def predicted(self) -> AttachedDisk:
        before = self.before
        return AttachedDisk(
            self.defined,
            self.placement.target,
            self.placement.controller,
            self.placement.unit,
            live=self.live or (before is not None and before.live),
            persistent=self.persistent or (before is not None and before.persistent),
        )


def plan_attach(
    spec: DiskSpec, layout: DiskLayout, *, live: bool, persistent: bool, controller: int | None, unit: int | None
) -> AttachPlan:
    """Where ``spec`` goes and what is still to do; nothing to do when it is attached already where asked.

    :raises Conflict: the place is taken, or the path is attached differently.
    """
    before = _attached_as(spec, layout, controller, unit)
    if before is None:
        placement = place(spec, layout, live=live, persistent=persistent, controller=controller, unit=unit)
    else:
        live, persistent = live and not before.live, persistent and not before.persistent
        if live or persistent:
            placement = _complete(before, layout, live=live, persistent=persistent)
        else:  # attached already where asked
            placement = AttachPoint(before.target, before.controller, before.unit)
    defined = dataclasses.replace(
        spec, target=placement.target, size=None, controller=placement.controller, unit=placement.unit
    )
    return AttachPlan(before, placement, defined, live, persistent)


def _attached_as(spec: DiskSpec, layout: DiskLayout, controller: int | None, unit: int | None) -> AttachedDisk | None:
    """The attachment of ``spec.path`` if it is the one asked for, ``None`` if the path is not attached.

    :raises Conflict: the path is attached differently (another target, bus, address, format or options).
    """
    found = layout.find(spec.path)
    if not found:
        return None
    have = found[0]
    same = _unplaced(spec) == _unplaced(have.disk)
    where = f"as {have.target}" + (f" (SCSI {have.controller}:{have.unit})" if have.controller is not None else "")
    if len(found) > 1 or not same or spec.target not in (None, have.target):
        raise Conflict(f"{spec.path} is already attached {where} with other settings; detach it first")
    if (controller is not None and controller != have.controller) or (unit is not None and unit != have.unit):
        raise Conflict(f"{spec.path} is already attached {where}; detach it first to move it")
    return have


def _unplaced(disk: DiskSpec) -> DiskSpec:
    """``disk`` without where it sits (target, SCSI address) or a creation size: what it is, not where."""
    return dataclasses.replace(disk, target=None, size=None, controller=None, unit=None)


def _complete(have: AttachedDisk, layout: DiskLayout, *, live: bool, persistent: bool) -> AttachPoint:
    """Where to add ``have`` to the definition that lacks it: the same target and address, and its controller.

    :raises Conflict: another device holds that target or unit in the other definition.
    """
    for slot in layout.slots:
        same_target = slot.target == have.target
        same_unit = have.controller is not None and (slot.controller, slot.unit) == (have.controller, have.unit)
        if (same_target or same_unit) and slot.source != have.disk.path:
            raise Conflict(f"{have.target} of {have.disk.path} is taken by {slot.source or 'another device'}")
    ctrl = next((c for c in layout.controllers if c.index == have.controller), None)
    return AttachPoint(
        have.target,
        have.controller,
        have.unit,
        add_controller_live=have.controller is not None and live and not (ctrl is not None and ctrl.live),
        add_controller_persistent=have.controller is not None
        and persistent
        and not (ctrl is not None and ctrl.persistent),
    )
