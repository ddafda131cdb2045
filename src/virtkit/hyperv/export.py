"""Export-VM: a VM's drives as VHDX files and its configuration as a Hyper-V spec, in a directory of their own.

``export_vm(host, "web1", "/var/lib/virtkit/export")`` writes, as Hyper-V lays an export out::

    /var/lib/virtkit/export/web1/web1.yml                      the VM in Hyper-V's words (HyperVSpec)
    /var/lib/virtkit/export/web1/Virtual Hard Disks/web.vhdx   each drive, as a dynamic VHDX

The spec names the exported VHDX files, so ``new_vm`` on another host (or Hyper-V's own tools, for the disks) takes
the export as it is. The VM must be off or saved: a running VM's disks change while they are copied.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path

from virtkit.errors import AlreadyExists, Conflict, InvalidSpec, Unsupported
from virtkit.hyperv.spec import HyperVSpec
from virtkit.hyperv.vhd import convert_vhd, get_vhd
from virtkit.models.change import Change
from virtkit.models.state import VMState
from virtkit.ops.args import check_callbacks
from virtkit.ops.host import Host
from virtkit.validate import check_flag, check_name

__all__ = ["DISKS_DIRECTORY", "export_vm"]

#: Where an export keeps the drives, named as Hyper-V names that directory.
DISKS_DIRECTORY = "Virtual Hard Disks"

_EXPORTABLE = (VMState.STOPPED, VMState.SAVED)


def export_vm(
    host: Host,
    name: str,
    path: Path | str,
    *,
    what_if: bool = False,
    progress: Callable[[str, float], None] | None = None,
) -> Change[HyperVSpec]:
    """Export-VM: write the VM ``name`` into ``path/<name>/``: each drive converted to a dynamic VHDX (a VHD or VHDX
    drive from the import it runs from, so the VM's writes are in it) and ``<name>.yml``, its spec with those
    drives. ``progress(field, percent)`` reports each copy (``HardDrives[0]``...).

    Returns a ``Change`` whose ``after`` is the exported spec. The VM itself is not changed.

    :raises InvalidSpec: ``path`` is no directory inside the storage roots.
    :raises AlreadyExists: ``path/<name>`` exists (an export never overwrites).
    :raises Conflict: the VM is neither off nor saved.
    :raises Unsupported: the VM has a pass-through disk (a host device is no file to export), has no Hyper-V
        generation, or its host's files are on another machine (the spec file is written on this one).
    :raises ImageError: a copy failed: what the export made so far is removed.
    """
    check_flag("what_if", what_if)
    check_callbacks(progress=progress)
    vm = host.get(check_name("name", name))
    storage = host.storage
    if not storage.files.local:
        raise Unsupported(f"Export-VM writes the spec file on this machine; {vm.name}'s files are on {storage.where}")
    parent = storage.roots.directory("Path", path)
    target = parent.real / vm.name
    if storage.roots.lookup("Path", target).kind is not None:
        raise AlreadyExists(f"Path: {target} exists; Export-VM never overwrites an earlier export")
    state = vm.state
    if state not in _EXPORTABLE:
        raise Conflict(f"cannot export {vm.name}: it is {state.value}; stop or save it first (Stop-VM, Save-VM)")
    spec = HyperVSpec.from_spec(vm.spec())
    disks = target / DISKS_DIRECTORY
    copies: list[tuple[str, Path, Path]] = []
    taken: set[str] = set()
    for i, (drive, disk) in enumerate(zip(spec.hard_drives, vm.spec().disks, strict=True)):
        if drive.is_block:
            raise Unsupported(f"HardDrives[{i}].Path: {drive.path} is a host block device; it has no file to export")
        try:  # a disk the copy cannot read (no disk extension, not the format it names) is found before any copy
            get_vhd(host, disk.path)
        except InvalidSpec as exc:
            raise InvalidSpec(f"HardDrives[{i}].Path", exc.reason) from None
        copies.append((f"HardDrives[{i}]", disk.path, disks / _vhdx_name(drive.path, taken)))
    exported = dataclasses.replace(
        spec,
        hard_drives=tuple(
            dataclasses.replace(d, path=copy, format=None)  # the format of the copy: its extension's, VHDX
            for d, (_, _, copy) in zip(spec.hard_drives, copies, strict=True)
        ),
        com_port1=None,  # a log file of this host, not part of the VM
    )
    if what_if:
        return Change("export", str(target), None, exported, check=True)
    try:
        disks.mkdir(parents=True)
        for field, source, copy in copies:
            report = None if progress is None else _for(progress, field)
            convert_vhd(host, source, copy, vhd_type="Dynamic", progress=report)
        (target / f"{vm.name}.yml").write_text(exported.to_yaml())
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return Change("export", str(target), None, exported)


def _vhdx_name(path: Path, taken: set[str]) -> str:
    """``web.vhdx`` for a drive at ``web.vhdx.qcow2`` (an import), ``web.vhdx``, ``web.vhd`` or ``web.qcow2``; a
    number is added where two drives would share a name."""
    stem = path.name.removesuffix(".qcow2")
    for suffix in (".vhdx", ".vhd", ".qcow2", ".img", ".raw"):
        stem = stem.removesuffix(suffix)
    name, n = f"{stem}.vhdx", 1
    while name in taken:
        name, n = f"{stem}-{n}.vhdx", n + 1
    taken.add(name)
    return name


def _for(progress: Callable[[str, float], None], field: str) -> Callable[[float], None]:
    return lambda percent: progress(field, percent)
