"""Disk hot-plug on real lab hosts, proven from inside the guest: its serial log lists its block devices
(``VIRTKIT-DISKS ... disks=sda,vda``) whenever they change.

Guests run under TCG (docs/platform.md). VM and file names start with ``hot`` after the run's prefix (the ``own``
fixtures hand them out and remove them).
"""

from __future__ import annotations

import dataclasses
import struct
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import helpers
import virtkit
from virtkit import Conflict, InvalidSpec, OperationTimeout, Unsupported, VirtkitError
from virtkit.backends.libvirt import design
from virtkit.lab import daemons, image
from virtkit.lab.paths import shared_dir
from virtkit.lab.serial import GuestLog

_SEEN = 20.0  # seconds for the guest to report a change of its disks (measured: 0.2-0.5 s)


def _spec(guest: image.GuestImage, name: str, **extra: Any) -> virtkit.VMSpec:
    return helpers.spec(guest, name, disk_size="64MiB", **extra)


def _boot(host: virtkit.Host, guest: image.GuestImage, name: str, **extra: Any) -> tuple[virtkit.VM, GuestLog]:
    """Create ``name`` with one virtio disk and no SCSI controller, boot it, wait until the guest lists ``vda``."""
    spec = _spec(guest, name, **extra)
    assert spec.serial_log is not None
    host.create(spec, start=True)
    log = GuestLog(spec.serial_log)
    log.wait_for_boot(timeout=120)
    log.wait_for_disks(lambda d: d == ("vda",), timeout=_SEEN)
    return host.get(name), log


@pytest.fixture(scope="module")
def hot1(
    lab_hosts: list[daemons.LabHost], guest: image.GuestImage, own_module: helpers.Owned
) -> Iterator[tuple[virtkit.VM, GuestLog]]:
    """One running guest shared by the tests that leave it as they found it (every disk they add is removed)."""
    with virtkit.connect(lab_hosts[0].uri) as host:
        vm, log = _boot(host, guest, own_module("hot1"))
        yield vm, log
        vm.delete(storage=True, force=True)


def _xml(vm: virtkit.VM, *, inactive: bool) -> ET.Element:
    return helpers.domain_xml(vm.host, vm.name, inactive=inactive)


def _inactive(vm: virtkit.VM) -> str:
    return ET.tostring(_xml(vm, inactive=True), encoding="unicode")


def _scsi_controllers(root: ET.Element) -> list[tuple[str | None, str | None]]:
    return [(c.get("index"), c.get("model")) for c in root.iter("controller") if c.get("type") == "scsi"]


def _disk_el(root: ET.Element, target: str) -> ET.Element | None:
    return next((d for d in root.iter("disk") if (t := d.find("target")) is not None and t.get("dev") == target), None)


def _hot_files() -> list[str]:
    return sorted(p.name for p in shared_dir().iterdir() if p.name.startswith(f"{helpers.RUN}-hot"))


def _new_disk(log: GuestLog, before: tuple[str, ...], prefix: str) -> str:
    """Wait until the guest lists exactly one disk more than ``before``, named ``prefix...``; return its name."""
    disks = log.wait_for_disks(lambda d: len(set(d) - set(before)) == 1 and set(before) <= set(d), timeout=_SEEN)
    (new,) = set(disks) - set(before)
    assert new.startswith(prefix), disks
    return new


def _gone(log: GuestLog, before: tuple[str, ...]) -> None:
    log.wait_for_disks(lambda d: set(d) == set(before), timeout=_SEEN)


