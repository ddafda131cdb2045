"""The seam for hot-plug between :mod:`virtkit.ops.disks` and a hypervisor backend. No libvirt here.

The backend applies exactly what it is told (which definitions, which controller and unit); choosing targets and
units, idempotence, check mode and rolling back are the operations layer's job.
"""

from __future__ import annotations

from typing import Protocol

from virtkit.models.attached import DiskLayout
from virtkit.models.disk import DiskSpec

__all__ = ["DiskBackend"]


class DiskBackend(Protocol):
    """Disk and SCSI-controller hot-plug on one VM.

    ``live`` applies a change to the running VM, ``persistent`` to its persistent definition; the caller asks for
    ``live`` only while the VM runs.
    """

    def layout(self) -> DiskLayout:
        """The disks, occupied slots and SCSI controllers of the running and persistent definitions."""

    def attach(self, disk: DiskSpec, *, controller: int | None, unit: int | None, live: bool, persistent: bool) -> None:
        """Attach ``disk`` (its ``target`` set) at SCSI ``controller``/``unit`` when given.

        All-or-nothing: when the live attach fails, the persistent definition is left as it was.
        """

    def add_scsi_controller(self, index: int, *, live: bool, persistent: bool) -> None:
        """Add a virtio-scsi controller with that index."""

    def remove_scsi_controller(self, index: int, *, live: bool, persistent: bool, timeout: float) -> None:
        """Remove the SCSI controller with that index; the live removal is waited for up to ``timeout`` seconds."""

    def detach(self, target: str, *, live: bool, persistent: bool, timeout: float) -> None:
        """Remove the disk at ``target``: from the running VM first, waiting up to ``timeout`` seconds for the guest
        to release it (asking again meanwhile), then from the persistent definition.

        The image is never deleted. If the live removal does not complete in time, the persistent definition is
        left unchanged and :class:`~virtkit.errors.OperationTimeout` is raised.
        """
