"""One mechanism for every spec dataclass: declare a field once, get loading, checking, dumping and a JSON schema.

A field is declared with :func:`spec_field` and its type hint; the metadata says how to read it from people's input
(``size=True`` accepts ``512MB``; ``name=True`` applies the name rule; ``pattern`` a regular expression; ``minimum``,
``maximum`` and ``above`` bound a number; ``key`` gives the field another name in plain data, as a vocabulary spells it:
``MemoryStartupBytes`` for ``memory_startup_bytes``; ``on_off`` lets a flag read ``On``/``Off`` too). Loading is
strict: unknown keys, wrong types and bad values raise
:class:`~virtkit.errors.InvalidSpec` with the dotted path of the field (``disks[1].size``), before any object exists.
Numbers are finite: NaN and infinity are refused for every ``float`` field. A class that derives from :class:`Spec`
gets ``from_dict``, ``to_dict`` and ``json_schema``.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any, Self, TypeVar, cast

from virtkit.errors import InvalidSpec
from virtkit.units import MAX_SIZE, format_size, parse_size
from virtkit.validate import check_name, check_path, check_text, shown

__all__ = ["FieldInfo", "Spec", "dump", "json_schema", "key_of", "load", "normalize", "spec_field"]

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    """How one field is read, checked and documented.

    ``minimum`` and ``maximum`` bound a number (or a size) inclusively, ``above`` exclusively (a float that must be
    positive has ``above=0``). ``pattern`` is a regular expression a string must match in full; ``expected`` says
    in words what it matches, for the message (``a host name or address``). ``max_items`` bounds a list. ``key``
    is the field's name in plain data and in messages when it differs from the attribute's; an ``on_off`` flag
    also reads the strings ``On`` and ``Off`` (any case) and is written as them; ``multiline`` text may hold line
    feeds and tabs.
    """

    doc: str = ""
    size: bool = False
    name: bool = False
    path: bool = False
    minimum: float | None = None
    maximum: float | None = None
    aliases: tuple[str, ...] = ()
    above: float | None = None
    pattern: str | None = None
    expected: str = ""
    max_items: int | None = None
    key: str | None = None
    on_off: bool = False
    multiline: bool = False


def spec_field(
    doc: str = "",
    *,
    default: Any = dataclasses.MISSING,
    default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
    size: bool = False,
    name: bool = False,
    path: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    aliases: tuple[str, ...] = (),
    above: float | None = None,
    pattern: str | None = None,
    expected: str = "",
    max_items: int | None = None,
    key: str | None = None,
    on_off: bool = False,
    multiline: bool = False,
) -> Any:
    """Declare a spec field; the keyword arguments are the :class:`FieldInfo`."""
    info = FieldInfo(
        doc, size, name, path, minimum, maximum, aliases, above, pattern, expected, max_items, key, on_off, multiline
    )
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata={"virtkit": info})
    return dataclasses.field(default=default, metadata={"virtkit": info})


def _info(f: dataclasses.Field[Any]) -> FieldInfo:
    info = f.metadata.get("virtkit")
    return info if isinstance(info, FieldInfo) else FieldInfo()


def key_of(f: dataclasses.Field[Any]) -> str:
    """The name of field ``f`` in plain data and in messages: its ``key``, or else its attribute name."""
    return _info(f).key or f.name


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _type_name(tp: Any) -> str:
    if isinstance(tp, type) and issubclass(tp, StrEnum):
        return "one of " + ", ".join(repr(m.value) for m in tp)
    return {int: "an integer", str: "a string", bool: "true or false", Path: "a path", float: "a number"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _convert(tp: Any, value: Any, field: str, info: FieldInfo) -> Any:
    tp, optional = _unwrap_optional(tp)
    if value is None:
        if optional:
            return None
        raise InvalidSpec(field, "must not be empty")
    origin = typing.get_origin(tp)
    if origin is tuple:
        item_tp = typing.get_args(tp)[0]
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, list | tuple):
            raise InvalidSpec(field, f"must be a list, not {type(value).__name__}")
        if info.max_items is not None and len(value) > info.max_items:
            raise InvalidSpec(field, f"has {len(value)} items; at most {info.max_items} are allowed")
        return tuple(_convert(item_tp, v, f"{field}[{i}]", info) for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp):
        return load(cast("type[Any]", tp), value, field)
    if isinstance(tp, type) and issubclass(tp, StrEnum):
        if isinstance(value, tp):
            return value
        if isinstance(value, str):
            for member in tp:
                if value.lower() == member.value.lower():
                    return member
        raise InvalidSpec(field, f"{shown(value)} is not valid; use {_type_name(tp)}")
    if tp is bool:
        if info.on_off and isinstance(value, str) and value.lower() in ("on", "off"):
            return value.lower() == "on"
        if not isinstance(value, bool):
            either = "On, Off, true or false" if info.on_off else "true or false"
            raise InvalidSpec(field, f"must be {either}, not {shown(value)}")
        return value
    if tp is int:
        if info.size:
            return parse_size(field, value, minimum=int(info.minimum or 1), maximum=int(info.maximum or MAX_SIZE))
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidSpec(field, f"must be an integer, not {shown(value)}")
        _check_range(field, value, info)
        return value
    if tp is float:
        return _number(field, value, info)
    if tp is Path:
        return check_path(field, value)
    if tp is str:
        if info.name:
            return check_name(field, value)
        return _text(field, value, info)
    raise InvalidSpec(field, f"has an unsupported type {tp!r}")  # pragma: no cover - a programming error


def _number(field: str, value: object, info: FieldInfo) -> float:
    """``value`` (an int or a float) as a finite float within the field's bounds."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidSpec(field, f"must be a number, not {shown(value)}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond any float
        number = math.inf if value > 0 else -math.inf
    if not math.isfinite(number):
        raise InvalidSpec(field, f"must be a finite number, not {shown(value)}")
    _check_range(field, number, info)
    return number


