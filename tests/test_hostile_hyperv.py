"""Hostile input to every entry point of virtkit.hyperv on libvirt's test driver: the spec, the VM and drive cmdlets,
the VHD cmdlets, Export-VM and the checkpoint cmdlets. Each bad argument is refused with a VirtkitError (an
InvalidSpec naming the argument as Hyper-V names it, for a malformed value), short and printable; nothing else
escapes, nothing hangs, and nothing changes: every domain and every file of the world is as it was (tests/hostile.py).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from hostile import (
    CHAINED_OUT,
    NOT_FILES,
    World,
    aimed,
    bad_chars,
    bad_enums,
    bad_ints,
    bad_names,
    bad_sizes,
    long_strings,
    not_bools,
    not_text,
    places,
    refused,
    with_bad_char,
)
from hostile import hostile as hostile_settings
from virtkit import NotFound, VirtkitError, hyperv
from virtkit.hyperv import HyperVSpec
from virtkit.models.disk import MAX_SCSI_CONTROLLER, MAX_SCSI_UNIT

#: Paths a drive or a disk call must refuse: not files, chains that leave the root, content that is no image of the
#: format the name says, places outside the roots and malformed paths.
bad_drive_paths = places(*NOT_FILES, *CHAINED_OUT, "text.txt", "junk.bin", "image.avhdx", "missing.vhdx")
bad_on_off = st.one_of(
    not_bools.filter(lambda v: v is not None and v not in ("On", "Off")), st.sampled_from(["on ", "Yes", "2"])
)


@st.composite
def hostile_specs(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A Hyper-V spec with one bad field, and that field's name."""
    spec: dict[str, Any] = {"Name": "hv-hostile", "Generation": 2, "MemoryStartupBytes": "64MB"}
    field = draw(
        st.sampled_from(
            [
                "Name", "Generation", "MemoryStartupBytes", "ProcessorCount", "SecureBoot", "SecureBootTemplate",
                "HardDrives", "HardDrives[0].Path", "HardDrives[0].ControllerType", "HardDrives[0].ControllerNumber",
                "HardDrives[0].ControllerLocation", "NetworkAdapters[0].MacAddress", "CheckpointType",
                "AutomaticStopAction", "IntegrationServices", "Notes", "ComPort1", "Unknown",
            ]
        )
    )  # fmt: skip
    drive: dict[str, Any] = {"Path": "/var/lib/virtkit/hostile-none.qcow2"}
    if field == "Name":
        spec["Name"] = draw(bad_names)
    elif field == "Generation":
        spec["Generation"] = draw(bad_ints(1, 2))
    elif field == "MemoryStartupBytes":
        spec["MemoryStartupBytes"] = draw(bad_sizes)
    elif field == "ProcessorCount":
        spec["ProcessorCount"] = draw(bad_ints(1, 240))
    elif field == "SecureBoot":
        spec["SecureBoot"] = draw(bad_on_off)
    elif field == "SecureBootTemplate":
        spec["SecureBootTemplate"] = draw(bad_enums("MicrosoftUEFICertificateAuthority"))
    elif field == "HardDrives":
        spec["HardDrives"] = draw(st.one_of(not_text.filter(lambda v: not isinstance(v, list)), st.just("x")))
    elif field == "HardDrives[0].Path":
        spec["HardDrives"] = [{"Path": draw(bad_drive_paths)}]
    elif field == "HardDrives[0].ControllerType":
        spec["HardDrives"] = [{**drive, "ControllerType": draw(bad_enums("IDE", "SCSI", "VirtIO", "SATA"))}]
    elif field == "HardDrives[0].ControllerNumber":
        number = draw(bad_ints(0, MAX_SCSI_CONTROLLER).filter(lambda v: v is not None))
        spec["HardDrives"] = [{**drive, "ControllerType": "SCSI", "ControllerNumber": number}]
    elif field == "HardDrives[0].ControllerLocation":
        location = draw(bad_ints(0, MAX_SCSI_UNIT).filter(lambda v: v is not None))
        spec["HardDrives"] = [{**drive, "ControllerType": "SCSI", "ControllerLocation": location}]
    elif field == "NetworkAdapters[0].MacAddress":
        mac = draw(st.one_of(with_bad_char(st.just("00-15-5D-00-00-01")), st.sampled_from(["01-00-5E-00-00-01", "x"])))
        spec["NetworkAdapters"] = [{"SwitchName": "default", "MacAddress": mac}]
    elif field == "CheckpointType":
        spec["CheckpointType"] = draw(bad_enums("Standard", "Production", "ProductionOnly", "Disabled"))
    elif field == "AutomaticStopAction":
        spec["AutomaticStopAction"] = draw(bad_enums("Save", "ShutDown", "TurnOff"))
    elif field == "IntegrationServices":
        services = st.one_of(not_text.filter(lambda v: v != {}), st.just({"Heartbeat": "maybe"}), st.just({"X": "On"}))
        spec["IntegrationServices"] = draw(services)
    elif field == "Notes":
        controls = bad_chars.filter(lambda c: c not in "\t\n")  # tabs and line breaks are what notes may hold
        spec["Notes"] = draw(st.one_of(long_strings.map(lambda s: s * 2), with_bad_char(st.just("a note"), controls)))
    elif field == "ComPort1":
        spec["ComPort1"] = draw(places(*NOT_FILES, "image.qcow2"))
    else:
        spec[draw(st.sampled_from(["unknown", "DynamicMemory ", "name", "generation"]))] = 1
    return field, spec


