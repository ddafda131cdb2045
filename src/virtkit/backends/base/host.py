"""The protocol of one hypervisor host, as a backend provides it. No libvirt here.

``virtkit.ops`` talks only to these protocols; ``virtkit.backends.libvirt`` implements them. A backend speaks in
specs, states and infos; it does no idempotence checks and no check mode: the operations layer does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from virtkit.backends.base.domain import DomainBackend
from virtkit.backends.base.migration import MigrationBackend
from virtkit.models.cpu import CPUModel
from virtkit.models.events import LifecycleEvent
from virtkit.models.snapshot import SavedImage
from virtkit.models.state import VMStatus
from virtkit.models.vm import Accel, VMSpec

__all__ = ["HostBackend", "Subscription"]


class Subscription(Protocol):
    """A registered event callback; ``close()`` unregisters it."""

    def close(self) -> None:
        """Stop delivering events."""


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

    def statuses(self) -> Sequence[VMStatus]:
        """Every VM's state and resources in one bulk read (a constant number of calls, not one per VM)."""

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
