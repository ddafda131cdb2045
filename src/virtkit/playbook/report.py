"""A plan in words: one line a step, like a diff, and the exit code of ``terraform plan -detailed-exitcode``.

``+`` makes something (a VM, a checkpoint), ``-`` removes a VM, ``~`` changes one::

    - delete old1 on h1
    + define web1 on h1 (2 vCPUs, 1GiB, 1 disk)
    ~ web2: memory 1GiB -> 2GiB (live)
    ~ web2: attach disk /srv/web2-data.qcow2 on virtio (hot-plug)
    ~ web3: migrate h1 -> h2
    ~ web1: start on h1
    + web1: checkpoint installed
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from virtkit.playbook.plan import Action, Plan, Step

if TYPE_CHECKING:
    from virtkit.playbook.apply import StepResult

__all__ = ["EXIT_CHANGES", "EXIT_ERROR", "EXIT_NONE", "exit_code", "render", "render_results", "render_step"]

#: Nothing to do: the hosts are what the site says.
EXIT_NONE = 0
#: Something failed.
EXIT_ERROR = 1
#: Changes were planned (in check mode) or made.
EXIT_CHANGES = 2


def render_step(step: Step) -> str:
    """One line for ``step``: its sign, the VM, what changes and where."""
    detail = f" ({step.detail})" if step.detail else ""
    if step.action is Action.DEFINE:
        return f"+ define {step.vm} on {step.host}{detail}"
    if step.action is Action.DELETE:
        return f"- delete {step.vm} on {step.host}"
    if step.action is Action.CHECKPOINT:
        return f"+ {step.vm}: checkpoint {step.detail}"
    if step.action is Action.REVERT:
        return f"~ {step.vm}: revert to checkpoint {step.detail}"
    if step.action is Action.UPDATE:
        return f"~ {step.vm}: {step.detail}"
    if step.action in (Action.ATTACH, Action.DETACH, Action.MIGRATE):
        return f"~ {step.vm}: {step.action.value} {step.detail}"
    return f"~ {step.vm}: {step.action.value} on {step.host}{detail}"


def render(plan: Plan) -> str:
    """The plan as text, a line a step and a last line that counts them; ``No changes.`` for an empty plan."""
    if not plan:
        return "No changes.\n"
    lines = [render_step(s) for s in plan]
    off = sum(s.needs_off for s in plan)
    count = f"{len(plan)} step{'s' if len(plan) != 1 else ''}"
    lines.append(f"Plan: {count}" + (f", {off} of them with the VM off." if off else "."))
    return "\n".join(lines) + "\n"


def exit_code(plan: Plan, *, failed: bool = False) -> int:
    """The exit code of ``terraform plan -detailed-exitcode``: 0 nothing to do, 1 an error, 2 changes.

    The same in check mode (changes planned) and when applying (changes made): a plan that is not empty is 2.
    """
    if failed:
        return EXIT_ERROR
    return EXIT_CHANGES if plan else EXIT_NONE


def render_results(results: Sequence[StepResult]) -> str:
    """Each step's line with what became of it (``done in 0.31 s``, ``FAILED: why``, ``held: why``, ``not run``),
    and a last line that counts them; ``No changes.`` when there were none."""
    if not results:
        return "No changes.\n"
    lines = []
    counts: dict[str, int] = {}
    for r in results:
        status = r.status.value
        counts[status] = counts.get(status, 0) + 1
        if status == "done":
            tail = f"done in {r.seconds:.2f} s"
        elif status == "failed":
            tail = f"FAILED: {r.error}"
        elif status == "held":
            tail = f"held: {r.error}"
        else:
            tail = "not run"
        lines.append(f"{render_step(r.step)}: {tail}")
    order = ("done", "held", "failed", "not-run")
    lines.append("Applied: " + ", ".join(f"{counts[k]} {k}" for k in order if k in counts) + ".")
    return "\n".join(lines) + "\n"
