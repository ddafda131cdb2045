"""Errors in Hyper-V's words: a neutral field path (``disks[1].path``) as Hyper-V names it
(``HardDrives[1].Path``)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from virtkit.errors import InvalidSpec, VirtkitError

__all__ = ["hyperv_field", "hyperv_text", "in_hyperv_words", "naming"]


# Neutral field names as Hyper-V calls them, for errors found by the neutral spec.
_FIELD_NAMES = (
    (re.compile(r"^disks\[(\d+)\]\.(unit|target)"), r"HardDrives[\1].ControllerLocation"),
    (re.compile(r"^disks\[(\d+)\]\.controller"), r"HardDrives[\1].ControllerNumber"),
    (re.compile(r"^disks\[(\d+)\]\.path"), r"HardDrives[\1].Path"),
    (re.compile(r"^disks\[(\d+)\].*"), r"HardDrives[\1]"),
    (re.compile(r"^disks$"), "HardDrives"),
    (re.compile(r"^disk\.(unit|target)"), "ControllerLocation"),
    (re.compile(r"^disk\.controller"), "ControllerNumber"),
    (re.compile(r"^disk\.path"), "Path"),
    (re.compile(r"^nics\[(\d+)\]\.mac"), r"NetworkAdapters[\1].MacAddress"),
    (re.compile(r"^nics\[(\d+)\]\.source"), r"NetworkAdapters[\1].SwitchName"),
    (re.compile(r"^nics\[(\d+)\].*"), r"NetworkAdapters[\1]"),
    (re.compile(r"^name$"), "Name"),
    (re.compile(r"^vcpus$"), "ProcessorCount"),
    (re.compile(r"^memory$"), "MemoryStartupBytes"),
    (re.compile(r"^secure_boot$"), "SecureBoot"),
    (re.compile(r"^description$"), "Notes"),
    (re.compile(r"^snapshot_mode$"), "CheckpointType"),
    (re.compile(r"^on_host_stop$"), "AutomaticStopAction"),
    (re.compile(r"^serial_log$"), "ComPort1"),
)


def hyperv_field(field: str, names: Mapping[str, str] | None = None) -> str:
    """A neutral spec's field path as Hyper-V names it (``disks[1].path`` is ``HardDrives[1].Path``); ``names``
    maps the neutral call's own arguments to the cmdlet's parameters first (``{"to": "DestinationHost"}``)."""
    head = re.match(r"[a-z_]+", field)
    if names and head is not None and head.group() in names:
        return names[head.group()] + field[head.end() :]
    for pattern, name in _FIELD_NAMES:
        if pattern.match(field):
            return pattern.sub(name, field, count=1)
    return field


def hyperv_text(reason: str) -> str:
    """A neutral message with the lists named as Hyper-V names them."""
    return re.sub(r"\bnics\[", "NetworkAdapters[", re.sub(r"\bdisks\[", "HardDrives[", reason))


@contextmanager
def in_hyperv_words(names: Mapping[str, str] | None = None) -> Iterator[None]:
    """Re-raise an :class:`InvalidSpec` about a neutral spec's field, or about an argument of the neutral call that
    ``names`` maps to a cmdlet parameter, with the field named in Hyper-V's words."""
    try:
        yield
    except InvalidSpec as exc:
        raise InvalidSpec(hyperv_field(exc.field, names), hyperv_text(exc.reason)) from None


@contextmanager
def naming(parameter: str, *kinds: type[VirtkitError]) -> Iterator[None]:
    """Re-raise an error of one of ``kinds`` (classes that take a message alone: ``Conflict``, ``NotFound``,
    ``Unsupported``...) with the cmdlet parameter it is about in front (``Count: cannot update web1: ...``)."""
    try:
        yield
    except kinds as exc:
        raise type(exc)(f"{parameter}: {exc.message}", code=exc.code, transient=exc.transient) from exc
