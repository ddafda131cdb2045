"""The planner: pure, from a site and what the hosts hold to ordered steps (no libvirt needed)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from virtkit.errors import InvalidSpec
from virtkit.models.disk import DiskSpec
from virtkit.models.state import VMState
from virtkit.models.vm import VMSpec
from virtkit.playbook import Action, Observed, ObservedVM, Plan, SiteSpec, Step, plan
from virtkit.units import GiB

EXAMPLE = Path(__file__).parent.parent / "examples" / "specs" / "site.yml"
DISK = "/var/lib/virtkit/shared/web1.qcow2"


def _site(*vms: dict[str, Any]) -> SiteSpec:
    hosts = {"h1": {"uri": "qemu:///system"}, "h2": {"uri": "qemu:///system"}}
    return SiteSpec.from_dict({"hosts": hosts, "vms": list(vms)})


def _web(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"memory": "1GiB", "max_memory": "2GiB", "vcpus": 2, "max_vcpus": 4}
    return {"name": "web1", "host": "h1", "spec": {**base, **spec}}


def _seen(site: SiteSpec, index: int = 0, *, state: VMState = VMState.RUNNING, **changes: Any) -> ObservedVM:
    """What a host would report for ``site.vms[index]`` once converged, with ``changes`` to its spec."""
    vm = site.vms[index]
    spec = dataclasses.replace(vm.vm_spec, **changes)
    return ObservedVM(vm.name, state, spec, vm.checkpoints)


def _actions(p: Plan) -> list[tuple[Action, str, str]]:
    return [(s.action, s.host, s.vm) for s in p]


def test_a_new_vm_is_defined_then_started_then_checkpointed() -> None:
    site = _site({**_web(), "checkpoints": ["installed"]})
    assert _actions(plan(site, Observed({"h1": [], "h2": []}))) == [
        (Action.DEFINE, "h1", "web1"),
        (Action.START, "h1", "web1"),
        (Action.CHECKPOINT, "h1", "web1"),
    ]


def test_a_new_stopped_vm_is_only_defined() -> None:
    site = _site({**_web(), "state": "stopped"})
    assert _actions(plan(site, Observed())) == [(Action.DEFINE, "h1", "web1")]


def test_a_converged_site_plans_nothing() -> None:
    site = _site({**_web(disks=[{"path": DISK}]), "checkpoints": ["installed"]})
    p = plan(site, Observed({"h1": [_seen(site)], "h2": []}))
    assert p == Plan() and not p and len(p) == 0


def test_the_example_site_converged_plans_nothing() -> None:
    site = SiteSpec.from_file(EXAMPLE)
    first = plan(site, Observed({"h1": [], "h2": []}))
    assert [s.action for s in first] == [Action.DEFINE, Action.DEFINE, Action.START, Action.CHECKPOINT]
    db1 = next(s for s in first if s.vm == "db1")
    # After applying: what the steps made is what the hosts report.
    after = Observed({"h1": [_seen(site, 0)], "h2": [_seen(site, 1, state=VMState.STOPPED)]})
    assert db1.host == "h2"
    assert not plan(site, after)


def test_generated_values_on_the_host_are_no_change() -> None:
    site = _site(_web(disks=[{"path": DISK}]))
    disk = dataclasses.replace(site.vms[0].vm_spec.disks[0], target="vda", size=None)
    assert not plan(site, Observed({"h1": [_seen(site, disks=(disk,))]}))


def test_memory_within_the_maximum_changes_live() -> None:
    site = _site(_web(memory="2GiB"))
    p = plan(site, Observed({"h1": [_seen(site, memory=1 * GiB)]}))
    assert p.steps == (Step(Action.UPDATE, "h1", "web1", "memory 1GiB -> 2GiB (live)"),)


def test_vcpus_within_the_maximum_change_live_and_beyond_it_need_the_vm_off() -> None:
    site = _site(_web(vcpus=4))
    (step,) = plan(site, Observed({"h1": [_seen(site, vcpus=2)]}))
    assert (step.action, step.needs_off, step.detail) == (Action.UPDATE, False, "vcpus 2 -> 4 (live)")
    site = _site(_web(vcpus=8, max_vcpus=8))
    steps = plan(site, Observed({"h1": [_seen(site, vcpus=2, max_vcpus=4)]})).steps
    assert [(s.detail, s.needs_off) for s in steps] == [
        ("vcpus 2 -> 8 (needs the VM off)", True),
        ("max_vcpus 4 -> 8 (needs the VM off)", True),
    ]


def test_memory_beyond_the_maximum_needs_the_vm_off() -> None:
    site = _site(_web(memory="4GiB", max_memory="4GiB"))
    steps = plan(site, Observed({"h1": [_seen(site, memory=1 * GiB, max_memory=2 * GiB)]})).steps
    assert all(s.needs_off for s in steps) and len(steps) == 2


def test_a_machine_change_needs_the_vm_off_but_not_when_it_is_off() -> None:
    site = _site(_web(machine="q35"))
    (step,) = plan(site, Observed({"h1": [_seen(site, machine="pc")]}))
    assert step.action is Action.UPDATE and step.needs_off
    assert step.detail == "machine pc -> q35 (needs the VM off)"
    site = _site({**_web(machine="q35"), "state": "stopped"})
    (step,) = plan(site, Observed({"h1": [_seen(site, state=VMState.STOPPED, machine="pc")]}))
    assert (step.detail, step.needs_off) == ("machine pc -> q35", False)


def test_a_disk_added_is_hot_plugged_and_one_removed_detached() -> None:
    site = _site(_web(disks=[{"path": DISK}, {"path": "/srv/new.qcow2"}]))
    old = DiskSpec(path=Path("/srv/old.qcow2"))
    seen = _seen(site, disks=(site.vms[0].vm_spec.disks[0], old))
    steps = plan(site, Observed({"h1": [seen]})).steps
    assert [(s.action, s.needs_off) for s in steps] == [(Action.DETACH, False), (Action.ATTACH, False)]
    assert steps[0].detail == "disk /srv/old.qcow2 on virtio (hot-plug)"
    assert steps[1].detail == "disk /srv/new.qcow2 on virtio (hot-plug)"


def test_a_sata_disk_cannot_be_hot_plugged() -> None:
    site = _site(_web(machine="q35", disks=[{"path": DISK, "bus": "sata"}]))
    (step,) = plan(site, Observed({"h1": [_seen(site, disks=())]}))
    assert step.action is Action.ATTACH and step.needs_off


def test_a_changed_disk_is_an_update_that_needs_the_vm_off() -> None:
    site = _site(_web(disks=[{"path": DISK, "readonly": True}]))
    disk = dataclasses.replace(site.vms[0].vm_spec.disks[0], readonly=False)
    (step,) = plan(site, Observed({"h1": [_seen(site, disks=(disk,))]}))
    assert (step.action, step.needs_off) == (Action.UPDATE, True)
    assert step.detail == f"disk {DISK}: readonly (needs the VM off)"


def test_state_changes() -> None:
    cases = [
        ("running", VMState.STOPPED, [Action.START]),
        ("running", VMState.SAVED, [Action.START]),
        ("running", VMState.PAUSED, [Action.RESUME]),
        ("running", VMState.CRASHED, [Action.START]),
        ("stopped", VMState.RUNNING, [Action.STOP]),
        ("stopped", VMState.SAVED, [Action.STOP]),
        ("stopped", VMState.STOPPED, []),
        ("paused", VMState.RUNNING, [Action.PAUSE]),
        ("paused", VMState.STOPPED, [Action.START, Action.PAUSE]),
        ("paused", VMState.PAUSED, []),
        ("saved", VMState.RUNNING, [Action.SAVE]),
        ("saved", VMState.PAUSED, [Action.SAVE]),
        ("saved", VMState.STOPPED, [Action.START, Action.SAVE]),
        ("saved", VMState.SAVED, []),
    ]
    for want, now, actions in cases:
        site = _site({**_web(), "state": want})
        assert [s.action for s in plan(site, Observed({"h1": [_seen(site, state=now)]}))] == actions, (want, now)


def test_a_vm_on_another_host_is_migrated_before_its_state_changes() -> None:
    site = _site({**_web(memory="2GiB"), "host": "h2", "state": "paused"})
    p = plan(site, Observed({"h1": [_seen(site, memory=1 * GiB)], "h2": []}))
    assert _actions(p) == [(Action.MIGRATE, "h2", "web1"), (Action.UPDATE, "h2", "web1"), (Action.PAUSE, "h2", "web1")]
    assert p.steps[0].detail == "h1 -> h2"


def test_an_absent_vm_is_stopped_and_deleted_wherever_it_is_and_first() -> None:
    site = _site(_web(), {"name": "old1", "state": "absent", "spec": {}})
    old = ObservedVM("old1", VMState.RUNNING, VMSpec(name="old1"))
    old_off = ObservedVM("old1", VMState.STOPPED, VMSpec(name="old1"))
    p = plan(site, Observed({"h1": [old], "h2": [old_off]}))
    assert _actions(p) == [
        (Action.STOP, "h1", "old1"),
        (Action.DELETE, "h1", "old1"),
        (Action.DELETE, "h2", "old1"),
        (Action.DEFINE, "h1", "web1"),
        (Action.START, "h1", "web1"),
    ]
    assert not plan(_site({"name": "old1", "state": "absent", "spec": {}}), Observed({"h1": []}))


def test_detach_comes_before_delete() -> None:
    site = _site(_web(), {"name": "old1", "state": "absent", "spec": {}})
    seen = _seen(site, disks=(DiskSpec(path=Path("/srv/shared.qcow2")),))
    old = ObservedVM("old1", VMState.STOPPED, VMSpec(name="old1"))
    assert [s.action for s in plan(site, Observed({"h1": [seen, old]}))] == [Action.DETACH, Action.DELETE]


def test_a_missing_checkpoint_is_created() -> None:
    site = _site({**_web(), "checkpoints": ["a", "b"]})
    seen = dataclasses.replace(_seen(site), checkpoints=("a", "other"))
    assert plan(site, Observed({"h1": [seen]})).steps == (Step(Action.CHECKPOINT, "h1", "web1", "b"),)


def test_least_memory_placement_spreads_new_vms_with_a_tie_broken_by_name() -> None:
    vm = {"placement": "least-memory", "spec": {"memory": "1GiB"}}
    site = _site({"name": "a", **vm}, {"name": "b", **vm}, {"name": "c", **vm})
    p = plan(site, Observed({"h1": [], "h2": []}))
    assert [(s.vm, s.host) for s in p if s.action is Action.DEFINE] == [("a", "h1"), ("b", "h2"), ("c", "h1")]
    busy = ObservedVM("x", VMState.RUNNING, VMSpec(name="x", memory=4 * GiB))
    p = plan(site, Observed({"h1": [busy], "h2": []}))
    assert [s.host for s in p if s.action is Action.DEFINE] == ["h2", "h2", "h2"]


def test_a_placed_vm_that_exists_stays_where_it_is() -> None:
    site = _site({"name": "a", "placement": "least-memory", "spec": {}})
    seen = ObservedVM("a", VMState.RUNNING, site.vms[0].vm_spec)
    busy = ObservedVM("x", VMState.RUNNING, VMSpec(name="x", memory=4 * GiB))
    assert not plan(site, Observed({"h1": [], "h2": [busy, seen]}))


def test_a_vm_on_two_hosts_is_taken_from_the_one_the_site_names() -> None:
    site = _site({**_web(), "host": "h2"})
    stale = ObservedVM("web1", VMState.STOPPED, site.vms[0].vm_spec)
    assert not plan(site, Observed({"h1": [stale], "h2": [_seen(site)]}))


def test_a_hyperv_vm_is_planned_through_its_neutral_spec() -> None:
    site = _site({"name": "db1", "host": "h1", "hyperv": {"Generation": 2, "MemoryStartupBytes": "2GB"}})
    (define, start) = plan(site, Observed()).steps
    assert (define.action, define.detail, start.action) == (Action.DEFINE, "1 vCPU, 2GiB", Action.START)
    assert not plan(site, Observed({"h1": [_seen(site)]}))


def test_any_change_to_a_saved_vm_needs_it_off_and_a_stopped_one_takes_any() -> None:
    site = _site({**_web(memory="2GiB", disks=[{"path": DISK}]), "state": "saved"})
    steps = plan(site, Observed({"h1": [_seen(site, state=VMState.SAVED, memory=1 * GiB, disks=())]})).steps
    assert [(s.action, s.needs_off) for s in steps] == [(Action.UPDATE, True), (Action.ATTACH, True)]
    site = _site({**_web(memory="2GiB", disks=[{"path": DISK}]), "state": "stopped"})
    steps = plan(site, Observed({"h1": [_seen(site, state=VMState.STOPPED, memory=1 * GiB, disks=())]})).steps
    assert [(s.detail, s.needs_off) for s in steps] == [
        ("memory 1GiB -> 2GiB", False),
        (f"disk {DISK} on virtio", False),
    ]


def test_a_disk_removed_from_a_vm_that_moves_is_detached_on_its_old_host_first() -> None:
    site = _site({**_web(), "host": "h2"})
    seen = _seen(site, disks=(DiskSpec(path=Path("/srv/old.qcow2")),))
    p = plan(site, Observed({"h1": [seen], "h2": []}))
    assert _actions(p) == [(Action.DETACH, "h1", "web1"), (Action.MIGRATE, "h2", "web1")]
    assert p.steps[1].source == "h1" and p.steps[0].disk == seen.spec.disks[0]
    assert [s.phase for s in p] == sorted(s.phase for s in p) and p.steps[0].phase < p.steps[1].phase


def test_placement_keeps_to_the_hosts_that_can_run_the_cpu_and_counts_all_their_memory() -> None:
    site = _site({"name": "a", "placement": "least-memory", "spec": {}})
    observed = Observed({"h1": [], "h2": []}, memory={"h1": 0, "h2": 8 * GiB}, eligible={"a": frozenset({"h2"})})
    assert [s.host for s in plan(site, observed)] == ["h2", "h2"]
    assert [s.host for s in plan(site, Observed({"h1": [], "h2": []}, memory={"h1": 8 * GiB}))] == ["h2", "h2"]
    with pytest.raises(InvalidSpec, match=r"vms\[0\]\.placement: no host of this site can run the CPU of a"):
        plan(site, Observed({"h1": [], "h2": []}, eligible={"a": frozenset()}))


def test_revert_to_comes_last_and_only_when_another_checkpoint_is_current() -> None:
    new = _site({**_web(), "checkpoints": ["a", "b"], "revert_to": "a"})
    p = plan(new, Observed({"h1": []}))
    assert [(s.action, s.detail) for s in p][-3:] == [
        (Action.CHECKPOINT, "a"),
        (Action.CHECKPOINT, "b"),
        (Action.REVERT, "a"),
    ]
    last = _site({**_web(), "checkpoints": ["a", "b"], "revert_to": "b"})
    assert Action.REVERT not in [s.action for s in plan(last, Observed({"h1": []}))]
    at_a = dataclasses.replace(_seen(new), checkpoints=("a", "b"), current="a")
    assert not plan(new, Observed({"h1": [at_a]}))
    at_b = dataclasses.replace(at_a, current="b")
    assert plan(new, Observed({"h1": [at_b]})).steps == (Step(Action.REVERT, "h1", "web1", "a"),)


def test_the_desired_spec_the_observer_gives_is_what_is_compared() -> None:
    site = _site(_web())
    written = dataclasses.replace(site.vms[0].vm_spec, description="filled in by the host")
    assert not plan(
        site, Observed({"h1": [_seen(site, description="filled in by the host")]}, desired={"web1": written})
    )
    (step,) = plan(site, Observed({"h1": [_seen(site, description="filled in by the host")]}))
    assert step.action is Action.UPDATE and step.field == "description" and step.spec == site.vms[0].vm_spec
