"""Check mode tells the truth: what a real call refuses, ``check=True`` refuses too, with the same error type and
message, and neither changes anything.

Each case builds a VM on libvirt's test:// driver, then calls one operation twice, first in check mode and then for
real, and compares the two refusals and the state of the host and its storage before and after.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import virtkit
from virtkit import DiskFormat, InvalidSpec, Unsupported, VirtkitError, images


@pytest.fixture
def hosts(tmp_path: Path, storage: Path) -> Iterator[tuple[virtkit.Host, virtkit.Host]]:
    """Two empty test:// hosts sharing the storage root."""
    opened = []
    for name in ("a", "b"):
        (tmp_path / f"{name}.xml").write_text("<node/>\n")
        opened.append(virtkit.connect(f"test://{tmp_path / name}.xml", storage_roots=[storage]))
    yield opened[0], opened[1]
    for host in opened:
        host.close()


def _state(host: virtkit.Host, storage: Path) -> tuple[object, ...]:
    """Everything a refused call must leave as it was: the VMs, their definitions and snapshots, the files."""
    vms = []
    for vm in host.list():
        info = vm.info()
        vms.append((vm.name, info.state, info.managed_save, vm.spec(), tuple(s.name for s in vm.snapshots.list())))
    files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in storage.iterdir() if p.is_file())
    return tuple(sorted(vms, key=lambda v: str(v[0]))), tuple(files)


def _same_refusal(host: virtkit.Host, storage: Path, call: Callable[..., object]) -> VirtkitError:
    """``call(check=True)`` and ``call(check=False)`` raise the same error, and change nothing."""
    before = _state(host, storage)
    with pytest.raises(VirtkitError) as checked:
        call(check=True)
    with pytest.raises(VirtkitError) as real:
        call(check=False)
    assert type(checked.value) is type(real.value)
    assert str(checked.value) == str(real.value)
    assert _state(host, storage) == before
    return real.value


def _vm(
    host: virtkit.Host, storage: Path, name: str, *, extra: tuple[dict[str, Any], ...] = (), start: bool = True
) -> virtkit.VM:
    disks = [{"path": str(storage / f"{name}.qcow2"), "size": "16MiB"}, *extra]
    host.create({"name": name, "memory": "128MiB", "disks": disks}, start=start)
    return host.get(name)


@pytest.fixture
def vhd(storage: Path) -> Path:
    """A read-only data disk in VHD format (QEMU's vpc driver), next to the VM's qcow2 system disk."""
    return images.create(storage / "data.vhd", "8MiB", DiskFormat.VHD, roots=[storage]).path


def _vhd_disk(path: Path) -> dict[str, Any]:
    return {"path": str(path), "format": "vhd", "bus": "scsi", "readonly": True}


# -- one cause, one error: a VHD disk blocks everything that writes out a running VM's state ------------------------


@pytest.mark.parametrize(
    "operation",
    [
        lambda vm, b, storage: lambda check: vm.save(storage / "web1.save", check=check),
        lambda vm, b, storage: lambda check: vm.managed_save(check=check),
        lambda vm, b, storage: lambda check: vm.snapshots.create("s1", kind="memory", check=check),
        lambda vm, b, storage: lambda check: vm.snapshots.create("s1", kind="quiesced", check=check),
        lambda vm, b, storage: lambda check: vm.migrate(b, check=check),
        lambda vm, b, storage: lambda check: vm.migrate(b, mode="quick", shared_storage=[storage], check=check),
    ],
    ids=["save", "managed-save", "memory-snapshot", "quiesced-falling-back", "live-migration", "quick-migration"],
)
def test_a_vhd_disk_is_refused_the_same_way_in_check_mode_and_for_real(
    hosts: tuple[virtkit.Host, virtkit.Host], storage: Path, vhd: Path, operation: Any
) -> None:
    a, b = hosts
    vm = _vm(a, storage, "web1", extra=(_vhd_disk(vhd),))
    error = _same_refusal(a, storage, operation(vm, b, storage))
    assert isinstance(error, Unsupported)
    assert "vhd" in error.message and "qcow2" in error.message
    assert not b.exists("web1")


def test_a_vhd_disk_does_not_block_what_needs_no_running_state(
    hosts: tuple[virtkit.Host, virtkit.Host], storage: Path, vhd: Path
) -> None:
    a, _ = hosts
    vm = _vm(a, storage, "web1", extra=(_vhd_disk(vhd),))
    assert vm.snapshots.create("d1", kind="disk-only", check=True).changed
    assert vm.destroy().changed
    assert vm.snapshots.create("m1", kind="memory", check=True).changed  # a stopped VM has no memory to write


# -- host devices: a passed-through device's state is in the host's hardware, out of QEMU's reach ------------------

