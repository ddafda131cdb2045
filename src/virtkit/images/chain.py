"""An image's backing chain, walked through the images' own headers and checked file by file.

QEMU follows the backing file a qcow2 header names, wherever it is: ``/etc/shadow``, another VM's disk, an NBD server
(``nbd://...``) or a ``json:{...}`` description of any block driver. So before an image is attached, converted or
compared, every file below it must be a regular file inside the storage roots; a protocol or ``json:`` backing, a
loop, an external data file or a chain deeper than :data:`MAX_CHAIN` is refused. The walk reads headers only
(:mod:`virtkit.images.header`): nothing it has not checked is ever opened.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from virtkit.errors import InvalidSpec
from virtkit.images.header import VHD_DIFFERENCING, Header, read_header
from virtkit.models.disk import DiskFormat
from virtkit.storage import Entry, Kind, StorageRoots

__all__ = ["MAX_CHAIN", "backing_chain", "header_of"]

#: The deepest backing chain virtkit follows.
MAX_CHAIN = 32

# "nbd:", "http://", "file:" ...: QEMU reads a "protocol:" prefix as a block driver, not as part of a file name.
_PROTOCOL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def header_of(storage: StorageRoots, field: str, entry: Entry) -> Header:
    """The header of the regular file ``entry`` (checked by the caller).

    :raises InvalidSpec: (``field``) it cannot be read, or its header is malformed.
    """
    try:
        return read_header(storage.files, entry.real, entry.size)
    except (OSError, ValueError) as exc:
        raise InvalidSpec(field, f"cannot read the header of {entry.path}: {exc}") from None


def _below(storage: StorageRoots, field: str, image: Entry, name: str) -> Entry:
    shown = name if len(name) <= 80 else name[:77] + "..."
    if name.startswith("json:") or (_PROTOCOL.match(name) and not name.startswith("/")):
        raise InvalidSpec(
            field,
            f"{image.path} has the backing {shown!r}: a protocol or json: backing is refused; only image files "
            "inside the storage roots may back an image",
        )
    # A relative name is relative to the image's directory; that directory resolved, '..' is plain arithmetic.
    path = Path(name) if name.startswith("/") else Path(os.path.normpath(image.real.parent / name))
    try:
        return storage.existing(field, path, kinds=(Kind.FILE,))
    except InvalidSpec as exc:
        raise InvalidSpec(field, f"the backing file of {image.path}: {exc.reason}") from None


def backing_chain(storage: StorageRoots, field: str, image: Entry, fmt: DiskFormat) -> tuple[Entry, ...]:
    """The files below ``image`` (a checked regular file opened as ``fmt``), nearest first, each checked.

    Only qcow2 has a backing chain here: an image opened as raw is raw, whatever its content says.

    :raises InvalidSpec: (``field``) a backing file outside the roots or of another kind, a protocol or ``json:``
        backing, a loop, an external data file, a differencing VHD, or a chain deeper than :data:`MAX_CHAIN`.
    """
    chain: list[Entry] = []
    seen = {image.real}
    current, current_fmt = image, fmt
    for _ in range(MAX_CHAIN + 1):
        if current_fmt not in (DiskFormat.QCOW2, DiskFormat.VHD):
            return tuple(chain)
        header = header_of(storage, field, current)
        if current_fmt is DiskFormat.VHD:
            if header.format is DiskFormat.VHD and header.vhd_type == VHD_DIFFERENCING:
                raise InvalidSpec(field, f"{current.path} is a differencing VHD; QEMU cannot open those")
            return tuple(chain)
        if header.format is not DiskFormat.QCOW2:
            return tuple(chain)  # not qcow2 after all: the format check of the caller says so
        if header.external_data:
            raise InvalidSpec(field, f"{current.path} keeps its data in an external file, which virtkit refuses")
        if header.backing is None:
            return tuple(chain)
        below = _below(storage, field, current, header.backing)
        if below.real in seen:
            raise InvalidSpec(field, f"the backing chain of {image.path} loops back to {below.path}")
        seen.add(below.real)
        chain.append(below)
        # A qcow2 overlay's backing format is in a header extension; probing it is what QEMU does without one.
        current, current_fmt = below, header_of(storage, field, below).format
    raise InvalidSpec(field, f"the backing chain of {image.path} is deeper than {MAX_CHAIN} images")
