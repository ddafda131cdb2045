"""Reverting to and deleting external snapshots where the hypervisor cannot (libvirt before 9.9), with their files.

An external snapshot keeps each disk's image as it was (read-only from then on, under a new overlay), the VM's
memory in a file when it ran, and for a UEFI VM a copy of its variable store. Here:

- **revert**: a new overlay on each kept image (the kept images are never written, so the snapshot can be reverted
  to again), the VM powered off, the variable store copied back, then the backend restores the definition and the
  memory of then. The overlays the VM used before are removed when nothing else needs them.
- **delete**: the hypervisor's record of the snapshot goes, then its memory file and variable-store copy; then
  each disk's top overlay is merged into the image below it (live while the VM runs) for as long as that image is
  kept by no other snapshot, as Hyper-V merges a checkpoint's AVHDX into its parent. A VM whose last snapshot is
  deleted runs on its first image again, with everything written since.

Only overlays virtkit made (the backend's :meth:`owned` set) are ever merged away or removed: a user's image may be
merged into, never deleted. A file the host cannot read makes the clean-up stop, never guess.
"""

from __future__ import annotations

import contextlib
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path

from virtkit.backends.base import DomainBackend
from virtkit.backends.base.snapshots import ExternalSnapshot, SnapshotBackend
from virtkit.errors import NotFound, VirtkitError
from virtkit.images.chain import header_of
from virtkit.models.disk import DiskFormat
from virtkit.models.state import VMState
from virtkit.ops.storage import HostStorage

__all__ = ["ExternalSteps"]

_MERGE_TIMEOUT = 3600.0  # seconds for merging one overlay into the image below it
_FIELD = "name"  # the files of a snapshot are named after it: errors about them name that field
_OFF = (VMState.STOPPED, VMState.CRASHED)


class ExternalSteps:
    """The by-hand revert and delete of one VM's external snapshots (see the module's docstring)."""

    def __init__(self, vm: str, dom: DomainBackend, snaps: SnapshotBackend, storage: HostStorage) -> None:
        self._vm = vm
        self._dom = dom
        self._snaps = snaps
        self._storage = storage

    def _find(self, name: str) -> ExternalSnapshot:
        found = next((e for e in self._snaps.external() if e.name == name), None)
        if found is None:
            raise NotFound(f"{self._vm} has no external snapshot named {name!r}")
        return found

    # -- revert -------------------------------------------------------------------------------------------------

    def check_revert(self, name: str) -> dict[str, Path]:
        """The new overlay of each disk a revert to ``name`` makes; every file it reads checked first.

        :raises InvalidSpec: (``name``) a file of the snapshot is missing or outside the storage roots, or a new
            overlay's name is taken.
        """
        snap = self._find(name)
        for base in snap.bases.values():
            self._storage.check_file(_FIELD, base)
        if snap.memory is not None and snap.vm_state in (VMState.RUNNING, VMState.PAUSED):
            self._storage.check_file(_FIELD, snap.memory)
        if snap.nvram_copy is not None and snap.nvram is not None:
            self._storage.check_file(_FIELD, snap.nvram_copy)
            self._storage.check_new(_FIELD, snap.nvram, replace=lambda _: True, what="a file")
        token = secrets.token_hex(3)
        overlays = {
            target: snap.overlays[target].parent / f"{self._vm}-{target}.{name}.{token}.qcow2" for target in snap.bases
        }
        for path in overlays.values():
            self._storage.check_new(_FIELD, path)
        return overlays

    def revert(self, name: str) -> None:
        """Bring the VM back to ``name`` (see the module's docstring).

        :raises VirtkitError: a step failed. Before the VM is powered off nothing is changed (new overlays are
            removed again); after it, the VM is off, its images intact.
        """
        overlays = self.check_revert(name)
        snap = self._find(name)
        made: list[Path] = []
        try:
            for target, path in overlays.items():
                self._storage.create_overlay(_FIELD, path, snap.bases[target])
                made.append(path)
            if self._dom.info().state not in _OFF:
                self._dom.destroy()
            if snap.nvram_copy is not None and snap.nvram is not None:
                self._storage.copy_file(_FIELD, snap.nvram_copy, snap.nvram, overwrite=True)
            self._snaps.restore(name, overlays)
        except BaseException:
            with contextlib.suppress(VirtkitError):
                in_use = set(self._snaps.disk_images().values())
                self._storage.discard(p for p in made if p not in in_use)
            raise
        self.collect()

    # -- delete -------------------------------------------------------------------------------------------------

    def delete(self, names: Iterable[str], name: str, *, children: bool) -> None:
        """Delete ``name`` (``names``: it and, with ``children``, its descendants), its files, and merge what no
        snapshot keeps any more.

        :raises VirtkitError: a step failed; what was deleted before it stays deleted, no image is lost.
        """
        doomed = set(names)
        files = [
            path
            for snap in self._snaps.external()
            if snap.name in doomed
            for path in (snap.memory, snap.nvram_copy)
            if path is not None
        ]
        self._snaps.forget(name, children=children)
        for path in files:
            self._storage.remove(_FIELD, path)
        self.merge()
        self.collect()

    def _kept(self) -> set[Path] | None:
        """Every image a remaining snapshot keeps, with the images below them (resolved); ``None`` when one cannot
        be read (then nothing may be merged or removed)."""
        kept: set[Path] = set()
        try:
            for snap in self._snaps.external():
                for base in snap.bases.values():
                    kept.update(self._storage.chain(_FIELD, base))
        except VirtkitError:
            return None
        return kept

    def merge(self) -> None:
        """Merge each disk's top overlay (one virtkit made) into the image below it while no snapshot keeps that
        image, live while the VM runs."""
        kept = self._kept()
        if kept is None:
            return
        owned = self._snaps.owned()
        mine = {self._storage.real(_FIELD, p): p for p in owned}
        active = self._dom.info().state not in _OFF
        for target, image in self._snaps.disk_images().items():
            top = image
            while True:
                try:
                    chain = self._storage.chain(_FIELD, top)
                except VirtkitError:
                    break  # a block device, or an image that cannot be read: left as it is
                if len(chain) < 2 or chain[0] not in mine or chain[0] in kept or chain[1] in kept:
                    break
                below = chain[1]
                if active:
                    self._snaps.commit_live(target, timeout=_MERGE_TIMEOUT)
                else:
                    self._storage.commit_image(_FIELD, chain[0])
                    self._snaps.repoint(target, below, self._format(below))
                self._storage.remove(_FIELD, chain[0])
                owned.discard(mine.pop(chain[0]))
                self._snaps.set_owned(owned)
                top = below

    def _format(self, image: Path) -> DiskFormat:
        entry = self._storage.check_file(_FIELD, image)
        return header_of(self._storage.roots, _FIELD, entry).format

    def collect(self) -> None:
        """Remove the overlays virtkit made that neither the VM's disks nor a snapshot need any more."""
        kept = self._kept()
        if kept is None:
            return
        for image in self._snaps.disk_images().values():
            try:
                kept.update(self._storage.chain(_FIELD, image))
            except VirtkitError:
                found = self._storage.files.stat(image)
                if found is None or not stat.S_ISBLK(found.mode):
                    return  # an image that cannot be read: nothing is removed
                # a block device passed through has no chain
        owned = self._snaps.owned()
        garbage = {p for p in owned if self._storage.real(_FIELD, p) not in kept}
        if not garbage:
            return
        for path in garbage:
            self._storage.remove(_FIELD, path)
        self._snaps.set_owned(owned - garbage)
