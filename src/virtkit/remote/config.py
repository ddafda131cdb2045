"""The pure parts of reaching a host over SSH: :class:`SSHConfig` and the quoting of commands.

Nothing here imports paramiko or opens a connection (:mod:`virtkit.remote.ssh` does), so a configuration can be built,
checked and passed around cheaply, e.g. to ``virtkit.connect(uri, ssh=...)``.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from virtkit.errors import InvalidSpec
from virtkit.models._fields import Spec, normalize, spec_field
from virtkit.validate import MAX_TIMEOUT, check_timeout

__all__ = ["KILL_AFTER", "TIMED_OUT", "SSHConfig", "remote_command"]

#: Seconds between coreutils ``timeout``'s SIGTERM and its SIGKILL on the host.
KILL_AFTER = 5

#: coreutils ``timeout``'s exit status when the time ran out.
TIMED_OUT = 124

# A host name or address that cannot be read as an ssh option (no leading '-'), and a POSIX user name.
_HOST = r"[A-Za-z0-9][A-Za-z0-9.:-]{0,252}"
_USER = r"[a-z_][a-z0-9_-]{0,31}"


@dataclass(frozen=True)
class SSHConfig(Spec):
    """How to reach a host over SSH: address, port, user, private key and the known_hosts file to trust.

    :raises InvalidSpec: a malformed host, port, user, path or timeout (the field is named).
    """

    host: str = spec_field("host name or address of the SSH server", pattern=_HOST, expected="a host name or address")
    key_file: Path = spec_field("the private key to log in with")
    known_hosts: Path = spec_field("the known_hosts file that holds the server's host key")
    port: int = spec_field("TCP port of the SSH server", default=22, minimum=1, maximum=65535)
    user: str = spec_field("user to log in as", default="root", pattern=_USER, expected="a user name")
    connect_timeout: float = spec_field(
        "seconds to wait for the connection and each reply", default=10.0, above=0, maximum=MAX_TIMEOUT
    )

    def __post_init__(self) -> None:
        normalize(self)

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
        a NUL byte; ``timeout`` is not a positive number of seconds (see :func:`virtkit.validate.check_timeout`).
    """
    if isinstance(args, str | bytes) or not isinstance(args, Sequence):
        raise InvalidSpec("args", "must be a list of arguments, not a shell string")
    argv = list(args)
    if not argv or not all(isinstance(a, str) for a in argv):
        raise InvalidSpec("args", "must be a non-empty list of strings")
    if any("\0" in a for a in argv):
        raise InvalidSpec("args", "must not contain NUL bytes")
    timeout = check_timeout("timeout", timeout)
    return shlex.join(["env", "LC_ALL=C", "timeout", f"--kill-after={KILL_AFTER}", f"{timeout:.3f}", *argv])
