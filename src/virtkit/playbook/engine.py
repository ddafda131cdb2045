"""The engine behind ``virtkit apply`` and the Ansible modules: observe a site's hosts, plan, apply, report.

>>> from virtkit.playbook import SiteSpec, run
>>> report = run(SiteSpec.from_file("site.yml"), check=True)     # doctest: +SKIP
>>> print(report.text(), report.exit_code)                       # doctest: +SKIP

:class:`Engine` holds one connection per host for its life; :func:`run` is one observe-plan-apply on a fresh one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any

from virtkit.connect import connect
from virtkit.errors import HostUnavailable, InvalidSpec, VirtkitError
from virtkit.ops.args import check_callbacks
from virtkit.ops.host import Host
from virtkit.playbook.apply import Progress, StepResult, StepStatus, apply_plan
from virtkit.playbook.observe import observe
from virtkit.playbook.plan import Action, Observed, Plan, Step, plan
from virtkit.playbook.report import EXIT_CHANGES, EXIT_ERROR, EXIT_NONE, render, render_results, render_step
from virtkit.playbook.site import DesiredState, HostSpec, SiteSpec
from virtkit.validate import check_flag

__all__ = ["Engine", "Report", "VMDiff", "run"]

#: Opens a site host: the default is :func:`virtkit.connect` with the host's URI, SSH settings and storage roots.
Connector = Callable[[HostSpec], Host]


@dataclasses.dataclass(frozen=True)
class VMDiff:
    """One VM before and after: ``{"host", "state", "spec"}`` as plain data, ``None`` where it does not exist."""

    vm: str
    host: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclasses.dataclass(frozen=True)
class Report:
    """What an apply planned and did.

    In check mode ``results`` is empty and ``changed`` says whether anything would change; else ``changed`` says
    whether a step was made. ``exit_code`` is ``terraform plan -detailed-exitcode``'s: 0 nothing to do, 2 changes,
    1 an error.
    """

    plan: Plan
    results: tuple[StepResult, ...] = ()
    diffs: tuple[VMDiff, ...] = ()
    check: bool = False

    @property
    def failed(self) -> bool:
        """Whether a step failed."""
        return any(r.status is StepStatus.FAILED for r in self.results)

    @property
    def error(self) -> str:
        """The message of the first step that failed (by plan order), or empty."""
        return next((f"{r.step.vm}: {r.error}" for r in self.results if r.status is StepStatus.FAILED), "")

    @property
    def held(self) -> tuple[StepResult, ...]:
        """The steps not made because they need their VM off."""
        return tuple(r for r in self.results if r.status is StepStatus.HELD)

    @property
    def changed(self) -> bool:
        """Whether something changed (in check mode: would change)."""
        if self.check:
            return bool(self.plan)
        return any(r.status is StepStatus.DONE for r in self.results)

    @property
    def exit_code(self) -> int:
        if self.failed:
            return EXIT_ERROR
        return EXIT_CHANGES if self.plan else EXIT_NONE

    def text(self) -> str:
        """The plan as a diff (check mode), or each step with what became of it."""
        return render(self.plan) if self.check else render_results(self.results)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data (what ``virtkit apply --json`` prints): each planned step, each result with its
        status, error and seconds, each changed VM before and after."""
        return {
            "changed": self.changed,
            "failed": self.failed,
            "exit_code": self.exit_code,
            "check": self.check,
            "plan": [_step(s) for s in self.plan],
            "results": [
                {**_step(r.step), "status": r.status.value, "error": r.error, "seconds": r.seconds}
                for r in self.results
            ],
            "diffs": [{"vm": d.vm, "host": d.host, "before": d.before, "after": d.after} for d in self.diffs],
        }


