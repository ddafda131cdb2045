"""Hostile input to the specs and the values they are made of: VMSpec (from a dict, YAML text or a file), DiskSpec,
NicSpec, KernelBoot, CPUModel, MigrationTuning, SSHConfig and sizes. Every bad value is refused with an InvalidSpec
naming its field, with a short, printable message; nothing else escapes and nothing hangs (see tests/hostile.py).

Operations on hosts and VMs are in test_hostile_ops.py, disk images in test_hostile_images.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from hostile import (
    bad_enums,
    bad_ints,
    bad_names,
    bad_paths,
    bad_sizes,
    bad_timeouts,
    bad_yaml_chars,
    huge_ints,
    long_strings,
    names,
    not_bools,
    not_text,
    refused,
    with_bad_char,
)
from hostile import hostile as hostile_settings
from virtkit import CPUModel, DiskBus, DiskSpec, InvalidSpec, KernelBoot, MigrationTuning, NicSpec, SSHConfig, VMSpec
from virtkit.units import parse_size

ROOT = "/var/lib/virtkit/h"

# -- strategies for one bad field of a spec --------------------------------------------------------------------------

bad_texts = st.one_of(with_bad_char(), long_strings, not_text)
bad_targets = st.one_of(
    st.sampled_from(["sda", "hda", "vd", "vdaaaa", "VDA", "vdA", "vd1", "vd\xe9", "vd\xaa", "vd\u0430", "vd\uff41"]),
    with_bad_char(st.just("vda")),
    not_text,
)
bad_macs = st.one_of(
    st.sampled_from(
        [
            "52:54:00:AA:BB:CC",
            "01:00:5e:00:00:01",
            "ff:ff:ff:ff:ff:ff",
            "52:54:00:12:34",
            "52:54:00:12:34:5g",
            "52-54-00-12-34-56",
            "52:54:00:12:34:56:78",
            "\uff15\uff12:54:00:12:34:56",
        ]
    ),
    with_bad_char(st.just("52:54:00:12:34:56")),
    not_text,
)
bad_ifnames = st.one_of(
    st.sampled_from(["a b", "a" * 16, "-x", "", "br0;x", "br\xe90"]), with_bad_char(st.just("br0")), not_text
)
bad_model_names = st.one_of(
    st.sampled_from(["", "a" * 65, "bad model", "-EPYC", "EPYC\xe9"]), with_bad_char(st.just("EPYC")), not_text
)
bad_feature_lists = st.one_of(
    st.sampled_from(["+pku", b"+pku", {"+pku": 1}, 5]),
    huge_ints,
    st.lists(st.one_of(st.sampled_from(["pku", "+", "+a;b", "+\xe9", ""]), with_bad_char(), not_text), min_size=1),
    st.just(["+pku", "-pku"]),
)

# A disk, NIC and spec that are fine, each with one field made bad below.
DISK: dict[str, Any] = {"path": f"{ROOT}/web1.qcow2", "size": "64MiB"}
NIC: dict[str, Any] = {"kind": "user"}
SPEC: dict[str, Any] = {"name": "web1", "memory": "256MiB", "disks": [DISK], "nics": [NIC]}

DISK_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "path": bad_paths | st.none(),
    "format": bad_enums("qcow2", "raw", "vhd", "vhdx") | st.none(),
    "bus": bad_enums("virtio", "scsi", "sata", "ide") | st.none(),
    "size": bad_sizes,
    "kind": bad_enums("file", "block") | st.none(),
    "target": bad_targets,
    "readonly": not_bools,
    "cache": bad_enums("default", "none", "writethrough", "writeback", "directsync", "unsafe"),
}
NIC_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "kind": bad_enums("network", "bridge", "user") | st.none(),
    "source": with_bad_char() | st.just("default"),  # a user NIC takes no source at all
    "model": bad_enums("virtio", "e1000", "e1000e", "rtl8139"),
    "mac": bad_macs,
    "mtu": bad_ints(68, 65535).filter(lambda v: v is not None),
}


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return strategy.filter(lambda v: v is not None)


def _one_bad(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[tuple[str, Any]]:
    return st.sampled_from(sorted(fields)).flatmap(lambda f: st.tuples(st.just(f), fields[f]))


bad_kernels = st.one_of(
    not_text,
    st.just("/var/lib/virtkit/vmlinuz"),
    st.just({}),
    bad_paths.map(lambda p: {"kernel": p}),
    _optional(bad_paths).map(lambda p: {"kernel": f"{ROOT}/vmlinuz", "initrd": p}),
    bad_texts.map(lambda t: {"kernel": f"{ROOT}/vmlinuz", "cmdline": t}),
    st.just({"kernel": f"{ROOT}/vmlinuz", "append": "x"}),
)

TOP_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "name": bad_names,
    "vcpus": bad_ints(1, 512),
    "max_vcpus": _optional(bad_ints(1, 512)),
    "memory": bad_sizes | st.sampled_from(["1MiB", "15MiB", "5TiB", None]),
    "max_memory": _optional(bad_sizes) | st.sampled_from(["128MiB", "5TiB"]),
    "firmware": bad_enums("bios", "uefi"),
    "secure_boot": not_bools,
    "machine": bad_enums("pc", "q35"),
    "accel": bad_enums("auto", "kvm", "tcg"),
    "cpu_model": bad_model_names,
    "cpu_features": bad_feature_lists,
    "boot": st.one_of(
        st.sampled_from(["disk", ["disk", "disk"], ["floppy"], [None], [1], {"disk": 1}]),
        huge_ints,
        bad_texts.filter(lambda v: v != []),
    ),
    "kernel": bad_kernels,
    "disks": st.one_of(
        st.sampled_from(["x", 5, {}]),
        st.lists(not_text, min_size=1, max_size=2),
        huge_ints,
        st.integers(257, 3000).map(lambda n: [{"path": f"{ROOT}/d{i}.qcow2"} for i in range(n)]),
    ),
    "nics": st.one_of(
        st.sampled_from(["user", 1]),
        st.lists(not_text, min_size=1, max_size=2),
        st.integers(69, 1000).map(lambda n: [{"kind": "user"}] * n),
    ),
    "serial_log": _optional(bad_paths),
    "guest_agent": not_bools,
}


@st.composite
def bad_specs(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A spec with one bad field (possibly inside a disk or a NIC, or two fields that clash), and that field."""
    data = {**SPEC, "disks": [dict(DISK)], "nics": [dict(NIC)]}
    where = draw(st.sampled_from(["top", "disk", "nic", "unknown", "clash"]))
    if where == "top":
        name, value = draw(_one_bad(TOP_FIELDS))
        data[name] = value
        return data, name
    if where == "disk":
        name, value = draw(_one_bad(DISK_FIELDS))
        data["disks"][0][name] = value
        if name == "size" and draw(st.booleans()):  # a block device takes no size
            data["disks"][0].update(kind="block", format="raw", size="1GiB")
        return data, f"disks[0].{name}"
    if where == "nic":
        name, value = draw(_one_bad(NIC_FIELDS))
        if name == "source" and value != "default":
            data["nics"][0] = {"kind": draw(st.sampled_from(["network", "bridge"])), "source": value}
        else:
            data["nics"][0][name] = value
        return data, f"nics[0].{name}"
    if where == "unknown":
        key = draw(st.one_of(with_bad_char(), names.filter(lambda k: k not in SPEC and k not in TOP_FIELDS)))
        data[key] = draw(st.integers())
        return data, ""
    clash = draw(st.sampled_from(["path", "mac", "target", "vcpus", "memory", "secure_boot", "ide", "features"]))
    if clash == "path":
        data["disks"].append({**DISK, "bus": "scsi"})
        return data, "disks[1].path"
    if clash == "mac":
        data["nics"] = [{"kind": "user", "mac": "52:54:00:12:34:56"}, {"kind": "user", "mac": "52:54:00:12:34:56"}]
        return data, "nics[1].mac"
    if clash == "target":
        data["disks"] = [{**DISK, "target": "vdb"}, {"path": f"{ROOT}/b.qcow2", "size": "1GiB", "target": "vdb"}]
        return data, "disks"
    if clash == "vcpus":
        data.update(vcpus=4, max_vcpus=2)
        return data, "max_vcpus"
    if clash == "memory":
        data.update(memory="1GiB", max_memory="512MiB")
        return data, "max_memory"
    if clash == "secure_boot":
        data.update(secure_boot=True)
        return data, "secure_boot"
    if clash == "ide":
        data.update(machine="q35")
        data["disks"][0]["bus"] = "ide"
        return data, "disks[0].bus"
    data.update(cpu_model="host-model", cpu_features=["+pku"])
    return data, "cpu_features"


