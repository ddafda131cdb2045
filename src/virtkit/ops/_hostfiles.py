"""The checks of ``Host.create`` on a VM's files, made on the host itself through an image tool (over SSH).

They mirror :func:`virtkit.ops._diskfile.check_disk_file` and the local checks of ``Host.create``, with every file
looked at where the VM will run: the path rules, then what is (or is not) at the path on that host.
"""

from __future__ import annotations

import stat
from pathlib import Path

from virtkit import images
from virtkit.errors import InvalidSpec, Unsupported
from virtkit.image_tool import ImageTool
from virtkit.models.disk import DiskFormat, DiskKind, DiskSpec
from virtkit.models.vm import VMSpec
from virtkit.validate import check_path

__all__ = ["check_disk_file_on", "check_other_files_on"]


def _is(tool: ImageTool, path: Path, kind: int) -> bool:
    mode = tool.mode(path)
    return mode is not None and stat.S_IFMT(mode) == kind


def check_disk_file_on(tool: ImageTool, field: str, disk: DiskSpec, roots: tuple[Path, ...]) -> bool:
    """Check the file ``disk`` names on the host ``tool`` reaches; return whether its image must be created there.

    :raises InvalidSpec: a path outside the roots, a missing file without a size, a missing directory, an existing
        image of another format or size, a block disk that is not a block device.
    :raises Unsupported: vhdx (libvirt 9.0 has no driver for it).
    """
    path = check_path(f"{field}.path", disk.path, roots)
    if disk.format is DiskFormat.VHDX:
        raise Unsupported(
            f"{field}.format: libvirt 9.0 cannot attach vhdx directly; convert it first with "
            "virtkit.images.convert(..., DiskFormat.QCOW2) or to vhd"
        )
    if disk.kind is DiskKind.BLOCK:
        if not _is(tool, path, stat.S_IFBLK):
            raise InvalidSpec(f"{field}.path", f"{path} is not a block device on {tool.where}")
        return False
    if tool.mode(path) is not None:
        found = images.info(path, roots=roots, tool=tool)  # the format read from the content, as locally
        if found.format is not disk.format:
            raise InvalidSpec(f"{field}.format", f"{path} is a {found.format.value} image, not {disk.format}")
        if disk.size is not None and found.virtual_size != disk.size:
            raise InvalidSpec(
                f"{field}.size", f"{path} exists with {found.virtual_size} bytes, not {disk.size}; resize it"
            )
        return False
    if disk.size is None:
        raise InvalidSpec(f"{field}.path", f"{path} does not exist on {tool.where}; give a size to create it")
    if not _is(tool, path.parent, stat.S_IFDIR):
        raise InvalidSpec(f"{field}.path", f"directory {path.parent} does not exist on {tool.where}")
    return True


def check_other_files_on(tool: ImageTool, spec: VMSpec, roots: tuple[Path, ...]) -> None:
    """Check the serial log's directory and the kernel and initrd of ``spec`` on the host ``tool`` reaches.

    :raises InvalidSpec: a path outside the roots, a missing directory or file.
    """
    if spec.serial_log is not None:
        log = check_path("serial_log", spec.serial_log, roots)
        if not _is(tool, log.parent, stat.S_IFDIR):
            raise InvalidSpec("serial_log", f"directory {log.parent} does not exist on {tool.where}")
    if spec.kernel is not None:
        for field, value in (("kernel.kernel", spec.kernel.kernel), ("kernel.initrd", spec.kernel.initrd)):
            if value is None:
                continue
            path = check_path(field, value, roots)
            if not _is(tool, path, stat.S_IFREG):
                raise InvalidSpec(field, f"{path} is not a file on {tool.where}")
