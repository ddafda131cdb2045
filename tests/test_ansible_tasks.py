"""The tasks behind the virtkit.kvm modules, on libvirt's test:///default driver (kept open by a fixture so that
its state lasts between tasks) and qemu-img in a temporary storage root: results, idempotence, check mode, diffs,
and errors that name the module's option."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import virtkit
from virtkit import InvalidSpec, NotFound, Unsupported
from virtkit.playbook.tasks import run_task

URI = "test:///default"


@pytest.fixture
def name() -> Iterator[str]:
    made = f"task-{uuid.uuid4().hex[:8]}"
    with virtkit.connect(URI) as host:
        yield made
        if host.exists(made):
            host.get(made).delete(force=True)


def _vm(name: str, storage: Path, **extra: Any) -> dict[str, Any]:
    spec = {
        "memory": "256MiB",
        "max_memory": "512MiB",
        "disks": [{"path": str(storage / f"{name}.qcow2"), "size": "16MiB"}],
    }
    return {"uri": URI, "storage_roots": [str(storage)], "name": name, "spec": spec, **extra}


def test_vm_is_created_once_and_check_mode_changes_nothing(name: str, storage: Path) -> None:
    params = _vm(name, storage, checkpoints=["base"])
    planned = run_task("vm", params, check=True, diff=True)
    assert planned["changed"] is True and planned["steps"] == [] and planned["vm"] is None
    assert [p.split()[0] for p in planned["plan"]] == ["+", "~", "+"]
    assert planned["diff"]["before"] == {} and planned["diff"]["after"]["spec"]["memory"] == "256MiB"
    with virtkit.connect(URI) as host:
        assert not host.exists(name)
    made = run_task("vm", params)
    assert made["changed"] is True and {s["status"] for s in made["steps"]} == {"done"}
    assert made["vm"]["state"] == "running" and "diff" not in made
    again = run_task("vm", params, diff=True)
    assert again["changed"] is False and again["plan"] == [] and "diff" not in again
    assert run_task("vm_info", {"uri": URI, "name": name})["vms"][0]["checkpoints"] == ["base"]


def test_vm_running_memory_changes_live_and_a_restart_change_is_held(name: str, storage: Path) -> None:
    run_task("vm", _vm(name, storage))
    params = _vm(name, storage)
    params["spec"] = {**params["spec"], "memory": "384MiB"}
    live = run_task("vm", params, diff=True)
    assert live["changed"] is True and live["held"] == []
    assert live["diff"]["before"]["spec"]["memory"] == "256MiB" and live["diff"]["after"]["spec"]["memory"] == "384MiB"
    params["spec"] = {**params["spec"], "firmware": "uefi"}
    held = run_task("vm", params)
    assert held["changed"] is False and len(held["held"]) == 1 and "allow_restart" in held["warnings"][0]


def test_vm_without_spec_changes_only_its_state(name: str, storage: Path) -> None:
    run_task("vm", _vm(name, storage, checkpoints=["c1"]))
    stopped = run_task("vm", {"uri": URI, "name": name, "state": "stopped", "storage_roots": [str(storage)]})
    assert [s["action"] for s in stopped["steps"]] == ["stop"] and stopped["vm"]["state"] == "stopped"
    with virtkit.connect(URI) as host:
        assert len(host.get(name).spec().disks) == 1


def test_vm_absent_needs_no_spec_and_removes_it(name: str, storage: Path) -> None:
    run_task("vm", _vm(name, storage))
    gone = run_task("vm", {"uri": URI, "name": name, "state": "absent", "storage_roots": [str(storage)]})
    assert gone["changed"] is True and gone["vm"] is None
    assert run_task("vm", {"uri": URI, "name": name, "state": "absent"})["changed"] is False


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"name": "x", "spec": {"memory": -1}}, "spec.memory"),
        ({"name": "x", "spec": {"bogus": 1}}, "spec.bogus"),
        ({"name": "x", "hyperv": {"Generation": 3}}, "hyperv.Generation"),
        ({"name": "x"}, "spec"),  # a VM that does not exist needs a spec
        ({"name": "bad name", "spec": {}}, "name"),
        ({"name": "x", "spec": {}, "state": "gone"}, "state"),
        ({"name": "x", "spec": {}, "shutdown_timeout": -1}, "shutdown_timeout"),
        ({"name": "x", "spec": {}, "ssh": {"host": "h", "key_file": "/k", "known_hosts": "/k", "port": 0}}, "ssh.port"),
        ({"name": "x", "spec": {}, "storage_roots": ["relative"]}, "storage_roots"),
    ],
)
def test_vm_bad_options_are_named_as_the_module_names_them(params: dict[str, Any], field: str) -> None:
    with virtkit.connect(URI) as host:
        before = sorted(s.name for s in host.statuses())
        with pytest.raises(InvalidSpec) as err:
            run_task("vm", {"uri": URI, **params})
        assert err.value.field.startswith(field), err.value
        assert sorted(s.name for s in host.statuses()) == before


def test_snapshot_present_reverted_absent(name: str, storage: Path) -> None:
    run_task("vm", _vm(name, storage))
    base = {"uri": URI, "storage_roots": [str(storage)], "vm": name, "name": "s1"}
    assert run_task("snapshot", base, check=True)["changed"] is True
    assert run_task("snapshot", base, check=True)["snapshot"] is None
    taken = run_task("snapshot", base, diff=True)
    assert taken["changed"] is True and taken["snapshot"]["name"] == "s1" and taken["diff"]["after"]["name"] == "s1"
    assert run_task("snapshot", base)["changed"] is False
    # s1 is current: reverted changes nothing unless forced
    assert run_task("snapshot", {**base, "state": "reverted"})["changed"] is False
    forced = run_task("snapshot", {**base, "state": "reverted", "force": True})
    assert forced["changed"] is True and forced["vm_state"] == "running"
    assert run_task("snapshot", {**base, "state": "absent"})["changed"] is True
    assert run_task("snapshot", {**base, "state": "absent"})["changed"] is False
    with pytest.raises(NotFound):
        run_task("snapshot", {**base, "state": "reverted", "name": "nope"})
    with pytest.raises(InvalidSpec) as err:
        run_task("snapshot", {**base, "kind": "sideways"})
    assert err.value.field == "kind"


def test_disk_check_mode_and_a_refused_attach_change_nothing(name: str, storage: Path) -> None:
    """The test driver cannot attach devices: check mode plans it, the real attach is refused and the image made
    for it is removed again (the attach itself is proven on real hosts, integration/test_ansible.py)."""
    run_task("vm", _vm(name, storage))
    base = {
        "uri": URI,
        "storage_roots": [str(storage)],
        "vm": name,
        "path": str(storage / "data.qcow2"),
        "size": "8MiB",
    }
    planned = run_task("disk", base, check=True)
    assert planned["changed"] is True and planned["disk"] is None and not (storage / "data.qcow2").exists()
    with pytest.raises(Unsupported):
        run_task("disk", base)
    assert not (storage / "data.qcow2").exists()
    assert run_task("disk", {**base, "state": "absent"})["changed"] is False
    with pytest.raises(InvalidSpec) as err:
        run_task("disk", {**base, "bus": "floppy"})
    assert err.value.field == "bus"


def test_disk_path_outside_the_roots_is_named_path(name: str, storage: Path, tmp_path: Path) -> None:
    run_task("vm", _vm(name, storage))
    with pytest.raises(InvalidSpec) as err:
        run_task(
            "disk",
            {
                "uri": URI,
                "storage_roots": [str(storage)],
                "vm": name,
                "path": str(tmp_path / "x.qcow2"),
                "size": "1MiB",
            },
        )
    assert err.value.field == "path"
    assert not (tmp_path / "x.qcow2").exists()


def test_image_made_grown_converted_and_removed(storage: Path) -> None:
    roots = [str(storage)]
    path = str(storage / "a.qcow2")
    assert run_task("image", {"path": path, "size": "1MiB", "storage_roots": roots}, check=True)["changed"] is True
    assert not Path(path).exists()
    made = run_task("image", {"path": path, "size": "1MiB", "storage_roots": roots}, diff=True)
    assert made["changed"] is True and made["image"]["virtual_size"] == 1 << 20 and made["diff"]["before"] == {}
    assert run_task("image", {"path": path, "size": "1MiB", "storage_roots": roots})["changed"] is False
    grown = run_task("image", {"path": path, "size": "2MiB", "storage_roots": roots})
    assert grown["changed"] is True and grown["image"]["virtual_size"] == 2 << 20
    assert run_task("image", {"path": path, "size": "1MiB", "storage_roots": roots})["changed"] is False  # never shrunk
    vhdx = str(storage / "a.vhdx")
    converted = run_task("image", {"path": vhdx, "source": path, "format": "vhdx", "storage_roots": roots})
    assert converted["image"]["format"] == "vhdx" and converted["progress"][-1] == 100.0
    with pytest.raises(InvalidSpec) as err:
        run_task("image", {"path": vhdx, "format": "qcow2", "storage_roots": roots})
    assert err.value.field == "format"
    assert run_task("image", {"path": vhdx, "state": "absent", "storage_roots": roots})["changed"] is True
    assert not Path(vhdx).exists()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"path": "/etc/passwd", "size": "1MiB"}, "path"),
        ({"path": "{root}/a.qcow2", "size": "lots"}, "size"),
        ({"path": "{root}/a.qcow2"}, "size"),
        ({"path": "{root}/a.qcow2", "size": "1MiB", "storage_roots": None}, "storage_roots"),
        ({"path": "{root}/a.qcow2", "size": "1MiB", "storage_roots": ["relative"]}, "storage_roots"),
        ({"path": "{root}/a.qcow2", "size": "1MiB", "state": "weird"}, "state"),
    ],
)
def test_image_bad_options_are_named(storage: Path, params: dict[str, Any], field: str) -> None:
    given = {"storage_roots": [str(storage)], **params}
    given["path"] = given["path"].format(root=storage)
    with pytest.raises(InvalidSpec) as err:
        run_task("image", given)
    assert err.value.field.startswith(field), err.value
    assert list(storage.iterdir()) == []


def test_migrate_is_refused_before_anything_moves_with_options_named(name: str, storage: Path) -> None:
    run_task("vm", _vm(name, storage))
    with pytest.raises(InvalidSpec) as err:
        run_task("migrate", {"uri": URI, "name": name, "dest": {"uri": ""}})
    assert err.value.field == "dest.uri"
    with pytest.raises(InvalidSpec) as err:
        run_task("migrate", {"uri": URI, "name": name, "dest": {"uri": URI}, "mode": "teleport"})
    assert err.value.field == "mode"
    with pytest.raises(NotFound):
        run_task("migrate", {"uri": URI, "name": "no-such-vm", "dest": {"uri": URI}})


def test_run_task_refuses_unknown_tasks_and_non_mappings() -> None:
    with pytest.raises(InvalidSpec) as err:
        run_task("nope", {})
    assert err.value.field == "task"
    with pytest.raises(InvalidSpec) as err:
        run_task("vm", ["uri"])  # type: ignore[arg-type]
    assert err.value.field == "params"
    with pytest.raises(InvalidSpec) as err:
        run_task("vm", {"uri": URI, "name": "x", "spec": {}}, check="yes")  # type: ignore[arg-type]
    assert err.value.field == "check"


def test_conversion_options_are_named_as_the_module_names_them(storage: Path) -> None:
    with pytest.raises(InvalidSpec) as err:
        run_task("image", {"path": str(storage / "a.qcow2"), "source": "/etc/passwd", "storage_roots": [str(storage)]})
    assert err.value.field == "source"
    assert list(storage.iterdir()) == []


def test_vm_info_refuses_a_bad_name_and_an_unreachable_host_is_said_plainly() -> None:
    with pytest.raises(InvalidSpec) as err:
        run_task("vm_info", {"uri": URI, "name": 5})
    assert err.value.field == "name"
    with pytest.raises(virtkit.HostUnavailable) as down:
        run_task("vm", {"uri": "qemu+tcp://127.0.0.1:1/system", "name": "x", "spec": {}})
    assert str(down.value).startswith("cannot connect to qemu+tcp://127.0.0.1:1/system")
