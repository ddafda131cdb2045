"""Hosts reached by SSH, for real: each lab host's own sshd on its loopback address, in the host's namespaces.

A command run over SSH on host1 sees host1's hostname and its private /var/lib/libvirt (bind-mounted in its
namespace), which this machine sees only under the host's state directory: an image made there by qemu-img over
SSH is proven to be made where the VM runs, and the VM on host1 boots from it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import helpers
import virtkit
from virtkit import CommandFailed, HostKeyRejected, OperationTimeout, images
from virtkit.lab import _procs, _ssh, daemons, image
from virtkit.lab.paths import lab_root, shared_dir
from virtkit.remote.config import SSHConfig
from virtkit.remote.ssh import SSHFiles

PRIVATE = Path("/var/lib/libvirt/images")  # inside a lab host's namespace: its own directory, not this machine's


@pytest.fixture(scope="module")
def ssh(lab_hosts: list[daemons.LabHost]) -> list[SSHConfig]:
    return [daemons.ssh_config(h) for h in lab_hosts]


def _roots() -> list[Path]:
    return [PRIVATE, lab_root()]


def _private_here(host: daemons.LabHost, path: Path) -> Path:
    """Where this machine sees a file of ``host``'s private /var/lib/libvirt."""
    return host.root / "lib" / path.relative_to("/var/lib/libvirt")


def test_each_host_has_an_sshd_on_its_own_loopback_address_only(
    lab_hosts: list[daemons.LabHost], ssh: list[SSHConfig]
) -> None:
    assert helpers.listeners(_ssh.PORT) == {h.address for h in lab_hosts}
    assert helpers.listeners(22) == set()  # no system sshd was started by the set-up
    known = ssh[0].known_hosts.read_text().splitlines()
    assert sorted(line.split()[0] for line in known) == sorted(f"[{h.address}]:2222" for h in lab_hosts)
    assert all(c.known_hosts == ssh[0].known_hosts and c.key_file == ssh[0].key_file for c in ssh)
    assert oct(ssh[0].key_file.stat().st_mode & 0o777) == "0o600"


def test_commands_run_on_the_host_itself(lab_hosts: list[daemons.LabHost], ssh: list[SSHConfig]) -> None:
    start = time.monotonic()
    with SSHFiles(ssh[0]) as remote, virtkit.connect(lab_hosts[0].uri) as host:
        connected = time.monotonic() - start
        print(f"\nSSH connect (key exchange, host key check, auth): {connected * 1000:.0f} ms")
        assert remote.hostname() == host.hostname == "virtkit-host1"
        args = ["printf", "%s\n", "$(hostname)", "a b", "; rm -rf /tmp/x", "*"]
        assert remote.run(args).stdout.splitlines() == args[2:]
        with pytest.raises(CommandFailed) as err:
            remote.run(["ls", "/nonexistent-virtkit"], check=True)
        assert err.value.returncode == 2 and "No such file" in err.value.stderr
        assert remote.run(["no-such-program-virtkit"]).returncode == 127
        assert remote.is_dir(PRIVATE.parent) and remote.exists("/var/lib/libvirt/qemu")
        assert not remote.exists("/nonexistent-virtkit")
        free = remote.free_bytes(shared_dir())
        st = os.statvfs(shared_dir())
        assert abs(free - st.f_bavail * st.f_frsize) < 256 * 2**20  # the same file system, seen from both sides


def test_a_wrong_host_key_is_refused(lab_hosts: list[daemons.LabHost], ssh: list[SSHConfig], tmp_path: Path) -> None:
    host2_key = _ssh.host_public_key(lab_hosts[1].root)
    assert host2_key is not None
    wrong = tmp_path / "known_hosts"  # host2's key recorded for host1's address: what a man in the middle shows
    wrong.write_text(_ssh.known_hosts_line(lab_hosts[0].address, _ssh.PORT, host2_key) + "\n")
    with pytest.raises(HostKeyRejected, match="host key mismatch"):
        SSHFiles(SSHConfig(host=ssh[0].host, port=ssh[0].port, key_file=ssh[0].key_file, known_hosts=wrong))
    unknown = tmp_path / "known_hosts2"
    unknown.write_text(_ssh.known_hosts_line(lab_hosts[1].address, _ssh.PORT, host2_key) + "\n")
    with pytest.raises(HostKeyRejected, match="unknown host key"):
        SSHFiles(SSHConfig(host=ssh[0].host, port=ssh[0].port, key_file=ssh[0].key_file, known_hosts=unknown))
    assert unknown.read_text().count("\n") == 1  # nothing was added


def test_files_move_both_ways_and_long_commands_are_killed_there(
    lab_hosts: list[daemons.LabHost], ssh: list[SSHConfig], tmp_path: Path, own: helpers.Owned
) -> None:
    src = tmp_path / "payload.bin"
    src.write_bytes(os.urandom(3 * 2**20))
    remote_path = PRIVATE / f"{helpers.RUN}-payload.bin"
    own.file(_private_here(lab_hosts[0], remote_path))
    with SSHFiles(ssh[0]) as remote:
        remote.run(["mkdir", "-p", str(PRIVATE)], check=True)
        remote.put(src, remote_path)
        assert _private_here(lab_hosts[0], remote_path).read_bytes() == src.read_bytes()
        assert not remote_path.exists()  # not this machine's /var/lib/libvirt/images
        with pytest.raises(virtkit.AlreadyExists):
            remote.put(src, remote_path)
        remote.get(remote_path, tmp_path / "back.bin")
        assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()
        assert remote.unlink(remote_path) and not remote.exists(remote_path)

        start = time.monotonic()
        with pytest.raises(OperationTimeout):
            remote.run(["sleep", "31.7"], timeout=1)
        assert time.monotonic() - start < 10
    time.sleep(0.5)
    sleepers = [p for p in _pids() if _cmdline(p) == ["sleep", "31.7"]]
    assert sleepers == []  # killed on the host, not only abandoned