def test_hot_add_and_remove_on_both_buses_seen_by_the_guest(
    hot1: tuple[virtkit.VM, GuestLog], own: helpers.Owned
) -> None:
    vm, log = hot1
    before = log.wait_for_disks(lambda d: True, timeout=_SEEN)
    blk, scsi = own.path("hot1-blk.qcow2"), own.path("hot1-scsi.qcow2")

    added = vm.disks.attach({"path": str(blk), "size": "32MiB"})
    assert added.changed and added.before is None and added.after is not None
    assert (added.after.target, added.after.live, added.after.persistent) == ("vdb", True, True)
    assert _new_disk(log, before, "vd") == "vdb"

    # Hyper-V's ControllerNumber 2 / ControllerLocation 3: a second virtio-scsi controller is added for it.
    at = vm.disks.attach({"path": str(scsi), "size": "32MiB", "bus": "scsi"}, controller=2, unit=3)
    assert at.after is not None and (at.after.controller, at.after.unit) == (2, 3)
    _new_disk(log, (*before, "vdb"), "sd")
    for inactive in (False, True):
        root = _xml(vm, inactive=inactive)
        el = _disk_el(root, at.after.target)
        assert el is not None and (address := el.find("address")) is not None
        assert (address.get("controller"), address.get("unit")) == ("2", "3")
        assert ("2", "virtio-scsi") in _scsi_controllers(root)
    assert {d.target for d in vm.disks.list()} >= {"vda", "vdb", at.after.target}

    assert not vm.disks.attach({"path": str(scsi), "bus": "scsi"}).changed  # already attached
    assert not vm.disks.attach({"path": str(blk), "target": "vdb"}).changed

    gone = vm.disks.detach("vdb")
    assert gone.changed and gone.after is None
    gone = vm.disks.detach(str(scsi))
    assert gone.changed and gone.after is None
    _gone(log, before)
    assert _disk_el(_xml(vm, inactive=True), "vdb") is None
    assert blk.exists() and scsi.exists()  # detach never deletes an image
    assert not vm.disks.detach("vdb").changed


def test_scsi_on_a_vm_without_controller_and_persistence_across_a_restart(
    host1: virtkit.Host, guest: image.GuestImage, own: helpers.Owned
) -> None:
    vm, log = _boot(host1, guest, own("hot2"))
    assert _scsi_controllers(_xml(vm, inactive=False)) == _scsi_controllers(_xml(vm, inactive=True)) == []

    keep = vm.disks.attach({"path": str(shared_dir() / f"{vm.name}-keep.qcow2"), "size": "32MiB", "bus": "scsi"})
    assert keep.after is not None and (keep.after.controller, keep.after.unit, keep.after.target) == (0, 0, "sda")
    assert _new_disk(log, ("vda",), "sd") == "sda"
    for inactive in (False, True):
        assert _scsi_controllers(_xml(vm, inactive=inactive)) == [("0", "virtio-scsi")]
    live = vm.disks.attach({"path": str(shared_dir() / f"{vm.name}-live.qcow2"), "size": "32MiB"}, persistent=False)
    assert live.after is not None and (live.after.live, live.after.persistent) == (True, False)
    _new_disk(log, ("sda", "vda"), "vd")
    assert _disk_el(_xml(vm, inactive=True), live.after.target) is None
    # Asked again with the defaults, it would only be added to the persistent definition, at the same place.
    again = vm.disks.attach({"path": str(shared_dir() / f"{vm.name}-live.qcow2")}, check=True)
    assert again.after == dataclasses.replace(live.after, persistent=True)

    vm.destroy()
    vm.start()
    log.wait_for_boot(timeout=120, after_boots=1)
    assert log.wait_for_disks(lambda d: set(d) == {"sda", "vda"}, timeout=_SEEN)  # the live-only disk is gone
    assert [(d.target, d.live, d.persistent) for d in vm.disks.list()] == [
        ("sda", True, True),
        ("vda", True, True),
    ]
    assert vm.disks.detach("sda").changed
    _gone(log, ("vda",))


def test_existing_qcow2_raw_vhd_attach_and_vhdx_is_refused(
    hot1: tuple[virtkit.VM, GuestLog], own: helpers.Owned
) -> None:
    vm, log = hot1
    before = log.wait_for_disks(lambda d: True, timeout=_SEEN)
    roots = [shared_dir()]
    files = {}
    for fmt in ("qcow2", "raw", "vhd", "vhdx"):
        path = own.path(f"hot-existing.{fmt}")
        files[fmt] = virtkit.images.create(path, "16MiB", fmt, roots=roots).path

    inactive, live, listing = _inactive(vm), ET.tostring(_xml(vm, inactive=False)), _hot_files()
    with pytest.raises(Unsupported, match="convert"):
        vm.disks.attach({"path": str(files["vhdx"]), "format": "vhdx", "bus": "scsi"})
    assert _inactive(vm) == inactive and ET.tostring(_xml(vm, inactive=False)) == live and _hot_files() == listing

    for fmt, bus, driver in (("qcow2", "scsi", "qcow2"), ("raw", "virtio", "raw"), ("vhd", "scsi", "vpc")):
        change = vm.disks.attach({"path": str(files[fmt]), "format": fmt, "bus": bus})
        assert change.after is not None
        _new_disk(log, before, "sd" if bus == "scsi" else "vd")
        el = _disk_el(_xml(vm, inactive=False), change.after.target)
        assert el is not None and (drv := el.find("driver")) is not None and drv.get("type") == driver
        vm.disks.detach(change.after.target)
        _gone(log, before)


