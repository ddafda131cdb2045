"""The site file: hosts and VMs read strictly, errors naming the field's path (no libvirt needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from virtkit.errors import InvalidSpec
from virtkit.models.vm import Machine
from virtkit.playbook import DesiredState, Placement, SiteSpec

EXAMPLE = Path(__file__).parent.parent / "examples" / "specs" / "site.yml"


def _site(*vms: dict[str, Any]) -> dict[str, Any]:
    return {"hosts": {"h1": {"uri": "qemu:///system"}, "h2": {"uri": "test:///default"}}, "vms": list(vms)}


def _error(data: object) -> InvalidSpec:
    with pytest.raises(InvalidSpec) as err:
        SiteSpec.from_dict(data)
    return err.value


def test_the_example_site_file_reads() -> None:
    site = SiteSpec.from_file(EXAMPLE)
    assert [h.name for h in site.hosts] == ["h1", "h2"]
    h1 = site.host("h1")
    assert h1.ssh is not None and h1.ssh.host == "h1"
    assert h1.storage_roots == (Path("/var/lib/virtkit/shared"),)
    web1, db1, old1 = site.vms
    assert (web1.host, web1.state, web1.checkpoints) == ("h1", DesiredState.RUNNING, ("installed",))
    assert web1.vm_spec.name == "web1"
    assert db1.placement is Placement.LEAST_MEMORY and db1.state is DesiredState.STOPPED
    assert db1.vm_spec.machine is Machine.Q35  # Generation 2, through HyperVSpec.to_spec
    assert old1.state is DesiredState.ABSENT and old1.host is None


def test_a_site_round_trips_through_plain_data() -> None:
    site = SiteSpec.from_file(EXAMPLE)
    assert SiteSpec.from_dict(json.loads(json.dumps(site.to_dict()))) == site


def test_defaults_state_running() -> None:
    site = SiteSpec.from_dict(_site({"name": "a", "host": "h1", "spec": {}}))
    assert site.vms[0].state is DesiredState.RUNNING


def test_json_schema_maps_host_names_to_hosts() -> None:
    schema = SiteSpec.json_schema()
    json.dumps(schema)
    hosts = schema["properties"]["hosts"]
    assert hosts["type"] == "object"
    assert "name" not in hosts["additionalProperties"]["properties"]
    assert hosts["additionalProperties"]["required"] == ["uri"]
    vm = schema["properties"]["vms"]["items"]
    assert vm["properties"]["state"]["enum"] == ["running", "stopped", "paused", "saved", "absent"]
    assert {"name", "spec", "hyperv", "state", "host", "placement", "checkpoints", "revert_to"} == set(vm["properties"])


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        (_site({"name": "a", "host": "h9", "spec": {}}), "vms[0].host", "'h9' is not a host of this site"),
        (
            _site({"name": "a", "host": "h1", "spec": {}}, {"name": "b", "host": "h1", "spec": {}}, {"name": "c"}),
            "vms[2].spec",
            "exactly one of spec and hyperv",
        ),
        (_site({"name": "a", "host": "h1", "spec": {}, "hyperv": {}}), "vms[0].spec", "exactly one"),
        (_site({"name": "a", "host": "h1", "spec": {}, "state": "gone"}), "vms[0].state", "'gone' is not valid"),
        (
            _site({"name": "a", "host": "h1", "spec": {}}, {"name": "a", "host": "h2", "spec": {}}),
            "vms[1].name",
            "vms[0]",
        ),
        (_site({"name": "a", "spec": {}}), "vms[0].host", "is required"),
        (
            _site({"name": "a", "host": "h1", "placement": "least-memory", "spec": {}}),
            "vms[0].placement",
            "not both",
        ),
        (_site({"name": "a", "placement": "most-cpu", "spec": {}}), "vms[0].placement", "not valid"),
        (_site({"name": "a", "host": "h1", "spec": {"name": "b"}}), "vms[0].spec.name", "not the VM's name"),
        (_site({"name": "a", "host": "h1", "hyperv": {"Name": "b"}}), "vms[0].hyperv.Name", "not the VM's name"),
        (_site({"name": "a", "host": "h1", "spec": {"memory": "lots"}}), "vms[0].spec.memory", ""),
        (
            _site(
                {
                    "name": "a",
                    "host": "h1",
                    "hyperv": {"Generation": 2, "HardDrives": [{"Path": "/x/a.vhdx", "ControllerType": "IDE"}]},
                }
            ),
            "vms[0].hyperv.HardDrives[0].ControllerType",
            "IDE",
        ),
        (_site({"name": "a", "host": "h1", "spec": {}, "checkpoints": ["x", "x"]}), "vms[0].checkpoints", "twice"),
        (_site({"name": "a", "host": "h1", "spec": {}, "checkpoints": ["a b"]}), "vms[0].checkpoints[0]", ""),
        (_site({"name": "a", "host": "h1", "spec": {}, "disks": []}), "vms[0].disks", "unknown field"),
        (_site({"name": "-a", "host": "h1", "spec": {}}), "vms[0].name", ""),
        ({"hosts": {"h1": {"uri": "nope"}}}, "hosts.h1.uri", "not a libvirt URI"),
        ({"hosts": {"h1": {"uri": "qemu:///system", "name": "x"}}}, "hosts.h1.name", "its key"),
        ({"hosts": {"h1": {"uri": "qemu:///system", "ssh": {"host": "h1"}}}}, "hosts.h1.ssh.key_file", "required"),
        ({"hosts": {"h1": "qemu:///system"}}, "hosts.h1", "mapping"),
        ({"hosts": {"bad name": {"uri": "qemu:///system"}}}, "hosts", ""),
        ({"hosts": [{"uri": "qemu:///system"}]}, "hosts", "mapping of host names"),
        ({"vms": []}, "hosts", "required"),
        ({"hosts": {}, "vms": {}}, "vms", "must be a list"),
        (
            {"hosts": {}, "vms": [{"name": "a", "placement": "least-memory", "spec": {}}]},
            "vms[0].placement",
            "no hosts",
        ),
        ({"hosts": {}, "extra": 1}, "extra", "unknown field"),
        ([], "site", "mapping"),
        ("hosts: {}", "site", "mapping"),
    ],
)
def test_bad_sites_are_refused_naming_the_field(data: object, field: str, words: str) -> None:
    err = _error(data)
    assert err.field == field
    assert words in err.reason


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "hosts: [\n"])
def test_a_file_that_is_no_mapping_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "site.yml"
    path.write_text(text)
    with pytest.raises(InvalidSpec) as err:
        SiteSpec.from_file(path)
    assert err.value.field in ("site", "yaml")


def test_a_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec) as err:
        SiteSpec.from_file(tmp_path / "nope.yml")
    assert err.value.field == "file"


def test_an_absent_vm_needs_no_host() -> None:
    site = SiteSpec.from_dict(_site({"name": "gone", "state": "absent", "spec": {}}))
    assert site.vms[0].host is None and site.vms[0].placement is None


def test_host_lookup_refuses_an_unknown_name() -> None:
    site = SiteSpec.from_dict(_site())
    assert site.host("h2").uri == "test:///default"
    with pytest.raises(InvalidSpec):
        site.host("h3")


def test_the_lab_site_example_loads() -> None:
    site = SiteSpec.from_file(EXAMPLE.with_name("lab-site.yml"))
    assert [h.name for h in site.hosts] == ["host1", "host2"] and [v.name for v in site.vms] == ["site1", "site2"]
