"""What a VM is doing, in neutral terms, and the facts read back from a host."""

from __future__ import annotations

import dataclasses
from enum import StrEnum

from virtkit.models.vm import Accel

__all__ = ["VMInfo", "VMState", "VMStatus"]


class VMState(StrEnum):
    """Neutral power states. ``saved`` is a stopped VM whose memory was saved (Hyper-V's Saved)."""

    RUNNING = "running"
    STOPPED = "stopped"
    PAUSED = "paused"
    SAVED = "saved"
    CRASHED = "crashed"
    SHUTTING_DOWN = "shutting_down"
    SUSPENDED = "suspended"  # guest-initiated S3/S4 (libvirt's pmsuspended)
    MIGRATING = "migrating"  # paused by libvirt for the switch-over of a migration
    UNKNOWN = "unknown"


@dataclasses.dataclass(frozen=True)
class VMInfo:
    """A VM as one host sees it at one moment. Equal infos mean nothing changed that virtkit manages."""

    name: str
    uuid: str
    state: VMState
    reason: str
    accel: Accel
    vcpus: int
    memory: int
    max_memory: int
    persistent: bool
    autostart: bool
    managed_save: bool
    host: str


@dataclasses.dataclass(frozen=True, slots=True)
class VMStatus:
    """A VM in a host's bulk listing (:meth:`virtkit.Host.statuses`): its state, and its resources where the host
    reports them in bulk (``None`` where it does not: libvirt's test driver). The state is the one
    :meth:`virtkit.VM.info` reads; the accelerator is not listed (it is in each VM's definition)."""

    name: str
    uuid: str
    state: VMState
    reason: str
    vcpus: int | None
    memory: int | None
    max_memory: int | None
    host: str
