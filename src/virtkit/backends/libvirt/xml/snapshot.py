"""Snapshot XML (``<domainsnapshot>``) to libvirt and back, declared once like the domain's.

No policy here: which disks get overlays and where they go is decided in :mod:`virtkit.backends.libvirt.snapshots`.
The domain facts snapshots depend on (its disks, pflash firmware, the agent's channel) are the domain's own, in
:class:`~virtkit.backends.libvirt.xml.domain.Domain`.

libvirt records nothing about quiescing, and for a disk-only snapshot of an active VM its ``<state>`` says only
``disk-snapshot``. virtkit keeps those two facts in a record of its own, in the domain's ``<metadata>`` under
:data:`RECORD_NS` (see :func:`render_records`). See https://libvirt.org/formatsnapshot.html.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from virtkit.backends.libvirt.xml.base import INT, PATH, YES_NO, XMLChildren, XMLObject, XMLProperty
from virtkit.errors import BackendError

__all__ = [
    "RECORD_NS",
    "RECORD_PREFIX",
    "DomainSnapshot",
    "ParsedSnapshot",
    "SnapshotDisk",
    "SnapshotRecord",
    "embedded_domain",
    "parse",
    "parse_owned",
    "parse_records",
    "render",
    "render_records",
]

#: virtkit's namespace for its per-snapshot record in the domain's ``<metadata>``, and the prefix libvirt writes.
RECORD_NS = "https://virtkit.dev/xmlns/snapshots/1"
RECORD_PREFIX = "virtkit-snapshots"


class SnapshotDisk(XMLObject):
    """One ``<disks><disk>`` of a snapshot: what happens to a disk, and an external snapshot's overlay."""

    TAG = "disk"
    name = XMLProperty("./@name")  # the disk's target
    snapshot = XMLProperty("./@snapshot")  # internal, external, no, manual
    type = XMLProperty("./@type")
    driver_type = XMLProperty("./driver/@type")
    source_file = XMLProperty("./source/@file", PATH)


class DomainSnapshot(XMLObject):
    """A ``<domainsnapshot>``."""

    TAG = "domainsnapshot"
    name = XMLProperty("./name")
    description = XMLProperty("./description")
    state = XMLProperty("./state", default="nostate")  # running, paused, shutoff, disk-snapshot...
    created = XMLProperty("./creationTime", INT)
    parent = XMLProperty("./parent/name")
    memory = XMLProperty("./memory/@snapshot", default="no")  # no, internal, external
    memory_file = XMLProperty("./memory/@file", PATH)
    disks = XMLChildren(SnapshotDisk, "./disks")


@dataclasses.dataclass(frozen=True)
class ParsedSnapshot:
    """The fields of a ``<domainsnapshot>`` that virtkit reads."""

    name: str
    description: str
    state: str  # running, paused, shutoff, disk-snapshot, ...
    created: int
    parent: str | None
    memory: str  # no, internal, external
    disks: tuple[tuple[str, str], ...]  # (target, snapshot mode: internal, external, no, manual)
    #: An external snapshot's memory file (``None`` when it holds no memory, or keeps it internally).
    memory_file: Path | None = None
    #: An external snapshot's overlays: (disk target, the overlay made for it then).
    overlays: tuple[tuple[str, Path], ...] = ()

    @property
    def external(self) -> bool:
        """Whether it lives in files outside the disk images (memory file or disk overlays)."""
        return self.memory == "external" or any(mode == "external" for _, mode in self.disks)


@dataclasses.dataclass(frozen=True)
class SnapshotRecord:
    """What virtkit remembers about a snapshot that libvirt does not keep."""

    quiesced: bool
    vm_state: str  # virtkit's VMState value at the time it was taken
    #: The copy of the VM's UEFI variable store taken with it (a UEFI VM's snapshot with memory).
    nvram: Path | None = None
    #: The name it is shown by, when it was renamed (libvirt cannot rename a snapshot).
    label: str | None = None


def render(
    name: str,
    description: str,
    *,
    overlays: Mapping[str, Path] | None = None,
    skip: Sequence[str] = (),
    memory_file: Path | None = None,
) -> str:
    """A ``<domainsnapshot>`` for libvirt.

    :param overlays: for an external snapshot, the new qcow2 overlay file of each disk target; ``None`` leaves the
        snapshot's layout to libvirt (an internal snapshot, with memory when the VM runs).
    :param skip: disk targets left out of an external snapshot (read-only disks, empty drives).
    :param memory_file: with ``overlays``, the file the running VM's memory is saved to (an external snapshot with
        memory); ``None`` for a disk-only one.
    """
    snap = DomainSnapshot()
    snap.name = name
    snap.description = description or None
    if overlays is not None:
        snap.memory = "external" if memory_file is not None else "no"
        snap.memory_file = memory_file
        for target, path in overlays.items():
            disk = snap.disks.add(SnapshotDisk())
            disk.name, disk.snapshot, disk.type = target, "external", "file"
            disk.driver_type = "qcow2"
            disk.source_file = path
        for target in skip:
            disk = snap.disks.add(SnapshotDisk())
            disk.name, disk.snapshot = target, "no"
    return snap.to_string()


