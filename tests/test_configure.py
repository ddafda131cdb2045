"""VM.configure: what only virtkit reads of a VM changes in any state, running too, and nothing else does."""

from __future__ import annotations

import pytest

import virtkit
from virtkit import Conflict, InvalidSpec, VMState
from virtkit.models.vm import AgentService, HostStopAction, SnapshotMode


def test_configure_a_running_vm_keeps_it_running_and_its_hardware(host: virtkit.Host) -> None:
    host.create({"name": "cf1", "memory": "64MiB", "guest_agent": True}, start=True)
    vm = host.get("cf1")
    before = vm.spec()
    planned = vm.configure(snapshot_mode="disabled", check=True)
    assert planned.check and planned.after.snapshot_mode is SnapshotMode.DISABLED  # type: ignore[union-attr]
    assert vm.spec() == before
    change = vm.configure(
        snapshot_mode="quiesced", on_host_stop="power_off", agent_services=["heartbeat"], description="a\nb"
    )
    after = vm.spec()
    assert change.changed and change.after == after and vm.state is VMState.RUNNING
    assert (after.snapshot_mode, after.on_host_stop) == (SnapshotMode.QUIESCED, HostStopAction.POWER_OFF)
    assert (after.agent_services, after.description) == ((AgentService.HEARTBEAT,), "a\nb")
    assert after.disks == before.disks and after.memory == before.memory
    assert not vm.configure(snapshot_mode="quiesced").changed
    assert vm.configure(description=None).after.description is None  # type: ignore[union-attr]
    assert vm.spec().snapshot_mode is SnapshotMode.QUIESCED  # what was not named stays


def test_configure_refusals_change_nothing(host: virtkit.Host) -> None:
    host.create({"name": "cf2", "memory": "64MiB"})
    vm = host.get("cf2")
    before = vm.spec()
    with pytest.raises(Conflict, match="no guest agent channel"):
        vm.configure(agent_services=["heartbeat"])
    for kwargs, field in (
        ({"snapshot_mode": "sometimes"}, "snapshot_mode"),
        ({"on_host_stop": 5}, "on_host_stop"),
        ({"description": "x\x00y"}, "description"),
        ({"check": "no"}, "check"),
    ):
        with pytest.raises(InvalidSpec) as err:
            vm.configure(**kwargs)  # type: ignore[arg-type]
        assert err.value.field == field
    assert vm.spec() == before
