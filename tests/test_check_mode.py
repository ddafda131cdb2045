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
