"""The neutral spec: loading from dicts and YAML, hostile input, round-trips, the JSON schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from virtkit import DiskBus, DiskFormat, InvalidSpec, NicKind, VMSpec
from virtkit.units import GiB, MiB

FULL = """
name: web1
vcpus: 2
max_vcpus: 4
memory: 512MB
max_memory: 1GiB
firmware: uefi
secure_boot: true
machine: q35
accel: tcg
cpu_model: Haswell-noTSX
boot: [disk, network]
kernel: {kernel: /var/lib/virtkit/guest/plain/vmlinuz, initrd: /var/lib/virtkit/guest/plain/initrd.img,
         cmdline: console=ttyS0 quiet}
disks:
  - {path: /var/lib/virtkit/shared/web1.qcow2, size: 10GiB}
  - {path: /var/lib/virtkit/shared/data.vhd, format: vhd, bus: scsi, readonly: true, cache: none}
nics:
  - {kind: network, source: default, mac: "52:54:00:12:34:56", mtu: 9000}
  - {kind: user, model: e1000}
serial_log: /var/lib/virtkit/shared/web1.log
guest_agent: true
"""


def test_full_spec_loads_with_types() -> None:
    spec = VMSpec.from_yaml(FULL)
    assert spec.memory == 512 * MiB
    assert spec.max_memory == GiB
    assert spec.disks[0].size == 10 * GiB
    assert spec.disks[1].format is DiskFormat.VHD
    assert spec.disks[1].bus is DiskBus.SCSI
    assert spec.nics[1].kind is NicKind.USER
    assert spec.kernel is not None and spec.kernel.kernel == Path("/var/lib/virtkit/guest/plain/vmlinuz")


def test_round_trip_through_dict_and_yaml() -> None:
    spec = VMSpec.from_yaml(FULL)
    assert VMSpec.from_dict(spec.to_dict()) == spec
    assert VMSpec.from_yaml(spec.to_yaml()) == spec
    assert spec.to_dict()["memory"] == "512MiB"


def test_python_construction_is_checked_like_yaml() -> None:
    assert VMSpec(name="a", memory="1GiB").memory == GiB  # type: ignore[arg-type]
    with pytest.raises(InvalidSpec) as err:
        VMSpec(name="a", memory="lots")  # type: ignore[arg-type]
    assert err.value.field == "memory"


def test_defaults_are_a_small_bios_vm() -> None:
    spec = VMSpec.from_dict({"name": "tiny"})
    assert (spec.vcpus, spec.memory, spec.firmware.value, spec.machine.value) == (1, 512 * MiB, "bios", "pc")


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        ({}, "name", "is required"),
        ({"name": ""}, "name", "not a valid name"),
        ({"name": "-x"}, "name", "not a valid name"),
        ({"name": "a b"}, "name", "not a valid name"),
        ({"name": "a;rm -rf /"}, "name", "not a valid name"),
        ({"name": "<x/>"}, "name", "not a valid name"),
        ({"name": "x" * 64}, "name", "not a valid name"),
        ({"name": "../etc"}, "name", "not a valid name"),
        ({"name": 5}, "name", "must be a string"),
        ({"name": "a", "colour": "red"}, "colour", "unknown field"),
        ({"name": "a", "vcpus": 0}, "vcpus", "too small"),
        ({"name": "a", "vcpus": "2"}, "vcpus", "must be an integer"),
        ({"name": "a", "vcpus": True}, "vcpus", "must be an integer"),
        ({"name": "a", "vcpus": 100000}, "vcpus", "too large"),
        ({"name": "a", "vcpus": 4, "max_vcpus": 2}, "max_vcpus", "below vcpus"),
        ({"name": "a", "memory": "1MB"}, "memory", "too small"),
        ({"name": "a", "memory": "99TiB"}, "memory", "too large"),
        ({"name": "a", "memory": "1GiB", "max_memory": "512MiB"}, "max_memory", "below memory"),
        ({"name": "a", "firmware": "coreboot"}, "firmware", "not valid"),
        ({"name": "a", "secure_boot": True}, "secure_boot", "needs firmware uefi"),
        ({"name": "a", "boot": ["disk", "disk"]}, "boot", "twice"),
        ({"name": "a", "boot": "disk"}, "boot", "must be a list"),
        ({"name": "a", "cpu_model": "x'><evil/>"}, "cpu_model", "not a CPU model"),
        ({"name": "a", "disks": [{"size": "1G"}]}, "disks[0].path", "is required"),
        ({"name": "a", "disks": [{"path": "relative.qcow2"}]}, "disks[0].path", "absolute"),
        ({"name": "a", "disks": [{"path": "/srv/../etc/shadow"}]}, "disks[0].path", "'..'"),
        ({"name": "a", "disks": [{"path": "/srv/a;b.qcow2"}]}, "disks[0].path", "must not contain"),
        ({"name": "a", "disks": [{"path": "/srv/a<b>.qcow2"}]}, "disks[0].path", "must not contain"),
        ({"name": "a", "disks": [{"path": "/srv/a$(id).qcow2"}]}, "disks[0].path", "must not contain"),
        ({"name": "a", "disks": [{"path": "/srv/a,b.qcow2"}]}, "disks[0].path", "must not contain"),
        ({"name": "a", "disks": [{"path": "/srv/a\nb"}]}, "disks[0].path", "must not contain"),
        ({"name": "a", "disks": [{"path": "/srv/a", "size": 0}]}, "disks[0].size", "too small"),
        ({"name": "a", "disks": [{"path": "/srv/a", "size": -1}]}, "disks[0].size", "too small"),
        ({"name": "a", "disks": [{"path": "/srv/a", "size": "1PiB"}]}, "disks[0].size", "unknown unit"),
        ({"name": "a", "disks": [{"path": "/srv/a", "format": "vmdk"}]}, "disks[0].format", "not valid"),
        ({"name": "a", "disks": [{"path": "/srv/a", "bogus": 1}]}, "disks[0].bogus", "unknown field"),
        ({"name": "a", "disks": [{"path": "/srv/a", "target": "sda"}]}, "disks[0].target", "not a virtio"),
        ({"name": "a", "disks": [{"path": "/srv/a"}, {"path": "/srv/a"}]}, "disks[1].path", "used by another"),
        (
            {"name": "a", "machine": "q35", "disks": [{"path": "/srv/a", "bus": "ide"}]},
            "disks[0].bus",
            "no IDE",
        ),
        ({"name": "a", "disks": [{"path": "/dev/sdb", "kind": "block", "size": "1G"}]}, "disks[0].size", "block"),
        ({"name": "a", "disks": "/srv/a"}, "disks", "must be a list"),
        ({"name": "a", "disks": ["/srv/a"]}, "disks[0]", "must be a mapping"),
        ({"name": "a", "nics": [{"kind": "bridge"}]}, "nics[0].source", "needs the bridge name"),
        ({"name": "a", "nics": [{"kind": "user", "source": "br0"}]}, "nics[0].source", "no source"),
        ({"name": "a", "nics": [{"source": "net;id"}]}, "nics[0].source", "not a valid"),
        ({"name": "a", "nics": [{"kind": "user", "mac": "01:00:00:00:00:00"}]}, "nics[0].mac", "multicast"),
        ({"name": "a", "nics": [{"kind": "user", "mac": "zz"}]}, "nics[0].mac", "not a lower-case MAC"),
        ({"name": "a", "nics": [{"kind": "user", "mtu": 10}]}, "nics[0].mtu", "too small"),
        ({"name": "a", "kernel": {"kernel": "/k", "cmdline": "a\x00b"}}, "kernel.cmdline", "control"),
        ({"name": "a", "kernel": {"initrd": "/i"}}, "kernel.kernel", "is required"),
        ({"name": "a", "serial_log": "log.txt"}, "serial_log", "absolute"),
    ],
)
def test_bad_input_names_field_and_reason(data: dict[str, object], field: str, reason: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        VMSpec.from_dict(data)
    assert err.value.field == field
    assert reason in err.value.reason


def test_yaml_errors_are_invalid_spec() -> None:
    with pytest.raises(InvalidSpec) as err:
        VMSpec.from_yaml("name: [unclosed")
    assert err.value.field == "yaml"
    with pytest.raises(InvalidSpec) as err:
        VMSpec.from_yaml("- just\n- a list")
    assert err.value.field == "spec"


def test_missing_file_is_invalid_spec(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec) as err:
        VMSpec.from_file(tmp_path / "nope.yml")
    assert err.value.field == "file"


def test_example_spec_files_load() -> None:
    from virtkit.hyperv import HyperVSpec

    paths = sorted(Path(__file__).parent.parent.glob("examples/specs/*.yml"))
    assert paths
    for path in paths:  # hyperv-*.yml are in Hyper-V's words; *site.yml are site files (tests/test_playbook_site.py)
        if not path.name.endswith("site.yml"):
            (HyperVSpec if path.name.startswith("hyperv-") else VMSpec).from_file(path)


def test_json_schema_describes_every_field() -> None:
    schema = VMSpec.json_schema()
    json.dumps(schema)
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["name"]
    assert set(schema["properties"]) >= {"name", "vcpus", "memory", "disks", "nics", "kernel"}
    disk = schema["properties"]["disks"]["items"]
    assert disk["properties"]["format"]["enum"] == ["qcow2", "raw", "vhd", "vhdx"]
    assert "description" in schema["properties"]["memory"]
