"""Hyper-V enlightenments in a domain definition: ``<features><hyperv mode='custom'>`` and the ``hypervclock`` timer.

Which enlightenments a VM gets is policy (:data:`virtkit.backends.libvirt.design.ENLIGHTENMENTS`); this module only
writes and reads them, with ElementTree.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

__all__ = ["enlightened", "write_enlightenments"]

_CLOCK_TIMER = "hypervclock"


def enlightened(domain: ET.Element) -> bool:
    """Whether the definition turns on any Hyper-V enlightenment."""
    hyperv = domain.find("features/hyperv")
    if hyperv is None:
        return False
    if hyperv.get("mode") == "passthrough":
        return True
    return any(child.get("state") == "on" for child in hyperv)


def write_enlightenments(domain: ET.Element, names: Sequence[str] | None, *, spinlock_retries: int) -> None:
    """Give ``domain`` exactly the enlightenments ``names`` and the ``hypervclock`` timer, or with ``None`` none and
    no such timer. ``spinlocks`` gets ``spinlock_retries``; ``stimer`` its direct mode."""
    features = domain.find("features")
    old = features.find("hyperv") if features is not None else None
    if old is not None and features is not None:
        features.remove(old)
    clock = domain.find("clock")
    if clock is not None:
        for timer in clock.findall(f"timer[@name='{_CLOCK_TIMER}']"):
            clock.remove(timer)
    if not names:
        return
    if features is None:
        features = ET.SubElement(domain, "features")
    hyperv = ET.SubElement(features, "hyperv", mode="custom")
    for name in names:
        element = ET.SubElement(hyperv, name, state="on")
        if name == "spinlocks":
            element.set("retries", str(spinlock_retries))
        elif name == "stimer":
            ET.SubElement(element, "direct", state="on")
    if clock is None:
        clock = ET.SubElement(domain, "clock", offset="utc")
    ET.SubElement(clock, "timer", name=_CLOCK_TIMER, present="yes")
