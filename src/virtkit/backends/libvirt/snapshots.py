"""``LibvirtSnapshots``: the snapshots of one libvirt domain, and what libvirt can and cannot do with them.

``memory`` snapshots are libvirt's internal snapshots (``savevm`` into the qcow2 images); ``disk-only`` and
``quiesced`` are external snapshots: each writable disk gets a new qcow2 overlay beside it (see :func:`overlay_path`)
that the VM writes to from then on. Limits measured on libvirt 9.0 (docs/platform.md), refused here before anything
changes:

- internal snapshots need every writable disk in qcow2, and fail with UEFI pflash firmware;
- revert to an external snapshot arrived in libvirt 9.9 ("not supported yet" before);
- internal and external snapshots of one VM do not mix: libvirt cannot delete an external snapshot whose parent is
  internal, nor an internal one once an overlay is in use, and an internal snapshot taken on an overlay is lost
  from the disk chain when an earlier snapshot is reverted to;
- external snapshots are deleted one at a time (``DELETE_CHILDREN`` is refused for them), so a subtree of them is
  deleted here deepest first.
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Mapping
from pathlib import Path

import libvirt

from virtkit.backends.libvirt import design, states, tables
from virtkit.backends.libvirt.agent import LibvirtAgent
from virtkit.backends.libvirt.errors import libvirt_errors, translate
from virtkit.backends.libvirt.xml import snapshot as snapshot_xml
from virtkit.backends.libvirt.xml.devices.disk import Disk
from virtkit.backends.libvirt.xml.domain import Domain
from virtkit.backends.libvirt.xml.snapshot import ParsedSnapshot, SnapshotRecord
from virtkit.errors import NotFound, Unsupported, VirtkitError
from virtkit.models.disk import DiskFormat
from virtkit.models.snapshot import SnapshotInfo, SnapshotKind
from virtkit.models.state import VMState

__all__ = ["EXTERNAL_REVERT_VERSION", "LibvirtSnapshots", "overlay_path", "parents_first", "revert_refusal"]

#: The first libvirt (as ``getLibVersion`` counts: major * 1,000,000 + minor * 1,000 + micro) that reverts to
#: external snapshots.
EXTERNAL_REVERT_VERSION = 9_009_000

_CREATE_FLAGS = {
    SnapshotKind.MEMORY: libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC,
    SnapshotKind.DISK_ONLY: libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC,
    SnapshotKind.QUIESCED: libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY
    | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE
    | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC,
}

_PING_TIMEOUT = 3  # seconds; a live agent answers in milliseconds, even under TCG


def overlay_path(directory: Path, vm: str, target: str, snapshot: str) -> Path:
    """The overlay a disk-only snapshot makes for one disk: ``<vm>-<target>.<snapshot>.qcow2`` in ``directory``
    (the directory of the disk's present image), so names do not grow along a chain of snapshots."""
    return directory / f"{vm}-{target}.{snapshot}.qcow2"


def revert_refusal(name: str, vm: str, version: int) -> str | None:
    """Why libvirt ``version`` cannot revert ``vm`` to its external snapshot ``name``, or ``None`` if it can."""
    if version >= EXTERNAL_REVERT_VERSION:
        return None
    major, minor, micro = version // 1_000_000, version // 1_000 % 1_000, version % 1_000
    return (
        f"cannot revert {vm} to {name}: it is a disk-only snapshot, and reverting to one needs libvirt 9.9 or later "
        f"(this host runs {major}.{minor}.{micro}); memory snapshots can be reverted to on this host"
    )


def parents_first(parents: Mapping[str, str | None], *, root: str | None = None) -> builtins.list[tuple[str, int]]:
    """Snapshots as (name, depth), each after its parent: breadth first, siblings by name.

    :param parents: each snapshot's parent (``None``, or a name not among them, for a root).
    :param root: start from this snapshot alone (depth 0), so that only it and its descendants are listed.
    """
    children: dict[str | None, builtins.list[str]] = {}
    for name, parent in parents.items():
        children.setdefault(parent if parent in parents else None, []).append(name)
    pending = [(root, 0)] if root is not None else [(n, 0) for n in sorted(children.get(None, []))]
    seen: set[str] = set()
    out: builtins.list[tuple[str, int]] = []
    while pending:
        name, depth = pending.pop(0)
        if name is None or name in seen:
            continue
        seen.add(name)
        out.append((name, depth))
        pending += [(child, depth + 1) for child in sorted(children.get(name, []))]
    return out


def _kind(parsed: ParsedSnapshot, record: SnapshotRecord | None) -> SnapshotKind:
    if parsed.memory == "external":
        return SnapshotKind.MEMORY  # lossy: an external snapshot with memory (virsh --memspec) holds memory too
    if parsed.external:
        return SnapshotKind.QUIESCED if record is not None and record.quiesced else SnapshotKind.DISK_ONLY
    return SnapshotKind.MEMORY


class LibvirtSnapshots:
    """The snapshots of one libvirt domain."""

    def __init__(self, dom: libvirt.virDomain, vm: str, host: str) -> None:
        self._dom = dom
        self._vm = vm
        self._host = host
        self._version: int | None = None

    def _what(self, op: str) -> str:
        return f"{op} {self._vm} on {self._host}"

    # -- reading ------------------------------------------------------------------------------------------------

    def _lookup(self, name: str) -> libvirt.virDomainSnapshot | None:
        try:
            return self._dom.snapshotLookupByName(name, 0)
        except libvirt.libvirtError as exc:
            err = translate(exc, self._what(f"look up snapshot {name} of"))
            if isinstance(err, NotFound):
                return None
            raise err from exc

    def _parsed(self) -> dict[str, ParsedSnapshot]:
        with libvirt_errors(self._what("list the snapshots of")):
            texts = [s.getXMLDesc(0) for s in self._dom.listAllSnapshots(0)]
        return {p.name: p for p in map(snapshot_xml.parse, texts)}

    def _records(self) -> dict[str, SnapshotRecord]:
        with libvirt_errors(self._what("read the definition of")):
            persistent = bool(self._dom.isPersistent())
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG if persistent else libvirt.VIR_DOMAIN_AFFECT_LIVE
        try:
            text = self._dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, snapshot_xml.RECORD_NS, flags)
        except libvirt.libvirtError as exc:
            err = translate(exc, self._what("read the snapshot records of"))
            if isinstance(err, NotFound):  # no record yet
                return {}
            raise err from exc
        return snapshot_xml.parse_records(text)

    def _write_records(self, records: dict[str, SnapshotRecord]) -> None:
        with libvirt_errors(self._what("write the snapshot records of")):
            flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG if self._dom.isPersistent() else 0
            if self._dom.isActive():
                flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
            text = snapshot_xml.render_records(records) if records else None
            key = snapshot_xml.RECORD_PREFIX if records else None
            self._dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, text, key, snapshot_xml.RECORD_NS, flags)

    def _info(self, parsed: ParsedSnapshot, current: bool, records: dict[str, SnapshotRecord]) -> SnapshotInfo:
        record = records.get(parsed.name) if parsed.external else None
        vm_state = tables.SNAPSHOT_STATE.get(parsed.state, VMState.UNKNOWN)
        if record is not None:
            vm_state = next((s for s in VMState if s.value == record.vm_state), vm_state)
        kind = _kind(parsed, record)
        return SnapshotInfo(
            name=parsed.name,
            vm=self._vm,
            kind=kind,
            created=parsed.created,
            parent=parsed.parent,
            current=current,
            vm_state=vm_state,
            quiesced=kind is SnapshotKind.QUIESCED,
            description=parsed.description,
        )

    def list(self) -> builtins.list[SnapshotInfo]:
        """Every snapshot of the VM (one listing, one XML read per snapshot)."""
        parsed = self._parsed()
        current = self.current_name()
        records = self._records() if any(p.external for p in parsed.values()) else {}
        return [self._info(p, p.name == current, records) for p in parsed.values()]

    def get(self, name: str) -> SnapshotInfo | None:
        """The snapshot of that name, or ``None``."""
        snap = self._lookup(name)
        if snap is None:
            return None
        with libvirt_errors(self._what(f"read snapshot {name} of")):
            parsed = snapshot_xml.parse(snap.getXMLDesc(0))
            current = bool(snap.isCurrent(0))
        return self._info(parsed, current, self._records() if parsed.external else {})

    def current_name(self) -> str | None:
        """The name of the current snapshot, or ``None``."""
        try:
            name: str = self._dom.snapshotCurrent(0).getName()
        except libvirt.libvirtError as exc:
            err = translate(exc, self._what("read the current snapshot of"))
            if isinstance(err, NotFound):  # no current snapshot
                return None
            raise err from exc
        return name

    def agent_answers(self) -> bool:
        """Whether the VM runs, its guest-agent channel is open and the agent answers ``guest-ping`` in time."""
        with libvirt_errors(self._what("read the state of")):
            if self._dom.state()[0] != libvirt.VIR_DOMAIN_RUNNING:
                return False
            xml: str = self._dom.XMLDesc(0)
        if Domain.from_string(xml).agent_channel_state(design.AGENT_CHANNEL) in (None, "disconnected"):
            return False
        return LibvirtAgent(self._dom, self._vm).ping(_PING_TIMEOUT)

    # -- checks -------------------------------------------------------------------------------------------------

    def _domain(self) -> Domain:
        with libvirt_errors(self._what("read the definition of")):
            xml: str = self._dom.XMLDesc(0)  # the running definition while it runs: its disks are the live ones
        return Domain.from_string(xml)

    def check_create(self, kind: SnapshotKind) -> None:
        """Refuse what libvirt cannot take (see the module's docstring).

        :raises Unsupported: why, and what would work instead.
        """
        dom = self._domain()
        parsed = self._parsed()
        head = f"cannot take a {kind.value} snapshot of {self._vm}"
        if kind is SnapshotKind.MEMORY:
            if dom.has_pflash:
                raise Unsupported(
                    f"{head}: libvirt cannot take internal snapshots of a VM with UEFI pflash firmware (its NVRAM "
                    "is no qcow2 image); take a disk-only snapshot instead"
                )
            for disk in dom.disks:
                if disk.device == "disk" and not disk.readonly and disk.known_format is not DiskFormat.QCOW2:
                    raise Unsupported(
                        f"{head}: memory (internal) snapshots live inside qcow2 images and disk {disk.target} is "
                        f"{Disk.format.raw(disk) or 'of unknown format'}; take a disk-only snapshot, or convert the "
                        "disk to qcow2"
                    )
            if external := sorted(p.name for p in parsed.values() if p.external):
                raise Unsupported(
                    f"{head}: it has disk-only snapshots ({', '.join(external)}), and libvirt cannot mix internal "
                    "snapshots with them; take a disk-only snapshot, or delete the disk-only snapshots first"
                )
            return
        if internal := sorted(p.name for p in parsed.values() if not p.external):
            raise Unsupported(
                f"{head}: it has memory snapshots ({', '.join(internal)}), and libvirt cannot delete a disk-only "
                "snapshot taken on top of one; take a memory snapshot, or delete the memory snapshots first"
            )
        self._overlays("", dom)  # for its refusals only: the overlay names do not matter here

    def new_files(self, name: str, kind: SnapshotKind) -> builtins.list[Path]:
        """The overlay files a disk-only or quiesced snapshot ``name`` would create; none for a memory snapshot."""
        if kind is SnapshotKind.MEMORY:
            return []
        return list(self._overlays(name, self._domain())[0].values())

    def _overlays(self, name: str, dom: Domain) -> tuple[dict[str, Path], builtins.list[str]]:
        """The overlay of each writable disk, and the targets left out (read-only disks, removable drives)."""
        disks = list(dom.disks)
        files = [d.path for d in disks if d.source_type == "file" and d.path is not None]
        overlays: dict[str, Path] = {}
        skip: builtins.list[str] = []
        for disk in disks:
            target = disk.target or ""
            if disk.readonly or disk.device in ("cdrom", "floppy"):
                skip.append(target)
            elif disk.path is None or disk.source_type not in ("file", "block"):
                raise Unsupported(
                    f"cannot take a disk-only snapshot of {self._vm}: disk {target} is not a local file or "
                    "device, and the overlay of a disk-only snapshot must be a local file"
                )
            elif disk.source_type == "file":
                overlays[target] = overlay_path(disk.path.parent, self._vm, target, name)
            elif files:  # a block device: its overlay goes beside the VM's first image file
                overlays[target] = overlay_path(files[0].parent, self._vm, target, name)
            else:
                raise Unsupported(
                    f"cannot take a disk-only snapshot of {self._vm}: disk {target} is a host block device and "
                    "the VM has no image file beside which its overlay could go"
                )
        if not overlays:
            raise Unsupported(f"cannot take a disk-only snapshot of {self._vm}: it has no writable disk")
        return overlays, skip

    def _lib_version(self) -> int:
        if self._version is None:
            with libvirt_errors(self._what("read the libvirt version of the host of")):
                self._version = int(self._dom.connect().getLibVersion())
        return self._version

    def _parsed_one(self, name: str) -> ParsedSnapshot:
        snap = self._lookup(name)
        if snap is None:
            raise NotFound(f"{self._vm} on {self._host} has no snapshot named {name!r}")
        with libvirt_errors(self._what(f"read snapshot {name} of")):
            return snapshot_xml.parse(snap.getXMLDesc(0))

    def check_revert(self, name: str) -> None:
        """Refuse a revert to an external snapshot before libvirt 9.9.

        :raises NotFound: no such snapshot.
        :raises Unsupported: why, and what would work instead.
        """
        if self._parsed_one(name).external and (why := revert_refusal(name, self._vm, self._lib_version())):
            raise Unsupported(why)

    def _doomed(self, name: str, children: bool, parsed: dict[str, ParsedSnapshot]) -> builtins.list[str]:
        """``name`` and, with ``children``, its descendants: deepest first."""
        if not children:
            return [name]
        family = parents_first({p.name: p.parent for p in parsed.values()}, root=name)
        return [n for n, _ in sorted(family, key=lambda item: (-item[1], item[0]))]

    def check_delete(self, name: str, *, children: bool) -> None:
        """Refuse deleting an external snapshot whose parent is internal (libvirt 9.0 cannot).

        :raises NotFound: no such snapshot.
        :raises Unsupported: why, and what would work instead.
        """
        parsed = self._parsed()
        if name not in parsed:
            raise NotFound(f"{self._vm} on {self._host} has no snapshot named {name!r}")
        for doomed in self._doomed(name, children, parsed):
            snap = parsed[doomed]
            parent = parsed.get(snap.parent) if snap.parent else None
            if snap.external and parent is not None and not parent.external:
                raise Unsupported(
                    f"cannot delete snapshot {doomed} of {self._vm}: it is a disk-only snapshot on top of the memory "
                    f"snapshot {parent.name}, and libvirt cannot merge it away from there; keep it, or delete the "
                    "VM's snapshots with the VM"
                )

    # -- changing -----------------------------------------------------------------------------------------------

    def create(self, name: str, kind: SnapshotKind, *, description: str) -> SnapshotInfo:
        """Take the snapshot; a disk-only one also records what libvirt does not keep (see the XML module).

        :raises VirtkitError: translated from libvirt; nothing was taken then.
        """
        if kind is SnapshotKind.MEMORY:
            text = snapshot_xml.render(name, description)
        else:
            overlays, skip = self._overlays(name, self._domain())
            text = snapshot_xml.render(name, description, overlays=overlays, skip=skip)
        with libvirt_errors(self._what(f"take snapshot {name} of")):
            state, reason = self._dom.state()
            self._dom.snapshotCreateXML(text, _CREATE_FLAGS[kind])
        if kind is not SnapshotKind.MEMORY:
            vm_state = states.to_state(state, reason, managed_save=False)
            record = SnapshotRecord(quiesced=kind is SnapshotKind.QUIESCED, vm_state=vm_state.value)
            self._keep_records({**self._records(), name: record})
        info = self.get(name)
        if info is None:
            raise NotFound(f"snapshot {name} of {self._vm} vanished right after it was taken")
        return info

    def revert(self, name: str) -> None:
        """Revert to the snapshot with libvirt's defaults: the VM returns to the power state it had then.

        A revert also brings back the domain definition saved with the snapshot, and with it an older snapshot
        record: the record is written back afterwards.
        """
        records = self._records()
        snap = self._lookup(name)
        if snap is None:
            raise NotFound(f"{self._vm} on {self._host} has no snapshot named {name!r}")
        with libvirt_errors(f"revert {self._vm} on {self._host} to snapshot {name}"):
            self._dom.revertToSnapshot(snap, 0)
        if records:
            self._keep_records(records)

    def _keep_records(self, records: dict[str, SnapshotRecord]) -> None:
        """Write back the records of the snapshots that exist, when that differs from what the domain holds.

        Best effort: the snapshot operation before it succeeded, and a lost record only makes a quiesced snapshot
        read as disk-only (and a paused one as running).
        """
        with contextlib.suppress(VirtkitError):
            existing = self._parsed()
            kept = {n: r for n, r in records.items() if n in existing}
            if kept != self._records():
                self._write_records(kept)

    def delete(self, name: str, *, children: bool) -> None:
        """Delete ``name`` (and with ``children`` its descendants, one at a time when external: deepest first).

        :raises VirtkitError: translated from libvirt; snapshots deleted before the failure stay deleted.
        """
        parsed = self._parsed()
        if name not in parsed:
            raise NotFound(f"{self._vm} on {self._host} has no snapshot named {name!r}")
        doomed = self._doomed(name, children, parsed)
        try:
            if children and not any(parsed[n].external for n in doomed):
                self._delete_one(name, libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN)
            else:
                for each in doomed:
                    self._delete_one(each, 0)
        finally:
            with contextlib.suppress(VirtkitError):  # the deletion's own error is the one to report
                self._keep_records(self._records())

    def _delete_one(self, name: str, flags: int) -> None:
        snap = self._lookup(name)
        if snap is None:
            return
        with libvirt_errors(self._what(f"delete snapshot {name} of")):
            snap.delete(flags)