def parse(xml: str) -> ParsedSnapshot:
    """The fields virtkit reads from a snapshot's XML (``virDomainSnapshotGetXMLDesc``).

    :raises BackendError: the XML does not parse or has no name.
    """
    snap = DomainSnapshot.from_string(xml)
    if not snap.name:
        raise BackendError("a snapshot XML from libvirt has no <name>")
    try:
        created = snap.created or 0
    except ValueError:
        created = 0
    return ParsedSnapshot(
        name=snap.name,
        description=snap.description or "",
        state=snap.state,
        created=created,
        parent=snap.parent or None,
        memory=snap.memory,
        disks=tuple((d.name or "", d.snapshot or "") for d in snap.disks),
        memory_file=snap.memory_file if snap.memory == "external" else None,
        overlays=tuple(
            (d.name or "", d.source_file) for d in snap.disks if d.snapshot == "external" and d.source_file is not None
        ),
    )


def embedded_domain(xml: str) -> str | None:
    """The definition a snapshot's XML keeps of the VM as it was then: its ``<inactiveDomain>`` (the persistent
    definition of a running VM) or else its ``<domain>``, as a ``<domain>`` document; ``None`` when it has neither.

    :raises BackendError: the XML does not parse.
    """
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise BackendError(f"cannot read a snapshot XML from libvirt: {exc}") from None
    found = root.find("inactiveDomain")
    if found is None:
        found = root.find("domain")
    if found is None:
        return None
    found.tag = "domain"
    return ET.tostring(found, encoding="unicode")


class _Record(XMLObject):
    """One snapshot's entry in virtkit's record."""

    TAG = "snapshot"
    name = XMLProperty("./@name")
    quiesced = XMLProperty("./@quiesced", YES_NO, default=False)
    state = XMLProperty("./@state", default="")
    nvram = XMLProperty("./@nvram", PATH)
    label = XMLProperty("./@label")


class _Owned(XMLObject):
    """A file virtkit made for a snapshot or a revert (an overlay), and removes once nothing needs it."""

    TAG = "file"
    path = XMLProperty("./@path", PATH)


class _Records(XMLObject):
    """virtkit's record element: libvirt stores it under :data:`RECORD_NS` and returns it with that namespace."""

    TAG = "snapshots"
    entries = XMLChildren(_Record)
    owned = XMLChildren(_Owned)


def render_records(records: Mapping[str, SnapshotRecord], owned: Iterable[Path] = ()) -> str:
    """virtkit's record element for the domain's ``<metadata>`` (libvirt puts it in :data:`RECORD_NS`): one entry
    per snapshot, and the files virtkit made for snapshots that it still keeps."""
    root = _Records()
    for name in sorted(records):
        entry = root.entries.add(_Record())
        record = records[name]
        entry.name = name
        entry.quiesced = record.quiesced
        entry.state = record.vm_state
        entry.nvram = record.nvram
        entry.label = record.label
    for path in sorted(set(owned)):
        root.owned.add(_Owned()).path = path
    return root.to_string()


def parse_owned(xml: str) -> set[Path]:
    """The files listed as virtkit's own in the element :func:`render_records` wrote.

    :raises BackendError: the XML does not parse.
    """
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise BackendError(f"cannot read the snapshot record XML libvirt returned: {exc}") from None
    found = (_Owned(el).path for el in root.iter() if el.tag.rpartition("}")[2] == _Owned.TAG)
    return {path for path in found if path is not None}


def parse_records(xml: str) -> dict[str, SnapshotRecord]:
    """The records in the element :func:`render_records` wrote, as ``virDomainGetMetadata`` returns it (libvirt
    puts its root in :data:`RECORD_NS`, so entries are found by their local name); entries that do not parse are
    skipped.

    :raises BackendError: the XML does not parse.
    """
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise BackendError(f"cannot read the snapshot record XML libvirt returned: {exc}") from None
    out = {}
    for el in root.iter():
        entry = _Record(el)
        if el.tag.rpartition("}")[2] != _Record.TAG or not entry.name:
            continue
        try:
            out[entry.name] = SnapshotRecord(entry.quiesced, entry.state, entry.nvram, entry.label or None)
        except ValueError:
            continue  # a quiesced flag that is neither yes nor no
    return out
