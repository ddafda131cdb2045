"""Before a migration moves anything: read the VM, check every input and state, and plan the move.

Everything that can be refused is refused here, with nothing changed: a bad path, a VM in the wrong state, a
destination that already has a VM of that name, a disk a storage copy would write onto itself.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from virtkit.backends.base import DomainBackend, HostBackend, MigratableDisk, MigrationBackend, SnapshotExport
from virtkit.errors import AlreadyExists, Conflict, InvalidSpec, NotFound, Unsupported
from virtkit.images import ImageInfo
from virtkit.models.migration import MigrationMode, MigrationProgress, MigrationTuning
from virtkit.models.state import VMInfo, VMState
from virtkit.models.vm import Accel
from virtkit.ops.blockers import refuse_blockers
from virtkit.ops.cpu import check_cpu
from virtkit.ops.storage import HostStorage

__all__ = ["Context", "DiskCopy", "MovePlan", "preflight"]

# The states each mode moves a VM from.
_FROM = {
    MigrationMode.LIVE: (VMState.RUNNING,),
    MigrationMode.LIVE_STORAGE: (VMState.RUNNING,),
    MigrationMode.QUICK: (VMState.RUNNING, VMState.PAUSED),
    MigrationMode.OFFLINE: (VMState.STOPPED, VMState.CRASHED),
}
_HINT = {
    MigrationMode.LIVE: "start or resume it, or move it offline",
    MigrationMode.LIVE_STORAGE: "start or resume it, or move it offline",
    MigrationMode.QUICK: "start it, or move it offline",
    MigrationMode.OFFLINE: "shut it down first, or move it live",
}


@dataclasses.dataclass
class Context:
    """One migration's inputs, checked, and both hosts."""

    src: HostBackend
    dst: HostBackend
    src_storage: HostStorage
    dst_storage: HostStorage
    name: str
    uuid: str
    mode: MigrationMode
    tuning: MigrationTuning
    shared: tuple[Path, ...]
    storage: Path | None
    progress: Callable[[MigrationProgress], None] | None
    cancel: threading.Event | None
    srcm: MigrationBackend = dataclasses.field(init=False)
    dstm: MigrationBackend = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.srcm = self.src.migrations()
        self.dstm = self.dst.migrations()


@dataclasses.dataclass(frozen=True)
class DiskCopy:
    """A disk whose contents move: its image on the source and the path it gets on the destination."""

    disk: MigratableDisk
    image: ImageInfo
    dest: Path


@dataclasses.dataclass(frozen=True)
class MovePlan:
    """What preflight found and decided."""

    before: VMInfo
    #: Set when the VM is on the destination already: nothing to do.
    noop: VMInfo | None = None
    definition: str = ""
    snapshots: SnapshotExport = dataclasses.field(default_factory=lambda: SnapshotExport((), None))
    unsafe: bool = False
    copies: tuple[DiskCopy, ...] = ()
    #: Bytes to move: the VM's memory, plus the allocated size of the disks copied.
    data: int = 0
    #: Where a quick migration writes the VM's memory.
    save_path: Path | None = None
    notes: tuple[str, ...] = ()


def _under(path: Path, dirs: tuple[Path, ...]) -> bool:
    text = str(PurePosixPath(path))
    return any(text.startswith(str(PurePosixPath(d)).rstrip("/") + "/") for d in dirs)


def _locate(ctx: Context) -> DomainBackend | MovePlan:
    """The VM on the source, or a no-op plan when it is on the destination already.

    :raises NotFound: on neither host.
    """
    dom = ctx.src.lookup(ctx.name)
    if dom is not None and dom.uuid == ctx.uuid:
        return dom
    there = ctx.dst.lookup(ctx.name)
    if there is not None and there.uuid == ctx.uuid:
        info = there.info()
        return MovePlan(before=info, noop=info)
    raise NotFound(f"{ctx.name} is on neither {ctx.src.uri} nor {ctx.dst.uri}")


def _check_state(ctx: Context, before: VMInfo) -> None:
    if not before.persistent:
        raise Conflict(f"cannot migrate {ctx.name}: it is a transient VM (migration moves a definition); define it")
    if before.state not in _FROM[ctx.mode]:
        hint = "; start it (it resumes), or discard its saved state" if before.state is VMState.SAVED else ""
        raise Conflict(
            f"cannot move {ctx.name} {ctx.mode.value}: it is {before.state.value}{hint or '; ' + _HINT[ctx.mode]}"
        )
    if ctx.srcm.job(ctx.name) is not None:  # another process's migration, save or snapshot
        raise Conflict(f"cannot migrate {ctx.name}: another job runs on it on {ctx.src.uri}")
    if ctx.dst.lookup(ctx.name) is not None:
        raise AlreadyExists(f"{ctx.dst.uri} has a VM named {ctx.name} already; remove or rename it first")


