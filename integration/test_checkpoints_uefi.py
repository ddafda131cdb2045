"""Memory checkpoints of UEFI (Generation 2) VMs on real lab hosts, checked from inside the guest.

libvirt 9.0 takes no internal snapshot of a VM with UEFI pflash firmware and cannot revert to or delete an external
one with memory the way a checkpoint needs: virtkit takes an external snapshot with memory and a copy of the UEFI
variable store, and reverts and deletes it itself. The guest counts in memory (``VIRTKIT-ALIVE ... counter=N``) and
reports its disks (``VIRTKIT-DISKS``) on its serial port: after a revert both must be those of the checkpoint.

VMs are named ``ckpt*`` (with the run's prefix, through the ``own`` fixtures, which remove them and their files).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import helpers
import virtkit
from virtkit import SnapshotKind, VMState
from virtkit.lab import daemons, image
from virtkit.lab.paths import shared_dir
from virtkit.lab.serial import GuestEvent, GuestLog

_BOOT = 180.0  # seconds for a UEFI boot under TCG (measured: 7-9 s)
_SEEN = 20.0  # seconds for the guest to report a change of its disks (measured: 0.2-0.5 s)


def _files(name: str) -> list[str]:
    """The VM's files in the shared directory."""
    return [f for f in helpers.listing(shared_dir()) if f.startswith(f"{name}.") or f.startswith(f"{name}-")]


def _alive_after(log: GuestLog, line: int) -> GuestEvent:
    """The guest's first alive line after line ``line`` of its log."""
    return log.wait_for_alive(timeout=30, after_line=line)


def _last_alive(events: list[GuestEvent]) -> GuestEvent:
    return next(e for e in reversed(events) if e.counter is not None)


def _booted(host: virtkit.Host, guest: image.GuestImage, name: str) -> tuple[virtkit.VM, GuestLog, GuestEvent]:
    """A UEFI VM of the test guest, created and booted on ``host``: the VM, its serial log and its boot line."""
    host.create(helpers.spec(guest, name, firmware="uefi", machine="q35"), start=True)
    log = helpers.serial_log(name)
    return host.get(name), log, log.wait_for_boot(timeout=_BOOT)


