"""Declared XML: each field a class models is one descriptor, read and written from that one declaration.

An :class:`XMLObject` wraps an ElementTree element, or the place in a tree where one would go. Its fields are class
attributes, one line each::

    class Disk(XMLObject):
        TAG = "disk"
        cache = XMLProperty("./driver/@cache", enum_codec(DiskCache))
        readonly = XMLProperty("./readonly", is_bool=True)

Reading a field finds its element or attribute; writing one edits the tree in place. A write creates the elements
of its path that are missing, each at the place the class's declarations give it among its siblings (so new XML
reads the way libvirt writes it), and leaves the tree untouched when the field already reads as the value written,
so a versioned machine type or a size in GiB stays as it was. Writing ``None`` removes the attribute or the text,
and with it the elements of the path that it leaves empty. Nothing a class does not declare is ever touched: XML
virtkit does not model survives every update.

Paths are relative to the object's element: ``./a/b`` is the text of ``<a><b>``, ``./a/@c`` an attribute of
``<a>``, ``./@c`` one of the object's own element. A step may carry a namespace (``{uri}tag``).
"""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Sequence
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar, overload

from virtkit.errors import BackendError, Unsupported, VirtkitError

__all__ = [
    "INT",
    "ON_OFF",
    "PATH",
    "TEXT",
    "YES_NO",
    "Children",
    "Codec",
    "XMLChild",
    "XMLChildren",
    "XMLObject",
    "XMLProperty",
    "enum_codec",
]

T = TypeVar("T")
V = TypeVar("V")
E = TypeVar("E", bound=Enum)
X = TypeVar("X", bound="XMLObject")

Steps = tuple[str, ...]


class Codec(Generic[T]):
    """How a value is spelled in XML text: ``decode`` reads it (raising on a spelling it does not know), ``encode``
    writes it."""

    def __init__(self, decode: Callable[[str], T], encode: Callable[[T], str]) -> None:
        self.decode = decode
        self.encode = encode


def _switch(on: str, off: str) -> Codec[bool]:
    def decode(text: str) -> bool:
        if text not in (on, off):
            raise ValueError(f"{text!r} is neither {on!r} nor {off!r}")
        return text == on

    return Codec(decode, lambda value: on if value else off)


TEXT: Codec[str] = Codec(str, str)
INT: Codec[int] = Codec(int, str)
PATH: Codec[Path] = Codec(Path, str)
YES_NO = _switch("yes", "no")
ON_OFF = _switch("on", "off")


def enum_codec(cls: type[E]) -> Codec[E]:
    """An enum spelled by its values; a value the enum lacks raises :class:`Unsupported`."""

    def decode(text: str) -> E:
        for member in cls:
            if member.value == text:
                return member
        raise Unsupported(f"virtkit does not model {cls.__name__} {text!r}")

    return Codec(decode, lambda member: str(member.value))


_STEP = re.compile(r"/((?:\{[^}]*\})?[^/{}@]+)|/@([^/{}@]+)$")


def _split(path: str) -> tuple[Steps, str | None]:
    """``./a/{ns}b/@c`` -> (``("a", "{ns}b")``, ``"c"``)."""
    if not path.startswith("."):
        raise ValueError(f"an XML path starts with '.': {path!r}")
    steps: list[str] = []
    attr = None
    pos = 1
    while pos < len(path):
        found = _STEP.match(path, pos)
        if found is None:
            raise ValueError(f"cannot read the XML path {path!r} at {path[pos:]!r}")
        if found.group(1):
            steps.append(found.group(1))
        else:
            attr = found.group(2)
        pos = found.end()
    return tuple(steps), attr


def _is_empty(el: ET.Element) -> bool:
    return not el.attrib and len(el) == 0 and not (el.text or "").strip()


class _Field(Generic[V]):
    """A declaration read as ``V`` from an object: ``steps`` are the elements it reaches, which also place new
    elements among their siblings. On the class it is the declaration itself."""

    steps: Steps = ()

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: XMLObject, owner: type[Any]) -> V: ...
    def __get__(self, obj: XMLObject | None, owner: type[Any]) -> Self | V:
        return self if obj is None else self._value(obj)

    def _value(self, obj: XMLObject) -> V:
        raise NotImplementedError


