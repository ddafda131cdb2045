"""Checks shared by every input path: names, file paths under storage roots, free text.

Each check raises :class:`~virtkit.errors.InvalidSpec` naming the field and the reason, and returns the
normalised value, so callers can write ``name = check_name("name", raw)``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import TypeVar

from virtkit.errors import InvalidSpec

__all__ = [
    "MAX_TIMEOUT",
    "NAME_RE",
    "check_flag",
    "check_list",
    "check_name",
    "check_path",
    "check_paths",
    "check_text",
    "check_timeout",
    "printable",
    "shown",
]

T = TypeVar("T")

#: The longest wait virtkit accepts, in seconds (about four months): a longer one is a typo, and one beyond what the
#: platform's clocks hold (1e300) would make ``threading`` and ``socket`` raise OverflowError mid-operation.
MAX_TIMEOUT = 10**7

#: VM, snapshot and image names: what libvirt, file systems, shells and Hyper-V all accept without quoting.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")

# Text virtkit stores or shows: no C0 or C1 control characters, no lone surrogates (they cannot be encoded for
# libvirt), no Unicode non-characters (U+FDD0-U+FDEF and the last two code points of every plane).
_NONCHARACTERS = "".join(chr(plane * 0x10000 + 0xFFFE) + chr(plane * 0x10000 + 0xFFFF) for plane in range(17))
_BAD_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef" + _NONCHARACTERS + "]")

_LINES = str.maketrans("\n\t", "  ")

# The longest file name Linux file systems hold, in bytes (NAME_MAX); a longer component fails with ENAMETOOLONG.
_NAME_MAX = 255

# Characters that have a meaning to XML, shells or libvirt's URI and option parsers; never valid in a path we
# write into a domain definition or hand to qemu-img (a ',' would even split a QEMU -drive option).
_HOSTILE = re.compile(r"[\x00-\x1f\x7f<>&'\"`$;|*?\\,=\[\]{}!~#%^]")


def shown(value: object, *, limit: int = 60) -> str:
    """A short, printable form of a bad value for a message: never a 4,300-digit integer, a megabyte of text, or a
    control character that would rewrite the reader's terminal. Anything but a number, text or a path is named by
    its type alone (its ``repr`` could be as large as a YAML alias bomb expands to)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return "a number too large to show"
    try:
        text = (
            ascii(value) if isinstance(value, str | bytes | int | float | Path | type(None)) else type(value).__name__
        )
    except Exception:
        text = type(value).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def printable(text: str, *, limit: int = 200) -> str:
    """``text`` (a message from another library that may quote its input) cut to ``limit`` characters, with every
    character :func:`check_text` refuses written as an escape."""
    cut = text if len(text) <= limit else text[: limit - 3] + "..."
    return _BAD_TEXT.sub(lambda m: ascii(m.group())[1:-1], cut)


def check_flag(field: str, value: object) -> bool:
    """Return ``value`` if it is a bool; ``"no"``, ``0`` or ``None`` are not.

    :raises InvalidSpec: anything but ``True`` or ``False``.
    """
    if not isinstance(value, bool):
        raise InvalidSpec(field, f"must be true or false, not {shown(value)}")
    return value


def check_list(field: str, value: object, item: Callable[[str, object], T], *, empty: bool = True) -> list[T]:
    """Return ``value``, a list or tuple, as a list of its items, each checked by ``item(field[i], value)``.

    :raises InvalidSpec: a single item, a string or anything but a list or tuple; no items at all unless
        ``empty``; and whatever ``item`` raises.
    """
    if not isinstance(value, list | tuple):
        raise InvalidSpec(field, f"must be a list, not {type(value).__name__}")
    if not value and not empty:
        raise InvalidSpec(field, "must not be empty")
    return [item(f"{field}[{i}]", element) for i, element in enumerate(value)]


