"""``LibvirtSnapshots``: the snapshots of one libvirt domain, and what libvirt can and cannot do with them.

``memory`` snapshots are libvirt's internal snapshots (``savevm`` into the qcow2 images), except for a VM with UEFI
pflash firmware: there they are external snapshots with memory (the memory in a file beside the disks, and a copy
of the UEFI variable store the caller takes). ``disk-only`` and ``quiesced`` are external snapshots: each writable
disk gets a new qcow2 overlay beside it (see :func:`.external.overlay_path`) that the VM writes to from then on. Limits
measured on libvirt 9.0 (docs/platform.md):

- internal snapshots need every writable disk in qcow2, and fail with UEFI pflash firmware;
- revert to an external snapshot arrived in libvirt 9.9 ("not supported yet" before): before it, reverting to and
  deleting external snapshots is done by the caller, with the steps of :mod:`.external` (:meth:`by_hand`);
- internal and external snapshots of one VM do not mix: libvirt cannot delete an external snapshot whose parent is
  internal, nor an internal one once an overlay is in use, and an internal snapshot taken on an overlay is lost
  from the disk chain when an earlier snapshot is reverted to;
- libvirt cannot rename a snapshot (an internal one is found in the qcow2 images by its name): a renamed snapshot
  keeps its name in libvirt, and virtkit's record says the name it is shown by.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
from collections.abc import Mapping
from pathlib import Path

import libvirt

from virtkit.backends.base.snapshots import ExternalSnapshot
from virtkit.backends.libvirt import design, external, states, tables
from virtkit.backends.libvirt.agent import LibvirtAgent
from virtkit.backends.libvirt.errors import libvirt_errors, translate
from virtkit.backends.libvirt.external import memory_path, nvram_copy_path, overlay_path
from virtkit.backends.libvirt.xml import snapshot as snapshot_xml
from virtkit.backends.libvirt.xml.devices.disk import Disk
from virtkit.backends.libvirt.xml.domain import Domain
from virtkit.backends.libvirt.xml.snapshot import ParsedSnapshot, SnapshotRecord
from virtkit.errors import AlreadyExists, NotFound, Unsupported, VirtkitError
from virtkit.models.disk import DiskFormat
from virtkit.models.snapshot import SnapshotInfo, SnapshotKind
from virtkit.models.state import VMState

__all__ = ["EXTERNAL_REVERT_VERSION", "LibvirtSnapshots", "parents_first"]

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
    if parsed.memory == "external" or (record is not None and record.nvram is not None):
        # a UEFI VM's memory snapshot (with no memory file when it was taken stopped), or one virsh --memspec took
        return SnapshotKind.MEMORY
    if parsed.external:
        return SnapshotKind.QUIESCED if record is not None and record.quiesced else SnapshotKind.DISK_ONLY
    return SnapshotKind.MEMORY


class LibvirtSnapshots:
    """The snapshots of one libvirt domain, by the names they are shown by."""

    def __init__(self, dom: libvirt.virDomain, vm: str, host: str) -> None:
        self._dom = dom
        self._vm = vm
        self._host = host
        self._version: int | None = None

    def _what(self, op: str) -> str:
        return f"{op} {self._vm} on {self._host}"

    def _missing(self, name: str) -> NotFound:
        return NotFound(f"{self._vm} on {self._host} has no snapshot named {name!r}")

    # -- virtkit's record: how snapshots are shown, what libvirt does not keep, the files made for them ---------

    def _metadata(self) -> str | None:
        with libvirt_errors(self._what("read the definition of")):
            persistent = bool(self._dom.isPersistent())
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG if persistent else libvirt.VIR_DOMAIN_AFFECT_LIVE
        try:
            text: str = self._dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, snapshot_xml.RECORD_NS, flags)
        except libvirt.libvirtError as exc:
            err = translate(exc, self._what("read the snapshot records of"))
            if isinstance(err, NotFound):  # no record yet
                return None
            raise err from exc
        return text

    def _records(self) -> dict[str, SnapshotRecord]:
        text = self._metadata()
        return snapshot_xml.parse_records(text) if text else {}

    def owned(self) -> set[Path]:
        """The overlays virtkit made for snapshots and reverts, kept while something needs them."""
        text = self._metadata()
        return snapshot_xml.parse_owned(text) if text else set()

    def _write(self, records: dict[str, SnapshotRecord], owned: set[Path]) -> None:
        with libvirt_errors(self._what("write the snapshot records of")):
            flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG if self._dom.isPersistent() else 0
            if self._dom.isActive():
                flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
            empty = not records and not owned
            text = None if empty else snapshot_xml.render_records(records, owned)
            key = None if empty else snapshot_xml.RECORD_PREFIX
            self._dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, text, key, snapshot_xml.RECORD_NS, flags)

    def set_owned(self, paths: set[Path]) -> None:
        """Replace the set of files :meth:`owned` returns."""
        self._keep(self._records(), paths)

    def _keep(self, records: dict[str, SnapshotRecord], owned: set[Path]) -> None:
        """Write back the records of the snapshots that exist, and ``owned``, when that differs from what the
        domain holds (a revert brings back the definition of its time, with the record of then)."""
        existing = self._parsed()
        kept = {n: r for n, r in records.items() if n in existing}
        if (kept, owned) != (self._records(), self.owned()):
            self._write(kept, owned)

    def _keep_quietly(self, records: dict[str, SnapshotRecord], owned: set[Path]) -> None:
        """:meth:`_keep` as a best effort after an operation that succeeded: a lost record only makes a quiesced
        snapshot read as disk-only (a paused one as running) and leaves a file to remove by hand."""
        with contextlib.suppress(VirtkitError):
            self._keep(records, owned)

    # -- names: libvirt's, and the ones snapshots are shown by --------------------------------------------------

    def _real(self, name: str, records: dict[str, SnapshotRecord] | None = None) -> str | None:
        """libvirt's name of the snapshot shown as ``name``, or ``None``."""
        records = self._records() if records is None else records
        for real, record in records.items():
            if record.label == name:
                return real
        if name in records and records[name].label not in (None, name):
            return None  # renamed: this name is no longer shown
        return name if self._lookup(name) is not None else None

    def _shown(self, real: str | None, records: dict[str, SnapshotRecord]) -> str | None:
        record = records.get(real) if real is not None else None
        return record.label if record is not None and record.label else real

    def _new_real(self, name: str) -> str:
        """A libvirt name for a new snapshot shown as ``name``: ``name`` itself unless a renamed one keeps it."""
        real, n = name, 1
        while self._lookup(real) is not None:
            n += 1
            real = f"{name}.{n}"
        return real

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

    def _info(self, parsed: ParsedSnapshot, current: bool, records: dict[str, SnapshotRecord]) -> SnapshotInfo:
        record = records.get(parsed.name) if parsed.external else None
        vm_state = tables.SNAPSHOT_STATE.get(parsed.state, VMState.UNKNOWN)
        if record is not None:
            vm_state = next((s for s in VMState if s.value == record.vm_state), vm_state)
        kind = _kind(parsed, record)
        return SnapshotInfo(
            name=self._shown(parsed.name, records) or parsed.name,
            vm=self._vm,
            kind=kind,
            created=parsed.created,
            parent=self._shown(parsed.parent, records),
            current=current,
            vm_state=vm_state,
            quiesced=kind is SnapshotKind.QUIESCED,
            description=parsed.description,
        )

    def list(self) -> builtins.list[SnapshotInfo]:
        """Every snapshot of the VM (one listing, one XML read per snapshot)."""
        parsed = self._parsed()
        current = self._current_real()
        records = self._records()
        return [self._info(p, p.name == current, records) for p in parsed.values()]

    def get(self, name: str) -> SnapshotInfo | None:
        """The snapshot shown as ``name``, or ``None``."""
        records = self._records()
        real = self._real(name, records)
        snap = self._lookup(real) if real is not None else None
        if snap is None:
            return None
        with libvirt_errors(self._what(f"read snapshot {name} of")):
            parsed = snapshot_xml.parse(snap.getXMLDesc(0))
            current = bool(snap.isCurrent(0))
        return self._info(parsed, current, records)

    def _current_real(self) -> str | None:
        try:
            name: str = self._dom.snapshotCurrent(0).getName()
        except libvirt.libvirtError as exc:
            err = translate(exc, self._what("read the current snapshot of"))
            if isinstance(err, NotFound):  # no current snapshot
                return None
            raise err from exc
        return name

    def current_name(self) -> str | None:
        """The name of the current snapshot, or ``None``."""
        return self._shown(self._current_real(), self._records())

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

    def _domain(self, flags: int = 0) -> Domain:
        with libvirt_errors(self._what("read the definition of")):
            xml: str = self._dom.XMLDesc(flags)  # the running definition while it runs: its disks are the live ones
        return Domain.from_string(xml)

    def check_create(self, kind: SnapshotKind) -> None:
        """Refuse what libvirt cannot take (see the module's docstring).

        :raises Unsupported: why, and what would work instead.
        """
        dom = self._domain()
        parsed = self._parsed()
        head = f"cannot take a {kind.value} snapshot of {self._vm}"
        if kind is SnapshotKind.MEMORY and dom.has_pflash:
            if dom.nvram is None:
                raise Unsupported(
                    f"{head}: its UEFI variable store has no file of its own named in its definition, so no copy of "
                    "it can be kept with the snapshot; take a disk-only snapshot"
                )
            self._overlays("", dom, kind)  # for its refusals only
            return
        if kind is SnapshotKind.MEMORY:
            for disk in dom.disks:
                if disk.device == "disk" and not disk.readonly and disk.known_format is not DiskFormat.QCOW2:
                    raise Unsupported(
                        f"{head}: memory (internal) snapshots live inside qcow2 images and disk {disk.target} is "
                        f"{Disk.format.raw(disk) or 'of unknown format'}; take a disk-only snapshot, or convert the "
                        "disk to qcow2"
                    )
            if external_ := sorted(p.name for p in parsed.values() if p.external):
                raise Unsupported(
                    f"{head}: it has disk-only snapshots ({', '.join(external_)}), and libvirt cannot mix internal "
                    "snapshots with them; take a disk-only snapshot, or delete the disk-only snapshots first"
                )
            return
        if internal := sorted(p.name for p in parsed.values() if not p.external):
            raise Unsupported(
                f"{head}: it has memory snapshots ({', '.join(internal)}), and libvirt cannot delete a disk-only "
                "snapshot taken on top of one; take a memory snapshot, or delete the memory snapshots first"
            )
        self._overlays("", dom, kind)  # for its refusals only: the overlay names do not matter here

    def _external_memory(self, kind: SnapshotKind, dom: Domain) -> bool:
        """Whether a snapshot of ``kind`` is an external one with memory (a memory snapshot of a UEFI VM)."""
        return kind is SnapshotKind.MEMORY and dom.has_pflash

    def new_files(self, name: str, kind: SnapshotKind) -> builtins.list[Path]:
        """The files snapshot ``name`` of ``kind`` would create: the overlays of an external snapshot, its memory
        file and its copy of the UEFI variable store; none for an internal one."""
        dom = self._domain()
        if kind is SnapshotKind.MEMORY and not dom.has_pflash:
            return []
        real = self._new_real(name)
        overlays = self._overlays(real, dom, kind)[0]
        files = list(overlays.values())
        if self._external_memory(kind, dom):
            directory = next(iter(overlays.values())).parent if overlays else dom.nvram.parent  # type: ignore[union-attr]
            if self._active():
                files.append(memory_path(directory, self._vm, real))
            files.append(nvram_copy_path(directory, self._vm, real))
        return files

    def nvram_files(self, name: str, kind: SnapshotKind) -> tuple[Path, Path] | None:
        """The UEFI variable store and the copy of it snapshot ``name`` of ``kind`` keeps, or ``None``."""
        dom = self._domain()
        if not self._external_memory(kind, dom) or dom.nvram is None:
            return None
        files = self.new_files(name, kind)
        return dom.nvram, files[-1]

    def _overlays(self, name: str, dom: Domain, kind: SnapshotKind) -> tuple[dict[str, Path], builtins.list[str]]:
        """The overlay of each writable disk, and the targets left out (read-only disks, removable drives)."""
        disks = list(dom.disks)
        files = [d.path for d in disks if d.source_type == "file" and d.path is not None]
        overlays: dict[str, Path] = {}
        skip: builtins.list[str] = []
        head = f"cannot take a {kind.value} snapshot of {self._vm}"
        for disk in disks:
            target = disk.target or ""
            if disk.readonly or disk.device in ("cdrom", "floppy"):
                skip.append(target)
            elif disk.path is None or disk.source_type not in ("file", "block"):
                raise Unsupported(
                    f"{head}: disk {target} is not a local file or device, and the overlay of an external snapshot "
                    "must be a local file"
                )
            elif disk.source_type == "file":
                overlays[target] = overlay_path(disk.path.parent, self._vm, target, name)
            elif files:  # a block device: its overlay goes beside the VM's first image file
                overlays[target] = overlay_path(files[0].parent, self._vm, target, name)
            else:
                raise Unsupported(
                    f"{head}: disk {target} is a host block device and the VM has no image file beside which its "
                    "overlay could go"
                )
        if not overlays and not self._external_memory(kind, dom):
            raise Unsupported(f"{head}: it has no writable disk")
        return overlays, skip

    def _active(self) -> bool:
        with libvirt_errors(self._what("read the state of")):
            return bool(self._dom.isActive())

    def _lib_version(self) -> int:
        if self._version is None:
            with libvirt_errors(self._what("read the libvirt version of the host of")):
                self._version = int(self._dom.connect().getLibVersion())
        return self._version

    def _parsed_one(self, name: str) -> tuple[str, ParsedSnapshot]:
        real = self._real(name)
        snap = self._lookup(real) if real is not None else None
        if real is None or snap is None:
            raise self._missing(name)
        with libvirt_errors(self._what(f"read snapshot {name} of")):
            return real, snapshot_xml.parse(snap.getXMLDesc(0))

    def by_hand(self, name: str) -> bool:
        """Whether reverting to or deleting ``name`` is the caller's work: an external snapshot before libvirt 9.9.

        :raises NotFound: no such snapshot.
        """
        return self._parsed_one(name)[1].external and self._lib_version() < EXTERNAL_REVERT_VERSION

    def check_revert(self, name: str) -> None:
        """Nothing libvirt or virtkit cannot revert to is left: only the snapshot must exist.

        :raises NotFound: no such snapshot.
        """
        self._parsed_one(name)

    def _doomed(self, name: str, children: bool, parsed: dict[str, ParsedSnapshot]) -> builtins.list[str]:
        """``name`` (libvirt's) and, with ``children``, its descendants: deepest first."""
        if not children:
            return [name]
        family = parents_first({p.name: p.parent for p in parsed.values()}, root=name)
        return [n for n, _ in sorted(family, key=lambda item: (-item[1], item[0]))]

    def check_delete(self, name: str, *, children: bool) -> None:
        """Refuse deleting an external snapshot whose parent is internal (libvirt 9.0 cannot).

        :raises NotFound: no such snapshot.
        :raises Unsupported: why, and what would work instead.
        """
        real = self._parsed_one(name)[0]
        parsed = self._parsed()
        records = self._records()
        for doomed in self._doomed(real, children, parsed):
            snap = parsed[doomed]
            parent = parsed.get(snap.parent) if snap.parent else None
            if snap.external and parent is not None and not parent.external:
                raise Unsupported(
                    f"cannot delete snapshot {self._shown(doomed, records)} of {self._vm}: it is a disk-only snapshot "
                    f"on top of the memory snapshot {self._shown(parent.name, records)}, and libvirt cannot merge it "
                    "away from there; keep it, or delete the VM's snapshots with the VM"
                )

    # -- changing -----------------------------------------------------------------------------------------------

    def create(
        self,
        name: str,
        kind: SnapshotKind,
        *,
        description: str,
        nvram_copy: Path | None = None,
        vm_state: VMState | None = None,
    ) -> SnapshotInfo:
        """Take the snapshot; an external one also records what libvirt does not keep (see the XML module).

        :raises VirtkitError: translated from libvirt; nothing was taken then.
        """
        real = self._new_real(name)
        dom = self._domain()
        records, owned = self._records(), self.owned()
        flags = _CREATE_FLAGS[kind]
        if kind is SnapshotKind.MEMORY and not dom.has_pflash:
            text = snapshot_xml.render(real, description)
            overlays: dict[str, Path] = {}
        else:
            overlays, skip = self._overlays(real, dom, kind)
            memory = None
            if self._external_memory(kind, dom) and not self._active():
                flags = _CREATE_FLAGS[SnapshotKind.DISK_ONLY]  # libvirt takes external snapshots of a stopped VM so
            elif self._external_memory(kind, dom):
                directory = next(iter(overlays.values())).parent if overlays else dom.nvram.parent  # type: ignore[union-attr]
                memory = memory_path(directory, self._vm, real)
            text = snapshot_xml.render(real, description, overlays=overlays, skip=skip, memory_file=memory)
        with libvirt_errors(self._what(f"take snapshot {name} of")):
            state, reason = self._dom.state()
            self._dom.snapshotCreateXML(text, flags)
        if overlays or real != name or nvram_copy is not None:
            was = vm_state or states.to_state(state, reason, managed_save=False)
            record = SnapshotRecord(
                quiesced=kind is SnapshotKind.QUIESCED,
                vm_state=was.value,
                nvram=nvram_copy,
                label=name if real != name else None,
            )
            self._keep_quietly({**records, real: record}, owned | set(overlays.values()))
        info = self.get(name)
        if info is None:
            raise NotFound(f"snapshot {name} of {self._vm} vanished right after it was taken")
        return info

    def rename(self, name: str, new_name: str) -> None:
        """Show ``name`` as ``new_name`` from now on (libvirt's name and the files stay).

        :raises NotFound: no such snapshot.
        :raises AlreadyExists: a snapshot is shown as ``new_name`` already.
        """
        records = self._records()
        real = self._real(name, records)
        if real is None:
            raise self._missing(name)
        if self._real(new_name, records) is not None:
            raise AlreadyExists(f"{self._vm} on {self._host} has a snapshot named {new_name!r} already")
        old = records.get(real, SnapshotRecord(quiesced=False, vm_state=""))
        label = None if new_name == real else new_name
        self._write({**records, real: dataclasses.replace(old, label=label)}, self.owned())

    def revert(self, name: str) -> None:
        """Revert to the snapshot with libvirt's defaults: the VM returns to the power state it had then.

        A revert also brings back the domain definition saved with the snapshot, and with it an older snapshot
        record: the record is written back afterwards.
        """
        records, owned = self._records(), self.owned()
        real = self._real(name, records)
        snap = self._lookup(real) if real is not None else None
        if snap is None:
            raise self._missing(name)
        try:
            with libvirt_errors(f"revert {self._vm} on {self._host} to snapshot {name}"):
                self._dom.revertToSnapshot(snap, 0)
        finally:
            self._keep_quietly(records, owned)

    def delete(self, name: str, *, children: bool) -> None:
        """Delete ``name`` (and with ``children`` its descendants, one at a time when external: deepest first).

        :raises VirtkitError: translated from libvirt; snapshots deleted before the failure stay deleted.
        """
        self._drop(name, children=children, flags=0)

    def _drop(self, name: str, *, children: bool, flags: int) -> None:
        records, owned = self._records(), self.owned()
        real = self._real(name, records)
        parsed = self._parsed()
        if real is None or real not in parsed:
            raise self._missing(name)
        doomed = self._doomed(real, children, parsed)
        try:
            if children and not any(parsed[n].external for n in doomed) and not flags:
                self._delete_one(real, libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN)
            else:
                for each in doomed:
                    self._delete_one(each, flags)
        finally:
            self._keep_quietly(records, owned)  # the deletion's own error is the one to report

    def _delete_one(self, name: str, flags: int) -> None:
        snap = self._lookup(name)
        if snap is None:
            return
        what = self._what(f"delete snapshot {name} of")
        try:
            snap.delete(flags)
        except libvirt.libvirtError as exc:
            err = translate(exc, what)
            # libvirt's test driver keeps no snapshot files, and refuses METADATA_ONLY: its delete is just that.
            if not (isinstance(err, Unsupported) and flags and self._driver() == "TEST"):
                raise err from exc
            with libvirt_errors(what):
                snap.delete(0)

    def _driver(self) -> str:
        with libvirt_errors(self._what("read the driver of")):
            return str(self._dom.connect().getType())

    # -- external snapshots by hand (libvirt before 9.9): the steps the operations layer runs -------------------

    def external(self) -> builtins.list[ExternalSnapshot]:
        """Every external snapshot, with its files (its kept images read from the definition it kept)."""
        records = self._records()
        out = []
        with libvirt_errors(self._what("list the snapshots of")):
            texts = [s.getXMLDesc(0) for s in self._dom.listAllSnapshots(0)]
        for text in texts:
            parsed = snapshot_xml.parse(text)
            if not parsed.external:
                continue
            kept = snapshot_xml.embedded_domain(text)
            dom = Domain.from_string(kept) if kept else None
            images = external.writable_images(dom) if dom is not None else {}
            overlays = dict(parsed.overlays)
            info = self._info(parsed, False, records)
            record = records.get(parsed.name)
            out.append(
                ExternalSnapshot(
                    name=info.name,
                    vm_state=info.vm_state,
                    memory=parsed.memory_file,
                    nvram_copy=record.nvram if record is not None else None,
                    nvram=dom.nvram if dom is not None else None,
                    bases={t: images[t] for t in overlays if t in images},
                    overlays=overlays,
                )
            )
        return out

    def disk_images(self) -> dict[str, Path]:
        """The image each writable disk uses now, by target (the running definition's while it runs)."""
        return external.writable_images(self._domain())

    def restore(self, name: str, overlays: Mapping[str, Path]) -> None:
        """Bring the VM back to external snapshot ``name`` with ``overlays`` as its disks (see :mod:`.external`),
        and write back virtkit's record (the definition of then holds the record of then)."""
        records, owned = self._records(), self.owned()
        real = self._real(name, records)
        snap = self._lookup(real) if real is not None else None
        if real is None or snap is None:
            raise self._missing(name)
        found = next(e for e in self.external() if e.name == name)
        try:
            external.restore(
                self._dom,
                snap,
                overlays,
                memory=found.memory if found.vm_state in (VMState.RUNNING, VMState.PAUSED) else None,
                paused=found.vm_state is VMState.PAUSED,
                what=f"revert {self._vm} on {self._host} to snapshot {name}",
            )
        finally:  # a failed restore has defined the VM as it was then, with the record of then: write it back
            self._keep_quietly(records, owned | set(overlays.values()))

    def forget(self, name: str, *, children: bool) -> None:
        """Delete libvirt's record of ``name`` (with ``children``, of its descendants too), no file touched."""
        self._drop(name, children=children, flags=libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY)

    def commit_live(self, target: str, *, timeout: float) -> None:
        """Merge the active VM's top image of ``target`` into the one below, pivot to it, and make the persistent
        definition use it too."""
        what = self._what(f"merge the top image of disk {target} of")
        external.commit_live(self._dom, target, timeout=timeout, what=what)
        with libvirt_errors(what):
            persistent = bool(self._dom.isPersistent())
        disk = next((d for d in self._domain().disks if d.target == target), None)
        if persistent and disk is not None and disk.path is not None:
            self.repoint(target, disk.path, disk.known_format or DiskFormat.QCOW2)

    def repoint(self, target: str, path: Path, fmt: DiskFormat) -> None:
        """Make the persistent definition's disk ``target`` use the image ``path`` of format ``fmt``."""
        with libvirt_errors(self._what(f"point disk {target} at {path} in the definition of")):
            xml: str = self._dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
            self._dom.connect().defineXML(external.with_disks(xml, {target: path}, {target: fmt}))