def test_bad_input_and_wrong_state_change_nothing(
    hot1: tuple[virtkit.VM, GuestLog], host1: virtkit.Host, guest: image.GuestImage, own: helpers.Owned
) -> None:
    vm, _ = hot1
    used = own.path("hot-used.qcow2")
    taken = vm.disks.attach({"path": str(used), "size": "16MiB", "bus": "scsi"}, controller=0, unit=4)
    assert taken.after is not None
    new = str(own.path("hot-new.qcow2"))
    cases: list[tuple[dict[str, Any], dict[str, Any], type[VirtkitError], str]] = [
        ({"path": "/root/hot-new.qcow2", "size": "16MiB"}, {}, InvalidSpec, "disk.path"),
        ({"path": "/var/lib/virtkit/shared/../hot-new.qcow2", "size": "16MiB"}, {}, InvalidSpec, "disk.path"),
        ({"path": new}, {}, InvalidSpec, "disk.path"),  # missing, and no size to create it
        ({"path": new, "size": "16MiB", "target": "vda"}, {}, Conflict, "target vda"),
        ({"path": new, "size": "16MiB", "bus": "scsi"}, {"controller": 0, "unit": 4}, Conflict, "unit 4"),
        ({"path": new, "size": "16MiB", "bus": "ide"}, {}, Unsupported, "hot-plugged"),
        ({"path": new, "size": "16MiB"}, {"controller": 1}, InvalidSpec, "controller"),
        ({"path": str(used), "bus": "scsi", "target": "sdz"}, {}, Conflict, "already attached"),
    ]
    for disk, kwargs, error, detail in cases:
        inactive, listing = _inactive(vm), _hot_files()
        with pytest.raises(error) as err:
            vm.disks.attach(disk, **kwargs)
        if isinstance(err.value, InvalidSpec):
            assert err.value.field == detail, err.value
        else:
            assert detail in str(err.value)
        assert _inactive(vm) == inactive, disk
        assert _hot_files() == listing, disk
    vm.disks.detach(str(used))

    # A stopped VM has no running definition: live only is refused, the default changes the persistent one only.
    cold_name = own("hot3")
    host1.create(_spec(guest, cold_name, serial_log=None))
    cold = host1.get(cold_name)
    cold_disk = shared_dir() / f"{cold.name}-cold.qcow2"
    inactive = _inactive(cold)
    with pytest.raises(Conflict, match="live only: it is stopped"):
        cold.disks.attach({"path": str(cold_disk), "size": "16MiB"}, persistent=False)
    assert _inactive(cold) == inactive and not cold_disk.exists()
    change = cold.disks.attach({"path": str(cold_disk), "size": "16MiB", "bus": "scsi"})
    assert change.after is not None and (change.after.live, change.after.persistent) == (False, True)
    assert _scsi_controllers(_xml(cold, inactive=True)) == [("0", "virtio-scsi")]
    assert cold.disks.detach("sda").after is None
    cold.delete(storage=True)