PCI = (
    "<hostdev mode='subsystem' type='pci' managed='yes'>"
    "<source><address domain='0x0000' bus='0x06' slot='0x12' function='0x5'/></source></hostdev>"
)
USB = "<hostdev mode='subsystem' type='usb'><source><vendor id='0x1234'/><product id='0xbeef'/></source></hostdev>"
HOSTDEVS = {
    "pci": (PCI, "host device pci 0000:06:12.5"),
    "scsi": (
        "<hostdev mode='subsystem' type='scsi'><source><adapter name='scsi_host0'/>"
        "<address bus='0' target='0' unit='1'/></source></hostdev>",
        "host device scsi scsi_host0 0:0:1",
    ),
    "scsi_host": (
        "<hostdev mode='subsystem' type='scsi_host'><source protocol='vhost' wwpn='naa.50014057667280d8'/></hostdev>",
        "host device scsi_host vhost wwpn naa.50014057667280d8",
    ),
    "mdev": (
        "<hostdev mode='subsystem' type='mdev' model='vfio-pci'>"
        "<source><address uuid='c2177883-f1bb-47f0-914d-32a22e3a8804'/></source></hostdev>",
        "host device mdev c2177883-f1bb-47f0-914d-32a22e3a8804",
    ),
    "capabilities": (
        "<hostdev mode='capabilities' type='storage'><source><block>/dev/sdf1</block></source></hostdev>",
        "capabilities-mode host device storage /dev/sdf1",
    ),
}


@pytest.fixture
def with_devices(tmp_path: Path, storage: Path) -> Iterator[Callable[[str], tuple[virtkit.Host, virtkit.Host]]]:
    """Two test:// hosts; the first runs web1, defined by hand with the host devices given (virtkit makes none)."""
    opened: list[virtkit.Host] = []

    def make(devices: str) -> tuple[virtkit.Host, virtkit.Host]:
        image = images.create(storage / "web1.qcow2", "16MiB", roots=[storage]).path
        (tmp_path / "a.xml").write_text(
            f"""<node><domain type="qemu"><name>web1</name><memory unit="KiB">131072</memory><vcpu>1</vcpu>
            <os><type arch="x86_64" machine="pc">hvm</type></os>
            <devices><disk type="file" device="disk"><driver name="qemu" type="qcow2"/><source file="{image}"/>
            <target dev="vda" bus="virtio"/></disk>{devices}</devices></domain></node>"""
        )
        (tmp_path / "b.xml").write_text("<node/>\n")
        for name in ("a", "b"):
            opened.append(virtkit.connect(f"test://{tmp_path / name}.xml", storage_roots=[storage]))
        return opened[0], opened[1]

    yield make
    for host in opened:
        host.close()


@pytest.mark.parametrize("device", list(HOSTDEVS))
@pytest.mark.parametrize(
    "operation",
    [
        lambda vm, b, storage: lambda check: vm.migrate(b, check=check),
        lambda vm, b, storage: lambda check: vm.migrate(b, mode="quick", shared_storage=[storage], check=check),
        lambda vm, b, storage: lambda check: vm.migrate(b, mode="live-storage", storage=storage / "b", check=check),
        lambda vm, b, storage: lambda check: vm.save(storage / "web1.save", check=check),
        lambda vm, b, storage: lambda check: vm.managed_save(check=check),
        lambda vm, b, storage: lambda check: vm.snapshots.create("s1", kind="memory", check=check),
    ],
    ids=["live-migration", "quick-migration", "storage-migration", "save", "managed-save", "memory-snapshot"],
)
def test_a_host_device_is_refused_the_same_way_in_check_mode_and_for_real(
    with_devices: Callable[[str], tuple[virtkit.Host, virtkit.Host]], storage: Path, device: str, operation: Any
) -> None:
    xml, named = HOSTDEVS[device]
    a, b = with_devices(xml)
    (storage / "b").mkdir()  # where a storage migration would copy the disks to
    vm = a.get("web1")
    error = _same_refusal(a, storage, operation(vm, b, storage))
    assert isinstance(error, Unsupported)
    assert error.message.startswith("cannot ") and f"web1: {named} is passed through" in error.message
    assert "detach such devices first" in error.message
    assert not b.exists("web1") and vm.info().state is virtkit.VMState.RUNNING


def test_every_blocker_is_named_once_with_its_own_remedy(
    with_devices: Callable[[str], tuple[virtkit.Host, virtkit.Host]], storage: Path, vhd: Path
) -> None:
    vhd_disk = (
        f"<disk type='file' device='disk'><driver name='qemu' type='vpc'/><source file='{vhd}'/>"
        "<target dev='sda' bus='scsi'/><readonly/></disk>"
    )
    a, b = with_devices(vhd_disk + PCI + USB + HOSTDEVS["capabilities"][0])
    vm = a.get("web1")
    error = _same_refusal(a, storage, lambda check: vm.migrate(b, check=check))
    assert error.message == (
        f"cannot move (mode live) web1: disk sda ({vhd}) is vhd: QEMU's vpc driver, which VHD images use, cannot "
        "migrate or save its state; host device pci 0000:06:12.5 is passed through (its state is in the host's "
        "hardware, out of QEMU's reach); capabilities-mode host device storage /dev/sdf1 is passed through (its "
        "state is in the host's hardware, out of QEMU's reach); convert such disks to qcow2 (virtkit.images.convert) "
        "and attach the copy instead; detach such devices first (a stopped VM keeps them, and can be moved offline "
        "with them)"
    )