def _yaml(data: dict[str, Any]) -> str | None:
    try:
        return yaml.safe_dump(data)
    except (yaml.YAMLError, ValueError):  # a value YAML cannot hold (an int too long to print)
        return None


@hostile_settings(1500)
@given(bad_specs())
def test_a_bad_spec_is_refused_naming_the_field(case: tuple[dict[str, Any], str]) -> None:
    data, field = case
    refused(lambda: VMSpec.from_dict(data), field=field or None, kind=InvalidSpec)
    text = _yaml(data)
    if text is not None:
        err = refused(lambda: VMSpec.from_yaml(text), kind=InvalidSpec)
        assert isinstance(err, InvalidSpec)
        assert not field or err.field == "yaml" or err.field.startswith(field.split("[")[0])


@hostile_settings(300)
@given(_one_bad(DISK_FIELDS))
def test_a_bad_disk_is_refused_naming_the_field(case: tuple[str, Any]) -> None:
    name, value = case
    refused(lambda: DiskSpec(**{**DISK, name: value}), field=name, kind=InvalidSpec)


@hostile_settings(300)
@given(_one_bad(NIC_FIELDS))
def test_a_bad_nic_is_refused_naming_the_field(case: tuple[str, Any]) -> None:
    name, value = case
    data = {"kind": "bridge", "source": value} if name == "source" and value != "default" else {**NIC, name: value}
    refused(lambda: NicSpec(**data), field=name, kind=InvalidSpec)


