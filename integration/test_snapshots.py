"""Snapshots on real lab hosts with the real test guest, checked from inside the guest (its serial log).

The guest counts in memory (``VIRTKIT-ALIVE ... counter=N`` every second): reverting to a memory snapshot must bring
that counter back. libvirt here is 9.0: what it cannot do at all (internal snapshots of raw disks, internal and
external snapshots mixed) must be refused before anything changes; reverting to and deleting external snapshots,
which it cannot do either, virtkit does by hand (UEFI VMs: test_checkpoints_uefi.py).

VMs are named ``snap*`` (with the run's prefix, through the ``own`` fixtures, which remove them and their files).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

import helpers
import virtkit
from virtkit import SnapshotKind, Unsupported, VMState
from virtkit.lab import daemons, image
from virtkit.lab.paths import shared_dir
from virtkit.lab.serial import GuestEvent, GuestLog


@pytest.fixture(scope="module")
def running(
    lab_hosts: list[daemons.LabHost], guest: image.GuestImage, own_module: helpers.Owned
) -> tuple[str, str, GuestLog]:
    """A VM booted on host1 for the module (its URI, name and serial log); each test leaves it without snapshots."""
    name = own_module("snap1")
    with virtkit.connect(lab_hosts[0].uri) as host:
        host.create(helpers.spec(guest, name), start=True)
    log = helpers.serial_log(name)
    log.wait_for_boot(timeout=120)
    return lab_hosts[0].uri, name, log


@pytest.fixture
def vm1(running: tuple[str, str, GuestLog]) -> Iterator[virtkit.VM]:
    with virtkit.connect(running[0]) as host:
        vm = host.get(running[1])
        assert vm.state is VMState.RUNNING
        yield vm
        for root in vm.snapshots.tree():
            vm.snapshots.delete(root.info.name, children=True)


def _alive(events: list[GuestEvent]) -> GuestEvent:
    """The latest alive line among ``events``."""
    return next(e for e in reversed(events) if e.counter is not None)


def test_revert_brings_the_guest_back_to_the_snapshot(vm1: virtkit.VM, running: tuple[str, str, GuestLog]) -> None:
    log = running[2]
    at = helpers.next_alive(log)
    taken = vm1.snapshots.create("c1", description="counter checkpoint").after
    assert taken is not None and taken.kind is SnapshotKind.MEMORY and taken.vm_state is VMState.RUNNING
    boots = len(log.boots())
    later = log.wait_for(lambda evs: helpers.counter(_alive(evs)) >= helpers.counter(at) + 4, timeout=20)
    before_revert = _alive(later)

    change = vm1.snapshots.revert("c1")
    assert change.acted and change.after is not None
    assert change.after.state is VMState.RUNNING and change.after.reason == "from_snapshot"

    back = log.wait_for_alive(timeout=15, after_line=before_revert.line_no)
    # The guest goes on from the snapshot: the counter went back to about its value then, and so did its uptime.
    assert helpers.counter(at) <= helpers.counter(back) <= helpers.counter(at) + 2, (at, back, before_revert)
    assert helpers.counter(back) < helpers.counter(before_revert)
    assert back.uptime < before_revert.uptime
    assert len(log.boots()) == boots  # not a reboot
    then = log.wait_for_alive(timeout=15, after_line=back.line_no)
    assert helpers.counter(then) == helpers.counter(back) + 1  # and it keeps counting from there


def test_revert_drops_a_disk_added_after_the_snapshot(vm1: virtkit.VM, running: tuple[str, str, GuestLog]) -> None:
    """Generation 1 (BIOS, internal snapshots): the guest's disks after a revert are those of the snapshot."""
    log = running[2]
    assert log.wait_for_disks(lambda d: d == ("vda",), timeout=20)
    vm1.snapshots.create("d0")
    added = shared_dir() / f"{vm1.name}-late.qcow2"
    vm1.disks.attach({"path": str(added), "size": "32MiB"})
    assert log.wait_for_disks(lambda d: set(d) == {"vda", "vdb"}, timeout=20)
    vm1.snapshots.revert("d0")
    assert [d.target for d in vm1.spec().disks] == ["vda"] and added.is_file()
    # The guest came back believing it has vda alone: a SCSI disk added now makes it report sda and vda, no vdb.
    scsi = shared_dir() / f"{vm1.name}-scsi.qcow2"
    vm1.disks.attach({"path": str(scsi), "size": "32MiB", "bus": "scsi"})
    assert log.wait_for_disks(lambda d: set(d) == {"sda", "vda"}, timeout=20)
    vm1.disks.detach("sda")
    assert log.wait_for_disks(lambda d: d == ("vda",), timeout=20)
    for path in (added, scsi):
        path.unlink()