_ORDERS: dict[type[XMLObject], dict[Steps, tuple[str, ...]]] = {}


def _child_order(cls: type[XMLObject]) -> dict[Steps, tuple[str, ...]]:
    """For each element path of ``cls``, the child tags its fields declare, in declaration order (a subclass's own
    fields before those it inherits, so a device's ``<alias>`` and ``<address>`` go last, as libvirt writes them)."""
    if cls in _ORDERS:
        return _ORDERS[cls]
    order: dict[Steps, list[str]] = {}
    for klass in cls.__mro__:
        for field in vars(klass).values():
            if isinstance(field, _Field):
                for i, tag in enumerate(field.steps):
                    tags = order.setdefault(field.steps[:i], [])
                    if tag not in tags:
                        tags.append(tag)
    _ORDERS[cls] = {path: tuple(tags) for path, tags in order.items()}
    return _ORDERS[cls]


def _insert(parent: ET.Element, child: ET.Element, order: Sequence[str]) -> None:
    """Put ``child`` after the last sibling of its tag; else after the last sibling declared before it; else before
    the first declared after it; else at the end."""
    index = {tag: i for i, tag in enumerate(order)}
    rank = index.get(child.tag)
    siblings = list(parent)
    same = [i for i, el in enumerate(siblings) if el.tag == child.tag]
    if same:
        parent.insert(same[-1] + 1, child)
        return
    if rank is not None:
        before = [i for i, el in enumerate(siblings) if index.get(el.tag, rank) < rank]
        if before:
            parent.insert(before[-1] + 1, child)
            return
        after = [i for i, el in enumerate(siblings) if index.get(el.tag, rank) > rank]
        if after:
            parent.insert(after[0], child)
            return
    parent.append(child)


class XMLObject:
    """An element of a libvirt XML document and the fields declared on it.

    Built from an element (``Disk(el)``), new (``Disk()`` makes an empty ``<disk>``), or as a child field of another
    object (:class:`XMLChild`): then its element is found in the parent's tree when read, and made there on the
    first write.
    """

    TAG: ClassVar[str]

    def __init__(self, node: ET.Element | None = None) -> None:
        self._node: ET.Element | None = node if node is not None else ET.Element(self.TAG)
        self._parent: XMLObject | None = None
        self._steps: Steps = ()

    @classmethod
    def _placed(cls, parent: XMLObject, steps: Steps) -> Self:
        obj = cls.__new__(cls)
        obj._node = None  # found through the parent instead
        obj._parent = parent
        obj._steps = steps
        return obj

    @classmethod
    def from_string(cls, text: str) -> Self:
        """The object of an XML document whose root is a ``TAG`` element.

        :raises BackendError: the text is not XML, or its root is another element.
        """
        try:
            root = ET.fromstring(text)
        except ET.ParseError as exc:
            raise BackendError(f"cannot read the {cls.TAG} XML libvirt returned: {exc}") from None
        if root.tag != cls.TAG:
            raise BackendError(f"expected a <{cls.TAG}> document, not <{root.tag}>")
        return cls(root)

    # -- the element --------------------------------------------------------------------------------------------

    def _own(self) -> ET.Element | None:
        if self._node is not None:
            return self._node
        assert self._parent is not None
        return self._parent._find(self._steps)

    @property
    def exists(self) -> bool:
        """Whether the element is in the tree (always, except for a child field not written yet)."""
        return self._own() is not None

    @property
    def node(self) -> ET.Element:
        """The element, made in the parent's tree first where it is missing."""
        if self._node is not None:
            return self._node
        assert self._parent is not None
        return self._parent._make(self._steps)

    def is_(self, other: XMLObject) -> bool:
        """Whether both wrap the same element."""
        mine = self._own()
        return mine is not None and mine is other._own()

    def to_string(self) -> str:
        """The element as XML text (an empty string for a child field not written yet)."""
        own = self._own()
        return ET.tostring(own, encoding="unicode") if own is not None else ""

    def delete(self) -> None:
        """Remove a child field's element from its parent (nothing when it is not there)."""
        own = self._own()
        if self._parent is None or own is None:
            raise ValueError("only a child field is deleted this way; remove a list item from its list")
        holder = self._parent._find(self._steps[:-1])
        if holder is not None:
            holder.remove(own)

    def _find(self, steps: Steps) -> ET.Element | None:
        el = self._own()
        for step in steps:
            if el is None:
                return None
            el = el.find(step)
        return el

    def _make(self, steps: Steps) -> ET.Element:
        el = self.node
        order = _child_order(type(self))
        for i, step in enumerate(steps):
            child = el.find(step)
            if child is None:
                child = ET.Element(step)
                _insert(el, child, order.get(steps[:i], ()))
            el = child
        return el

    def _prune(self, steps: Steps) -> None:
        """Remove the elements of ``steps`` that are empty, deepest first, up to the first that is not."""
        chain = [self._own()]
        for step in steps:
            last = chain[-1]
            nxt = last.find(step) if last is not None else None
            if nxt is None:
                break
            chain.append(nxt)
        for parent, child in reversed(list(itertools.pairwise(chain))):
            if parent is None or child is None or not _is_empty(child):
                return
            parent.remove(child)

    # -- fields as a model's fields -----------------------------------------------------------------------------

    def read(self, names: Iterable[str]) -> dict[str, Any]:
        """The fields ``names``, by name (to build a model: ``DiskSpec(**disk.read(Disk.SPEC_FIELDS))``)."""
        return {name: getattr(self, name) for name in names}

    def write(self, source: object, names: Iterable[str]) -> None:
        """Set the fields ``names`` to the attributes of the same names of ``source`` (a model), in that order."""
        for name in names:
            setattr(self, name, getattr(source, name))