def test_uefi_checkpoint_revert_brings_back_memory_and_disks(
    lab_hosts: list[daemons.LabHost], guest: image.GuestImage, own: helpers.Owned
) -> None:
    name = own("ckpt1")
    shared = shared_dir()
    with virtkit.connect(lab_hosts[0].uri) as host:
        vm, log, boot = _booted(host, guest, name)
        assert log.wait_for_disks(lambda d: d == ("vda",), timeout=_SEEN)
        nvram = shared / f"{name}.nvram.fd"
        assert nvram.is_file()  # the variable store lies beside the disk, inside the storage roots

        at = helpers.next_alive(log)
        change = vm.snapshots.create("c1", description="before the data disk")
        taken = change.after
        assert taken is not None and taken.kind is SnapshotKind.MEMORY and taken.vm_state is VMState.RUNNING
        assert vm.state is VMState.RUNNING  # paused for the copy of the variable store, running again
        assert (shared / f"{name}.c1.mem").is_file() and (shared / f"{name}.c1.nvram.fd").is_file()
        assert vm.spec().disks[0].path == shared / f"{name}-vda.c1.qcow2"

        # After the checkpoint: a disk hot-added (the guest sees it) and the guest counting on.
        data = shared / f"{name}-data.qcow2"
        vm.disks.attach({"path": str(data), "size": "32MiB"})
        assert log.wait_for_disks(lambda d: set(d) == {"vda", "vdb"}, timeout=_SEEN)
        later = log.wait_for(lambda evs: helpers.counter(_last_alive(evs)) >= helpers.counter(at) + 5, 30)
        before_revert = _last_alive(later)

        reverted = vm.snapshots.revert("c1")
        assert reverted.after is not None and reverted.after.state is VMState.RUNNING
        back = _alive_after(log, before_revert.line_no)
        # The guest goes on from the checkpoint: its counter is about what it was then, it did not boot again,
        # and the disk added after the checkpoint is gone from the guest and from the definition.
        assert helpers.counter(at) <= helpers.counter(back) <= helpers.counter(at) + 2, (at, back, before_revert)
        assert back.uptime < before_revert.uptime and len(log.boots()) == 1, log.tail()
        assert [d.target for d in vm.spec().disks] == ["vda"]
        # The guest's own view: it reports its disks when they change, and it came back believing it has vda
        # alone (what it saw at the checkpoint), so a SCSI disk added now makes it report sda and vda, no vdb.
        vm.disks.attach({"path": str(shared / f"{name}-scsi.qcow2"), "size": "32MiB", "bus": "scsi"})
        assert log.wait_for_disks(lambda d: set(d) == {"sda", "vda"}, timeout=_SEEN)
        vm.disks.detach("sda")
        assert log.wait_for_disks(lambda d: d == ("vda",), timeout=_SEEN)
        top = vm.spec().disks[0].path
        assert top.name.startswith(f"{name}-vda.c1.") and top != shared / f"{name}-vda.c1.qcow2"
        assert data.is_file()  # the user's image is never removed
        assert not (shared / f"{name}-vda.c1.qcow2").exists()  # the discarded present state is gone
        assert boot.firmware == "efi"

        # A tree: c2 on top of c1, a revert to c1 again (c1 can be reverted to more than once).
        vm.snapshots.create("c2")
        assert [(s.name, s.parent) for s in vm.snapshots.list()] == [("c1", None), ("c2", "c1")]
        mark = helpers.next_alive(log)
        vm.snapshots.revert("c1")
        again = _alive_after(log, mark.line_no)
        assert helpers.counter(again) <= helpers.counter(at) + 2 and len(log.boots()) == 1
        assert vm.snapshots.current().name == "c1"  # type: ignore[union-attr]

        # Deleting both merges everything back: the VM runs on its first image, and only its own files remain.
        vm.snapshots.delete("c1", children=True)
        assert vm.snapshots.list() == [] and vm.state is VMState.RUNNING
        assert vm.spec().disks[0].path == shared / f"{name}.qcow2"
        assert _files(name) == [
            f"{name}-data.qcow2",
            f"{name}-scsi.qcow2",
            f"{name}.nvram.fd",
            f"{name}.qcow2",
            f"{name}.serial.log",
        ]
        mark = helpers.next_alive(log)
        assert helpers.counter(_alive_after(log, mark.line_no)) > helpers.counter(mark)  # it counts on
        vm.destroy()


def test_uefi_checkpoint_of_a_stopped_vm_and_delete_while_off(
    lab_hosts: list[daemons.LabHost], guest: image.GuestImage, own: helpers.Owned
) -> None:
    name = own("ckpt2")
    shared = shared_dir()
    with virtkit.connect(lab_hosts[0].uri) as host:
        vm, log, _ = _booted(host, guest, name)
        vm.destroy()
        off = vm.snapshots.create("off1").after
        assert off is not None and off.kind is SnapshotKind.MEMORY and off.vm_state is VMState.STOPPED
        assert not (shared / f"{name}.off1.mem").exists()  # nothing ran: no memory to keep
        boots = len(log.boots())
        vm.start()
        log.wait_for_boot(timeout=_BOOT, after_boots=boots)
        change = vm.snapshots.revert("off1")
        assert change.after is not None and change.after.state is VMState.STOPPED
        # A child, then its parent deleted alone: the child moves up and still reverts; nothing can merge yet.
        vm.snapshots.create("off2")
        vm.snapshots.delete("off1")
        assert [(s.name, s.parent) for s in vm.snapshots.list()] == [("off2", None)]
        assert not (shared / f"{name}.off1.nvram.fd").exists() and (shared / f"{name}.off2.nvram.fd").exists()
        assert vm.snapshots.revert("off2").after.state is VMState.STOPPED  # type: ignore[union-attr]
        # Deleted while off: the overlays are merged with qemu-img and the definition points at the image again.
        assert vm.snapshots.delete("off2").changed
        assert vm.spec().disks[0].path == shared / f"{name}.qcow2"
        assert _files(name) == [f"{name}.nvram.fd", f"{name}.qcow2", f"{name}.serial.log"]
        boots = len(log.boots())
        vm.start()
        log.wait_for_boot(timeout=_BOOT, after_boots=boots)
        vm.destroy()


