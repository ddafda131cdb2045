"""Carrying out a plan: each step through virtkit's own operations, hosts side by side.

The plan's phases run one after the other (a VM is defined before it starts, migrated before its state changes on
its new host); within a phase the steps of each host run in order on that host's thread, hosts at once. After a
step fails, no new step starts anywhere: the steps already running end, the rest are reported ``not-run``. Each
operation leaves its VM in a known state when it fails (virtkit's operations roll back what they began), so the
report tells exactly which steps ran.

A step that needs the VM off is ``held`` (not made) unless ``allow_restart`` is given: then the VM is shut down
(gracefully, then hard after the site's ``shutdown_timeout``), changed, and brought back to the state it was in.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum

from virtkit.errors import Conflict, NotFound, VirtkitError
from virtkit.models.migration import MigrationMode, MigrationProgress
from virtkit.models.state import VMState
from virtkit.ops.host import Host
from virtkit.ops.vm import VM
from virtkit.playbook.plan import Action, Plan, Step
from virtkit.playbook.site import SiteOptions

__all__ = ["Progress", "StepResult", "StepStatus", "apply_plan"]

#: Called with a migration step and its progress, about four times a second while its data moves.
Progress = Callable[[Step, MigrationProgress], None]


class StepStatus(StrEnum):
    """What became of a step: ``done``, ``failed``, ``not-run`` (an earlier step failed) or ``held`` (it needs the
    VM off and restarts were not allowed)."""

    DONE = "done"
    FAILED = "failed"
    NOT_RUN = "not-run"
    HELD = "held"


@dataclasses.dataclass(frozen=True)
class StepResult:
    """A step and what became of it; ``error`` is the failure's message, ``seconds`` how long it took."""

    step: Step
    status: StepStatus
    error: str = ""
    seconds: float = 0.0


def apply_plan(
    plan: Plan,
    hosts: Mapping[str, Host],
    options: SiteOptions,
    *,
    allow_restart: bool = False,
    on_step: Callable[[StepResult], None] | None = None,
    progress: Progress | None = None,
) -> tuple[StepResult, ...]:
    """Carry out ``plan`` on ``hosts`` (host name -> open connection); the results in the plan's order.

    ``on_step`` is called from the host's thread as each step ends; ``progress`` during migrations.
    """
    run = _Run(hosts, options, allow_restart, on_step, progress)
    results: dict[int, StepResult] = {}
    phases: dict[int, list[tuple[int, Step]]] = {}
    for i, step in enumerate(plan):
        phases.setdefault(step.phase, []).append((i, step))
    for phase in sorted(phases):
        by_host: dict[str, list[tuple[int, Step]]] = {}
        for i, step in phases[phase]:
            by_host.setdefault(step.host, []).append((i, step))
        with ThreadPoolExecutor(max_workers=len(by_host), thread_name_prefix="virtkit-apply") as pool:
            for done in pool.map(run.steps, by_host.values()):
                results.update(done)
    return tuple(results[i] for i in range(len(plan)))


