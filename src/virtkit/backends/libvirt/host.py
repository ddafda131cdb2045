"""``LibvirtHost``: owns one ``virConnect``; opening, keepalive, reconnect, capabilities, lookups and events."""

from __future__ import annotations

import functools
import ipaddress
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlsplit

import libvirt

from virtkit.backends.libvirt import cpu, design, saved, states
from virtkit.backends.libvirt.domain import LibvirtDomain
from virtkit.backends.libvirt.errors import libvirt_errors, retry_transient, translate
from virtkit.backends.libvirt.events import EventSubscription, ensure_event_loop
from virtkit.backends.libvirt.migration import LibvirtMigrations
from virtkit.backends.libvirt.xml import domain as domain_xml
from virtkit.errors import HostUnavailable, NotFound
from virtkit.models.cpu import CPUModel
from virtkit.models.events import LifecycleEvent
from virtkit.models.snapshot import SavedImage
from virtkit.models.state import VMState, VMStatus
from virtkit.models.vm import Accel, VMSpec

__all__ = ["DEFAULT_STORAGE_ROOTS", "LibvirtHost"]

#: Where VM files may live when the caller names no storage roots: libvirt's default pool and the virtkit lab.
DEFAULT_STORAGE_ROOTS = (Path("/var/lib/libvirt/images"), Path("/var/lib/virtkit"))

# Keepalive: a probe every 5 s, the connection declared dead after 3 unanswered (libvirt's own defaults for virsh).
_KEEPALIVE_INTERVAL = 5
_KEEPALIVE_COUNT = 3


#: What a bulk listing reads of each VM: its state, memory (balloon) and vCPUs.
_STATUS_STATS = libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_BALLOON | libvirt.VIR_DOMAIN_STATS_VCPU


@functools.lru_cache(maxsize=256)
def _state(state: int, reason: int, managed_save: bool) -> tuple[VMState, str]:
    """The neutral state and the reason's word of a libvirt state and reason (a few dozen pairs: cached)."""
    return states.to_state(state, reason, managed_save=managed_save), states.reason_name(state, reason)


def _has_job(dom: libvirt.virDomain) -> bool:
    """Whether a job (a migration, a save...) runs on ``dom``."""
    return bool(dom.jobInfo()[0] != libvirt.VIR_DOMAIN_JOB_NONE)


def _silence_libvirt(_ctx: object, _err: object) -> None:
    """libvirt prints every error to stderr by default; virtkit raises them instead."""


