"""Argument checks shared by the operations that take hosts, VMs and migration settings: made first, before
anything is read or changed, each raising :class:`~virtkit.errors.InvalidSpec` naming the argument.

A :class:`~virtkit.Host` and a :class:`~virtkit.VM` are recognised by what they hold (the
:class:`~virtkit.ops.storage.HostStorage` of their host, and the backend of the host or the domain), not by their
class: the Host and VM modules import the migration and CPU modules that need these checks.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from virtkit.errors import InvalidSpec
from virtkit.models.cpu import CPUModel
from virtkit.models.migration import MigrationTuning
from virtkit.ops.storage import HostStorage
from virtkit.validate import check_list

if TYPE_CHECKING:
    from virtkit.ops.host import Host
    from virtkit.ops.vm import VM

__all__ = ["check_callbacks", "check_cpus", "check_host", "check_hosts", "check_tuning", "check_vm"]


def _holds(value: object, handle: str) -> bool:
    return isinstance(getattr(value, "_storage", None), HostStorage) and hasattr(value, handle)


def check_host(field: str, value: object) -> Host:
    """``value`` if it is a :class:`~virtkit.Host`.

    :raises InvalidSpec: it is anything else (a URI, a VM, ``None``).
    """
    if not _holds(value, "_backend"):
        raise InvalidSpec(field, f"must be a virtkit.Host (from virtkit.connect), not {type(value).__name__}")
    return cast("Host", value)


def check_hosts(field: str, value: object) -> list[Host]:
    """``value``, a non-empty list or tuple of hosts, as a list.

    :raises InvalidSpec: a single host, a string or another kind of collection, an empty one, or an item that is
        not a host (field ``field[i]``).
    """
    return check_list(field, value, check_host, empty=False)


def check_cpus(field: str, value: object) -> list[CPUModel]:
    """``value``, a non-empty list or tuple of :class:`~virtkit.CPUModel`, as a list.

    :raises InvalidSpec: anything else (the item is named).
    """

    def cpu(item_field: str, item: object) -> CPUModel:
        if not isinstance(item, CPUModel):
            raise InvalidSpec(item_field, f"must be a virtkit.CPUModel, not {type(item).__name__}")
        return item

    return check_list(field, value, cpu, empty=False)


def check_vm(field: str, value: object) -> VM:
    """``value`` if it is a :class:`~virtkit.VM`.

    :raises InvalidSpec: it is anything else (a name, a host, ``None``).
    """
    if not _holds(value, "_dom"):
        raise InvalidSpec(field, f"must be a virtkit.VM (from host.get), not {type(value).__name__}")
    return cast("VM", value)


def check_tuning(value: object) -> MigrationTuning:
    """``value`` (a :class:`MigrationTuning`, a mapping of its fields, or ``None`` for the defaults) as a tuning.

    :raises InvalidSpec: (field ``tuning`` or ``tuning.<field>``) anything else, or a bad field.
    """
    if value is None:
        return MigrationTuning()
    if isinstance(value, Mapping):
        return MigrationTuning.from_dict(value, "tuning")
    if not isinstance(value, MigrationTuning):
        raise InvalidSpec("tuning", f"must be a MigrationTuning, not {type(value).__name__}")
    return value


def check_callbacks(**callbacks: Any) -> None:
    """Each of ``callbacks`` is ``None`` or a function; one named ``cancel`` is ``None`` or a
    :class:`threading.Event`.

    :raises InvalidSpec: (the argument's name) one that is not.
    """
    for field, value in callbacks.items():
        if value is None:
            continue
        if field == "cancel" and not isinstance(value, threading.Event):
            raise InvalidSpec(field, f"must be a threading.Event, not {type(value).__name__}")
        if field != "cancel" and not callable(value):
            raise InvalidSpec(field, f"must be a function, not {type(value).__name__}")