@hostile_settings(200)
@given(bad_kernels.filter(lambda k: isinstance(k, dict) and k))
def test_a_bad_kernel_boot_is_refused_naming_the_field(data: dict[str, Any]) -> None:
    field = next(k for k in data if k != "kernel" or len(data) == 1)
    refused(lambda: KernelBoot.from_dict(data), field=field, kind=InvalidSpec)


@hostile_settings(200)
@given(
    st.one_of(
        bad_model_names.map(lambda m: ({"model": m}, "model")),
        st.just(({"model": "host-model"}, "model")),
        bad_feature_lists.map(lambda f: ({"model": "EPYC", "features": f}, "features")),
        bad_texts.map(lambda v: ({"model": "EPYC", "vendor": v}, "vendor")),
    )
)
def test_a_bad_cpu_model_is_refused_naming_the_field(case: tuple[dict[str, Any], str]) -> None:
    kwargs, field = case
    refused(lambda: CPUModel(**kwargs), field=field, kind=InvalidSpec)


TUNING_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "bandwidth": _optional(bad_ints(1, 2**43 - 1)),
    "downtime_start": bad_ints(1, 2_000_000),
    "downtime_max": bad_ints(1, 2_000_000),
    "downtime_steps": bad_ints(1, 1000),
    "downtime_delay": bad_timeouts(),
    "strategy": bad_enums("auto", "precopy", "postcopy", "stopped"),
    "auto_converge": not_bools,
    "postcopy": not_bools,
    "compression": bad_enums("auto", "xbzrle", "none"),
    "xbzrle_cache": _optional(bad_ints(1, 2**43 - 1)),
    "connections": bad_ints(1, 64),
    "stall_passes": bad_ints(1, 100),
    "throttle_initial": bad_ints(1, 99),
    "throttle_increment": bad_ints(1, 99),
    "timeout_per_gib": _optional(bad_timeouts()),
    "timeout_min": bad_timeouts(allow_zero=True),
    "on_timeout": bad_enums("abort", "force"),
}


@hostile_settings(400)
@given(_one_bad(TUNING_FIELDS))
def test_bad_migration_tuning_is_refused_naming_the_field(case: tuple[str, Any]) -> None:
    name, value = case
    refused(lambda: MigrationTuning(**{name: value}), field=name, kind=InvalidSpec)
    refused(lambda: MigrationTuning.from_dict({name: value}), field=name, kind=InvalidSpec)


SSH: dict[str, Any] = {"host": "h", "key_file": "/k", "known_hosts": "/kh"}
SSH_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "host": st.one_of(
        st.sampled_from(["-oProxyCommand=x", "a b", "", "h\xe9", "a" * 254, "-h"]),
        with_bad_char(st.just("h")),
        not_text,
    ),
    "key_file": bad_paths,
    "known_hosts": bad_paths,
    "port": bad_ints(1, 65535),
    "user": st.one_of(
        st.sampled_from(["Root", "a;b", "", "a" * 33, "r\xe9"]), with_bad_char(st.just("root")), not_text
    ),
    "connect_timeout": bad_timeouts(),
}


@hostile_settings(300)
@given(_one_bad(SSH_FIELDS))
def test_a_bad_ssh_config_is_refused_naming_the_field(case: tuple[str, Any]) -> None:
    name, value = case
    refused(lambda: SSHConfig(**{**SSH, name: value}), field=name, kind=InvalidSpec)
    refused(lambda: SSHConfig.from_dict({**SSH, name: value}), field=name, kind=InvalidSpec)


