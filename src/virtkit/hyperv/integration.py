"""The integration services: Get-, Enable- and Disable-VMIntegrationService, Copy-VMFile, and the Key-Value Pair
Exchange's guest items, on qemu-guest-agent.

Each service is something virtkit does through the guest agent (:class:`virtkit.ops.agent.GuestAgent`), and does only
while it is enabled: Heartbeat (the agent answers), Shutdown (Stop-VM asks the agent rather than ACPI), Time
Synchronization (the guest's clock is set when the VM resumes from a saved state), Key-Value Pair Exchange (the
guest's OS, name and addresses), Guest Service Interface (Copy-VMFile) and VSS (file systems frozen for Production
checkpoints). A VM with any service enabled gets the agent channel; the guest needs qemu-guest-agent running.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from virtkit.errors import Conflict, InvalidSpec
from virtkit.hyperv.vocabulary import INTEGRATION_SERVICE
from virtkit.models.change import Change
from virtkit.models.state import VMState
from virtkit.models.vm import AgentService, VMSpec
from virtkit.ops.host import Host
from virtkit.ops.vm import VM
from virtkit.validate import check_flag, check_name, shown

__all__ = [
    "VMIntegrationService",
    "copy_vm_file",
    "disable_vm_integration_service",
    "enable_vm_integration_service",
    "get_vm_integration_service",
    "get_vm_kvp",
    "synchronize_time",
]

_PING_SECONDS = 5
# Seconds for the agent to answer after the VM resumed, before its clock is set: a restored agent answers at once
# (its process was saved with the guest); a guest without one costs Start-VM no more than this.
_AGENT_WAIT = 5.0


@dataclasses.dataclass(frozen=True)
class VMIntegrationService:
    """One integration service as Get-VMIntegrationService shows it."""

    vm_name: str
    name: str
    enabled: bool
    primary_status_description: str | None  # "OK", "Lost Communication", "No Contact"; None when disabled

    def to_dict(self) -> dict[str, Any]:
        """Plain data with Get-VMIntegrationService's property names."""
        return {
            "VMName": self.vm_name,
            "Name": self.name,
            "Enabled": self.enabled,
            "PrimaryStatusDescription": self.primary_status_description,
        }


def get_vm_integration_service(host: Host, vm_name: str, name: str | None = None) -> list[VMIntegrationService]:
    """Get-VMIntegrationService: each service (or the one ``name``d) of the VM, whether it is enabled, and its
    status: ``OK`` when the VM runs and its agent answers, ``Lost Communication`` when it runs and the agent does
    not, ``No Contact`` when the VM does not run.

    :raises InvalidSpec: ``name`` is no integration service (the message lists them).
    :raises NotFound: no such VM.
    """
    wanted = list(INTEGRATION_SERVICE) if name is None else [_service_name(name)]
    vm = _vm(host, vm_name)
    spec = vm.spec()
    on = set(spec.agent_services) if spec.guest_agent else set()
    running = vm.state is VMState.RUNNING
    answers = running and bool(on) and vm.agent.ping(_PING_SECONDS)
    status = "OK" if answers else "Lost Communication" if running else "No Contact"
    return [
        VMIntegrationService(vm.name, n, INTEGRATION_SERVICE[n] in on, status if INTEGRATION_SERVICE[n] in on else None)
        for n in wanted
    ]


def enable_vm_integration_service(host: Host, vm_name: str, name: str, *, what_if: bool = False) -> Change[VMSpec]:
    """Enable-VMIntegrationService ``name`` (the VM must be off while virtkit changes its definition; enabling
    the first service adds the guest agent channel).

    :raises InvalidSpec: ``name`` is no integration service.
    :raises Conflict: the VM is not off.
    """
    return _switch(host, vm_name, name, True, what_if)


def disable_vm_integration_service(host: Host, vm_name: str, name: str, *, what_if: bool = False) -> Change[VMSpec]:
    """Disable-VMIntegrationService ``name``, in any state; the agent channel stays (the other services use it).

    :raises InvalidSpec: ``name`` is no integration service.
    """
    return _switch(host, vm_name, name, False, what_if)


