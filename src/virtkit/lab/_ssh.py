"""An SSH server per lab host, on that host's loopback address only, so SSH code is tested against a real sshd.

Each lab host's ``sshd`` runs inside the host's own mount and UTS namespaces (entered with ``nsenter`` through its
libvirtd): a command run over SSH sees the host's hostname and its private ``/var/lib/libvirt``, exactly like a
command run on a separate machine would. It listens on ``<host address>:2222`` (``127.0.0.2:2222`` for host 1) and
nowhere else, accepts only root with the lab's client key, and keeps its own host key under the host's state
directory, so the key is stable across ``down``/``up``. The lab's client key and a known_hosts file naming every
lab host's key live in ``<lab root>/ssh``; a client checks host keys against that file and trusts nothing else.

:func:`virtkit.lab.daemons.ssh_config` starts a host's sshd when needed and returns how to reach it;
:func:`virtkit.lab.daemons.down` stops it with the rest of the host.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections.abc import Iterable
from pathlib import Path

from virtkit.errors import LabError
from virtkit.lab import _procs
from virtkit.lab.paths import lab_root

__all__ = [
    "PORT",
    "client_key",
    "host_key",
    "host_public_key",
    "known_hosts_file",
    "known_hosts_line",
    "running_pid",
    "sshd_config",
    "start",
    "stop",
    "write_known_hosts",
]

#: The port of every lab host's sshd; each listens on its own loopback address.
PORT = 2222

_PRIVSEP_DIR = Path("/run/sshd")  # sshd refuses to start without it (Debian's compiled-in privilege separation dir)


def ensure_privsep_dir() -> None:
    """Create sshd's privilege separation directory, which exists only once some sshd has run."""
    _PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    if stat.S_IMODE(_PRIVSEP_DIR.stat().st_mode) & 0o022:
        raise LabError(f"{_PRIVSEP_DIR} is writable by others: sshd refuses to use it")


def _client_dir() -> Path:
    return lab_root() / "ssh"


def client_key() -> Path:
    """The lab's client private key (ed25519, no passphrase); its public half is authorized on every lab host."""
    return _client_dir() / "id_ed25519"


def known_hosts_file() -> Path:
    """The known_hosts file with the host key of every lab host that has one."""
    return _client_dir() / "known_hosts"


def host_key(root: Path) -> Path:
    """The private host key of the lab host whose state directory is ``root``."""
    return root / "ssh" / "ssh_host_ed25519_key"


def host_public_key(root: Path) -> str | None:
    """The public host key of the lab host whose state directory is ``root``, or ``None`` before its first start."""
    try:
        return host_key(root).with_name(host_key(root).name + ".pub").read_text().strip()
    except OSError:
        return None


def _pidfile(root: Path) -> Path:
    return root / "pids" / "sshd.pid"


def sshd_config(*, address: str, port: int, root: Path) -> str:
    """The ``sshd_config`` of one lab host: loopback address only, root with a key only, no forwarding of any kind.

    ``UsePAM no`` because the lab logs in with a key and needs no session set-up; ``StrictModes`` stays on, so the
    key files must be private to root.
    """
    lines = [
        "# virtkit lab: generated, rewritten at every start",
        "AddressFamily inet",
        f"ListenAddress {address}:{port}",
        f"HostKey {host_key(root)}",
        f"PidFile {_pidfile(root)}",
        f"AuthorizedKeysFile {root / 'ssh' / 'authorized_keys'}",
        "PermitRootLogin prohibit-password",
        "AllowUsers root",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes yes",
        "PermitUserEnvironment no",
        "AllowAgentForwarding no",
        "AllowTcpForwarding no",
        "AllowStreamLocalForwarding no",
        "X11Forwarding no",
        "PermitTunnel no",
        "PrintMotd no",
        "UseDNS no",
        "LogLevel INFO",
        "Subsystem sftp internal-sftp",
    ]
    return "\n".join(lines) + "\n"


def known_hosts_line(address: str, port: int, public_key: str) -> str:
    """One known_hosts line: ``[127.0.0.2]:2222 ssh-ed25519 AAAA...`` (OpenSSH writes a non-22 port so).

    :raises LabError: ``public_key`` is not one ``type base64 [comment]`` line.
    """
    fields = public_key.split()
    if len(fields) < 2 or "\n" in public_key.strip() or not fields[0].startswith(("ssh-", "ecdsa-")):
        raise LabError(f"not an OpenSSH public key: {public_key[:60]!r}")
    name = address if port == 22 else f"[{address}]:{port}"
    return f"{name} {fields[0]} {fields[1]}"


