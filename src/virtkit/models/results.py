"""What the operations that move VMs return: plain data, shared by the API, the CLI and playbooks."""

from __future__ import annotations

import dataclasses
from typing import Any

from virtkit.errors import VirtkitError
from virtkit.models.change import Change
from virtkit.models.migration import Escalated, MigrationMode, MigrationStrategy
from virtkit.models.state import VMInfo

__all__ = ["DrainIncomplete", "DrainResult", "MigrationResult"]


@dataclasses.dataclass(frozen=True)
class MigrationResult(Change[VMInfo]):
    """A migration's :class:`Change` (``before`` on the source, ``after`` on the destination) with its figures.

    Times are in seconds; ``downtime`` is how long the guest was paused, from the hypervisor's own count for a live
    migration and from save to restore for a quick one (``None`` when it cannot be known: offline, check mode).
    """

    mode: MigrationMode = MigrationMode.LIVE
    source: str = ""
    destination: str = ""
    total_time: float = 0.0
    downtime: float | None = None
    #: Bytes sent (memory, and the disks' contents for a storage copy).
    data_moved: int | None = None
    #: Passes over memory (1 when nothing had to be resent).
    iterations: int | None = None
    postcopy: bool = False
    #: Things worth knowing that did not stop the move (a snapshot not redefined, a source image left in place).
    notes: tuple[str, ...] = ()
    #: The strategy a live migration ran with (``auto`` resolved), else ``None``.
    strategy: MigrationStrategy | None = None
    #: What the escalation did during a live migration, in order (see ``MigrationTuning``).
    escalated: tuple[Escalated, ...] = ()
    #: The highest maximum downtime allowed, in seconds, and the highest vCPU throttle auto-converge applied, in
    #: percent (``None`` when it never throttled).
    max_downtime: float | None = None
    max_throttle: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON output and Ansible results: the change and the figures."""
        data = super().as_dict()
        data.update(
            mode=self.mode.value,
            source=self.source,
            destination=self.destination,
            total_time=self.total_time,
            downtime=self.downtime,
            data_moved=self.data_moved,
            iterations=self.iterations,
            postcopy=self.postcopy,
            notes=list(self.notes),
            strategy=self.strategy.value if self.strategy is not None else None,
            escalated=[dataclasses.asdict(e) for e in self.escalated],
            max_downtime=self.max_downtime,
            max_throttle=self.max_throttle,
        )
        return data


@dataclasses.dataclass(frozen=True)
class DrainResult:
    """What a drain did: the VMs moved, those that failed (with the error) and those it did not try (why)."""

    host: str
    moved: tuple[MigrationResult, ...] = ()
    failed: tuple[tuple[str, VirtkitError], ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()
    total_time: float = 0.0
    check: bool = False

    @property
    def complete(self) -> bool:
        """Every VM left the host (nothing failed or was skipped)."""
        return not self.failed and not self.skipped

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON output and Ansible results."""
        return {
            "host": self.host,
            "changed": any(r.changed for r in self.moved),
            "check": self.check,
            "complete": self.complete,
            "total_time": self.total_time,
            "moved": [r.as_dict() for r in self.moved],
            "failed": [{"name": n, "error": str(e), "type": type(e).__name__} for n, e in self.failed],
            "skipped": [{"name": n, "reason": r} for n, r in self.skipped],
        }


class DrainIncomplete(VirtkitError):
    """A drain moved some VMs but not all: ``result`` says which moved, failed and were skipped.

    Defined here, beside the :class:`DrainResult` it carries, so that :mod:`virtkit.errors` imports nothing.
    """

    def __init__(self, message: str, *, result: DrainResult) -> None:
        super().__init__(message)
        self.result = result
