"""The planner: from a desired site and what the hosts hold now, the ordered steps that make them agree. Pure.

Nothing here talks to a host: :class:`Observed` is plain data that an observer fills (one bulk read per host), and
:func:`plan` compares it with a :class:`~virtkit.playbook.site.SiteSpec`. What already matches gives no step, so the
plan made after applying a plan is empty.

A running VM is changed in place where it can be: memory and vCPUs within their maxima change live, a disk added or
removed is hot-plugged (virtio and SCSI; QEMU cannot hot-plug IDE or SATA). Any other change is an ``update`` step
with ``needs_off`` set: whoever applies the plan decides whether to stop the VM for it.

Steps come in phases, and in site order within a phase: disks detached, VMs that should be absent stopped and
deleted (freeing memory and names), migrations, definitions, updates, disks attached, state changes, checkpoints,
reverts. So a VM is defined before it starts and migrated before its state changes on its new host.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from enum import StrEnum
from typing import Any

from virtkit.errors import InvalidSpec
from virtkit.models.disk import DiskBus, DiskSpec
from virtkit.models.state import VMState
from virtkit.models.vm import VMSpec
from virtkit.playbook.site import DesiredState, SiteSpec, SiteVM
from virtkit.units import format_size

__all__ = ["Action", "Observed", "ObservedVM", "Plan", "Step", "plan"]


class Action(StrEnum):
    """What a step does."""

    DEFINE = "define"
    UPDATE = "update"
    ATTACH = "attach"
    DETACH = "detach"
    START = "start"
    STOP = "stop"
    PAUSE = "pause"
    RESUME = "resume"
    SAVE = "save"
    DELETE = "delete"
    MIGRATE = "migrate"
    CHECKPOINT = "checkpoint"
    REVERT = "revert"


@dataclasses.dataclass(frozen=True)
class ObservedVM:
    """A VM as its host reports it: name, power state, spec, the names of its checkpoints and the current one."""

    name: str
    state: VMState
    spec: VMSpec
    checkpoints: tuple[str, ...] = ()
    current: str | None = None


@dataclasses.dataclass(frozen=True)
class Observed:
    """What each host of a site holds now: host name -> its VMs. A host left out holds no VMs.

    An observer that reads hosts fills the rest too: ``memory``, the memory of *all* the VMs of a host (the site's
    and others), for placement; ``eligible``, for a VM to be placed, the hosts that can run its CPU; ``desired``,
    a site VM's spec as the host it is planned on writes it (defaults filled in), so that it compares with what
    the host reports. Each falls back to what ``hosts`` and the site say.
    """

    hosts: Mapping[str, Sequence[ObservedVM]] = dataclasses.field(default_factory=dict)
    memory: Mapping[str, int] = dataclasses.field(default_factory=dict)
    eligible: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    desired: Mapping[str, VMSpec] = dataclasses.field(default_factory=dict)

    def find(self, name: str) -> list[tuple[str, ObservedVM]]:
        """Every host that holds a VM called ``name``, with that VM, by host name."""
        return [(h, vm) for h in sorted(self.hosts) for vm in self.hosts[h] if vm.name == name]

    def committed_memory(self, host: str) -> int:
        """The memory of the VMs on ``host``, in bytes: ``memory[host]`` when the observer read it, else the sum
        over the VMs observed there."""
        if host in self.memory:
            return self.memory[host]
        return sum(vm.spec.memory for vm in self.hosts.get(host, ()))


@dataclasses.dataclass(frozen=True)
class Step:
    """One thing to do to one VM on one host. ``needs_off``: the step changes what only a VM that is off can change.

    ``detail`` says what in words (``memory 1GiB -> 2GiB (live)``, ``h1 -> h2`` for a migration).
    """

    action: Action
    host: str
    vm: str
    detail: str = ""
    needs_off: bool = False
    #: What applying the step needs (not compared: two steps are equal when they say the same): the VM's desired
    #: spec (define, update, attach, detach), the disk (attach, detach), the field an update changes (empty for a
    #: disk's), the host a migration leaves, and the state the VM was observed in.
    spec: VMSpec | None = dataclasses.field(default=None, compare=False, repr=False)
    disk: DiskSpec | None = dataclasses.field(default=None, compare=False, repr=False)
    field: str = dataclasses.field(default="", compare=False, repr=False)
    source: str = dataclasses.field(default="", compare=False, repr=False)
    observed: VMState | None = dataclasses.field(default=None, compare=False, repr=False)
    #: The step's phase (see the module's docstring): steps of one phase may run at once on different hosts.
    phase: int = dataclasses.field(default=0, compare=False, repr=False)
    #: A stop that powers the VM off at once, without asking the guest (it is about to be deleted).
    hard: bool = dataclasses.field(default=False, compare=False, repr=False)


@dataclasses.dataclass(frozen=True)
class Plan:
    """The ordered steps that bring the hosts to the site; empty when they already agree."""

    steps: tuple[Step, ...] = ()

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def __bool__(self) -> bool:
        return bool(self.steps)


#: The order of phases (see the module's docstring); a step's phase is where it is created, not its action alone.
_DETACH, _STOP_ABSENT, _DELETE, _MIGRATE, _DEFINE, _UPDATE, _ATTACH, _STATE, _CHECKPOINT, _REVERT = range(10)

#: Buses QEMU can hot-plug a disk on.
_HOTPLUG_BUSES = frozenset({DiskBus.VIRTIO, DiskBus.SCSI})

#: Each ceiling, and what it comes to when it is left out (the value it bounds).
_CEILINGS = {"max_memory": "effective_max_memory", "max_vcpus": "effective_max_vcpus"}

#: Observed states in which a VM is off: its definition may change without a restart.
_OFF = frozenset({VMState.STOPPED, VMState.SAVED})

#: Observed states in which a VM's QEMU process takes live changes and hot-plugs.
_LIVE = frozenset({VMState.RUNNING, VMState.PAUSED})


def plan(site: SiteSpec, observed: Observed) -> Plan:
    """The steps that bring the hosts in ``observed`` to ``site``; what already matches gives none.

    A VM the site wants absent is deleted wherever it is observed. A VM observed on several hosts is taken from
    the one the site names, else from the first by host name. A VM without a host is placed by its ``placement``
    when it does not exist yet; one that exists stays where it is.
    """
    phased: list[tuple[int, int, Step]] = []
    committed = {h.name: observed.committed_memory(h.name) for h in site.hosts}
    for i, vm in enumerate(site.vms):
        for phase, step in _vm_steps(vm, observed, committed, f"vms[{i}]"):
            phased.append((phase, len(phased), step))
    ordered = sorted(phased, key=lambda p: (p[0], p[1]))
    return Plan(tuple(dataclasses.replace(step, phase=phase) for phase, _, step in ordered))


def _vm_steps(vm: SiteVM, observed: Observed, committed: dict[str, int], where: str) -> list[tuple[int, Step]]:
    found = observed.find(vm.name)
    if vm.state is DesiredState.ABSENT:
        steps: list[tuple[int, Step]] = []
        for host, there in found:
            if there.state not in _OFF:
                stop = Step(Action.STOP, host, vm.name, "hard, before deleting it", observed=there.state, hard=True)
                steps.append((_STOP_ABSENT, stop))
            steps.append((_DELETE, Step(Action.DELETE, host, vm.name, observed=there.state)))
        return steps
    desired = observed.desired.get(vm.name, vm.vm_spec)
    current = next(((h, v) for h, v in found if h == vm.host), found[0] if found else None)
    if current is None:
        host = vm.host or _place(vm.name, observed, committed, where)
        committed[host] = committed.get(host, 0) + desired.memory
        steps = [(_DEFINE, Step(Action.DEFINE, host, vm.name, _summary(desired), spec=desired))]
        steps += [(_STATE, s) for s in _state_steps(host, vm.name, VMState.STOPPED, vm.state)]
        steps += [(_CHECKPOINT, Step(Action.CHECKPOINT, host, vm.name, c)) for c in vm.checkpoints]
        if vm.revert_to is not None and vm.revert_to != (vm.checkpoints[-1] if vm.checkpoints else None):
            steps.append((_REVERT, Step(Action.REVERT, host, vm.name, vm.revert_to)))
        return steps
    source, there = current
    host = vm.host or source
    steps = []
    if host != source:
        steps.append(
            (_MIGRATE, Step(Action.MIGRATE, host, vm.name, f"{source} -> {host}", source=source, observed=there.state))
        )
    steps += _spec_steps(host, source, vm.name, desired, there)
    steps += [(_STATE, s) for s in _state_steps(host, vm.name, there.state, vm.state)]
    steps += [
        (_CHECKPOINT, Step(Action.CHECKPOINT, host, vm.name, c)) for c in vm.checkpoints if c not in there.checkpoints
    ]
    missing = [c for c in vm.checkpoints if c not in there.checkpoints]
    at = missing[-1] if missing else there.current  # taking a checkpoint makes it the current one
    if vm.revert_to is not None and vm.revert_to != at:
        steps.append((_REVERT, Step(Action.REVERT, host, vm.name, vm.revert_to)))
    return steps


def _place(name: str, observed: Observed, committed: dict[str, int], where: str) -> str:
    """The host with the least committed memory among those that can run the VM (all, if the observer did not
    say); ties go to the first by name."""
    hosts = [h for h in committed if name not in observed.eligible or h in observed.eligible[name]]
    if not hosts:
        raise InvalidSpec(f"{where}.placement", f"no host of this site can run the CPU of {name}")
    return min(hosts, key=lambda h: (committed[h], h))


def _summary(spec: VMSpec) -> str:
    disks = f", {len(spec.disks)} disk{'s' if len(spec.disks) != 1 else ''}" if spec.disks else ""
    return f"{spec.vcpus} vCPU{'s' if spec.vcpus != 1 else ''}, {format_size(spec.memory)}{disks}"


def _state_steps(host: str, name: str, now: VMState, want: DesiredState) -> list[Step]:
    """The power steps from ``now`` to ``want``: a saved VM starts from its saved memory, a paused one resumes (or
    is saved as it is)."""
    if want is DesiredState.STOPPED:
        if now is VMState.STOPPED:
            return []
        return [Step(Action.STOP, host, name, "discard its saved memory" if now is VMState.SAVED else "")]
    if now is VMState.PAUSED:
        first = [] if want in (DesiredState.PAUSED, DesiredState.SAVED) else [Step(Action.RESUME, host, name)]
    elif now is VMState.RUNNING:
        first = []
    elif now in _OFF:
        first = [] if want is DesiredState.SAVED and now is VMState.SAVED else [Step(Action.START, host, name)]
    else:  # crashed, shutting down, suspended by the guest, migrating, unknown: let the apply make it run
        first = [Step(Action.START, host, name, f"it is {now.value}")]
    if want is DesiredState.PAUSED and now is not VMState.PAUSED:
        return [*first, Step(Action.PAUSE, host, name)]
    if want is DesiredState.SAVED and now is not VMState.SAVED:
        return [*first, Step(Action.SAVE, host, name)]
    return first


def _spec_steps(host: str, source: str, name: str, desired: VMSpec, there: ObservedVM) -> list[tuple[int, Step]]:
    """Updates, attaches and detaches that make ``there.spec`` what ``desired`` asks; what matches gives none.
    Detaches run on ``source``, before a migration (less to move); the rest on ``host``, after it."""
    actual = there.spec
    desired = desired.adopt_generated(actual)
    steps: list[tuple[int, Step]] = []
    for f in dataclasses.fields(VMSpec):
        if f.name in ("name", "disks"):
            continue
        want, have = getattr(desired, f.name), getattr(actual, f.name)
        if f.name in _CEILINGS:  # a ceiling left out is the value itself: compare what they come to
            want, have = getattr(desired, _CEILINGS[f.name]), getattr(actual, _CEILINGS[f.name])
        if want == have:
            continue
        mark, off = _how(there.state, "live", live=_live(f.name, desired, actual))
        detail = f"{f.name} {_shown(f.name, have)} -> {_shown(f.name, want)}{mark}"
        step = Step(Action.UPDATE, host, name, detail, off, spec=desired, field=f.name, observed=there.state)
        steps.append((_UPDATE, step))
    steps += _disk_steps(host, source, name, desired, actual.disks, state=there.state)
    return steps


def _how(state: VMState, how: str, *, live: bool) -> tuple[str, bool]:
    """How a change is made to a VM in ``state``, for the detail, and whether it needs the VM off.

    A VM that is stopped takes any change; one that runs (or is paused) takes a ``live`` one as it is; any other
    change, and any change to a saved VM (its saved memory would no longer fit its definition) or to one crashed,
    needs the VM off.
    """
    if state is VMState.STOPPED:
        return "", False
    if live and state in _LIVE:
        return f" ({how})", False
    return " (needs the VM off)", True


def _live(field: str, desired: VMSpec, actual: VMSpec) -> bool:
    """Whether ``field`` changes on a running VM: memory and vCPUs within the maxima the VM runs with."""
    if field == "memory":
        return desired.effective_max_memory == actual.effective_max_memory
    if field == "vcpus":
        return desired.effective_max_vcpus == actual.effective_max_vcpus
    return False


def _shown(field: str, value: Any) -> str:
    if field in ("memory", "max_memory") and isinstance(value, int):
        return format_size(value)
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, tuple):
        return "[" + ", ".join(_shown(field, v) for v in value) + "]"
    return "none" if value is None else str(value)


def _disk_steps(
    host: str, source: str, name: str, spec: VMSpec, actual: tuple[DiskSpec, ...], *, state: VMState
) -> list[tuple[int, Step]]:
    """Disks are matched by path: one only in the site is attached, one only on the host detached, one on both
    whose other fields differ is an update that needs the VM off. ``size`` says how large a new image is made; an
    existing disk is not resized here, so it is not compared."""
    desired = spec.disks
    have = {d.path: d for d in actual}
    want = {d.path: d for d in desired}
    steps: list[tuple[int, Step]] = []
    for d in actual:
        if d.path not in want:
            mark, off = _how(state, "hot-plug", live=d.bus in _HOTPLUG_BUSES)
            step = Step(Action.DETACH, source, name, _disk(d) + mark, off, spec=spec, disk=d, observed=state)
            steps.append((_DETACH, step))
    for d in desired:
        old = have.get(d.path)
        if old is None:
            mark, off = _how(state, "hot-plug", live=d.bus in _HOTPLUG_BUSES)
            step = Step(Action.ATTACH, host, name, _disk(d) + mark, off, spec=spec, disk=d, observed=state)
            steps.append((_ATTACH, step))
            continue
        new = dataclasses.replace(
            d,
            target=old.target if d.target is None else d.target,
            controller=old.controller if d.controller is None else d.controller,
            unit=old.unit if d.unit is None else d.unit,
            size=old.size,
        )
        if new != old:
            fields = [f.name for f in dataclasses.fields(DiskSpec) if getattr(new, f.name) != getattr(old, f.name)]
            mark, off = _how(state, "live", live=False)
            detail = f"disk {d.path}: {', '.join(fields)}{mark}"
            steps.append((_UPDATE, Step(Action.UPDATE, host, name, detail, off, spec=spec, disk=d, observed=state)))
    return steps


def _disk(d: DiskSpec) -> str:
    where = f" as {d.target}" if d.target else ""
    return f"disk {d.path}{where} on {d.bus.value}"
