"""What the Hyper-V calls return about a VM and its drives, with Hyper-V's field names in plain data."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from virtkit.hyperv.spec import HyperVSpec
from virtkit.hyperv.vocabulary import AutomaticStopAction, CheckpointType, ControllerType, HyperVState
from virtkit.models.state import VMInfo

__all__ = ["VMHardDiskDrive", "VirtualMachine"]


@dataclasses.dataclass(frozen=True)
class VirtualMachine:
    """A VM as Get-VM shows it.

    ``spec`` is its definition in Hyper-V terms, ``None`` when it has none (a ``q35`` machine with BIOS firmware,
    say); ``info`` is the neutral view of the same moment.
    """

    name: str
    id: str
    state: HyperVState
    status: str
    generation: int | None
    processor_count: int
    memory_startup: int
    checkpoint_type: CheckpointType | None
    automatic_stop_action: AutomaticStopAction | None
    notes: str | None
    computer_name: str
    spec: HyperVSpec | None
    info: VMInfo

    def to_dict(self) -> dict[str, Any]:
        """Plain data with Get-VM's property names (``Name``, ``State``, ``Generation``...)."""
        return {
            "Name": self.name,
            "Id": self.id,
            "State": self.state.value,
            "Status": self.status,
            "Generation": self.generation,
            "ProcessorCount": self.processor_count,
            "MemoryStartup": self.memory_startup,
            "CheckpointType": None if self.checkpoint_type is None else self.checkpoint_type.value,
            "AutomaticStopAction": None if self.automatic_stop_action is None else self.automatic_stop_action.value,
            "Notes": self.notes,
            "ComputerName": self.computer_name,
        }


@dataclasses.dataclass(frozen=True)
class VMHardDiskDrive:
    """A drive as Get-VMHardDiskDrive shows it; ``live`` and ``persistent`` say which definitions hold it (the
    running VM, the configuration it boots with next)."""

    vm_name: str
    path: Path
    controller_type: ControllerType
    controller_number: int | None
    controller_location: int | None
    target: str
    live: bool
    persistent: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain data with Get-VMHardDiskDrive's property names."""
        return {
            "VMName": self.vm_name,
            "Path": str(self.path),
            "ControllerType": self.controller_type.value,
            "ControllerNumber": self.controller_number,
            "ControllerLocation": self.controller_location,
        }
