"""The declarative engine: a site file says which VMs run where and in what state; a plan says how to get there.

:class:`SiteSpec` is the site file; :func:`plan` is pure (desired site and observed hosts in, ordered steps out);
:class:`Engine` and :func:`run` observe the hosts, plan, and apply the plan through virtkit's operations;
:func:`render` prints a plan as a diff.
"""

from __future__ import annotations

from virtkit.playbook.apply import StepResult, StepStatus
from virtkit.playbook.engine import Engine, Report, VMDiff, run
from virtkit.playbook.observe import observe
from virtkit.playbook.plan import Action, Observed, ObservedVM, Plan, Step, plan
from virtkit.playbook.report import exit_code, render, render_results
from virtkit.playbook.site import DesiredState, HostSpec, Placement, SiteOptions, SiteSpec, SiteVM

__all__ = [
    "Action",
    "DesiredState",
    "Engine",
    "HostSpec",
    "Observed",
    "ObservedVM",
    "Placement",
    "Plan",
    "Report",
    "SiteOptions",
    "SiteSpec",
    "SiteVM",
    "Step",
    "StepResult",
    "StepStatus",
    "VMDiff",
    "exit_code",
    "observe",
    "plan",
    "render",
    "render_results",
    "run",
]
