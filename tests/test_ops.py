"""Operations on libvirt's test:// driver: idempotence, check mode, Change, all-or-nothing create."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import virtkit
from virtkit import AlreadyExists, Conflict, InvalidSpec, NotFound, Unsupported, VMSpec, VMState


def _spec(storage: Path, name: str = "web1", **extra: Any) -> VMSpec:
    data: dict[str, Any] = {
        "name": name,
        "memory": "256MiB",
        "disks": [{"path": str(storage / f"{name}.qcow2"), "size": "64MiB"}],
        "serial_log": str(storage / f"{name}.log"),
        **extra,
    }
    return VMSpec.from_dict(data)


def test_create_check_mode_touches_nothing(host: virtkit.Host, storage: Path) -> None:
    change = host.create(_spec(storage), start=True, check=True)
    assert change.check and change.changed
    assert change.before is None and change.after is not None
    assert change.after.state is VMState.RUNNING
    assert not host.exists("web1")
    assert os.listdir(storage) == []


def test_create_start_then_idempotent(host: virtkit.Host, storage: Path) -> None:
    spec = _spec(storage)
    first = host.create(spec, start=True)
    assert first.changed and first.after is not None
    assert first.after.state is VMState.RUNNING
    assert first.after.accel is virtkit.Accel.TCG  # the test driver's host CPU has no vmx/svm
    assert (storage / "web1.qcow2").exists()
    again = host.create(spec, start=True)
    assert not again.changed
    assert again.before == again.after


def test_create_result_is_what_libvirt_then_reports(host: virtkit.Host, storage: Path) -> None:
    change = host.create(_spec(storage))
    assert change.after == host.get("web1").info()


def test_create_existing_with_other_definition_is_refused(host: virtkit.Host, storage: Path) -> None:
    host.create(_spec(storage))
    with pytest.raises(AlreadyExists, match="memory"):
        host.create(_spec(storage, memory="512MiB"))


def test_create_existing_stopped_with_start_starts_it(host: virtkit.Host, storage: Path) -> None:
    host.create(_spec(storage))
    change = host.create(_spec(storage), start=True)
    assert change.changed and change.after is not None and change.after.state is VMState.RUNNING


def test_create_with_nics_is_idempotent_although_libvirt_picks_macs(host: virtkit.Host, storage: Path) -> None:
    spec = _spec(storage, nics=[{"kind": "user"}])
    host.create(spec)
    assert not host.create(spec).changed


def test_lifecycle_changes_and_noops(host: virtkit.Host, storage: Path) -> None:
    host.create(_spec(storage), start=True)
    vm = host.get("web1")
    assert vm.pause().changed
    assert not vm.pause().changed
    assert vm.state is VMState.PAUSED
    with pytest.raises(Conflict, match="paused"):
        vm.start()
    assert vm.resume().changed
    assert not vm.resume().changed
    reboot = vm.reboot(hard=True)
    assert reboot.changed and reboot.after is not None and reboot.after.state is VMState.RUNNING
    assert vm.destroy().changed
    assert not vm.destroy().changed
    with pytest.raises(Conflict):
        vm.pause()
    assert vm.start().changed


def test_check_mode_predicts_without_acting(host: virtkit.Host, storage: Path) -> None:
    host.create(_spec(storage), start=True)
    vm = host.get("web1")
    for op, state in ((vm.pause, VMState.PAUSED), (vm.destroy, VMState.STOPPED)):
        change = op(check=True)
        assert change.check and change.changed and change.after is not None
        assert change.after.state is state
        assert vm.state is VMState.RUNNING
    diff = vm.pause(check=True).diff()
    assert diff["state"] == ("running", "paused")


def test_shutdown_then_delete_with_storage(host: virtkit.Host, storage: Path) -> None:
    host.create(_spec(storage), start=True)
    (storage / "web1.log").write_text("boot\n")
    vm = host.get("web1")
    with pytest.raises(Conflict, match="running"):
        vm.delete()
    change = vm.shutdown(timeout=5, force=True)
    assert change.changed and change.after is not None and change.after.state is VMState.STOPPED
    assert not vm.shutdown().changed
    check = vm.delete(storage=True, check=True)
    assert check.changed and host.exists("web1") and (storage / "web1.qcow2").exists()
    assert vm.delete(storage=True).changed
    assert not host.exists("web1")
    assert os.listdir(storage) == []
    assert not vm.delete().changed  # already gone: nothing to do


def test_delete_keeps_storage_by_default(host: virtkit.Host, storage: Path) -> None:
    host.create(_spec(storage))
    host.get("web1").delete()
    assert (storage / "web1.qcow2").exists()


def test_get_unknown_and_bad_names(host: virtkit.Host) -> None:
    with pytest.raises(NotFound):
        host.get("nosuchvm")
    with pytest.raises(InvalidSpec):
        host.get("bad;name")


def test_list_in_one_call_includes_the_hand_made_vm(host: virtkit.Host, storage: Path) -> None:
    host.create(_spec(storage))
    assert sorted(v.name for v in host.list()) == ["legacy1", "web1"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"disks": [{"path": "/etc/web1.qcow2", "size": "64MiB"}]}, "disks[0].path"),
        ({"serial_log": "/tmp/elsewhere.log"}, "serial_log"),
        ({"disks": [{"path": "{storage}/missing.qcow2"}]}, "disks[0].path"),
        ({"disks": [{"path": "{storage}/nodir/x.qcow2", "size": "64MiB"}]}, "disks[0].path"),
        ({"kernel": {"kernel": "{storage}/no-kernel"}}, "kernel.kernel"),
    ],
)
def test_bad_input_leaves_nothing(host: virtkit.Host, storage: Path, change: dict[str, Any], field: str) -> None:
    data = _spec(storage).to_dict() | change
    text = repr(data).replace("{storage}", str(storage))
    data = eval(text)  # the placeholders above need the tmp path
    with pytest.raises(InvalidSpec) as err:
        host.create(data, start=True)
    assert err.value.field == field
    assert not host.exists("web1")
    assert os.listdir(storage) == []


def test_existing_image_of_wrong_format_is_refused(host: virtkit.Host, storage: Path) -> None:
    (storage / "web1.qcow2").write_bytes(b"\0" * 4096)  # raw bytes, not a qcow2
    with pytest.raises(InvalidSpec, match="raw image"):
        host.create(_spec(storage, disks=[{"path": str(storage / "web1.qcow2")}]))
    assert not host.exists("web1")


def test_vhdx_is_refused_before_any_image_is_made(host: virtkit.Host, storage: Path) -> None:
    disks = [
        {"path": str(storage / "a.qcow2"), "size": "64MiB"},
        {"path": str(storage / "b.vhdx"), "size": "64MiB", "format": "vhdx"},
    ]
    with pytest.raises(Unsupported, match="vhdx"):
        host.create(_spec(storage, disks=disks))
    assert os.listdir(storage) == []


def test_events_are_delivered(host: virtkit.Host, storage: Path) -> None:
    import threading

    seen: list[virtkit.LifecycleEvent] = []
    got = threading.Event()

    def on_event(event: virtkit.LifecycleEvent) -> None:
        seen.append(event)
        if event.event == "started":
            got.set()

    sub = host.subscribe(on_event)
    try:
        host.create(_spec(storage), start=True)
        assert got.wait(5)
    finally:
        sub.close()
    assert ("web1", "started") in [(e.vm, e.event) for e in seen]