def _text(field: str, value: object, info: FieldInfo) -> str:
    text = check_text(field, value, multiline=info.multiline)
    if info.pattern is not None and not _compiled(info.pattern).fullmatch(text):
        raise InvalidSpec(field, f"{shown(text)} is not {info.expected or 'valid: it must match ' + info.pattern}")
    return text


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _check_range(field: str, value: float, info: FieldInfo) -> None:
    if info.minimum is not None and value < info.minimum:
        raise InvalidSpec(field, f"{shown(value)} is too small; the minimum is {shown(info.minimum)}")
    if info.above is not None and value <= info.above:
        raise InvalidSpec(field, f"must be more than {shown(info.above)}, not {shown(value)}")
    if info.maximum is not None and value > info.maximum:
        raise InvalidSpec(field, f"{shown(value)} is too large; the maximum is {shown(info.maximum)}")


def load(cls: type[T], data: object, prefix: str = "") -> T:
    """Build a ``cls`` from plain data (a dict from YAML or JSON), strictly.

    Keys are checked here (unknown, duplicated through an alias, missing); values are converted and checked by the
    class's own ``__post_init__`` (see :func:`normalize`). Errors get ``prefix`` in front of their field path.

    :raises InvalidSpec: naming the dotted field path for an unknown key, a missing required key, a wrong type or a
        bad value; and for cross-field checks done by the class itself.
    """
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise InvalidSpec(prefix or "spec", f"must be a mapping of fields, not {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cast("Any", cls)) if f.init}
    lookup: dict[str, str] = {}
    for f in fields.values():
        lookup[key_of(f)] = f.name
        for alias in _info(f).aliases:
            lookup[alias] = f.name
    kwargs: dict[str, Any] = {}
    try:
        for key, raw in data.items():
            if not isinstance(key, str) or key not in lookup:
                known = ", ".join(sorted(key_of(f) for f in fields.values()))
                raise InvalidSpec(_key(key), f"unknown field; known fields are: {known}")
            name = lookup[key]
            if name in kwargs:
                raise InvalidSpec(key, f"given twice (as {key_of(fields[name])!r} and through an alias)")
            kwargs[name] = raw
        for f in fields.values():
            if f.name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise InvalidSpec(key_of(f), "is required")
        return cls(**kwargs)
    except InvalidSpec as exc:
        if not prefix:
            raise
        raise InvalidSpec(f"{prefix}.{exc.field}", exc.reason) from None


def _key(key: object) -> str:
    """An unknown key as a field name: itself when it is a short identifier, else its short, printable form."""
    return key if isinstance(key, str) and key.isidentifier() and key.isascii() and len(key) <= 60 else shown(key)


class Spec:
    """Base of the spec dataclasses: :meth:`from_dict`, :meth:`to_dict` and :meth:`json_schema` for each."""

    @classmethod
    def from_dict(cls, data: object, prefix: str = "") -> Self:
        """An object from plain data (a dict from YAML or JSON), checked strictly (see :func:`load`).

        :param prefix: the dotted path of the data in a larger input, put in front of a bad field's path.
        :raises InvalidSpec: naming the field path and the reason.
        """
        return load(cls, data, prefix)

    def to_dict(self) -> dict[str, Any]:
        """Plain data that :meth:`from_dict` reads back to an equal object."""
        out: dict[str, Any] = dump(self)
        return out

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The JSON Schema of the plain data :meth:`from_dict` reads."""
        return json_schema(cls)


def normalize(obj: object) -> None:
    """Convert and check every field of a frozen spec in place; call it first in ``__post_init__``.

    Sizes given as ``"512MB"`` become bytes, enum names become members, path strings become :class:`Path`, lists
    become tuples and nested dicts become spec objects, so an object built in Python is checked exactly like one
    loaded from YAML.

    :raises InvalidSpec: the first field that is malformed, with its path relative to ``obj``.
    """
    hints = _hints(cast("type", type(obj)))
    for f in dataclasses.fields(cast("Any", obj)):
        value = _convert(hints[f.name], getattr(obj, f.name), key_of(f), _info(f))
        object.__setattr__(obj, f.name, value)


def dump(obj: object) -> Any:
    """Plain data for ``obj`` (dicts, lists, str, int, bool): what :func:`load` reads back to an equal object.

    Fields left at ``None`` are omitted so YAML stays short.
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if value is None:
                continue
            info = _info(f)
            if info.size:
                value = format_size(value)
            elif info.on_off and isinstance(value, bool):
                value = "On" if value else "Off"
            out[key_of(f)] = dump(value)
        return out
    if isinstance(obj, StrEnum):
        return obj.value
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, tuple | list):
        return [dump(v) for v in obj]
    return obj


