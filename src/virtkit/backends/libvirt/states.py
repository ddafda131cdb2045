"""libvirt domain state + reason + managed-save flag -> virtkit's neutral :class:`VMState`."""

from __future__ import annotations

import libvirt

from virtkit.models.state import VMState

__all__ = ["reason_name", "to_state"]

_STATE = {
    libvirt.VIR_DOMAIN_NOSTATE: VMState.UNKNOWN,
    libvirt.VIR_DOMAIN_RUNNING: VMState.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: VMState.RUNNING,  # lossy: blocked on a resource is still running to its owner
    libvirt.VIR_DOMAIN_PAUSED: VMState.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: VMState.SHUTTING_DOWN,
    libvirt.VIR_DOMAIN_SHUTOFF: VMState.STOPPED,
    libvirt.VIR_DOMAIN_CRASHED: VMState.CRASHED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: VMState.SUSPENDED,
}

# Paused reasons that are not the user's pause: the VM is inside a job and will move on by itself.
_PAUSED_BY_JOB = {
    libvirt.VIR_DOMAIN_PAUSED_MIGRATION: VMState.MIGRATING,
    libvirt.VIR_DOMAIN_PAUSED_POSTCOPY: VMState.MIGRATING,
}

_REASON_PREFIX = {
    libvirt.VIR_DOMAIN_NOSTATE: "VIR_DOMAIN_NOSTATE_",
    libvirt.VIR_DOMAIN_RUNNING: "VIR_DOMAIN_RUNNING_",
    libvirt.VIR_DOMAIN_BLOCKED: "VIR_DOMAIN_BLOCKED_",
    libvirt.VIR_DOMAIN_PAUSED: "VIR_DOMAIN_PAUSED_",
    libvirt.VIR_DOMAIN_SHUTDOWN: "VIR_DOMAIN_SHUTDOWN_",
    libvirt.VIR_DOMAIN_SHUTOFF: "VIR_DOMAIN_SHUTOFF_",
    libvirt.VIR_DOMAIN_CRASHED: "VIR_DOMAIN_CRASHED_",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "VIR_DOMAIN_PMSUSPENDED_",
}


def _reason_table() -> dict[tuple[int, int], str]:
    table: dict[tuple[int, int], str] = {}
    for state, prefix in _REASON_PREFIX.items():
        for attr in dir(libvirt):
            if attr.startswith(prefix) and not attr.endswith("_LAST"):
                table[(state, int(getattr(libvirt, attr)))] = attr[len(prefix) :].lower()
    return table


_REASONS: dict[tuple[int, int], str] = {}


def reason_name(state: int, reason: int) -> str:
    """libvirt's reason as a word: ``booted``, ``user``, ``migration``, ``destroyed``, ``saved``..."""
    if not _REASONS:
        _REASONS.update(_reason_table())
    return _REASONS.get((state, reason), "unknown")


def to_state(state: int, reason: int, *, managed_save: bool) -> VMState:
    """The neutral state. A shut-off VM with a managed-save image is ``saved`` (Hyper-V's Saved state)."""
    if state == libvirt.VIR_DOMAIN_SHUTOFF and managed_save:
        return VMState.SAVED
    if state == libvirt.VIR_DOMAIN_PAUSED and reason in _PAUSED_BY_JOB:
        return _PAUSED_BY_JOB[reason]
    return _STATE.get(state, VMState.UNKNOWN)
