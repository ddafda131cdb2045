"""libvirt domain state + reason + managed-save flag -> virtkit's neutral :class:`VMState`."""

from __future__ import annotations

import libvirt

from virtkit.backends.libvirt import tables
from virtkit.backends.libvirt.tables import libvirt_names
from virtkit.models.state import VMState

__all__ = ["reason_name", "to_state"]

# Paused reasons that are not the user's pause: the VM is inside a job and will move on by itself.
_PAUSED_BY_JOB = {
    libvirt.VIR_DOMAIN_PAUSED_MIGRATION: VMState.MIGRATING,
    libvirt.VIR_DOMAIN_PAUSED_POSTCOPY: VMState.MIGRATING,
}

# Each state's reasons are the constants VIR_DOMAIN_<STATE>_<REASON>.
_REASON_PREFIX = {state: f"VIR_DOMAIN_{word.upper()}_" for state, word in tables.STATE_WORDS.items()}
# Constants of other enums that share a reason prefix: the shutdown flags (virDomainShutdownFlagValues), whose
# numbers would otherwise name shutdown reasons (2 is no "guest_agent" reason), and the PMSUSPENDED_DISK reasons.
_NOT_REASONS = {
    libvirt.VIR_DOMAIN_SHUTDOWN: ("DEFAULT", "ACPI_POWER_BTN", "GUEST_AGENT", "INITCTL", "SIGNAL", "PARAVIRT"),
    libvirt.VIR_DOMAIN_PMSUSPENDED: ("DISK_UNKNOWN",),
}


def reason_name(state: int, reason: int) -> str:
    """libvirt's reason as a word: ``booted``, ``user``, ``migration``, ``destroyed``, ``saved``..."""
    prefix = _REASON_PREFIX.get(state)
    if prefix is None:
        return "unknown"
    return libvirt_names(prefix, skip=_NOT_REASONS.get(state, ())).get(reason, "unknown")


def to_state(state: int, reason: int, *, managed_save: bool) -> VMState:
    """The neutral state. A shut-off VM with a managed-save image is ``saved`` (Hyper-V's Saved state)."""
    if state == libvirt.VIR_DOMAIN_SHUTOFF and managed_save:
        return VMState.SAVED
    if state == libvirt.VIR_DOMAIN_PAUSED and reason in _PAUSED_BY_JOB:
        return _PAUSED_BY_JOB[reason]
    return tables.STATE.get(state, VMState.UNKNOWN)
