"""The declarative engine: a site file says which VMs run where and in what state; a plan says how to get there.

Today: :class:`SiteSpec`, the site file. Planning, observing hosts and applying a plan come next.
"""

from __future__ import annotations

from virtkit.playbook.site import DesiredState, HostSpec, Placement, SiteSpec, SiteVM

__all__ = [
    "DesiredState",
    "HostSpec",
    "Placement",
    "SiteSpec",
    "SiteVM",
]
