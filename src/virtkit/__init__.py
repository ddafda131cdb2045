"""virtkit: automate real KVM/QEMU virtual machines through libvirt."""

from __future__ import annotations

__all__: list[str] = []