@pytest.mark.parametrize("where", ["overlay", "memory"])
def test_a_checkpoint_whose_file_is_missing_is_refused_and_nothing_changes(
    lab_hosts: list[daemons.LabHost], guest: image.GuestImage, own: helpers.Owned, where: str
) -> None:
    name = own(f"ckpt3{where[0]}")
    shared = shared_dir()
    with virtkit.connect(lab_hosts[0].uri) as host:
        vm = _booted(host, guest, name)[0]
        vm.snapshots.create("c1")
        vm.snapshots.create("c2")
        # c2 keeps the overlay of c1; lose c2's memory file, or c1's overlay that c2 keeps
        lost: Path = shared / (f"{name}-vda.c1.qcow2" if where == "overlay" else f"{name}.c2.mem")
        lost.rename(lost.with_suffix(".away"))
        before, files = vm.info(), _files(name)
        with pytest.raises(virtkit.InvalidSpec) as err:
            vm.snapshots.revert("c2")
        assert err.value.field == "name" and "does not exist" in err.value.reason
        assert vm.info() == before and _files(name) == files and vm.state is VMState.RUNNING
        lost.with_suffix(".away").rename(lost)
        vm.destroy()


def test_a_revert_that_fails_leaves_the_vm_off_with_its_images_and_can_be_run_again(
    lab_hosts: list[daemons.LabHost], guest: image.GuestImage, own: helpers.Owned
) -> None:
    """Fault injection: the memory file is damaged after the checks, so QEMU fails to load it mid-revert."""
    name = own("ckpt4")
    shared = shared_dir()
    with virtkit.connect(lab_hosts[0].uri) as host:
        vm, log, _ = _booted(host, guest, name)
        vm.pause()
        taken = vm.snapshots.create("p1").after
        assert taken is not None and taken.vm_state is VMState.PAUSED
        vm.resume()
        memory = shared / f"{name}.p1.mem"
        good = memory.read_bytes()
        memory.write_bytes(good[: len(good) // 2])  # a truncated save image: libvirt reads its header, QEMU fails
        with pytest.raises(virtkit.VirtkitError):
            vm.snapshots.revert("p1")
        # Nothing is lost: the VM is off (on this host only), the image it kept is intact, the checkpoint stays.
        assert vm.state is VMState.STOPPED
        assert [s.name for s in vm.snapshots.list()] == ["p1"]
        assert virtkit.images.info(shared / f"{name}.qcow2", roots=[shared]).format is virtkit.DiskFormat.QCOW2
        memory.write_bytes(good)
        mark = log.last_alive()
        change = vm.snapshots.revert("p1")
        assert change.after is not None and change.after.state is VMState.PAUSED  # as it was when taken
        vm.resume()
        assert _alive_after(log, mark.line_no if mark is not None else 0).counter is not None
        vm.snapshots.delete("p1")
        assert vm.spec().disks[0].path == shared / f"{name}.qcow2"
        assert _files(name) == [f"{name}.nvram.fd", f"{name}.qcow2", f"{name}.serial.log"]  # no orphan overlay
        vm.destroy()


def test_the_hyperv_checkpoints_example_runs_on_a_lab_host(host1: virtkit.Host, own: helpers.Owned) -> None:
    name = own("ckex")
    script = Path(__file__).parent.parent / "examples" / "hyperv_checkpoints.py"
    cmd = [sys.executable, str(script), "--uri", host1.uri, "--name", name]
    result = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "Checkpoint-VM: first (memory)" in result.stdout and "Get-VMSnapshot: baseline Standard" in result.stdout
    before, after = re.search(r"uptime said (\d+) s before, (\d+) s next", result.stdout).groups()  # type: ignore[union-attr]
    assert int(after) < int(before), result.stdout  # the guest went back in time
    assert not host1.exists(name) and not list(shared_dir().glob(f"{name}*"))