class _Run:
    """One application of a plan: the hosts, the options, and whether a step failed (then nothing new starts)."""

    def __init__(
        self,
        hosts: Mapping[str, Host],
        options: SiteOptions,
        allow_restart: bool,
        on_step: Callable[[StepResult], None] | None,
        progress: Progress | None,
    ) -> None:
        self.hosts = hosts
        self.options = options
        self.allow_restart = allow_restart
        self.on_step = on_step
        self.progress = progress
        self.failed = threading.Event()

    def steps(self, steps: list[tuple[int, Step]]) -> dict[int, StepResult]:
        """Run one host's steps of a phase, in order, until one fails (here or on another host)."""
        out: dict[int, StepResult] = {}
        for i, step in steps:
            if self.failed.is_set():
                result = StepResult(step, StepStatus.NOT_RUN)
            elif step.needs_off and not self.allow_restart:
                result = StepResult(step, StepStatus.HELD, "needs the VM off; allow restarts to make it")
            else:
                result = self._one(step)
            out[i] = result
            if self.on_step is not None and result.status is not StepStatus.NOT_RUN:
                self.on_step(result)
        return out

    def _one(self, step: Step) -> StepResult:
        began = time.monotonic()
        try:
            _STEPS[step.action](self, step)
        except (VirtkitError, OSError) as exc:
            self.failed.set()
            return StepResult(step, StepStatus.FAILED, str(exc), time.monotonic() - began)
        except BaseException:
            self.failed.set()
            raise
        return StepResult(step, StepStatus.DONE, seconds=time.monotonic() - began)

    # -- the steps ----------------------------------------------------------------------------------------------

    def vm(self, step: Step) -> VM:
        return self.hosts[step.host].get(step.vm)

    def define(self, step: Step) -> None:
        assert step.spec is not None
        self.hosts[step.host].create(step.spec)

    def delete(self, step: Step) -> None:
        try:
            vm = self.vm(step)
        except NotFound:
            return
        vm.delete(storage=not self.options.keep_disks, force=True)

    def stop(self, step: Step) -> None:
        vm = self.vm(step)
        if vm.state is VMState.SAVED:
            vm.discard_saved_state()
        elif step.hard:
            vm.destroy()
        else:
            vm.shutdown(timeout=self.options.shutdown_timeout, force=True)

    def start(self, step: Step) -> None:
        vm = self.vm(step)
        if vm.state not in (VMState.STOPPED, VMState.SAVED):  # crashed, or in a transition
            vm.destroy()
        vm.start()

    def migrate(self, step: Step) -> None:
        vm = self.hosts[step.source].get(step.vm)
        running = vm.state not in (VMState.STOPPED, VMState.SAVED)
        mode = self.options.migration if running else MigrationMode.OFFLINE
        report = None if self.progress is None else (lambda p, s=step, cb=self.progress: cb(s, p))
        vm.migrate(self.hosts[step.host], mode=mode, shared_storage=self.options.shared_storage, progress=report)

    def update(self, step: Step) -> None:
        """A field or a disk's fields: live (memory, vCPUs) on a VM that runs when the plan says so."""

        def live(vm: VM) -> None:
            if step.field not in ("memory", "vcpus"):  # observed off, started since: the plan no longer holds
                raise Conflict(f"{step.vm} is {vm.state.value} now, not as planned; plan again")
            vm.set_resources(**{step.field: getattr(step.spec, step.field)})

        self._change(step, live)

    def attach(self, step: Step) -> None:
        assert step.disk is not None
        disk = step.disk
        self._change(step, lambda vm: None if disk.path in {d.path for d in vm.spec().disks} else vm.disks.attach(disk))

    def detach(self, step: Step) -> None:
        assert step.disk is not None
        path = str(step.disk.path)
        self._change(step, lambda vm: vm.disks.detach(path))

    def _change(self, step: Step, live: Callable[[VM], object]) -> None:
        """Change the VM to the step's spec: through its definition when it is off, by ``live`` when it runs and
        the plan says so, else by a restart."""
        vm = self.vm(step)
        assert step.spec is not None
        if vm.state is VMState.STOPPED:
            vm.update(step.spec)
        elif step.needs_off:
            self._restart_with(vm, step)
        else:
            live(vm)

    def _restart_with(self, vm: VM, step: Step) -> None:
        """Shut the VM down, give it the step's spec, and bring it back to the state it was observed in."""
        assert step.spec is not None
        if vm.state is VMState.SAVED:
            vm.discard_saved_state()
        vm.shutdown(timeout=self.options.shutdown_timeout, force=True)
        vm.update(step.spec)
        self._bring_back(vm, step.observed)

    @staticmethod
    def _bring_back(vm: VM, state: VMState | None) -> None:
        if state in (VMState.STOPPED, None):
            return
        vm.start()
        if state is VMState.PAUSED:
            vm.pause()
        elif state is VMState.SAVED:
            vm.managed_save()

    def pause(self, step: Step) -> None:
        self.vm(step).pause()

    def resume(self, step: Step) -> None:
        self.vm(step).resume()

    def save(self, step: Step) -> None:
        self.vm(step).managed_save()

    def checkpoint(self, step: Step) -> None:
        self.vm(step).snapshots.create(step.detail, kind=None)  # what the VM's snapshot mode takes

    def revert(self, step: Step) -> None:
        self.vm(step).snapshots.revert(step.detail)


_STEPS: dict[Action, Callable[[_Run, Step], None]] = {
    Action.DEFINE: _Run.define,
    Action.UPDATE: _Run.update,
    Action.ATTACH: _Run.attach,
    Action.DETACH: _Run.detach,
    Action.START: _Run.start,
    Action.STOP: _Run.stop,
    Action.PAUSE: _Run.pause,
    Action.RESUME: _Run.resume,
    Action.SAVE: _Run.save,
    Action.DELETE: _Run.delete,
    Action.MIGRATE: _Run.migrate,
    Action.CHECKPOINT: _Run.checkpoint,
    Action.REVERT: _Run.revert,
}