def _tool(name: str) -> str:
    path = shutil.which(name, path=_procs.SBIN_PATH)
    if path is None:
        package = {"sshd": "openssh-server", "ssh-keygen": "openssh-client", "nsenter": "util-linux"}[name]
        raise LabError(f"{name} not found: install the Debian package {package} (scripts/setup-host does)")
    return path


def _keypair(path: Path, comment: str) -> str:
    """Make an ed25519 key pair at ``path`` (and ``path.pub``) unless both exist; return the public key text."""
    public = path.with_name(path.name + ".pub")
    if not (path.is_file() and public.is_file()):
        path.unlink(missing_ok=True)
        public.unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        argv = [_tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)]
        rc, output = _procs.run(argv, timeout=60)
        if rc != 0:
            raise LabError(f"ssh-keygen for {path} failed (status {rc}): {output}")
    return public.read_text().strip()


def write_known_hosts(entries: Iterable[tuple[str, int, str]]) -> Path:
    """Write the lab's known_hosts from ``(address, port, public key)`` entries, atomically; return its path."""
    path = known_hosts_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(known_hosts_line(a, p, k) + "\n" for a, p, k in entries)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def running_pid(root: Path, address: str, port: int, *, namespace_of: int) -> int | None:
    """The PID of the host's sshd if it is alive, listens, and runs in the mount namespace of ``namespace_of``."""
    pid = _procs.read_pidfile(_pidfile(root), "sshd")
    if pid is None or not _procs.listening(address, port):
        return None
    try:
        same = os.readlink(f"/proc/{pid}/ns/mnt") == os.readlink(f"/proc/{namespace_of}/ns/mnt")
    except OSError:
        return None
    return pid if same else None


def start(name: str, address: str, root: Path, *, libvirtd_pid: int, timeout: float = 30.0) -> str:
    """Start the sshd of lab host ``name`` in the namespaces of its libvirtd (it is not running); return the host's
    public key. Keys are made on first use: the host key under ``root``, the lab's client key once for all hosts.

    :raises LabError: a tool is missing, a key could not be made, or sshd did not listen within ``timeout``;
        names the host and the tail of its sshd log.
    """
    sshd, nsenter = _tool("sshd"), _tool("nsenter")
    stop(root)
    public = _keypair(host_key(root), f"virtkit-lab {name}")
    client = _keypair(client_key(), "virtkit-lab client")
    ssh_dir = root / "ssh"
    authorized = ssh_dir / "authorized_keys"
    authorized.write_text(f"restrict {client}\n")
    authorized.chmod(0o600)
    config = ssh_dir / "sshd_config"
    config.write_text(sshd_config(address=address, port=PORT, root=root))
    (root / "pids").mkdir(parents=True, exist_ok=True)
    ensure_privsep_dir()
    log = root / "log" / "sshd.log"
    argv = [nsenter, "--target", str(libvirtd_pid), "--mount", "--uts", "--", sshd, "-f", str(config), "-E", str(log)]
    rc, output = _procs.run(argv, env=_procs.daemon_env(), timeout=timeout)
    deadline = time.monotonic() + timeout
    while rc == 0 and running_pid(root, address, PORT, namespace_of=libvirtd_pid) is None:
        if time.monotonic() > deadline:
            rc, output = -1, f"sshd does not listen on {address}:{PORT}"
            break
        time.sleep(0.02)
    if rc != 0:
        stop(root)
        raise LabError(f"lab {name}: starting sshd failed ({output}); last lines of {log}:\n{_procs.tail(log)}")
    return public


def stop(root: Path) -> list[int]:
    """Stop the sshd listening for the lab host whose state directory is ``root`` and remove its pidfile.

    Sessions still open end with the host's namespace (``down`` stops every process in it).

    :returns: PIDs that survived SIGKILL; normally empty.
    """
    pid = _procs.read_pidfile(_pidfile(root), "sshd")
    left = _procs.stop([pid]) if pid is not None else []
    _pidfile(root).unlink(missing_ok=True)
    return left
