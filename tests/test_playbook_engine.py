"""The engine on two test:// hosts: observe, plan, apply, report; a second run changes nothing."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import virtkit
from virtkit import VMState
from virtkit.playbook import Engine, SiteSpec, StepResult, StepStatus, run

DATA = Path(__file__).parent / "data"


@pytest.fixture
def two(tmp_path: Path, storage: Path) -> Iterator[dict[str, virtkit.Host]]:
    """Two test:// hosts of their own (each its own driver), with one storage root."""
    hosts = {}
    for name in ("h1", "h2"):
        node = tmp_path / f"{name}.xml"
        shutil.copy(DATA / "node.xml", node)
        hosts[name] = virtkit.connect(f"test://{node}", storage_roots=[storage])
    yield hosts
    for h in hosts.values():
        h.close()


def _site(storage: Path, *vms: dict[str, Any], **options: Any) -> SiteSpec:
    hosts = {"h1": {"uri": "test:///default"}, "h2": {"uri": "test:///default"}}
    return SiteSpec.from_dict({"hosts": hosts, "vms": list(vms), "options": options})


def _vm(storage: Path, name: str, host: str = "h1", **extra: Any) -> dict[str, Any]:
    spec = {
        "memory": "256MiB",
        "max_memory": "512MiB",
        "vcpus": 1,
        "max_vcpus": 2,
        "disks": [{"path": str(storage / f"{name}.qcow2"), "size": "64MiB"}],
        **extra.pop("spec", {}),
    }
    return {"name": name, "host": host, "spec": spec, **extra}


def test_check_plans_and_changes_nothing_then_apply_converges(two: dict[str, virtkit.Host], storage: Path) -> None:
    site = _site(storage, _vm(storage, "web1"), _vm(storage, "db1", "h2", state="stopped"))
    with Engine(site, hosts=two) as engine:
        checked = engine.run(check=True)
        assert checked.changed and checked.exit_code == 2 and checked.results == ()
        assert [s.action.value for s in checked.plan] == ["define", "define", "start"]
        assert not two["h1"].exists("web1") and not two["h2"].exists("db1")
        assert not (storage / "web1.qcow2").exists()

        done = engine.run()
        assert [r.status for r in done.results] == [StepStatus.DONE] * 3
        assert done.changed and done.exit_code == 2 and not done.failed
        assert two["h1"].get("web1").state is VMState.RUNNING
        assert two["h2"].get("db1").state is VMState.STOPPED

        again = engine.run()
        assert not again.plan and not again.changed and again.exit_code == 0
        assert again.text() == "No changes.\n"


def test_diffs_name_the_fields(two: dict[str, virtkit.Host], storage: Path) -> None:
    with Engine(_site(storage, _vm(storage, "web1")), hosts=two) as engine:
        engine.run()
    site = _site(storage, _vm(storage, "web1", state="stopped", spec={"max_vcpus": 4}))
    report = run(site, check=True, hosts=two)
    (diff,) = report.diffs
    assert diff.before is not None and diff.after is not None
    assert diff.before["state"] == "running" and diff.after["state"] == "stopped"
    assert diff.before["spec"]["max_vcpus"] == 2 and diff.after["spec"]["max_vcpus"] == 4


def test_a_change_that_needs_the_vm_off_is_held_unless_restarts_are_allowed(
    two: dict[str, virtkit.Host], storage: Path
) -> None:
    run(_site(storage, _vm(storage, "web1")), hosts=two)
    site = _site(storage, _vm(storage, "web1", spec={"max_vcpus": 4}))
    held = run(site, hosts=two)
    assert [r.status for r in held.results] == [StepStatus.HELD]
    assert held.held and not held.changed and held.exit_code == 2
    assert two["h1"].get("web1").spec().max_vcpus == 2
    made = run(site, hosts=two, allow_restart=True)
    assert [r.status for r in made.results] == [StepStatus.DONE]
    vm = two["h1"].get("web1")
    assert vm.spec().max_vcpus == 4 and vm.state is VMState.RUNNING
    assert not run(site, hosts=two).plan


def test_a_disk_added_to_a_running_vm_is_a_hot_plug(two: dict[str, virtkit.Host], storage: Path) -> None:
    # The test driver cannot attach devices: the hot-plug is planned and tried, fails, and leaves the VM as it was
    # (integration/ proves the hot-plug in a real guest).
    run(_site(storage, _vm(storage, "web1")), hosts=two)
    before = two["h1"].get("web1").info()
    disks = [
        {"path": str(storage / "web1.qcow2"), "size": "64MiB"},
        {"path": str(storage / "data.qcow2"), "size": "32MiB"},
    ]
    report = run(_site(storage, _vm(storage, "web1", spec={"disks": disks})), hosts=two)
    (result,) = report.results
    assert result.step.action.value == "attach" and "(hot-plug)" in result.step.detail
    assert result.status is StepStatus.FAILED and "not supported" in result.error
    after = two["h1"].get("web1")
    assert after.info() == before and len(after.spec().disks) == 1
    assert not (storage / "data.qcow2").exists()


def test_a_disk_added_to_a_stopped_vm_goes_into_its_definition(two: dict[str, virtkit.Host], storage: Path) -> None:
    run(_site(storage, _vm(storage, "web1", state="stopped")), hosts=two)
    disks = [
        {"path": str(storage / "web1.qcow2"), "size": "64MiB"},
        {"path": str(storage / "data.qcow2"), "size": "32MiB"},
    ]
    site = _site(storage, _vm(storage, "web1", state="stopped", spec={"disks": disks}))
    report = run(site, hosts=two)
    assert [(r.step.action.value, r.status) for r in report.results] == [("attach", StepStatus.DONE)]
    assert [d.path for d in two["h1"].get("web1").spec().disks] == [storage / "web1.qcow2", storage / "data.qcow2"]
    assert (storage / "data.qcow2").exists() and not run(site, hosts=two).plan
    gone = run(_site(storage, _vm(storage, "web1", state="stopped")), hosts=two)
    assert [(r.step.action.value, r.status) for r in gone.results] == [("detach", StepStatus.DONE)]
    assert (storage / "data.qcow2").exists()  # detached, not deleted
    assert len(two["h1"].get("web1").spec().disks) == 1


