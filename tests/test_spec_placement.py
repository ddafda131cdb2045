"""What a spec says about where disks sit and what a VM's policies are, written into a definition and read back
(libvirt's test driver): SCSI addresses, libvirt's disk order, the policies in virtkit's metadata, q35 root ports."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

import virtkit
from virtkit import Accel, DiskSpec, InvalidSpec, VMSpec
from virtkit.backends.libvirt import design
from virtkit.backends.libvirt.xml.domain import canonical, parse, render, to_string
from virtkit.models.vm import AgentService, HostStopAction, SnapshotMode


def _spec(storage: Path, **fields: object) -> VMSpec:
    base: dict[str, object] = {"name": "place1", "memory": "64MiB"}
    return VMSpec.from_dict({**base, **fields})


def test_scsi_address_outside_scsi_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidSpec) as err:
        DiskSpec.from_dict({"path": "/var/lib/virtkit/a.qcow2", "bus": "virtio", "unit": 1})
    assert err.value.field == "unit" and "scsi" in err.value.reason
    with pytest.raises(InvalidSpec) as err:
        DiskSpec.from_dict({"path": "/var/lib/virtkit/a.qcow2", "bus": "scsi", "controller": 32})
    assert err.value.field == "controller"


def test_two_disks_at_one_scsi_address_are_refused(storage: Path) -> None:
    disk = {"bus": "scsi", "controller": 1, "unit": 3}
    with pytest.raises(InvalidSpec) as err:
        _spec(storage, disks=[{"path": str(storage / "a.qcow2"), **disk}, {"path": str(storage / "b.qcow2"), **disk}])
    assert err.value.field == "disks[1].unit" and "disks[0]" in err.value.reason


def test_scsi_addresses_are_written_and_free_units_chosen_around_named_ones(storage: Path) -> None:
    spec = _spec(
        storage,
        disks=[
            {"path": str(storage / "a.qcow2"), "bus": "scsi", "unit": 0, "controller": 0},
            {"path": str(storage / "b.qcow2"), "bus": "scsi"},
            {"path": str(storage / "c.qcow2"), "bus": "scsi", "controller": 2},
            {"path": str(storage / "d.qcow2"), "bus": "scsi", "controller": 2, "unit": 0},
        ],
    )
    root = render(spec, Accel.TCG)
    back = parse(to_string(root))
    assert [(d.target, d.controller, d.unit) for d in back.disks] == [
        ("sda", 0, 0),
        ("sdb", 0, 1),
        ("sdc", 2, 1),
        ("sdd", 2, 0),
    ]
    indexes = sorted(int(c.get("index", "0")) for c in root.iterfind("devices/controller[@type='scsi']"))
    assert indexes == [0, 2]


def test_mixed_buses_are_idempotent_in_any_order(host: virtkit.Host, storage: Path) -> None:
    """libvirt groups disks by bus: a spec listing scsi, virtio, scsi still reads back as the same VM."""
    spec = _spec(
        storage,
        disks=[
            {"path": str(storage / "a.qcow2"), "size": "1MiB", "bus": "scsi"},
            {"path": str(storage / "b.qcow2"), "size": "1MiB"},
            {"path": str(storage / "c.qcow2"), "size": "1MiB", "bus": "scsi", "controller": 1, "unit": 5},
        ],
    )
    assert host.create(spec).changed
    again = host.create(spec)
    assert not again.changed
    assert [d.target for d in host.get("place1").spec().disks] == ["sda", "sdb", "vda"]
    assert canonical(spec).disks[1].target == "sdb"


def test_policies_and_description_round_trip_and_defaults_write_nothing(host: virtkit.Host, storage: Path) -> None:
    spec = _spec(
        storage,
        guest_agent=True,
        agent_services=["file_copy", "heartbeat"],
        snapshot_mode="quiesced_only",
        on_host_stop="shutdown",
        description="web tier <b>&amp; notes</b>\nline two",
    )
    assert spec.agent_services == (AgentService.HEARTBEAT, AgentService.FILE_COPY)  # one order for one set
    host.create(spec)
    back = host.get("place1").spec()
    assert (back.snapshot_mode, back.on_host_stop, back.agent_services, back.description) == (
        SnapshotMode.QUIESCED_ONLY,
        HostStopAction.SHUTDOWN,
        (AgentService.HEARTBEAT, AgentService.FILE_COPY),
        "web tier <b>&amp; notes</b>\nline two",
    )
    plain = to_string(render(_spec(storage), Accel.TCG))
    assert "metadata" in plain and "snapshot-mode" not in plain and "agent-services" not in plain
    assert "description" not in plain


def test_policy_fields_refuse_bad_values(storage: Path) -> None:
    for field, value in (("snapshot_mode", "sometimes"), ("on_host_stop", "explode"), ("agent_services", ["vss"])):
        with pytest.raises(InvalidSpec) as err:
            _spec(storage, **{field: value})
        assert err.value.field.startswith(field)
    with pytest.raises(InvalidSpec, match="twice"):
        _spec(storage, agent_services=["heartbeat", "heartbeat"])
    with pytest.raises(InvalidSpec) as err:
        _spec(storage, description="x" * 5000)
    assert err.value.field == "description"


def test_a_new_q35_definition_has_spare_root_ports(conn: libvirt.virConnect, storage: Path) -> None:
    spec = _spec(storage, machine="q35", firmware="uefi", disks=[{"path": str(storage / "a.qcow2")}])
    root = render(spec, Accel.TCG)
    ports = root.findall("devices/controller[@model='pcie-root-port']")
    assert len(ports) >= design.SPARE_ROOT_PORTS
    assert next(c.get("index") for c in root.iterfind("devices/controller[@type='pci']")) == "0"
    assert not render(_spec(storage), Accel.TCG).findall("devices/controller[@type='pci']")  # pc: none added
    conn.defineXML(to_string(root))  # libvirt takes them
    again = ET.fromstring(conn.lookupByName("place1").XMLDesc(0))
    assert len(again.findall("devices/controller[@model='pcie-root-port']")) == len(ports)


def test_update_changes_a_stopped_vm_in_place_and_refuses_a_running_one(host: virtkit.Host, storage: Path) -> None:
    spec = _spec(storage, disks=[{"path": str(storage / "u.qcow2"), "size": "1MiB"}])
    host.create(spec)
    vm = host.get("place1")
    uuid = vm.info().uuid
    wider = spec.to_dict() | {
        "vcpus": 2,
        "description": "now two",
        "disks": [*spec.to_dict()["disks"], {"path": str(storage / "v.qcow2"), "size": "1MiB", "bus": "scsi"}],
    }
    check = vm.update(wider, check=True)
    assert check.check and check.after is not None and check.after.vcpus == 2
    assert not (storage / "v.qcow2").exists() and vm.spec().vcpus == 1
    change = vm.update(wider)
    assert change.changed and vm.spec().vcpus == 2 and vm.spec().description == "now two"
    assert (storage / "v.qcow2").exists() and vm.info().uuid == uuid
    assert not vm.update(wider).changed
    with pytest.raises(InvalidSpec) as err:
        vm.update(wider | {"name": "other"})
    assert err.value.field == "name"
    vm.start()
    with pytest.raises(virtkit.Conflict, match="stop it first"):
        vm.update(spec)


def test_add_scsi_controller_check_mode_predicts_the_next_index(host: virtkit.Host, storage: Path) -> None:
    host.create(_spec(storage, disks=[{"path": str(storage / "s.qcow2"), "size": "1MiB", "bus": "scsi"}]))
    vm = host.get("place1")
    change = vm.disks.add_scsi_controller(check=True)
    assert change.after is not None and (change.after.index, change.after.persistent) == (1, True)
    assert not vm.disks.add_scsi_controller(0, check=True).changed  # there already
    with pytest.raises(InvalidSpec) as err:
        vm.disks.add_scsi_controller(32)
    assert err.value.field == "controller"
