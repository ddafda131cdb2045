"""VM lifecycle on real lab hosts with the real test guest, checked from inside the guest (its serial log).

Guests run under TCG here (the machine's /dev/kvm is PVM, see docs/platform.md); `accel: auto` must say so.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

import helpers
import virtkit
from virtkit import Accel, VMState
from virtkit.lab import daemons, image
from virtkit.lab.paths import shared_dir
from virtkit.lab.serial import GuestLog


def _files(name: str) -> list[Path]:
    return [shared_dir() / f"{name}.qcow2", shared_dir() / f"{name}.serial.log"]


def _hardware_virt() -> bool:
    flags = Path("/proc/cpuinfo").read_text()
    return " vmx" in flags or " svm" in flags


def _vms(host: virtkit.Host) -> list[str]:
    """The VMs on ``host`` but other runs' (which come and go while this one runs)."""
    return sorted(v.name for v in host.list() if not helpers.other_run(v.name))


def test_boot_pause_resume_reset_shutdown_delete(
    host1: virtkit.Host, guest: image.GuestImage, own: helpers.Owned
) -> None:
    name = own("life1")
    spec = helpers.spec(guest, name)
    change = host1.create(spec, start=True)
    assert change.changed and change.after is not None
    assert change.after.state is VMState.RUNNING
    # auto picks kvm only with real hardware virtualization; this lab has none, so the guest runs under TCG
    assert change.after.accel is (Accel.KVM if _hardware_virt() else Accel.TCG)

    log = GuestLog(spec.serial_log)  # type: ignore[arg-type]
    log.wait_for_boot(timeout=120)
    assert log.wait_for_disks(lambda disks: disks == ("vda",), timeout=30) == ("vda",)

    vm = host1.get(name)
    assert vm.pause().changed and vm.state is VMState.PAUSED
    frozen = log.wait_for_alive(timeout=10)
    time.sleep(2.5)  # two alive periods: a paused guest writes nothing
    assert log.last_alive() == frozen
    assert vm.resume().changed and vm.state is VMState.RUNNING
    after = log.wait_for_alive(timeout=15, after_line=frozen.line_no)
    assert after.counter is not None and frozen.counter is not None and after.counter > frozen.counter

    assert vm.reboot(hard=True).changed
    log.wait_for_boot(timeout=120, after_boots=1)
    assert len(log.boots()) == 2

    # The busybox guest has no ACPI daemon: a graceful shutdown times out and leaves it running ...
    with pytest.raises(virtkit.OperationTimeout):
        vm.shutdown(timeout=2)
    assert vm.state is VMState.RUNNING
    # ... and with force it is powered off after the timeout.
    stopped = vm.shutdown(timeout=2, force=True)
    assert stopped.after is not None and stopped.after.state is VMState.STOPPED

    assert vm.start().changed
    assert vm.destroy().changed and vm.state is VMState.STOPPED
    assert vm.delete(storage=True).changed
    assert not host1.exists(name)
    assert [f for f in _files(name) if f.exists()] == []


def test_idempotent_create_and_check_mode_on_a_real_daemon(
    host1: virtkit.Host, guest: image.GuestImage, own: helpers.Owned
) -> None:
    name = own("idem1")
    spec = helpers.spec(guest, name, nics=[{"kind": "user"}])
    check = host1.create(spec, start=True, check=True)
    assert check.changed and not host1.exists(name) and not _files(name)[0].exists()
    defined = host1.create(spec)
    assert defined.changed
    assert defined.after == host1.get(name).info()  # the result of a define is what the daemon reports
    assert not host1.create(spec).changed  # libvirt chose the MAC; the spec left it open
    started = host1.create(spec, start=True)
    assert started.changed and started.after is not None and started.after.state is VMState.RUNNING
    assert not host1.create(spec, start=True).changed
    host1.get(name).delete(storage=True, force=True)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"disks": [{"path": "/var/lib/libvirt/../virtkit/x.qcow2", "size": "64MiB"}]}, "disks[0].path"),
        ({"disks": [{"path": "/root/x.qcow2", "size": "64MiB"}]}, "disks[0].path"),
        ({"serial_log": "/etc/motd"}, "serial_log"),
        ({"kernel": {"kernel": "/var/lib/virtkit/shared/no-such-kernel"}}, "kernel.kernel"),
        ({"disks": [{"path": "/var/lib/virtkit/shared/bad1-missing.qcow2"}]}, "disks[0].path"),
        ({"name": "bad1;reboot"}, "name"),
    ],
)
def test_bad_input_leaves_nothing_on_a_real_host(
    host1: virtkit.Host, guest: image.GuestImage, own: helpers.Owned, change: dict[str, Any], field: str
) -> None:
    before_files = helpers.listing(shared_dir())
    before_vms = _vms(host1)
    data = helpers.spec(guest, own("bad1")).to_dict() | change
    with pytest.raises(virtkit.InvalidSpec) as err:
        host1.create(data, start=True)
    assert err.value.field == field
    assert helpers.listing(shared_dir()) == before_files
    assert _vms(host1) == before_vms


def test_failed_start_leaves_no_domain_and_no_image(
    host1: virtkit.Host, guest: image.GuestImage, own: helpers.Owned
) -> None:
    # A CPU model QEMU does not know passes the spec check but fails in libvirt: the create must undo itself.
    name = own("fail1")
    spec = helpers.spec(guest, name, cpu_model="NoSuchCpuModel")
    before_files = helpers.listing(shared_dir())
    with pytest.raises(virtkit.VirtkitError):
        host1.create(spec, start=True)
    assert not host1.exists(name)
    assert helpers.listing(shared_dir()) == before_files


def test_kvm_xml_defines_on_a_real_daemon(
    lab_hosts: list[daemons.LabHost], host1: virtkit.Host, guest: image.GuestImage, own: helpers.Owned
) -> None:
    """The kvm code path is tested where it cannot run: its XML must define on a real QEMU driver."""
    name = own("kvm1")
    spec = helpers.spec(guest, name, accel="kvm", vcpus=2, max_vcpus=4, max_memory="512MiB")
    change = host1.create(spec)
    assert change.after is not None and change.after.accel is Accel.KVM
    root = helpers.domain_xml(lab_hosts[0].uri, name, inactive=True)
    assert root.get("type") == "kvm"
    cpu = root.find("cpu")
    assert cpu is not None and cpu.get("mode") == "host-model"
    assert host1.get(name).spec().accel is Accel.KVM
    assert not host1.create(spec).changed
    host1.get(name).delete(storage=True)


def test_lifecycle_events_from_a_real_daemon(host1: virtkit.Host, guest: image.GuestImage, own: helpers.Owned) -> None:
    name = own("ev1")
    seen: list[tuple[str, str]] = []
    sub = host1.subscribe(lambda e: seen.append((e.vm, e.event)))
    try:
        host1.create(helpers.spec(guest, name), start=True)
        vm = host1.get(name)
        vm.pause()
        vm.resume()
        vm.destroy()
        deadline = time.monotonic() + 10
        while (name, "stopped") not in seen and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sub.close()
    events = [e for vm_name, e in seen if vm_name == name]
    assert events[:1] == ["defined"]
    for expected in ("started", "suspended", "resumed", "stopped"):
        assert expected in events
    host1.get(name).delete(storage=True)
