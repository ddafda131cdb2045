"""The lab's SSH part without a lab: sshd configuration (checked by sshd itself), known_hosts lines that paramiko
reads, and stopping a host's sshd by its pidfile. The running sshd is tested in integration/test_remote.py.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import paramiko
import pytest

from virtkit.errors import LabError
from virtkit.lab import _procs, _ssh, daemons


@pytest.fixture
def lab_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VIRTKIT_LAB_ROOT", str(tmp_path))
    return tmp_path


def test_sshd_config_listens_on_the_host_address_only_and_allows_keys_only(tmp_path: Path) -> None:
    text = _ssh.sshd_config(address="127.0.0.3", port=2222, root=tmp_path / "host2")
    lines = text.splitlines()
    assert [line for line in lines if line.startswith("ListenAddress")] == ["ListenAddress 127.0.0.3:2222"]
    assert "0.0.0.0" not in text and "::" not in text
    for setting in (
        "AddressFamily inet",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "AllowTcpForwarding no",
        "X11Forwarding no",
        "PermitTunnel no",
        "StrictModes yes",
        "Subsystem sftp internal-sftp",
        f"HostKey {tmp_path / 'host2' / 'ssh' / 'ssh_host_ed25519_key'}",
        f"PidFile {tmp_path / 'host2' / 'pids' / 'sshd.pid'}",
    ):
        assert setting in lines


@pytest.mark.skipif(shutil.which("sshd", path=_procs.SBIN_PATH) is None, reason="openssh-server is not installed")
def test_sshd_itself_accepts_the_configuration(tmp_path: Path) -> None:
    root = tmp_path / "host1"
    (root / "ssh").mkdir(parents=True)
    key = _ssh.host_key(root)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    config = root / "ssh" / "sshd_config"
    config.write_text(_ssh.sshd_config(address="127.0.0.2", port=2222, root=root))
    sshd = shutil.which("sshd", path=_procs.SBIN_PATH)
    assert sshd is not None
    _ssh.ensure_privsep_dir()  # on a fresh machine no sshd has made it yet
    done = subprocess.run([sshd, "-t", "-f", str(config)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_known_hosts_lines() -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDNZ virtkit-lab host1"
    assert _ssh.known_hosts_line("127.0.0.2", 2222, key) == "[127.0.0.2]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDNZ"
    assert _ssh.known_hosts_line("10.0.0.1", 22, key).startswith("10.0.0.1 ssh-ed25519 ")
    for bad in ("", "garbage", "ssh-ed25519 AAAA\nssh-rsa BBBB", "hostname ssh-ed25519 AAAA"):
        with pytest.raises(LabError):
            _ssh.known_hosts_line("127.0.0.2", 2222, bad)


def test_paramiko_reads_the_known_hosts_the_lab_writes(lab_root: Path) -> None:
    keys = [paramiko.ECDSAKey.generate() for _ in range(2)]
    entries = [(f"127.0.0.{i + 2}", 2222, f"{k.get_name()} {k.get_base64()} comment") for i, k in enumerate(keys)]
    path = _ssh.write_known_hosts(entries)
    assert path == lab_root / "ssh" / "known_hosts"
    known = paramiko.HostKeys(str(path))
    for i, key in enumerate(keys):
        found = known.lookup(f"[127.0.0.{i + 2}]:2222")
        assert found is not None and found[key.get_name()] == key
    assert known.lookup("127.0.0.2") is None  # port 22 is another host to SSH
    assert not list((lab_root / "ssh").glob(".*tmp"))


def test_stop_kills_the_process_of_the_pidfile_and_removes_it(tmp_path: Path) -> None:
    fake = tmp_path / "sshd"  # a program whose command name is "sshd", as the pidfile check wants
    shutil.copy("/bin/sleep", fake)
    proc = subprocess.Popen([str(fake), "60"])
    try:
        deadline = time.monotonic() + 5
        while _procs.comm(proc.pid) != "sshd" and time.monotonic() < deadline:  # until the exec is visible
            time.sleep(0.01)
        root = tmp_path / "host1"
        (root / "pids").mkdir(parents=True)
        (root / "pids" / "sshd.pid").write_text(f"{proc.pid}\n")
        assert _ssh.stop(root) == []
        assert proc.wait(timeout=5) != 0
        assert not (root / "pids" / "sshd.pid").exists()
        assert _ssh.stop(root) == []  # nothing left: a no-op
    finally:
        proc.kill()
        proc.wait()


def test_stop_leaves_a_pid_that_is_not_sshd_alone(tmp_path: Path) -> None:
    proc = subprocess.Popen(["sleep", "60"])
    try:
        (tmp_path / "pids").mkdir()
        (tmp_path / "pids" / "sshd.pid").write_text(f"{proc.pid}\n")
        _ssh.stop(tmp_path)
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_ssh_config_of_a_stopped_host_is_refused(lab_root: Path) -> None:
    host = daemons._configured(1)
    with pytest.raises(LabError, match="not running"):
        daemons.ssh_config(host)
    assert _ssh.running_pid(host.root, host.address, _ssh.PORT, namespace_of=1) is None
