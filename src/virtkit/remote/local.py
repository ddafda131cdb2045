"""``LocalFiles``: this machine's files and programs, as a :class:`~virtkit.backends.base.files.HostFiles`."""

from __future__ import annotations

import errno
import os
import shlex
import stat
import subprocess
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from virtkit.backends.base.files import NOT_FOUND, CompletedRun, FileStat
from virtkit.errors import OperationTimeout

__all__ = ["LocalFiles"]


class LocalFiles:
    """This machine: programs run as subprocesses, files are reached with ``os``."""

    @property
    def where(self) -> str:
        """``this machine``."""
        return "this machine"

    @property
    def local(self) -> bool:
        """``True``."""
        return True

    def run(
        self, args: Sequence[str], *, timeout: float, on_stdout: Callable[[bytes], None] | None = None
    ) -> CompletedRun:
        """Run ``args`` as a subprocess (see :meth:`HostFiles.run`); stdin is ``/dev/null``.

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

    def stat(self, path: Path, *, follow_symlinks: bool = True) -> FileStat | None:
        """What is at ``path`` (``os.stat``; ``os.lstat`` without ``follow_symlinks``), or ``None``."""
        try:
            st = os.stat(path, follow_symlinks=follow_symlinks)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return FileStat(st.st_mode, st.st_size)

    def read(self, path: Path, *, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes of the regular file ``path`` from ``offset``; opened with ``O_NONBLOCK``, so a FIFO
        or a device is refused without waiting for a writer.

        :raises OSError: not a regular file (``EINVAL``), or it cannot be read.
        """
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(errno.EINVAL, "not a regular file", str(path))
            return os.pread(fd, size, offset)
        finally:
            os.close(fd)

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
