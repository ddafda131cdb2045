"""Unit tests of the lab's pure parts: addressing, configuration editing and generation, /proc parsing.

No root, no daemons: everything that starts a process lives in integration/test_lab.py.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import uuid
from pathlib import Path

import pytest

from virtkit.errors import InvalidSpec, LabError
from virtkit.lab import _config, _nsinit, _procs, daemons

# --- addressing -------------------------------------------------------------------------------------------------


def test_hosts_get_consecutive_loopback_addresses_never_127_0_0_1() -> None:
    assert [_config.host_address(i) for i in (1, 2, 3)] == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    assert [_config.host_name(i) for i in (1, 2)] == ["host1", "host2"]
    assert _config.host_address(_config.MAX_HOSTS) == "127.0.0.254"


@pytest.mark.parametrize("index", [0, -1, _config.MAX_HOSTS + 1])
def test_host_index_out_of_range_is_refused(index: int) -> None:
    with pytest.raises(LabError):
        _config.host_address(index)


def test_uri() -> None:
    assert _config.host_uri("127.0.0.2") == "qemu+tcp://127.0.0.2:16509/system"
    assert _config.host_uri("127.0.0.3", 16600) == "qemu+tcp://127.0.0.3:16600/system"


@pytest.fixture
def lab_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VIRTKIT_LAB_ROOT", str(tmp_path))
    return tmp_path


def test_lab_host_fields(lab_root: Path) -> None:
    host = daemons._lab_host(2, "c4f6bcda-fc52-4d6b-a8c5-0d39355d5113")
    assert host == daemons.LabHost(
        name="host2",
        index=2,
        address="127.0.0.3",
        port=16509,
        uri="qemu+tcp://127.0.0.3:16509/system",
        root=lab_root / "hosts" / "host2",
        host_uuid="c4f6bcda-fc52-4d6b-a8c5-0d39355d5113",
    )


def test_host_uuid_is_persisted_distinct_and_stable(lab_root: Path) -> None:
    first = [daemons._configured(i) for i in (1, 2)]
    again = [daemons._configured(i) for i in (1, 2)]
    assert first == again
    assert first[0].host_uuid != first[1].host_uuid
    assert str(uuid.UUID(first[0].host_uuid)) == first[0].host_uuid
    assert daemons.hosts() == first


def test_hosts_ignores_foreign_directories(lab_root: Path) -> None:
    (lab_root / "hosts" / "junk").mkdir(parents=True)
    (lab_root / "hosts" / "broken").mkdir()
    (lab_root / "hosts" / "broken" / "host.json").write_text("{not json")
    assert daemons.hosts() == []


def test_status_and_down_of_a_stopped_lab(lab_root: Path) -> None:
    assert daemons.status() == []
    daemons.down()  # nothing configured: a no-op
    host = daemons._configured(1)
    assert daemons.status() == [daemons.HostStatus(host=host, running=False, pids={}, domains=None)]
    daemons.down()  # configured, not running: still a no-op
    assert (host.root / "host.json").exists()


@pytest.mark.parametrize("count", [0, -2, True, 2.0, _config.MAX_HOSTS + 1])
def test_up_refuses_a_bad_count(lab_root: Path, count: object) -> None:
    with pytest.raises(InvalidSpec) as err:
        daemons.up(count)  # type: ignore[arg-type]
    assert err.value.field == "count"


# --- configuration editing --------------------------------------------------------------------------------------

SAMPLE = """\
# Master libvirt daemon configuration file
#
# Flag to disable stack of listening on TLS
#listen_tls = 0
#listen_tcp = 1
#tcp_port = "16509"

# e.g. listen_addr = "192.168.0.1"
#listen_addr = "192.168.0.1"
auth_tcp = "sasl"
cgroup_controllers = [ "cpu",
                       "memory" ]
