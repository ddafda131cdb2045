"""libvirt's event loop (one thread per process, started at the first connection) and lifecycle events."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import libvirt

from virtkit.backends.libvirt.errors import libvirt_errors
from virtkit.backends.libvirt.tables import libvirt_names
from virtkit.models.events import LifecycleEvent

__all__ = ["EventSubscription", "ensure_event_loop"]

_loop_lock = threading.Lock()
_loop_threads: list[threading.Thread] = []  # at most one

_EVENTS = {
    libvirt.VIR_DOMAIN_EVENT_DEFINED: "defined",
    libvirt.VIR_DOMAIN_EVENT_UNDEFINED: "undefined",
    libvirt.VIR_DOMAIN_EVENT_STARTED: "started",
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: "suspended",
    libvirt.VIR_DOMAIN_EVENT_RESUMED: "resumed",
    libvirt.VIR_DOMAIN_EVENT_STOPPED: "stopped",
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED: "pmsuspended",
    libvirt.VIR_DOMAIN_EVENT_CRASHED: "crashed",
}
# Each event's details are the constants VIR_DOMAIN_EVENT_<EVENT>_<DETAIL>.
_DETAIL_PREFIX = {event: f"VIR_DOMAIN_EVENT_{word.upper()}_" for event, word in _EVENTS.items()}


def _detail_name(event: int, detail: int) -> str:
    prefix = _DETAIL_PREFIX.get(event)
    if prefix is None:
        return str(detail)
    return libvirt_names(prefix).get(detail, str(detail))


def _run_loop() -> None:
    while True:
        libvirt.virEventRunDefaultImpl()


def ensure_event_loop() -> None:
    """Register libvirt's default event loop and run it in a daemon thread, once per process.

    Keepalive, close callbacks and domain events all need it. It is started by the first connection, never at
    import time.
    """
    with _loop_lock:
        if _loop_threads:
            return
        libvirt.virEventRegisterDefaultImpl()
        thread = threading.Thread(target=_run_loop, name="virtkit-libvirt-events", daemon=True)
        thread.start()
        _loop_threads.append(thread)


class EventSubscription:
    """A registered libvirt domain-event callback; :meth:`close` unregisters it."""

    def __init__(self, conn: libvirt.virConnect, callback_id: int) -> None:
        self._conn = conn
        self._id: int | None = callback_id

    @classmethod
    def lifecycle(
        cls, conn: libvirt.virConnect, host: str, callback: Callable[[LifecycleEvent], None]
    ) -> EventSubscription:
        """Subscribe ``callback`` to lifecycle events of every domain on ``conn``.

        :raises VirtkitError: translated from libvirt.
        """

        def on_event(
            _conn: libvirt.virConnect, dom: libvirt.virDomain, event: int, detail: int, _opaque: object
        ) -> None:
            callback(LifecycleEvent(host, dom.name(), _EVENTS.get(event, str(event)), _detail_name(event, detail)))

        with libvirt_errors(f"subscribe to lifecycle events of {host}"):
            cid = conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, on_event, None)
        return cls(conn, cid)

    @classmethod
    def job_completed(
        cls, conn: libvirt.virConnect, dom: libvirt.virDomain, callback: Callable[[dict[str, Any]], None]
    ) -> EventSubscription:
        """Subscribe ``callback`` to the job-completed event of ``dom``: the statistics of its finished job (for a
        migration, sent by the source, which has no domain to ask once it ends).

        :raises VirtkitError: translated from libvirt.
        """

        def on_event(
            _conn: libvirt.virConnect, _dom: libvirt.virDomain, params: dict[str, Any], _opaque: object
        ) -> None:
            callback(dict(params))

        with libvirt_errors("subscribe to the job-completed event"):
            cid = conn.domainEventRegisterAny(dom, libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, on_event, None)
        return cls(conn, cid)

    def close(self) -> None:
        """Stop delivering events (idempotent)."""
        if self._id is None:
            return
        cid, self._id = self._id, None
        # If the connection is already gone, its callbacks went with it.
        with contextlib.suppress(libvirt.libvirtError):
            self._conn.domainEventDeregisterAny(cid)
