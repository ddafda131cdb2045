"""The checks on a disk's file shared by ``Host.create`` and ``vm.disks.attach``: made before anything changes."""

from __future__ import annotations

import stat
from pathlib import Path

from virtkit.errors import InvalidSpec, Unsupported
from virtkit.image_header import probe
from virtkit.models.disk import DiskFormat, DiskKind, DiskSpec
from virtkit.validate import check_path

__all__ = ["check_disk_file"]


def check_disk_file(field: str, disk: DiskSpec, roots: tuple[Path, ...], *, local: bool) -> bool:
    """Check the file ``disk`` names; return whether its image must be created (a new file with a size).

    ``field`` prefixes the field in errors (``disks[0]`` gives ``disks[0].path``). On a remote host (not ``local``)
    only the path itself is checked, since its files are not this machine's.

    :raises InvalidSpec: a path outside the roots, a missing file without a size, a missing directory, an existing
        image of another format or size, a block disk that is not a block device.
    :raises Unsupported: vhdx (libvirt 9.0 has no driver for it), or a new image on a remote host.
    """
    path = check_path(f"{field}.path", disk.path, roots)
    if disk.format is DiskFormat.VHDX:
        raise Unsupported(
            f"{field}.format: libvirt 9.0 cannot attach vhdx directly; convert it first with "
            "virtkit.images.convert(..., DiskFormat.QCOW2) or to vhd"
        )
    if not local:
        if disk.size is not None:
            raise Unsupported(f"{field}.size: creating an image on a remote host needs SSH to it: connect(ssh=...)")
        return False
    if disk.kind is DiskKind.BLOCK:
        if not path.exists() or not stat.S_ISBLK(path.stat().st_mode):
            raise InvalidSpec(f"{field}.path", f"{path} is not a block device")
        return False
    if path.exists():
        found, virtual_size = probe(path)  # the header only: qemu-img would cost ~5 ms per disk
        if found is not disk.format:
            raise InvalidSpec(f"{field}.format", f"{path} is a {found.value} image, not {disk.format}")
        if disk.size is not None and virtual_size != disk.size:
            raise InvalidSpec(f"{field}.size", f"{path} exists with {virtual_size} bytes, not {disk.size}; resize it")
        return False
    if disk.size is None:
        raise InvalidSpec(f"{field}.path", f"{path} does not exist; give a size to create it")
    if not path.parent.is_dir():
        raise InvalidSpec(f"{field}.path", f"directory {path.parent} does not exist")
    return True
