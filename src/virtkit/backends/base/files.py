"""The files and programs of one machine: the protocol every file access of virtkit goes through.

A host's files are reached through a :class:`HostFiles`: :class:`virtkit.remote.LocalFiles` when they are this
machine's (a subprocess, ``os``), :class:`virtkit.remote.SSHFiles` when the host is reached over SSH. The transport
does what it is told; which paths may be touched is decided above it (:class:`virtkit.storage.StorageRoots`), and
which programs run is decided by their callers (:mod:`virtkit.images`). Paths are paths on the machine reached.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = ["NOT_FOUND", "CompletedRun", "FileStat", "HostFiles"]

#: The exit status of a program that could not be found (what a shell reports too).
NOT_FOUND = 127


@dataclass(frozen=True)
class CompletedRun:
    """A program that ran to its end: its argument list, exit status and output."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class FileStat:
    """What ``stat`` says of a path: its mode (type and permission bits) and its size in bytes."""

    mode: int
    size: int


class HostFiles(Protocol):
    """Runs programs and reaches files on one machine."""

    @property
    def where(self) -> str:
        """The machine, for messages: ``this machine``, ``root@127.0.0.2:2222``."""

    @property
    def local(self) -> bool:
        """Whether these are this machine's own files (so two hosts with local files share them)."""

    def run(
        self, args: Sequence[str], *, timeout: float, on_stdout: Callable[[bytes], None] | None = None
    ) -> CompletedRun:
        """Run ``args`` (the program first; an argument list, never a shell string) and wait for it.

        ``on_stdout`` is called with each piece of standard output as it arrives; an exception raised from it stops
        the program and propagates. Exit status :data:`NOT_FOUND` means the program is not installed there.

        :raises OperationTimeout: it ran longer than ``timeout`` seconds; it was killed.
        """

    def stat(self, path: Path, *, follow_symlinks: bool = True) -> FileStat | None:
        """What is at ``path``, or ``None`` if nothing is there (a dangling symlink, when following). Never opens
        the path, so a FIFO or a device costs nothing and cannot block."""

    def read(self, path: Path, *, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes of the regular file ``path`` from ``offset``.

        Opened without blocking: anything but a regular file is refused with :class:`OSError` (``EINVAL``).
        """

    def resolve(self, path: Path) -> Path:
        """``path`` with its symlinks resolved (a missing last component is kept as it is)."""

    def link(self, src: Path, dst: Path) -> None:
        """Give the file ``src`` the name ``dst`` too (a hard link; a rename where the file system has none).

        :raises FileExistsError: ``dst`` exists; it is never replaced.
        """

    def unlink(self, path: Path) -> bool:
        """Remove the file (or symlink) ``path``; ``False`` if nothing was there."""

    def close(self) -> None:
        """Release what the tool holds (a connection); idempotent."""
