"""What a guest agent reports of its guest."""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["GuestInfo", "GuestInterface"]


@dataclasses.dataclass(frozen=True)
class GuestInterface:
    """A network interface as the guest sees it: its name, MAC address and IP addresses (``addr/prefix``)."""

    name: str
    mac: str | None
    addresses: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class GuestInfo:
    """The guest as its agent describes it; a field the guest does not report is ``None`` (or empty)."""

    hostname: str | None
    os_id: str | None
    os_name: str | None
    os_version: str | None
    kernel_release: str | None
    machine: str | None
    timezone: str | None
    interfaces: tuple[GuestInterface, ...] = ()

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> GuestInfo:
        """From libvirt's typed parameters (``os.name``, ``hostname``, ``if.0.addr.1.addr``...)."""

        def text(key: str) -> str | None:
            value = params.get(key)
            return str(value) if value not in (None, "") else None

        interfaces = []
        for i in range(int(params.get("if.count", 0) or 0)):
            prefix = f"if.{i}"
            addresses = []
            for j in range(int(params.get(f"{prefix}.addr.count", 0) or 0)):
                addr, length = params.get(f"{prefix}.addr.{j}.addr"), params.get(f"{prefix}.addr.{j}.prefix")
                if addr:
                    addresses.append(f"{addr}/{length}" if length is not None else str(addr))
            name = text(f"{prefix}.name")
            if name is not None:
                interfaces.append(GuestInterface(name, text(f"{prefix}.hwaddr"), tuple(addresses)))
        hostname = text("hostname")
        return cls(
            hostname=None if hostname == "(none)" else hostname,
            os_id=text("os.id"),
            os_name=text("os.pretty-name") or text("os.name"),
            os_version=text("os.version") or text("os.version-id"),
            kernel_release=text("os.kernel-release"),
            machine=text("os.machine"),
            timezone=text("timezone.name"),
            interfaces=tuple(interfaces),
        )

    @property
    def addresses(self) -> tuple[str, ...]:
        """Every IP address of every interface but loopback, without its prefix length."""
        return tuple(a.split("/")[0] for i in self.interfaces if i.name != "lo" for a in i.addresses)
