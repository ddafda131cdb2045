"""The Hyper-V driver on real daemons: Generation 1 and 2 VMs boot from VHD and VHDX disks through their firmware,
Secure Boot checks signatures, and a Generation 2 VM takes SCSI controllers and disks while it runs.

The disks are the lab's disk-bootable guests (:mod:`virtkit.lab.bootdisk`): SYSLINUX on an MBR disk, and Debian's
signed shim, GRUB and kernel on an EFI system partition. The guest reports on COM1 which firmware booted it and
whether its kernel found Secure Boot on.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import helpers
import virtkit
from virtkit import Accel, Conflict, InvalidSpec, hyperv
from virtkit.backends.libvirt import design
from virtkit.hyperv import HyperVState
from virtkit.lab import bootdisk, daemons, image
from virtkit.lab.loopdev import loop_device
from virtkit.lab.paths import shared_dir
from virtkit.lab.serial import GuestEvent, GuestLog

_BOOT = 240.0  # seconds for a disk boot through the firmware under TCG (measured: 9-25 s)
_SEEN = 20.0  # seconds for the guest to report a change of its disks (measured: 0.2-0.5 s)
_MEMORY = "512MB"  # the least a UEFI disk boot takes under TCG (with 256 MiB the kernel stops after its EFI stub)


@pytest.fixture(scope="module")
def disks(lab_hosts: list[daemons.LabHost]) -> dict[str, bootdisk.BootDisk]:
    """The three boot disks, built once (cached between runs)."""
    return {
        "bios": bootdisk.build_boot_disk("bios"),
        "uefi": bootdisk.build_boot_disk("uefi"),
        "unsigned": bootdisk.build_boot_disk("uefi", signed=False),
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _new(host: virtkit.Host, name: str, disk: Path, generation: int, **extra: object) -> GuestLog:
    com1 = shared_dir() / f"{name}.serial.log"
    spec = {
        "Name": name,
        "Generation": generation,
        "MemoryStartupBytes": _MEMORY,
        "HardDrives": [{"Path": str(disk)}],
        "ComPort1": str(com1),
        **extra,
    }
    assert hyperv.new_vm(host, spec).changed
    return GuestLog(com1)


def _wait_for_text(path: Path, text: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and text in path.read_text(errors="replace"):
            return True
        time.sleep(0.5)
    return False


def _boot(host: virtkit.Host, name: str, log: GuestLog) -> GuestEvent:
    before = len(log.boots())
    assert hyperv.start_vm(host, name).changed
    return log.wait_for_boot(timeout=_BOOT, after_boots=before)


def test_generation1_boots_from_a_vhd_through_the_bios(
    host1: virtkit.Host, disks: dict[str, bootdisk.BootDisk], own: helpers.Owned
) -> None:
    name = own("hvgen1")
    vhd = disks["bios"].copy_to(shared_dir() / f"{name}-boot.vhd", "vhd")
    original = _sha256(vhd)
    log = _new(host1, name, vhd, 1)
    xml = helpers.domain_xml(host1.uri, name, inactive=True)
    assert xml.find("os/type").get("machine", "").startswith("pc")  # type: ignore[union-attr]
    assert [d.get("dev") for d in xml.iterfind("devices/disk/target")] == ["hda"]  # IDE 0:0
    boot = _boot(host1, name, log)
    assert (boot.firmware, boot.secure_boot) == ("bios", False)  # SeaBIOS read SYSLINUX from the disk
    vm = hyperv.get_vm(host1, name)
    assert (vm.state, vm.generation) == (HyperVState.RUNNING, 1)
    # The VM runs from the VHD's import; the VHD itself is never written.
    assert Path(f"{vhd}.qcow2").is_file() and _sha256(vhd) == original
    # Stop-VM with the Shutdown service on, in a guest without an agent: virtkit asks by ACPI instead, which this
    # guest ignores, and -Force turns it off after the timeout.
    assert hyperv.stop_vm(host1, name, force=True, timeout=5).changed
    assert hyperv.get_vm(host1, name).state is HyperVState.OFF


def test_generation2_boots_from_a_vhdx_with_secure_boot_and_takes_scsi_disks_live(
    host1: virtkit.Host, disks: dict[str, bootdisk.BootDisk], own: helpers.Owned
) -> None:
    name = own("hvgen2")
    vhdx = disks["uefi"].copy_to(shared_dir() / f"{name}-boot.vhdx", "vhdx")
    log = _new(host1, name, vhdx, 2)
    boot = _boot(host1, name, log)
    # shim (Microsoft-signed), GRUB and the kernel (Debian-signed) passed the firmware's and shim's checks, and the
    # kernel found Secure Boot on.
    assert (boot.firmware, boot.secure_boot) == ("efi", True)
    assert log.wait_for_disks(lambda d: d == ("sda",), timeout=_SEEN) == ("sda",)  # the SCSI boot disk
    assert hyperv.get_vm(host1, name).generation == 2

    # A second SCSI controller and a VHDX on it, while the guest runs.
    assert hyperv.add_vm_scsi_controller(host1, name).changed
    data = shared_dir() / f"{name}-data.vhdx"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", str(data), "32M"], check=True)
    change = hyperv.add_vm_hard_disk_drive(host1, name, data, controller_number=1, controller_location=0)
    assert change.changed
    assert log.wait_for_disks(lambda d: len(d) == 2, timeout=_SEEN) == ("sda", "sdb")
    drives = hyperv.get_vm_hard_disk_drive(host1, name)
    assert [(d.controller_number, d.controller_location) for d in drives] == [(0, 0), (1, 0)]

    # virtio disks are PCI devices: each takes one of the spare PCIe root ports a Generation 2 VM is defined with.
    vm = host1.get(name)
    for i in range(3):
        vm.disks.attach({"path": str(shared_dir() / f"{name}-virtio{i}.qcow2"), "size": "16MiB"})
    seen = log.wait_for_disks(lambda d: len(d) == 5, timeout=_SEEN)
    assert seen == ("sda", "sdb", "vda", "vdb", "vdc")

    # A drive comes off the running VM the same way.
    assert hyperv.remove_vm_hard_disk_drive(
        host1, name, controller_type="SCSI", controller_number=1, controller_location=0
    ).changed
    assert "sdb" not in log.wait_for_disks(lambda d: "sdb" not in d, timeout=_SEEN)


def test_secure_boot_refuses_an_unsigned_kernel_that_boots_with_it_off(
    host1: virtkit.Host, disks: dict[str, bootdisk.BootDisk], own: helpers.Owned
) -> None:
    name = own("hvunsigned")
    vhdx = disks["unsigned"].copy_to(shared_dir() / f"{name}-boot.vhdx", "vhdx")
    log = _new(host1, name, vhdx, 2)
    assert hyperv.start_vm(host1, name).changed
    # GRUB asks shim to verify the kernel, and says so on the serial console; the kernel never runs.
    assert _wait_for_text(log.path, "bad shim signature", _BOOT)
    assert log.boots() == []

    # Secure Boot cannot change while the VM runs, as on Hyper-V.
    with pytest.raises(Conflict):
        hyperv.set_vm_firmware(host1, name, enable_secure_boot="Off")
    assert hyperv.stop_vm(host1, name, turn_off=True).changed
    assert hyperv.set_vm_firmware(host1, name, enable_secure_boot="Off").changed
    # The firmware's variables are made afresh from the template without Secure Boot: the same disk now boots.
    boot = log.wait_for_boot(timeout=_BOOT) if hyperv.start_vm(host1, name).changed else None
    assert boot is not None and (boot.firmware, boot.secure_boot) == ("efi", False)
    vm = hyperv.get_vm(host1, name)
    assert vm.spec is not None and vm.spec.secure_boot is False


def test_pass_through_disk_on_the_scsi_controller_and_a_mounted_device_refused(
    lab_hosts: list[daemons.LabHost], disks: dict[str, bootdisk.BootDisk], own: helpers.Owned
) -> None:
    name = own("hvpass")
    size = 32 * 1024 * 1024
    with (
        loop_device(shared_dir() / f"{name}-free.img", size=size) as free,
        loop_device(shared_dir() / f"{name}-busy.img", size=size) as busy,
        tempfile.TemporaryDirectory(prefix="virtkit-mnt-") as mnt,
    ):
        subprocess.run(["mkfs.ext4", "-q", str(busy)], check=True)
        subprocess.run(["mount", str(busy), mnt], check=True)
        try:
            # A block device passed through must lie inside the storage roots too: here the two devices are roots.
            with virtkit.connect(lab_hosts[0].uri, storage_roots=[shared_dir(), free, busy]) as host:
                with pytest.raises(InvalidSpec, match="in use") as err:
                    hyperv.new_vm(host, {"Name": name, "HardDrives": [{"Path": str(busy)}]}, what_if=True)
                assert err.value.field == "HardDrives[0].Path" and not host.exists(name)

                vhdx = disks["uefi"].copy_to(shared_dir() / f"{name}-boot.vhdx", "vhdx")
                log = _new(host, name, vhdx, 2)
                _boot(host, name, log)
                log.wait_for_disks(lambda d: d == ("sda",), timeout=_SEEN)
                inactive = ET.tostring(helpers.domain_xml(host.uri, name, inactive=True))
                with pytest.raises(InvalidSpec, match=f"{busy} is in use: /dev/loop\\d+ on {mnt}") as err:
                    hyperv.add_vm_hard_disk_drive(host, name, busy)
                assert err.value.field == "Path"
                assert ET.tostring(helpers.domain_xml(host.uri, name, inactive=True)) == inactive

                assert hyperv.add_vm_hard_disk_drive(host, name, free).changed
                assert log.wait_for_disks(lambda d: len(d) == 2, timeout=_SEEN) == ("sda", "sdb")
                drives = hyperv.get_vm_hard_disk_drive(host, name)
                assert [(d.path, d.controller_location) for d in drives][1] == (free, 1)
                assert hyperv.remove_vm_hard_disk_drive(host, name, path=free).changed
                assert log.wait_for_disks(lambda d: d == ("sda",), timeout=_SEEN) == ("sda",)
                hyperv.stop_vm(host, name, turn_off=True)  # before the loop devices go
        finally:
            subprocess.run(["umount", mnt], check=True)


def _enlightenments(xml: ET.Element) -> set[str]:
    hyperv = xml.find("features/hyperv")
    return set() if hyperv is None else {child.tag for child in hyperv if child.get("state") == "on"}


def test_enlightenments_per_accelerator_on_the_real_daemon(
    host1: virtkit.Host, guest: image.GuestImage, own: helpers.Owned
) -> None:
    # The KVM set, with what each enlightenment needs, passes libvirt's checks on a real daemon. It is defined, not
    # started: this machine's /dev/kvm cannot run a stock guest (docs/platform.md).
    kvm = own("hvkvm")
    host1.create(virtkit.VMSpec(name=kvm, memory=128 * 2**20, accel=Accel.KVM, enlightenments=True))
    stored = helpers.domain_xml(host1.uri, kvm, inactive=True)
    assert stored.get("type") == "kvm" and _enlightenments(stored) == set(design.ENLIGHTENMENTS[Accel.KVM])
    assert stored.find("clock/timer[@name='hypervclock']") is not None
    assert host1.get(kvm).spec().enlightenments

    # Under TCG the set that starts: the guest boots with it, and QEMU runs with it.
    tcg = own("hvtcg")
    host1.create(helpers.spec(guest, tcg, enlightenments=True), start=True)
    helpers.serial_log(tcg).wait_for_boot(timeout=_BOOT)
    live = helpers.domain_xml(host1.uri, tcg, inactive=False)
    assert live.get("type") == "qemu" and _enlightenments(live) == set(design.ENLIGHTENMENTS[Accel.TCG])
    # Hyper-V's VMs have them always: the Generation 1 and 2 VMs above booted with them too.
    assert hyperv.HyperVSpec(name="any").to_spec().enlightenments


def test_the_hyperv_example_runs_on_a_lab_host(host1: virtkit.Host, own: helpers.Owned) -> None:
    name = own("hvexample")
    script = Path(__file__).parent.parent / "examples" / "hyperv_vm.py"
    cmd = [sys.executable, str(script), "--uri", host1.uri, "--name", name]
    result = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "through efi, Secure Boot on" in result.stdout and "the guest sees sda, sdb" in result.stdout
    assert not host1.exists(name) and not list(shared_dir().glob(f"{name}*"))
