"""``LibvirtAgent``: the guest agent of one libvirt domain, through libvirt's agent calls and
``qemuAgentCommand`` for what libvirt has no call for (the guest-file-* commands)."""

from __future__ import annotations

import json
from typing import Any

import libvirt
import libvirt_qemu  # type: ignore[import-untyped]  # libvirt-python ships no type information

from virtkit.backends.libvirt.errors import translate
from virtkit.errors import GuestAgentUnavailable, VirtkitError

__all__ = ["LibvirtAgent"]

_UNAVAILABLE = {libvirt.VIR_ERR_AGENT_UNRESPONSIVE, libvirt.VIR_ERR_AGENT_UNSYNCED}
_CALL_TIMEOUT = 30  # seconds for a libvirt agent call (guest info, time) to answer


class LibvirtAgent:
    """The guest agent of one domain (see :class:`virtkit.backends.base.agent.GuestAgentBackend`)."""

    def __init__(self, dom: libvirt.virDomain, name: str) -> None:
        self._dom = dom
        self._name = name

    def ping(self, timeout: int) -> bool:
        try:
            libvirt_qemu.qemuAgentCommand(self._dom, '{"execute": "guest-ping"}', timeout, 0)
        except libvirt.libvirtError:
            return False  # not connected, timed out, or out of sync: in every case it does not answer
        return True

    def info(self) -> dict[str, Any]:
        with _agent_errors(f"read the guest information of {self._name}"):
            info: dict[str, Any] = self._dom.guestInfo(0, 0)
        return info

    def get_time(self) -> float:
        with _agent_errors(f"read the guest clock of {self._name}"):
            now: dict[str, int] = self._dom.getTime()
        return now["seconds"] + now["nseconds"] / 1e9

    def set_time(self, seconds: float) -> None:
        whole = int(seconds)
        with _agent_errors(f"set the guest clock of {self._name}"):
            self._dom.setTime({"seconds": whole, "nseconds": int((seconds - whole) * 1e9)}, 0)

    def command(self, name: str, arguments: dict[str, Any] | None, timeout: int) -> Any:
        request = json.dumps({"execute": name, **({"arguments": arguments} if arguments is not None else {})})
        with _agent_errors(f"run {name} in {self._name}"):
            reply = libvirt_qemu.qemuAgentCommand(self._dom, request, timeout, 0)
        try:
            return json.loads(reply)["return"]
        except (ValueError, KeyError, TypeError) as exc:
            raise VirtkitError(f"run {name} in {self._name}: the guest agent's reply is no result: {exc}") from None


class _agent_errors:
    """Translate libvirt's errors; the agent not answering (or not connected) becomes GuestAgentUnavailable."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if not isinstance(exc, libvirt.libvirtError):
            return
        error = translate(exc, self.what)
        lowered = str(error).lower()
        if exc.get_error_code() in _UNAVAILABLE or "agent is not connected" in lowered or "not responding" in lowered:
            raise GuestAgentUnavailable(f"{error}; is qemu-guest-agent running in the guest?", code=error.code) from exc
        raise error from exc
