"""The VM cmdlets: New-VM, Get-VM, Start-VM, Stop-VM, Suspend-VM, Resume-VM, Restart-VM, Save-VM, Remove-VM and
Set-VMFirmware, as functions of a :class:`~virtkit.Host` and the VM's name.

Each returns what the neutral call returns (a :class:`~virtkit.Change`), and each takes ``what_if``: Hyper-V's
``-WhatIf``, virtkit's check mode, which runs every check of the real call and changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from enum import StrEnum
from types import EllipsisType
from typing import Any, TypeVar, overload

from virtkit.errors import GuestAgentUnavailable, InvalidSpec, Unsupported
from virtkit.hyperv.imports import importing, plan_imports
from virtkit.hyperv.results import VirtualMachine
from virtkit.hyperv.spec import HyperVSpec, check_template
from virtkit.hyperv.vocabulary import (
    AUTOMATIC_STOP_ACTION,
    CHECKPOINT_TYPE,
    AutomaticStopAction,
    CheckpointType,
    SecureBootTemplate,
    vm_state,
)
from virtkit.hyperv.words import in_hyperv_words
from virtkit.models.change import Change
from virtkit.models.state import VMInfo, VMState
from virtkit.models.vm import AgentService, Firmware, VMSpec
from virtkit.ops.args import check_callbacks
from virtkit.ops.host import Host
from virtkit.ops.vm import VM
from virtkit.validate import check_flag, check_name, shown

__all__ = [
    "RestartType",
    "get_vm",
    "new_vm",
    "remove_vm",
    "restart_vm",
    "resume_vm",
    "save_vm",
    "set_vm",
    "set_vm_firmware",
    "start_vm",
    "stop_vm",
    "suspend_vm",
]

_E = TypeVar("_E", bound=StrEnum)


class RestartType(StrEnum):
    """Restart-VM -Type: ``Reset`` the virtual hardware at once (Hyper-V's default), or ask the guest to
    ``Reboot``."""

    RESET = "Reset"
    REBOOT = "Reboot"


def new_vm(
    host: Host,
    spec: HyperVSpec | Mapping[str, Any],
    *,
    progress: Callable[[str, float], None] | None = None,
    what_if: bool = False,
) -> Change[VMInfo]:
    """New-VM: define a VM from a Hyper-V spec (off, as New-VM leaves it).

    VHD and VHDX drives are imported first (see :mod:`virtkit.hyperv.imports`), reporting each copy's percentage
    to ``progress(field, percent)``. Idempotent as :meth:`Host.create`; all-or-nothing: on failure no VM and no
    import made by this call are left.

    :raises InvalidSpec: a bad field (named as Hyper-V names it), a file outside the storage roots, a ``.vhdx``
        that is no VHDX.
    :raises Unsupported: a value Hyper-V takes that KVM cannot honour.
    :raises AlreadyExists: a VM of that name exists with another definition.
    """
    check_flag("what_if", what_if)
    check_callbacks(progress=progress)
    hv = _hyperv_spec(spec)
    neutral = hv.to_spec()
    drives = [(f"HardDrives[{i}].Path", d.path, d.runs_from, d.image_format) for i, d in enumerate(hv.hard_drives)]
    plan = plan_imports(host, [d for d in drives if d[2] != d[1]])
    # Every check of the real call, with each import still to make standing as a new image of its size: made
    # before any copy, so that a name taken by another VM is found without copying a disk first.
    pending = {p.target: p.size for p in plan if not p.exists}
    disks = tuple(dataclasses.replace(d, size=pending.get(d.path)) for d in neutral.disks)
    with in_hyperv_words():
        planned = host.create(dataclasses.replace(neutral, disks=disks), check=True)
    if what_if:
        return planned
    with importing(host, plan, progress), in_hyperv_words():
        return host.create(neutral)


@overload
def get_vm(host: Host, name: str) -> VirtualMachine: ...
@overload
def get_vm(host: Host, name: None = None) -> list[VirtualMachine]: ...
def get_vm(host: Host, name: str | None = None) -> VirtualMachine | list[VirtualMachine]:
    """Get-VM: the VM ``name``, or every VM of the host, in Hyper-V terms.

    :raises NotFound: no VM of that name.
    """
    if name is None:
        return [_virtual_machine(vm) for vm in host.list()]
    return _virtual_machine(host.get(check_name("name", name)))


def start_vm(host: Host, name: str, *, what_if: bool = False) -> Change[VMInfo]:
    """Start-VM: boot the VM, or resume it from its saved state; then, with Time Synchronization enabled, set the
    guest's clock, which stood still while the VM was saved (see :meth:`virtkit.ops.agent.GuestAgent.sync_clock`).
    """
    check_flag("what_if", what_if)
    return _vm(host, name).start(check=what_if)


def stop_vm(
    host: Host,
    name: str,
    *,
    turn_off: bool = False,
    save: bool = False,
    force: bool = False,
    timeout: float = 60.0,
    what_if: bool = False,
) -> Change[VMInfo]:
    """Stop-VM: shut the guest down through the Shutdown integration service (ACPI when it is off), waiting up to
    ``timeout`` seconds; with ``force`` turn it off when that time runs out. ``turn_off`` powers off at once;
    ``save`` saves its state (as Save-VM).

    :raises InvalidSpec: both ``turn_off`` and ``save``.
    :raises OperationTimeout: the guest did not shut down in time and ``force`` is false (it still runs).
    """
    check_flag("what_if", what_if)
    for field, value in (("turn_off", turn_off), ("save", save), ("force", force)):
        check_flag(field, value)
    if turn_off and save:
        raise InvalidSpec("save", "Stop-VM takes -TurnOff or -Save, not both")
    vm = _vm(host, name)
    if turn_off:
        return vm.destroy(check=what_if)
    if save:
        return vm.managed_save(check=what_if)
    spec = vm.spec()
    if spec.guest_agent and AgentService.SHUTDOWN in spec.agent_services:
        try:
            return vm.shutdown(timeout=timeout, force=force, agent=True, check=what_if)
        except GuestAgentUnavailable:
            pass  # no agent answers in the guest: ask it by ACPI, as without the Shutdown service
    return vm.shutdown(timeout=timeout, force=force, agent=False, check=what_if)


def suspend_vm(host: Host, name: str, *, what_if: bool = False) -> Change[VMInfo]:
    """Suspend-VM: pause the VM (its memory stays where it is)."""
    check_flag("what_if", what_if)
    return _vm(host, name).pause(check=what_if)


def resume_vm(host: Host, name: str, *, what_if: bool = False) -> Change[VMInfo]:
    """Resume-VM: go on running a paused VM."""
    check_flag("what_if", what_if)
    return _vm(host, name).resume(check=what_if)


def restart_vm(
    host: Host, name: str, *, type: RestartType | str = RestartType.RESET, what_if: bool = False
) -> Change[VMInfo]:
    """Restart-VM: reset the virtual hardware (``Reset``, Hyper-V's default) or ask the guest to ``Reboot``."""
    check_flag("what_if", what_if)
    kind = _restart_type(type)
    return _vm(host, name).reboot(hard=kind is RestartType.RESET, check=what_if)


def save_vm(host: Host, name: str, *, what_if: bool = False) -> Change[VMInfo]:
    """Save-VM: save the VM's memory and stop it; Start-VM resumes it from there."""
    check_flag("what_if", what_if)
    return _vm(host, name).managed_save(check=what_if)


def remove_vm(host: Host, name: str, *, force: bool = False, what_if: bool = False) -> Change[VMInfo]:
    """Remove-VM: delete the VM's definition, saved state and checkpoints' metadata; its drives' files stay (as on
    Hyper-V). A running VM is turned off first only with ``force``.

    :raises Conflict: the VM runs and ``force`` is false.
    """
    check_flag("what_if", what_if)
    return _vm(host, name).delete(force=force, check=what_if)


def set_vm(
    host: Host,
    name: str,
    *,
    checkpoint_type: CheckpointType | str | None = None,
    automatic_stop_action: AutomaticStopAction | str | None = None,
    notes: str | EllipsisType | None = ...,
    what_if: bool = False,
) -> Change[VMSpec]:
    """Set-VM: the checkpoint type, the automatic stop action and the notes, in any state, running too (``notes``
    left at ``...`` stays; ``None`` removes it).

    :raises InvalidSpec: a value that is no checkpoint type or stop action (``CheckpointType``,
        ``AutomaticStopAction``), notes that are no text (``Notes``).
    """
    check_flag("what_if", what_if)
    changes: dict[str, Any] = {}
    if checkpoint_type is not None:
        changes["snapshot_mode"] = CHECKPOINT_TYPE[_choice(CheckpointType, "CheckpointType", checkpoint_type)]
    if automatic_stop_action is not None:
        kind = _choice(AutomaticStopAction, "AutomaticStopAction", automatic_stop_action)
        changes["on_host_stop"] = AUTOMATIC_STOP_ACTION[kind]
    if notes is not ...:
        changes["description"] = notes
    vm = _vm(host, name)
    with in_hyperv_words():
        return vm.configure(**changes, check=what_if)


def set_vm_firmware(
    host: Host,
    name: str,
    *,
    enable_secure_boot: bool | str | None = None,
    secure_boot_template: SecureBootTemplate | str | None = None,
    what_if: bool = False,
) -> Change[VMSpec]:
    """Set-VMFirmware: switch Secure Boot of a Generation 2 VM (``On``/``Off``, or a bool), which must be off.

    The VM's UEFI variables are copied afresh from the new firmware's template at its next boot. Everything else in
    its definition stays.

    :raises InvalidSpec: a Generation 1 VM (field ``enable_secure_boot``), a bad value.
    :raises Unsupported: a template KVM cannot honour (see :class:`~virtkit.hyperv.vocabulary.SecureBootTemplate`).
    :raises Conflict: the VM is not off.
    """
    check_flag("what_if", what_if)
    on = None if enable_secure_boot is None else _on_off("enable_secure_boot", enable_secure_boot)
    template = _template(secure_boot_template)
    vm = _vm(host, name)
    spec = vm.spec()
    if spec.firmware is not Firmware.UEFI and (on or template is not None):
        field = "enable_secure_boot" if on else "secure_boot_template"
        raise InvalidSpec(field, f"{vm.name} is a Generation 1 VM: BIOS firmware has no Secure Boot")
    wanted = spec if on is None else dataclasses.replace(spec, secure_boot=on)
    return vm.update(wanted, check=what_if)


# -- helpers ------------------------------------------------------------------------------------------------------


def _hyperv_spec(spec: object) -> HyperVSpec:
    if isinstance(spec, HyperVSpec):
        return spec
    if isinstance(spec, Mapping):
        return HyperVSpec.from_dict(spec)
    raise InvalidSpec("spec", f"must be a HyperVSpec or a mapping of its fields, not {type(spec).__name__}")


def _vm(host: Host, name: object) -> VM:
    return host.get(check_name("name", name))


def _virtual_machine(vm: VM) -> VirtualMachine:
    info = vm.info()
    spec = vm.spec()
    try:
        hv: HyperVSpec | None = HyperVSpec.from_spec(spec)
    except (Unsupported, InvalidSpec):
        hv = None
    return VirtualMachine(
        name=info.name,
        id=info.uuid,
        state=vm_state(info.state, info.reason),
        status="Migrating" if info.state is VMState.MIGRATING else "Operating normally",
        generation=None if hv is None else hv.generation,
        processor_count=info.vcpus,
        memory_startup=spec.memory,
        checkpoint_type=None if hv is None else hv.checkpoint_type,
        automatic_stop_action=None if hv is None else hv.automatic_stop_action,
        notes=spec.description,
        computer_name=info.host,
        spec=hv,
        info=info,
    )


def _on_off(field: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("on", "off"):
        return value.lower() == "on"
    raise InvalidSpec(field, f"must be On or Off, not {shown(value)}")


def _template(value: object) -> SecureBootTemplate | None:
    if value is None:
        return None
    found = next((t for t in SecureBootTemplate if isinstance(value, str) and t.value.lower() == value.lower()), None)
    if found is None:
        allowed = ", ".join(t.value for t in SecureBootTemplate)
        raise InvalidSpec("secure_boot_template", f"{shown(value)} is not a template; use one of {allowed}")
    check_template(found)
    return found


def _choice(enum: type[_E], field: str, value: object) -> _E:
    """The member of ``enum`` whose value is ``value``, in any case."""
    found = next((m for m in enum if isinstance(value, str) and m.value.lower() == value.lower()), None)
    if found is None:
        raise InvalidSpec(field, f"{shown(value)} is not one of {', '.join(m.value for m in enum)}")
    return found


def _restart_type(value: object) -> RestartType:
    found = next((t for t in RestartType if isinstance(value, str) and t.value.lower() == value.lower()), None)
    if found is None:
        raise InvalidSpec("type", f"{shown(value)} is not a restart type; use Reset or Reboot")
    return found
