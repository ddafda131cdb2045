"""Loop devices for the lab: a host block device backed by a file in the lab's storage, for pass-through disks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from virtkit.errors import LabError
from virtkit.lab.guest.fetch import run

__all__ = ["loop_device"]


@contextmanager
def loop_device(backing: Path, *, size: int | None = None) -> Iterator[Path]:
    """A loop device (``/dev/loopN``) over the file ``backing``, made with ``losetup`` and detached when the body
    ends, however it ends. With ``size``, the file is created (sparse) or extended to that many bytes first.

    :raises LabError: ``losetup`` failed (no free loop device, no permission), or ``backing`` is missing.
    """
    if size is not None:
        with open(backing, "ab") as f:
            f.truncate(max(size, f.tell()))
    if not backing.is_file():
        raise LabError(f"loop device: {backing} is no regular file")
    out = run(
        ["losetup", "--find", "--show", str(backing)], step=f"attach a loop device to {backing}", what="loop device"
    )
    device = Path(out.decode().strip())
    if not device.is_block_device():
        raise LabError(f"loop device: losetup printed {device}, which is no block device")
    try:
        yield device
    finally:
        run(["losetup", "--detach", str(device)], step=f"detach {device}", what="loop device")
