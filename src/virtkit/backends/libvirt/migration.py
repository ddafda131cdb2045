"""``LibvirtMigrations``: migration on one libvirt host, and the flags and parameters of ``virDomainMigrateToURI3``.

Every live move is peer-to-peer (the source's libvirtd drives the destination's, so the client may even lose its
connection meanwhile), makes the definition persistent on the destination and removes it from the source
(``PEER2PEER | PERSIST_DEST | UNDEFINE_SOURCE``), as Hyper-V's Live Migration moves the VM's configuration with it.
Quirks of libvirt 9.0 handled here:

- ``VIR_MIGRATE_UNSAFE`` is needed for disks on a shared directory of a local file system (the lab's shared
  volume): libvirt cannot see that such a directory is shared. The caller decides (``MigrationRequest.unsafe``).
- libvirt refuses to migrate a domain that has snapshot metadata ("cannot migrate domain with N snapshots") and
  never carries that metadata: :meth:`LibvirtMigrations.export_snapshots` reads it,
  :meth:`~LibvirtMigrations.forget_snapshots` drops it (``DELETE_METADATA_ONLY``: the data stays in the images) and
  :meth:`~LibvirtMigrations.import_snapshots` redefines it (``SNAPSHOT_CREATE_REDEFINE``).
- A storage copy (``NON_SHARED_DISK``) needs the destination image to exist already; a disk that lives at another
  path there is given through the destination and persistent XML (``DEST_XML``/``PERSIST_XML``).
- The real downtime of a finished migration is in the destination's completed job statistics
  (``VIR_DOMAIN_JOB_STATS_COMPLETED``); the source's domain is gone by then.
"""

from __future__ import annotations

import builtins
import dataclasses
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import libvirt

from virtkit.backends.base.migration import MigratableDisk, MigrationRequest, SnapshotExport
from virtkit.backends.libvirt import design
from virtkit.backends.libvirt.errors import libvirt_errors, translate
from virtkit.backends.libvirt.events import EventSubscription
from virtkit.backends.libvirt.snapshots import parents_first
from virtkit.backends.libvirt.tables import LOCATION
from virtkit.backends.libvirt.xml import snapshot as snapshot_xml
from virtkit.backends.libvirt.xml.domain import Domain
from virtkit.errors import BackendError, Conflict, HostUnavailable, NotFound, Unsupported, VirtkitError
from virtkit.models.migration import JobStats, Location, Presence
from virtkit.models.vm import Accel

if TYPE_CHECKING:
    from virtkit.backends.libvirt.host import LibvirtHost

__all__ = ["LibvirtMigrations", "build_flags", "build_params", "job_stats", "retarget_disks"]

# Reasons that say a domain is in, or failed in, post-copy (the *_FAILED running reason arrived in libvirt 8.5).
_POSTCOPY_REASONS = {
    (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_POSTCOPY),
    (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_POSTCOPY_FAILED),
    (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_POSTCOPY),
    (libvirt.VIR_DOMAIN_RUNNING, getattr(libvirt, "VIR_DOMAIN_RUNNING_POSTCOPY_FAILED", -1)),
}

#: Seconds a finished migration waits for its job-completed event (libvirt sends it before the call returns).
COMPLETION_EVENT_WAIT = 1.0

# Job types that mean no job runs now.
_NO_JOB = (libvirt.VIR_DOMAIN_JOB_NONE, libvirt.VIR_DOMAIN_JOB_COMPLETED)


_POSTCOPY_FAILED = {
    (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_POSTCOPY_FAILED),
    (libvirt.VIR_DOMAIN_RUNNING, getattr(libvirt, "VIR_DOMAIN_RUNNING_POSTCOPY_FAILED", -1)),
}


def build_flags(plan: MigrationRequest, *, resume: bool = False) -> int:
    """The ``virDomainMigrateToURI3`` flags for ``plan`` (``resume``: resume a post-copy that broke off)."""
    flags: int = libvirt.VIR_MIGRATE_PEER2PEER | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
    if plan.live:
        flags |= libvirt.VIR_MIGRATE_LIVE
        if plan.auto_converge:
            flags |= libvirt.VIR_MIGRATE_AUTO_CONVERGE
        if plan.postcopy:
            flags |= libvirt.VIR_MIGRATE_POSTCOPY
        if plan.xbzrle_cache is not None:
            flags |= libvirt.VIR_MIGRATE_COMPRESSED
        if plan.connections > 1:
            flags |= libvirt.VIR_MIGRATE_PARALLEL
        if plan.copy_disks:
            flags |= libvirt.VIR_MIGRATE_NON_SHARED_DISK
        if resume:
            flags |= libvirt.VIR_MIGRATE_POSTCOPY_RESUME
    else:
        flags |= libvirt.VIR_MIGRATE_OFFLINE
    if plan.unsafe:
        flags |= libvirt.VIR_MIGRATE_UNSAFE
    return flags


