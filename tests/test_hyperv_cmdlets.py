"""The cmdlet-shaped calls on libvirt's test driver: what they change, what -WhatIf (check mode) predicts, what
bad input leaves (nothing). Hot-plug and real firmware are proven on real daemons (integration/test_hyperv.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import virtkit
from virtkit import AlreadyExists, Conflict, InvalidSpec, NotFound, Unsupported, VMState, hyperv
from virtkit.hyperv import CheckpointType, ControllerType, HyperVState


def _listing(storage: Path) -> list[str]:
    return sorted(os.listdir(storage))


def _vhdx(storage: Path, name: str = "disk.vhdx", size: str = "8M") -> Path:
    path = storage / name
    subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", str(path), size], check=True)
    return path


def test_new_vm_imports_vhdx_defines_generation2_and_is_idempotent(host: virtkit.Host, storage: Path) -> None:
    vhdx = _vhdx(storage)
    spec = {"Name": "hv1", "Generation": 2, "MemoryStartupBytes": "64MB", "HardDrives": [{"Path": str(vhdx)}]}
    seen: list[tuple[str, float]] = []
    change = hyperv.new_vm(host, spec, progress=lambda field, pct: seen.append((field, pct)))
    assert change.changed and change.after is not None and change.after.state is VMState.STOPPED
    assert seen and seen[-1] == ("HardDrives[0].Path", 100.0)
    assert (storage / "disk.vhdx.qcow2").exists() and vhdx.exists()  # imported; the original kept
    vm = hyperv.get_vm(host, "hv1")
    assert (vm.state, vm.generation, vm.checkpoint_type) == (HyperVState.OFF, 2, CheckpointType.PRODUCTION)
    assert vm.spec is not None and vm.spec.secure_boot
    assert vm.to_dict()["State"] == "Off"
    assert not hyperv.new_vm(host, spec).changed
    with pytest.raises(AlreadyExists):
        hyperv.new_vm(host, {**spec, "ProcessorCount": 2})


def test_new_vm_what_if_checks_everything_and_changes_nothing(host: virtkit.Host, storage: Path) -> None:
    vhdx = _vhdx(storage)
    before = _listing(storage)
    change = hyperv.new_vm(host, {"Name": "hv2", "Generation": 2, "HardDrives": [{"Path": str(vhdx)}]}, what_if=True)
    assert change.check and change.changed and change.after is not None
    assert _listing(storage) == before and not host.exists("hv2")


@pytest.mark.parametrize(
    ("make", "field"),
    [
        ("text", "HardDrives[0].Path"),  # a .vhdx that is no VHDX
        ("missing", "HardDrives[0].Path"),
        ("outside", "HardDrives[0].Path"),
    ],
)
def test_new_vm_bad_drive_names_the_field_and_leaves_nothing(
    host: virtkit.Host, storage: Path, tmp_path: Path, make: str, field: str
) -> None:
    path = storage / "fake.vhdx"
    if make == "text":
        path.write_bytes(b"not a disk image at all" * 100)
    elif make == "outside":
        path = tmp_path / "elsewhere.vhdx"
        _vhdx(tmp_path, "elsewhere.vhdx")
    before = _listing(storage)
    with pytest.raises(InvalidSpec) as err:
        hyperv.new_vm(host, {"Name": "bad1", "HardDrives": [{"Path": str(path)}]})
    assert err.value.field == field
    assert _listing(storage) == before and not host.exists("bad1")


def test_com_port1_is_the_serial_log_inside_the_roots(host: virtkit.Host, storage: Path, tmp_path: Path) -> None:
    log = storage / "com1.log"
    hyperv.new_vm(host, {"Name": "com1", "MemoryStartupBytes": "64MB", "ComPort1": str(log)})
    vm = hyperv.get_vm(host, "com1")
    assert vm.spec is not None and vm.spec.com_port1 == log
    assert host.get("com1").spec().serial_log == log
    with pytest.raises(InvalidSpec) as err:
        hyperv.new_vm(host, {"Name": "com2", "MemoryStartupBytes": "64MB", "ComPort1": str(tmp_path / "x.log")})
    assert err.value.field == "ComPort1" and not host.exists("com2")


def test_new_vm_that_fails_to_define_removes_its_imports(host: virtkit.Host, storage: Path) -> None:
    vhdx = _vhdx(storage)
    # A network adapter on a switch the host does not have: define succeeds on the test driver, so make the
    # failure a name clash instead, a VM of that name with another definition.
    hyperv.new_vm(host, {"Name": "clash", "MemoryStartupBytes": "64MB"})
    before = _listing(storage)
    copied: list[float] = []
    with pytest.raises(AlreadyExists):
        hyperv.new_vm(
            host, {"Name": "clash", "HardDrives": [{"Path": str(vhdx)}]}, progress=lambda f, p: copied.append(p)
        )
    assert _listing(storage) == before
    assert copied == []  # the clash was found before any copy began


def test_lifecycle_cmdlets_walk_the_hyperv_states(host: virtkit.Host, storage: Path) -> None:
    hyperv.new_vm(host, {"Name": "life1", "MemoryStartupBytes": "64MB"})
    assert hyperv.start_vm(host, "life1").changed
    assert hyperv.get_vm(host, "life1").state is HyperVState.RUNNING
    assert hyperv.suspend_vm(host, "life1", what_if=True).check
    assert hyperv.get_vm(host, "life1").state is HyperVState.RUNNING
    hyperv.suspend_vm(host, "life1")
    assert hyperv.get_vm(host, "life1").state is HyperVState.PAUSED
    hyperv.resume_vm(host, "life1")
    hyperv.save_vm(host, "life1")
    assert hyperv.get_vm(host, "life1").state is HyperVState.SAVED
    hyperv.start_vm(host, "life1")
    assert hyperv.restart_vm(host, "life1").acted
    hyperv.stop_vm(host, "life1", turn_off=True)
    assert hyperv.get_vm(host, "life1").state is HyperVState.OFF
    assert [v.name for v in hyperv.get_vm(host)] == ["life1"] or "life1" in [v.name for v in hyperv.get_vm(host)]
    with pytest.raises(InvalidSpec) as err:
        hyperv.stop_vm(host, "life1", turn_off=True, save=True)
    assert err.value.field == "save"
    with pytest.raises(InvalidSpec):
        hyperv.restart_vm(host, "life1", type="Kick")
    hyperv.remove_vm(host, "life1")
    with pytest.raises(NotFound):
        hyperv.get_vm(host, "life1")


def test_remove_vm_refuses_a_running_vm_without_force_and_keeps_its_drives(host: virtkit.Host, storage: Path) -> None:
    disk = storage / "rm1.qcow2"
    with pytest.raises(InvalidSpec) as err:  # New-VM attaches existing drives only
        hyperv.new_vm(host, {"Name": "rm1", "HardDrives": [{"Path": str(disk)}]})
    assert err.value.field == "HardDrives[0].Path" and not host.exists("rm1")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "1M"], check=True)
    hyperv.new_vm(host, {"Name": "rm1", "MemoryStartupBytes": "64MB", "HardDrives": [{"Path": str(disk)}]})
    hyperv.start_vm(host, "rm1")
    with pytest.raises(Conflict):
        hyperv.remove_vm(host, "rm1")
    assert hyperv.remove_vm(host, "rm1", force=True, what_if=True).check and host.exists("rm1")
    hyperv.remove_vm(host, "rm1", force=True)
    assert not host.exists("rm1") and disk.exists()


def test_set_vm_firmware_switches_secure_boot_of_a_stopped_generation2_vm(host: virtkit.Host) -> None:
    hyperv.new_vm(host, {"Name": "fw1", "Generation": 2, "MemoryStartupBytes": "64MB"})
    change = hyperv.set_vm_firmware(host, "fw1", enable_secure_boot="Off", what_if=True)
    assert change.check and change.after is not None and not change.after.secure_boot
    assert hyperv.get_vm(host, "fw1").spec.secure_boot  # type: ignore[union-attr]
    hyperv.set_vm_firmware(host, "fw1", enable_secure_boot="Off")
    assert not host.get("fw1").spec().secure_boot
    assert not hyperv.set_vm_firmware(host, "fw1", enable_secure_boot=False).changed
    with pytest.raises(Unsupported, match="MicrosoftUEFICertificateAuthority"):
        hyperv.set_vm_firmware(host, "fw1", secure_boot_template="MicrosoftWindows")
    hyperv.start_vm(host, "fw1")
    with pytest.raises(Conflict, match="stop it first"):
        hyperv.set_vm_firmware(host, "fw1", enable_secure_boot="On")
    hyperv.new_vm(host, {"Name": "fw2", "MemoryStartupBytes": "64MB"})
    with pytest.raises(InvalidSpec) as err:
        hyperv.set_vm_firmware(host, "fw2", enable_secure_boot="On")
    assert err.value.field == "enable_secure_boot"


def test_ide_drives_change_only_while_off_and_list_with_their_locations(host: virtkit.Host, storage: Path) -> None:
    a = storage / "a.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(a), "1M"], check=True)
    vhdx = _vhdx(storage, "b.vhdx")
    hyperv.new_vm(host, {"Name": "ide1", "MemoryStartupBytes": "64MB", "HardDrives": [{"Path": str(a)}]})
    change = hyperv.add_vm_hard_disk_drive(host, "ide1", vhdx, controller_number=1, controller_location=0)
    assert change.changed and (storage / "b.vhdx.qcow2").exists()
    drives = hyperv.get_vm_hard_disk_drive(host, "ide1")
    assert [(d.controller_type, d.controller_number, d.controller_location, d.path.name) for d in drives] == [
        (ControllerType.IDE, 0, 0, "a.qcow2"),
        (ControllerType.IDE, 1, 0, "b.vhdx.qcow2"),
    ]
    assert not hyperv.add_vm_hard_disk_drive(host, "ide1", vhdx).changed  # attached already
    hyperv.start_vm(host, "ide1")
    with pytest.raises(Conflict, match="IDE drives change only while the VM is off"):
        hyperv.remove_vm_hard_disk_drive(
            host, "ide1", controller_type="IDE", controller_number=1, controller_location=0
        )
    hyperv.stop_vm(host, "ide1", turn_off=True)
    hyperv.remove_vm_hard_disk_drive(host, "ide1", controller_type="IDE", controller_number=1, controller_location=0)
    assert len(hyperv.get_vm_hard_disk_drive(host, "ide1")) == 1
    assert (storage / "b.vhdx.qcow2").exists()  # the file stays, as on Hyper-V


def test_drive_cmdlets_refuse_bad_input_naming_the_field(host: virtkit.Host, storage: Path) -> None:
    hyperv.new_vm(host, {"Name": "bad2", "Generation": 2, "MemoryStartupBytes": "64MB"})
    for kwargs, field in (
        ({"controller_type": "IDE"}, "ControllerType"),  # Generation 2 has no IDE controller
        ({"controller_type": "Floppy"}, "ControllerType"),
        ({"controller_location": -1}, "ControllerLocation"),
    ):
        with pytest.raises(InvalidSpec) as err:
            hyperv.add_vm_hard_disk_drive(host, "bad2", storage / "x.qcow2", **kwargs)  # type: ignore[arg-type]
        assert err.value.field == field
    with pytest.raises(InvalidSpec) as err:
        hyperv.remove_vm_hard_disk_drive(host, "bad2", controller_type="SCSI")
    assert err.value.field == "ControllerLocation"


def test_a_vhdx_drive_is_removed_by_the_path_it_was_added_with(host: virtkit.Host, storage: Path) -> None:
    data = _vhdx(storage, "data.vhdx")
    hyperv.new_vm(host, {"Name": "rm1", "MemoryStartupBytes": "64MB", "HardDrives": [{"Path": str(data)}]})
    assert [d.path for d in hyperv.get_vm_hard_disk_drive(host, "rm1")] == [storage / "data.vhdx.qcow2"]
    assert hyperv.remove_vm_hard_disk_drive(host, "rm1", path=data).changed
    assert hyperv.get_vm_hard_disk_drive(host, "rm1") == []


def test_a_scsi_location_alone_is_on_controller_0_and_stays_idempotent(host: virtkit.Host, storage: Path) -> None:
    disk = _vhdx(storage, "loc.vhdx")
    spec = {"Name": "loc1", "Generation": 2, "MemoryStartupBytes": "64MB",
            "HardDrives": [{"Path": str(disk), "ControllerLocation": 3}]}  # fmt: skip
    assert hyperv.new_vm(host, spec).changed
    (drive,) = hyperv.get_vm_hard_disk_drive(host, "loc1")
    assert (drive.controller_number, drive.controller_location) == (0, 3)
    assert not hyperv.new_vm(host, spec).changed


def test_remove_drive_checks_its_timeout_before_anything(host: virtkit.Host) -> None:
    hyperv.new_vm(host, {"Name": "rm2", "MemoryStartupBytes": "64MB"})
    with pytest.raises(InvalidSpec) as err:
        hyperv.remove_vm_hard_disk_drive(
            host,
            "rm2",
            controller_type="IDE",
            controller_number=0,
            controller_location=0,
            timeout="x",  # type: ignore[arg-type]
        )
    assert err.value.field == "timeout"
    with pytest.raises(InvalidSpec) as err:
        hyperv.new_vm(host, {"Name": "rm3"}, progress=3)  # type: ignore[arg-type]
    assert err.value.field == "progress" and not host.exists("rm3")


def test_ide_add_errors_name_this_calls_parameters(host: virtkit.Host, storage: Path) -> None:
    for n in "abcde":
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(storage / f"{n}.qcow2"), "1M"], check=True)
    hyperv.new_vm(
        host, {"Name": "ide1", "MemoryStartupBytes": "64MB", "HardDrives": [{"Path": str(storage / "a.qcow2")}]}
    )
    with pytest.raises(Conflict, match=r"IDE 0:0 of ide1 holds .*a\.qcow2 already"):
        hyperv.add_vm_hard_disk_drive(host, "ide1", storage / "b.qcow2", controller_number=0, controller_location=0)
    for n in "bcd":
        hyperv.add_vm_hard_disk_drive(host, "ide1", storage / f"{n}.qcow2")
    with pytest.raises(InvalidSpec) as err:
        hyperv.add_vm_hard_disk_drive(host, "ide1", storage / "e.qcow2")
    assert err.value.field == "ControllerType" and "four drives" in err.value.reason


def test_set_vm_firmware_on_generation1_names_the_parameter_given(host: virtkit.Host) -> None:
    hyperv.new_vm(host, {"Name": "fw1", "MemoryStartupBytes": "64MB"})
    for kwargs, field in (
        ({"enable_secure_boot": "On"}, "enable_secure_boot"),
        ({"secure_boot_template": "MicrosoftUEFICertificateAuthority"}, "secure_boot_template"),
    ):
        with pytest.raises(InvalidSpec) as err:
            hyperv.set_vm_firmware(host, "fw1", **kwargs)  # type: ignore[arg-type]
        assert err.value.field == field and "Generation 1" in err.value.reason
