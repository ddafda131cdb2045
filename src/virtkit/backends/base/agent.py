"""The protocol of a VM's guest agent (qemu-guest-agent inside the guest), as a backend provides it. No libvirt."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["GuestAgentBackend"]


class GuestAgentBackend(Protocol):
    """The guest agent of one running VM. Every call but :meth:`ping` raises
    :class:`~virtkit.errors.GuestAgentUnavailable` when the agent does not answer."""

    def ping(self, timeout: int) -> bool:
        """Whether the agent answers within ``timeout`` seconds."""

    def info(self) -> dict[str, Any]:
        """What the agent reports of the guest: operating system, kernel, hostname, time zone, interfaces, as
        libvirt's typed parameters (``os.name``, ``hostname``, ``if.0.addr.0.addr``...)."""

    def get_time(self) -> float:
        """The guest's clock, seconds since the epoch."""

    def set_time(self, seconds: float) -> None:
        """Set the guest's clock (and its hardware clock) to ``seconds`` since the epoch."""

    def command(self, name: str, arguments: dict[str, Any] | None, timeout: int) -> Any:
        """Run the agent command ``name`` (``guest-file-open``...) and return its ``return`` value."""
