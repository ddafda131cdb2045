"""The storage roots of one machine: the rule every path virtkit takes must follow before anything touches it.

A path is checked twice. As written (:func:`virtkit.validate.check_path`): absolute, no ``..``, no characters with a
meaning to XML, shells or QEMU, inside a root. Then as it really is on the machine that holds it: with its symlinks
resolved (for a path that does not exist yet, its directory's) it must still lie inside a root, itself resolved; so
a link inside a root that points out of it is refused, for reading, writing, moving and removing alike.

What is at a path is read with ``stat`` alone, never by opening it, so a FIFO, a socket or a device costs nothing and
cannot block. Each check says which kinds it accepts: a regular file (an image, a kernel, a log), a block device
(only where a pass-through disk is asked for), a directory.

Checking and using are separate system calls: a path swapped between the two (by someone who may write inside the
roots) is not caught. The roots are the boundary; keep them writable by root alone.
"""

from __future__ import annotations

import dataclasses
import stat
from collections.abc import Iterable
from enum import Enum
from pathlib import Path

from virtkit.backends.base.files import FileStat, HostFiles
from virtkit.errors import InvalidSpec
from virtkit.validate import check_path

__all__ = ["Entry", "Kind", "StorageRoots", "kind_of"]


class Kind(Enum):
    """What a path holds, as far as virtkit cares."""

    FILE = "regular file"
    BLOCK = "block device"
    DIRECTORY = "directory"
    CHARACTER = "character device"
    FIFO = "FIFO"
    SOCKET = "socket"
    OTHER = "special file"


def kind_of(mode: int) -> Kind:
    """The :class:`Kind` of an ``st_mode``."""
    for test, kind in (
        (stat.S_ISREG, Kind.FILE),
        (stat.S_ISBLK, Kind.BLOCK),
        (stat.S_ISDIR, Kind.DIRECTORY),
        (stat.S_ISCHR, Kind.CHARACTER),
        (stat.S_ISFIFO, Kind.FIFO),
        (stat.S_ISSOCK, Kind.SOCKET),
    ):
        if test(mode):
            return kind
    return Kind.OTHER


@dataclasses.dataclass(frozen=True)
class Entry:
    """A checked path: as written (normalised), with its symlinks resolved, and what is there now."""

    path: Path
    real: Path
    #: ``stat`` of the real path; ``None`` when nothing is there.
    found: FileStat | None

    @property
    def exists(self) -> bool:
        """Whether something is at the path."""
        return self.found is not None

    @property
    def kind(self) -> Kind | None:
        """What is there, or ``None``."""
        return kind_of(self.found.mode) if self.found is not None else None

    @property
    def size(self) -> int:
        """The size in bytes of what is there (0 when nothing is)."""
        return self.found.size if self.found is not None else 0


class StorageRoots:
    """The directories in which the files of one machine's VMs may live, and the checks on every path.

    :param files: the machine (this one, or a host over SSH).
    :param roots: the directories, absolute; they are resolved on that machine when first needed.
    """

    def __init__(self, files: HostFiles, roots: Iterable[Path | str]) -> None:
        self.files = files
        self.roots = tuple(Path(r) for r in roots)
        self._real: tuple[Path, ...] | None = None

    def __repr__(self) -> str:
        return f"<StorageRoots {', '.join(map(str, self.roots)) or '(none)'} on {self.files.where}>"

    @property
    def where(self) -> str:
        """The machine, for messages."""
        return self.files.where

    def real_roots(self) -> tuple[Path, ...]:
        """The roots with their symlinks resolved (read once)."""
        if self._real is None:
            self._real = tuple(self.files.resolve(r) for r in self.roots)
        return self._real

    def _inside(self, real: Path) -> bool:
        return any(real == r or real.is_relative_to(r) for r in self.real_roots())

    def lookup(self, field: str, value: object) -> Entry:
        """Check ``value`` as written and as resolved, and read what is there.

        :raises InvalidSpec: (``field``) a malformed path, one outside the roots as written or once resolved, or one
            that cannot be resolved (a loop of symbolic links).
        """
        try:
            path = check_path(field, value, self.roots)
        except InvalidSpec:
            path = check_path(field, value)  # a malformed path is refused here
            if not self._inside(path):  # a path written inside a root as resolved is inside too
                raise
        try:
            real = self.files.resolve(path)
            found = self.files.stat(real)
        except (OSError, RuntimeError) as exc:  # pathlib reports a symlink loop as a RuntimeError
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "a loop of symbolic links"
            raise InvalidSpec(field, f"{path} cannot be resolved{self._on()}: {reason}") from None
        if not self._inside(real):
            raise InvalidSpec(field, f"{str(path)!r} resolves to {str(real)!r}, outside the storage roots")
        return Entry(path, real, found)

    def existing(self, field: str, value: object, *, kinds: Iterable[Kind] = (Kind.FILE,)) -> Entry:
        """:meth:`lookup`, and something of one of ``kinds`` must be there.

        :raises InvalidSpec: as :meth:`lookup`; nothing there; or something of another kind (a directory, a FIFO,
            a device where a file is expected), refused without opening it.
        """
        entry = self.lookup(field, value)
        allowed = tuple(kinds)
        if entry.kind is None:
            raise InvalidSpec(field, f"{entry.path} does not exist{self._on()}")
        if entry.kind not in allowed:
            wanted = " or ".join(k.value for k in allowed)
            raise InvalidSpec(field, f"{entry.path} is a {entry.kind.value}, not a {wanted}{self._on()}")
        return entry

    def new(self, field: str, value: object) -> Entry:
        """:meth:`lookup` of a path to be created: its directory must exist (and be inside the roots, resolved).

        Whether something is there already is left to the caller (``entry.exists``), which knows whether that is
        an error, the same thing, or something to replace.

        :raises InvalidSpec: as :meth:`lookup`, or the directory does not exist.
        """
        entry = self.lookup(field, value)
        parent = self.files.stat(entry.real.parent)
        if parent is None or kind_of(parent.mode) is not Kind.DIRECTORY:
            raise InvalidSpec(field, f"directory {entry.path.parent} does not exist{self._on()}")
        return entry

    def directory(self, field: str, value: object) -> Entry:
        """:meth:`existing` for a directory.

        :raises InvalidSpec: as :meth:`existing`.
        """
        return self.existing(field, value, kinds=(Kind.DIRECTORY,))

    def _on(self) -> str:
        where = self.files.where
        return "" if where == "this machine" else f" on {where}"
