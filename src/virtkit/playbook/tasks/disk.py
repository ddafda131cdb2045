"""The ``disk`` task: a disk attached to a VM (hot-plugged when it runs) or detached from it."""

from __future__ import annotations

from typing import Any

from virtkit import images
from virtkit.models.change import Change
from virtkit.playbook.tasks.common import Params, chosen, given, opened, plain, renamed, required

__all__ = ["DISK_OPTIONS", "STATES", "disk"]

#: What ``state`` may say.
STATES = ("present", "absent")
#: The options that are fields of the disk (:class:`~virtkit.DiskSpec`).
DISK_OPTIONS = ("path", "size", "format", "bus", "kind", "target", "readonly", "cache")


def disk(params: Params, *, check: bool = False, diff: bool = False) -> dict[str, Any]:
    """The disk at ``path`` attached to VM ``vm`` (``present``: a new image of ``size`` is made when the file is
    missing; a running VM gets it hot-plugged and the definition too), or detached (``absent``; the image is kept
    unless ``remove_image``).

    The result holds ``changed``, ``disk`` (the attached disk afterwards, ``None`` once detached) and ``disks``
    (every disk of the VM), and with ``diff`` Ansible's ``diff``.

    :raises InvalidSpec: a bad option (a path outside the storage roots among them); nothing changed.
    :raises NotFound: no such VM. :raises Conflict: the VM is being migrated or saved, the address is taken.
    :raises Unsupported: a bus that cannot be hot-plugged (ide, sata) on a running VM, a vhdx image.
    """
    vm_name = required(params, "vm")
    path = required(params, "path")
    state = chosen(params, "state", STATES)
    with opened(params) as host:
        vm = host.get(vm_name)
        change: Change[Any]
        if state == "present":
            spec = {k: params[k] for k in DISK_OPTIONS if params.get(k) is not None}
            with renamed({"disk": ""}):
                change = vm.disks.attach(
                    spec, controller=params.get("controller"), unit=params.get("unit"), check=check
                )
        else:
            change = vm.disks.detach(str(path), timeout=given(params, "timeout", 10.0), check=check)
            if given(params, "remove_image", False) and not check:
                removed = images.remove(path, roots=host.storage.roots)
                change = Change(change.action, change.target, change.before, None, acted=change.changed or removed)
        attached = vm.disks.list()
        mine = next((d for d in attached if str(d.disk.path) == str(path)), None)
        result: dict[str, Any] = {
            "changed": change.changed,
            "disk": _disk(mine),
            "disks": [_disk(d) for d in attached],
        }
    if diff and change.changed:
        result["diff"] = {
            "before": _disk(change.before) or {},
            "after": _disk(change.after) or {},
            "before_header": f"{vm_name}: {path}",
            "after_header": f"{vm_name}: {path}",
        }
    return result


def _disk(attached: Any) -> dict[str, Any] | None:
    """An attached disk as plain data: its spec's fields, its target and address, live and persistent."""
    if attached is None:
        return None
    data = plain(attached)
    spec = data.pop("disk", {})
    return {**spec, **data}
