"""Where a VM should go among several hosts: the policy shared by drain (and, later, failover and playbooks).

A destination must be able to run the VM's CPU; among those, the one with the least memory committed to VMs wins,
counting what this placer has already sent there, so a batch of moves spreads over the hosts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from virtkit.errors import NotFound
from virtkit.models.state import VMState

if TYPE_CHECKING:
    from virtkit.ops.host import Host
    from virtkit.ops.vm import VM

__all__ = ["Placer", "committed_memory"]

# States in which a VM holds memory on its host.
_RESIDENT = frozenset(
    {VMState.RUNNING, VMState.PAUSED, VMState.SHUTTING_DOWN, VMState.SUSPENDED, VMState.MIGRATING, VMState.UNKNOWN}
)


def committed_memory(host: Host) -> int:
    """Memory held by the VMs on ``host`` (a VM that vanishes meanwhile counts nothing)."""
    total = 0
    for vm in host.list():
        try:
            info = vm.info()
        except NotFound:
            continue
        if info.state in _RESIDENT:
            total += info.memory
    return total


class Placer:
    """Chooses destinations: one that can run the VM's CPU, with the least memory committed (this drain's too)."""

    def __init__(self, targets: Sequence[Host], can_run: Callable[[Host, VM], bool]) -> None:
        self._targets = list(targets)
        self._can_run = can_run
        self._lock = threading.Lock()
        self._load = {t.uri: committed_memory(t) for t in targets}

    def choose(self, vm: VM, memory: int) -> Host | str:
        fits = [t for t in self._targets if self._can_run(t, vm)]
        if not fits:
            return f"no destination can run its CPU ({', '.join(t.uri for t in self._targets)})"
        with self._lock:
            best = min(fits, key=lambda t: (self._load[t.uri], self._targets.index(t)))
            self._load[best.uri] += memory
        return best