keepalive_count = 5
"""


def test_set_values_replaces_the_commented_example_in_place() -> None:
    out = _config.set_values(SAMPLE, {"listen_tcp": 1, "listen_addr": "127.0.0.2"}).splitlines()
    assert out[4] == "listen_tcp = 1"
    assert out[8] == 'listen_addr = "127.0.0.2"'
    assert out[7] == '# e.g. listen_addr = "192.168.0.1"'  # prose mentioning the key is left alone
    assert len(out) == len(SAMPLE.splitlines())


def test_set_values_replaces_an_active_line_and_a_multiline_list() -> None:
    out = _config.set_values(SAMPLE, {"auth_tcp": "none", "cgroup_controllers": ["cpu"]})
    assert 'auth_tcp = "none"' in out.splitlines()
    assert 'cgroup_controllers = [ "cpu" ]' in out.splitlines()
    assert '"memory" ]' not in out
    assert out.endswith("keepalive_count = 5\n")


def test_set_values_appends_unknown_keys_and_drops_duplicates() -> None:
    text = "a = 1\nb = 2\na = 3\n"
    assert _config.set_values(text, {"a": 9, "host_uuid": "x"}) == 'a = 9\nb = 2\n\nhost_uuid = "x"\n'


def test_set_values_is_idempotent() -> None:
    values: dict[str, _config.ConfValue] = {"listen_tcp": 1, "auth_tcp": "none", "new_key": ["a", "b"]}
    once = _config.set_values(SAMPLE, values)
    assert _config.set_values(once, values) == once


def test_set_values_does_not_touch_keys_with_a_common_prefix() -> None:
    out = _config.set_values("#tcp_port_min = 1\ntcp_port = 2\n", {"tcp_port": "16509"})
    assert out == '#tcp_port_min = 1\ntcp_port = "16509"\n'


@pytest.mark.parametrize(
    ("value", "text"),
    [(True, "1"), (False, "0"), (7, "7"), ("none", '"none"'), (["a", "b"], '[ "a", "b" ]'), ([], "[ ]")],
)
def test_format_value(value: _config.ConfValue, text: str) -> None:
    assert _config.format_value(value) == text


@pytest.mark.parametrize("bad", ['say "hi"', "back\\slash", "new\nline"])
def test_values_that_cannot_be_written_are_refused(bad: str) -> None:
    with pytest.raises(LabError):
        _config.set_values("", {"key": bad})


def test_bad_key_is_refused() -> None:
    with pytest.raises(LabError):
        _config.set_values("", {"a b": 1})


# --- configuration generation -----------------------------------------------------------------------------------


def test_settings_of_a_host() -> None:
    libvirtd = _config.libvirtd_settings(address="127.0.0.3", port=16509, host_uuid="u")
    assert libvirtd["listen_addr"] == "127.0.0.3"
    assert libvirtd["tcp_port"] == "16509"
    assert (libvirtd["listen_tcp"], libvirtd["listen_tls"], libvirtd["auth_tcp"]) == (1, 0, "none")
    assert libvirtd["host_uuid"] == "u"
    qemu = _config.qemu_settings(address="127.0.0.3", security_none=True)
    assert qemu["migration_address"] == qemu["migration_host"] == "127.0.0.3"
    assert (qemu["user"], qemu["group"], qemu["lock_manager"], qemu["security_driver"]) == (
        "root",
        "root",
        "lockd",
        "none",
    )
    assert "security_driver" not in _config.qemu_settings(address="127.0.0.3", security_none=False)
    lockd = _config.lockd_settings(lockspace=Path("/srv/shared/lockspace"))
    assert lockd == {"auto_disk_leases": 1, "require_lease_for_disks": 1, "file_lockspace_dir": "/srv/shared/lockspace"}


@pytest.mark.skipif(not Path("/etc/libvirt/libvirtd.conf").exists(), reason="libvirt's default configuration")
def test_write_config_from_the_package_defaults(lab_root: Path) -> None:
    host = daemons._configured(1)
    tools = {name: f"/usr/sbin/{name}" for name in daemons.DAEMONS}
    setup = json.loads(daemons._write_config(host, tools).read_text())
    assert setup["hostname"] == "virtkit-host1"
    assert ["/usr/sbin/libvirtd", "-d", "-l", "-p", str(host.root / "pids" / "libvirtd.pid")] in setup["daemons"]
    assert [str(host.root / "etc"), "/etc/libvirt"] in setup["binds"]
    assert {target for _, target in setup["binds"]} == {
        "/etc/libvirt",
        "/run/libvirt",
        "/var/lib/libvirt",
        "/var/log/libvirt",
        "/var/cache/libvirt",
    }
    assert setup["outer"]["mnt"] == os.readlink("/proc/self/ns/mnt")
    etc = host.root / "etc"
    libvirtd = (etc / "libvirtd.conf").read_text().splitlines()
    assert 'listen_addr = "127.0.0.2"' in libvirtd
    assert f'host_uuid = "{host.host_uuid}"' in libvirtd
    assert 'migration_host = "127.0.0.2"' in (etc / "qemu.conf").read_text().splitlines()
    lockd = (etc / "qemu-lockd.conf").read_text().splitlines()
    assert f'file_lockspace_dir = "{lab_root / "shared" / "lockspace"}"' in lockd
    assert (lab_root / "shared" / "lockspace").is_dir()
    # Nothing host-wide comes along: no domains, networks or hooks of the machine, nothing that autostarts.
    assert not (etc / "qemu").exists()
    assert not (etc / "hooks").exists()


# --- the namespace helper ---------------------------------------------------------------------------------------


def test_nsinit_refuses_to_mount_in_the_callers_namespace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = {
        "hostname": "must-not-change",
        "outer": {kind: os.readlink(f"/proc/self/ns/{kind}") for kind in ("mnt", "uts")},
        "binds": [[str(tmp_path / "a"), str(tmp_path / "b")]],
        "daemons": [],
    }
    path = tmp_path / "nsinit.json"
    path.write_text(json.dumps(config))
    assert _nsinit.main([str(path)]) == 1
    assert "refusing to mount" in capsys.readouterr().err
    assert socket.gethostname() != "must-not-change"
    assert not (tmp_path / "b").exists()


def test_nsinit_usage() -> None:
    assert _nsinit.main([]) == 2


# --- /proc parsing ----------------------------------------------------------------------------------------------

TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0200007F:407D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 11263 1
   1: 0300007F:407D 0200007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 11264 1
"""


