"""Reading spec files: YAML (or JSON) text, bounded so that no document can hang or exhaust the reader.

PyYAML's ``safe_load`` builds no objects of the document's choosing, but it follows anchors and aliases as
references and composes nesting by recursion: a billion-laughs document of a kilobyte stands for 10^11 nodes (a
message quoting it never ends), and ten thousand ``[`` end in a RecursionError. So the loader here counts every node
as if each alias were written out in full and refuses past :data:`MAX_NODES`, refuses nesting deeper than
:data:`MAX_DEPTH`, an alias inside the node it names, a key given twice, and text longer than :data:`MAX_TEXT`.
Whatever the document holds, the result is plain data or :class:`~virtkit.errors.InvalidSpec` with a short message.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from virtkit.errors import InvalidSpec
from virtkit.validate import check_text, printable, shown

__all__ = ["MAX_DEPTH", "MAX_NODES", "MAX_TEXT", "read_file", "read_yaml"]

#: The deepest nesting of lists and mappings a spec file may have (a VM spec needs four).
MAX_DEPTH = 32
#: The most nodes (scalars, lists, mappings) a spec file may stand for, every alias counted as written out.
MAX_NODES = 20_000
#: The longest spec file, in characters (and in bytes, for a file).
MAX_TEXT = 1024 * 1024

_MERGE = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with the bounds of the module's docstring."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0
        self._nodes = 0
        self._sizes: dict[int, int] = {}  # id(node) -> nodes it stands for
        self._open: set[str] = set()  # anchors of the nodes being composed

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        alias = self.check_event(yaml.AliasEvent)
        event: Any = self.current_event  # what check_event peeked at
        if alias:
            if event.anchor in self._open:
                raise yaml.composer.ComposerError(
                    None, None, f"the alias {shown(event.anchor)} is inside the node it names", event.start_mark
                )
            target = self.anchors.get(event.anchor)
            self._count(self._sizes.get(id(target), 1), event)
            return super().compose_node(parent, index)
        anchor = getattr(event, "anchor", None)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        start = self._nodes
        self._count(1, event)
        if anchor is not None:
            self._open.add(anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if anchor is not None:
                self._open.discard(anchor)
        self._sizes[id(node)] = self._nodes - start
        return node

    def _count(self, nodes: int, event: Any) -> None:
        self._nodes += nodes
        if self._nodes > MAX_NODES:
            raise yaml.composer.ComposerError(
                None, None, f"stands for more than {MAX_NODES:,} values (aliases counted in full)", event.start_mark
            )

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, OverflowError) as exc:  # a date that does not exist, an int too long to read
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read the value: {exc}", node.start_mark
            ) from None

    def compose_mapping_node(self, anchor: Any) -> yaml.MappingNode:
        node = super().compose_mapping_node(anchor)
        seen: set[tuple[str, str]] = set()
        for key, _ in node.value:  # as written: merge keys (<<) are expanded later, when it is constructed
            if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE:
                if (key.tag, key.value) in seen:
                    raise yaml.composer.ComposerError(
                        None, None, f"the key {shown(key.value)} is given twice", key.start_mark
                    )
                seen.add((key.tag, key.value))
        return node


def read_yaml(text: object) -> Any:
    """The plain data of the YAML (or JSON) document ``text``.

    :raises InvalidSpec: (field ``yaml``) not text, longer than :data:`MAX_TEXT`, not valid YAML, or beyond the
        bounds of the module's docstring; the message says where.
    """
    if not isinstance(text, str):
        raise InvalidSpec("yaml", f"must be text, not {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise InvalidSpec("yaml", f"is {len(text):,} characters long; a spec holds at most {MAX_TEXT:,}")
    try:
        loader = _Loader(text)  # the reader checks every character here
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise InvalidSpec("yaml", f"not valid YAML: {_describe(exc)}") from None


def _describe(exc: yaml.YAMLError) -> str:
    """What is wrong and where, without the snippet of the document PyYAML quotes (it may hold anything)."""
    if isinstance(exc, yaml.reader.ReaderError):
        return f"the character {exc.character:#06x} at position {exc.position} is not allowed"
    if not isinstance(exc, yaml.MarkedYAMLError):
        return printable(str(exc))
    what = " ".join(part for part in (exc.context, exc.problem) if part) or "malformed"
    mark = exc.problem_mark or exc.context_mark
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return printable(what) + where


def read_file(path: object) -> str:
    """The text of the spec file ``path``: a regular file of at most :data:`MAX_TEXT` bytes of UTF-8.

    The file is opened without blocking, so a FIFO or a device is refused at once rather than waited on.

    :raises InvalidSpec: (field ``file``) not a path, unreadable, not a regular file, too large, not UTF-8.
    """
    if isinstance(path, Path):
        path = str(path)
    name = check_text("file", path, max_len=4096)
    if not name:
        raise InvalidSpec("file", "must name a file")
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise InvalidSpec("file", f"cannot read {shown(name, limit=200)}: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InvalidSpec("file", f"{shown(name, limit=200)} is not a regular file")
        data = b""
        while len(data) <= MAX_TEXT and (chunk := os.read(fd, MAX_TEXT + 1 - len(data))):
            data += chunk
    except OSError as exc:
        raise InvalidSpec("file", f"cannot read {shown(name, limit=200)}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_TEXT:
        raise InvalidSpec("file", f"{shown(name, limit=200)} is larger than {MAX_TEXT:,} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidSpec(
            "file", f"{shown(name, limit=200)} is not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})"
        ) from None
