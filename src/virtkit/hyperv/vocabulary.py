"""Hyper-V's words for what virtkit models, and how each maps onto the neutral model.

The enumerations spell their values as Hyper-V's cmdlets print and accept them (``CheckpointType Production``,
``ControllerType SCSI``); reading is case-insensitive, as PowerShell is. :func:`vm_state` gives Hyper-V's
``VMState`` for a neutral state and libvirt's reason for it.
"""

from __future__ import annotations

from enum import StrEnum

from virtkit.models.disk import DiskBus
from virtkit.models.state import VMState
from virtkit.models.vm import AgentService, HostStopAction, SnapshotMode

__all__ = [
    "AUTOMATIC_STOP_ACTION",
    "CHECKPOINT_TYPE",
    "CONTROLLER_BUS",
    "INTEGRATION_SERVICE",
    "AutomaticStopAction",
    "CheckpointType",
    "ControllerType",
    "HyperVState",
    "SecureBootTemplate",
    "vm_state",
]


class ControllerType(StrEnum):
    """Where a virtual hard disk drive sits. ``IDE`` and ``SCSI`` are Hyper-V's; ``VirtIO`` and ``SATA`` name the
    buses a VM made outside the Hyper-V vocabulary may use (KVM only)."""

    IDE = "IDE"
    SCSI = "SCSI"
    VIRTIO = "VirtIO"
    SATA = "SATA"


#: Each controller type's neutral bus: SCSI is a virtio-scsi controller, Hyper-V's synthetic SCSI controller.
CONTROLLER_BUS = {
    ControllerType.IDE: DiskBus.IDE,
    ControllerType.SCSI: DiskBus.SCSI,
    ControllerType.VIRTIO: DiskBus.VIRTIO,
    ControllerType.SATA: DiskBus.SATA,
}


class CheckpointType(StrEnum):
    """Set-VM -CheckpointType."""

    STANDARD = "Standard"
    PRODUCTION = "Production"
    PRODUCTION_ONLY = "ProductionOnly"
    DISABLED = "Disabled"


CHECKPOINT_TYPE = {
    CheckpointType.STANDARD: SnapshotMode.MEMORY,
    CheckpointType.PRODUCTION: SnapshotMode.QUIESCED,
    CheckpointType.PRODUCTION_ONLY: SnapshotMode.QUIESCED_ONLY,
    CheckpointType.DISABLED: SnapshotMode.DISABLED,
}


class AutomaticStopAction(StrEnum):
    """Set-VM -AutomaticStopAction: what happens to the running VM when its host stops."""

    SAVE = "Save"
    SHUT_DOWN = "ShutDown"
    TURN_OFF = "TurnOff"


AUTOMATIC_STOP_ACTION = {
    AutomaticStopAction.SAVE: HostStopAction.SAVE,
    AutomaticStopAction.SHUT_DOWN: HostStopAction.SHUTDOWN,
    AutomaticStopAction.TURN_OFF: HostStopAction.POWER_OFF,
}


class SecureBootTemplate(StrEnum):
    """Set-VMFirmware -SecureBootTemplate: the keys the firmware trusts."""

    MICROSOFT_WINDOWS = "MicrosoftWindows"
    MICROSOFT_UEFI_CA = "MicrosoftUEFICertificateAuthority"
    OPEN_SOURCE_SHIELDED_VM = "OpenSourceShieldedVM"


#: The integration services, by the names Get-VMIntegrationService prints, and what each one is in virtkit.
INTEGRATION_SERVICE = {
    "Heartbeat": AgentService.HEARTBEAT,
    "Shutdown": AgentService.SHUTDOWN,
    "Time Synchronization": AgentService.TIME_SYNC,
    "Key-Value Pair Exchange": AgentService.GUEST_INFO,
    "Guest Service Interface": AgentService.FILE_COPY,
    "VSS": AgentService.FS_FREEZE,
}


class HyperVState(StrEnum):
    """Get-VM's State, as far as a KVM VM can be in it."""

    RUNNING = "Running"
    OFF = "Off"
    SAVED = "Saved"
    PAUSED = "Paused"
    STARTING = "Starting"
    STOPPING = "Stopping"
    SAVING = "Saving"
    PAUSED_CRITICAL = "PausedCritical"
    OTHER = "Other"


_BY_STATE = {
    VMState.RUNNING: HyperVState.RUNNING,
    VMState.MIGRATING: HyperVState.RUNNING,  # Hyper-V says Running, with the status "Migrating"
    VMState.STOPPED: HyperVState.OFF,
    VMState.SAVED: HyperVState.SAVED,
    VMState.PAUSED: HyperVState.PAUSED,
    VMState.SHUTTING_DOWN: HyperVState.STOPPING,
}

# libvirt pauses a VM itself for some jobs: the reason says which, and so which Hyper-V state it is in.
_BY_PAUSE_REASON = {
    "save": HyperVState.SAVING,
    "dump": HyperVState.SAVING,
    "starting_up": HyperVState.STARTING,
    "shutting_down": HyperVState.STOPPING,
    "snapshot": HyperVState.RUNNING,  # Hyper-V: Running, status "Creating checkpoint"
    "ioerror": HyperVState.PAUSED_CRITICAL,  # Hyper-V's critical states are its storage failing
    "crashed": HyperVState.OTHER,  # the guest crashed (panic device): Hyper-V has no state for it
    "watchdog": HyperVState.OTHER,
}


def vm_state(state: VMState, reason: str) -> HyperVState:
    """Hyper-V's state for a neutral ``state`` and libvirt's ``reason`` word for it (``VMInfo.reason``)."""
    if state is VMState.PAUSED and reason in _BY_PAUSE_REASON:
        return _BY_PAUSE_REASON[reason]
    return _BY_STATE.get(state, HyperVState.OTHER)
