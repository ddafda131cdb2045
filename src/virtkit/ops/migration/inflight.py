"""The VMs this process is migrating, so that a second migration or a lifecycle call on one is refused.

libvirt guards its own jobs only partly: it lets a VM be paused or destroyed in the middle of its migration, and
another process's migration shows only as a job on the VM. So virtkit keeps a process-wide registry, keyed by the
VM's UUID (its identity on every host), and asks the hypervisor for the VM's active job too: a migration, save or
snapshot started by another process (an Ansible task is one) refuses the call just the same.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from virtkit.backends.base import DomainBackend
from virtkit.errors import Conflict

__all__ = ["claim", "migrating", "refuse_if_migrating"]

_lock = threading.Lock()
_moving: dict[str, str] = {}  # VM UUID -> what moves it ("live migration to <uri>")


def migrating(uuid: str) -> str | None:
    """What migration holds the VM with ``uuid`` in this process, or ``None``."""
    with _lock:
        return _moving.get(uuid)


def refuse_if_migrating(dom: DomainBackend, name: str, action: str) -> None:
    """Refuse ``action`` on a VM that this process is migrating, or on which the hypervisor runs a job started by
    any process (another process's migration, on either host, a save, a snapshot): one call to the hypervisor.

    :raises Conflict: it is being migrated, or a job runs on it.
    """
    holder = migrating(dom.uuid)
    if holder is not None:
        raise Conflict(f"cannot {action} {name}: it is being moved ({holder}); wait for the migration to end")
    job = dom.active_job()
    if job is not None:
        raise Conflict(
            f"cannot {action} {name}: the hypervisor runs a job on it ({job}), perhaps started by another process;"
            " wait for it to end"
        )


@contextmanager
def claim(uuid: str, name: str, what: str) -> Iterator[None]:
    """Hold the VM for one migration (``what`` says which) until the block ends.

    :raises Conflict: another migration of the VM runs in this process.
    """
    with _lock:
        holder = _moving.get(uuid)
        if holder is not None:
            raise Conflict(f"cannot migrate {name}: it is being moved already ({holder})")
        _moving[uuid] = what
    try:
        yield
    finally:
        with _lock:
            _moving.pop(uuid, None)
