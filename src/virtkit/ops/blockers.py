"""What keeps a running VM's state from being written out: one check, shared by every operation that does it.

Saving a VM (to a file, or managed), taking a memory snapshot and moving it live or quick all write its running state
out, and QEMU refuses that for some devices. The refusal comes late and in QEMU's words ("The vpc format used by node
... does not support live migration"), after a snapshot or save has begun, and libvirt reports it as "operation
invalid". So each of those operations asks here first, in check mode as in a real call, and the same cause gives the
same :class:`~virtkit.errors.Unsupported` everywhere, before anything changes.

Measured with QEMU 7.2: a VHD disk (QEMU's vpc driver), even a read-only one, blocks migration, save, managed
save and memory snapshots.

Host devices passed through to the VM (``<hostdev>``, ``<interface type='hostdev'>``) keep their state in the host's
hardware, where QEMU cannot read it. The rule is libvirt's own (``qemuMigrationSrcIsAllowedHostdev``, applied by its
QEMU driver to migration, save, managed save and internal memory snapshots alike): any ``capabilities``-mode device,
and any ``subsystem`` device of type ``pci``, ``scsi``, ``scsi_host`` or ``mdev`` blocks; a USB device does not (the
destination, or the restore, opens the same device again), and neither does a PCI device with ``<teaming
type='transient'>`` (QEMU unplugs it for the migration and the guest fails over to its virtio NIC). The check reads
the devices the VM runs with now. An offline migration moves a stopped VM's definition only, which names the devices
without holding their state, so libvirt skips these checks for it ("following checks don't make sense for offline
migration"), and so does :func:`virtkit.ops.migration.plan.preflight`. (A libvirt that can ask QEMU for its migration
blockers, with QEMU 8.1 and later, lets QEMU judge instead, and QEMU allows a VFIO device whose driver can migrate its
state; virtkit keeps to the rule above.)
"""

from __future__ import annotations

from virtkit.backends.base import DomainBackend
from virtkit.backends.base.domain import HostDevice
from virtkit.errors import Unsupported
from virtkit.models.disk import DiskFormat

__all__ = ["blockers", "refuse_blockers"]

#: Disk formats whose QEMU driver cannot carry its state through a migration, a save or a memory snapshot.
BLOCKING_FORMATS = {DiskFormat.VHD: "QEMU's vpc driver, which VHD images use, cannot migrate or save its state"}

#: Host device kinds (``subsystem`` mode) whose state goes with the VM: libvirt lets USB devices through.
MOVABLE_HOST_DEVICES = {"usb"}

_DISK_FIX = "convert such disks to qcow2 (virtkit.images.convert) and attach the copy instead"
_HOSTDEV_FIX = "detach such devices first (a stopped VM keeps them, and can be moved offline with them)"


def _blocks(dev: HostDevice) -> bool:
    """Whether libvirt refuses to write out the state of a VM with ``dev`` (see the module's docstring)."""
    if dev.mode != "subsystem":
        return True
    return dev.kind not in MOVABLE_HOST_DEVICES and not (dev.kind == "pci" and dev.transient)


def _describe(dev: HostDevice) -> str:
    what = f"host device {dev.kind} {dev.address}"
    if dev.interface:
        return f"network interface on {what}"
    return what if dev.mode == "subsystem" else f"{dev.mode}-mode {what}"


def _found(dom: DomainBackend) -> list[tuple[str, str]]:
    """Each blocker's reason, with what would fix it."""
    out = []
    for disk in dom.disks().layout().disks:
        reason = BLOCKING_FORMATS.get(disk.disk.format)
        if reason is not None:
            out.append((f"disk {disk.target} ({disk.disk.path}) is {disk.disk.format.value}: {reason}", _DISK_FIX))
    for dev in dom.host_devices():
        if _blocks(dev):
            reason = "its state is in the host's hardware, out of QEMU's reach"
            out.append((f"{_describe(dev)} is passed through ({reason})", _HOSTDEV_FIX))
    return out


def blockers(dom: DomainBackend) -> list[str]:
    """Why the VM's running state cannot be written out, one reason per device; empty when it can."""
    return [reason for reason, _ in _found(dom)]


def refuse_blockers(dom: DomainBackend, action: str) -> None:
    """Refuse ``action`` (``save``, ``take a memory snapshot of``, ``migrate``...) on a VM with a blocker.

    :raises Unsupported: the reasons, and what would work: convert a VHD disk to qcow2; detach a host device (or, to
        move the VM, shut it down and move it offline).
    """
    found = _found(dom)
    if found:
        fixes = list(dict.fromkeys(fix for _, fix in found))
        raise Unsupported(f"cannot {action} {dom.name}: {'; '.join(r for r, _ in found)}; {'; '.join(fixes)}")