class XMLProperty(_Field[V]):
    """One field: the text of an element, one of its attributes, or (``is_bool``) whether an element is there.

    :param path: where it lives, relative to the object's element (see the module's docstring).
    :param codec: how its text spells the value (:data:`TEXT` by default).
    :param default: what it reads as when absent (``None`` unless given); an absent field is written even when the
        value is the default, so the XML says what was asked.
    """

    @overload
    def __init__(self: XMLProperty[str | None], path: str) -> None: ...
    @overload
    def __init__(self: XMLProperty[str], path: str, *, default: str) -> None: ...
    @overload
    def __init__(self: XMLProperty[bool], path: str, *, is_bool: Literal[True]) -> None: ...
    @overload
    def __init__(self: XMLProperty[T | None], path: str, codec: Codec[T]) -> None: ...
    @overload
    def __init__(self: XMLProperty[T], path: str, codec: Codec[T], *, default: T) -> None: ...
    def __init__(self, path: str, codec: Codec[Any] = TEXT, *, default: Any = None, is_bool: bool = False) -> None:
        self.path = path
        self.steps, self.attr = _split(path)
        if is_bool and (self.attr or not self.steps):
            raise ValueError(f"a boolean field is an element's presence, not an attribute or text: {path!r}")
        self.codec = codec
        self.default = default
        self.is_bool = is_bool
        self.name = path  # for messages; the class and attribute once declared

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = f"{owner.__name__}.{name}"

    def _value(self, obj: XMLObject) -> V:
        el = obj._find(self.steps)
        if self.is_bool:
            return el is not None  # type: ignore[return-value]  # V is bool for a boolean field
        try:
            value = self._read(el) if el is not None else None
        except ValueError as exc:
            raise ValueError(f"{self.name}: {exc}") from exc
        return self.default if value is None else value  # type: ignore[no-any-return]

    def raw(self, obj: XMLObject) -> str | None:
        """The text as libvirt wrote it, not decoded (for messages, and for readers that accept any value)."""
        el = obj._find(self.steps)
        if el is None:
            return None
        return el.get(self.attr) if self.attr else el.text

    def __set__(self, obj: XMLObject, value: V) -> None:
        el = obj._find(self.steps)
        if self.is_bool:
            if value and el is None:
                obj._make(self.steps)
            elif not value and el is not None:
                holder = obj._find(self.steps[:-1])
                assert holder is not None
                holder.remove(el)
                obj._prune(self.steps[:-1])
            return
        if value is None:
            if el is not None:
                self._clear(el)
                obj._prune(self.steps)
            return
        if el is not None and self._reads_as(el, value):
            return
        self._write(obj._make(self.steps), value)

    def _reads_as(self, el: ET.Element, value: object) -> bool:
        try:
            return bool(self._read(el) == value)
        except (ValueError, VirtkitError):
            return False  # a spelling virtkit cannot read: it is replaced

    # The element-level reads and writes; a field spelled over two places (a size and its unit) overrides them.

    def _read(self, el: ET.Element) -> Any:
        text = el.get(self.attr) if self.attr else el.text
        return self.codec.decode(text) if text is not None else None

    def _write(self, el: ET.Element, value: Any) -> None:
        text = self.codec.encode(value)
        if self.attr:
            el.set(self.attr, text)
        else:
            el.text = text

    def _clear(self, el: ET.Element) -> None:
        if self.attr:
            el.attrib.pop(self.attr, None)
        else:
            el.text = None