def test_what_libvirt_lets_through_is_not_refused_for_its_host_devices(
    with_devices: Callable[[str], tuple[virtkit.Host, virtkit.Host]], storage: Path
) -> None:
    """USB devices (reopened on the destination, or on restore) and a PCI device QEMU unplugs for the move
    (``<teaming type='transient'>``) block nothing. (The test driver cannot compare CPUs, so a migration that passes
    the blockers stops at the CPU check, past them.)"""
    transient = PCI.replace("</hostdev>", "<teaming type='transient' persistent='ua-backup0'/></hostdev>")
    a, b = with_devices(USB + transient)
    vm = a.get("web1")
    assert vm.save(storage / "web1.save", check=True).changed
    assert vm.managed_save(check=True).changed
    assert vm.snapshots.create("m1", kind="memory", check=True).changed
    with pytest.raises(Unsupported, match="cannot run CPU"):
        vm.migrate(b, check=True)


def test_a_stopped_vm_with_host_devices_moves_offline(
    with_devices: Callable[[str], tuple[virtkit.Host, virtkit.Host]], storage: Path
) -> None:
    a, b = with_devices(PCI + HOSTDEVS["capabilities"][0])
    vm = a.get("web1")
    assert vm.destroy().changed
    assert vm.snapshots.create("m1", kind="memory", check=True).changed  # a stopped VM has no memory to write
    with pytest.raises(Unsupported, match="cannot run CPU"):  # past the blockers: libvirt skips them offline too
        vm.migrate(b, mode="offline", check=True)
    with pytest.raises(Unsupported, match="cannot run CPU"):
        vm.migrate(b, mode="offline")
    assert not b.exists("web1")


# -- files: the same refusal before anything is touched --------------------------------------------------------


def test_files_are_refused_the_same_way_in_check_mode_and_for_real(host: virtkit.Host, storage: Path) -> None:
    vm = _vm(host, storage, "web1")
    (storage / "notes.txt").write_text("keep me\n")
    os.mkfifo(storage / "pipe")
    (storage / "dir").mkdir()
    (storage / "escape").symlink_to("/etc")
    cases: list[tuple[Callable[..., object], str]] = [
        (lambda check: vm.save(storage / "notes.txt", check=check), "path"),
        (lambda check: vm.save("/etc/web1.save", check=check), "path"),
        (lambda check: vm.save(storage / "escape" / "web1.save", check=check), "path"),
        (lambda check: vm.disks.attach({"path": str(storage / "pipe"), "format": "raw"}, check=check), "disk.path"),
        (lambda check: vm.disks.attach({"path": str(storage / "dir"), "format": "raw"}, check=check), "disk.path"),
        (lambda check: host.restore(storage / "notes.txt", check=check), "path"),
        (lambda check: host.restore(storage / "pipe", check=check), "path"),
    ]
    for call, field in cases:
        error = _same_refusal(host, storage, call)
        assert isinstance(error, InvalidSpec) and error.field == field, error


def test_create_refuses_a_serial_log_that_is_a_disk_image_in_both_modes(host: virtkit.Host, storage: Path) -> None:
    image = images.create(storage / "other.qcow2", "8MiB", roots=[storage]).path
    spec = {"name": "web2", "memory": "128MiB", "serial_log": str(image)}
    error = _same_refusal(host, storage, lambda check: host.create(spec, check=check))
    assert isinstance(error, InvalidSpec) and error.field == "serial_log" and "qcow2" in error.message


def test_delete_with_storage_refuses_a_file_that_leads_out_of_the_roots(
    host: virtkit.Host, storage: Path, tmp_path: Path
) -> None:
    host.create({"name": "web1", "memory": "128MiB", "serial_log": str(storage / "web1.log")})
    vm = host.get("web1")
    outside = tmp_path / "outside.log"
    outside.write_text("not virtkit's\n")
    (storage / "web1.log").symlink_to(outside)  # swapped in after the VM was made
    error = _same_refusal(host, storage, lambda check: vm.delete(storage=True, check=check))
    assert isinstance(error, InvalidSpec) and error.field == "serial_log" and "resolves to" in error.message
    assert outside.read_text() == "not virtkit's\n" and host.exists("web1")


def test_state_conflicts_are_the_same_in_both_modes(host: virtkit.Host, storage: Path) -> None:
    vm = _vm(host, storage, "web1", start=False)
    for call in (vm.pause, vm.resume, vm.reboot, vm.managed_save):
        assert type(_same_refusal(host, storage, call)).__name__ == "Conflict"
    vm.start()
    assert type(_same_refusal(host, storage, lambda check: vm.delete(check=check))).__name__ == "Conflict"
