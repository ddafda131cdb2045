"""Disks: where the bytes come from, in what format, on which bus."""

from __future__ import annotations

import dataclasses
import re
from enum import StrEnum
from pathlib import Path

from virtkit.errors import InvalidSpec
from virtkit.models._fields import Spec, normalize, spec_field
from virtkit.validate import shown

__all__ = ["MAX_SCSI_CONTROLLER", "MAX_SCSI_UNIT", "DiskBus", "DiskCache", "DiskFormat", "DiskKind", "DiskSpec"]

#: virtio-scsi addresses LUNs 0-16383 (QEMU); libvirt refuses a unit above it.
MAX_SCSI_UNIT = 16383
#: A generous bound on controller indexes (each virtio-scsi controller is a PCI device).
MAX_SCSI_CONTROLLER = 31


class DiskFormat(StrEnum):
    """On-disk image formats. ``vhd`` is QEMU's ``vpc``; libvirt 9.0 cannot attach ``vhdx`` directly."""

    QCOW2 = "qcow2"
    RAW = "raw"
    VHD = "vhd"
    VHDX = "vhdx"


class DiskBus(StrEnum):
    """Guest-visible disk buses: ``virtio`` is virtio-blk, ``scsi`` is a disk on a virtio-scsi controller."""

    VIRTIO = "virtio"
    SCSI = "scsi"
    SATA = "sata"
    IDE = "ide"


class DiskKind(StrEnum):
    """Where a disk's bytes live: an image file, or a host block device passed through."""

    FILE = "file"
    BLOCK = "block"


class DiskCache(StrEnum):
    """QEMU host cache modes. ``none`` (O_DIRECT) is what live migration wants on shared storage."""

    DEFAULT = "default"
    NONE = "none"
    WRITETHROUGH = "writethrough"
    WRITEBACK = "writeback"
    DIRECTSYNC = "directsync"
    UNSAFE = "unsafe"


#: Guest device name prefixes per bus, for ``target`` (``vda``, ``sda``, ``hda``).
TARGET_PREFIX = {DiskBus.VIRTIO: "vd", DiskBus.SCSI: "sd", DiskBus.SATA: "sd", DiskBus.IDE: "hd"}

# What follows the prefix: one to three ASCII lower-case letters (``str.isalpha`` would take ``é`` or ``ª`` too).
_TARGET_SUFFIX = re.compile(r"[a-z]{1,3}")


@dataclasses.dataclass(frozen=True)
class DiskSpec(Spec):
    """One disk of a VM: an image file (new or existing) or a host block device."""

    path: Path = spec_field("image file, or host block device for kind=block; must lie under the storage roots")
    format: DiskFormat = spec_field("image format (vhd is QEMU's vpc)", default=DiskFormat.QCOW2)
    bus: DiskBus = spec_field("bus the guest sees the disk on", default=DiskBus.VIRTIO)
    size: int | None = spec_field(
        "create a new image of this size if the file does not exist (512MB, 2GiB, bytes)", default=None, size=True
    )
    kind: DiskKind = spec_field("file or block (pass-through)", default=DiskKind.FILE)
    target: str | None = spec_field("guest device name (vda, sdb); chosen in order when omitted", default=None)
    readonly: bool = spec_field("attach read-only", default=False)
    cache: DiskCache | None = spec_field("host cache mode", default=None)
    controller: int | None = spec_field(
        "scsi only: the index of its virtio-scsi controller (Hyper-V's ControllerNumber); 0 when omitted",
        default=None,
        minimum=0,
        maximum=MAX_SCSI_CONTROLLER,
    )
    unit: int | None = spec_field(
        "scsi only: its unit on the controller (Hyper-V's ControllerLocation); the lowest free one when omitted",
        default=None,
        minimum=0,
        maximum=MAX_SCSI_UNIT,
    )

    def __post_init__(self) -> None:
        normalize(self)
        if self.kind is DiskKind.BLOCK:
            if self.size is not None:
                raise InvalidSpec("size", "a block device has the size it has; size is only for new image files")
            if self.format is not DiskFormat.RAW:
                raise InvalidSpec("format", "a block device passed through must use format raw")
        if self.bus is not DiskBus.SCSI:
            for field in ("controller", "unit"):
                if getattr(self, field) is not None:
                    raise InvalidSpec(field, f"only disks on the scsi bus have a {field}, not {self.bus.value} disks")
        elif self.unit is not None and self.controller is None:
            object.__setattr__(self, "controller", 0)  # a unit names a place on a controller: the first, by default
        if self.target is not None:
            prefix = TARGET_PREFIX[self.bus]
            if not self.target.startswith(prefix) or not _TARGET_SUFFIX.fullmatch(self.target[len(prefix) :]):
                raise InvalidSpec(
                    "target", f"{shown(self.target)} is not a {self.bus.value} device name like {prefix}a"
                )
