"""The tasks behind the Ansible collection ``virtkit.kvm``: each module's parameters in, its result out.

Each task takes one module's parameters as a mapping (an option left out is ``None``) and returns the module's
result as plain data; it raises :class:`~virtkit.errors.VirtkitError` with the option named, and changes nothing
when it refuses. The ``vm`` task runs the engine of ``virtkit apply`` on a site of one host and one VM.

>>> from virtkit.playbook.tasks import run_task
>>> run_task("vm_info", {"uri": "test:///default"})["vms"][0]["name"]
'test'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from virtkit.errors import InvalidSpec
from virtkit.playbook.tasks.common import Params
from virtkit.playbook.tasks.disk import disk
from virtkit.playbook.tasks.image import image
from virtkit.playbook.tasks.migrate import migrate
from virtkit.playbook.tasks.snapshot import snapshot
from virtkit.playbook.tasks.vm import vm, vm_info
from virtkit.validate import check_flag

__all__ = ["TASKS", "disk", "image", "migrate", "run_task", "snapshot", "vm", "vm_info"]

#: Each task by its module's name; ``vm_info`` takes no check or diff (it changes nothing).
TASKS: dict[str, Callable[..., dict[str, Any]]] = {
    "vm": vm,
    "vm_info": vm_info,
    "snapshot": snapshot,
    "disk": disk,
    "migrate": migrate,
    "image": image,
}


def run_task(name: str, params: Params, *, check: bool = False, diff: bool = False) -> dict[str, Any]:
    """Run the task of module ``name`` with ``params``: its result (``changed``, ``diff``, the module's fields).

    :raises InvalidSpec: no such task, params no mapping, or a bad option (named); nothing changed.
    :raises VirtkitError: the task failed (translated; the VM is left in a known state).
    """
    task = TASKS.get(name) if isinstance(name, str) else None
    if task is None:
        raise InvalidSpec("task", f"must be one of {', '.join(TASKS)}, not {name!r}")
    if not isinstance(params, dict):
        raise InvalidSpec("params", f"must be a mapping of options, not {type(params).__name__}")
    check_flag("check", check)
    check_flag("diff", diff)
    if task is vm_info:
        return task(params)
    return task(params, check=check, diff=diff)