def test_tree_current_and_delete(vm1: virtkit.VM) -> None:
    snaps = vm1.snapshots
    snaps.create("t1")
    snaps.create("t2")
    snaps.revert("t1")
    snaps.create("t3")
    (root,) = snaps.tree()
    assert root.info.name == "t1" and [c.info.name for c in root.children] == ["t2", "t3"]
    current = snaps.current()
    assert current is not None and (current.name, current.parent) == ("t3", "t1")

    assert snaps.delete("t2").changed  # one leaf
    snaps.create("t4")  # a child of t3
    assert snaps.delete("t1").changed  # without children: t3 (with t4) moves up
    (root,) = snaps.tree()
    assert root.info.name == "t3" and root.info.parent is None
    assert [c.info.name for c in root.children] == ["t4"]
    deleted = snaps.delete("t3", children=True)
    assert deleted.before is not None and deleted.before.name == "t3"
    assert snaps.list() == [] and snaps.current() is None
    assert not snaps.delete("t3").changed


def test_idempotence_and_check_mode(vm1: virtkit.VM, running: tuple[str, str, GuestLog]) -> None:
    log = running[2]
    snaps = vm1.snapshots
    assert snaps.create("i1", check=True).changed and snaps.list() == []
    first = snaps.create("i1")
    assert first.changed
    assert not snaps.create("i1").changed
    with pytest.raises(virtkit.AlreadyExists):
        snaps.create("i1", kind=SnapshotKind.DISK_ONLY)
    assert snaps.list() == [first.after]

    start = helpers.next_alive(log)
    time.sleep(2)
    check = snaps.revert("i1", check=True)
    assert check.check and check.acted
    after = helpers.next_alive(log)
    assert helpers.counter(after) > helpers.counter(start)  # not reverted: it counts on
    assert vm1.state is VMState.RUNNING
    assert snaps.delete("i1", check=True).changed and [s.name for s in snaps.list()] == ["i1"]


def test_memory_snapshot_of_a_raw_disk_is_refused_and_disk_only_works(
    lab_hosts: list[daemons.LabHost], guest: image.GuestImage, own: helpers.Owned
) -> None:
    name = own("snapraw1")
    raw = {"path": str(shared_dir() / f"{name}.img"), "size": "64MiB", "format": "raw"}
    spec = helpers.spec(guest, name, disks=[raw])
    with virtkit.connect(lab_hosts[0].uri) as host:
        host.create(spec)
        vm = host.get(name)
        before = vm.info()
        with pytest.raises(Unsupported, match="vda is raw; take a disk-only snapshot"):
            vm.snapshots.create("m1")
        assert vm.snapshots.list() == [] and vm.info() == before
        # what the message says works, works
        taken = vm.snapshots.create("d1", kind="disk-only").after
        assert taken is not None and taken.kind is SnapshotKind.DISK_ONLY and taken.vm_state is VMState.STOPPED
        overlay = shared_dir() / f"{name}-vda.d1.qcow2"
        assert overlay.is_file()
        assert vm.spec().disks[0].path == overlay  # the VM now writes to the overlay
        # libvirt 9.0 cannot mix a memory snapshot in: refused, nothing changed
        with pytest.raises(Unsupported, match="cannot mix"):
            vm.snapshots.create("m1")
        assert [s.name for s in vm.snapshots.list()] == ["d1"] and vm.info() == before
        # it cannot revert to it either: virtkit does, with a new overlay on the raw image the snapshot kept
        assert vm.snapshots.revert("d1").after.state is VMState.STOPPED  # type: ignore[union-attr]
        again = vm.spec().disks[0].path
        assert again != overlay and again.name.startswith(f"{name}-vda.d1.") and not overlay.exists()
        assert virtkit.images.info(again, roots=[shared_dir()]).backing_file == shared_dir() / f"{name}.img"
        assert vm.snapshots.delete("d1").changed  # merged back into the raw image
        assert not again.exists() and vm.spec().disks[0].path == shared_dir() / f"{name}.img"
        assert vm.spec().disks[0].format is virtkit.DiskFormat.RAW
        assert [f for f in helpers.listing(shared_dir()) if f.startswith(name)] == [f"{name}.img"]  # never started