def test_failed_attach_is_rolled_back(host1: virtkit.Host, guest: image.GuestImage, own: helpers.Owned) -> None:
    """Faults after every check passed: libvirt refuses, and virtkit undoes what it did before."""
    vm, log = _boot(host1, guest, own("hot4"))
    # A qcow2 header of a version QEMU does not know: virtkit's header probe reads "qcow2, 16 MiB", QEMU refuses
    # to open it, after virtkit added the SCSI controller the disk was to sit on.
    header = b"QFI\xfb" + struct.pack(">I", 99) + bytes(16) + struct.pack(">Q", 16 * 1024 * 1024)
    bad = shared_dir() / f"{vm.name}-bad.qcow2"
    bad.write_bytes(header.ljust(65536, b"\0"))
    inactive, listing = _inactive(vm), _hot_files()
    with pytest.raises(VirtkitError, match="qcow2 version 99"):
        vm.disks.attach({"path": str(bad), "bus": "scsi"})
    assert _inactive(vm) == inactive and _hot_files() == listing
    assert _scsi_controllers(_xml(vm, inactive=False)) == []  # the controller it added is gone again
    assert log.last_disks() == ("vda",)

    # q35 hot-plugs PCI devices only into free PCIe root ports; virtkit defines SPARE_ROOT_PORTS spare ones. Once
    # they are taken, a new image whose attach fails for want of a slot is removed again.
    q35_name = own("hot5")
    host1.create(_spec(guest, q35_name, machine="q35", serial_log=None), start=True)
    q35 = host1.get(q35_name)
    for i in range(design.SPARE_ROOT_PORTS + 4):
        path = shared_dir() / f"{q35.name}-extra{i}.qcow2"
        inactive, listing = _inactive(q35), _hot_files()
        try:
            q35.disks.attach({"path": str(path), "size": "16MiB"})
        except VirtkitError as exc:
            assert "No more available PCI slots" in str(exc)
            break
    else:
        pytest.fail("every attach found a free PCI slot")
    assert i >= design.SPARE_ROOT_PORTS and not path.exists()
    assert _inactive(q35) == inactive and _hot_files() == listing


def test_detach_waits_for_a_slow_guest_or_times_out_leaving_the_definition(
    hot1: tuple[virtkit.VM, GuestLog], own: helpers.Owned
) -> None:
    vm, log = hot1
    before = log.wait_for_disks(lambda d: True, timeout=_SEEN)
    path = own.path("hot-slow.qcow2")
    target = vm.disks.attach({"path": str(path), "size": "16MiB"}).after.target  # type: ignore[union-attr]
    _new_disk(log, before, "vd")

    # A paused guest cannot release a virtio-blk disk (a PCI device: the guest must eject it).
    vm.pause()
    inactive = _inactive(vm)
    t0 = time.monotonic()
    with pytest.raises(OperationTimeout, match=f"disk {target}"):
        vm.disks.detach(target, timeout=2)
    assert 2 <= time.monotonic() - t0 < 6
    assert _inactive(vm) == inactive  # the persistent definition is unchanged
    (still,) = [d for d in vm.disks.list() if d.target == target]
    assert still.live and still.persistent

    # The same guest, resumed while virtkit waits, releases it: the detach then completes.
    timer = threading.Timer(1.5, vm.resume)
    timer.start()
    t0 = time.monotonic()
    try:
        change = vm.disks.detach(target, timeout=30)
    finally:
        timer.join()
    assert change.after is None and time.monotonic() - t0 >= 1.5
    _gone(log, before)
    assert _disk_el(_xml(vm, inactive=True), target) is None


def test_pass_through_block_device(
    lab_hosts: list[daemons.LabHost], hot1: tuple[virtkit.VM, GuestLog], own: helpers.Owned
) -> None:
    """Hyper-V's pass-through disk: a host block device (a loop device here) on the guest's SCSI bus."""
    vm, log = hot1
    before = log.wait_for_disks(lambda d: True, timeout=_SEEN)
    backing = own.path("hot-loop.img")
    subprocess.run(["truncate", "-s", "16M", str(backing)], check=True)
    loop = subprocess.run(["losetup", "-f", "--show", str(backing)], capture_output=True, text=True, check=True)
    device = loop.stdout.strip()
    try:
        with virtkit.connect(lab_hosts[0].uri, storage_roots=[shared_dir(), Path("/dev")]) as host:
            disks = host.get(vm.name).disks
            change = disks.attach({"path": device, "kind": "block", "format": "raw", "bus": "scsi"})
            assert change.after is not None and change.after.disk.kind is virtkit.DiskKind.BLOCK
            _new_disk(log, before, "sd")
            el = _disk_el(_xml(vm, inactive=False), change.after.target)
            assert el is not None and el.get("type") == "block"
            disks.detach(device)
            _gone(log, before)
    finally:
        subprocess.run(["losetup", "-d", device], check=False)