@hostile_settings(500)
@given(bad_sizes)
def test_a_bad_size_is_refused(value: Any) -> None:
    refused(lambda: parse_size("memory", value), field="memory", kind=InvalidSpec)


# -- YAML text and files ---------------------------------------------------------------------------------------------


def _nested(depth: int, opener: str) -> str:
    closer = {"[": "]", "{": "}", "{a: ": "}"}[opener]
    return "name: " + opener * depth + closer * depth + "\n"


def _bomb(levels: int, width: int) -> str:
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + f"\nname: *a{levels - 1}\n"


bad_yaml = st.one_of(
    st.builds(_nested, st.integers(40, 30_000), st.sampled_from(["[", "{", "{a: "])),
    st.builds(_bomb, st.integers(4, 14), st.integers(5, 12)),
    st.sampled_from(
        [
            "name: &a [*a]\n",
            "name: &a {b: *a}\n",
            "a: &a {name: x}\n<<: [*a, *a, *a]\n",
            "name: *undefined\n",
            "name: web1\nname: web2\n",
            "name: 2001-02-30\n",
            "name: 2001-13-01 25:61:61\n",
            "vcpus: 1" + "0" * 5000 + "\n",
            "vcpus: 0x" + "f" * 5000 + "\n",
            "vcpus: 1:" + "0:" * 3000 + "1\n",
            "memory: .nan\n",
            "memory: 1e400\n",
            "name: !!python/object/apply:os.system [true]\n",
            "name: !!binary '%%%'\n",
            "name: 'unterminated\n",
            "{[1, 2]: x}\n",
            "? [a, b]\n: c\n",
            "- just\n- a list\n",
            "",
            "name: web1\n---\nname: web2\n",
        ]
    ),
    with_bad_char(st.just("name: web1\n"), bad_yaml_chars),
    st.integers(1, 4).map(lambda n: "name: web1\n" + "# " + "x" * (n * 1024 * 1024) + "\n"),
    not_text,
)


@hostile_settings(250)
@given(bad_yaml)
def test_bad_yaml_is_refused(text: Any) -> None:
    refused(lambda: VMSpec.from_yaml(text), kind=InvalidSpec)