def build_params(
    plan: MigrationRequest, *, dest_xml: str | None = None, persist_xml: str | None = None
) -> dict[str, Any]:
    """The typed parameters of ``virDomainMigrateToURI3`` for ``plan`` (the XML ones given when disks move)."""
    params: dict[str, Any] = {}
    if plan.bandwidth is not None:
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = plan.bandwidth
    if plan.postcopy and plan.bandwidth_postcopy is not None:
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY] = plan.bandwidth_postcopy
    if plan.auto_converge and plan.throttle is not None:
        params[libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INITIAL] = plan.throttle[0]
        params[libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INCREMENT] = plan.throttle[1]
    if plan.live and plan.xbzrle_cache is not None:
        params[libvirt.VIR_MIGRATE_PARAM_COMPRESSION] = "xbzrle"
        params[libvirt.VIR_MIGRATE_PARAM_COMPRESSION_XBZRLE_CACHE] = plan.xbzrle_cache
    if plan.live and plan.connections > 1:
        params[libvirt.VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS] = plan.connections
    if plan.copy_disks:
        params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] = list(plan.copy_disks)
    if dest_xml is not None:
        params[libvirt.VIR_MIGRATE_PARAM_DEST_XML] = dest_xml
    if persist_xml is not None:
        params[libvirt.VIR_MIGRATE_PARAM_PERSIST_XML] = persist_xml
    return params


def retarget_disks(domain_xml: str, paths: Mapping[str, Path]) -> str:
    """``domain_xml`` with the file of each disk whose target is in ``paths`` replaced by that path.

    :raises BackendError: the XML does not parse, or names no file disk of such a target.
    """
    dom = Domain.from_string(domain_xml)
    seen: set[str] = set()
    for disk in dom.disks:
        target = disk.target or ""
        if target in paths and disk.source_file is not None:
            disk.source_file = paths[target]
            seen.add(target)
    if missing := sorted(set(paths) - seen):
        raise BackendError(f"the domain has no file disk with target {', '.join(missing)}")
    return dom.to_string()


def _int(raw: Mapping[str, Any], key: str) -> int | None:
    value = raw.get(key)
    return int(value) if value is not None else None


def job_stats(raw: Mapping[str, Any]) -> JobStats:
    """libvirt's job statistics (``virDomainGetJobStats`` as a dict) in neutral terms."""
    page = _int(raw, "memory_page_size") or 4096
    dirty_pages = _int(raw, "memory_dirty_rate")
    rate = _int(raw, "memory_bps")
    disk_rate = _int(raw, "disk_bps")
    if disk_rate:
        rate = (rate or 0) + disk_rate
    downtime = _int(raw, "downtime")
    elapsed = _int(raw, "time_elapsed")
    return JobStats(
        data_total=_int(raw, "data_total"),
        data_processed=_int(raw, "data_processed"),
        data_remaining=_int(raw, "data_remaining"),
        rate=rate,
        dirty_rate=dirty_pages * page if dirty_pages is not None else None,
        iteration=_int(raw, "memory_iteration"),
        downtime=downtime / 1000 if downtime is not None else None,
        elapsed=elapsed / 1000 if elapsed is not None else None,
        throttle=_int(raw, "auto_converge_throttle"),
    )


def _job_active(dom: libvirt.virDomain) -> bool:
    """Whether a job runs on ``dom``. The destination of a migration refuses to report on it ("migration
    statistics are available only on the source host"): that refusal means an incoming migration runs."""
    try:
        return dom.jobInfo()[0] not in _NO_JOB
    except libvirt.libvirtError as exc:
        if "only on the source" in str(exc):  # OPERATION_UNSUPPORTED in libvirt 9.0, the text is stable
            return True
        raise


