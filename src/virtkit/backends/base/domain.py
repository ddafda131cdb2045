"""The protocol of one VM on one host, as a hypervisor backend provides it. No libvirt here."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Protocol

from virtkit.backends.base.agent import GuestAgentBackend
from virtkit.backends.base.disks import DiskBackend
from virtkit.backends.base.snapshots import SnapshotBackend
from virtkit.models.state import VMInfo
from virtkit.models.vm import VMSpec

__all__ = ["DomainBackend", "HostDevice"]


@dataclasses.dataclass(frozen=True)
class HostDevice:
    """A device of the host handed to the VM: passed through (libvirt's ``<hostdev>``, or an ``<interface
    type='hostdev'>``), so its state lives in the host's hardware, outside the hypervisor."""

    #: ``pci``, ``usb``, ``scsi``, ``scsi_host`` or ``mdev`` in ``subsystem`` mode; ``storage``, ``misc`` or ``net``
    #: in ``capabilities`` mode.
    kind: str
    #: Where it is on the host, as a person reads it: ``0000:06:12.5`` (PCI), ``1234:beef`` or ``bus 1 device 3``
    #: (USB), ``scsi_host0 0:0:1`` (SCSI), a UUID (mdev), ``/dev/sdf1`` (capabilities)...
    address: str
    #: ``subsystem`` (a bus device passed through) or ``capabilities`` (a host block or character device, or a
    #: network interface, handed over whole).
    mode: str = "subsystem"
    #: The device backs a network interface (``<interface type='hostdev'>``, an SR-IOV VF) rather than standing alone.
    interface: bool = False
    #: The hypervisor unplugs it for a migration and the guest fails over to a paired virtio NIC
    #: (``<teaming type='transient'>``).
    transient: bool = False


class DomainBackend(Protocol):
    """One VM on one host."""

    @property
    def name(self) -> str:
        """The VM's name."""

    @property
    def uuid(self) -> str:
        """The VM's UUID (known to the handle: no round trip)."""

    def info(self) -> VMInfo:
        """The VM's state and resources now."""

    def spec(self) -> VMSpec:
        """The persistent definition, in canonical form."""

    def disks(self) -> DiskBackend:
        """Disk hot-plug on this VM."""

    def host_devices(self) -> tuple[HostDevice, ...]:
        """The host devices passed through to the VM, as it runs now (its definition when it is stopped)."""

    def start(self) -> None:
        """Boot it (or resume a managed save)."""

    def shutdown(self, *, agent: bool) -> None:
        """Ask the guest to power off (ACPI, or the guest agent); returns at once."""

    def destroy(self) -> None:
        """Power off at once."""

    def reboot(self, *, hard: bool) -> None:
        """Ask the guest to reboot, or reset the virtual hardware (``hard``)."""

    def pause(self) -> None:
        """Stop the vCPUs."""

    def resume(self) -> None:
        """Restart the vCPUs."""

    def undefine(self) -> None:
        """Remove the definition with its managed save, snapshot metadata and NVRAM."""

    def active_job(self) -> str | None:
        """What job the hypervisor runs on the VM now, in words (``migration out``, ``save``, ``snapshot``...), or
        ``None``: whichever process started it."""

    def set_resources(self, *, memory: int | None, vcpus: int | None) -> None:
        """Set the memory (bytes) and vCPUs of the running VM and its persistent definition, within their maxima;
        ``None`` leaves one as it is."""

    def set_policy(self, spec: VMSpec) -> None:
        """Write ``spec``'s description, snapshot mode, host-stop action and agent services, to the persistent
        definition and the running VM alike."""

    def agent(self) -> GuestAgentBackend:
        """The guest agent of the VM (whether it answers is for its calls to find out)."""

    def snapshots(self) -> SnapshotBackend:
        """The VM's snapshots."""

    def save(self, path: Path) -> None:
        """Write the VM's memory and device state to ``path`` and stop it (:meth:`HostBackend.restore` resumes it)."""

    def managed_save(self) -> None:
        """Save the VM's memory where the host keeps it and stop it; :meth:`start` resumes it."""

    def discard_saved_state(self) -> None:
        """Drop the managed-save image; the next start boots afresh."""
