"""Disks: where the bytes come from, in what format, on which bus."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["DiskBus", "DiskFormat"]


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
