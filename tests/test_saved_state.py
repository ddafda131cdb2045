"""Saved state on libvirt's test:// driver: save/restore to a file, managed save, discard; idempotence, check mode,
and bad input refused before anything changes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import virtkit
from virtkit import AlreadyExists, Conflict, InvalidSpec, VMState


def _create(host: virtkit.Host, storage: Path, name: str = "web1") -> virtkit.VM:
    data: dict[str, Any] = {
        "name": name,
        "memory": "256MiB",
        "disks": [{"path": str(storage / f"{name}.qcow2"), "size": "64MiB"}],
    }
    host.create(data, start=True)
    return host.get(name)


def test_save_then_restore(host: virtkit.Host, storage: Path) -> None:
    vm = _create(host, storage)
    path = storage / "web1.save"
    change = vm.save(path)
    assert change.changed and change.after is not None
    assert change.after.state is VMState.STOPPED and change.after.reason == "saved"
    assert not change.after.managed_save and path.is_file()
    assert not vm.save(path).changed  # stopped, and the file holds its saved state
    restored = host.restore(path)
    assert restored.changed and restored.before is not None and restored.after is not None
    assert restored.before.state is VMState.STOPPED
    assert restored.after.state is VMState.RUNNING and restored.after.reason == "restored"
    assert restored.after.uuid == change.after.uuid
    assert not host.restore(path).changed  # it runs already
    assert vm.save(path).changed  # an earlier saved state of the same VM may be overwritten


def test_save_and_restore_check_mode(host: virtkit.Host, storage: Path) -> None:
    vm = _create(host, storage)
    path = storage / "web1.save"
    check = vm.save(path, check=True)
    assert check.check and check.changed and check.after is not None and check.after.state is VMState.STOPPED
    assert vm.state is VMState.RUNNING and not path.exists()
    vm.save(path)
    predicted = host.restore(path, check=True)
    assert predicted.after is not None and predicted.after.state is VMState.RUNNING
    assert predicted.after.vcpus == 1 and predicted.after.memory == 256 * 1024**2
    assert predicted.after.persistent
    assert vm.state is VMState.STOPPED


@pytest.mark.parametrize("where", ["/etc/web1.save", "relative.save", "{storage}/nodir/web1.save"])
def test_save_to_a_bad_path_changes_nothing(host: virtkit.Host, storage: Path, where: str) -> None:
    vm = _create(host, storage)
    with pytest.raises(InvalidSpec) as err:
        vm.save(where.replace("{storage}", str(storage)))
    assert err.value.field == "path"
    assert vm.state is VMState.RUNNING


def test_save_over_a_foreign_file_is_refused(host: virtkit.Host, storage: Path) -> None:
    vm = _create(host, storage)
    other = storage / "notes.txt"
    other.write_text("keep me\n")
    with pytest.raises(InvalidSpec, match="not a saved state of web1"):
        vm.save(other)
    assert other.read_text() == "keep me\n" and vm.state is VMState.RUNNING


def test_save_of_a_stopped_vm_is_a_conflict(host: virtkit.Host, storage: Path) -> None:
    vm = _create(host, storage)
    vm.destroy()
    with pytest.raises(Conflict, match="stopped"):
        vm.save(storage / "web1.save")
    assert not (storage / "web1.save").exists()


def test_restore_of_a_bad_or_missing_file(host: virtkit.Host, storage: Path) -> None:
    before = sorted(v.name for v in host.list())
    junk = storage / "junk.save"
    junk.write_bytes(os.urandom(4096))
    for path in (junk, storage / "missing.save", Path("/etc/hostname")):
        with pytest.raises(InvalidSpec) as err:
            host.restore(path)
        assert err.value.field == "path"
    assert sorted(v.name for v in host.list()) == before


def test_restore_of_a_truncated_file_leaves_no_domain(host: virtkit.Host, storage: Path) -> None:
    vm = _create(host, storage)
    path = storage / "web1.save"
    vm.save(path)
    vm.delete()
    truncated = storage / "web1.truncated.save"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(virtkit.VirtkitError):
        host.restore(truncated)
    assert not host.exists("web1")
    transient = host.restore(path)  # the whole file still works: as a transient VM now
    assert transient.before is None and transient.after is not None and not transient.after.persistent


def test_restore_next_to_another_vm_of_that_name(host: virtkit.Host, storage: Path) -> None:
    vm = _create(host, storage)
    path = storage / "web1.save"
    vm.save(path)
    vm.delete()
    _create(host, storage)  # a new web1: another UUID
    with pytest.raises(AlreadyExists, match="another VM of that name"):
        host.restore(path)


def test_managed_save_start_and_discard(host: virtkit.Host, storage: Path) -> None:
    vm = _create(host, storage)
    check = vm.managed_save(check=True)
    assert check.after is not None and check.after.state is VMState.SAVED and vm.state is VMState.RUNNING
    change = vm.managed_save()
    assert change.after is not None and change.after.state is VMState.SAVED and change.after.managed_save
    assert not vm.managed_save().changed
    started = vm.start()
    assert started.after is not None and started.after.state is VMState.RUNNING and not started.after.managed_save
    vm.managed_save()
    assert vm.discard_saved_state(check=True).changed and vm.state is VMState.SAVED
    discarded = vm.discard_saved_state()
    assert discarded.after is not None and discarded.after.state is VMState.STOPPED
    assert not discarded.after.managed_save
    assert not vm.discard_saved_state().changed
    with pytest.raises(Conflict, match="stopped"):
        vm.managed_save()
