"""VM.set_resources on libvirt's test driver: live within the maxima, the definition when stopped, bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import virtkit
from virtkit import Conflict, InvalidSpec, VMState
from virtkit.units import MiB


def _vm(host: virtkit.Host, storage: Path, *, start: bool = True, **extra: Any) -> virtkit.VM:
    spec = {
        "name": "web1",
        "memory": "256MiB",
        "max_memory": "512MiB",
        "vcpus": 1,
        "max_vcpus": 4,
        "disks": [{"path": str(storage / "web1.qcow2"), "size": "64MiB"}],
        **extra,
    }
    host.create(spec, start=start)
    return host.get("web1")


def test_live_within_the_maxima_then_nothing(host: virtkit.Host, storage: Path) -> None:
    vm = _vm(host, storage)
    check = vm.set_resources(memory="384MiB", vcpus=2, check=True)
    assert check.check and check.changed and vm.spec().memory == 256 * MiB
    change = vm.set_resources(memory="384MiB", vcpus=2)
    assert change.changed and change.after is not None
    assert (change.after.memory, change.after.vcpus) == (384 * MiB, 2)
    assert vm.state is VMState.RUNNING and (vm.info().memory, vm.info().vcpus) == (384 * MiB, 2)
    assert not vm.set_resources(memory=384 * MiB, vcpus=2).changed


def test_a_stopped_vm_changes_its_definition(host: virtkit.Host, storage: Path) -> None:
    vm = _vm(host, storage, start=False)
    change = vm.set_resources(vcpus=3)
    assert change.changed and vm.spec().vcpus == 3 and vm.state is VMState.STOPPED


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"memory": "1GiB"}, "memory"),
        ({"memory": "lots"}, "memory"),
        ({"memory": "1MiB"}, "memory"),
        ({"vcpus": 5}, "vcpus"),
        ({"vcpus": 0}, "vcpus"),
        ({"vcpus": "two"}, "vcpus"),
        ({"check": "yes"}, "check"),
    ],
)
def test_bad_values_are_refused_naming_the_field(
    host: virtkit.Host, storage: Path, kwargs: dict[str, Any], field: str
) -> None:
    vm = _vm(host, storage)
    before = vm.spec()
    with pytest.raises(InvalidSpec) as err:
        vm.set_resources(**kwargs)
    assert err.value.field == field
    assert vm.spec() == before


def test_a_saved_vm_is_refused(host: virtkit.Host, storage: Path) -> None:
    vm = _vm(host, storage)
    vm.managed_save()
    with pytest.raises(Conflict, match="saved"):
        vm.set_resources(vcpus=2)
