"""Snapshot XML (``<domainsnapshot>``) to libvirt and back, and the domain facts snapshots depend on. ElementTree only.

No policy here: which disks get overlays and where they go is decided in :mod:`virtkit.backends.libvirt.snapshots`.

libvirt records nothing about quiescing, and for a disk-only snapshot of an active VM its ``<state>`` says only
``disk-snapshot``. virtkit keeps those two facts in a record of its own, in the domain's ``<metadata>`` under
:data:`RECORD_NS` (see :func:`render_records`).
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

from virtkit.errors import BackendError

__all__ = [
    "RECORD_NS",
    "RECORD_PREFIX",
    "DomainDisk",
    "ParsedSnapshot",
    "SnapshotRecord",
    "agent_channel_state",
    "domain_disks",
    "domain_identity",
    "has_pflash",
    "parse",
    "parse_records",
    "render",
    "render_records",
]

#: virtkit's namespace for its per-snapshot record in the domain's ``<metadata>``, and the prefix libvirt writes.
RECORD_NS = "https://virtkit.dev/xmlns/snapshots/1"
RECORD_PREFIX = "virtkit-snapshots"


@dataclasses.dataclass(frozen=True)
class DomainDisk:
    """One ``<disk>`` of a domain definition, as far as snapshots care."""

    target: str
    device: str  # disk, cdrom, floppy, lun
    source_type: str  # file, block, network, volume
    source: str | None  # the file or device path; None for an empty drive or a network disk
    format: str | None  # the driver type: qcow2, raw, vpc...
    readonly: bool


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


def _fromstring(xml: str, what: str) -> ET.Element:
    try:
        return ET.fromstring(xml)
    except ET.ParseError as exc:
        raise BackendError(f"cannot read the {what} XML libvirt returned: {exc}") from None


def domain_disks(domain_xml: str) -> list[DomainDisk]:
    """The disks of a domain definition, in order.

    :raises BackendError: the XML does not parse.
    """
    root = _fromstring(domain_xml, "domain")
    out = []
    for el in root.findall("devices/disk"):
        target = el.find("target")
        source = el.find("source")
        driver = el.find("driver")
        path = None
        if source is not None:
            path = source.get("file") or source.get("dev")
        out.append(
            DomainDisk(
                target=target.get("dev", "") if target is not None else "",
                device=el.get("device", "disk"),
                source_type=el.get("type", "file"),
                source=path,
                format=driver.get("type") if driver is not None else None,
                readonly=el.find("readonly") is not None,
            )
        )
    return out


def has_pflash(domain_xml: str) -> bool:
    """Whether the domain boots UEFI firmware from pflash with a per-VM NVRAM store.

    :raises BackendError: the XML does not parse.
    """
    root = _fromstring(domain_xml, "domain")
    loader = root.find("os/loader")
    return root.find("os/nvram") is not None or (loader is not None and loader.get("type") == "pflash")


def agent_channel_state(domain_xml: str, channel: str) -> str | None:
    """The state libvirt reports for the guest-agent channel named ``channel``: ``connected`` while a program in the
    guest holds the port open, ``disconnected``, ``""`` when not reported; ``None`` when there is no such channel.

    :raises BackendError: the XML does not parse.
    """
    root = _fromstring(domain_xml, "domain")
    for el in root.findall("devices/channel/target"):
        if el.get("name") == channel:
            return el.get("state", "")
    return None


def render(name: str, description: str, *, overlays: Mapping[str, Path] | None = None, skip: Sequence[str] = ()) -> str:
    """A ``<domainsnapshot>`` for libvirt.

    :param overlays: for a disk-only snapshot, the new qcow2 overlay file of each disk target; ``None`` leaves the
        snapshot's layout to libvirt (an internal snapshot, with memory when the VM runs).
    :param skip: disk targets left out of a disk-only snapshot (read-only disks, empty drives).
    """
    root = ET.Element("domainsnapshot")
    ET.SubElement(root, "name").text = name
    if description:
        ET.SubElement(root, "description").text = description
    if overlays is not None:
        ET.SubElement(root, "memory", snapshot="no")
        disks = ET.SubElement(root, "disks")
        for target, path in overlays.items():
            disk = ET.SubElement(disks, "disk", name=target, snapshot="external", type="file")
            ET.SubElement(disk, "driver", type="qcow2")
            ET.SubElement(disk, "source", file=str(path))
        for target in skip:
            ET.SubElement(disks, "disk", name=target, snapshot="no")
    return ET.tostring(root, encoding="unicode")


def parse(xml: str) -> ParsedSnapshot:
    """The fields virtkit reads from a snapshot's XML (``virDomainSnapshotGetXMLDesc``).

    :raises BackendError: the XML does not parse or has no name.
    """
    root = _fromstring(xml, "snapshot")
    name = root.findtext("name")
    if not name:
        raise BackendError("a snapshot XML from libvirt has no <name>")
    memory = root.find("memory")
    created = root.findtext("creationTime") or "0"
    return ParsedSnapshot(
        name=name,
        description=root.findtext("description") or "",
        state=root.findtext("state") or "nostate",
        created=int(created) if created.isdigit() else 0,
        parent=root.findtext("parent/name") or None,
        memory=memory.get("snapshot", "no") if memory is not None else "no",
        disks=tuple((d.get("name", ""), d.get("snapshot", "")) for d in root.findall("disks/disk")),
    )


def render_records(records: Mapping[str, SnapshotRecord]) -> str:
    """virtkit's record element for the domain's ``<metadata>`` (libvirt puts it in :data:`RECORD_NS`)."""
    root = ET.Element("snapshots")
    for name in sorted(records):
        rec = records[name]
        ET.SubElement(root, "snapshot", name=name, quiesced="yes" if rec.quiesced else "no", state=rec.vm_state)
    return ET.tostring(root, encoding="unicode")


def parse_records(xml: str) -> dict[str, SnapshotRecord]:
    """The records in the element :func:`render_records` wrote (as ``virDomainGetMetadata`` returns it); entries
    that do not parse are skipped.

    :raises BackendError: the XML does not parse.
    """
    root = _fromstring(xml, "snapshot record")
    out = {}
    for el in root.iter():
        if el.tag.rpartition("}")[2] != "snapshot" or not el.get("name"):
            continue
        out[el.get("name", "")] = SnapshotRecord(quiesced=el.get("quiesced") == "yes", vm_state=el.get("state", ""))
    return out


def domain_identity(domain_xml: str) -> tuple[str, str, str]:
    """The ``name``, ``uuid`` and ``type`` (``kvm``, ``qemu``) of a domain definition.

    :raises BackendError: the XML does not parse or lacks a name or UUID.
    """
    root = _fromstring(domain_xml, "domain")
    name, uuid = root.findtext("name"), root.findtext("uuid")
    if not name or not uuid:
        raise BackendError("a domain XML from libvirt has no <name> or <uuid>")
    return name, uuid, root.get("type", "qemu")