def test_quiesced_through_the_agent_and_its_fallback(
    lab_hosts: list[daemons.LabHost], agent_guest: image.GuestImage, own: helpers.Owned
) -> None:
    name = own("snapq1")
    with virtkit.connect(lab_hosts[0].uri) as host:
        host.create(helpers.spec(agent_guest, name, guest_agent=True), start=True)
        log = helpers.serial_log(name)
        boot = log.wait_for_boot(timeout=120)
        assert log.wait_for_agent(timeout=120, after_line=boot.line_no).status == "started", log.tail()
        vm = host.get(name)

        change = vm.snapshots.create("prod1", kind=SnapshotKind.QUIESCED, fallback=False)
        info = change.after
        assert info is not None and info.kind is SnapshotKind.QUIESCED and info.quiesced
        assert info.vm_state is VMState.RUNNING
        assert vm.snapshots.get("prod1") == info  # virtkit's record says quiesced, read back from the host
        assert (shared_dir() / f"{name}-vda.prod1.qcow2").is_file()
        assert not vm.snapshots.create("prod1", kind="quiesced").changed

        # Paused, the agent cannot answer: ProductionOnly is refused; the fallback to memory is not possible
        # next to a disk-only snapshot; either way nothing is taken.
        vm.pause()
        with pytest.raises(Unsupported, match="does not answer"):
            vm.snapshots.create("prod2", kind="quiesced", fallback=False)
        with pytest.raises(Unsupported, match="fallback to a memory snapshot is not possible"):
            vm.snapshots.create("prod2", kind="quiesced")
        assert [s.name for s in vm.snapshots.list()] == ["prod1"] and vm.state is VMState.PAUSED
        vm.resume()

        assert vm.snapshots.delete("prod1").changed  # merged back while it runs
        assert not (shared_dir() / f"{name}-vda.prod1.qcow2").exists()
        assert vm.spec().disks[0].path == shared_dir() / f"{name}.qcow2" and vm.state is VMState.RUNNING

        # Reverting to a quiesced snapshot (libvirt 9.0 cannot; virtkit does) leaves the VM off, as applying a
        # Production checkpoint does on Hyper-V: it holds no memory. Started, the guest boots from its disk.
        vm.snapshots.create("prod2", kind="quiesced", fallback=False)
        boots = len(log.boots())
        change = vm.snapshots.revert("prod2")
        assert change.before is not None and change.before.state is VMState.RUNNING
        assert change.after is not None and change.after.state is VMState.STOPPED
        vm.start()
        log.wait_for_boot(timeout=120, after_boots=boots)
        assert vm.snapshots.delete("prod2").changed and vm.snapshots.list() == []
        assert vm.spec().disks[0].path == shared_dir() / f"{name}.qcow2"
        assert [f for f in helpers.listing(shared_dir()) if f.startswith(name) and f.endswith(".qcow2")] == [
            f"{name}.qcow2"
        ]


@pytest.mark.lab_wide  # host2's libvirtd is killed: its running VMs stop
def test_snapshot_metadata_survives_a_daemon_restart(
    lab_hosts: list[daemons.LabHost], guest: image.GuestImage, own: helpers.Owned
) -> None:
    """host2's libvirtd is killed and started again: libvirt keeps snapshot metadata of persistent VMs on disk,
    virtkit's record rides in the domain definition."""
    lab = lab_hosts[1]
    mem, disk = own("snaprs1"), own("snaprs2")
    with virtkit.connect(lab.uri) as host:
        for name in (mem, disk):
            host.create(helpers.spec(guest, name), start=True)
        vm_mem, vm_disk = host.get(mem), host.get(disk)
        vm_mem.snapshots.create("m1", description="first")
        vm_mem.snapshots.create("m2")
        vm_mem.snapshots.revert("m1")
        vm_disk.pause()
        vm_disk.snapshots.create("d1", kind="disk-only")  # libvirt says only "disk-snapshot"; the record: paused
        before = {name: host.get(name).snapshots.list() for name in (mem, disk)}
        assert before[disk][0].vm_state is VMState.PAUSED

        helpers.kill_libvirtd(lab)
        daemons.up(len(lab_hosts))

        after = {name: host.get(name).snapshots.list() for name in (mem, disk)}
        assert after == before
        current = host.get(mem).snapshots.current()
        assert current is not None and current.name == "m1" and current.description == "first"