def check_timeout(field: str, value: object, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a positive number of seconds up to :data:`MAX_TIMEOUT` (zero too with ``allow_zero``).

    :raises InvalidSpec: a bool, NaN, infinity, a negative number, more than :data:`MAX_TIMEOUT`, or not a number.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidSpec(field, f"must be a number of seconds, not {shown(value)}")
    seconds = float(value) if isinstance(value, float) or abs(value) <= MAX_TIMEOUT else math.inf
    if not 0 <= seconds <= MAX_TIMEOUT or (seconds == 0 and not allow_zero):
        which = "zero or a positive" if allow_zero else "a positive"
        raise InvalidSpec(field, f"must be {which} number of seconds up to {MAX_TIMEOUT:,}, not {shown(value)}")
    return seconds


def check_name(field: str, value: object) -> str:
    """Return ``value`` if it is a valid name, else raise :class:`InvalidSpec`.

    :raises InvalidSpec: not a string, or not ``[A-Za-z0-9][A-Za-z0-9_.-]{0,62}``.
    """
    if not isinstance(value, str):
        raise InvalidSpec(field, f"must be a string, not {type(value).__name__}")
    if not NAME_RE.fullmatch(value) or not value.isascii():
        raise InvalidSpec(
            field,
            f"{shown(value)} is not a valid name: use 1-63 letters, digits, '_', '.' or '-', starting with a letter "
            "or digit",
        )
    return value


def check_text(field: str, value: object, *, max_len: int = 4096, multiline: bool = False) -> str:
    """Return ``value`` if it is printable text without control characters (``multiline`` lets line feeds and
    tabs in: free text such as a VM's notes).

    :raises InvalidSpec: not a string, too long, or holding control characters (C0 and C1), lone surrogates or
        Unicode non-characters.
    """
    if not isinstance(value, str):
        raise InvalidSpec(field, f"must be a string, not {type(value).__name__}")
    if len(value) > max_len:
        raise InvalidSpec(field, f"is {len(value)} characters long; at most {max_len} are allowed")
    bad = _BAD_TEXT.search(value.translate(_LINES) if multiline else value)
    if bad:
        raise InvalidSpec(
            field,
            f"must not contain {bad.group()!a} (control characters, lone surrogates and "
            "Unicode non-characters are refused)",
        )
    return value


def check_path(field: str, value: object, roots: Iterable[Path] | None = None) -> Path:
    """Return ``value`` as an absolute :class:`Path` if it is safe, else raise :class:`InvalidSpec`.

    A safe path is absolute, has no ``..`` component, no XML/shell metacharacters or control characters, no
    component longer than a file name can be (255 bytes), and, when ``roots`` is given, lies inside one of them.
    Symlinks are not followed here: the check is on the path as written, and ``roots`` must be the real (resolved)
    directories.

    :raises InvalidSpec: relative, ``..``, hostile characters, a component too long, or outside every storage root.
    """
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidSpec(field, f"must be a path string, not {type(value).__name__}")
    if not value:
        raise InvalidSpec(field, "must not be empty")
    if len(value) > 1024:
        raise InvalidSpec(field, "is longer than 1024 characters")
    bad = _HOSTILE.search(value) or _BAD_TEXT.search(value)
    if bad:
        raise InvalidSpec(field, f"must not contain {bad.group()!a}")
    pure = PurePosixPath(value)
    if not pure.is_absolute():
        raise InvalidSpec(field, f"{shown(value)} must be an absolute path")
    if ".." in pure.parts:
        raise InvalidSpec(field, f"{shown(value)} must not contain '..'")
    if any(len(part.encode()) > _NAME_MAX for part in pure.parts):
        raise InvalidSpec(field, f"{shown(value)} has a component longer than {_NAME_MAX} bytes")
    path = Path(pure)
    if roots is not None:
        text = str(pure)
        root_texts = [str(PurePosixPath(r)) for r in roots]
        # String prefixes on normalised paths: the same answer as Path.is_relative_to, at a tenth of its cost.
        if not any(text == r or text.startswith(r.rstrip("/") + "/") for r in root_texts):
            listed = ", ".join(root_texts) or "(none configured)"
            raise InvalidSpec(field, f"{shown(value)} is outside the storage roots: {listed}")
    return path


def check_paths(field: str, value: object) -> tuple[Path, ...]:
    """Return ``value``, a list of directories (or files), as absolute paths, each checked by :func:`check_path`.

    :raises InvalidSpec: a single path, a mapping or anything that is not a list of paths; a bad path (field
        ``field[i]``).
    """
    if isinstance(value, str | bytes | Path | Mapping) or not isinstance(value, Iterable):
        kind = "a single path" if isinstance(value, str | bytes | Path) else type(value).__name__
        raise InvalidSpec(field, f"must be a list of directories, not {kind}")
    return tuple(check_path(f"{field}[{i}]", item) for i, item in enumerate(value))
