"""Where the lab keeps its files. One root, overridable with ``VIRTKIT_LAB_ROOT`` (tests and CI use the default)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["guest_dir", "hosts_dir", "lab_root", "shared_dir"]


def lab_root() -> Path:
    """The lab's root directory: ``/var/lib/virtkit`` unless ``VIRTKIT_LAB_ROOT`` says otherwise."""
    return Path(os.environ.get("VIRTKIT_LAB_ROOT", "/var/lib/virtkit"))


def guest_dir() -> Path:
    """The cache of built test guests (kernel + initramfs), one sub-directory per variant."""
    return lab_root() / "guest"


def hosts_dir() -> Path:
    """Per-host state of the lab's libvirt daemons (config, run, lib, log, cache)."""
    return lab_root() / "hosts"


def shared_dir() -> Path:
    """The storage directory every lab host sees at the same path: the lab's cluster shared volume."""
    return lab_root() / "shared"