@hostile_settings(400)
@given(hostile_specs())
def test_new_vm_refuses_each_bad_field_naming_it_in_hyperv_words(world: World, case: tuple[str, dict]) -> None:
    field, spec = case
    for key in ("ComPort1",):
        if key in spec:
            spec[key] = world.path(spec[key])
    for drive in spec.get("HardDrives", []) if isinstance(spec.get("HardDrives"), list) else []:
        drive["Path"] = world.path(drive["Path"])
    expected = None if field in ("Unknown", "IntegrationServices", "HardDrives") else field.split(".")[0]
    if field.startswith("HardDrives[0]."):
        expected = "HardDrives[0]"
    aimed(world, lambda: hyperv.new_vm(world.a, spec), expected)
    aimed(world, lambda: hyperv.new_vm(world.a, spec, what_if=True), expected)


@given(hostile_specs())
@hostile_settings(200)
def test_the_spec_alone_refuses_with_invalid_spec_or_unsupported(case: tuple[str, dict]) -> None:
    _field, spec = case
    drives = spec.get("HardDrives")
    if isinstance(drives, list) and any(isinstance(d.get("Path"), tuple) for d in drives):
        return  # a tagged place: a path only the world knows
    if isinstance(spec.get("ComPort1"), tuple):
        return
    try:
        HyperVSpec.from_dict(spec)
    except Exception as exc:  # the property: only virtkit's errors
        assert isinstance(exc, VirtkitError), f"{type(exc).__name__}: {exc}"


# -- the cmdlets -------------------------------------------------------------------------------------------------

_VMS = ("run1", "paused1", "off1")


@st.composite
def cmdlet_calls(draw: st.DrawFn) -> tuple[str | None, Any]:
    """A cmdlet with one bad argument: (the field it must name, or None for any VirtkitError; a call on a host)."""
    vm = draw(st.sampled_from(_VMS))
    kind = draw(st.integers(0, 13))
    if kind == 0:
        call = draw(st.sampled_from(["start_vm", "suspend_vm", "resume_vm", "save_vm", "get_vm", "remove_vm"]))
        name = draw(bad_names.filter(lambda n: n is not None or call != "get_vm"))  # get_vm(host, None): all VMs
        return "name", lambda h, p: getattr(hyperv, call)(h, name)
    if kind == 1:
        flag = draw(st.sampled_from(["turn_off", "save", "force", "what_if"]))
        value = draw(not_bools)
        return flag, lambda h, p: hyperv.stop_vm(h, vm, **{flag: value})
    if kind == 2:
        kind_ = draw(bad_enums("Reset", "Reboot"))
        return "type", lambda h, p: hyperv.restart_vm(h, vm, type=kind_)
    if kind == 3:
        value = draw(bad_on_off)
        return "enable_secure_boot", lambda h, p: hyperv.set_vm_firmware(h, vm, enable_secure_boot=value)
    if kind == 4:
        path = draw(bad_drive_paths)
        return "Path", lambda h, p: hyperv.add_vm_hard_disk_drive(h, "run1", p(path), controller_type="SCSI")
    if kind == 5:
        number = draw(bad_ints(0, MAX_SCSI_CONTROLLER).filter(lambda v: v is not None))
        return "ControllerNumber", lambda h, p: hyperv.add_vm_hard_disk_drive(
            h, "run1", p(("in", "image.qcow2")), controller_type="SCSI", controller_number=number
        )
    if kind == 6:
        location = draw(bad_ints(0, MAX_SCSI_UNIT).filter(lambda v: v is not None))
        return "ControllerLocation", lambda h, p: hyperv.remove_vm_hard_disk_drive(
            h, "run1", controller_type="SCSI", controller_number=0, controller_location=location
        )
    if kind == 7:
        controller = draw(bad_enums("IDE", "SCSI", "VirtIO", "SATA"))
        return "ControllerType", lambda h, p: hyperv.add_vm_hard_disk_drive(
            h, "run1", p(("in", "image.qcow2")), controller_type=controller
        )
    if kind == 8:
        path = draw(bad_drive_paths)
        return "Path", lambda h, p: hyperv.get_vhd(h, p(path))
    if kind == 9:
        size = draw(bad_sizes)
        return "SizeBytes", lambda h, p: hyperv.new_vhd(h, p(("in", "new-hostile.vhdx")), size)
    if kind == 10:
        dest = draw(places(*NOT_FILES))  # an existing file is AlreadyExists: tests/test_hyperv_vhd.py
        return "DestinationPath", lambda h, p: hyperv.convert_vhd(h, p(("in", "image.qcow2")), p(dest))
    if kind == 11:
        path = draw(bad_drive_paths)
        call = draw(st.sampled_from(["optimize_vhd", "merge_vhd"]))
        return "Path", lambda h, p: getattr(hyperv, call)(h, p(path))
    if kind == 12:
        size = draw(st.one_of(bad_sizes, st.just("1MB")))  # 1 MB: smaller than the disk, a shrink
        return "SizeBytes", lambda h, p: hyperv.resize_vhd(h, p(("in", "image.qcow2")), size)
    where = draw(places(*NOT_FILES, "image.qcow2"))
    return "Path", lambda h, p: hyperv.export_vm(h, "off1", p(where))