def json_schema(cls: type) -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) for ``cls``, for editors that complete playbooks and spec files."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **_object_schema(cls)}


def _object_schema(cls: type) -> dict[str, Any]:
    hints = _hints(cls)
    props: dict[str, Any] = {}
    required: list[str] = []
    for f in dataclasses.fields(cast("Any", cls)):
        info = _info(f)
        schema = _schema_for(hints[f.name], info)
        if info.doc:
            schema["description"] = info.doc
        props[key_of(f)] = schema
        for alias in info.aliases:
            props[alias] = {"$comment": f"alias of {key_of(f)}", **schema}
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(key_of(f))
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if cls.__doc__:
        out["description"] = cls.__doc__.strip().splitlines()[0]
    if required:
        out["required"] = required
    return out


def _schema_for(tp: Any, info: FieldInfo) -> dict[str, Any]:
    tp, optional = _unwrap_optional(tp)
    if typing.get_origin(tp) is tuple:
        schema: dict[str, Any] = {"type": "array", "items": _schema_for(typing.get_args(tp)[0], info)}
        if info.max_items is not None:
            schema["maxItems"] = info.max_items
    elif dataclasses.is_dataclass(tp):
        schema = _object_schema(cast("type", tp))
    elif isinstance(tp, type) and issubclass(tp, StrEnum):
        schema = {"enum": [m.value for m in tp]}
    elif tp is bool and info.on_off:
        schema = {"anyOf": [{"type": "boolean"}, {"type": "string", "pattern": "^(?i:on|off)$"}]}
    elif tp is bool:
        schema = {"type": "boolean"}
    elif tp is int and info.size:
        schema = {"type": ["integer", "string"], "pattern": r"^ *[0-9]+(\.[0-9]+)? *([KMGTkmgt]i?[Bb]?|[Bb])? *$"}
    elif tp in (int, float):
        schema = {"type": "integer" if tp is int else "number"}
        for key, bound in (("minimum", info.minimum), ("exclusiveMinimum", info.above), ("maximum", info.maximum)):
            if bound is not None:
                schema[key] = bound
    elif tp is str and info.name:
        schema = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"}
    elif tp is str and info.pattern is not None:
        schema = {"type": "string", "pattern": f"^(?:{info.pattern})$"}
    elif tp is Path:
        schema = {"type": "string", "pattern": "^/"}
    else:
        schema = {"type": "string"}
    if optional:
        schema = {"anyOf": [schema, {"type": "null"}]}
    return schema
