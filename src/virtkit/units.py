"""Sizes as people write them: ``512MB``, ``2GiB``, ``1.5G``, or a plain number of bytes.

Every unit is binary, as in Hyper-V, PowerShell and ``qemu-img``: ``KB`` = ``KiB`` = ``K`` = 1024 bytes,
``MB`` = ``MiB`` = ``M`` = 1024², ``GB`` = ``GiB`` = ``G`` = 1024³, ``TB`` = ``TiB`` = ``T`` = 1024⁴. So a Hyper-V
admin's ``MemoryStartupBytes 512MB`` means here what it means there (536,870,912 bytes). ``B`` or no unit is bytes.
"""

from __future__ import annotations

import re

from virtkit.errors import InvalidSpec
from virtkit.validate import shown

__all__ = ["MAX_SIZE", "GiB", "KiB", "MiB", "TiB", "format_size", "parse_size"]

KiB = 1024
MiB = 1024**2
GiB = 1024**3
TiB = 1024**4

_UNITS = {
    "": 1,
    "b": 1,
    "k": KiB,
    "kb": KiB,
    "kib": KiB,
    "m": MiB,
    "mb": MiB,
    "mib": MiB,
    "g": GiB,
    "gb": GiB,
    "gib": GiB,
    "t": TiB,
    "tb": TiB,
    "tib": TiB,
}
_SIZE_RE = re.compile(r" *([0-9]+)(?:\.([0-9]+))? *([A-Za-z]*) *")
# No size is written with more characters than this; a longer string is refused before it is read.
_MAX_SIZE_TEXT = 64

#: Nothing virtkit manages is larger than this (64 TiB): a bigger number is a typo, not a disk.
MAX_SIZE = 64 * TiB


def parse_size(field: str, value: object, *, minimum: int = 1, maximum: int = MAX_SIZE) -> int:
    """Return ``value`` in bytes.

    :param field: the field's dotted path, for the error message.
    :raises InvalidSpec: not a size, an unknown unit, a fraction of a byte, or outside ``[minimum, maximum]``.
    """
    if isinstance(value, bool):
        raise InvalidSpec(field, "must be a size such as 512MB or 2GiB, not a boolean")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str):
        size = _parse(field, value)
    else:
        raise InvalidSpec(field, f"must be a size such as 512MB or 2GiB, not {type(value).__name__}")
    if size < minimum:
        raise InvalidSpec(field, f"{shown(size)} bytes is too small; the minimum is {format_size(minimum)}")
    if size > maximum:
        too_large = format_size(size) if size < 2**100 else shown(size)
        raise InvalidSpec(field, f"{too_large} is too large; the maximum is {format_size(maximum)}")
    return size


def _parse(field: str, value: str) -> int:
    """A size string in bytes, exactly: the digits after the point are a fraction, never rounded."""
    m = _SIZE_RE.fullmatch(value) if len(value) <= _MAX_SIZE_TEXT else None
    if not m:
        raise InvalidSpec(field, f"{shown(value)} is not a size; write e.g. 512MB, 2GiB or 1073741824")
    whole, fraction, unit = m.group(1), m.group(2) or "", m.group(3)
    factor = _UNITS.get(unit.lower())
    if factor is None:
        raise InvalidSpec(field, f"unknown unit {shown(unit)}; use B, KB, MB, GB, TB (binary) or KiB, MiB, GiB, TiB")
    scale: int = 10 ** len(fraction)
    size, rest = divmod(int(whole + fraction) * factor, scale)
    if rest:
        raise InvalidSpec(field, f"{shown(value)} is not a whole number of bytes")
    return size


def format_size(size: int) -> str:
    """The shortest exact binary form of ``size``: ``536870912`` gives ``512MiB``, ``1000`` gives ``1000B``."""
    for suffix, factor in (("TiB", TiB), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{suffix}"
    return f"{size}B"
