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
from collections.abc import Mapping, Sequence
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
    "parse",
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

    @property
    def external(self) -> bool:
        """Whether it lives in files outside the disk images (memory file or disk overlays)."""
        return self.memory == "external" or any(mode == "external" for _, mode in self.disks)


@dataclasses.dataclass(frozen=True)
class SnapshotRecord:
    """What virtkit remembers about a snapshot that libvirt does not keep."""

    quiesced: bool
    vm_state: str  # virtkit's VMState value at the time it was taken


def render(name: str, description: str, *, overlays: Mapping[str, Path] | None = None, skip: Sequence[str] = ()) -> str:
    """A ``<domainsnapshot>`` for libvirt.

    :param overlays: for a disk-only snapshot, the new qcow2 overlay file of each disk target; ``None`` leaves the
        snapshot's layout to libvirt (an internal snapshot, with memory when the VM runs).
    :param skip: disk targets left out of a disk-only snapshot (read-only disks, empty drives).
    """
    snap = DomainSnapshot()
    snap.name = name
    snap.description = description or None
    if overlays is not None:
        snap.memory = "no"
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
    )


class _Record(XMLObject):
    """One snapshot's entry in virtkit's record."""

    TAG = "snapshot"
    name = XMLProperty("./@name")
    quiesced = XMLProperty("./@quiesced", YES_NO, default=False)
    state = XMLProperty("./@state", default="")


class _Records(XMLObject):
    """virtkit's record element: libvirt stores it under :data:`RECORD_NS` and returns it with that namespace."""

    TAG = "snapshots"
    entries = XMLChildren(_Record)


def render_records(records: Mapping[str, SnapshotRecord]) -> str:
    """virtkit's record element for the domain's ``<metadata>`` (libvirt puts it in :data:`RECORD_NS`)."""
    root = _Records()
    for name in sorted(records):
        entry = root.entries.add(_Record())
        entry.name = name
        entry.quiesced = records[name].quiesced
        entry.state = records[name].vm_state
    return root.to_string()


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
            out[entry.name] = SnapshotRecord(quiesced=entry.quiesced, vm_state=entry.state)
        except ValueError:
            continue  # a quiesced flag that is neither yes nor no
    return out
