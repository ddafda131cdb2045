"""Processes of the lab: pidfiles and liveness from ``/proc``, stopping, who holds a host's mounts, running a
program without a shell, and a timeout around a blocking call.

PID 1 on the lab machines does not reap orphans, so a daemon that stopped may stay as a ``<defunct>`` entry:
everywhere here a zombie counts as stopped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from virtkit.errors import LabError

__all__ = [
    "SBIN_PATH",
    "alive",
    "call_with_timeout",
    "comm",
    "daemon_env",
    "find_tools",
    "fs_location",
    "holds",
    "listening",
    "mount_holders",
    "read_pidfile",
    "run",
    "stop",
    "tail",
]

#: Where the daemons and util-linux tools live, whatever PATH the caller has.
SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

T = TypeVar("T")


def _status_state(pid: int) -> str | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("State:"):
            return line.split()[1]
    return None


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (``State: Z``) or dead (``X``)."""
    state = _status_state(pid)
    return state is not None and state not in ("Z", "X")


def comm(pid: int) -> str:
    """The command name of ``pid`` (``/proc/<pid>/comm``), or ``""`` when it is gone."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def read_pidfile(path: Path, expect_comm: str | None = None) -> int | None:
    """The live process named in ``path``, or ``None``.

    ``None`` when the file is missing or garbled, the process is gone or a zombie, or (with ``expect_comm``) the
    PID now belongs to another program, which happens after a reboot when ``/run`` was not cleared.
    """
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    if pid <= 1 or not alive(pid):
        return None
    if expect_comm is not None and not comm(pid).startswith(expect_comm):
        return None
    return pid


def stop(pids: Iterable[int], *, timeout: float = 10.0) -> list[int]:
    """Send SIGTERM to ``pids``, wait up to ``timeout`` seconds, then SIGKILL what remains.

    :returns: the PIDs still alive (not zombies) after SIGKILL and a short grace period; normally empty.
    """
    todo = [pid for pid in pids if alive(pid)]
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        for pid in todo:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while todo and time.monotonic() < deadline:
            todo = [pid for pid in todo if alive(pid)]
            if todo:
                time.sleep(0.05)
        if not todo:
            break
    return todo


def _unescape(field: str) -> str:
    # /proc/<pid>/mountinfo writes space, tab, newline and backslash as octal escapes (\040 ...).
    out: list[str] = []
    i = 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit() and len(field[i + 1 : i + 4]) == 3:
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _mounts(mountinfo: str) -> list[tuple[str, str, str]]:
    """``(device, root inside the file system, mount point)`` of each line of a mountinfo text."""
    rows: list[tuple[str, str, str]] = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) >= 5:
            rows.append((fields[2], _unescape(fields[3]), _unescape(fields[4])))
    return rows


def fs_location(path: Path, mountinfo: str) -> tuple[str, str] | None:
    """``(device, path inside its file system)`` of ``path`` (absolute, resolved), given our own mountinfo.

    The bind mounts of a lab host show their source that way in ``/proc/<pid>/mountinfo``.
    """
    best: tuple[str, str, str] | None = None
    text = str(path)
    for device, root, point in _mounts(mountinfo):
        inside = text == point or text.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best[2])):
            best = (device, root, point)
    if best is None:
        return None
    device, root, point = best
    rest = text[len(point.rstrip("/")) :]
    return device, (root.rstrip("/") + rest) or "/"


def holds(mountinfo: str, location: tuple[str, str]) -> bool:
    """Whether a mountinfo text has a mount of ``location`` (see :func:`fs_location`) or of something below it."""
    device, inner = location
    prefix = inner.rstrip("/") + "/"
    return any(dev == device and (root == inner or root.startswith(prefix)) for dev, root, _ in _mounts(mountinfo))


def mount_holders(directory: Path) -> list[int]:
    """Live processes whose mount table has a bind mount of ``directory`` or of anything below it.

    Those are exactly the processes of a lab host: its daemons and its QEMUs, in the host's namespace and in the
    per-VM namespaces libvirt makes from it. Our own mount table is the reference (the lab root is not a mount
    point there, so it never matches itself).
    """
    location = fs_location(directory.resolve(), Path("/proc/self/mountinfo").read_text())
    if location is None:
        return []
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "mountinfo").read_text()
        except OSError:
            continue
        if holds(text, location) and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def listening(address: str, port: int, *, tcp_table: str | None = None) -> bool:
    """Whether an IPv4 TCP socket listens on ``address:port``, read from ``/proc/net/tcp``.

    Reading the table instead of connecting keeps a daemon that is still starting from logging a dropped client.
    ``tcp_table`` replaces the file's text (for tests).
    """
    if tcp_table is None:
        try:
            tcp_table = Path("/proc/net/tcp").read_text()
        except OSError:
            return False
    # /proc/net/tcp writes the address as the hex of its 32-bit value in host order (little-endian here).
    packed = socket.inet_aton(address)
    wanted = f"{int.from_bytes(packed, sys.byteorder):08X}:{port:04X}"
    for line in tcp_table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[1].upper() == wanted and fields[3] == "0A":  # 0A: TCP_LISTEN
            return True
    return False


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file, or a note that it cannot be read."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 16384))
            text = fh.read().decode(errors="replace")
    except OSError as exc:
        return f"({path}: {exc.strerror})"
    return "\n".join(text.splitlines()[-lines:])


def run(argv: list[str], *, env: dict[str, str] | None = None, timeout: float = 120.0) -> tuple[int, str]:
    """Run ``argv`` (an argument list, no shell) and return its exit status and its output.

    The output goes to an unnamed file, not a pipe: a daemon that forks into the background would inherit a pipe
    and keep the caller waiting for its end. A timeout gives status ``-1``.
    """
    with tempfile.TemporaryFile() as out:
        try:
            rc = subprocess.run(
                argv, check=False, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env, timeout=timeout
            ).returncode
        except subprocess.TimeoutExpired:
            rc = -1
        out.seek(0)
        return rc, out.read().decode(errors="replace").strip()


def find_tools(*names: str) -> dict[str, str]:
    """Absolute paths of the programs ``names``, looked up in the system's sbin and bin directories.

    :raises LabError: a program is missing; the message names the Debian package that has it.
    """
    found: dict[str, str] = {}
    for name in names:
        path = shutil.which(name, path=SBIN_PATH)
        if path is None:
            package = "util-linux" if name == "unshare" else "libvirt-daemon-system"
            raise LabError(f"{name} not found: install the Debian package {package}")
        found[name] = path
    return found


def daemon_env() -> dict[str, str]:
    """Our environment for a daemon: without ``LIBVIRT_*``/``VIR_*`` overrides, with the sbin directories on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIBVIRT_", "VIR_"))}
    env["PATH"] = SBIN_PATH
    return env


def call_with_timeout(fn: Callable[[], T], timeout: float, what: str) -> T:
    """Run ``fn`` in a daemon thread; a libvirt call that hangs must not hang the caller.

    :raises LabError: ``fn`` did not return within ``timeout`` seconds; ``fn``'s own exception is re-raised.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # handed over to the caller's thread
            error.append(exc)

    thread = threading.Thread(target=target, name=f"virtkit-lab {what}", daemon=True)
    thread.start()
    thread.join(max(timeout, 0.0))
    if thread.is_alive():
        raise LabError(f"{what}: no answer within {timeout:.0f} s")
    if error:
        raise error[0]
    return result[0]
