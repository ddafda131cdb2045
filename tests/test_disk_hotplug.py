"""Disk hot-plug: placement (pure), and the checks, check mode, idempotence and roll-back on libvirt's test:// driver.

libvirt 9.0's test driver implements neither virDomainAttachDeviceFlags nor virDomainDetachDeviceFlags (nor
DetachDeviceAlias): every real attach or detach there fails with "not supported". That failure is used below as the
fault after every check has passed, to prove a failed attach leaves nothing behind. Attaching and detaching for
real is proven on the lab's daemons (integration/test_hotplug.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import virtkit
from virtkit import AttachedDisk, Conflict, DiskBus, DiskSpec, InvalidSpec, Unsupported, VMState
from virtkit.models.attached import DiskLayout, DiskSlot, ScsiController
from virtkit.ops.disks.slots import MAX_SCSI_UNIT, AttachPoint, check_address, next_target, place

# -- placement: pure functions ---------------------------------------------------------------------------------


def _disk(bus: str = "scsi", target: str | None = None) -> DiskSpec:
    return DiskSpec(path=Path("/var/lib/virtkit/new.qcow2"), bus=DiskBus(bus), target=target)


def _layout(*slots: tuple[str, int | None, int | None], controllers: tuple[ScsiController, ...] = ()) -> DiskLayout:
    return DiskLayout(
        slots=tuple(DiskSlot(t, Path(f"/var/lib/virtkit/{t}.qcow2"), c, u) for t, c, u in slots),
        controllers=controllers,
    )


def test_next_target_skips_names_taken_on_any_bus() -> None:
    layout = _layout(("vda", None, None), ("vdc", None, None), ("sda", 0, 0), ("hda", None, None))
    assert next_target(_disk("virtio"), layout) == "vdb"
    assert next_target(_disk("scsi"), layout) == "sdb"  # sda is taken (by scsi or sata: one sd namespace)
    assert next_target(_disk("scsi"), DiskLayout()) == "sda"


def test_next_target_after_z_is_aa() -> None:
    layout = _layout(*[(f"vd{chr(c)}", None, None) for c in range(ord("a"), ord("z") + 1)])
    assert next_target(_disk("virtio"), layout) == "vdaa"


def test_requested_target_taken_is_a_conflict_naming_it() -> None:
    with pytest.raises(Conflict, match=r"target vda is already used by /var/lib/virtkit/vda.qcow2"):
        next_target(_disk("virtio", "vda"), _layout(("vda", None, None)))
    assert next_target(_disk("virtio", "vdq"), _layout(("vda", None, None))) == "vdq"


def test_scsi_without_controller_gets_a_new_one_on_both_definitions() -> None:
    p = place(_disk(), _layout(("vda", None, None)), live=True, persistent=True)
    assert p == AttachPoint("sda", 0, 0, add_controller_live=True, add_controller_persistent=True)


def test_scsi_next_free_unit_on_the_first_virtio_controller() -> None:
    ctrl = ScsiController(0, virtio=True, live=True, persistent=True)
    layout = _layout(("sda", 0, 0), ("sdb", 0, 2), controllers=(ctrl,))
    assert place(_disk(), layout, live=True, persistent=True) == AttachPoint("sdc", 0, 1)


def test_an_emulated_controller_is_skipped_and_a_new_index_used() -> None:
    lsi = ScsiController(0, virtio=False, live=True, persistent=True)
    p = place(_disk(), _layout(controllers=(lsi,)), live=True, persistent=False)
    assert (p.controller, p.unit, p.add_controller_live, p.add_controller_persistent) == (1, 0, True, False)
    with pytest.raises(Conflict, match="not a virtio-scsi controller"):
        place(_disk(), _layout(controllers=(lsi,)), live=True, persistent=True, controller=0)


def test_controller_present_in_one_definition_is_added_to_the_other_only() -> None:
    live_only = ScsiController(0, virtio=True, live=True, persistent=False)
    p = place(_disk(), _layout(controllers=(live_only,)), live=True, persistent=True)
    assert (p.add_controller_live, p.add_controller_persistent) == (False, True)
    p = place(_disk(), _layout(controllers=(live_only,)), live=True, persistent=False)
    assert (p.add_controller_live, p.add_controller_persistent) == (False, False)


def test_explicit_controller_and_unit_are_honoured_or_refused() -> None:
    ctrl = ScsiController(0, virtio=True, live=True, persistent=True)
    layout = _layout(("sda", 0, 0), controllers=(ctrl,))
    p = place(_disk(), layout, live=True, persistent=True, controller=2, unit=5)
    assert p == AttachPoint("sdb", 2, 5, add_controller_live=True, add_controller_persistent=True)
    assert place(_disk(), layout, live=True, persistent=True, unit=7).controller == 0  # unit alone: first controller
    with pytest.raises(Conflict, match="unit 0 of SCSI controller 0 is already used by sda"):
        place(_disk(), layout, live=True, persistent=True, controller=0, unit=0)
    with pytest.raises(Conflict, match="unit 0 of SCSI controller 0"):
        place(_disk(), layout, live=True, persistent=True, unit=0)


def test_units_of_other_controllers_do_not_count() -> None:
    ctrls = (ScsiController(0, virtio=True, live=True), ScsiController(1, virtio=True, live=True))
    layout = _layout(("sda", 0, 0), ("sdb", 0, 1), ("sdc", 1, 0), controllers=ctrls)
    assert place(_disk(), layout, live=True, persistent=False, controller=1).unit == 1
    assert place(_disk(), layout, live=True, persistent=False).unit == 2


def test_virtio_has_no_controller() -> None:
    assert place(_disk("virtio"), _layout(("vda", None, None)), live=True, persistent=True) == AttachPoint("vdb")


@pytest.mark.parametrize(
    ("bus", "controller", "unit", "field"),
    [
        ("virtio", 0, None, "controller"),
        ("virtio", None, 1, "unit"),
        ("scsi", -1, None, "controller"),
        ("scsi", 32, None, "controller"),
        ("scsi", 0, MAX_SCSI_UNIT + 1, "unit"),
        ("scsi", 0, True, "unit"),
    ],
)
def test_check_address_refuses(bus: str, controller: Any, unit: Any, field: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        check_address(DiskBus(bus), controller, unit)
    assert err.value.field == field


def test_check_address_accepts_the_extremes() -> None:
    check_address(DiskBus.SCSI, 0, 0)
    check_address(DiskBus.SCSI, 31, MAX_SCSI_UNIT)
    check_address(DiskBus.VIRTIO, None, None)


# -- on libvirt's test driver ---------------------------------------------------------------------------------


def _vm(host: virtkit.Host, storage: Path, *, start: bool = True, **extra: Any) -> virtkit.VM:
    data: dict[str, Any] = {
        "name": "hp1",
        "memory": "256MiB",
        "disks": [
            {"path": str(storage / "hp1.qcow2"), "size": "64MiB"},
            {"path": str(storage / "hp1-data.qcow2"), "size": "64MiB", "bus": "scsi"},
        ],
        **extra,
    }
    host.create(data, start=start)
    return host.get("hp1")


def _xml(vm: virtkit.VM, *, inactive: bool = True) -> str:
    from virtkit.backends.libvirt.domain import LibvirtDomain

    dom = vm._dom
    assert isinstance(dom, LibvirtDomain)
    return dom.xml(inactive=inactive)


def _image(storage: Path, name: str, fmt: str = "qcow2") -> Path:
    return virtkit.images.create(storage / name, "16MiB", fmt, roots=[storage]).path


def test_list_gives_targets_addresses_and_definitions(host: virtkit.Host, storage: Path) -> None:
    vm = _vm(host, storage, start=False)
    disks = vm.disks.list()
    assert [(d.target, d.controller, d.unit, d.live, d.persistent) for d in disks] == [
        ("sda", 0, 0, False, True),
        ("vda", None, None, False, True),
    ]
    assert disks[0].disk == DiskSpec(
        path=storage / "hp1-data.qcow2", bus=DiskBus.SCSI, target="sda", controller=0, unit=0
    )
    vm.start()
    assert all(d.live and d.persistent for d in vm.disks.list())


def test_attach_check_mode_predicts_and_changes_nothing(host: virtkit.Host, storage: Path) -> None:
    vm = _vm(host, storage)
    xml, files = _xml(vm), sorted(os.listdir(storage))
    change = vm.disks.attach({"path": str(storage / "new.qcow2"), "size": "32MiB", "bus": "scsi"}, check=True)
    assert change.check and change.changed and change.before is None
    assert change.after == AttachedDisk(
        DiskSpec(path=storage / "new.qcow2", bus=DiskBus.SCSI, target="sdb", controller=0, unit=1),
        "sdb",
        0,
        1,
        live=True,
        persistent=True,
    )
    virtio = vm.disks.attach({"path": str(storage / "new.qcow2"), "size": "32MiB"}, live=False, check=True)
    assert virtio.after is not None and (virtio.after.target, virtio.after.live) == ("vdb", False)
    assert _xml(vm) == xml and sorted(os.listdir(storage)) == files


@pytest.mark.parametrize("bus", ["virtio", "scsi"])
def test_failed_attach_leaves_definition_and_no_new_image(host: virtkit.Host, storage: Path, bus: str) -> None:
    vm = _vm(host, storage, disks=[{"path": str(storage / "hp1.qcow2"), "size": "64MiB"}])  # no SCSI controller
    xml, files = _xml(vm), sorted(os.listdir(storage))
    with pytest.raises(Unsupported, match="not supported"):  # the test driver cannot attach devices
        vm.disks.attach({"path": str(storage / "new.qcow2"), "size": "32MiB", "bus": bus})
    assert _xml(vm) == xml
    assert sorted(os.listdir(storage)) == files


def test_attaching_an_attached_disk_changes_nothing(host: virtkit.Host, storage: Path) -> None:
    vm = _vm(host, storage)
    for disk in (
        {"path": str(storage / "hp1-data.qcow2"), "bus": "scsi"},
        {"path": str(storage / "hp1-data.qcow2"), "bus": "scsi", "target": "sda", "size": "64MiB"},
    ):
        change = vm.disks.attach(disk, controller=0, unit=0)
        assert not change.changed and change.after is not None and change.after.target == "sda"


@pytest.mark.parametrize(
    ("disk", "kwargs", "match"),
    [
        ({"target": "sdc"}, {}, "already attached as sda"),
        ({"bus": "virtio"}, {}, "already attached as sda"),
        ({}, {"unit": 3}, "detach it first to move it"),
    ],
)
def test_attaching_an_attached_path_differently_is_a_conflict(
    host: virtkit.Host, storage: Path, disk: dict[str, Any], kwargs: dict[str, Any], match: str
) -> None:
    vm = _vm(host, storage)
    data = {"path": str(storage / "hp1-data.qcow2"), "bus": "scsi", **disk}
    with pytest.raises(Conflict, match=match):
        vm.disks.attach(data, **kwargs)


def test_taken_target_and_unit_are_conflicts_before_anything_changes(host: virtkit.Host, storage: Path) -> None:
    vm = _vm(host, storage)
    xml, files = _xml(vm), sorted(os.listdir(storage))
    new = {"path": str(storage / "new.qcow2"), "size": "32MiB"}
    with pytest.raises(Conflict, match="target vda is already used"):
        vm.disks.attach({**new, "target": "vda"})
    with pytest.raises(Conflict, match="unit 0 of SCSI controller 0 is already used by sda"):
        vm.disks.attach({**new, "bus": "scsi"}, controller=0, unit=0)
    assert _xml(vm) == xml and sorted(os.listdir(storage)) == files


@pytest.mark.parametrize(
    ("disk", "kwargs", "error", "field"),
    [
        ({"path": "/root/x.qcow2", "size": "1MiB"}, {}, InvalidSpec, "disk.path"),
        ({"path": "/var/lib/virtkit/../x.qcow2", "size": "1MiB"}, {}, InvalidSpec, "disk.path"),
        ({"path": "{storage}/missing.qcow2"}, {}, InvalidSpec, "disk.path"),
        ({"path": "{storage}/raw.img"}, {}, InvalidSpec, "disk.format"),
        ({"path": "{storage}/x.qcow2", "size": "1MiB", "color": "red"}, {}, InvalidSpec, "disk.color"),
        ({"path": "{storage}/x.qcow2", "size": "1MiB"}, {"controller": 0}, InvalidSpec, "controller"),
        ({"path": "{storage}/x.qcow2", "size": "1MiB", "bus": "scsi"}, {"unit": 16384}, InvalidSpec, "unit"),
        (
            {"path": "{storage}/x.qcow2", "size": "1MiB"},
            {"live": False, "persistent": False},
            InvalidSpec,
            "persistent",
        ),
        ({"path": "{storage}/x.qcow2", "size": "1MiB", "kind": "block", "format": "raw"}, {}, InvalidSpec, "disk.size"),
        ({"path": "{storage}/raw.img", "format": "raw", "kind": "block"}, {}, InvalidSpec, "disk.path"),
        ({"path": "{storage}/x.vhdx", "format": "vhdx"}, {}, Unsupported, None),
        ({"path": "{storage}/x.qcow2", "size": "1MiB", "bus": "ide"}, {}, Unsupported, None),
    ],
)
def test_bad_input_is_refused_before_anything_changes(
    host: virtkit.Host,
    storage: Path,
    disk: dict[str, Any],
    kwargs: dict[str, Any],
    error: type[Exception],
    field: str | None,
) -> None:
    vm = _vm(host, storage)
    _image(storage, "raw.img", "raw")
    _image(storage, "x.vhdx", "vhdx")
    xml, files = _xml(vm), sorted(os.listdir(storage))
    data = {k: v.format(storage=storage) if isinstance(v, str) else v for k, v in disk.items()}
    with pytest.raises(error) as err:
        vm.disks.attach(data, **kwargs)
    if field is not None:
        assert isinstance(err.value, InvalidSpec) and err.value.field.startswith(field)
    if error is Unsupported and data.get("format") == "vhdx":
        assert "convert" in str(err.value)
    assert _xml(vm) == xml and sorted(os.listdir(storage)) == files


def test_live_only_attach_on_a_stopped_vm_is_a_conflict(host: virtkit.Host, storage: Path) -> None:
    vm = _vm(host, storage, start=False)
    with pytest.raises(Conflict, match="live only: it is stopped"):
        vm.disks.attach({"path": str(storage / "n.qcow2"), "size": "1MiB"}, persistent=False)
    assert not (storage / "n.qcow2").exists()
    # on a stopped VM the default (live and persistent) changes the persistent definition only
    change = vm.disks.attach({"path": str(storage / "n.qcow2"), "size": "1MiB"}, check=True)
    assert change.after is not None and (change.after.live, change.after.persistent) == (False, True)


def test_a_saved_vm_refuses_disk_changes(host: virtkit.Host, storage: Path) -> None:
    from virtkit.backends.libvirt.domain import LibvirtDomain

    vm = _vm(host, storage)
    dom = vm._dom
    assert isinstance(dom, LibvirtDomain)
    dom._dom.managedSave(0)
    assert vm.state is VMState.SAVED
    with pytest.raises(Conflict, match="it is saved"):
        vm.disks.attach({"path": str(storage / "n.qcow2"), "size": "1MiB"})
    with pytest.raises(Conflict, match="it is saved"):
        vm.disks.detach("vda")


def test_detach_of_a_disk_not_attached_changes_nothing(host: virtkit.Host, storage: Path) -> None:
    vm = _vm(host, storage)
    for key in ("vdq", str(storage / "nothing.qcow2")):
        change = vm.disks.detach(key)
        assert not change.changed and change.before is None and change.after is None


def test_detach_check_mode_and_partial_scopes(host: virtkit.Host, storage: Path) -> None:
    vm = _vm(host, storage)
    xml = _xml(vm)
    both = vm.disks.detach("sda", check=True)
    assert both.changed and both.before is not None and both.after is None
    live_only = vm.disks.detach(str(storage / "hp1-data.qcow2"), persistent=False, check=True)
    assert live_only.after is not None and (live_only.after.live, live_only.after.persistent) == (False, True)
    assert _xml(vm) == xml and len(vm.disks.list()) == 2


@pytest.mark.parametrize(
    ("key", "kwargs", "field"),
    [
        ("sda1", {}, "target_or_path"),
        ("../x", {}, "target_or_path"),
        ("/var/lib/virtkit/a;b", {}, "target_or_path"),
        ("sda", {"timeout": 0}, "timeout"),
        ("sda", {"live": False, "persistent": False}, "persistent"),
    ],
)
def test_detach_bad_input(host: virtkit.Host, storage: Path, key: str, kwargs: dict[str, Any], field: str) -> None:
    vm = _vm(host, storage)
    with pytest.raises(InvalidSpec) as err:
        vm.disks.detach(key, **kwargs)
    assert err.value.field == field


@pytest.mark.parametrize("start", [True, False])
def test_failed_detach_leaves_the_persistent_definition(host: virtkit.Host, storage: Path, start: bool) -> None:
    vm = _vm(host, storage, start=start)
    xml = _xml(vm)
    with pytest.raises(Unsupported, match="not supported"):
        vm.disks.detach("sda")
    assert _xml(vm) == xml
    assert (storage / "hp1-data.qcow2").exists()
