"""Saved state on a real lab host with the real test guest, checked from inside the guest (its serial log).

A guest saved and brought back must go on where it was: its in-memory counter and its uptime continue, and no new
boot marker appears. A truncated save file must fail to restore and leave no VM behind.

VMs are named ``save*`` (with the run's prefix, through the ``own`` fixture, which removes them and their files).
"""

from __future__ import annotations

import time

import pytest

import helpers
import virtkit
from virtkit import VMState
from virtkit.lab import image
from virtkit.lab.paths import shared_dir
from virtkit.lab.serial import GuestEvent, GuestLog


def _boot(host: virtkit.Host, guest: image.GuestImage, name: str) -> tuple[virtkit.VM, GuestLog]:
    host.create(helpers.spec_data(guest, name), start=True)
    log = helpers.serial_log(name)
    log.wait_for_boot(timeout=120)
    return host.get(name), log


def _assert_went_on(log: GuestLog, last: GuestEvent, boots: int) -> None:
    """The guest resumed where it stopped: the next alive line continues the counter and the uptime."""
    back = log.wait_for_alive(timeout=15, after_line=last.line_no)
    assert helpers.counter(last) < helpers.counter(back) <= helpers.counter(last) + 3, (last, back)
    assert last.uptime < back.uptime < last.uptime + 5, (last, back)  # the guest's clock did not see the pause
    assert len(log.boots()) == boots, log.tail()


def _frozen(log: GuestLog) -> GuestEvent:
    """The last alive line of a guest that was stopped: none follows within two periods."""
    last = log.last_alive()
    assert last is not None
    time.sleep(2.5)
    assert log.last_alive() == last
    return last


def test_save_then_restore_goes_on_where_it_was(
    host1: virtkit.Host, guest: image.GuestImage, own: helpers.Owned
) -> None:
    name = own("save1")
    vm, log = _boot(host1, guest, name)
    path = shared_dir() / f"{name}.save"
    helpers.next_alive(log)
    boots = len(log.boots())

    with pytest.raises(virtkit.InvalidSpec) as err:
        vm.save("/root/save1.save")
    assert err.value.field == "path" and vm.state is VMState.RUNNING
    check = vm.save(path, check=True)
    assert check.changed and check.after is not None and check.after.state is VMState.STOPPED
    assert vm.state is VMState.RUNNING and not path.exists()

    saved = vm.save(path)
    assert saved.after is not None and saved.after.state is VMState.STOPPED and saved.after.reason == "saved"
    assert path.is_file() and vm.state is VMState.STOPPED
    last = _frozen(log)
    assert not vm.save(path).changed  # its state is in that file already

    assert host1.restore(path, check=True).changed and vm.state is VMState.STOPPED
    restored = host1.restore(path)
    assert restored.after is not None and restored.after.state is VMState.RUNNING
    assert restored.after.reason == "restored" and restored.after.uuid == saved.after.uuid
    _assert_went_on(log, last, boots)
    assert not host1.restore(path).changed  # it runs: nothing to do


def test_managed_save_then_start_goes_on_and_discard_boots_afresh(
    host1: virtkit.Host, guest: image.GuestImage, own: helpers.Owned
) -> None:
    vm, log = _boot(host1, guest, own("save2"))
    helpers.next_alive(log)
    boots = len(log.boots())

    assert vm.managed_save(check=True).changed and vm.state is VMState.RUNNING
    change = vm.managed_save()
    assert change.after is not None and change.after.state is VMState.SAVED and change.after.managed_save
    assert vm.state is VMState.SAVED  # what Hyper-V calls Saved, read back from the host
    last = _frozen(log)
    assert not vm.managed_save().changed

    started = vm.start()
    assert started.after is not None and started.after.state is VMState.RUNNING
    assert not started.after.managed_save
    _assert_went_on(log, last, boots)

    vm.managed_save()
    assert vm.discard_saved_state(check=True).changed and vm.state is VMState.SAVED
    discarded = vm.discard_saved_state()
    assert discarded.after is not None and discarded.after.state is VMState.STOPPED
    assert not vm.discard_saved_state().changed
    vm.start()
    log.wait_for_boot(timeout=120, after_boots=boots)  # no saved state left: a fresh boot


def test_truncated_save_file_fails_and_leaves_no_vm(
    host1: virtkit.Host, guest: image.GuestImage, own: helpers.Owned
) -> None:
    name = own("save3")
    vm, log = _boot(host1, guest, name)
    helpers.next_alive(log)
    boots = len(log.boots())
    path = shared_dir() / f"{name}.save"
    vm.save(path)
    last = _frozen(log)
    truncated = shared_dir() / f"{name}.truncated.save"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    # Defined VM: the failed restore leaves it stopped, as it was.
    with pytest.raises(virtkit.VirtkitError):
        host1.restore(truncated)
    assert vm.state is VMState.STOPPED

    # Not defined: the failed restore leaves no VM at all.
    vm.delete()
    with pytest.raises(virtkit.VirtkitError):
        host1.restore(truncated)
    assert not host1.exists(name)

    # The whole file still restores (as a transient VM now), and the guest goes on.
    restored = host1.restore(path)
    assert restored.before is None and restored.after is not None and not restored.after.persistent
    _assert_went_on(log, last, boots)


def test_a_restored_transient_vm_can_be_destroyed(
    host1: virtkit.Host, guest: image.GuestImage, own: helpers.Owned
) -> None:
    """Restoring a save file of a VM with no definition gives a transient VM, which is gone once destroyed."""
    name = own("save4")
    vm, log = _boot(host1, guest, name)
    path = shared_dir() / f"{name}.save"
    helpers.next_alive(log)
    vm.save(path)
    vm.delete()  # the definition goes; the save file stays
    try:
        restored = host1.restore(path)
        assert restored.after is not None and not restored.after.persistent
        gone = host1.get(name).destroy()
        assert gone.before is not None and gone.before.state is VMState.RUNNING
        assert gone.after is None
        assert not host1.exists(name)
    finally:
        path.unlink(missing_ok=True)