def _plan_copies(ctx: Context, disks: list[MigratableDisk], snapshots: SnapshotExport) -> tuple[DiskCopy, ...]:
    """The disks a storage copy moves, each checked on both hosts, where their files are (this machine, or a host
    reached over SSH: the source's images are read and the destination's made there).

    :raises Unsupported: snapshots (a copy carries the disks' present contents only), a disk that is no image
        file, an offline copy between hosts whose files are not both this machine's (qemu-img copies it here).
    :raises InvalidSpec: (field ``storage``) a copy onto itself, or a destination directory that does not exist.
    :raises AlreadyExists: a destination file exists (on hosts that share the directory: the disk itself).
    """
    if snapshots:
        raise Unsupported(
            f"cannot copy the disks of {ctx.name}: it has snapshots, and a copy carries only the disks' present "
            "contents; delete the snapshots first, or move it with shared storage"
        )
    local = ctx.src_storage.same_machine(ctx.dst_storage)
    if ctx.mode is MigrationMode.OFFLINE and not local:
        raise Unsupported(
            f"copying the disks of {ctx.name} offline needs both hosts' image files on this machine, where qemu-img "
            f"copies them ({ctx.src_storage.where}, {ctx.dst_storage.where}); start it and move it live with its "
            "storage (live-storage), which copies them between the hosts"
        )
    copies: list[DiskCopy] = []
    for disk in disks:
        if disk.kind != "file" or disk.path is None or disk.format is None:
            raise Unsupported(f"cannot copy disk {disk.target} of {ctx.name}: it is not an image file virtkit knows")
        image = ctx.src_storage.image_info(f"disks.{disk.target}", disk.path, disk.format)
        dest = ctx.storage / disk.path.name if ctx.storage is not None else disk.path
        if local and dest == disk.path:
            raise InvalidSpec(
                "storage",
                f"both hosts are this machine, so copying {disk.path} to the same path would overwrite it; give a "
                "directory for the copies",
            )
        entry = ctx.dst_storage.roots.new("storage", dest)
        if ctx.dst_storage.exists("storage", dest) or any(c.dest == entry.path for c in copies):
            # Hosts reached over SSH may share a directory: then the disk's own path exists on both.
            shared = "; if both hosts see this directory, move it with shared storage" if dest == disk.path else ""
            raise AlreadyExists(
                f"{dest} exists already on {ctx.dst.uri}; remove it or choose another directory{shared}"
            )
        copies.append(DiskCopy(disk, image, dest))
    return tuple(copies)


def _save_path(ctx: Context, disks: list[MigratableDisk]) -> Path:
    """Where a quick migration writes the VM's memory: the first shared directory.

    :raises InvalidSpec: (field ``shared_storage``) none given, outside a host's roots, or a disk not on it.
    """
    if not ctx.shared:
        raise InvalidSpec(
            "shared_storage", "a quick migration writes the VM's memory to a directory both hosts see; name one"
        )
    for disk in disks:
        if disk.path is None or not _under(disk.path, ctx.shared):
            raise InvalidSpec(
                "shared_storage",
                f"disk {disk.target} ({disk.path}) is not on the shared storage, so the destination could not open "
                "it; move it live with its storage instead",
            )
    path = ctx.shared[0] / f"{ctx.name}.migrating.save"
    ctx.src_storage.roots.new("shared_storage[0]", path)
    ctx.dst_storage.roots.new("shared_storage[0]", path)
    return path


def preflight(ctx: Context) -> MovePlan:
    """Check everything and plan the move (see the module's docstring).

    :raises InvalidSpec: bad input (the field is named).
    :raises NotFound: the VM is on neither host.
    :raises AlreadyExists: the destination has a VM of that name, or a disk file a copy would make.
    :raises Conflict: wrong state for the mode, transient, or another job runs on it.
    :raises Unsupported: this mode cannot move this VM, or the destination cannot run its CPU.
    """
    found = _locate(ctx)
    if isinstance(found, MovePlan):
        return found
    before = found.info()
    _check_state(ctx, before)
    if ctx.mode is not MigrationMode.OFFLINE:
        refuse_blockers(found, f"move (mode {ctx.mode.value})")
    check_cpu(ctx.dst, found.spec(), Accel.AUTO)  # the spec's own accelerator is used
    disks = [d for d in ctx.srcm.disks(ctx.name) if not d.readonly]
    snapshots = ctx.srcm.export_snapshots(ctx.name)
    notes: list[str] = []
    unsafe = False
    copies: tuple[DiskCopy, ...] = ()
    save_path = None
    if ctx.mode is MigrationMode.LIVE and ctx.shared:
        outside = [d.target for d in disks if d.kind != "file" or d.path is None or not _under(d.path, ctx.shared)]
        unsafe = not outside
        if outside:
            notes.append(f"disks {', '.join(outside)} are not on the shared storage named: libvirt judges their safety")
    elif ctx.mode is MigrationMode.LIVE_STORAGE or (ctx.mode is MigrationMode.OFFLINE and ctx.storage is not None):
        copies = _plan_copies(ctx, disks, snapshots)
    elif ctx.mode is MigrationMode.QUICK:
        save_path = _save_path(ctx, disks)
    return MovePlan(
        before=before,
        definition=ctx.srcm.definition(ctx.name),
        snapshots=snapshots,
        unsafe=unsafe,
        copies=copies,
        data=before.memory + sum(c.image.actual_size for c in copies),
        save_path=save_path,
        notes=tuple(notes),
    )