@pytest.mark.skipif(sys.byteorder != "little", reason="/proc/net/tcp sample written on a little-endian machine")
def test_listening_reads_the_tcp_table() -> None:
    assert _procs.listening("127.0.0.2", 16509, tcp_table=TCP)
    assert not _procs.listening("127.0.0.3", 16509, tcp_table=TCP)  # connected, not listening
    assert not _procs.listening("127.0.0.2", 16510, tcp_table=TCP)


MOUNTINFO_SELF = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
40 27 0:40 / /srv/lab\\040root rw,relatime - tmpfs tmpfs rw
"""


def test_fs_location_follows_the_longest_mount_point() -> None:
    assert _procs.fs_location(Path("/var/lib/virtkit/hosts/host1"), MOUNTINFO_SELF) == (
        "254:0",
        "/var/lib/virtkit/hosts/host1",
    )
    assert _procs.fs_location(Path("/srv/lab root/hosts/host1"), MOUNTINFO_SELF) == ("0:40", "/hosts/host1")


def test_holds_finds_bind_mounts_of_a_host() -> None:
    lab = """\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
90 27 254:0 /var/lib/virtkit/hosts/host1/etc /etc/libvirt rw,relatime - ext4 /dev/vda rw
"""
    assert _procs.holds(lab, ("254:0", "/var/lib/virtkit/hosts/host1"))
    assert not _procs.holds(lab, ("254:0", "/var/lib/virtkit/hosts/host"))  # a prefix of a name is no match
    assert not _procs.holds(lab, ("254:1", "/var/lib/virtkit/hosts/host1"))
    assert not _procs.holds(MOUNTINFO_SELF, ("254:0", "/var/lib/virtkit/hosts/host1"))


def test_pidfiles_and_liveness(tmp_path: Path) -> None:
    pidfile = tmp_path / "x.pid"
    assert _procs.read_pidfile(pidfile) is None
    pidfile.write_text(f"{os.getpid()}\n")
    assert _procs.read_pidfile(pidfile) == os.getpid()
    assert _procs.read_pidfile(pidfile, "no-such-program") is None
    pidfile.write_text("garbage")
    assert _procs.read_pidfile(pidfile) is None
    assert _procs.alive(os.getpid())
    assert not _procs.alive(2**22 + 1)


def test_run_captures_output_without_a_pipe() -> None:
    assert _procs.run([sys.executable, "-c", "print('out'); import sys; sys.exit(3)"]) == (3, "out")


def test_tail(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(50)))
    assert _procs.tail(log, 2) == "line 48\nline 49"
    assert "x.missing" in _procs.tail(tmp_path / "x.missing")
