"""``GuestAgent``: what virtkit does inside a running guest through qemu-guest-agent, reached as
:attr:`virtkit.VM.agent`.

The agent is Hyper-V's integration services on KVM: ``ping`` is the Heartbeat, ``info`` the Key-Value Pair Exchange
(operating system, hostname, addresses), ``set_time`` Time Synchronization, ``copy_file`` the Guest Service
Interface (Copy-VMFile). Every call needs the VM running with an agent channel (``guest_agent: true``) and
qemu-guest-agent running in the guest; otherwise it raises :class:`~virtkit.errors.GuestAgentUnavailable`.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import PurePosixPath

from virtkit.backends.base import DomainBackend, GuestAgentBackend
from virtkit.errors import AlreadyExists, GuestAgentUnavailable, InvalidSpec, VirtkitError
from virtkit.models.agent import GuestInfo
from virtkit.models.state import VMState
from virtkit.models.vm import AgentService
from virtkit.ops.args import check_callbacks
from virtkit.ops.storage import HostStorage
from virtkit.validate import check_flag, shown

__all__ = ["GuestAgent"]

_CHUNK = 32 * 1024  # bytes per guest-file-write: qemu-ga 7.2 stops answering at 256 KiB (measured); 48 KiB works
_COMMAND_TIMEOUT = 30  # seconds for one agent command
_MAX_GUEST_PATH = 4096


class GuestAgent:
    """The guest agent of one VM (see the module's docstring)."""

    def __init__(self, dom: DomainBackend, storage: HostStorage) -> None:
        self._dom = dom
        self._storage = storage

    def ping(self, timeout: float = 5.0) -> bool:
        """Whether the agent answers within ``timeout`` seconds (``False`` for a VM that is not running or has no
        agent channel): Hyper-V's Heartbeat.

        :raises InvalidSpec: ``timeout`` is no number of seconds from 1 to 300.
        """
        seconds = _seconds("timeout", timeout)
        if self._dom.info().state is not VMState.RUNNING or not self._dom.spec().guest_agent:
            return False
        return self._dom.agent().ping(seconds)

    def info(self) -> GuestInfo:
        """The guest's operating system, kernel, hostname, time zone and network interfaces, as it reports them.

        :raises GuestAgentUnavailable: the VM does not run, has no agent channel, or its agent does not answer.
        """
        self._ready()
        return GuestInfo.from_params(self._dom.agent().info())

    def time(self) -> float:
        """The guest's clock, seconds since the epoch.

        :raises GuestAgentUnavailable: as :meth:`info`.
        """
        self._ready()
        return self._dom.agent().get_time()

    def set_time(self, seconds: float | None = None, *, check: bool = False) -> float:
        """Set the guest's clock to ``seconds`` since the epoch, by default this machine's clock now (Hyper-V's
        Time Synchronization, as after a restore or a revert); returns the time set.

        :raises InvalidSpec: ``seconds`` is no time from 1970 to 2200.
        :raises GuestAgentUnavailable: as :meth:`info`.
        """
        check_flag("check", check)
        if seconds is not None and (
            isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds < 7258118400
        ):
            raise InvalidSpec("seconds", f"must be seconds since 1970 (before 2200), got {shown(seconds)}")
        self._ready()
        at = time.time() if seconds is None else float(seconds)
        if not check:
            self._dom.agent().set_time(at)
        return at

    def sync_clock(self, *, wait: float = 5.0) -> float | None:
        """Set the guest's clock to this machine's when the VM has an agent and its time-sync service is on, as
        after a restore, a revert or a migration (the guest's clock stood still, or is the snapshot's); waits up to
        ``wait`` seconds for the agent to answer. Returns the time set, or ``None`` when the service is off or the
        agent did not answer (the guest keeps its clock, as on Hyper-V without Time Synchronization).
        """
        spec = self._dom.spec()
        if not (spec.guest_agent and AgentService.TIME_SYNC in spec.agent_services):
            return None
        deadline = time.monotonic() + wait
        while True:
            if self.ping(1):
                try:
                    return self.set_time()
                except GuestAgentUnavailable:
                    pass  # it went away between the ping and the call: try again
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.5)

    def copy_file(
        self,
        source: str,
        destination: str,
        *,
        create_full_path: bool = False,
        overwrite: bool = False,
        progress: Callable[[float], None] | None = None,
        check: bool = False,
    ) -> int:
        """Copy the host file ``source`` (inside the storage roots) to ``destination`` in the guest (an absolute
        path), as Copy-VMFile does; returns the bytes copied. ``create_full_path`` makes the missing directories
        (through the agent's guest-exec); ``overwrite`` replaces a file there. ``progress`` gets the percentage.

        :raises InvalidSpec: ``source`` outside the roots or no regular file; ``destination`` no absolute path.
        :raises AlreadyExists: ``destination`` exists in the guest and ``overwrite`` is false.
        :raises GuestAgentUnavailable: as :meth:`info`.
        """
        for field, value in (("create_full_path", create_full_path), ("overwrite", overwrite), ("check", check)):
            check_flag(field, value)
        check_callbacks(progress=progress)
        entry = self._storage.roots.existing("source", source)
        target = _guest_path(destination)
        self._ready()
        agent = self._dom.agent()
        if not overwrite and _exists(agent, target):
            raise AlreadyExists(f"destination: {target} exists in the guest; pass overwrite=True to replace it")
        size = entry.size
        if check:
            return size
        if create_full_path:
            _run(agent, ["/bin/mkdir", "-p", str(target.parent)], "create the directory of destination")
        handle = agent.command("guest-file-open", {"path": str(target), "mode": "w"}, _COMMAND_TIMEOUT)
        copied = 0
        try:
            while copied < size:
                data = self._storage.files.read(entry.real, offset=copied, size=min(_CHUNK, size - copied))
                if not data:
                    break  # the file shrank meanwhile: what was there is copied
                buf = base64.b64encode(data).decode()
                agent.command("guest-file-write", {"handle": handle, "buf-b64": buf}, _COMMAND_TIMEOUT)
                copied += len(data)
                if progress is not None:
                    progress(100.0 * copied / size)
        finally:
            agent.command("guest-file-close", {"handle": handle}, _COMMAND_TIMEOUT)
        if progress is not None and size == 0:
            progress(100.0)
        return copied

    def _ready(self) -> None:
        info = self._dom.info()
        if info.state is not VMState.RUNNING:
            raise GuestAgentUnavailable(f"{info.name} is {info.state.value}: its guest agent runs only while it runs")
        if not self._dom.spec().guest_agent:
            raise GuestAgentUnavailable(f"{info.name} has no guest agent channel; define it with guest_agent: true")


