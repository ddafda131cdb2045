"""Checks shared by every input path: names, file paths under storage roots, free text.

Each check raises :class:`~virtkit.errors.InvalidSpec` naming the field and the reason, and returns the
normalised value, so callers can write ``name = check_name("name", raw)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from virtkit.errors import InvalidSpec

__all__ = ["NAME_RE", "check_name", "check_path", "check_text"]

#: VM, snapshot and image names: what libvirt, file systems, shells and Hyper-V all accept without quoting.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")

# Characters that have a meaning to XML, shells or libvirt's URI and option parsers; never valid in a path we
# write into a domain definition or hand to qemu-img (a ',' would even split a QEMU -drive option).
_HOSTILE = re.compile(r"[\x00-\x1f\x7f<>&'\"`$;|*?\\,=\[\]{}!~#%^]")


def check_name(field: str, value: object) -> str:
    """Return ``value`` if it is a valid name, else raise :class:`InvalidSpec`.

    :raises InvalidSpec: not a string, or not ``[A-Za-z0-9][A-Za-z0-9_.-]{0,62}``.
    """
    if not isinstance(value, str):
        raise InvalidSpec(field, f"must be a string, not {type(value).__name__}")
    if not NAME_RE.fullmatch(value):
        raise InvalidSpec(
            field,
            f"{value!r} is not a valid name: use 1-63 letters, digits, '_', '.' or '-', starting with a letter "
            "or digit",
        )
    return value


def check_text(field: str, value: object, *, max_len: int = 4096) -> str:
    """Return ``value`` if it is printable text without control characters.

    :raises InvalidSpec: not a string, too long, or holding control characters.
    """
    if not isinstance(value, str):
        raise InvalidSpec(field, f"must be a string, not {type(value).__name__}")
    if len(value) > max_len:
        raise InvalidSpec(field, f"is {len(value)} characters long; at most {max_len} are allowed")
    if re.search(r"[\x00-\x1f\x7f]", value):
        raise InvalidSpec(field, "must not contain control characters")
    return value


def check_path(field: str, value: object, roots: Iterable[Path] | None = None) -> Path:
    """Return ``value`` as an absolute :class:`Path` if it is safe, else raise :class:`InvalidSpec`.

    A safe path is absolute, has no ``..`` component, no XML/shell metacharacters or control characters, and,
    when ``roots`` is given, lies inside one of them. Symlinks are not followed here: the check is on the
    path as written, and ``roots`` must be the real (resolved) directories.

    :raises InvalidSpec: relative, ``..``, hostile characters, or outside every storage root.
    """
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidSpec(field, f"must be a path string, not {type(value).__name__}")
    if not value:
        raise InvalidSpec(field, "must not be empty")
    if len(value) > 1024:
        raise InvalidSpec(field, "is longer than 1024 characters")
    bad = _HOSTILE.search(value)
    if bad:
        raise InvalidSpec(field, f"must not contain {bad.group()!r}")
    pure = PurePosixPath(value)
    if not pure.is_absolute():
        raise InvalidSpec(field, f"{value!r} must be an absolute path")
    if ".." in pure.parts:
        raise InvalidSpec(field, f"{value!r} must not contain '..'")
    path = Path(pure)
    if roots is not None:
        text = str(pure)
        root_texts = [str(PurePosixPath(r)) for r in roots]
        # String prefixes on normalised paths: the same answer as Path.is_relative_to, at a tenth of its cost.
        if not any(text == r or text.startswith(r.rstrip("/") + "/") for r in root_texts):
            shown = ", ".join(root_texts) or "(none configured)"
            raise InvalidSpec(field, f"{value!r} is outside the storage roots: {shown}")
    return path
