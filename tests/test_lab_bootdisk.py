"""The lab's disk-bootable guests: what goes on the disk, checked without building one (integration boots them)."""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path
from subprocess import PIPE

import pytest

from virtkit.errors import InvalidSpec, LabError
from virtkit.lab import bootdisk


def _pe(*, pe32_plus: bool = True, signature: bytes = b"SIG!" * 8) -> bytes:
    """A minimal PE image: DOS header, PE header, optional header with data directories, body, signature."""
    pe = 0x80
    optional = 240 if pe32_plus else 224
    head = bytearray(pe + 24 + optional)
    head[:2] = b"MZ"
    struct.pack_into("<I", head, 0x3C, pe)
    head[pe : pe + 4] = b"PE\0\0"
    struct.pack_into("<H", head, pe + 24, 0x20B if pe32_plus else 0x10B)
    body = bytes(head) + b"\x90" * 512
    if signature:
        entry = pe + 24 + (112 if pe32_plus else 96) + 8 * 4
        out = bytearray(body)
        struct.pack_into("<II", out, entry, len(body), len(signature))
        return bytes(out) + signature
    return body


@pytest.mark.parametrize("pe32_plus", [True, False])
def test_strip_signature_cuts_the_signature_and_clears_its_directory(pe32_plus: bool) -> None:
    signed = _pe(pe32_plus=pe32_plus)
    unsigned = bootdisk.strip_signature(signed)
    assert unsigned == _pe(pe32_plus=pe32_plus, signature=b"")
    with pytest.raises(LabError, match="no signature"):
        bootdisk.strip_signature(unsigned)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "no MZ header"),
        (b"ELF" + bytes(100), "no MZ header"),
        (b"MZ" + bytes(0x3A) + struct.pack("<I", 0x1000), "no PE signature"),
    ],
)
def test_strip_signature_refuses_what_is_no_pe_image(data: bytes, reason: str) -> None:
    with pytest.raises(LabError, match=reason):
        bootdisk.strip_signature(data)


def test_strip_signature_refuses_a_signature_not_at_the_end() -> None:
    signed = _pe() + b"trailing"
    with pytest.raises(LabError, match="not at its end"):
        bootdisk.strip_signature(signed)


def test_partition_tables_put_one_partition_at_one_mib() -> None:
    bios, uefi = bootdisk.partition_table("bios"), bootdisk.partition_table("uefi")
    assert bios.startswith("label: dos\n") and "start=2048, size=131072, type=c, bootable" in bios
    assert uefi.startswith("label: gpt\n") and "type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B" in uefi


def test_boot_loader_configs_boot_the_kernel_on_the_serial_console_at_once() -> None:
    grub = bootdisk.grub_config("console=ttyS0 quiet")
    assert "serial --unit=0 --speed=115200" in grub and "set timeout=0" in grub
    assert "linux /vmlinuz console=ttyS0 quiet\n" in grub and "initrd /initrd.img\n" in grub
    syslinux = bootdisk.syslinux_config("console=ttyS0 quiet")
    assert syslinux.startswith("SERIAL 0 115200\n") and "TIMEOUT 0\n" in syslinux
    assert "APPEND console=ttyS0 quiet\n" in syslinux


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"firmware": "efi"}, "firmware"),
        ({"firmware": "bios", "signed": False}, "signed"),
    ],
)
def test_bad_build_arguments_are_refused_before_anything_is_built(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        bootdisk.build_boot_disk(**kwargs)  # type: ignore[arg-type]
    assert err.value.field == field
    with pytest.raises(InvalidSpec):
        bootdisk.cached_boot_disk(**kwargs)  # type: ignore[arg-type]


def test_copy_to_refuses_an_unknown_format_and_an_existing_file(tmp_path: Path) -> None:
    source = tmp_path / "disk.raw"
    source.write_bytes(bytes(1024 * 1024))
    disk = bootdisk.BootDisk(source, "bios", "plain", True, "6.1", "console=ttyS0")
    with pytest.raises(InvalidSpec) as err:
        disk.copy_to(tmp_path / "x.img", "vmdk")
    assert err.value.field == "fmt"
    (tmp_path / "taken.vhdx").write_text("mine")
    with pytest.raises(InvalidSpec) as err:
        disk.copy_to(tmp_path / "taken.vhdx", "vhdx")
    assert err.value.field == "dest" and (tmp_path / "taken.vhdx").read_text() == "mine"


@pytest.mark.parametrize(("fmt", "qemu"), [("qcow2", "qcow2"), ("vhd", "vpc"), ("vhdx", "vhdx"), ("raw", "raw")])
def test_copy_to_writes_each_format_with_the_same_contents(tmp_path: Path, fmt: str, qemu: str) -> None:
    source = tmp_path / "disk.raw"
    source.write_bytes(b"virtkit!" * (2 * 1024 * 1024 // 8))
    disk = bootdisk.BootDisk(source, "bios", "plain", True, "6.1", "console=ttyS0")
    copy = disk.copy_to(tmp_path / f"copy.{fmt}", fmt)
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(copy)], check=True, stdout=PIPE).stdout)
    assert info["format"] == qemu and info["virtual-size"] == source.stat().st_size
    subprocess.run(["qemu-img", "compare", "-q", "-f", "raw", "-F", qemu, str(source), str(copy)], check=True)
