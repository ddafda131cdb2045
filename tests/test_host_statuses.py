"""Host.statuses: every VM in one bulk read, each state the one VM.info reads."""

from __future__ import annotations

from pathlib import Path

import pytest

import virtkit
from virtkit import VMState


def test_statuses_agree_with_info_in_every_state(host: virtkit.Host, storage: Path) -> None:
    for name in ("run1", "pause1", "off1", "saved1"):
        spec = {"name": name, "memory": "256MiB", "disks": [{"path": str(storage / f"{name}.qcow2"), "size": "16MiB"}]}
        host.create(spec, start=name != "off1")
    host.get("pause1").pause()
    host.get("saved1").managed_save()
    statuses = {s.name: s for s in host.statuses()}
    for vm in host.list():
        info = vm.info()
        status = statuses[vm.name]
        assert (status.uuid, status.state, status.reason, status.host) == (
            info.uuid,
            info.state,
            info.reason,
            info.host,
        )
    assert [statuses[n].state for n in ("run1", "pause1", "off1", "saved1")] == [
        VMState.RUNNING,
        VMState.PAUSED,
        VMState.STOPPED,
        VMState.SAVED,
    ]
    # The test driver reports no balloon or vCPU statistics in bulk: said as None, not guessed.
    assert statuses["run1"].memory is None and statuses["run1"].vcpus is None


def test_a_vm_virtkit_does_not_model_is_still_listed() -> None:
    # test:///default holds a VM called "test" of domain type 'test', whose info virtkit refuses (no accelerator).
    with virtkit.connect("test:///default") as host:
        with pytest.raises(virtkit.Unsupported):
            host.get("test").info()
        (status,) = [s for s in host.statuses() if s.name == "test"]
        assert status.state is VMState.RUNNING
