"""Disk-bootable test guests: the lab's kernel and initramfs on a disk with a boot loader, built from Debian packages.

Direct kernel boot (:mod:`virtkit.lab.image`) skips the firmware's boot path; these disks take it, as a VM made by a
Hyper-V administrator would:

- ``bios``: an MBR disk whose one FAT partition holds SYSLINUX (Debian's ``syslinux`` and ``syslinux-common``),
  for Generation 1 (``pc``, SeaBIOS);
- ``uefi``: a GPT disk whose EFI system partition holds Debian's signed shim (``shim-signed``, signed by the
  Microsoft UEFI CA), signed GRUB (``grub-efi-amd64-signed``) and the Debian-signed kernel, for Generation 2
  (``q35``, OVMF). With Secure Boot on, the firmware checks shim, shim checks GRUB and GRUB checks the kernel: the
  guest kernel logs ``Secure boot enabled``. ``signed=False`` strips the kernel's signature, so that GRUB refuses it
  under Secure Boot ("bad shim signature") and boots it without.

A built disk is cached as a raw image in :func:`virtkit.lab.paths.guest_dir` (``boot-<firmware>-<variant>[-unsigned]``)
and rebuilt when its recipe or the guest it carries changes; :meth:`BootDisk.copy_to` hands out copies as raw,
qcow2, VHD or VHDX. Every partition is written into an image file with mtools and ``sfdisk``: nothing is mounted.
The kernel logs on the serial port (``console=ttyS0``) and the guest's markers are those of the direct-boot guest.
Under TCG the UEFI disk needs 512 MiB of memory (:data:`UEFI_MIN_MEMORY`): with 256 MiB the kernel stops right after
its EFI stub.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from virtkit.errors import InvalidSpec, LabError
from virtkit.lab._files import locked, swap_in, write_atomic
from virtkit.lab.guest import fetch
from virtkit.lab.image import GuestImage, build_guest, cached_guest
from virtkit.lab.paths import guest_dir

__all__ = [
    "BOOT_FIRMWARES",
    "COPY_FORMATS",
    "UEFI_MIN_MEMORY",
    "BootDisk",
    "build_boot_disk",
    "cached_boot_disk",
    "strip_signature",
]

Progress = Callable[[str], None]

BOOT_FIRMWARES: tuple[str, ...] = ("bios", "uefi")
COPY_FORMATS: dict[str, str] = {"raw": "raw", "qcow2": "qcow2", "vhd": "vpc", "vhdx": "vhdx"}  # name: qemu-img's
UEFI_MIN_MEMORY = 512 * 1024 * 1024

_FORMAT = 1  # bump when the disk layout or the boot loaders' configuration changes: rebuilds the cached disks
_MiB = 1024 * 1024
_DISK_SIZE = 80 * _MiB
_PART_START = 1 * _MiB  # sector 2048, where partitioning tools start the first partition
_PART_SIZE = 64 * _MiB  # FAT32 needs at least 65525 clusters: 64 MiB with 512-byte clusters has room
_ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
_SHIM, _GRUB = "shim-signed", "grub-efi-amd64-signed"
_SYSLINUX_MBR = Path("/usr/lib/syslinux/mbr/mbr.bin")
_SECURITY_DIRECTORY = 4  # the PE data directory that holds the Authenticode signature


@dataclass(frozen=True)
class BootDisk:
    """A cached disk-bootable guest: ``path`` is a raw image; copy it with :meth:`copy_to` before booting it."""

    path: Path
    firmware: str
    variant: str
    signed: bool
    kernel_version: str
    cmdline: str

    def copy_to(self, dest: Path, fmt: str = "qcow2") -> Path:
        """Write a copy of the disk to ``dest`` in ``fmt`` (``raw``, ``qcow2``, ``vhd`` or ``vhdx``); returns ``dest``.

        VHD keeps the exact size (``force_size``) rather than rounding it up to a CHS geometry, so that the GPT's
        backup header stays at the end of the disk.

        :raises InvalidSpec: ``fmt`` is not one of :data:`COPY_FORMATS`, or ``dest`` exists.
        :raises LabError: qemu-img failed (no partial copy is left).
        """
        if fmt not in COPY_FORMATS:
            raise InvalidSpec("fmt", f"must be one of {', '.join(COPY_FORMATS)}, got {fmt!r}")
        if dest.exists() or dest.is_symlink():
            raise InvalidSpec("dest", f"{dest} exists; the copy never overwrites a file")
        args = ["qemu-img", "convert", "-q", "-f", "raw", "-O", COPY_FORMATS[fmt]]
        if fmt == "vhd":
            args += ["-o", "subformat=dynamic,force_size=on"]
        try:
            fetch.run([*args, str(self.path), str(dest)], step=f"copy the boot disk as {fmt}", what="boot disk")
        except LabError:
            dest.unlink(missing_ok=True)
            raise
        return dest


def cached_boot_disk(firmware: str = "bios", *, variant: str = "plain", signed: bool = True) -> BootDisk | None:
    """The cached boot disk, or ``None`` when it was never built, or was built from another recipe or guest.

    :raises InvalidSpec: ``firmware`` is not one of :data:`BOOT_FIRMWARES`, ``variant`` is no guest variant, or
        ``signed=False`` with ``bios``.
    """
    _check(firmware, signed)
    guest = cached_guest(variant)
    if guest is None:
        return None
    return _load(_name(firmware, variant, signed), _recipe(firmware, variant, signed, guest), guest)


def build_boot_disk(
    firmware: str = "bios",
    *,
    variant: str = "plain",
    signed: bool = True,
    force: bool = False,
    progress: Progress | None = None,
) -> BootDisk:
    """Build (or return the cached) boot disk for ``firmware`` with the guest ``variant`` (``plain``, ``agent``).

    Builds the guest first if needed. The UEFI disk downloads ``shim-signed`` and ``grub-efi-amd64-signed`` with
    ``apt-get download`` (nothing is installed); the BIOS disk needs the host's ``syslinux`` packages. Builds run
    under a lock file and are swapped in by renames: a crashed build never leaves a half-written disk.

    :raises InvalidSpec: ``firmware`` is not one of :data:`BOOT_FIRMWARES`, ``variant`` is no guest variant, or
        ``signed=False`` with ``bios`` (a BIOS boots no signatures).
    :raises LabError: a step failed; the message names it, the command and its stderr.
    """
    _check(firmware, signed)
    say = progress or (lambda _msg: None)
    guest = build_guest(variant=variant, progress=say)
    name, recipe = _name(firmware, variant, signed), _recipe(firmware, variant, signed, guest)
    if not force and (disk := _load(name, recipe, guest)) is not None:
        return disk
    root = guest_dir()
    started = time.monotonic()
    try:
        root.mkdir(parents=True, exist_ok=True)
        with locked(root / f".{name}.lock"):
            if not force and (disk := _load(name, recipe, guest)) is not None:
                return disk
            for stale in root.glob(f".{name}-*"):
                shutil.rmtree(stale, ignore_errors=True)
            with tempfile.TemporaryDirectory(prefix=f".{name}-build-", dir=root) as tmp:
                work, out = Path(tmp), Path(tmp) / "out"
                out.mkdir()
                if firmware == "bios":
                    _bios_disk(guest, work, out / "disk.raw", say)
                else:
                    _uefi_disk(guest, signed, work, out / "disk.raw", say)
                write_atomic(out / "disk.json", json.dumps({"recipe": recipe}).encode() + b"\n")
                swap_in(out, root / name)
    except OSError as exc:
        raise LabError(f"boot disk: cannot build into {root}: {exc}") from exc
    say(f"boot disk {name!r} built in {time.monotonic() - started:.1f} s: {root / name / 'disk.raw'}")
    disk = _load(name, recipe, guest)
    if disk is None:
        raise LabError(f"boot disk: {root / name} is incomplete right after the build")
    return disk


def strip_signature(kernel: bytes) -> bytes:
    """``kernel`` (a PE/COFF EFI image such as a Debian ``vmlinuz``) without its Authenticode signature.

    The security data directory is zeroed and the signature it pointed at (the file's tail) cut off: the same
    code, which Secure Boot then refuses.

    :raises LabError: ``kernel`` is no PE image, or is not signed.
    """
    if len(kernel) < 0x40 or kernel[:2] != b"MZ":
        raise LabError("boot disk: the kernel is no PE image (no MZ header)")
    pe = struct.unpack_from("<I", kernel, 0x3C)[0]
    if pe + 24 + 2 > len(kernel) or kernel[pe : pe + 4] != b"PE\0\0":
        raise LabError("boot disk: the kernel is no PE image (no PE signature)")
    magic = struct.unpack_from("<H", kernel, pe + 24)[0]
    if magic not in (0x10B, 0x20B):
        raise LabError(f"boot disk: the kernel's PE optional header has an unknown magic {magic:#x}")
    entry = pe + 24 + (112 if magic == 0x20B else 96) + 8 * _SECURITY_DIRECTORY
    if entry + 8 > len(kernel):
        raise LabError("boot disk: the kernel's PE header is cut short")
    offset, size = struct.unpack_from("<II", kernel, entry)
    if size == 0 or offset == 0:
        raise LabError("boot disk: the kernel carries no signature to strip")
    if offset + size != len(kernel):
        raise LabError("boot disk: the kernel's signature is not at its end")
    out = bytearray(kernel[:offset])
    struct.pack_into("<II", out, entry, 0, 0)
    return bytes(out)


def grub_config(cmdline: str) -> str:
    """The ``grub.cfg`` that boots ``/vmlinuz`` and ``/initrd.img`` from the ESP at once, on the serial console."""
    return (
        "serial --unit=0 --speed=115200\n"
        "terminal_input serial console\n"
        "terminal_output serial console\n"
        "set timeout=0\n"
        "menuentry virtkit {\n"
        f"  linux /vmlinuz {cmdline}\n"
        "  initrd /initrd.img\n"
        "}\n"
    )


def syslinux_config(cmdline: str) -> str:
    """The ``syslinux.cfg`` that boots ``/vmlinuz`` and ``/initrd.img`` at once, on the serial console."""
    return (
        "SERIAL 0 115200\nDEFAULT virtkit\nPROMPT 0\nTIMEOUT 0\n"
        f"LABEL virtkit\n  LINUX /vmlinuz\n  INITRD /initrd.img\n  APPEND {cmdline}\n"
    )


def partition_table(firmware: str) -> str:
    """The ``sfdisk`` script of the disk: one partition at 1 MiB, FAT32 (BIOS, bootable) or the ESP (UEFI)."""
    start, size = _PART_START // 512, _PART_SIZE // 512
    if firmware == "bios":
        return f"label: dos\nstart={start}, size={size}, type=c, bootable\n"
    return f"label: gpt\nstart={start}, size={size}, type={_ESP_TYPE}, name=ESP\n"


# --- building ----------------------------------------------------------------------------------------------------


def _bios_disk(guest: GuestImage, work: Path, disk: Path, say: Progress) -> None:
    if not _SYSLINUX_MBR.is_file() or shutil.which("syslinux") is None:
        raise LabError("boot disk: the BIOS disk needs the syslinux and syslinux-common packages (scripts/setup-host)")
    part = work / "part.img"
    _fat(part, "VIRTKIT")
    say("installing SYSLINUX")
    fetch.run(["syslinux", "--install", str(part)], step="install SYSLINUX into the partition", what="boot disk")
    (work / "syslinux.cfg").write_text(syslinux_config(guest.cmdline))
    _copy_in(part, [(work / "syslinux.cfg", "syslinux.cfg"), (guest.kernel, "vmlinuz"), (guest.initrd, "initrd.img")])
    _assemble(disk, "bios", part)
    with open(disk, "r+b") as f:  # the MBR's boot code: the first 440 bytes, before the disk signature and table
        f.write(_SYSLINUX_MBR.read_bytes()[:440])


def _uefi_disk(guest: GuestImage, signed: bool, work: Path, disk: Path, say: Progress) -> None:
    apt = fetch.Apt(say)
    tree = work / "loaders"
    for package in (_SHIM, _GRUB):
        deb = apt.with_update(_downloader(apt, package, work))
        fetch.run(["dpkg-deb", "-x", str(deb), str(tree)], step=f"extract {deb.name}", what="boot disk")
    shim = tree / "usr/lib/shim/shimx64.efi.signed"
    grub = tree / "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"
    for path in (shim, grub):
        if not path.is_file():
            raise LabError(f"boot disk: the packages {_SHIM} and {_GRUB} left no {path.relative_to(tree)}")
    kernel = guest.kernel
    if not signed:
        kernel = work / "vmlinuz.unsigned"
        kernel.write_bytes(strip_signature(guest.kernel.read_bytes()))
    (work / "grub.cfg").write_text(grub_config(guest.cmdline))
    part = work / "esp.img"
    _fat(part, "ESP")
    fetch.run(["mmd", "-i", str(part), "::/EFI", "::/EFI/BOOT"], step="make the ESP's directories", what="boot disk")
    # The removable-media path the firmware boots without a boot entry; Debian's GRUB, started by shim from there,
    # reads grub.cfg from its own directory.
    files = [(shim, "EFI/BOOT/BOOTX64.EFI"), (grub, "EFI/BOOT/grubx64.efi"), (work / "grub.cfg", "EFI/BOOT/grub.cfg")]
    _copy_in(part, [*files, (kernel, "vmlinuz"), (guest.initrd, "initrd.img")])
    _assemble(disk, "uefi", part)


def _downloader(apt: fetch.Apt, package: str, dest: Path) -> Callable[[], Path]:
    return lambda: apt.download(package, dest)


def _fat(part: Path, label: str) -> None:
    with open(part, "wb") as f:
        f.truncate(_PART_SIZE)
    fetch.run(["mkfs.fat", "-F", "32", "-n", label, str(part)], step="make the FAT file system", what="boot disk")


def _copy_in(part: Path, files: list[tuple[Path, str]]) -> None:
    for source, name in files:
        fetch.run(
            ["mcopy", "-i", str(part), str(source), f"::/{name}"],
            step=f"copy {name} into the partition",
            what="boot disk",
        )


def _assemble(disk: Path, firmware: str, part: Path) -> None:
    with open(disk, "wb") as f:
        f.truncate(_DISK_SIZE)
    fetch.run(
        ["sfdisk", "-q", str(disk)],
        step="partition the disk",
        stdin=partition_table(firmware).encode(),
        what="boot disk",
    )
    with open(part, "rb") as src, open(disk, "r+b") as dst:
        dst.seek(_PART_START)
        shutil.copyfileobj(src, dst, 4 * _MiB)


# --- the cache ---------------------------------------------------------------------------------------------------


def _check(firmware: str, signed: bool) -> None:
    if firmware not in BOOT_FIRMWARES:
        raise InvalidSpec("firmware", f"must be one of {', '.join(BOOT_FIRMWARES)}, got {firmware!r}")
    if not signed and firmware == "bios":
        raise InvalidSpec("signed", "a BIOS boot disk checks no signatures; signed=False is for uefi")


def _name(firmware: str, variant: str, signed: bool) -> str:
    return f"boot-{firmware}-{variant}" + ("" if signed else "-unsigned")


def _recipe(firmware: str, variant: str, signed: bool, guest: GuestImage) -> str:
    digest = hashlib.sha256()
    fields = [_FORMAT, firmware, variant, signed, guest.kernel_version, guest.cmdline, partition_table(firmware)]
    digest.update(json.dumps(fields).encode())
    config = syslinux_config(guest.cmdline) if firmware == "bios" else grub_config(guest.cmdline)
    digest.update(config.encode())
    for path in (guest.kernel, guest.initrd):
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _load(name: str, recipe: str, guest: GuestImage) -> BootDisk | None:
    directory = guest_dir() / name
    try:
        manifest = json.loads((directory / "disk.json").read_text())
    except (OSError, ValueError):
        return None
    disk = directory / "disk.raw"
    if not isinstance(manifest, dict) or manifest.get("recipe") != recipe or not disk.is_file():
        return None
    firmware, rest = name.removeprefix("boot-").split("-", 1)
    variant, signed = rest.removesuffix("-unsigned"), not rest.endswith("-unsigned")
    return BootDisk(disk, firmware, variant, signed, guest.kernel_version, guest.cmdline)