class LibvirtHost:
    """One libvirt host. Re-opens its connection when libvirt reports it closed."""

    def __init__(self, uri: str, *, storage_roots: tuple[Path, ...] | None = None) -> None:
        self._uri = uri
        self._roots = tuple(Path(r) for r in (storage_roots or DEFAULT_STORAGE_ROOTS))
        self._lock = threading.Lock()
        self._conn: libvirt.virConnect | None = None
        self._dropped = False
        self._facts: design.HostFacts | None = None
        self._hostname: str | None = None
        self._open()

    # -- connection ---------------------------------------------------------------------------------------------

    def _connect(self) -> libvirt.virConnect:
        """A new connection to the host, with keepalive where the driver has it (not test:///).

        :raises HostUnavailable: the host cannot be reached.
        """
        libvirt.registerErrorHandler(_silence_libvirt, None)
        ensure_event_loop()
        try:
            conn = libvirt.open(self._uri)
        except libvirt.libvirtError as exc:
            raise HostUnavailable(f"cannot connect to {self._uri}: {exc.get_error_message()}") from exc
        if conn.getType() != "TEST":
            try:
                with libvirt_errors(f"set up keepalive on {self._uri}"):
                    conn.setKeepAlive(_KEEPALIVE_INTERVAL, _KEEPALIVE_COUNT)
            except BaseException:
                with suppress(libvirt.libvirtError):
                    conn.close()
                raise
        return conn

    def _open(self) -> None:
        conn = self._connect()
        # Close callbacks exist only for remote-driver connections (not for test:///).
        if conn.getType() != "TEST":
            with libvirt_errors(f"watch the connection to {self._uri}"):
                conn.registerCloseCallback(self._on_close, None)
        self._conn = conn
        self._dropped = False

    @contextmanager
    def dedicated(self) -> Iterator[libvirt.virConnect]:
        """A connection of its own for one long blocking call, closed afterwards.

        Other calls on the shared connection meanwhile can wait for the blocking call's socket: measured here, job
        statistics during a migration answered after exactly 5 s (the keepalive interval) instead of 1 ms.

        :raises HostUnavailable: the host cannot be reached.
        """
        conn = self._connect()
        try:
            yield conn
        finally:
            with suppress(libvirt.libvirtError):  # it dropped meanwhile (the daemon restarted)
                conn.close()

    def _on_close(self, _conn: libvirt.virConnect, _reason: int, _opaque: object) -> None:
        self._dropped = True

    @property
    def conn(self) -> libvirt.virConnect:
        """The live connection, re-opened first if libvirt said it was closed.

        :raises HostUnavailable: closed by the caller, or the host cannot be reached again.
        """
        with self._lock:
            if self._conn is None:
                raise HostUnavailable(f"the connection to {self._uri} is closed")
            if self._dropped or not self._conn.isAlive():
                self._open()
            assert self._conn is not None
            return self._conn

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                if conn.getType() != "TEST":
                    conn.unregisterCloseCallback()
                conn.close()
            except libvirt.libvirtError:
                pass  # closing a connection that already dropped

    # -- facts --------------------------------------------------------------------------------------------------

    @property
    def uri(self) -> str:
        """The URI the connection was opened with."""
        return self._uri

    @property
    def hostname(self) -> str:
        """The host's name as it reports it."""
        if self._hostname is None:
            with libvirt_errors(f"read the hostname of {self._uri}"):
                self._hostname = str(self.conn.getHostname())
        return self._hostname

    @property
    def is_local(self) -> bool:
        """Whether the host's files are this machine's (no host in the URI, or a loopback address)."""
        host = urlsplit(self._uri).hostname
        if not host or host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def facts(self) -> design.HostFacts:
        """What the host's capabilities say about acceleration (read once)."""
        if self._facts is None:
            with libvirt_errors(f"read the capabilities of {self._uri}"):
                self._facts = design.host_facts(self.conn.getCapabilities())
        return self._facts

    def resolve_accel(self, requested: Accel) -> Accel:
        """``kvm`` or ``tcg`` for ``requested`` on this host (see :func:`design.resolve_accel`)."""
        return design.resolve_accel(requested, self.facts())

    def canonical(self, spec: VMSpec, accel: Accel) -> VMSpec:
        """``spec`` as :meth:`LibvirtDomain.spec` reads it back once defined under ``accel``."""
        return domain_xml.canonical(spec, accel)

    def storage_roots(self) -> tuple[Path, ...]:
        """Directories in which VM files may live on this host."""
        return self._roots

    def host_cpu(self, accel: Accel) -> CPUModel:
        """The CPU this host offers VMs under ``accel`` (see :func:`cpu.host_cpu`)."""
        return cpu.host_cpu(self.conn, accel, self._uri)

    def baseline_cpu(self, cpus: Sequence[CPUModel], accel: Accel) -> CPUModel:
        """The richest CPU all of ``cpus`` can run, as this host's hypervisor provides it (see :func:`cpu.baseline`)."""
        return cpu.baseline(self.conn, cpus, accel, self._uri)

    def check_cpu(self, model: CPUModel, accel: Accel) -> None:
        """Raise :class:`Unsupported` naming the missing features if this host cannot run ``model``."""
        cpu.check(self.conn, model, accel, self._uri)

    # -- domains ------------------------------------------------------------------------------------------------

    @retry_transient
    def lookup(self, name: str) -> LibvirtDomain | None:
        """The VM of that name, or ``None``."""
        try:
            dom = self.conn.lookupByName(name)
        except libvirt.libvirtError as exc:
            err = translate(exc, f"look up {name} on {self._uri}")
            if isinstance(err, NotFound):
                return None
            raise err from exc
        return LibvirtDomain(dom, self._uri)

    def get(self, name: str) -> LibvirtDomain:
        """The VM of that name.

        :raises NotFound: no VM of that name on this host.
        """
        dom = self.lookup(name)
        if dom is None:
            raise NotFound(f"no VM named {name!r} on {self._uri}")
        return dom

    @retry_transient
    def domains(self) -> list[LibvirtDomain]:
        """Every VM defined or running on the host, in one ``listAllDomains`` call."""
        with libvirt_errors(f"list the VMs of {self._uri}"):
            return [LibvirtDomain(d, self._uri) for d in self.conn.listAllDomains(0)]

    @retry_transient
    def statuses(self) -> list[VMStatus]:
        """Every VM's state and resources: one ``getAllDomainStats`` call, one listing of the VMs with saved
        memory when some VM is off, and a job query for each VM paused for a migration (rare)."""
        with libvirt_errors(f"list the VMs of {self._uri}"):
            conn = self.conn
            stats = conn.getAllDomainStats(_STATUS_STATS, 0)
            saved: set[str] = set()
            if any(fields["state.state"] == libvirt.VIR_DOMAIN_SHUTOFF for _, fields in stats):
                # only a VM that is off can hold saved memory: no second listing when none is
                saved = {d.name() for d in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_MANAGEDSAVE)}
            out = []
            for dom, fields in stats:
                name = dom.name()
                vm_state, reason = _state(fields["state.state"], fields["state.reason"], name in saved)
                if vm_state is VMState.MIGRATING and not _has_job(dom):
                    vm_state = VMState.PAUSED  # as LibvirtDomain.info: restored paused, no job runs
                current, maximum = fields.get("balloon.current"), fields.get("balloon.maximum")
                status = VMStatus(
                    name,
                    dom.UUIDString(),
                    vm_state,
                    reason,
                    fields.get("vcpu.current"),
                    None if current is None else current * 1024,
                    None if maximum is None else maximum * 1024,
                    self._uri,
                )
                out.append(status)
            return out

    def define(self, spec: VMSpec, accel: Accel, *, new: bool = False) -> LibvirtDomain:
        """Define ``spec`` persistently under the resolved ``accel``; an existing definition is updated in place
        (XML virtkit does not model is kept). With ``new`` the caller vouches that none exists.

        :raises VirtkitError: translated from libvirt.
        """
        existing = None if new else self.lookup(spec.name)
        base = existing.xml() if existing is not None else None
        xml = domain_xml.to_string(domain_xml.render(spec, accel, base=base))
        with libvirt_errors(f"define {spec.name} on {self._uri}"):
            dom = self.conn.defineXML(xml)
        return LibvirtDomain(dom, self._uri, accel=accel)

    def saved_image(self, path: Path) -> SavedImage:
        """The VM a saved-state file holds (see :func:`saved.read_image`)."""
        return saved.read_image(self.conn, path, self._uri)

    def restore(self, path: Path) -> LibvirtDomain:
        """Start the VM of a saved-state file from it (see :func:`saved.restore`)."""
        return LibvirtDomain(saved.restore(self.conn, path, self._uri), self._uri)

    def migrations(self) -> LibvirtMigrations:
        """Migration of this host's VMs (see :mod:`virtkit.backends.libvirt.migration`)."""
        return LibvirtMigrations(self)

    def subscribe(self, callback: Callable[[LifecycleEvent], None]) -> EventSubscription:
        """Deliver lifecycle events of every VM on the host to ``callback`` (called from the event thread)."""
        return EventSubscription.lifecycle(self.conn, self._uri, callback)
