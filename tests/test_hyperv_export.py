"""Export-VM on libvirt's test driver with real qemu-img: the drives come out as VHDX files holding the VM's data,
with a spec that names them; a running VM, an existing export, a path outside the roots are refused and leave
nothing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import virtkit
from virtkit import AlreadyExists, Conflict, InvalidSpec, hyperv
from virtkit.hyperv import HyperVSpec
from virtkit.hyperv.export import DISKS_DIRECTORY


def _vm_with_two_drives(host: virtkit.Host, storage: Path) -> tuple[Path, Path]:
    vhdx, qcow2 = storage / "web.vhdx", storage / "data.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", str(vhdx), "16M"], check=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(qcow2), "8M"], check=True)
    spec = {"Name": "exp1", "Generation": 2, "MemoryStartupBytes": "64MB",
            "HardDrives": [{"Path": str(vhdx)}, {"Path": str(qcow2)}]}  # fmt: skip
    hyperv.new_vm(host, spec)
    # The VM's own writes go to the import it runs from: write a pattern there, which the export must carry.
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x42 1M 1M", f"{vhdx}.qcow2"], check=True, stdout=-3)
    return vhdx, qcow2


def test_export_writes_each_drive_as_vhdx_with_the_vms_data_and_a_spec_naming_them(
    host: virtkit.Host, storage: Path
) -> None:
    _vm_with_two_drives(host, storage)
    out = storage / "export"
    out.mkdir()
    seen: list[tuple[str, float]] = []
    change = hyperv.export_vm(host, "exp1", out, progress=lambda field, pct: seen.append((field, pct)))
    target = out / "exp1"
    assert change.changed and change.target == str(target)
    files = sorted(p.name for p in (target / DISKS_DIRECTORY).iterdir())
    assert files == ["data.vhdx", "web.vhdx"]
    for name, size in (("web.vhdx", 16 * 2**20), ("data.vhdx", 8 * 2**20)):
        info = hyperv.get_vhd(host, target / DISKS_DIRECTORY / name)
        assert (info.vhd_format, info.vhd_type, info.size) == ("VHDX", "Dynamic", size)
    cmd = ["qemu-io", "-f", "vhdx", "-c", "read -P 0x42 1M 1M", str(target / DISKS_DIRECTORY / "web.vhdx")]
    assert "Pattern verification failed" not in subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    exported = HyperVSpec.from_file(target / "exp1.yml")
    assert exported == change.after
    assert [d.path for d in exported.hard_drives] == [target / DISKS_DIRECTORY / f for f in ("web.vhdx", "data.vhdx")]
    assert (exported.generation, exported.memory_startup_bytes) == (2, 64 * 2**20)
    assert {field for field, _ in seen} == {"HardDrives[0]", "HardDrives[1]"}


def test_export_what_if_predicts_and_writes_nothing(host: virtkit.Host, storage: Path) -> None:
    _vm_with_two_drives(host, storage)
    before = sorted(os.listdir(storage))
    change = hyperv.export_vm(host, "exp1", storage, what_if=True)
    assert change.check and change.after is not None and len(change.after.hard_drives) == 2
    assert sorted(os.listdir(storage)) == before


def test_export_refusals_leave_nothing(host: virtkit.Host, storage: Path, tmp_path: Path) -> None:
    _vm_with_two_drives(host, storage)
    before = sorted(os.listdir(storage))
    with pytest.raises(InvalidSpec) as err:
        hyperv.export_vm(host, "exp1", tmp_path / "elsewhere")
    assert err.value.field == "Path"
    with pytest.raises(InvalidSpec):
        hyperv.export_vm(host, "exp1", storage / "web.vhdx")  # a file, not a directory
    hyperv.start_vm(host, "exp1")
    with pytest.raises(Conflict, match="stop or save it first"):
        hyperv.export_vm(host, "exp1", storage)
    assert sorted(os.listdir(storage)) == before
    hyperv.stop_vm(host, "exp1", turn_off=True)
    (storage / "exp1").mkdir()
    with pytest.raises(AlreadyExists):
        hyperv.export_vm(host, "exp1", storage)


def test_an_export_that_fails_midway_removes_what_it_made(host: virtkit.Host, storage: Path) -> None:
    _vm_with_two_drives(host, storage)
    before = sorted(os.listdir(storage))

    def cancel_on_the_second(field: str, _pct: float) -> None:
        if field == "HardDrives[1]":
            raise KeyboardInterrupt  # what Ctrl-C does in the middle of the second copy

    with pytest.raises(KeyboardInterrupt):
        hyperv.export_vm(host, "exp1", storage, progress=cancel_on_the_second)
    assert sorted(os.listdir(storage)) == before


def test_an_export_is_made_again_by_new_vm_from_its_spec(host: virtkit.Host, storage: Path) -> None:
    _vm_with_two_drives(host, storage)
    out = storage / "export"
    out.mkdir()
    hyperv.export_vm(host, "exp1", out)
    exported = HyperVSpec.from_file(out / "exp1" / "exp1.yml")
    again = hyperv.new_vm(host, {**exported.to_dict(), "Name": "exp1-copy"})
    assert again.changed and host.exists("exp1-copy")


def test_a_drive_the_export_cannot_read_is_named_before_anything_is_written(host: virtkit.Host, storage: Path) -> None:
    plain = storage / "disk0"  # an image without a disk extension, made through the neutral API
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(plain), "8M"], check=True)
    host.create({"name": "exp3", "memory": "64MiB", "disks": [{"path": str(plain)}]})
    before = sorted(os.listdir(storage))
    for what_if in (True, False):
        with pytest.raises(InvalidSpec) as err:
            hyperv.export_vm(host, "exp3", storage, what_if=what_if)
        assert err.value.field == "HardDrives[0].Path"
    assert sorted(os.listdir(storage)) == before
