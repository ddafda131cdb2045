"""The Hyper-V spec: Hyper-V's names in, the neutral spec out and back, errors naming the Hyper-V field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from virtkit import DiskBus, DiskFormat, DiskKind, Firmware, InvalidSpec, Machine, NicModel, Unsupported, VMSpec
from virtkit.hyperv import CheckpointType, ControllerType, HyperVSpec, SecureBootTemplate
from virtkit.hyperv.vocabulary import HyperVState, vm_state
from virtkit.models.state import VMState
from virtkit.models.vm import AgentService, HostStopAction, SnapshotMode

ROOT = Path("/var/lib/virtkit/shared")

GEN2_YAML = f"""
Name: web1
Generation: 2
MemoryStartupBytes: 2GB
ProcessorCount: 4
SecureBoot: On
HardDrives:
  - Path: {ROOT}/web1.vhdx
  - Path: {ROOT}/data.qcow2
    ControllerNumber: 1
    ControllerLocation: 7
NetworkAdapters:
  - SwitchName: default
    MacAddress: 00155D010203
CheckpointType: ProductionOnly
AutomaticStopAction: ShutDown
IntegrationServices:
  Guest Service Interface: On
  VSS: Off
Notes: |
  Web tier.
  Owner: ops
"""


def test_generation2_yaml_maps_to_q35_uefi_secure_boot_and_scsi() -> None:
    hv = HyperVSpec.from_yaml(GEN2_YAML)
    spec = hv.to_spec()
    assert (spec.machine, spec.firmware, spec.secure_boot) == (Machine.Q35, Firmware.UEFI, True)
    assert (spec.vcpus, spec.memory) == (4, 2 * 1024**3)
    boot, data = spec.disks
    # The VHDX runs from its qcow2 import beside it; the original is named by imports().
    assert (boot.path, boot.format, boot.bus) == (ROOT / "web1.vhdx.qcow2", DiskFormat.QCOW2, DiskBus.SCSI)
    assert hv.imports() == [(ROOT / "web1.vhdx", ROOT / "web1.vhdx.qcow2")]
    assert (data.bus, data.controller, data.unit) == (DiskBus.SCSI, 1, 7)
    (nic,) = spec.nics
    assert (nic.source, nic.mac, nic.model) == ("default", "00:15:5d:01:02:03", NicModel.VIRTIO)
    assert spec.snapshot_mode is SnapshotMode.QUIESCED_ONLY and spec.on_host_stop is HostStopAction.SHUTDOWN
    assert spec.guest_agent and AgentService.FILE_COPY in spec.agent_services
    assert AgentService.FS_FREEZE not in spec.agent_services
    assert spec.description == "Web tier.\nOwner: ops\n"
    assert hv.secure_boot_template is SecureBootTemplate.MICROSOFT_UEFI_CA


def test_generation1_defaults_are_hyperv_defaults_on_pc_bios_ide() -> None:
    hv = HyperVSpec.from_dict({"Name": "old1", "HardDrives": [{"Path": f"{ROOT}/a.vhd"}, {"Path": f"{ROOT}/b.img"}]})
    assert (hv.generation, hv.checkpoint_type, hv.secure_boot) == (1, CheckpointType.PRODUCTION, False)
    spec = hv.to_spec()
    assert (spec.machine, spec.firmware, spec.memory) == (Machine.PC, Firmware.BIOS, 512 * 1024**2)
    assert [(d.bus, d.target, d.format) for d in spec.disks] == [
        (DiskBus.IDE, "hda", DiskFormat.QCOW2),
        (DiskBus.IDE, "hdb", DiskFormat.RAW),
    ]
    assert [(d.controller_number, d.controller_location) for d in hv.hard_drives] == [(0, 0), (0, 1)]


def test_ide_locations_map_to_targets_and_a_fifth_ide_drive_is_refused() -> None:
    drives = [{"Path": f"{ROOT}/d{i}.qcow2"} for i in range(4)]
    drives[0] |= {"ControllerNumber": 1, "ControllerLocation": 1}
    spec = HyperVSpec.from_dict({"Name": "ide1", "HardDrives": drives}).to_spec()
    assert [d.target for d in spec.disks] == ["hdd", "hda", "hdb", "hdc"]
    with pytest.raises(InvalidSpec) as err:
        HyperVSpec.from_dict({"Name": "ide1", "HardDrives": [*drives, {"Path": f"{ROOT}/e.qcow2"}]})
    assert err.value.field == "HardDrives[4].ControllerType" and "SCSI" in err.value.reason


def test_neutral_spec_reads_back_in_hyperv_terms() -> None:
    hv = HyperVSpec.from_yaml(GEN2_YAML.replace("web1.vhdx", "web1.qcow2"))
    back = HyperVSpec.from_spec(hv.to_spec())
    assert back.to_spec() == hv.to_spec()
    assert back.hard_drives[1].controller_number == 1 and back.network_adapters[0].mac_address == "00155D010203"
    assert back.integration_services == hv.integration_services and back.notes == hv.notes
    gen1 = HyperVSpec.from_dict({"Name": "g1", "HardDrives": [{"Path": f"{ROOT}/a.qcow2", "ControllerNumber": 1}]})
    assert HyperVSpec.from_spec(gen1.to_spec()) == gen1


def test_a_neutral_vm_with_no_hyperv_form_is_said_so() -> None:
    odd = VMSpec(name="odd", machine=Machine.Q35, firmware=Firmware.BIOS)
    with pytest.raises(Unsupported, match="no Hyper-V generation"):
        HyperVSpec.from_spec(odd)
    lab = VMSpec.from_dict(
        {"name": "lab", "kernel": {"kernel": f"{ROOT}/vmlinuz"}, "disks": [{"path": f"{ROOT}/x", "bus": "virtio"}]}
    )
    loose = HyperVSpec.from_spec(lab)  # what has a Hyper-V word is kept
    assert loose.hard_drives[0].controller_type is ControllerType.VIRTIO
    assert loose.hard_drives[0].format is DiskFormat.QCOW2  # no extension: the format is said
    with pytest.raises(Unsupported, match="kernel"):
        HyperVSpec.from_spec(lab, strict=True)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"Name": "x", "Generation": 3}, "Generation"),
        ({"Name": "x", "SecureBoot": "On"}, "SecureBoot"),
        ({"Name": "x", "SecureBootTemplate": "MicrosoftUEFICertificateAuthority"}, "SecureBootTemplate"),
        (
            {"Name": "x", "Generation": 2, "HardDrives": [{"Path": "/a.qcow2", "ControllerType": "IDE"}]},
            "HardDrives[0].ControllerType",
        ),
        (
            {"Name": "x", "HardDrives": [{"Path": "/a.qcow2", "ControllerType": "IDE", "ControllerNumber": 2}]},
            "HardDrives[0].ControllerNumber",
        ),
        ({"Name": "x", "HardDrives": [{"Path": "/a.iso"}]}, "HardDrives[0].Path"),
        ({"Name": "x", "HardDrives": [{"Path": "/a.qcow2"}, {"Path": "/a.qcow2"}]}, "HardDrives[1].Path"),
        (
            {"Name": "x", "Generation": 2, "NetworkAdapters": [{"SwitchName": "lan", "IsLegacy": True}]},
            "NetworkAdapters[0].IsLegacy",
        ),
        (
            {"Name": "x", "NetworkAdapters": [{"SwitchName": "lan", "MacAddress": "00155D01020"}]},
            "NetworkAdapters[0].MacAddress",
        ),
        (
            {
                "Name": "x",
                "NetworkAdapters": [
                    {"SwitchName": "a", "MacAddress": "00155D010203"},
                    {"SwitchName": "b", "MacAddress": "00-15-5D-01-02-03"},
                ],
            },
            "NetworkAdapters[1].MacAddress",
        ),
        ({"Name": "x", "ProcessorCount": 241}, "ProcessorCount"),
        ({"Name": "x", "MemoryStartupBytes": "1PB"}, "MemoryStartupBytes"),
        ({"Name": "x", "CheckpointType": "Sometimes"}, "CheckpointType"),
        ({"Name": "x", "IntegrationServices": {"Heartbeat": "maybe"}}, "IntegrationServices.Heartbeat"),
        ({"Name": "x", "DynamicMemoryEnabled": True}, "DynamicMemoryEnabled"),
        ({"Name": "bad name"}, "Name"),
        ({"Generation": 2}, "Name"),
    ],
)
def test_bad_input_names_the_hyperv_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        HyperVSpec.from_dict(data)
    assert err.value.field == field


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        ({"Name": "x", "Generation": 2, "SecureBootTemplate": "MicrosoftWindows"}, "MicrosoftUEFICertificateAuthority"),
        ({"Name": "x", "Generation": 2, "SecureBootTemplate": "OpenSourceShieldedVM"}, "shielded"),
        ({"Name": "x", "HardDrives": [{"Path": "/a/web1_8F2E.avhdx"}]}, "Merge-VHD"),
    ],
)
def test_values_kvm_cannot_honour_are_unsupported_with_what_would_work(data: dict[str, object], hint: str) -> None:
    with pytest.raises(Unsupported, match=hint):
        HyperVSpec.from_dict(data)


def test_pass_through_path_is_a_raw_block_disk() -> None:
    spec = HyperVSpec.from_dict({"Name": "pt", "Generation": 2, "HardDrives": [{"Path": "/dev/loop7"}]}).to_spec()
    assert (spec.disks[0].kind, spec.disks[0].format, spec.disks[0].bus) == (
        DiskKind.BLOCK,
        DiskFormat.RAW,
        DiskBus.SCSI,
    )


def test_yaml_round_trip_and_json_schema_use_hyperv_names() -> None:
    hv = HyperVSpec.from_yaml(GEN2_YAML)
    assert HyperVSpec.from_yaml(hv.to_yaml()) == hv
    text = hv.to_yaml()
    assert "SecureBoot: 'On'" in text and "MemoryStartupBytes: 2GiB" in text
    schema = HyperVSpec.json_schema()
    json.dumps(schema)
    assert {"Name", "Generation", "HardDrives", "IntegrationServices"} <= set(schema["properties"])
    drive = schema["properties"]["HardDrives"]["items"]["properties"]
    assert {"Path", "ControllerType", "ControllerNumber", "ControllerLocation"} <= set(drive)
    assert schema["required"] == ["Name"]


@pytest.mark.parametrize(
    ("state", "reason", "expected"),
    [
        (VMState.RUNNING, "booted", HyperVState.RUNNING),
        (VMState.STOPPED, "shutdown", HyperVState.OFF),
        (VMState.SAVED, "saved", HyperVState.SAVED),
        (VMState.PAUSED, "user", HyperVState.PAUSED),
        (VMState.PAUSED, "save", HyperVState.SAVING),
        (VMState.PAUSED, "starting_up", HyperVState.STARTING),
        (VMState.PAUSED, "ioerror", HyperVState.PAUSED_CRITICAL),
        (VMState.SHUTTING_DOWN, "user", HyperVState.STOPPING),
        (VMState.MIGRATING, "migration", HyperVState.RUNNING),
        (VMState.CRASHED, "unknown", HyperVState.OTHER),
    ],
)
def test_hyperv_states(state: VMState, reason: str, expected: HyperVState) -> None:
    assert vm_state(state, reason) is expected


@pytest.mark.parametrize(("generation", "controller"), [(1, "IDE"), (2, "SCSI")])
def test_two_drives_at_one_location_name_the_second(generation: int, controller: str) -> None:
    drives = [
        {"Path": f"/var/lib/virtkit/{n}.qcow2", "ControllerType": controller, "ControllerNumber": 0,
         "ControllerLocation": 1}
        for n in ("a", "b")
    ]  # fmt: skip
    with pytest.raises(InvalidSpec) as err:
        HyperVSpec.from_dict({"Name": "twice", "Generation": generation, "HardDrives": drives})
    assert err.value.field == "HardDrives[1].ControllerLocation"
    assert f"{controller} 0:1 holds HardDrives[0] already" in err.value.reason
