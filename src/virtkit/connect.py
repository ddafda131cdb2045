"""``virtkit.connect``: open a host by URI."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from virtkit.ops.host import Host

__all__ = ["connect"]


def connect(uri: str = "qemu:///system", *, storage_roots: Iterable[Path | str] | None = None) -> Host:
    """Open the hypervisor host at ``uri`` (``qemu:///system``, ``qemu+ssh://host/system``, ``qemu+tcp://...``).

    Use the result as a context manager. libvirt's event loop thread starts with the first connection.

    :param storage_roots: directories in which VM files may live; default ``/var/lib/libvirt/images`` and
        ``/var/lib/virtkit``. Paths outside them are refused.
    :raises HostUnavailable: the host cannot be reached.
    """
    from virtkit.backends.libvirt.host import LibvirtHost  # imported here: `import virtkit` loads no libvirt

    roots = tuple(Path(r) for r in storage_roots) if storage_roots is not None else None
    return Host(LibvirtHost(uri, storage_roots=roots))
