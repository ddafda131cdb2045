"""The libvirt steps of reverting to and deleting external snapshots by hand, where libvirt cannot (before 9.9).

An external snapshot leaves the images it keeps read-only under new qcow2 overlays, and (when the VM ran) its
memory in a file of libvirt's save format. Reverting to it on libvirt 9.0 is done here as measured there
(docs/platform.md): power the VM off, define the definition the snapshot kept with new overlays on the kept images
as its disks, restore the memory file with that definition (``restoreFlags``), and mark the snapshot current by
redefining it. Deleting one drops libvirt's record (``DELETE_METADATA_ONLY``, which moves its children up to its
parent); merging a top overlay into the image below it while the VM runs is an active block commit and a pivot.

Making and removing files (overlays, the copy of the UEFI variable store) is the operations layer's work, through
the host's storage: nothing here touches a file.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import libvirt

from virtkit.backends.libvirt.errors import libvirt_errors, translate
from virtkit.backends.libvirt.xml import domain as domain_xml
from virtkit.backends.libvirt.xml import snapshot as snapshot_xml
from virtkit.backends.libvirt.xml.domain import Domain
from virtkit.errors import BackendError, OperationTimeout
from virtkit.models.disk import DiskFormat, DiskKind

__all__ = [
    "commit_live",
    "memory_path",
    "nvram_copy_path",
    "overlay_path",
    "restore",
    "with_disks",
    "writable_images",
]

_POLL = 0.05  # seconds between reads of a block job's progress


def overlay_path(directory: Path, vm: str, target: str, snapshot: str) -> Path:
    """The overlay a disk-only snapshot makes for one disk: ``<vm>-<target>.<snapshot>.qcow2`` in ``directory``
    (the directory of the disk's present image), so names do not grow along a chain of snapshots."""
    return directory / f"{vm}-{target}.{snapshot}.qcow2"


def memory_path(directory: Path, vm: str, snapshot: str) -> Path:
    """The memory file of an external snapshot with memory: ``<vm>.<snapshot>.mem`` in ``directory``."""
    return directory / f"{vm}.{snapshot}.mem"


def nvram_copy_path(directory: Path, vm: str, snapshot: str) -> Path:
    """The copy of the UEFI variable store kept with a snapshot: ``<vm>.<snapshot>.nvram.fd`` in ``directory``."""
    return directory / f"{vm}.{snapshot}.nvram.fd"


def writable_images(dom: Domain) -> dict[str, Path]:
    """The image each writable disk of ``dom`` uses (file or block device), by target."""
    return {
        d.target: d.path for d in dom.disks if d.device == "disk" and not d.readonly and d.target and d.path is not None
    }


def with_disks(xml: str, overlays: Mapping[str, Path], formats: Mapping[str, DiskFormat] | None = None) -> str:
    """The ``<domain>`` ``xml`` with the disks of ``overlays``' targets on those image files (qcow2, unless
    ``formats`` says otherwise for a target), their backing chains left for libvirt to read from the images.

    :raises BackendError: ``xml`` is no domain, or lacks a disk of ``overlays``.
    """
    dom = Domain.from_string(xml)
    found = set()
    for disk in dom.disks:
        target = disk.target or ""
        path = overlays.get(target)
        if path is None:
            continue
        disk.kind = DiskKind.FILE
        disk.path = path
        disk.format = (formats or {}).get(target, DiskFormat.QCOW2)
        node = disk.node
        for chain in node.findall("backingStore"):
            node.remove(chain)
        found.add(disk.target)
    if missing := sorted(set(overlays) - found):
        raise BackendError(f"the definition kept with the snapshot has no disk {', '.join(missing)}")
    return domain_xml.to_string(dom.node)


def restore(
    dom: libvirt.virDomain,
    snap: libvirt.virDomainSnapshot,
    overlays: Mapping[str, Path],
    *,
    memory: Path | None,
    paused: bool,
    what: str,
) -> None:
    """Bring ``dom`` back to the external snapshot ``snap`` with ``overlays`` as its disks (see the module).

    :param memory: the snapshot's memory file; ``None`` leaves the VM off (the snapshot holds no memory).
    :param paused: restore the memory paused (the VM was paused when the snapshot was taken).
    :raises VirtkitError: translated from libvirt; the VM is off with the snapshot's disks when the memory could
        not be restored.
    """
    with libvirt_errors(what):
        conn = dom.connect()
        text: str = snap.getXMLDesc(libvirt.VIR_DOMAIN_SNAPSHOT_XML_SECURE)
        kept = snapshot_xml.embedded_domain(text)
        if kept is None:
            raise BackendError(f"cannot {what}: libvirt kept no definition with the snapshot")
        persistent = bool(dom.isPersistent())
        if dom.isActive():
            dom.destroy()
        if persistent:
            conn.defineXML(with_disks(kept, overlays))
        if memory is not None:
            live = with_disks(conn.saveImageGetXMLDesc(str(memory), libvirt.VIR_DOMAIN_SAVE_IMAGE_XML_SECURE), overlays)
            flags = libvirt.VIR_DOMAIN_SAVE_PAUSED if paused else libvirt.VIR_DOMAIN_SAVE_RUNNING
            conn.restoreFlags(str(memory), live, flags)
        dom.snapshotCreateXML(
            text, libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT
        )


def commit_live(dom: libvirt.virDomain, target: str, *, timeout: float, what: str) -> Path | None:
    """Merge the top image of the active VM's disk ``target`` into the image below it and pivot to that one;
    return the image the disk uses afterwards.

    :raises OperationTimeout: not done in ``timeout`` seconds: the commit is cancelled and the VM goes on with
        its top image.
    :raises VirtkitError: translated from libvirt.
    """
    flags = libvirt.VIR_DOMAIN_BLOCK_COMMIT_ACTIVE | libvirt.VIR_DOMAIN_BLOCK_COMMIT_SHALLOW
    with libvirt_errors(what):
        dom.blockCommit(target, None, None, 0, flags)
    deadline = time.monotonic() + timeout
    while True:
        with libvirt_errors(what):
            job = dom.blockJobInfo(target, 0)
        if job and job.get("end", 0) == job.get("cur", -1):
            try:
                dom.blockJobAbort(target, libvirt.VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT)
                break
            except libvirt.libvirtError as exc:
                if "not ready" not in str(exc) and "ready for pivot" not in str(exc):
                    raise translate(exc, what) from exc
        if time.monotonic() > deadline:
            with libvirt_errors(f"cancel the merge to {what}"):
                dom.blockJobAbort(target, 0)
            raise OperationTimeout(f"cannot {what}: the merge did not finish in {timeout:g} s; it was cancelled")
        time.sleep(_POLL)
    with libvirt_errors(what):
        xml: str = dom.XMLDesc(0)
    return writable_images(Domain.from_string(xml)).get(target)
