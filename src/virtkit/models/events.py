"""Events a host reports about its VMs."""

from __future__ import annotations

import dataclasses

__all__ = ["LifecycleEvent"]


@dataclasses.dataclass(frozen=True)
class LifecycleEvent:
    """A VM changed state on a host: ``event`` like ``started``/``stopped``/``suspended``, ``detail`` the reason."""

    host: str
    vm: str
    event: str
    detail: str
