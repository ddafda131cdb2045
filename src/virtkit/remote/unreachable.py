"""``UnreachableFiles``: the files of a host virtkit cannot reach, refusing every access with a reason.

A host reached by a libvirt URI alone (``qemu+ssh://host/system``, ``qemu+tls://...``) runs its VMs on its own files,
which are not this machine's: virtkit can neither check a path there nor make an image. Rather than check this
machine's files instead, every access is refused with :class:`~virtkit.errors.Unsupported`, naming what would work
(``virtkit.connect(uri, ssh=...)``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from virtkit.backends.base.files import CompletedRun, FileStat
from virtkit.errors import Unsupported

__all__ = ["UnreachableFiles"]


class UnreachableFiles:
    """The files of the host at ``uri``, which this process cannot reach."""

    def __init__(self, uri: str) -> None:
        self._uri = uri

    @property
    def where(self) -> str:
        """The host's URI."""
        return self._uri

    @property
    def local(self) -> bool:
        """``False``."""
        return False

    def _refuse(self, what: str) -> NoReturn:
        raise Unsupported(
            f"{what} on {self._uri} needs that host's files, and they are not this machine's: connect with "
            "virtkit.connect(uri, ssh=virtkit.SSHConfig(...)) to reach them over SSH"
        )

    def run(
        self, args: Sequence[str], *, timeout: float, on_stdout: Callable[[bytes], None] | None = None
    ) -> CompletedRun:
        """Refused.

        :raises Unsupported: always.
        """
        self._refuse(f"running {args[0] if args else 'a program'}")

    def stat(self, path: Path, *, follow_symlinks: bool = True) -> FileStat | None:
        """Refused.

        :raises Unsupported: always.
        """
        self._refuse(f"checking {path}")

    def read(self, path: Path, *, offset: int, size: int) -> bytes:
        """Refused.

        :raises Unsupported: always.
        """
        self._refuse(f"reading {path}")

    def resolve(self, path: Path) -> Path:
        """Refused.

        :raises Unsupported: always.
        """
        self._refuse(f"checking {path}")

    def link(self, src: Path, dst: Path) -> None:
        """Refused.

        :raises Unsupported: always.
        """
        self._refuse(f"making {dst}")

    def unlink(self, path: Path) -> bool:
        """Refused.

        :raises Unsupported: always.
        """
        self._refuse(f"removing {path}")

    def close(self) -> None:
        """Nothing to release."""
