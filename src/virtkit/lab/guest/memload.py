"""The test guest's memory load: ``virtkit-load.c`` (package data next to this module), compiled with this
machine's gcc into a static executable that the initramfs holds as ``/bin/virtkit-load``.

The guest's ``/init`` starts it for the kernel options ``virtkit.dirty=<MiB>`` and ``virtkit.fill=<MiB>``; what it
does and the lines it writes are described at the top of the C source and in :mod:`virtkit.lab.serial`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from virtkit.errors import LabError
from virtkit.lab.guest.fetch import run
from virtkit.lab.guest.initramfs import guest_file, is_static_elf

__all__ = ["LOAD_COMMAND", "LOAD_SOURCE", "compile_load", "load_recipe", "load_source"]

LOAD_SOURCE = "virtkit-load.c"
# -s: no symbols (a quarter of the size); the warnings are for whoever edits the source (the unit tests add -Werror).
LOAD_COMMAND: tuple[str, ...] = ("gcc", "-static", "-O2", "-s", "-Wall", "-Wextra")
_STEP = "compile the guest's memory load (it needs gcc and libc6-dev, which scripts/setup-host installs)"


def load_source() -> bytes:
    """The C source of the memory load, shipped as package data."""
    return guest_file(LOAD_SOURCE)


def load_recipe() -> list[str]:
    """What the built load depends on, for the image's recipe: the compile command and the source's SHA-256."""
    return [*LOAD_COMMAND, hashlib.sha256(load_source()).hexdigest()]


def compile_load(work: Path, progress: Callable[[str], None]) -> bytes:
    """Compile the memory load in ``work`` (a scratch directory); return the static executable.

    :raises LabError: gcc is missing or failed (its stderr is in the message), or made no static executable.
    """
    source, binary = work / LOAD_SOURCE, work / "virtkit-load"
    try:
        source.write_bytes(load_source())
    except OSError as exc:
        raise LabError(f"guest image: cannot {_STEP}: cannot write {source}: {exc}") from exc
    run([*LOAD_COMMAND, "-o", str(binary), str(source)], step=_STEP)
    if not is_static_elf(binary):
        raise LabError(f"guest image: cannot {_STEP}: `{LOAD_COMMAND[0]}` made no static executable of {LOAD_SOURCE}")
    data = binary.read_bytes()
    progress(f"memory load: {LOAD_SOURCE} compiled ({len(data) / 1e3:.0f} kB)")
    return data