def _seconds(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= 300:
        raise InvalidSpec(field, f"must be a number of seconds from 1 to 300, got {shown(value)}")
    return int(value)


def _guest_path(value: object) -> PurePosixPath:
    if not isinstance(value, str) or not value.startswith("/") or len(value) > _MAX_GUEST_PATH:
        raise InvalidSpec("destination", f"must be an absolute path in the guest, got {shown(value)}")
    if any(ord(c) < 32 or ord(c) == 127 for c in value) or value.endswith("/"):
        raise InvalidSpec("destination", "must name a file: no control characters, no trailing '/'")
    path = PurePosixPath(value)
    if ".." in path.parts:
        raise InvalidSpec("destination", "must not contain '..'")
    return path


def _exists(agent: GuestAgentBackend, path: PurePosixPath) -> bool:
    try:
        handle = agent.command("guest-file-open", {"path": str(path), "mode": "r"}, _COMMAND_TIMEOUT)
    except GuestAgentUnavailable:
        raise
    except VirtkitError:
        return False  # the agent could not open it: not there (or unreadable, which a write will report)
    agent.command("guest-file-close", {"handle": handle}, _COMMAND_TIMEOUT)
    return True


def _run(agent: GuestAgentBackend, argv: list[str], what: str) -> None:
    """Run ``argv`` in the guest through guest-exec and wait for it to exit 0."""
    args = {"path": argv[0], "arg": argv[1:], "capture-output": True}
    started = agent.command("guest-exec", args, _COMMAND_TIMEOUT)
    deadline = time.monotonic() + _COMMAND_TIMEOUT
    while time.monotonic() < deadline:
        status = agent.command("guest-exec-status", {"pid": started["pid"]}, _COMMAND_TIMEOUT)
        if status.get("exited"):
            if status.get("exitcode", 1) != 0:
                err = base64.b64decode(status.get("err-data", "")).decode(errors="replace").strip()[:300]
                raise VirtkitError(f"{what}: {' '.join(argv)} exited with {status.get('exitcode')}: {err}")
            return
        time.sleep(0.1)
    raise VirtkitError(f"{what}: {' '.join(argv)} did not exit within {_COMMAND_TIMEOUT} s")