def test_state_changes_and_absent(two: dict[str, virtkit.Host], storage: Path) -> None:
    run(_site(storage, _vm(storage, "web1")), hosts=two)
    for state, seen in (("paused", VMState.PAUSED), ("saved", VMState.SAVED), ("running", VMState.RUNNING)):
        report = run(_site(storage, _vm(storage, "web1", state=state)), hosts=two)
        assert not report.failed, report.text()
        assert two["h1"].get("web1").state is seen
    report = run(_site(storage, _vm(storage, "web1", state="absent")), hosts=two)
    assert [r.step.action.value for r in report.results] == ["stop", "delete"]
    assert not two["h1"].exists("web1") and not (storage / "web1.qcow2").exists()


def test_a_failed_step_stops_the_rest_and_says_which_ran(two: dict[str, virtkit.Host], storage: Path) -> None:
    # db1's disk is outside the storage roots: its definition fails; the start after it does not run.
    bad = _vm(storage, "db1", spec={"disks": [{"path": "/etc/db1.qcow2", "size": "64MiB"}]})
    site = _site(storage, _vm(storage, "web1", state="stopped"), bad)
    seen: list[StepResult] = []
    report = run(site, hosts=two, on_step=seen.append)
    statuses = [(r.step.vm, r.step.action.value, r.status) for r in report.results]
    assert statuses == [
        ("web1", "define", StepStatus.DONE),
        ("db1", "define", StepStatus.FAILED),
        ("db1", "start", StepStatus.NOT_RUN),
    ]
    assert report.failed and report.exit_code == 1 and "db1: " in report.error and "storage" in report.error
    assert [r.status for r in seen] == [StepStatus.DONE, StepStatus.FAILED]
    assert not two["h1"].exists("db1") and two["h1"].exists("web1")
    assert "FAILED" in report.text() and "not run" in report.text()


def test_placement_takes_the_host_with_the_least_memory(two: dict[str, virtkit.Host], storage: Path) -> None:
    run(_site(storage, _vm(storage, "big", spec={"memory": "512MiB"})), hosts=two)
    placed = {**_vm(storage, "web1"), "placement": "least-memory"}
    del placed["host"]
    report = run(_site(storage, _vm(storage, "big", spec={"memory": "512MiB"}), placed), hosts=two)
    assert [(r.step.host, r.step.action.value) for r in report.results] == [("h2", "define"), ("h2", "start")]


def test_an_unreachable_host_is_named(storage: Path) -> None:
    site = SiteSpec.from_dict({"hosts": {"h9": {"uri": "test:///nonexistent/node.xml"}}})
    with pytest.raises(virtkit.VirtkitError, match=r"hosts\.h9"):
        run(site)


def test_hostile_arguments(two: dict[str, virtkit.Host], storage: Path) -> None:
    site = _site(storage)
    with pytest.raises(virtkit.InvalidSpec, match="site"):
        Engine({"hosts": {}}, hosts=two)  # type: ignore[arg-type]
    with pytest.raises(virtkit.InvalidSpec, match=r"hosts\.h1"):
        Engine(site, hosts={"h1": "qemu:///system"})  # type: ignore[dict-item]
    with pytest.raises(virtkit.InvalidSpec, match="check"):
        run(site, hosts=two, check="yes")  # type: ignore[arg-type]
    with pytest.raises(virtkit.InvalidSpec, match="on_step"):
        run(site, hosts=two, on_step=3)  # type: ignore[arg-type]


def test_checkpoints_are_taken_once_and_a_revert_happens_once(two: dict[str, virtkit.Host], storage: Path) -> None:
    site = _site(storage, _vm(storage, "web1", checkpoints=["c1", "c2"]))
    first = run(site, hosts=two)
    assert [r.step.action.value for r in first.results] == ["define", "start", "checkpoint", "checkpoint"]
    snaps = two["h1"].get("web1").snapshots
    assert [s.name for s in snaps.list()] == ["c1", "c2"] and snaps.current() is not None
    assert not run(site, hosts=two).plan
    back = _site(storage, _vm(storage, "web1", checkpoints=["c1", "c2"], revert_to="c1"))
    reverted = run(back, hosts=two)
    assert [(r.step.action.value, r.step.detail) for r in reverted.results] == [("revert", "c1")]
    current = snaps.current()
    assert current is not None and current.name == "c1"
    assert not run(back, hosts=two).plan


def test_memory_and_vcpus_of_a_running_vm_change_live(two: dict[str, virtkit.Host], storage: Path) -> None:
    run(_site(storage, _vm(storage, "web1")), hosts=two)
    uuid = two["h1"].get("web1").info().uuid
    site = _site(storage, _vm(storage, "web1", spec={"memory": "384MiB", "vcpus": 2}))
    report = run(site, hosts=two)
    assert [(r.step.detail, r.status) for r in report.results] == [
        ("vcpus 1 -> 2 (live)", StepStatus.DONE),
        ("memory 256MiB -> 384MiB (live)", StepStatus.DONE),
    ]
    vm = two["h1"].get("web1")
    assert (vm.info().uuid, vm.state, vm.spec().vcpus, vm.info().vcpus) == (uuid, VMState.RUNNING, 2, 2)
    assert not run(site, hosts=two).plan
