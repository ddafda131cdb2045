"""The declarative engine: a site file says which VMs run where and in what state; a plan says how to get there.

Today: :class:`SiteSpec` (the site file), :func:`plan` (pure: desired site and observed hosts in, ordered steps
out) and :func:`render` (the plan as a diff). Observing hosts and applying a plan come next.
"""

from __future__ import annotations

from virtkit.playbook.plan import Action, Observed, ObservedVM, Plan, Step, plan
from virtkit.playbook.report import exit_code, render
from virtkit.playbook.site import DesiredState, HostSpec, Placement, SiteSpec, SiteVM

__all__ = [
    "Action",
    "DesiredState",
    "HostSpec",
    "Observed",
    "ObservedVM",
    "Placement",
    "Plan",
    "SiteSpec",
    "SiteVM",
    "Step",
    "exit_code",
    "plan",
    "render",
]
