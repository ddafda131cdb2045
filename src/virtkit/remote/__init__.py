"""Reaching a host's files and programs: this machine (:class:`LocalFiles`), a host over SSH
(:class:`SSHFiles`), or none (:class:`UnreachableFiles`).

``SSHConfig`` is cheap to build and check; :class:`SSHFiles` (paramiko) is imported only when first used, so
``import virtkit`` loads no paramiko.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from virtkit.remote.config import SSHConfig, remote_command
from virtkit.remote.local import LocalFiles
from virtkit.remote.unreachable import UnreachableFiles

if TYPE_CHECKING:
    from virtkit.remote.ssh import SSHFiles

__all__ = ["LocalFiles", "SSHConfig", "SSHFiles", "UnreachableFiles", "remote_command"]


def __getattr__(name: str) -> Any:
    if name == "SSHFiles":
        from virtkit.remote.ssh import SSHFiles

        return SSHFiles
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