class LibvirtMigrations:
    """Migration on one libvirt host; every call looks the domain up afresh on the host's live connection."""

    def __init__(self, host: LibvirtHost) -> None:
        self._host = host
        #: The statistics of the last migration started here, by VM name, from the job-completed event.
        self._completed: dict[str, JobStats] = {}

    def _what(self, op: str, name: str) -> str:
        return f"{op} {name} on {self._host.uri}"

    def _lookup(self, name: str) -> libvirt.virDomain:
        with libvirt_errors(self._what("look up", name)):
            return self._host.conn.lookupByName(name)

    def presence(self, name: str, uuid: str) -> Presence:
        """Where the VM is on this host (``UNKNOWN`` if the host does not answer).

        :raises VirtkitError: any other failure than an unreachable host or a missing domain.
        """
        try:
            conn = self._host.conn
            dom = conn.lookupByUUIDString(uuid)
            state, reason = dom.state()
            persistent = bool(dom.isPersistent())
            job = state in LOCATION and _job_active(dom)
        except HostUnavailable:
            return Presence(Location.UNKNOWN)
        except libvirt.libvirtError as exc:
            err = translate(exc, self._what("read the state of", name))
            if isinstance(err, NotFound):
                return Presence(Location.ABSENT)
            if isinstance(err, HostUnavailable):
                return Presence(Location.UNKNOWN)
            raise err from exc
        placement = LOCATION.get(state)
        if placement is None:
            placement = Location.DEFINED if persistent else Location.ABSENT
        postcopy = (state, reason) in _POSTCOPY_REASONS
        failed = (state, reason) in _POSTCOPY_FAILED
        return Presence(placement, postcopy=postcopy, job_active=job, persistent=persistent, postcopy_failed=failed)

    def job(self, name: str) -> JobStats | None:
        """The VM's active job, or ``None`` (none, the VM is gone or stopped, or the driver keeps no job statistics).

        :raises HostUnavailable: the host does not answer.
        """
        try:
            raw = self._host.conn.lookupByName(name).jobStats(0)
        except libvirt.libvirtError as exc:
            err = translate(exc, self._what("read the job of", name))
            if isinstance(err, NotFound | Conflict | Unsupported):  # gone, stopped, or a driver without jobs
                return None
            raise err from exc
        if raw.get("type", libvirt.VIR_DOMAIN_JOB_NONE) in _NO_JOB:
            return None
        return job_stats(raw)

    def completed_job(self, name: str) -> JobStats | None:
        """The statistics of the VM's last completed job on this host, or ``None``.

        A VM that left this host has none to ask: for it, the statistics of the migration's job-completed event
        (the only place a post-copy migration's figures are kept) are returned.
        """
        try:
            raw = self._host.conn.lookupByName(name).jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
        except libvirt.libvirtError:
            return self._completed.get(name)  # a nicety: a host that forgot them (restarted) must not fail the move
        if raw.get("type", libvirt.VIR_DOMAIN_JOB_NONE) == libvirt.VIR_DOMAIN_JOB_NONE:
            return self._completed.get(name)
        return job_stats(raw)

    def set_max_downtime(self, name: str, milliseconds: int) -> None:
        """``virDomainMigrateSetMaxDowntime``; libvirt 9.0 takes it before a migration starts too."""
        dom = self._lookup(name)
        with libvirt_errors(self._what(f"set the maximum downtime to {milliseconds} ms for", name)):
            dom.migrateSetMaxDowntime(milliseconds, 0)

    def set_max_speed(self, name: str, mib_per_second: int) -> None:
        """``virDomainMigrateSetMaxSpeed``: QEMU's memory bandwidth; libvirt set the disk mirrors' caps at their
        start."""
        dom = self._lookup(name)
        with libvirt_errors(self._what(f"cap at {mib_per_second} MiB/s the migration of", name)):
            dom.migrateSetMaxSpeed(mib_per_second, 0)

    def start_postcopy(self, name: str) -> None:
        """``virDomainMigrateStartPostCopy``."""
        dom = self._lookup(name)
        with libvirt_errors(self._what("switch to post-copy the migration of", name)):
            dom.migrateStartPostCopy(0)

    def resume_postcopy(self, name: str, destination: str, plan: MigrationRequest) -> None:
        """``virDomainMigrateToURI3`` with ``VIR_MIGRATE_POSTCOPY_RESUME`` and the flags the migration began with."""
        with self._host.dedicated() as conn:
            with libvirt_errors(self._what("look up", name)):
                dom = conn.lookupByName(name)
            # The disks were mirrored before the switch to post-copy: only memory is left.
            memory_only = dataclasses.replace(plan, copy_disks=(), disk_paths={})
            with libvirt_errors(f"resume the post-copy migration of {name} from {self._host.uri} to {destination}"):
                dom.migrateToURI3(destination, build_params(memory_only), build_flags(memory_only, resume=True))

    def memory_tracking_sound(self, accel: Accel) -> bool:
        """See :func:`design.memory_tracking_sound`; the version is QEMU's as libvirt reports it."""
        with libvirt_errors(f"read the hypervisor version of {self._host.uri}"):
            version: int = self._host.conn.getVersion()
        return design.memory_tracking_sound(accel, version)

    def abort_job(self, name: str) -> None:
        """``virDomainAbortJob``."""
        dom = self._lookup(name)
        with libvirt_errors(self._what("abort the job of", name)):
            dom.abortJob()

    def disks(self, name: str) -> builtins.list[MigratableDisk]:
        """The disks of the running definition (or the persistent one when the VM is off)."""
        dom = self._lookup(name)
        with libvirt_errors(self._what("read the disks of", name)):
            xml: str = dom.XMLDesc(0 if dom.isActive() else libvirt.VIR_DOMAIN_XML_INACTIVE)
        return [
            MigratableDisk(
                target=d.target or "",
                kind=d.source_type,
                path=d.path,
                format=d.known_format,
                readonly=d.readonly or d.device in ("cdrom", "floppy"),
            )
            for d in Domain.from_string(xml).disks
        ]

    def migrate(self, name: str, destination: str, plan: MigrationRequest) -> None:
        """``virDomainMigrateToURI3`` to ``destination`` (the URI the source's libvirtd reaches the other by).

        The call runs on a connection of its own, so that the monitor's job queries on the shared one are answered
        at once (see ``LibvirtHost.dedicated``).

        :raises VirtkitError: translated from libvirt.
        """
        self._completed.pop(name, None)
        done = threading.Event()
        figures: dict[str, Any] = {}

        def completed(params: dict[str, Any]) -> None:
            figures.update(params)
            done.set()

        with self._host.dedicated() as conn:
            with libvirt_errors(self._what("look up", name)):
                dom = conn.lookupByName(name)
            watch = self._watch_completion(name, completed)
            try:
                self._migrate(dom, name, destination, plan)
                done.wait(COMPLETION_EVENT_WAIT)  # sent before the call returns, delivered by the event thread
            finally:
                if watch is not None:
                    watch.close()
        if figures:
            self._completed[name] = job_stats(figures)

    def _watch_completion(self, name: str, callback: Callable[[dict[str, Any]], None]) -> EventSubscription | None:
        """The job-completed event of the VM, on the shared connection (which outlives the call); ``None`` when
        libvirt refuses (the figures are a nicety)."""
        try:
            conn = self._host.conn
            return EventSubscription.job_completed(conn, conn.lookupByName(name), callback)
        except (libvirt.libvirtError, VirtkitError):
            return None

    def _migrate(self, dom: libvirt.virDomain, name: str, destination: str, plan: MigrationRequest) -> None:
        dest_xml = persist_xml = None
        if plan.disk_paths:
            with libvirt_errors(self._what("read the definition of", name)):
                persistent = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_MIGRATABLE)
                running = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE) if plan.live else persistent
            dest_xml = retarget_disks(running, plan.disk_paths)
            persist_xml = retarget_disks(persistent, plan.disk_paths)
        params = build_params(plan, dest_xml=dest_xml, persist_xml=persist_xml)
        with libvirt_errors(f"migrate {name} from {self._host.uri} to {destination}"):
            dom.migrateToURI3(destination, params, build_flags(plan))

    def definition(self, name: str) -> str:
        """The persistent definition as libvirt would migrate it (``INACTIVE | MIGRATABLE | SECURE``)."""
        dom = self._lookup(name)
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_MIGRATABLE | libvirt.VIR_DOMAIN_XML_SECURE
        with libvirt_errors(self._what("read the definition of", name)):
            xml: str = dom.XMLDesc(flags)
        return xml

    def define(self, definition: str) -> None:
        """``virDomainDefineXML`` of a definition read by :meth:`definition`."""
        with libvirt_errors(f"define a VM on {self._host.uri}"):
            self._host.conn.defineXML(definition)

    def export_snapshots(self, name: str) -> SnapshotExport:
        """The VM's snapshot definitions, parents first, and its current snapshot."""
        dom = self._lookup(name)
        with libvirt_errors(self._what("read the snapshots of", name)):
            snaps = dom.listAllSnapshots(0)
            texts = [s.getXMLDesc(libvirt.VIR_DOMAIN_SNAPSHOT_XML_SECURE) for s in snaps]
            current = next((s.getName() for s in snaps if s.isCurrent(0)), None)
        parsed = {p.name: (p, text) for p, text in ((snapshot_xml.parse(t), t) for t in texts)}
        order = parents_first({name: p.parent for name, (p, _) in parsed.items()})
        return SnapshotExport(definitions=tuple(parsed[name][1] for name, _ in order), current=current)

    def forget_snapshots(self, name: str) -> None:
        """Delete each snapshot's metadata only (``DELETE_METADATA_ONLY``); the images keep the snapshots."""
        dom = self._lookup(name)
        with libvirt_errors(self._what("drop the snapshot metadata of", name)):
            for snap in dom.listAllSnapshots(0):
                snap.delete(libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY)

    def import_snapshots(self, name: str, snapshots: SnapshotExport) -> None:
        """Redefine each snapshot (``SNAPSHOT_CREATE_REDEFINE``), the current one marked current again."""
        dom = self._lookup(name)
        for text in snapshots.definitions:
            snap = snapshot_xml.parse(text).name
            flags = libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE
            if snap == snapshots.current:
                flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT
            with libvirt_errors(self._what(f"redefine snapshot {snap} of", name)):
                dom.snapshotCreateXML(text, flags)
