"""The pure parts of reaching a host over SSH: :class:`SSHConfig` and the quoting of commands.

Nothing here imports paramiko or opens a connection (:mod:`virtkit.remote.ssh` does), so a configuration can be built,
checked and passed around cheaply, e.g. to ``virtkit.connect(uri, ssh=...)``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from virtkit.errors import InvalidSpec
from virtkit.validate import check_path

__all__ = ["KILL_AFTER", "TIMED_OUT", "SSHConfig", "remote_command"]

#: Seconds between coreutils ``timeout``'s SIGTERM and its SIGKILL on the host.
KILL_AFTER = 5

#: coreutils ``timeout``'s exit status when the time ran out.
TIMED_OUT = 124

_HOST_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.:-]{0,252}")
_USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


@dataclass(frozen=True)
class SSHConfig:
    """How to reach a host over SSH: address, port, user, private key and the known_hosts file to trust.

    :raises InvalidSpec: a malformed host, port, user, path or timeout (the field is named).
    """

    host: str
    key_file: Path
    known_hosts: Path
    port: int = 22
    user: str = "root"
    connect_timeout: float = 10.0

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not _HOST_RE.fullmatch(self.host):
            raise InvalidSpec("host", f"{self.host!r} is not a host name or address")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise InvalidSpec("port", f"{self.port!r} is not a TCP port")
        if not isinstance(self.user, str) or not _USER_RE.fullmatch(self.user):
            raise InvalidSpec("user", f"{self.user!r} is not a user name")
        object.__setattr__(self, "key_file", check_path("key_file", self.key_file))
        object.__setattr__(self, "known_hosts", check_path("known_hosts", self.known_hosts))
        if isinstance(self.connect_timeout, bool) or not isinstance(self.connect_timeout, int | float):
            raise InvalidSpec("connect_timeout", f"{self.connect_timeout!r} is not a number of seconds")
        if not self.connect_timeout > 0:
            raise InvalidSpec("connect_timeout", "must be positive")

    @property
    def target(self) -> str:
        """``user@host:port``, for messages."""
        return f"{self.user}@{self.host}:{self.port}"


def remote_command(args: Sequence[str], timeout: float) -> str:
    """The command line sent to the host's shell for ``args``: every argument quoted with :func:`shlex.join`.

    The program runs under ``env LC_ALL=C`` (its messages in one language) and ``timeout`` (killed on the host
    after ``timeout`` seconds: SIGTERM, then SIGKILL :data:`KILL_AFTER` seconds later). Whatever the arguments
    hold, the shell sees each as one literal word: no expansion, no second command.

    :raises InvalidSpec: ``args`` is a string (a shell string is never accepted), empty, not all strings, or holds
        a NUL byte; ``timeout`` is not a positive number of seconds.
    """
    if isinstance(args, str | bytes) or not isinstance(args, Sequence):
        raise InvalidSpec("args", "must be a list of arguments, not a shell string")
    argv = list(args)
    if not argv or not all(isinstance(a, str) for a in argv):
        raise InvalidSpec("args", "must be a non-empty list of strings")
    if any("\0" in a for a in argv):
        raise InvalidSpec("args", "must not contain NUL bytes")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout < 10**7:
        raise InvalidSpec("timeout", f"{timeout!r} is not a positive number of seconds")
    return shlex.join(["env", "LC_ALL=C", "timeout", f"--kill-after={KILL_AFTER}", f"{timeout:.3f}", *argv])