def copy_vm_file(
    host: Host,
    vm_name: str,
    source_path: Path | str,
    destination_path: str,
    *,
    create_full_path: bool = False,
    file_source: str = "Host",
    force: bool = False,
    progress: Callable[[float], None] | None = None,
    what_if: bool = False,
) -> int:
    """Copy-VMFile: copy ``source_path`` (a host file inside the storage roots) to ``destination_path`` in the
    running guest, through its Guest Service Interface; returns the bytes copied. ``force`` replaces a file there.

    :raises InvalidSpec: ``file_source`` other than ``Host``, a bad path (``SourcePath``, ``DestinationPath``).
    :raises Conflict: the Guest Service Interface is disabled (Enable-VMIntegrationService it first).
    :raises GuestAgentUnavailable: the VM does not run, or its agent does not answer.
    :raises AlreadyExists: the destination exists and ``force`` is false.
    """
    check_flag("what_if", what_if)
    check_flag("force", force)
    if file_source != "Host":
        raise InvalidSpec("FileSource", f"only Host is possible (files go into the guest), got {shown(file_source)}")
    vm = _vm(host, vm_name)
    _needs(vm, "Guest Service Interface")
    try:
        return vm.agent.copy_file(
            str(source_path),
            destination_path,
            create_full_path=create_full_path,
            overwrite=force,
            progress=progress,
            check=what_if,
        )
    except InvalidSpec as exc:
        field = {"source": "SourcePath", "destination": "DestinationPath"}.get(exc.field, exc.field)
        raise InvalidSpec(field, exc.reason) from None


def get_vm_kvp(host: Host, vm_name: str) -> dict[str, str]:
    """The Key-Value Pair Exchange's guest items (Hyper-V's GuestIntrinsicExchangeItems), as far as the agent
    reports them: ``FullyQualifiedDomainName``, ``OSName``, ``OSVersion``, ``OSKernelRelease``,
    ``ProcessorArchitecture``, ``NetworkAddressIPv4``, ``NetworkAddressIPv6`` (addresses joined by ``;``).

    :raises Conflict: the Key-Value Pair Exchange service is disabled.
    :raises GuestAgentUnavailable: the VM does not run, or its agent does not answer.
    """
    vm = _vm(host, vm_name)
    _needs(vm, "Key-Value Pair Exchange")
    info = vm.agent.info()
    v4 = [a for a in info.addresses if ":" not in a]
    v6 = [a for a in info.addresses if ":" in a]
    items = {
        "FullyQualifiedDomainName": info.hostname,
        "OSName": info.os_name,
        "OSVersion": info.os_version,
        "OSKernelRelease": info.kernel_release,
        "ProcessorArchitecture": info.machine,
        "NetworkAddressIPv4": ";".join(v4) or None,
        "NetworkAddressIPv6": ";".join(v6) or None,
    }
    return {k: v for k, v in items.items() if v is not None}


def synchronize_time(vm: VM, *, wait: float = _AGENT_WAIT) -> float | None:
    """Set the guest's clock to this machine's when the VM's Time Synchronization service is enabled (see
    :meth:`virtkit.ops.agent.GuestAgent.sync_clock`); returns the time set, or ``None``."""
    return vm.agent.sync_clock(wait=wait)


# -- helpers ------------------------------------------------------------------------------------------------------


def _vm(host: Host, name: object) -> VM:
    return host.get(check_name("vm_name", name))


def _service_name(name: object) -> str:
    if isinstance(name, str):
        for known in INTEGRATION_SERVICE:
            if known.lower() == name.lower():
                return known
    raise InvalidSpec("Name", f"{shown(name)} is no integration service; use one of {', '.join(INTEGRATION_SERVICE)}")


def _needs(vm: VM, service: str) -> None:
    spec = vm.spec()
    if not (spec.guest_agent and INTEGRATION_SERVICE[service] in spec.agent_services):
        raise Conflict(f"the {service} integration service of {vm.name} is disabled; enable it first")


def _switch(host: Host, vm_name: str, name: str, enable: bool, what_if: bool) -> Change[VMSpec]:
    check_flag("what_if", what_if)
    service = INTEGRATION_SERVICE[_service_name(name)]
    vm = _vm(host, vm_name)
    spec = vm.spec()
    on = set(spec.agent_services) if spec.guest_agent else set()
    if (service in on) == enable:
        return Change("update", vm.name, spec, spec, what_if)
    on = on | {service} if enable else on - {service}
    services = tuple(s for s in AgentService if s in on)
    if spec.guest_agent:  # the channel is there: what virtkit uses it for changes in any state
        return vm.configure(agent_services=services, check=what_if)
    state = vm.state
    if state is not VMState.STOPPED:
        raise Conflict(
            f"cannot enable {name} of {vm.name}: it is {state.value}, and its first integration service adds the "
            "guest agent channel, a device virtkit adds while the VM is off"
        )
    return vm.update(dataclasses.replace(spec, guest_agent=True, agent_services=services), check=what_if)