@pytest.fixture(scope="module")
def spec_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory of spec files that are no specs: not UTF-8, NUL bytes, too deep, alias bombs, a FIFO."""
    top = tmp_path_factory.mktemp("specs")
    (top / "latin1.yml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (top / "utf16.yml").write_bytes("name: web1\n".encode("utf-16"))
    (top / "invalid.yml").write_bytes(b"name: web1\n\xff\xfe\xc0\x80\xed\xa0\x80\n")
    (top / "nul.yml").write_bytes(b"name: we\0b1\n")
    (top / "deep.yml").write_text(_nested(100_000, "["))
    (top / "bomb.yml").write_text(_bomb(12, 10))
    (top / "big.yml").write_bytes(b"name: web1\n#" + b"x" * (8 * 1024 * 1024) + b"\n")
    os.mkfifo(top / "fifo.yml")
    (top / "dir.yml").mkdir()
    (top / "zero.yml").symlink_to("/dev/zero")
    (top / "loop.yml").symlink_to(top / "loop.yml")
    yield top


FILES = ["latin1", "utf16", "invalid", "nul", "deep", "bomb", "big", "fifo", "dir", "zero", "loop", "missing"]


@hostile_settings(150)
@given(
    st.one_of(
        st.sampled_from(FILES).map(lambda name: f"{name}.yml"),
        st.sampled_from(["/dev/zero", "/dev/stdin", "/proc/self/mem", "/", "\0", "a\0b", "x" * 5000, ""]),
        with_bad_char(st.just("web1.yml")),
        not_text.filter(lambda v: not isinstance(v, bytes)),
        st.none(),
    )
)
def test_a_spec_file_that_is_no_spec_is_refused(spec_files: Path, name: Any) -> None:
    path = spec_files / name if isinstance(name, str) and name.endswith(".yml") and "\0" not in name else name
    refused(lambda: VMSpec.from_file(path), kind=InvalidSpec)


# -- the concrete defects of the issue -------------------------------------------------------------------------------


def test_an_int_too_long_to_print_is_refused_with_a_short_message() -> None:
    for data in ({"name": "a", "vcpus": 10**5000}, {"name": "a", "memory": 10**5000}, {10**5000: 1}):
        refused(partial(VMSpec.from_dict, data), kind=InvalidSpec)
    refused(lambda: VMSpec.from_yaml("name: a\nvcpus: 1" + "0" * 5000), field="yaml")
    refused(lambda: parse_size("size", "9" * 5000), field="size")


def test_a_spec_with_thousands_of_disks_is_refused_at_once() -> None:
    disks = [{"path": f"{ROOT}/d{i}.qcow2"} for i in range(100_000)]
    refused(lambda: VMSpec.from_dict({"name": "a", "disks": disks}), field="disks")


def test_deeply_nested_yaml_is_refused_with_a_short_message() -> None:
    refused(lambda: VMSpec.from_yaml(_nested(100_000, "[")), field="yaml")


def test_a_yaml_alias_bomb_is_refused_with_a_short_message() -> None:
    refused(lambda: VMSpec.from_yaml(_bomb(12, 10)), field="yaml")


def test_a_spec_file_that_is_not_utf8_is_refused_naming_the_file(spec_files: Path) -> None:
    err = refused(lambda: VMSpec.from_file(spec_files / "latin1.yml"), field="file")
    assert "latin1.yml" in str(err) and "UTF-8" in str(err)


def test_a_spec_file_that_is_a_fifo_is_refused_at_once(spec_files: Path) -> None:
    refused(lambda: VMSpec.from_file(spec_files / "fifo.yml"), field="file")


@pytest.mark.parametrize("char", ["\0", "\x85", "\ud800", "\ufffe", "\U0010ffff", "\x9b"])
def test_a_bad_character_in_text_is_refused(char: str) -> None:
    refused(lambda: KernelBoot(Path(f"{ROOT}/vmlinuz"), cmdline=f"console=ttyS0{char}"), field="cmdline")
    refused(lambda: VMSpec.from_dict({"name": f"web{char}1"}), field="name")
    refused(lambda: DiskSpec(Path(f"{ROOT}/a{char}b.qcow2")), field="path")
    refused(lambda: CPUModel("EPYC", vendor=f"AMD{char}"), field="vendor")


@pytest.mark.parametrize("target", ["vd\xe9", "vd\xaa", "vd\u0430", "vd\uff41", "sd\u0131"])
def test_a_disk_target_that_is_not_ascii_is_refused(target: str) -> None:
    bus = DiskBus.SCSI if target.startswith("sd") else DiskBus.VIRTIO
    refused(lambda: DiskSpec(Path(f"{ROOT}/a.qcow2"), bus=bus, target=target), field="target")


@pytest.mark.parametrize(
    "size", ["0.5", "1.5B", "1.0000000000000000000000000000001KiB", "0.01K", "1." + "0" * 40 + "1"]
)
def test_a_size_with_a_fraction_of_a_byte_is_refused(size: str) -> None:
    refused(lambda: parse_size("size", size), field="size")


def test_duplicate_mac_addresses_in_one_spec_are_refused() -> None:
    nics = [{"kind": "user", "mac": "52:54:00:12:34:56"}, {"kind": "user", "mac": "52:54:00:12:34:56"}]
    refused(lambda: VMSpec.from_dict({"name": "a", "nics": nics}), field="nics[1].mac")


@pytest.mark.parametrize("timeout", [float("inf"), float("nan"), 1e300])
def test_an_infinite_or_nan_timeout_is_refused(timeout: float) -> None:
    refused(lambda: SSHConfig(**{**SSH, "connect_timeout": timeout}), field="connect_timeout")
    refused(lambda: MigrationTuning(timeout_min=timeout), field="timeout_min")


def test_tuning_and_ssh_config_load_from_dicts_with_field_paths_and_have_a_schema() -> None:
    assert MigrationTuning.from_dict({"bandwidth": 10, "downtime_delay": 5}) == MigrationTuning(
        bandwidth=10, downtime_delay=5.0
    )
    assert SSHConfig.from_dict(SSH) == SSHConfig(host="h", key_file=Path("/k"), known_hosts=Path("/kh"))
    with pytest.raises(InvalidSpec) as err:
        MigrationTuning.from_dict({"downtime": 5})
    assert err.value.field == "downtime"
    tuning = MigrationTuning.json_schema()["properties"]
    assert (tuning["throttle_initial"]["type"], tuning["throttle_initial"]["maximum"]) == ("integer", 99)
    assert (tuning["downtime_delay"]["type"], tuning["downtime_delay"]["exclusiveMinimum"]) == ("number", 0)
    ssh = SSHConfig.json_schema()["properties"]
    assert ssh["port"]["maximum"] == 65535 and ssh["user"]["pattern"].startswith("^")
