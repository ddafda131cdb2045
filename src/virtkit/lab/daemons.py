"""The local multi-host lab: real libvirt daemons on one machine, one set per lab host.

Each lab host is a ``libvirtd -d -l`` with its own ``virtlogd`` and ``virtlockd``, in a private mount + UTS
namespace (``unshare --mount --uts --propagation private``) where the host's own copies of ``/etc/libvirt``,
``/run/libvirt``, ``/var/lib/libvirt``, ``/var/log/libvirt`` and ``/var/cache/libvirt`` (under
:func:`virtkit.lab.paths.hosts_dir`) are bind-mounted over the standard paths. Host ``N`` is called ``hostN``,
listens on ``127.0.0.(N+1)`` and is reached at ``qemu+tcp://127.0.0.(N+1):16509/system``; traffic never leaves
loopback. Every host sees :func:`virtkit.lab.paths.shared_dir` at the same path: the lab's cluster shared volume,
where virtlockd keeps its leases so one disk cannot run in two VMs. See ``docs/platform.md`` for the measurements.

No systemd is needed, nor used. Typical use::

    from virtkit.lab import daemons

    host1, host2 = daemons.up(2)     # about 1-2 s; the very first start of a host also probes QEMU (about 11 s)
    ...                              # connect to host1.uri and host2.uri
    daemons.down()                   # no domain, daemon, QEMU or mount of the lab is left

Each host keeps its state directory between ``down`` and ``up``: its host UUID and QEMU capability cache
survive, so a later ``up`` is fast.

A host is reached over SSH too, for what must run on the host itself: :func:`ssh_config` starts its sshd (in the
host's namespaces, on ``<host address>:2222`` only; see :mod:`virtkit.lab._ssh`) and returns the client key and
known_hosts file to use. ``down`` stops it with the rest of the host.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import libvirt  # noqa: TID251  (the lab drives its own daemons directly)

from virtkit.errors import InvalidSpec, LabError
from virtkit.lab import _config, _procs, _ssh
from virtkit.lab.paths import hosts_dir, shared_dir
from virtkit.remote.config import SSHConfig

__all__ = [
    "DAEMONS",
    "HostStatus",
    "LabHost",
    "down",
    "ensure_system_daemons",
    "hosts",
    "ssh_config",
    "status",
    "stop",
    "up",
]

#: The daemons of one lab host, in start order (libvirtd needs the other two's sockets).
DAEMONS = ("virtlogd", "virtlockd", "libvirtd")

# A host's state directory -> the standard path it is bind-mounted over inside the host's namespace.
_BINDS = {
    "etc": "/etc/libvirt",
    "run": "/run/libvirt",
    "lib": "/var/lib/libvirt",
    "log": "/var/log/libvirt",
    "cache": "/var/cache/libvirt",
}
_CONF_FILES = ("libvirtd.conf", "qemu.conf", "qemu-lockd.conf", "virtlogd.conf", "virtlockd.conf")
_SYSTEM_SOCKET = Path("/run/libvirt/libvirt-sock")
_SYSTEM_URI = "qemu:///system"

# Undefine a domain with everything libvirt keeps beside its definition.
_log = logging.getLogger(__name__)

_UNDEFINE_ALL = (
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
)


@dataclass(frozen=True)
class LabHost:
    """One lab host: where its libvirtd listens and where its state lives."""

    name: str  #: ``host1``, ``host2``, ...
    index: int  #: 1-based
    address: str  #: its loopback address, ``127.0.0.2`` for host 1 (never ``127.0.0.1``)
    port: int  #: libvirtd's TCP port
    uri: str  #: ``qemu+tcp://127.0.0.2:16509/system``
    root: Path  #: its state directory, ``hosts_dir()/host1``
    host_uuid: str  #: libvirt's ``host_uuid``, distinct per host and stable across down/up


@dataclass(frozen=True)
class HostStatus:
    """What :func:`status` found for one configured host."""

    host: LabHost
    running: bool  #: all three daemons are alive (zombies count as stopped)
    pids: dict[str, int] = field(default_factory=dict)  #: live daemons by name
    domains: int | None = None  #: domains defined or running; ``None`` when the host did not answer


# --- state on disk ---------------------------------------------------------------------------------------------


def _pidfile(host: LabHost, daemon: str) -> Path:
    return host.root / "pids" / f"{daemon}.pid"


def _logfile(host: LabHost, daemon: str = "libvirtd") -> Path:
    return host.root / "log" / f"{daemon}.log"


def _host_from_disk(root: Path) -> LabHost | None:
    try:
        data = json.loads((root / "host.json").read_text())
        index = int(data["index"])
        host_uuid = str(uuid.UUID(str(data["host_uuid"])))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return _lab_host(index, host_uuid)


def _lab_host(index: int, host_uuid: str) -> LabHost:
    address = _config.host_address(index)
    name = _config.host_name(index)
    return LabHost(
        name=name,
        index=index,
        address=address,
        port=_config.BASE_PORT,
        uri=_config.host_uri(address, _config.BASE_PORT),
        root=hosts_dir() / name,
        host_uuid=host_uuid,
    )


def _configured(index: int) -> LabHost:
    """Host ``index`` as stored on disk, or a new one (with a new host UUID) saved there."""
    root = hosts_dir() / _config.host_name(index)
    host = _host_from_disk(root)
    if host is None:
        host = _lab_host(index, str(uuid.uuid4()))
        root.mkdir(parents=True, exist_ok=True)
        data = {"name": host.name, "index": index, "address": host.address, "host_uuid": host.host_uuid}
        (root / "host.json").write_text(json.dumps(data, indent=2) + "\n")
    return host


def hosts() -> list[LabHost]:
    """The lab hosts configured on disk (running or not), in index order."""
    found: list[LabHost] = []
    if hosts_dir().is_dir():
        for root in hosts_dir().iterdir():
            host = _host_from_disk(root)
            if host is not None and host.root == root:
                found.append(host)
    return sorted(found, key=lambda h: h.index)


def _security_none() -> bool:
    """True when neither AppArmor nor SELinux is enabled, so libvirt has no security driver to use."""
    try:
        apparmor = Path("/sys/module/apparmor/parameters/enabled").read_text().strip() == "Y"
    except OSError:
        apparmor = False
    return not apparmor and not Path("/sys/fs/selinux/enforce").exists()


def _write_config(host: LabHost, tools: dict[str, str]) -> Path:
    """Write the host's libvirt configuration and its namespace set-up; return the set-up file.

    The ``*.conf`` files are rewritten from the package's defaults in ``/etc/libvirt`` on every start, so the
    lab follows this code. Only those files and ``nwfilter`` are copied: no host-wide domain, network, hook or
    autostart link gets into a lab host.
    """
    for sub in (*_BINDS, "pids"):
        (host.root / sub).mkdir(parents=True, exist_ok=True)
    shutil.rmtree(host.root / "run")
    (host.root / "run").mkdir()
    lockspace = shared_dir() / "lockspace"
    lockspace.mkdir(parents=True, exist_ok=True)
    etc = host.root / "etc"
    nwfilter = Path("/etc/libvirt/nwfilter")
    if nwfilter.is_dir() and not (etc / "nwfilter").exists():
        shutil.copytree(nwfilter, etc / "nwfilter")
    settings: dict[str, dict[str, _config.ConfValue]] = {
        "libvirtd.conf": _config.libvirtd_settings(address=host.address, port=host.port, host_uuid=host.host_uuid),
        "qemu.conf": _config.qemu_settings(address=host.address, security_none=_security_none()),
        "qemu-lockd.conf": _config.lockd_settings(lockspace=lockspace),
        "virtlogd.conf": _config.log_settings("virtlogd"),
        "virtlockd.conf": _config.log_settings("virtlockd"),
    }
    for conf in _CONF_FILES:
        try:
            default = (Path("/etc/libvirt") / conf).read_text()
        except OSError as exc:
            raise LabError(
                f"cannot read the default /etc/libvirt/{conf} (is libvirt-daemon-system installed?)"
            ) from exc
        (etc / conf).write_text(_config.set_values(default, settings[conf]))
    nsinit = {
        "hostname": f"virtkit-{host.name}",
        "outer": {kind: os.readlink(f"/proc/self/ns/{kind}") for kind in ("mnt", "uts")},
        "binds": [[str(host.root / sub), target] for sub, target in _BINDS.items()],
        "daemons": [
            [tools["virtlogd"], "-d", "-p", str(_pidfile(host, "virtlogd"))],
            [tools["virtlockd"], "-d", "-p", str(_pidfile(host, "virtlockd"))],
            [tools["libvirtd"], "-d", "-l", "-p", str(_pidfile(host, "libvirtd"))],
        ],
    }
    path = host.root / "nsinit.json"
    path.write_text(json.dumps(nsinit, indent=2) + "\n")
    return path


# --- processes and connections ---------------------------------------------------------------------------------


def _daemon_pids(host: LabHost) -> dict[str, int]:
    pids = {d: _procs.read_pidfile(_pidfile(host, d), d) for d in DAEMONS}
    return {d: pid for d, pid in pids.items() if pid is not None}


def _probe(uri: str, *, capabilities: bool = True) -> None:
    """Open ``uri`` and close it again; with ``capabilities``, read them in between.

    The first capabilities call after a daemon start waits for libvirt's QEMU probe (about 11 s); doing it here
    means the first real call of a test or user does not.
    """
    conn = libvirt.open(uri)
    try:
        if capabilities:
            conn.getCapabilities()
        else:
            conn.getLibVersion()
    finally:
        conn.close()


def _wait_host(host: LabHost, deadline: float) -> None:
    """Wait until ``host`` answers a libvirt call.

    :raises LabError: libvirtd died, or did not answer before ``deadline``; names the host and its log tail.
    """
    while not _procs.listening(host.address, host.port):
        if "libvirtd" not in _daemon_pids(host):
            raise _host_error(host, "libvirtd is not running")
        if time.monotonic() > deadline:
            raise _host_error(host, f"libvirtd does not listen on {host.address}:{host.port}")
        time.sleep(0.05)
    try:
        _procs.call_with_timeout(lambda: _probe(host.uri), deadline - time.monotonic(), f"{host.name} ({host.uri})")
    except (LabError, libvirt.libvirtError) as exc:
        raise _host_error(host, f"{host.uri} does not answer: {exc}") from exc


def _host_error(host: LabHost, what: str) -> LabError:
    return LabError(f"lab {host.name}: {what}; last lines of {_logfile(host)}:\n{_procs.tail(_logfile(host))}")


def _healthy(host: LabHost, timeout: float) -> bool:
    if set(_daemon_pids(host)) != set(DAEMONS):
        return False
    try:
        _wait_host(host, time.monotonic() + timeout)
    except LabError:
        return False
    return True


def _start(host: LabHost, tools: dict[str, str]) -> None:
    """Start ``host``'s namespace and daemons (it is not running).

    :raises LabError: ``unshare``, a mount or a daemon failed; the host is stopped again before raising.
    """
    config = _write_config(host, tools)
    argv = [tools["unshare"], "--mount", "--uts", "--propagation", "private", "--"]
    argv += [sys.executable, "-m", "virtkit.lab._nsinit", str(config)]
    rc, output = _procs.run(argv, env=_procs.daemon_env())
    if rc != 0:
        _stop_host(host, clear=False)
        raise _host_error(host, f"starting its daemons failed (status {rc}): {output}")


# --- stopping ----------------------------------------------------------------------------------------------------


def _clear_domains(host: LabHost) -> None:
    """Destroy and undefine every domain of ``host`` through its libvirtd."""

    def clear() -> None:
        conn = libvirt.open(host.uri)
        try:
            for dom in conn.listAllDomains():
                try:
                    persistent = dom.isPersistent()  # ask first: a transient domain vanishes when destroyed
                    if dom.isActive():
                        dom.destroy()
                    if persistent:
                        dom.undefineFlags(_UNDEFINE_ALL)
                except libvirt.libvirtError as exc:
                    if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:  # gone meanwhile: what we wanted
                        raise
        finally:
            conn.close()

    _procs.call_with_timeout(clear, 120.0, f"clearing the domains of {host.name}")


def _forget_domains(host: LabHost) -> None:
    """Remove domain definitions and state a stopped host would bring back (after a failed or skipped undefine)."""
    for leftover in (host.root / "etc" / "qemu").glob("*.xml"):
        leftover.unlink()
    for sub in ("etc/qemu/autostart", "lib/qemu/snapshot", "lib/qemu/checkpoint", "lib/qemu/save", "lib/qemu/nvram"):
        path = host.root / sub
        if path.is_dir():
            shutil.rmtree(path)


def _stop_host(host: LabHost, *, clear: bool) -> list[str]:
    """Stop every process of ``host``: libvirtd, its QEMUs, virtlogd, virtlockd, then anything holding its mounts.

    With ``clear``, every domain is first destroyed and undefined through libvirtd, and definitions a stopped
    daemon would bring back are removed; without it, persistent definitions stay (their VMs still stop).

    :returns: what could not be stopped (processes that survive SIGKILL); normally empty.
    """
    problems: list[str] = []
    pids = _daemon_pids(host)
    if clear and "libvirtd" in pids:
        try:
            _clear_domains(host)
        except (LabError, libvirt.libvirtError) as exc:
            # Not fatal: the QEMUs are killed below and the definitions removed from disk.
            _log.warning(
                "lab %s: clearing domains through libvirtd failed (%s); stopping them by force", host.name, exc
            )
    problems += [f"{host.name}: sshd {pid} survives SIGKILL" for pid in _ssh.stop(host.root)]
    if "libvirtd" in pids:
        _procs.stop([pids["libvirtd"]])
    qemus = [_procs.read_pidfile(p, "qemu") for p in (host.root / "run" / "qemu").glob("*.pid")]
    _procs.stop([pid for pid in qemus if pid is not None])
    _procs.stop([pids[d] for d in ("virtlogd", "virtlockd") if d in pids])
    left = _procs.stop(_procs.mount_holders(host.root), timeout=5.0)
    if left:
        problems.append(f"{host.name}: processes {left} survive SIGKILL")
    if clear:
        _forget_domains(host)
    for daemon in DAEMONS:
        _pidfile(host, daemon).unlink(missing_ok=True)
    if (host.root / "run").is_dir():
        shutil.rmtree(host.root / "run")
        (host.root / "run").mkdir()
    return problems


@contextmanager
def _lab_lock() -> Iterator[None]:
    """Serialise ``up`` and ``down`` between processes (two test runs, a test run and the CLI)."""
    hosts_dir().mkdir(parents=True, exist_ok=True)
    with (hosts_dir() / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --- public API --------------------------------------------------------------------------------------------------


def up(count: int = 2, *, timeout: float = 120.0) -> list[LabHost]:
    """Make sure lab hosts ``host1`` .. ``host<count>`` run, and return them in order.

    Idempotent: a host whose daemons are alive and which answers a libvirt call is reused; a missing or broken
    one is (re)started (a broken host's VMs stop then; its persistent definitions stay). Hosts with a higher
    index than ``count`` that already run are left running and are not returned (``down()`` stops them).

    When this returns, every returned host answers on its URI. Starting takes about 1-2 s, plus about 11 s for
    QEMU's capability probe the first time a host ever starts; libvirt caches the probe in the host's state
    directory, which ``down`` keeps. Hosts start one after the other and are waited for together.

    :param count: how many hosts, 1 or more.
    :param timeout: seconds to wait for each host to answer.
    :raises InvalidSpec: ``count`` is out of range.
    :raises LabError: a host could not be started or does not answer; names the host and its libvirtd log tail.
    """
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= _config.MAX_HOSTS:
        raise InvalidSpec("count", f"must be a whole number from 1 to {_config.MAX_HOSTS}")
    tools = _procs.find_tools("unshare", *DAEMONS)
    with _lab_lock():
        return _up(count, timeout, tools)


def _up(count: int, timeout: float, tools: dict[str, str]) -> list[LabHost]:
    lab = [_configured(i) for i in range(1, count + 1)]
    shared_dir().mkdir(parents=True, exist_ok=True)
    started: list[LabHost] = []
    for host in lab:
        if _healthy(host, timeout):
            continue
        _stop_host(host, clear=False)
        _start(host, tools)
        started.append(host)
    deadline = time.monotonic() + timeout
    errors: dict[str, LabError] = {}

    def wait(host: LabHost) -> None:
        try:
            _wait_host(host, deadline)
        except LabError as exc:
            errors[host.name] = exc

    threads = [threading.Thread(target=wait, args=(h,), daemon=True) for h in started]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise LabError("\n".join(str(errors[h.name]) for h in started if h.name in errors))
    return lab


def down() -> None:
    """Stop the whole lab: every domain destroyed and undefined, every daemon and QEMU of every host stopped.

    Afterwards no process of the lab is left (zombies excepted: PID 1 here does not reap orphans), hence no
    namespace and no mount. State directories are kept (host UUIDs, capability caches). Calling it on a stopped
    lab does nothing.

    :raises LabError: a process of the lab survived SIGKILL.
    """
    if not hosts_dir().is_dir():
        return
    problems: list[str] = []
    with _lab_lock():
        for host in hosts():
            problems += _stop_host(host, clear=True)
    if problems:
        raise LabError("lab down: " + "; ".join(problems))


def stop(name: str) -> None:
    """Stop one lab host (``host3``): its domains destroyed and undefined, its processes stopped. Its state
    directory stays, so ``up`` brings it back as the same host; stopping a host that does not run does nothing.

    :raises InvalidSpec: no lab host of that name is configured.
    :raises LabError: a process of the host survived SIGKILL.
    """
    found = [h for h in hosts() if h.name == name]
    if not found:
        raise InvalidSpec("name", f"no lab host named {name!r} (configured: {', '.join(h.name for h in hosts())})")
    with _lab_lock():
        problems = _stop_host(found[0], clear=True)
    if problems:
        raise LabError(f"stopping {name}: " + "; ".join(problems))


def ssh_config(host: LabHost, *, timeout: float = 30.0) -> SSHConfig:
    """How to reach lab host ``host`` over SSH, starting its sshd first when it does not run (about 0.1 s).

    The sshd runs in the host's namespaces and listens on ``<host address>:2222`` only (see
    :mod:`virtkit.lab._ssh`). The config names the lab's client key and its known_hosts file, which lists the key of
    every lab host, so a client checks the host key. :func:`down` stops the sshd with the host.

    :raises LabError: the host is not running (call :func:`up` first), or its sshd could not be started.
    """
    with _lab_lock():
        libvirtd = _daemon_pids(host).get("libvirtd")
        if libvirtd is None:
            raise LabError(f"lab {host.name} is not running: start it with up()")
        if _ssh.running_pid(host.root, host.address, _ssh.PORT, namespace_of=libvirtd) is None:
            _ssh.start(host.name, host.address, host.root, libvirtd_pid=libvirtd, timeout=timeout)
        keys = [(h.address, _ssh.PORT, _ssh.host_public_key(h.root)) for h in hosts()]
        known_hosts = _ssh.write_known_hosts((a, p, k) for a, p, k in keys if k is not None)
    return SSHConfig(host=host.address, port=_ssh.PORT, key_file=_ssh.client_key(), known_hosts=known_hosts)


def status() -> list[HostStatus]:
    """The state of each configured lab host: its live daemons and how many domains it has."""
    result: list[HostStatus] = []
    for host in hosts():
        pids = _daemon_pids(host)
        running = set(pids) == set(DAEMONS)
        domains: int | None = None
        if running:

            def count(uri: str = host.uri) -> int:
                conn = libvirt.open(uri)
                try:
                    return len(conn.listAllDomains())
                finally:
                    conn.close()

            try:
                domains = _procs.call_with_timeout(count, 30.0, f"counting the domains of {host.name}")
            except (LabError, libvirt.libvirtError):
                domains = None
        result.append(HostStatus(host=host, running=running, pids=pids, domains=domains))
    return result


def _socket_answers(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            sock.connect(str(path))
            return True
    except OSError:
        return False


def ensure_system_daemons(*, timeout: float = 120.0) -> None:
    """Make the machine's own libvirt (``qemu:///system``, not part of the lab) answer, starting it if needed.

    When ``/run/libvirt/libvirt-sock`` answers, nothing is done. Otherwise ``virtlogd -d``, ``virtlockd -d`` and
    ``libvirtd -d`` are started (those not already running) and this waits until ``qemu:///system`` answers;
    the first answer after a start takes about 11 s (QEMU capability probe). For machines without systemd.

    :raises LabError: systemd runs this machine (use ``systemctl start libvirtd``), a daemon failed to start, or
        ``qemu:///system`` did not answer within ``timeout`` seconds.
    """
    if _socket_answers(_SYSTEM_SOCKET):
        try:
            # Only a connection: a capabilities call could re-probe QEMU (48 s when /dev/kvm is root-only).
            _procs.call_with_timeout(lambda: _probe(_SYSTEM_URI, capabilities=False), timeout, _SYSTEM_URI)
            return
        except libvirt.libvirtError:
            pass
    if Path("/run/systemd/system").is_dir():
        raise LabError("systemd runs this machine: start libvirt with `systemctl start libvirtd`")
    tools = _procs.find_tools(*DAEMONS)
    for daemon in DAEMONS:
        if _procs.read_pidfile(Path(f"/run/{daemon}.pid"), daemon) is not None:
            continue
        rc, output = _procs.run([tools[daemon], "-d"], env=_procs.daemon_env())
        if rc != 0:
            raise LabError(f"{daemon} -d failed (status {rc}): {output}")
    deadline = time.monotonic() + timeout
    while not _socket_answers(_SYSTEM_SOCKET):
        if time.monotonic() > deadline or _procs.read_pidfile(Path("/run/libvirtd.pid"), "libvirtd") is None:
            raise LabError(f"libvirtd started but {_SYSTEM_SOCKET} does not answer")
        time.sleep(0.05)
    try:
        _procs.call_with_timeout(lambda: _probe(_SYSTEM_URI), deadline - time.monotonic(), _SYSTEM_URI)
    except libvirt.libvirtError as exc:
        raise LabError(f"{_SYSTEM_URI} does not answer: {exc}") from exc
