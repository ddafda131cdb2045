"""What every task shares: the host it names, its parameters as plain data, and results as plain data.

A task takes the parameters of one Ansible module as a mapping (an option left out is ``None``, as Ansible passes
it) and returns the module's result as plain data. Errors are :class:`~virtkit.errors.VirtkitError`; an
:class:`~virtkit.errors.InvalidSpec` names the option as the task's user wrote it (``spec.memory``,
``ssh.port``), never an inner path of the engine.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from virtkit.connect import connect
from virtkit.errors import InvalidSpec
from virtkit.ops.host import Host
from virtkit.validate import shown

__all__ = ["Params", "chosen", "given", "opened", "plain", "renamed", "required", "ssh_of"]

#: One module's parameters: an option left out is absent or ``None``.
Params = Mapping[str, Any]


def given(params: Params, key: str, default: Any = None) -> Any:
    """The option ``key``, or ``default`` when it is left out (``None``)."""
    value = params.get(key)
    return default if value is None else value


def chosen(params: Params, key: str, choices: tuple[str, ...]) -> str:
    """The option ``key``, one of ``choices`` (the first when it is left out).

    :raises InvalidSpec: it is none of them.
    """
    value = given(params, key, choices[0])
    if value not in choices:
        raise InvalidSpec(key, f"must be one of {', '.join(choices)}, not {value!r}")
    return str(value)


def required(params: Params, key: str) -> Any:
    """The option ``key``.

    :raises InvalidSpec: it is left out.
    """
    value = params.get(key)
    if value is None:
        raise InvalidSpec(key, "is required")
    return value


def ssh_of(params: Params, key: str = "ssh") -> dict[str, Any] | None:
    """The SSH settings of ``params[key]`` without the fields left out (Ansible passes every sub-option).

    :raises InvalidSpec: it is no mapping.
    """
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidSpec(key, f"must be a mapping of SSH settings, not {type(value).__name__}")
    return {k: v for k, v in value.items() if v is not None}


@contextmanager
def opened(params: Params, prefix: str = "") -> Iterator[Host]:
    """The host named by ``uri``, ``ssh`` and ``storage_roots`` in ``params``, open for the block; errors name the
    options with ``prefix`` (``dest.``).

    :raises InvalidSpec: a bad option; nothing was opened.
    :raises HostUnavailable: the host cannot be reached.
    """
    uri = params.get("uri")
    if not isinstance(uri, str) or not uri:
        raise InvalidSpec(f"{prefix}uri", f"must be a libvirt URI such as qemu:///system, not {shown(uri)}")
    roots = params.get("storage_roots")
    if roots is not None and not isinstance(roots, list | tuple):
        raise InvalidSpec(f"{prefix}storage_roots", f"must be a list of directories, not {type(roots).__name__}")
    with renamed(prefix=prefix):
        host = connect(uri, storage_roots=roots or None, ssh=ssh_of(params))
    with host:
        yield host


@contextmanager
def renamed(names: Mapping[str, str] | None = None, *, prefix: str = "") -> Iterator[None]:
    """Say an :class:`InvalidSpec` raised in the block in the task's words: the first part of its field renamed
    by ``names`` (``{"src": "source"}``; an empty name drops the part, ``disk.path`` becomes ``path``), then
    ``prefix`` before it (``dest.``)."""
    try:
        yield
    except InvalidSpec as exc:
        field = exc.field
        head = re.match(r"[^.\[]*", field)
        part = head.group(0) if head else ""
        if part in (names or {}):
            new = (names or {})[part]
            field = new + field[len(part) :] if new else field[len(part) :].removeprefix(".")
        if prefix + field == exc.field:
            raise
        raise InvalidSpec(prefix + field, exc.reason) from exc


def plain(value: Any) -> Any:
    """``value`` as JSON data: dataclasses as dicts (every field), enums as their values, paths as text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        to_dict = getattr(value, "to_dict", None)
        if callable(to_dict):
            return to_dict()
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value