@hostile_settings(500)
@given(cmdlet_calls())
def test_cmdlets_refuse_bad_arguments_and_change_nothing(world: World, case: tuple[str | None, Any]) -> None:
    field, call = case
    aimed(world, lambda: call(world.a, world.path), field)


def test_an_unsupported_template_is_refused_before_anything(world: World) -> None:
    for template in ("MicrosoftWindows", "OpenSourceShieldedVM"):
        refused(lambda t=template: hyperv.set_vm_firmware(world.a, "off1", secure_boot_template=t))
    world.check_unchanged()


# -- the checkpoint cmdlets --------------------------------------------------------------------------------------

_CHECKPOINT_CALLS = {  # each with good arguments on the world: run1 has the checkpoint snap1
    "checkpoint_vm": ("run1", "fresh"),
    "restore_vm_snapshot": ("run1", "snap1"),
    "remove_vm_snapshot": ("run1", "snap1"),
    "rename_vm_snapshot": ("run1", "snap1", "fresh"),
}


@st.composite
def checkpoint_calls(draw: st.DrawFn) -> tuple[str, Any]:
    """A checkpoint cmdlet with one bad argument: (the parameter it must name, a call on a host)."""
    kind = draw(st.integers(0, 6))
    if kind == 0:
        vm = draw(bad_names)
        return "Name", lambda h: hyperv.checkpoint_vm(h, vm, "fresh")
    if kind == 1:
        snapshot = draw(bad_names.filter(lambda v: v is not None))  # None: the default name
        vm = draw(st.sampled_from(_VMS))
        return "SnapshotName", lambda h: hyperv.checkpoint_vm(h, vm, snapshot)
    if kind == 2:
        vm = draw(bad_names)
        call = draw(st.sampled_from(["get_vm_snapshot", "restore_vm_snapshot", "remove_vm_snapshot"]))
        return "VMName", lambda h: getattr(hyperv, call)(h, vm, *(() if call == "get_vm_snapshot" else ("snap1",)))
    if kind == 3:
        name = draw(bad_names.filter(lambda v: v is not None))  # get_vm_snapshot(host, vm, None): all of them
        call = draw(st.sampled_from(["get_vm_snapshot", "restore_vm_snapshot", "remove_vm_snapshot"]))
        return "Name", lambda h: getattr(hyperv, call)(h, "run1", name)
    if kind == 4:
        bad = draw(bad_names)
        field, names = draw(st.sampled_from([("Name", (bad, "fresh")), ("NewName", ("snap1", bad))]))
        return field, lambda h: hyperv.rename_vm_snapshot(h, "run1", *names)
    if kind == 5:
        flag = draw(not_bools)
        return "IncludeAllChildSnapshots", lambda h: hyperv.remove_vm_snapshot(
            h, "run1", "snap1", include_all_child_snapshots=flag
        )
    flag = draw(not_bools)
    call = draw(st.sampled_from(sorted(_CHECKPOINT_CALLS)))
    return "what_if", lambda h: getattr(hyperv, call)(h, *_CHECKPOINT_CALLS[call], what_if=flag)


@hostile_settings(400)
@given(checkpoint_calls())
def test_checkpoint_cmdlets_refuse_bad_arguments_and_change_nothing(world: World, case: tuple[str, Any]) -> None:
    field, call = case
    aimed(world, lambda: call(world.a), field)


def test_a_missing_checkpoint_or_vm_is_not_found_naming_the_parameter(world: World) -> None:
    for call, parameter in (
        (lambda: hyperv.restore_vm_snapshot(world.a, "run1", "nope"), "Name"),
        (lambda: hyperv.restore_vm_snapshot(world.a, "off1", "snap1"), "Name"),  # another VM's checkpoint
        (lambda: hyperv.rename_vm_snapshot(world.a, "run1", "nope", "fresh"), "Name"),
        (lambda: hyperv.get_vm_snapshot(world.a, "run1", "nope"), "Name"),
        (lambda: hyperv.get_vm_snapshot(world.a, "nosuchvm"), "VMName"),
        (lambda: hyperv.checkpoint_vm(world.a, "nosuchvm", "fresh", what_if=True), "Name"),
    ):
        assert str(refused(call, kind=NotFound)).startswith(f"{parameter}: ")
    world.check_unchanged()
