"""``virtkit.connect``: open a host by URI."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from virtkit.ops.host import Host

if TYPE_CHECKING:
    from virtkit.ssh import SSHConfig

__all__ = ["connect"]


def connect(
    uri: str = "qemu:///system", *, storage_roots: Iterable[Path | str] | None = None, ssh: SSHConfig | None = None
) -> Host:
    """Open the hypervisor host at ``uri`` (``qemu:///system``, ``qemu+ssh://host/system``, ``qemu+tcp://...``).

    Use the result as a context manager. libvirt's event loop thread starts with the first connection.

    :param storage_roots: directories in which VM files may live; default ``/var/lib/libvirt/images`` and
        ``/var/lib/virtkit``. Paths outside them are refused.
    :param ssh: reach the host over SSH too (:class:`virtkit.ssh.SSHConfig`), for what must run on it: the disk
        images a VM needs are then checked and made on the host itself (``qemu-img`` over SSH), also when its
        files are not this machine's. Host keys are checked against the config's known_hosts file.
    :raises HostUnavailable: the host cannot be reached (over SSH: :class:`HostKeyRejected` for a host key that is
        unknown or differs from the recorded one).
    """
    from virtkit.backends.libvirt.host import LibvirtHost  # imported here: `import virtkit` loads no libvirt

    roots = tuple(Path(r) for r in storage_roots) if storage_roots is not None else None
    backend = LibvirtHost(uri, storage_roots=roots)
    if ssh is None:
        return Host(backend)
    from virtkit.remote import RemoteHost  # imported here: `import virtkit` loads no paramiko

    try:
        remote = RemoteHost(ssh)
    except BaseException:
        backend.close()
        raise
    return Host(backend, image_tool=remote)
