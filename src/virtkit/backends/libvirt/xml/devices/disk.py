"""``<disk>``: an image file or a host block device (modelled), or a CD-ROM, floppy or network disk (kept as is).

See https://libvirt.org/formatdomain.html#hard-drives-floppy-disks-cdroms.
"""

from __future__ import annotations

from pathlib import Path

from virtkit.backends.libvirt import tables
from virtkit.backends.libvirt.xml.base import INT, PATH, XMLProperty, enum_codec
from virtkit.backends.libvirt.xml.devices.device import Device
from virtkit.errors import Unsupported
from virtkit.models.disk import DiskBus, DiskCache, DiskFormat, DiskKind, DiskSpec

__all__ = ["Disk"]

# The <disk type> values a DiskSpec can be: an image file or a host block device.
_MODELLED_TYPES = ("file", "block")


class Disk(Device):
    """One ``<disk>``. Its fields are named after :class:`DiskSpec`'s, so a spec is read and written field by field."""

    TAG = "disk"
    kind = XMLProperty("./@type", enum_codec(DiskKind), default=DiskKind.FILE)
    device = XMLProperty("./@device", default="disk")  # disk, cdrom, floppy, lun
    driver_name = XMLProperty("./driver/@name")
    # libvirt reads a disk without a driver type as raw: it never probes an image's format.
    format = XMLProperty("./driver/@type", tables.codec(tables.DISK_FORMAT), default=DiskFormat.RAW)
    cache = XMLProperty("./driver/@cache", enum_codec(DiskCache))
    source_file = XMLProperty("./source/@file", PATH)
    source_dev = XMLProperty("./source/@dev", PATH)
    target = XMLProperty("./target/@dev")
    # Lossy: libvirt always writes the bus; one missing (hand-written XML) reads as virtio, where libvirt would
    # derive it from the target's name.
    bus = XMLProperty("./target/@bus", enum_codec(DiskBus), default=DiskBus.VIRTIO)
    readonly = XMLProperty("./readonly", is_bool=True)
    boot_order = XMLProperty("./boot/@order", INT)

    #: The :class:`DiskSpec` fields a ``<disk>`` holds, in the order they are written (``size`` asks for a new
    #: image; it is no property of the definition).
    SPEC_FIELDS = ("kind", "format", "cache", "path", "target", "bus", "readonly")

    @classmethod
    def new(cls, spec: DiskSpec) -> Disk:
        """A ``<disk device='disk'>`` for ``spec`` (its ``target`` set) on QEMU's one disk driver."""
        disk = cls()
        disk.kind = spec.kind
        disk.device = "disk"
        disk.driver_name = "qemu"
        disk.write(spec, cls.SPEC_FIELDS)
        disk._write_address(spec)
        return disk

    @property
    def modelled(self) -> bool:
        """Whether a :class:`DiskSpec` describes it: a disk (not a CD-ROM) on an image file or a block device."""
        return self.device == "disk" and self.source_type in _MODELLED_TYPES

    @property
    def source_type(self) -> str:
        """``<disk type>`` as libvirt wrote it: file, block, network, volume..."""
        return Disk.kind.raw(self) or "file"

    @property
    def known_format(self) -> DiskFormat | None:
        """The format, or ``None`` when there is no driver type or virtkit has no name for it."""
        return tables.DISK_FORMAT.find(Disk.format.raw(self))

    @property
    def path(self) -> Path | None:
        """The image file or block device; ``None`` for an empty drive or a network disk."""
        return self.source_file or self.source_dev

    @path.setter
    def path(self, value: Path | None) -> None:
        # The new attribute first, so that <source> is never left empty (and removed) in between.
        if self.kind is DiskKind.BLOCK:
            self.source_dev = value
            self.source_file = None
        else:
            self.source_file = value
            self.source_dev = None

    @property
    def scsi_address(self) -> tuple[int | None, int | None]:
        """(controller, unit) of a disk on the scsi bus with a drive address, else (None, None)."""
        drive = self.address.drive if Disk.bus.raw(self) == DiskBus.SCSI.value else None
        return drive if drive is not None else (None, None)

    def spec(self) -> DiskSpec:
        """The disk as a spec, its ``target`` set.

        :raises Unsupported: not a disk a spec can describe (see :attr:`modelled`), a driver type, bus or cache mode
            virtkit does not model, or a drive with no source.
        :raises InvalidSpec: a target that does not fit the bus.
        """
        if not self.modelled:
            raise Unsupported(f"virtkit does not model a {self.source_type} {self.device} ({self.target})")
        if self.path is None:
            raise Unsupported(f"virtkit does not model a disk without a source ({self.target})")
        controller, unit = self.scsi_address
        return DiskSpec(**self.read(self.SPEC_FIELDS), controller=controller, unit=unit)

    def update(self, spec: DiskSpec) -> None:
        """Write what ``spec`` (its ``target`` set) says; everything else in the element stays, and so does its
        drive address when the spec leaves the SCSI controller and unit open."""
        self.write(spec, self.SPEC_FIELDS)
        self._write_address(spec)

    def _write_address(self, spec: DiskSpec) -> None:
        if spec.bus is not DiskBus.SCSI or (spec.controller is None and spec.unit is None):
            return
        have_controller, have_unit = self.scsi_address
        controller = spec.controller if spec.controller is not None else have_controller
        unit = spec.unit if spec.unit is not None else have_unit
        if controller is not None and unit is not None:  # else the caller chooses the rest (a free unit)
            self.address.set_drive(controller, unit)
