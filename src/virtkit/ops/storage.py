"""``HostStorage``: the files of one host's VMs, and the only code in the operations layer that touches files.

Every path the API takes goes through it before anything changes: disk images, block devices for pass-through,
kernel and initrd, the serial log, save and restore files, snapshot overlays, migration copies, and the files
``delete(storage=True)`` removes. It holds the host's :class:`~virtkit.storage.StorageRoots` (this machine's files,
or the host's over SSH), so each check is made where the VM runs:

- the path as written and as resolved (symlinks, and for a new file its directory's) lies inside a root;
- a disk is a regular file, or a block device only where a pass-through disk is asked for; a directory, FIFO,
  socket or character device is refused at once, with ``stat`` alone (nothing is opened, nothing can block);
- a block device passed through is mounted nowhere on its host, nor any partition or device stacked on it, nor
  used as swap (``lsblk``): a file system written by the host and a guest at once is destroyed;
- an existing image has the format and size the spec says, read from its header, and every file of its backing
  chain lies inside the roots (a protocol or ``json:`` backing is refused: :mod:`virtkit.images.chain`);
- the serial log is no disk image;
- nothing is written, moved or removed through a link that leaves the roots.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from virtkit import images
from virtkit.backends.base.files import HostFiles
from virtkit.errors import AlreadyExists, ImageError, InvalidSpec, Unsupported, VirtkitError
from virtkit.images import qemu_img
from virtkit.images.chain import backing_chain, header_of
from virtkit.images.qemu_img import DATA_TIMEOUT
from virtkit.models.disk import DiskFormat, DiskKind, DiskSpec
from virtkit.models.snapshot import SavedImage
from virtkit.models.vm import VMSpec
from virtkit.storage import Entry, Kind, StorageRoots

__all__ = ["HostStorage", "mounted"]

_COPY_TIMEOUT = 600.0  # seconds for copying a small file (a UEFI variable store) on the host


class HostStorage:
    """The files of one host: its storage roots on the machine that holds them (see the module's docstring)."""

    def __init__(self, files: HostFiles, roots: Iterable[Path]) -> None:
        self.roots = StorageRoots(files, roots)

    def __repr__(self) -> str:
        return f"<HostStorage {', '.join(map(str, self.roots.roots))} on {self.where}>"

    @property
    def files(self) -> HostFiles:
        """The machine that holds the files."""
        return self.roots.files

    @property
    def where(self) -> str:
        """That machine, for messages."""
        return self.roots.where

    def same_machine(self, other: HostStorage) -> bool:
        """Whether both hosts' files are this machine's (a copy between them is a local copy)."""
        return self.files.local and other.files.local

    # -- checks: nothing changes -------------------------------------------------------------------------------

    def check_disk(self, field: str, disk: DiskSpec) -> bool:
        """Check the file ``disk`` names; return whether its image must be created (a new file with a size).

        ``field`` prefixes the field in errors (``disks[0]`` gives ``disks[0].path``).

        :raises InvalidSpec: a path outside the roots, something that is not a regular file (or block device for
            ``kind: block``), a missing file without a size, a missing directory, an existing image of another
            format or size, a backing chain that leaves the roots.
        :raises Unsupported: vhdx (libvirt 9.0 has no driver for it; convert it first).
        """
        if disk.format is DiskFormat.VHDX:
            raise Unsupported(
                f"{field}.format: libvirt 9.0 cannot attach vhdx directly; convert it first with "
                "virtkit.images.convert(..., DiskFormat.QCOW2) or to vhd"
            )
        if disk.kind is DiskKind.BLOCK:
            device = self.roots.existing(f"{field}.path", disk.path, kinds=(Kind.BLOCK,))
            self._check_unmounted(f"{field}.path", device.real)
            return False
        entry = self.roots.lookup(f"{field}.path", disk.path)
        if entry.kind is None:
            if disk.size is None:
                raise InvalidSpec(f"{field}.path", f"{entry.path} does not exist{self._on()}; give a size to create it")
            self.roots.new(f"{field}.path", disk.path)
            return True
        if entry.kind is not Kind.FILE:
            what = "a block device: pass it through with kind: block" if entry.kind is Kind.BLOCK else entry.kind.value
            raise InvalidSpec(f"{field}.path", f"{entry.path} is {_article(what)}, not an image file")
        header = header_of(self.roots, f"{field}.path", entry)
        if header.format is not disk.format:
            raise InvalidSpec(f"{field}.format", f"{entry.path} is a {header.format.value} image, not {disk.format}")
        if disk.size is not None and header.virtual_size != disk.size:
            raise InvalidSpec(
                f"{field}.size", f"{entry.path} exists with {header.virtual_size} bytes, not {disk.size}; resize it"
            )
        backing_chain(self.roots, f"{field}.path", entry, disk.format)
        return False

    def _check_unmounted(self, field: str, device: Path) -> None:
        done = self.files.run(["lsblk", "--json", "--output", "NAME,MOUNTPOINTS", str(device)], timeout=30)
        if done.returncode != 0:
            detail = done.stderr.strip()[-300:] or f"exit status {done.returncode}"
            raise InvalidSpec(field, f"cannot tell whether {device} is mounted{self._on()}: lsblk: {detail}")
        try:
            uses = mounted(done.stdout)
        except ValueError as exc:
            raise InvalidSpec(field, f"cannot tell whether {device} is mounted{self._on()}: {exc}") from None
        if uses:
            where = ", ".join(f"/dev/{name} on {point}" for name, point in uses)
            raise InvalidSpec(
                field,
                f"{device} is in use{self._on()}: {where}; unmount it first (a file system the host and a guest "
                "write at once is destroyed)",
            )

    def check_spec(self, spec: VMSpec, *, prefix: str = "") -> list[DiskSpec]:
        """Check every file ``spec`` names; return the disks whose images must be made.

        :raises InvalidSpec: see :meth:`check_disk`, :meth:`check_serial_log`, and a kernel or initrd that is no
            regular file inside the roots.
        :raises Unsupported: see :meth:`check_disk`.
        """
        to_create = [d for i, d in enumerate(spec.disks) if self.check_disk(f"{prefix}disks[{i}]", d)]
        if spec.kernel is not None:
            self.roots.existing(f"{prefix}kernel.kernel", spec.kernel.kernel)
            if spec.kernel.initrd is not None:
                self.roots.existing(f"{prefix}kernel.initrd", spec.kernel.initrd)
        if spec.serial_log is not None:
            self.check_serial_log(f"{prefix}serial_log", spec.serial_log, spec.disks)
        return to_create

    def check_saved(self, image: SavedImage) -> None:
        """Check the VM a saved-state file holds as a spec is checked, its files inside the roots and present.

        :raises InvalidSpec: (field ``path.<field>``) a file outside the roots or of the wrong kind, a disk that
            does not exist, or a file a spec does not model outside the roots.
        """
        if image.spec is None:
            raise InvalidSpec("path", f"the saved state of {image.name} holds no definition virtkit can check")
        missing = self.check_spec(image.spec, prefix="path.")
        if missing:
            index = image.spec.disks.index(missing[0])
            raise InvalidSpec(f"path.disks[{index}].path", f"{missing[0].path} does not exist{self._on()}")
        for i, other in enumerate(image.other_files):
            self.roots.lookup(f"path.files[{i}]", other)

    def check_serial_log(self, field: str, path: Path, disks: Sequence[DiskSpec] = ()) -> Entry:
        """The serial log: a new file in an existing directory, or a regular file to append to that is no disk
        image and none of ``disks``.

        :raises InvalidSpec: outside the roots, no directory, not a regular file, a disk image or one of the disks.
        """
        entry = self.roots.new(field, path)
        for disk in disks:  # new disks too: a link to where one will be made is no log either
            try:
                same = self.roots.lookup(field, disk.path).real == entry.real
            except InvalidSpec:
                continue  # a disk's own path is checked as a disk
            if same:
                raise InvalidSpec(field, f"{entry.path} is a disk of this VM; the serial log would write into it")
        if entry.kind is None:
            return entry
        if entry.kind is not Kind.FILE:
            raise InvalidSpec(field, f"{entry.path} is {_article(entry.kind.value)}, not a log file")
        header = header_of(self.roots, field, entry)
        if header.format is not DiskFormat.RAW:
            raise InvalidSpec(field, f"{entry.path} is a {header.format.value} disk image, not a log file")
        return entry

    def check_new(
        self, field: str, path: Path | str, *, replace: Callable[[Entry], bool] | None = None, what: str = ""
    ) -> Entry:
        """A file to be created at ``path``: its directory exists inside the roots and nothing is there, unless
        ``replace`` accepts what is (a regular file). ``what`` says what may be replaced, for the message.

        :raises InvalidSpec: outside the roots, no directory, or something there that may not be replaced.
        """
        entry = self.roots.new(field, path)
        if entry.exists or self.files.stat(entry.path, follow_symlinks=False) is not None:
            if entry.kind is Kind.FILE and replace is not None and replace(entry):
                return entry
            detail = f" and is not {what}" if what else " already"
            raise InvalidSpec(field, f"{entry.path} exists{detail}{self._on()}; remove it or choose another path")
        return entry

    def check_file(self, field: str, path: Path | str) -> Entry:
        """An existing regular file inside the roots.

        :raises InvalidSpec: outside the roots, missing, or not a regular file.
        """
        return self.roots.existing(field, path)

    def check_directory(self, field: str, path: Path | str) -> Entry:
        """An existing directory inside the roots.

        :raises InvalidSpec: outside the roots, missing, or not a directory.
        """
        return self.roots.directory(field, path)

    def exists(self, field: str, path: Path | str) -> bool:
        """Whether something is at ``path`` (inside the roots).

        :raises InvalidSpec: outside the roots.
        """
        return self.files.stat(self.roots.lookup(field, path).path, follow_symlinks=False) is not None

    def owned(self, field: str, path: Path | str) -> Entry | None:
        """A file a VM owns, for ``delete(storage=True)``: ``None`` when nothing is there.

        :raises InvalidSpec: outside the roots (resolved), or neither a regular file nor a link to one.
        """
        entry = self.roots.lookup(field, path)
        if self.files.stat(entry.path, follow_symlinks=False) is None:
            return None
        if entry.kind not in (None, Kind.FILE):
            raise InvalidSpec(field, f"{entry.path} is {_article(entry.kind.value)}; virtkit removes only files")
        return entry

    # -- changes ----------------------------------------------------------------------------------------------

    def create_image(self, disk: DiskSpec) -> None:
        """Make the new image ``disk`` asks for (checked by :meth:`check_disk`).

        :raises VirtkitError: from :func:`virtkit.images.create`; nothing is left then.
        """
        assert disk.size is not None  # check_disk asks for creation only with a size
        images.create(disk.path, disk.size, disk.format, roots=self.roots)

    def create_like(self, path: Path, size: int, fmt: DiskFormat) -> None:
        """Make an empty image at ``path`` of ``size`` bytes and format ``fmt`` (a migration's copy target).

        :raises VirtkitError: from :func:`virtkit.images.create`; nothing is left then.
        """
        images.create(path, size, fmt, roots=self.roots)

    def create_overlay(self, field: str, path: Path, backing: Path) -> None:
        """Make a new qcow2 image at ``path`` on top of ``backing`` (of the format its header says).

        :raises VirtkitError: from :func:`virtkit.images.create`; nothing is left then.
        """
        try:
            images.create(path, None, DiskFormat.QCOW2, roots=self.roots, backing=backing)
        except InvalidSpec as exc:
            raise InvalidSpec(field, exc.reason) from None

    def copy_file(self, field: str, source: Path, target: Path, *, overwrite: bool = False) -> None:
        """Copy the regular file ``source`` to ``target`` on the host (both inside the roots), through a temporary
        file that takes ``target``'s place only when complete; ``overwrite`` lets it replace a regular file.

        :raises InvalidSpec: either path is refused (see :meth:`check_file`, :meth:`check_new`).
        :raises VirtkitError: ``cp`` failed; ``target`` is as it was.
        """
        src = self.check_file(field, source)
        dst = self.check_new(field, target, replace=(lambda _: True) if overwrite else None, what="a file")
        with self.replacing(field, dst) as tmp:
            done = self.files.run(["cp", "--sparse=auto", "--", str(src.real), str(tmp)], timeout=_COPY_TIMEOUT)
            if done.returncode != 0:
                raise ImageError(
                    f"{field}: cannot copy {src.path} to {dst.path}{self._on()}: {done.stderr.strip()[:300]}"
                )

    def chain(self, field: str, image: Path) -> list[Path]:
        """``image`` and the files below it, top first, each resolved (links followed) and checked inside the roots.

        :raises InvalidSpec: see :func:`virtkit.images.chain.backing_chain`.
        """
        entry = self.check_file(field, image)
        fmt = header_of(self.roots, field, entry).format
        return [entry.real, *(below.real for below in backing_chain(self.roots, field, entry, fmt))]

    def real(self, field: str, path: Path) -> Path:
        """``path`` with its links resolved (it need not exist), checked inside the roots.

        :raises InvalidSpec: outside the roots.
        """
        return self.roots.lookup(field, path).real

    def commit_image(self, field: str, top: Path) -> None:
        """Write the qcow2 image ``top`` into its backing image (``qemu-img commit``); ``top`` is left empty.

        :raises VirtkitError: qemu-img failed (a running VM holding the image gives :class:`Conflict`).
        """
        entry = self.check_file(field, top)
        qemu_img.run(["commit", "-q", "-f", "qcow2", str(entry.real)], timeout=DATA_TIMEOUT, files=self.files)

    def image_info(self, field: str, path: Path, fmt: DiskFormat | None = None) -> images.ImageInfo:
        """``qemu-img info`` of an image inside the roots, its backing chain checked.

        :raises VirtkitError: from :func:`virtkit.images.info`, or a chain leaving the roots.
        """
        found = images.info(path, roots=self.roots, fmt=fmt)
        backing_chain(self.roots, field, self.roots.existing(field, path), found.format)
        return found

    def remove(self, field: str, path: Path | str) -> bool:
        """Remove the file at ``path`` (a link: the link itself) after checking it like :meth:`owned`.

        :raises InvalidSpec: see :meth:`owned`.
        """
        entry = self.owned(field, path)
        return entry is not None and self.files.unlink(entry.path)

    def discard(self, paths: Iterable[Path], notes: list[str] | None = None) -> None:
        """Remove files virtkit made itself in a step that failed, each checked like :meth:`owned` first; a
        failure is noted, never raised."""
        for path in paths:
            try:
                self.remove("path", path)
            except (VirtkitError, OSError) as exc:
                if notes is not None:
                    notes.append(f"could not remove {path}: {exc}")

    @contextmanager
    def replacing(self, field: str, target: Entry) -> Iterator[Path]:
        """A temporary name beside ``target`` for something (a save file) written by another program; when the
        block succeeds it takes the target's place (an old file there is removed only then), and on failure the
        target is left as it was. The temporary file is always gone afterwards.

        :raises AlreadyExists: something appeared at the target meanwhile that is not the old file.
        """
        tmp = target.real.parent / f".{target.path.name[:200]}.{secrets.token_hex(6)}.part"
        try:
            yield tmp
            if target.exists:
                self.files.unlink(target.real)
            try:
                self.files.link(tmp, target.real)
            except FileExistsError:
                raise AlreadyExists(f"{field}: {target.path} appeared while it was being written") from None
        finally:
            with suppress(VirtkitError, OSError):
                self.files.unlink(tmp)

    def _on(self) -> str:
        return "" if self.files.local else f" on {self.where}"


def _article(what: str) -> str:
    return f"an {what}" if what[:1] in "aeiou" else f"a {what}"


def mounted(lsblk_json: str) -> list[tuple[str, str]]:
    """``(device name, mount point)`` for each mount in ``lsblk --json --output NAME,MOUNTPOINTS`` output, of the
    device and of everything below it (partitions, device-mapper and RAID devices); swap reads ``[SWAP]``.

    :raises ValueError: the text is not such output.
    """
    try:
        data = json.loads(lsblk_json)
    except ValueError:
        raise ValueError("lsblk printed no JSON") from None
    found: list[tuple[str, str]] = []

    def walk(devices: object) -> None:
        if not isinstance(devices, list):
            raise ValueError("lsblk's JSON has no device list")
        for device in devices:
            if not isinstance(device, dict) or not isinstance(device.get("name"), str):
                raise ValueError("lsblk's JSON has a device without a name")
            points = device.get("mountpoints") or []
            if not isinstance(points, list):
                raise ValueError("lsblk's JSON has no mount point list (util-linux 2.37 or later prints one)")
            found.extend((device["name"], point) for point in points if isinstance(point, str) and point)
            walk(device.get("children", []))

    walk(data.get("blockdevices") if isinstance(data, dict) else None)
    return found