def _pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return []


def _spec(guest: image.GuestImage, name: str, disk: dict[str, str]) -> virtkit.VMSpec:
    return helpers.spec(guest, name, disks=[disk])


def test_an_image_made_by_qemu_img_over_ssh_is_used_by_the_vm_there(
    lab_hosts: list[daemons.LabHost],
    ssh: list[SSHConfig],
    guest: image.GuestImage,
    own: helpers.Owned,
) -> None:
    name = own("remote1")
    disk = PRIVATE / f"{name}.qcow2"
    own.file(_private_here(lab_hosts[0], disk))
    with SSHFiles(ssh[0]) as remote:
        remote.run(["mkdir", "-p", str(PRIVATE)], check=True)
        start = time.monotonic()
        made = images.create(disk, "128MiB", roots=_roots(), tool=remote)
        took = time.monotonic() - start
        print(f"\nremote qemu-img create + info of a 128 MiB qcow2 over SSH: {took * 1000:.0f} ms")
    assert made.virtual_size == 128 * 2**20 and _private_here(lab_hosts[0], disk).is_file()
    assert not disk.exists()
    with virtkit.connect(lab_hosts[0].uri, storage_roots=_roots(), ssh=ssh[0]) as host1:
        change = host1.create(_spec(guest, name, {"path": str(disk)}), start=True)
        assert change.after is not None and change.after.state is virtkit.VMState.RUNNING
    log = helpers.serial_log(name)
    log.wait_for_boot(timeout=120)
    assert log.wait_for_disks(lambda disks: disks == ("vda",), timeout=30) == ("vda",)


def test_host_create_through_ssh_makes_the_disk_on_the_host(
    lab_hosts: list[daemons.LabHost],
    ssh: list[SSHConfig],
    guest: image.GuestImage,
    own: helpers.Owned,
) -> None:
    name = own("remote2")
    disk = PRIVATE / f"{name}.qcow2"
    own.file(_private_here(lab_hosts[0], disk))
    spec = _spec(guest, name, {"path": str(disk), "size": "96MiB"})
    with virtkit.connect(lab_hosts[0].uri, storage_roots=_roots(), ssh=ssh[0]) as host1:
        host1.storage.files.run(["mkdir", "-p", str(PRIVATE)], timeout=30)
        start = time.monotonic()
        change = host1.create(spec, start=True)
        print(f"\nHost.create with the disk made over SSH, started: {(time.monotonic() - start) * 1000:.0f} ms")
        assert change.changed and _private_here(lab_hosts[0], disk).is_file() and not disk.exists()
        assert images.info(disk, roots=host1.storage.roots).virtual_size == 96 * 2**20
        assert not host1.create(spec, start=True).changed  # the existing disk is checked on the host too
    log = helpers.serial_log(name)
    log.wait_for_boot(timeout=120)
    assert log.wait_for_disks(lambda disks: disks == ("vda",), timeout=30) == ("vda",)
    # Without SSH the same host cannot check that disk: it is not on this machine.
    with virtkit.connect(lab_hosts[0].uri, storage_roots=_roots()) as plain:
        missing = own("remote3")
        other = _spec(guest, missing, {"path": str(PRIVATE / f"{missing}.qcow2")})
        with pytest.raises(virtkit.InvalidSpec, match="does not exist"):
            plain.create(other)
    # A disk hot-added from a new image is made on the host too, and the guest sees it.
    extra = PRIVATE / f"{name}-extra.qcow2"
    own.file(_private_here(lab_hosts[0], extra))
    with virtkit.connect(lab_hosts[0].uri, storage_roots=_roots(), ssh=ssh[0]) as host1:
        attached = host1.get(name).disks.attach({"path": str(extra), "size": "32MiB", "bus": "scsi"})
        assert attached.changed and _private_here(lab_hosts[0], extra).is_file() and not extra.exists()
        assert log.wait_for_disks(lambda disks: "sda" in disks, timeout=60) == ("sda", "vda")
        # Deleting with storage through SSH removes the disks where they are: on the host, not on this machine.
        assert host1.get(name).delete(storage=True, force=True).changed
        assert not _private_here(lab_hosts[0], disk).exists() and not _private_here(lab_hosts[0], extra).exists()
        assert not (shared_dir() / f"{name}.serial.log").exists()


def test_stopping_only_the_sshd_and_starting_it_again(lab_hosts: list[daemons.LabHost], ssh: list[SSHConfig]) -> None:
    host = lab_hosts[1]
    daemons.ssh_config(host)
    pid = _procs.read_pidfile(host.root / "pids" / "sshd.pid", "sshd")
    assert pid is not None
    known = ssh[1].known_hosts.read_text()
    assert _ssh.stop(host.root) == []
    assert not _procs.alive(pid) and not _procs.listening(host.address, _ssh.PORT)
    start = time.monotonic()
    again = daemons.ssh_config(host)
    print(f"\nsshd start in the host's namespaces: {(time.monotonic() - start) * 1000:.0f} ms")
    assert again == ssh[1] and again.known_hosts.read_text() == known  # the host key survives a restart
    with SSHFiles(again) as remote:
        assert remote.hostname() == "virtkit-host2"