class Engine:
    """A site's hosts, connected: observe them, plan, apply. Use it as a context manager; it closes the
    connections it opened.

    :param hosts: hosts already open, by their name in the site; the engine opens the others with ``connector``
        (default: :func:`virtkit.connect` with each host's URI, SSH settings and storage roots).
    :raises InvalidSpec: ``site`` is no :class:`SiteSpec`, a given host is no :class:`~virtkit.Host`.
    :raises HostUnavailable: a host cannot be reached; the message names it (``hosts.h2``). The hosts already
        opened are closed again.
    """

    def __init__(
        self, site: SiteSpec, *, hosts: Mapping[str, Host] | None = None, connector: Connector | None = None
    ) -> None:
        if not isinstance(site, SiteSpec):
            raise InvalidSpec("site", f"must be a SiteSpec, not {type(site).__name__}")
        given = dict(hosts or {})
        for name, host in given.items():
            if not isinstance(host, Host):
                raise InvalidSpec(f"hosts.{name}", f"must be an open Host, not {type(host).__name__}")
        self.site = site
        opener = connector or _connect
        self._owned: dict[str, Host] = {}
        wanted = [h for h in site.hosts if h.name not in given]
        try:
            with ThreadPoolExecutor(max_workers=max(1, len(wanted)), thread_name_prefix="virtkit-connect") as pool:
                futures = {h.name: pool.submit(_opened, opener, h) for h in wanted}
                errors: list[VirtkitError] = []
                for name, future in futures.items():
                    try:
                        self._owned[name] = future.result()
                    except VirtkitError as exc:
                        errors.append(exc)
                if errors:
                    raise errors[0]
        except BaseException:
            self.close()
            raise
        self.hosts: Mapping[str, Host] = {h.name: given.get(h.name) or self._owned[h.name] for h in site.hosts}

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections the engine opened (not the hosts it was given)."""
        for host in self._owned.values():
            host.close()
        self._owned.clear()

    def observe(self) -> Observed:
        """What the hosts hold now (one bulk listing per host, hosts at once)."""
        return observe(self.site, self.hosts)

    def plan(self, observed: Observed | None = None) -> Plan:
        """The steps that bring the hosts to the site (observing them first unless ``observed`` is given)."""
        return plan(self.site, self.observe() if observed is None else observed)

    def diffs(self, plan: Plan, observed: Observed) -> tuple[VMDiff, ...]:
        """Before and after of each VM the plan changes."""
        return _diffs(self.site, plan, observed)

    def apply(
        self,
        plan: Plan,
        *,
        allow_restart: bool = False,
        on_step: Callable[[StepResult], None] | None = None,
        progress: Progress | None = None,
    ) -> tuple[StepResult, ...]:
        """Carry out ``plan`` (see :mod:`virtkit.playbook.apply`); each step with what became of it."""
        check_flag("allow_restart", allow_restart)
        check_callbacks(on_step=on_step, progress=progress)
        return apply_plan(
            plan, self.hosts, self.site.options, allow_restart=allow_restart, on_step=on_step, progress=progress
        )

    def run(
        self,
        *,
        check: bool = False,
        allow_restart: bool = False,
        on_step: Callable[[StepResult], None] | None = None,
        progress: Progress | None = None,
    ) -> Report:
        """Observe, plan and (unless ``check``) apply: the report of it all."""
        check_flag("check", check)
        check_flag("allow_restart", allow_restart)
        check_callbacks(on_step=on_step, progress=progress)
        observed = self.observe()
        steps = plan(self.site, observed)
        diffs = self.diffs(steps, observed)
        if check:
            return Report(steps, diffs=diffs, check=True)
        results = self.apply(steps, allow_restart=allow_restart, on_step=on_step, progress=progress)
        return Report(steps, results, diffs)


def run(
    site: SiteSpec,
    *,
    check: bool = False,
    allow_restart: bool = False,
    on_step: Callable[[StepResult], None] | None = None,
    progress: Progress | None = None,
    hosts: Mapping[str, Host] | None = None,
    connector: Connector | None = None,
) -> Report:
    """Bring the hosts of ``site`` to what it says (``check``: only say what would change); see :class:`Engine`.

    :raises InvalidSpec: a bad argument.
    :raises HostUnavailable: a host cannot be reached (nothing was changed).
    """
    check_flag("check", check)
    check_flag("allow_restart", allow_restart)
    check_callbacks(on_step=on_step, progress=progress)
    with Engine(site, hosts=hosts, connector=connector) as engine:
        return engine.run(check=check, allow_restart=allow_restart, on_step=on_step, progress=progress)


def _step(s: Step) -> dict[str, Any]:
    return {
        "action": s.action.value,
        "host": s.host,
        "vm": s.vm,
        "detail": s.detail,
        "needs_off": s.needs_off,
        "text": render_step(s),
    }


def _connect(host: HostSpec) -> Host:
    return connect(host.uri, storage_roots=host.storage_roots or None, ssh=host.ssh)


def _opened(opener: Connector, host: HostSpec) -> Host:
    """``host`` opened; an error that names no host is said again with its name."""
    try:
        return opener(host)
    except HostUnavailable as exc:
        raise HostUnavailable(f"hosts.{host.name}: {exc}") from exc
    except InvalidSpec as exc:
        raise InvalidSpec(f"hosts.{host.name}.{exc.field}", exc.reason) from exc


def _diffs(site: SiteSpec, steps: Plan, observed: Observed) -> tuple[VMDiff, ...]:
    changed = {s.vm: s.host for s in steps}
    out: list[VMDiff] = []
    for vm in site.vms:
        if vm.name not in changed:
            continue
        found = observed.find(vm.name)
        before = None
        if found:
            host, there = next(((h, v) for h, v in found if h == vm.host), found[0])
            before = {"host": host, "state": there.state.value, "spec": there.spec.to_dict()}
        after = None
        if vm.state is not DesiredState.ABSENT:
            spec = observed.desired.get(vm.name, vm.vm_spec)
            if found:
                spec = spec.adopt_generated(found[0][1].spec)
            target = next(
                (s.host for s in steps if s.vm == vm.name and s.action is not Action.DETACH), changed[vm.name]
            )
            after = {"host": vm.host or target, "state": vm.state.value, "spec": spec.to_dict()}
        out.append(VMDiff(vm.name, changed[vm.name], before, after))
    return tuple(out)
