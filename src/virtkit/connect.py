"""``virtkit.connect``: open a host by URI."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from virtkit.errors import InvalidSpec
from virtkit.ops.host import Host
from virtkit.remote.config import SSHConfig
from virtkit.validate import check_paths, check_text

__all__ = ["connect"]


def connect(
    uri: str = "qemu:///system",
    *,
    storage_roots: Iterable[Path | str] | None = None,
    ssh: SSHConfig | Mapping[str, Any] | None = None,
) -> Host:
    """Open the hypervisor host at ``uri`` (``qemu:///system``, ``qemu+ssh://host/system``, ``qemu+tcp://...``).

    Use the result as a context manager. libvirt's event loop thread starts with the first connection.

    :param storage_roots: directories in which VM files may live; default ``/var/lib/libvirt/images`` and
        ``/var/lib/virtkit``. Paths outside them are refused.
    :param ssh: reach the host over SSH too (:class:`virtkit.SSHConfig`, or a mapping of its fields), for what must
        run on it: the files a VM names are then checked and its disk images made on the host itself (``qemu-img``
        over SSH). Host keys are checked against the config's known_hosts file. Without it, a host whose files are
        not this machine's (not a local or loopback URI) refuses every operation that needs its files.
    :raises InvalidSpec: a URI that is no text, holds control characters, or names for the test driver something
        that is not a regular file (libvirt would wait on a FIFO for ever); a storage root that is no absolute
        path; an SSH configuration with a bad field (``ssh.port``...). Nothing was opened.
    :raises HostUnavailable: the host cannot be reached (over SSH: :class:`HostKeyRejected` for a host key that is
        unknown or differs from the recorded one).
    """
    from virtkit.backends.libvirt.host import LibvirtHost  # imported here: `import virtkit` loads no libvirt

    if not check_text("uri", uri):
        raise InvalidSpec("uri", "must be a libvirt URI such as qemu:///system, not empty")
    _check_test_driver(uri)
    roots = None if storage_roots is None else check_paths("storage_roots", storage_roots)
    if isinstance(ssh, Mapping):
        ssh = SSHConfig.from_dict(ssh, "ssh")
    if ssh is not None and not isinstance(ssh, SSHConfig):
        raise InvalidSpec("ssh", f"must be a virtkit.SSHConfig, not {type(ssh).__name__}")
    backend = LibvirtHost(uri, storage_roots=roots)
    if ssh is None:
        return Host(backend)
    from virtkit.remote.ssh import SSHFiles  # imported here: `import virtkit` loads no paramiko

    try:
        remote = SSHFiles(ssh)
    except BaseException:
        backend.close()
        raise
    return Host(backend, files=remote)


def _check_test_driver(uri: str) -> None:
    """libvirt's test driver (``test:///path/to/node.xml``) reads the file it names in the calling process, and
    would block on a FIFO where no Python signal reaches it: only a regular file is passed on.

    :raises InvalidSpec: (field ``uri``) a test URI naming anything but a regular file.
    """
    parts = urlsplit(uri)
    if parts.scheme != "test" or parts.path in ("", "/default"):
        return
    try:
        mode = os.stat(parts.path).st_mode
    except (OSError, ValueError):
        return  # libvirt says what is wrong with it
    if not stat.S_ISREG(mode):
        raise InvalidSpec("uri", f"the test driver's file {parts.path} is not a regular file")
