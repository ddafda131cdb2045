"""Where ``qemu-img`` runs and image files live: this machine, or the host a VM runs on, reached over SSH.

:mod:`virtkit.images` makes every check and builds every ``qemu-img`` command itself; it reaches programs and files
only through an :class:`ImageTool`. :class:`LocalImageTool` is this machine (a subprocess, ``os``);
:class:`virtkit.remote.RemoteHost` is the same protocol over SSH, so an image can be made, inspected or removed on
the host where its VM runs. Paths given to a tool are paths on the machine the tool reaches.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from virtkit.errors import OperationTimeout

__all__ = ["NOT_FOUND", "CompletedRun", "ImageTool", "LocalImageTool"]

#: The exit status of a program that could not be found (what a shell reports too).
NOT_FOUND = 127


@dataclass(frozen=True)
class CompletedRun:
    """A program that ran to its end: its argument list, exit status and output."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class ImageTool(Protocol):
    """Runs programs and reaches files on one machine."""

    @property
    def where(self) -> str:
        """The machine, for messages: ``this machine``, ``root@127.0.0.2:2222``."""

    def run(
        self, args: Sequence[str], *, timeout: float, on_stdout: Callable[[bytes], None] | None = None
    ) -> CompletedRun:
        """Run ``args`` (the program first; an argument list, never a shell string) and wait for it.

        ``on_stdout`` is called with each piece of standard output as it arrives; an exception raised from it stops
        the program and propagates. Exit status :data:`NOT_FOUND` means the program is not installed there.

        :raises OperationTimeout: it ran longer than ``timeout`` seconds; it was killed.
        """

    def mode(self, path: Path, *, follow_symlinks: bool = True) -> int | None:
        """``st_mode`` of ``path``, or ``None`` if nothing is there (a dangling symlink, when following)."""

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


class LocalImageTool:
    """This machine: programs run as subprocesses, files are reached with ``os``."""

    @property
    def where(self) -> str:
        """``this machine``."""
        return "this machine"

    def run(
        self, args: Sequence[str], *, timeout: float, on_stdout: Callable[[bytes], None] | None = None
    ) -> CompletedRun:
        """Run ``args`` as a subprocess (see :meth:`ImageTool.run`); stdin is ``/dev/null``.

        :raises OperationTimeout: it ran longer than ``timeout`` seconds; it was killed.
        """
        argv = [str(a) for a in args]
        expired = threading.Event()
        with tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
            except FileNotFoundError:
                return CompletedRun(tuple(argv), NOT_FOUND, "", f"{argv[0]}: not found")

            def expire() -> None:
                expired.set()
                proc.kill()

            timer = threading.Timer(timeout, expire)
            timer.start()
            out = bytearray()
            stdout = proc.stdout
            assert stdout is not None  # stdout=PIPE
            try:
                while chunk := os.read(stdout.fileno(), 65536):
                    out += chunk
                    if on_stdout is not None:
                        on_stdout(chunk)
                code = proc.wait()
            finally:
                timer.cancel()
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                stdout.close()
            if expired.is_set():
                raise OperationTimeout(f"{shlex.join(argv)} did not finish within {timeout:g} s")
            err.seek(0)
            stderr = err.read().decode(errors="replace")
        return CompletedRun(tuple(argv), code, out.decode(errors="replace"), stderr)

    def mode(self, path: Path, *, follow_symlinks: bool = True) -> int | None:
        """``st_mode`` of ``path``, or ``None`` if nothing is there."""
        try:
            return os.stat(path, follow_symlinks=follow_symlinks).st_mode
        except (FileNotFoundError, NotADirectoryError):
            return None

    def resolve(self, path: Path) -> Path:
        """``path`` with its symlinks resolved."""
        return path.resolve()

    def link(self, src: Path, dst: Path) -> None:
        """Hard-link ``src`` to ``dst``, or rename it on a file system without hard links; never over ``dst``.

        :raises FileExistsError: ``dst`` exists.
        """
        try:
            os.link(src, dst)  # fails if dst exists, unlike rename
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links
            if os.path.lexists(dst):
                raise FileExistsError(str(dst)) from None
            os.rename(src, dst)

    def unlink(self, path: Path) -> bool:
        """Remove ``path``; ``False`` if nothing was there."""
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def close(self) -> None:
        """Nothing to release."""