class XMLChild(_Field[X]):
    """A child element modelled by its own class: ``cpu = XMLChild(CPU)``; read as an object even while the element
    is missing (its fields read as absent), made on the first write."""

    def __init__(self, cls: type[X], path: str | None = None) -> None:
        self.cls = cls
        self.steps, attr = _split(path or f"./{cls.TAG}")
        if attr or not self.steps:
            raise ValueError(f"a child lives at an element path, not {path!r}")

    def _value(self, obj: XMLObject) -> X:
        return self.cls._placed(obj, self.steps)


class XMLChildren(_Field["Children[X]"]):
    """The elements of one class under a path: ``disks = XMLChildren(Disk, "./devices")`` (see :class:`Children`)."""

    def __init__(self, cls: type[X], path: str = ".") -> None:
        self.cls = cls
        parent, attr = _split(path)
        if attr:
            raise ValueError(f"children live under an element path, not {path!r}")
        self.parent = parent
        self.steps = (*parent, cls.TAG)

    def _value(self, obj: XMLObject) -> Children[X]:
        return Children(obj, self.cls, self.parent)


class Children(Generic[X]):
    """A live view of the ``cls`` elements under one element of ``owner``, in document order."""

    def __init__(self, owner: XMLObject, cls: type[X], parent: Steps) -> None:
        self._owner = owner
        self._cls = cls
        self._parent = parent

    def __iter__(self) -> Iterator[X]:
        holder = self._owner._find(self._parent)
        if holder is None:
            return iter(())
        return (self._cls(el) for el in holder.findall(self._cls.TAG))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def add(self, item: X) -> X:
        """Put ``item`` after the last element of its kind (or where its kind is declared) and return it."""
        holder = self._owner._make(self._parent)
        _insert(holder, item.node, _child_order(type(self._owner)).get(self._parent, ()))
        return item

    def remove(self, item: X) -> None:
        """Take ``item`` out of the tree."""
        holder = self._owner._find(self._parent)
        if holder is not None:
            holder.remove(item.node)

    def replace(self, old: Sequence[X], new: Sequence[X]) -> None:
        """Put ``new`` where ``old`` were: the first ones in the places of ``old``, in order, any more after them.
        An item of ``old`` that is also in ``new`` moves at most; the elements around them do not move at all."""
        holder = self._owner._find(self._parent)
        if holder is None:
            for item in new:
                self.add(item)
            return
        places = [i for i, el in enumerate(holder) if any(el is o.node for o in old)]
        for item in old:
            holder.remove(item.node)
        previous: X | None = None
        for k, item in enumerate(new):
            if k < len(places):
                holder.insert(places[k], item.node)
            elif previous is not None:
                holder.insert(list(holder).index(previous.node) + 1, item.node)
            else:
                self.add(item)
            previous = item
