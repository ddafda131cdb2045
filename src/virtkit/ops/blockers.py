"""What keeps a running VM's state from being written out: one check, shared by every operation that does it.

Saving a VM (to a file, or managed), taking a memory snapshot and moving it live or quick all write its running state
out, and QEMU refuses that for some devices. The refusal comes late and in QEMU's words ("The vpc format used by node
... does not support live migration"), after a snapshot or save has begun, and libvirt reports it as "operation
invalid". So each of those operations asks here first, in check mode as in a real call, and the same cause gives the
same :class:`~virtkit.errors.Unsupported` everywhere, before anything changes.

Measured with QEMU 7.2: a VHD disk (QEMU's ``vpc`` driver), even a read-only one, blocks migration, save, managed
save and memory snapshots.
"""

from __future__ import annotations

from virtkit.backends.base import DomainBackend
from virtkit.errors import Unsupported
from virtkit.models.disk import DiskFormat

__all__ = ["blockers", "refuse_blockers"]

#: Disk formats whose QEMU driver cannot carry its state through a migration, a save or a memory snapshot.
BLOCKING_FORMATS = {DiskFormat.VHD: "QEMU's vpc driver, which VHD images use, cannot migrate or save its state"}


def blockers(dom: DomainBackend) -> list[str]:
    """Why the VM's running state cannot be written out, one reason per device; empty when it can."""
    out = []
    for disk in dom.disks().layout().disks:
        reason = BLOCKING_FORMATS.get(disk.disk.format)
        if reason is not None:
            out.append(f"disk {disk.target} ({disk.disk.path}) is {disk.disk.format.value}: {reason}")
    return out


def refuse_blockers(dom: DomainBackend, action: str) -> None:
    """Refuse ``action`` (``save``, ``take a memory snapshot of``, ``migrate``...) on a VM with a blocker.

    :raises Unsupported: the reasons, and what would work: convert the disk to qcow2.
    """
    found = blockers(dom)
    if found:
        raise Unsupported(
            f"cannot {action} {dom.name}: {'; '.join(found)}; convert such disks to qcow2 "
            "(virtkit.images.convert) and attach the copy instead"
        )
