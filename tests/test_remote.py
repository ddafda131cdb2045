"""SSH without a lab: command quoting (proven by a real shell), SSHConfig checks, and host-key checking against an
in-process paramiko server on 127.0.0.1 (unknown host, mismatching key, matching key). The real sshd of the lab
hosts is exercised in integration/test_remote.py.
"""

from __future__ import annotations

import shlex
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from virtkit import HostKeyRejected, HostUnavailable, InvalidSpec
from virtkit.remote.config import SSHConfig, remote_command
from virtkit.remote.ssh import SSHFiles

HOSTILE = ["$(touch /tmp/virtkit-pwned)", "a b", "; echo second", "'quoted'", '"dq"', "*", "~", "\\", "-n", ""]


def test_remote_command_quotes_every_argument() -> None:
    line = remote_command(["printf", "%s\\n", *HOSTILE], 12.5)
    assert shlex.split(line) == ["env", "LC_ALL=C", "timeout", "--kill-after=5", "12.500", "printf", "%s\\n", *HOSTILE]


def test_a_real_shell_sees_each_argument_as_one_literal_word(tmp_path: Path) -> None:
    # What sshd does with the line: hand it to the user's shell. Here: sh -c, in an empty directory (for '*').
    marker = Path("/tmp/virtkit-pwned")
    marker.unlink(missing_ok=True)
    line = remote_command(["printf", "<%s>\\n", *HOSTILE], 10)
    done = subprocess.run(["sh", "-c", line], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == [f"<{a}>" for a in HOSTILE]
    assert not marker.exists()


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ("qemu-img info /x", "args"),
        (b"ls", "args"),
        ([], "args"),
        (["ls", 3], "args"),
        (["ls", "a\0b"], "args"),
    ],
)
def test_remote_command_refuses_shell_strings_and_junk(args: object, field: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        remote_command(args, 10)  # type: ignore[arg-type]
    assert err.value.field == field


@pytest.mark.parametrize("timeout", [0, -1, 1e9, True])
def test_remote_command_refuses_bad_timeouts(timeout: float) -> None:
    with pytest.raises(InvalidSpec, match="timeout"):
        remote_command(["true"], timeout)


def test_ssh_config_checks_its_fields() -> None:
    ok = SSHConfig(host="127.0.0.2", port=2222, key_file=Path("/k"), known_hosts="/kh")  # type: ignore[arg-type]
    assert ok.known_hosts == Path("/kh") and ok.target == "root@127.0.0.2:2222"
    for kwargs, field in [
        ({"host": "-oProxyCommand=x"}, "host"),
        ({"host": "a b"}, "host"),
        ({"port": 0}, "port"),
        ({"port": True}, "port"),
        ({"user": "Root;x"}, "user"),
        ({"key_file": "relative"}, "key_file"),
        ({"known_hosts": "/a/../b"}, "known_hosts"),
        ({"connect_timeout": 0}, "connect_timeout"),
    ]:
        base: dict[str, object] = {"host": "h", "key_file": "/k", "known_hosts": "/kh", **kwargs}
        with pytest.raises(InvalidSpec) as err:
            SSHConfig(**base)  # type: ignore[arg-type]
        assert err.value.field == field


# --- host keys, against a real SSH server in this process ----------------------------------------------------------


class _DenyAll(paramiko.ServerInterface):
    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return paramiko.AUTH_FAILED


@pytest.fixture
def server() -> Iterator[tuple[int, paramiko.PKey]]:
    """An SSH server on 127.0.0.1 with its own host key; it refuses every login."""
    key = paramiko.ECDSAKey.generate()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    transports: list[paramiko.Transport] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            transport = paramiko.Transport(conn)
            transport.add_server_key(key)
            transports.append(transport)
            try:
                transport.start_server(server=_DenyAll())
            except (paramiko.SSHException, EOFError, OSError):  # the client hung up after refusing the key
                transport.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], key
    listener.close()
    for transport in transports:
        transport.close()


def _client(tmp_path: Path, port: int, known: str) -> SSHConfig:
    key_file = tmp_path / "id_ecdsa"
    paramiko.ECDSAKey.generate().write_private_key_file(str(key_file))
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(known)
    return SSHConfig(host="127.0.0.1", port=port, key_file=key_file, known_hosts=known_hosts, connect_timeout=5)


def _line(port: int, key: paramiko.PKey) -> str:
    return f"[127.0.0.1]:{port} {key.get_name()} {key.get_base64()}\n"


def test_an_unknown_host_is_refused_and_never_added(tmp_path: Path, server: tuple[int, paramiko.PKey]) -> None:
    port, key = server
    config = _client(tmp_path, port, f"[127.0.0.1]:{port + 1} {key.get_name()} {key.get_base64()}\n")
    before = config.known_hosts.read_text()
    with pytest.raises(HostKeyRejected, match="unknown host key") as err:
        SSHFiles(config)
    assert key.fingerprint in str(err.value)
    assert config.known_hosts.read_text() == before


def test_a_changed_host_key_is_refused_as_a_mismatch(tmp_path: Path, server: tuple[int, paramiko.PKey]) -> None:
    port, key = server
    other = paramiko.ECDSAKey.generate()
    config = _client(tmp_path, port, _line(port, other))
    with pytest.raises(HostKeyRejected, match="host key mismatch") as err:
        SSHFiles(config)
    assert key.fingerprint in str(err.value) and other.fingerprint in str(err.value)


def test_the_recorded_key_passes_and_then_authentication_decides(
    tmp_path: Path, server: tuple[int, paramiko.PKey]
) -> None:
    port, key = server
    config = _client(tmp_path, port, _line(port, key))
    with pytest.raises(HostUnavailable, match="refused the key") as err:
        SSHFiles(config)
    assert not isinstance(err.value, HostKeyRejected)


def test_nothing_listening_and_missing_files(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    config = _client(tmp_path, free, "")
    with pytest.raises(HostUnavailable, match="cannot connect"):
        SSHFiles(config)
    for key_file, known_hosts, field in [
        (config.key_file, tmp_path / "nope", "known_hosts"),
        (tmp_path / "nope", config.known_hosts, "key_file"),
        (config.known_hosts, config.known_hosts, "key_file"),  # not a key
    ]:
        missing = SSHConfig(host="127.0.0.1", port=free, key_file=key_file, known_hosts=known_hosts)
        with pytest.raises(InvalidSpec) as err:
            SSHFiles(missing)
        assert err.value.field == field
