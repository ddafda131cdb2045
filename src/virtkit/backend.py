"""The seam between virtkit's neutral operations and a hypervisor backend. No libvirt here.

``virtkit.ops`` talks only to these protocols; ``virtkit.backends.libvirt`` implements them. A backend speaks in
specs, states and infos; it does no idempotence checks and no check mode: the operations layer does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from virtkit.backend_hotplug import DiskBackend
from virtkit.backend_migration import MigrationBackend
from virtkit.backend_snapshots import SnapshotBackend
from virtkit.models.cpu import CPUModel
from virtkit.models.snapshot import SavedImage
from virtkit.models.state import VMInfo
from virtkit.models.vm import Accel, VMSpec

__all__ = ["DomainBackend", "HostBackend", "LifecycleEvent", "Subscription"]


@dataclasses.dataclass(frozen=True)
class LifecycleEvent:
    """A VM changed state on a host: ``event`` like ``started``/``stopped``/``suspended``, ``detail`` the reason."""

    host: str
    vm: str
    event: str
    detail: str


class Subscription(Protocol):
    """A registered event callback; ``close()`` unregisters it."""

    def close(self) -> None:
        """Stop delivering events."""


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

    def snapshots(self) -> SnapshotBackend:
        """The VM's snapshots."""

    def save(self, path: Path) -> None:
        """Write the VM's memory and device state to ``path`` and stop it (:meth:`HostBackend.restore` resumes it)."""

    def managed_save(self) -> None:
        """Save the VM's memory where the host keeps it and stop it; :meth:`start` resumes it."""

    def discard_saved_state(self) -> None:
        """Drop the managed-save image; the next start boots afresh."""


class HostBackend(Protocol):
    """One hypervisor host, reached through one connection."""

    @property
    def uri(self) -> str:
        """The URI the connection was opened with."""

    @property
    def hostname(self) -> str:
        """The host's name as it reports it."""

    @property
    def is_local(self) -> bool:
        """Whether the host's files are this machine's files (so images can be made here)."""

    def resolve_accel(self, requested: Accel) -> Accel:
        """``kvm`` or ``tcg`` for ``requested`` on this host."""

    def canonical(self, spec: VMSpec, accel: Accel) -> VMSpec:
        """``spec`` as :meth:`DomainBackend.spec` would read it back once defined under ``accel``."""

    def lookup(self, name: str) -> DomainBackend | None:
        """The VM of that name, or ``None``."""

    def domains(self) -> Sequence[DomainBackend]:
        """Every VM defined or running on the host."""

    def define(self, spec: VMSpec, accel: Accel, *, new: bool = False) -> DomainBackend:
        """Define (persistently) a VM from ``spec`` under the resolved ``accel``; ``new`` says the caller knows no
        VM of that name exists, so no existing definition is read to update."""

    def subscribe(self, callback: Callable[[LifecycleEvent], None]) -> Subscription:
        """Deliver lifecycle events of every VM on the host to ``callback`` (from the event thread)."""

    def storage_roots(self) -> tuple[Path, ...]:
        """Directories in which VM files may live on this host."""

    def host_cpu(self, accel: Accel) -> CPUModel:
        """The CPU the host offers VMs under the resolved ``accel`` (the hypervisor's host-model CPU)."""

    def baseline_cpu(self, cpus: Sequence[CPUModel], accel: Accel) -> CPUModel:
        """The richest CPU every one of ``cpus`` can run, as this host's hypervisor can provide it."""

    def check_cpu(self, model: CPUModel, accel: Accel) -> None:
        """Return if the host can run ``model`` under ``accel``; else raise ``Unsupported`` naming what it lacks."""

    def saved_image(self, path: Path) -> SavedImage:
        """The VM a saved-state file holds (its header alone is read).

        :raises InvalidSpec: (field ``path``) no saved state the host can read.
        """

    def restore(self, path: Path) -> DomainBackend:
        """Start the VM of a saved-state file from it; return that VM."""

    def migrations(self) -> MigrationBackend:
        """Migration of this host's VMs, as the source or the destination of a move."""

    def close(self) -> None:
        """Close the connection."""
