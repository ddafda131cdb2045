"""The ``snapshot`` task: a VM's checkpoint present, absent, or reverted to."""

from __future__ import annotations

from typing import Any

from virtkit.models.change import Change
from virtkit.models.state import VMInfo
from virtkit.playbook.tasks.common import Params, chosen, given, opened, plain, required

__all__ = ["STATES", "snapshot"]

#: What ``state`` may say.
STATES = ("present", "absent", "reverted")


def snapshot(params: Params, *, check: bool = False, diff: bool = False) -> dict[str, Any]:
    """Checkpoint ``name`` of VM ``vm``: ``present`` takes it when missing (of ``kind``, by default what the VM's
    checkpoint type says), ``absent`` deletes it (``children`` too), ``reverted`` reverts the VM to it unless it is
    already the VM's current checkpoint (``force`` reverts anyway).

    The result holds ``changed``, ``snapshot`` (the checkpoint afterwards, ``None`` once absent), ``snapshots``
    (every checkpoint's name), ``vm_state`` after a revert, and with ``diff`` Ansible's ``diff``.

    :raises InvalidSpec: a bad option; nothing changed. :raises NotFound: no such VM (or checkpoint, to revert).
    :raises Conflict: the VM is being migrated, saved, or its checkpoints are disabled.
    """
    vm_name = required(params, "vm")
    name = required(params, "name")
    state = chosen(params, "state", STATES)
    with opened(params) as host:
        vm = host.get(vm_name)
        snaps = vm.snapshots
        change: Change[Any]
        if state == "present":
            change = snaps.create(
                name, kind=params.get("kind"), description=given(params, "description", ""), check=check
            )
        elif state == "absent":
            change = snaps.delete(name, children=given(params, "children", False), check=check)
        else:
            current = snaps.current()
            if current is not None and current.name == name and not given(params, "force", False):
                change = Change("revert-snapshot", f"{vm_name}/{name}", None, None, check)
            else:
                change = snaps.revert(name, check=check)
        after = snaps.get(name) if snaps.exists(name) else None
        result: dict[str, Any] = {
            "changed": change.changed,
            "snapshot": plain(after),
            "snapshots": [s.name for s in snaps.list()],
        }
        if state == "reverted":
            now = change.after if isinstance(change.after, VMInfo) else vm.info()
            result["vm_state"] = now.state.value
    if diff and change.changed:
        result["diff"] = _diff(state, name, change)
    return result


def _diff(state: str, name: str, change: Change[Any]) -> dict[str, Any]:
    if state == "reverted":
        before = {"vm_state": change.before.state.value} if change.before is not None else {}
        after = {"vm_state": change.after.state.value, "reverted_to": name} if change.after is not None else {}
    else:
        before = _shown(change.before)
        after = _shown(change.after)
    return {"before": before, "after": after, "before_header": name, "after_header": name}


def _shown(info: Any) -> dict[str, Any]:
    if info is None:
        return {}
    data = plain(info)
    return {k: data[k] for k in ("name", "kind", "parent", "description", "vm_state") if k in data}
