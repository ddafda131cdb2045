"""Unit tests of the test guest's pure parts: the newc writer, the initramfs layout, module order, the cache.

Nothing here downloads or builds the guest; booting it is integration work (``virtkit.lab.image.boot_check``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import os
import shutil
import stat
import struct
import subprocess
from pathlib import Path

import pytest

from virtkit.errors import InvalidSpec, LabError
from virtkit.lab import _files, image
from virtkit.lab.guest import fetch, memload
from virtkit.lab.guest.initramfs import (
    AGENT_INIT,
    LOAD_PATH,
    SHUTDOWN,
    CpioEntry,
    agent_entries,
    builtin_modules,
    guest_file,
    init_script,
    initramfs_entries,
    is_static_elf,
    module_depends,
    module_files,
    order_modules,
    parse_ldd,
    read_module,
    write_initramfs,
    write_newc,
)
from virtkit.lab.serial import AGENT_STATUSES, DIRTY_MODES

# --- newc cpio ---------------------------------------------------------------------------------------------------


def read_newc(data: bytes) -> list[tuple[str, int, int, bytes, tuple[int, int]]]:
    """(name, ino, mode, data, rdev) of each member, read independently of the writer; stops at the trailer."""
    members = []
    pos = 0
    while True:
        assert data[pos : pos + 6] == b"070701", f"bad magic at {pos}"
        fields = [int(data[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        ino, mode, size, rdev, namesize = fields[0], fields[1], fields[6], (fields[9], fields[10]), fields[11]
        name_end = pos + 110 + namesize
        name = data[pos + 110 : name_end - 1].decode()
        assert data[name_end - 1] == 0
        pos = name_end + (-name_end % 4)
        body = data[pos : pos + size]
        pos += size + (-size % 4)
        if name == "TRAILER!!!":
            assert pos == len(data)
            return members
        members.append((name, ino, mode, body, rdev))


ENTRIES = [
    CpioEntry("bin", stat.S_IFDIR | 0o755),
    CpioEntry("bin/busybox", stat.S_IFREG | 0o755, b"\x7fELF-ish" * 3),
    CpioEntry("bin/sh", stat.S_IFLNK | 0o777, b"busybox"),
    CpioEntry("dev", stat.S_IFDIR | 0o755),
    CpioEntry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)),
    CpioEntry("init", stat.S_IFREG | 0o755, b"#!/bin/sh\n"),
    CpioEntry("empty", stat.S_IFREG | 0o644),
]


def test_newc_round_trip() -> None:
    out = io.BytesIO()
    write_newc(ENTRIES, out)
    members = read_newc(out.getvalue())
    assert [(m[0], m[2], m[3], m[4]) for m in members] == [(e.name, e.mode, e.data, e.rdev) for e in ENTRIES]
    assert [m[1] for m in members] == list(range(1, len(ENTRIES) + 1))  # unique inodes: no accidental hard links
    assert len(out.getvalue()) % 4 == 0


def test_newc_is_reproducible() -> None:
    first, second = io.BytesIO(), io.BytesIO()
    write_newc(ENTRIES, first)
    write_newc(ENTRIES, second)
    assert first.getvalue() == second.getvalue()


@pytest.mark.skipif(shutil.which("cpio") is None, reason="GNU cpio not installed")
def test_gnu_cpio_lists_the_archive(tmp_path: Path) -> None:
    path = tmp_path / "initrd.img"
    write_initramfs(ENTRIES, path)
    listing = subprocess.run(
        ["cpio", "-itv", "--quiet"], input=gzip.decompress(path.read_bytes()), capture_output=True, check=True
    ).stdout.decode()
    lines = listing.splitlines()
    assert [line.split()[-1] for line in lines if "->" not in line] == [e.name for e in ENTRIES if e.name != "bin/sh"]
    assert any(line.startswith("lrwxrwxrwx") and line.endswith("bin/sh -> busybox") for line in lines)
    assert any(line.startswith("crw-------") and "5,   1" in line for line in lines)


def test_initramfs_is_gzip_with_a_fixed_header(tmp_path: Path) -> None:
    path = tmp_path / "initrd.img"
    write_initramfs(ENTRIES, path)
    raw = path.read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    assert struct.unpack_from("<I", raw, 4)[0] == 0  # mtime 0
    assert raw[3] & 0x08 == 0  # no file name stored
    assert read_newc(gzip.decompress(raw))[0][0] == "bin"


# --- initramfs layout --------------------------------------------------------------------------------------------


def test_initramfs_layout() -> None:
    entries = initramfs_entries(
        busybox=b"BB",
        init=b"#!/bin/sh\n",
        kernel_version="6.1.0-56-cloud-amd64",
        modules=[("virtio_ring", b"R"), ("virtio", b"V")],
    )
    by_name = {e.name: e for e in entries}
    names = [e.name for e in entries]
    for name in names:  # every parent directory comes before its contents
        parent = name.rpartition("/")[0]
        assert not parent or (parent in names[: names.index(name)] and stat.S_ISDIR(by_name[parent].mode))
    assert len(names) == len(set(names))
    assert not any(name.startswith("/") for name in names)
    assert by_name["init"].mode == stat.S_IFREG | 0o755
    assert by_name["bin/sh"].data == b"busybox" and stat.S_ISLNK(by_name["bin/sh"].mode)
    assert by_name["dev/console"].rdev == (5, 1)
    for directory in ("proc", "sys", "dev", "run", "tmp"):
        assert stat.S_ISDIR(by_name[directory].mode)
    assert by_name["etc/virtkit/modules"].data == (
        b"/lib/modules/6.1.0-56-cloud-amd64/virtio_ring.ko\n/lib/modules/6.1.0-56-cloud-amd64/virtio.ko\n"
    )
    assert by_name["lib/modules/6.1.0-56-cloud-amd64/virtio.ko"].data == b"V"
    assert LOAD_PATH not in by_name  # no load given: none in the archive (init then runs without loads)


def test_initramfs_holds_the_memory_load_as_an_executable() -> None:
    entries = initramfs_entries(busybox=b"BB", init=b"I", kernel_version="6.1", modules=[], load=b"\x7fELF-load")
    names = [e.name for e in entries]
    (load,) = [e for e in entries if e.name == LOAD_PATH == "bin/virtkit-load"]
    assert load.data == b"\x7fELF-load" and load.mode == stat.S_IFREG | 0o755
    assert names.index("bin") < names.index(LOAD_PATH)


def test_init_script_ships_as_package_data_and_prints_the_three_markers() -> None:
    script = init_script().decode()
    assert script.startswith("#!/bin/sh\n")
    for marker in (
        'say "VIRTKIT-BOOT uptime=$up firmware=$firmware secureboot=$secureboot"',
        'say "VIRTKIT-DISKS uptime=$up disks=$disks"',
        'say "VIRTKIT-ALIVE uptime=$up counter=$counter"',
    ):
        assert marker in script
    assert "/etc/virtkit/modules" in script
    assert "virtkit.alive=" in script
    for option in ("dirty", "dirtymode", "dirtyreport", "fill", "fillcheck"):
        assert f"virtkit.{option}=" in script
    assert "load=/bin/virtkit-load" in script and LOAD_PATH == "bin/virtkit-load"


@pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox not installed")
def test_init_script_is_valid_busybox_sh(tmp_path: Path) -> None:
    script = tmp_path / "init"
    script.write_bytes(init_script())
    subprocess.run(["busybox", "sh", "-n", str(script)], check=True)


# --- kernel modules ----------------------------------------------------------------------------------------------

# depends= of these modules in Debian 12's 6.1 cloud kernel
DEPENDS = {
    "scsi_common": [],
    "scsi_mod": ["scsi_common"],
    "sd_mod": ["scsi_mod"],
    "virtio_ring": [],
    "virtio": ["virtio_ring"],
    "virtio_pci_legacy_dev": [],
    "virtio_pci_modern_dev": [],
    "virtio_pci": ["virtio_ring", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio"],
    "virtio_blk": ["virtio", "virtio_ring"],
    "virtio_scsi": ["scsi_mod", "virtio_ring", "virtio"],
    "failover": [],
    "net_failover": ["failover"],
    "virtio_net": ["virtio_ring", "virtio", "net_failover"],
    "virtio_console": ["virtio", "virtio_ring"],
    "virtio_balloon": ["virtio", "virtio_ring"],
}


def order(wanted: list[str] | tuple[str, ...], builtin: set[str] | None = None, **deps: list[str]) -> list[str]:
    table = {**DEPENDS, **deps}
    return order_modules(wanted, available=table, builtin=builtin or set(), depends=lambda m: table[m])


def test_lab_module_list_is_already_in_dependency_order() -> None:
    assert order(image.GUEST_MODULES) == list(image.GUEST_MODULES)


def test_dependencies_come_first_even_when_asked_last() -> None:
    assert order(["virtio_blk", "virtio", "virtio_ring"]) == ["virtio_ring", "virtio", "virtio_blk"]
    assert order(["virtio_scsi"]) == ["scsi_common", "scsi_mod", "virtio_ring", "virtio", "virtio_scsi"]


def test_builtin_modules_are_not_loaded() -> None:
    assert order(["virtio_ring", "virtio", "virtio_blk"], builtin={"virtio_ring", "virtio"}) == ["virtio_blk"]


def test_absent_modules_and_their_dependents_are_skipped() -> None:
    assert order(["virtio_ring", "virtio_mem", "virtio_balloon"]) == ["virtio_ring", "virtio", "virtio_balloon"]
    assert order(["virtio_console"], virtio_console=["virtio", "virtio_dma_buf"]) == []


def test_a_dependency_cycle_is_skipped_not_looped() -> None:
    assert order(["a", "virtio_ring"], a=["b"], b=["a"]) == ["virtio_ring"]


def test_modinfo_depends() -> None:
    blob = b"\x7fELF....\x00license=GPL\x00depends=virtio,virtio_ring\x00intree=Y\x00name=virtio_blk\x00"
    assert module_depends(blob) == ["virtio", "virtio_ring"]
    assert module_depends(b"\x00license=GPL\x00depends=\x00name=virtio_ring\x00") == []
    assert module_depends(b"depends=crc-t10dif\x00") == ["crc_t10dif"]
    assert module_depends(b"no modinfo at all") == []


def test_module_files_builtin_and_decompression(tmp_path: Path) -> None:
    drivers = tmp_path / "kernel/drivers"
    drivers.mkdir(parents=True)
    (drivers / "virtio_blk.ko").write_bytes(b"plain")
    (drivers / "crc-t10dif.ko.xz").write_bytes(lzma.compress(b"xz module"))
    (drivers / "virtio_net.ko.gz").write_bytes(gzip.compress(b"gz module"))
    (drivers / "notes.txt").write_text("not a module")
    (tmp_path / "modules.builtin").write_text("kernel/drivers/tty/serial/8250/8250.ko\nkernel/fs/ext4/ext4.ko\n")
    files = module_files(tmp_path)
    assert sorted(files) == ["crc_t10dif", "virtio_blk", "virtio_net"]
    assert [read_module(files[m]) for m in sorted(files)] == [b"xz module", b"plain", b"gz module"]
    assert builtin_modules(tmp_path) == {"8250", "ext4"}
    assert builtin_modules(tmp_path / "nowhere") == set()


def elf64(*phdr_types: int) -> bytes:
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", header, 0x20, 64)
    struct.pack_into("<HH", header, 0x36, 56, len(phdr_types))
    return bytes(header) + b"".join(struct.pack("<I", t) + bytes(52) for t in phdr_types)


def test_static_elf_detection(tmp_path: Path) -> None:
    static, dynamic, script = tmp_path / "static", tmp_path / "dynamic", tmp_path / "script"
    static.write_bytes(elf64(6, 1, 1, 4))  # PHDR, LOAD, LOAD, NOTE
    dynamic.write_bytes(elf64(6, 3, 1, 2))  # PHDR, INTERP, LOAD, DYNAMIC
    script.write_text("#!/bin/sh\n" * 10)
    assert is_static_elf(static)
    assert not is_static_elf(dynamic)
    assert not is_static_elf(script)
    assert not is_static_elf(tmp_path / "missing")


# --- apt output --------------------------------------------------------------------------------------------------

APT_SHOW = """Package: linux-image-cloud-amd64
Source: linux-signed-amd64 (6.1.192+2)
Version: 6.1.192-2
Provides: linux-latest-modules-6.1.0-56-cloud-amd64, wireguard-modules (= 1.0.0)
Depends: linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)
Description: Linux for x86-64 cloud (meta-package)
"""


def test_kernel_dependency_is_resolved_with_its_version() -> None:
    assert image.parse_kernel_dependency(APT_SHOW) == "linux-image-6.1.0-56-cloud-amd64=6.1.192-2"


def test_kernel_dependency_among_others_and_without_version() -> None:
    text = "Depends: initramfs-tools | linux-initramfs-tool, linux-image-6.12.9-cloud-amd64, kmod (>= 30)\n"
    assert image.parse_kernel_dependency(text) == "linux-image-6.12.9-cloud-amd64"


def test_no_kernel_dependency_is_a_lab_error() -> None:
    with pytest.raises(LabError, match="linux-image"):
        image.parse_kernel_dependency("Package: linux-image-cloud-amd64\nDepends: kmod\n")


# --- the image and its cache -------------------------------------------------------------------------------------


def test_cmdline_with_the_loads() -> None:
    guest = image.GuestImage(Path("/k"), Path("/i"), "console=ttyS0 quiet", "6.1.0-56-cloud-amd64")
    line = guest.cmdline_for(alive=1, dirty=32, dirty_mode="counter", dirty_report=5, fill=64, fill_check=2)
    assert line == (
        "console=ttyS0 quiet virtkit.alive=1 virtkit.dirty=32 virtkit.dirtymode=counter virtkit.dirtyreport=5"
        " virtkit.fill=64 virtkit.fillcheck=2"
    )
    assert guest.cmdline_for(fill=64) == "console=ttyS0 quiet virtkit.fill=64"
    for mode in DIRTY_MODES:
        assert guest.cmdline_for(dirty=8, dirty_mode=mode).endswith(f" virtkit.dirty=8 virtkit.dirtymode={mode}")


@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        ({"fill": 0}, "fill", "positive whole number, got 0"),
        ({"fill": 1.5}, "fill", "positive whole number, got 1.5"),
        ({"fill": "64"}, "fill", "positive whole number, got '64'"),
        ({"fill": True}, "fill", "positive whole number, got True"),
        ({"fill": 8, "fill_check": -2}, "fill_check", "positive whole number"),
        ({"dirty": 8, "dirty_report": 0}, "dirty_report", "positive whole number"),
        ({"dirty": 8, "dirty_mode": "random"}, "dirty_mode", "one of pattern, counter, got 'random'"),
        ({"dirty": 8, "dirty_mode": 1}, "dirty_mode", "one of pattern, counter, got 1"),
        ({"dirty_mode": "counter"}, "dirty_mode", "needs dirty"),
        ({"dirty_report": 5, "fill": 8}, "dirty_report", "needs dirty"),
        ({"fill_check": 5, "dirty": 8}, "fill_check", "needs fill"),
    ],
)
def test_cmdline_rejects_bad_load_options(options: dict[str, object], field: str, message: str) -> None:
    guest = image.GuestImage(Path("/k"), Path("/i"), "console=ttyS0 quiet", "6.1.0-56-cloud-amd64")
    with pytest.raises(InvalidSpec, match=message) as err:
        guest.cmdline_for(**options)  # type: ignore[arg-type]
    assert err.value.field == field


def test_cmdline_with_alive_period() -> None:
    guest = image.GuestImage(Path("/k"), Path("/i"), "console=ttyS0 quiet", "6.1.0-56-cloud-amd64")
    assert guest.cmdline_for() == "console=ttyS0 quiet"
    assert guest.cmdline_for(alive=1) == "console=ttyS0 quiet virtkit.alive=1"
    with pytest.raises(InvalidSpec):
        guest.cmdline_for(alive=0)
    assert guest.cmdline_for(alive=1, dirty=64) == "console=ttyS0 quiet virtkit.alive=1 virtkit.dirty=64"
    with pytest.raises(InvalidSpec) as err:
        guest.cmdline_for(dirty=-1)
    assert err.value.field == "dirty"


@pytest.fixture
def lab_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VIRTKIT_LAB_ROOT", str(tmp_path))
    return tmp_path


def fake_cache(root: Path, recipe: str, variant: str = "plain") -> Path:
    plain = root / "guest" / variant
    plain.mkdir(parents=True)
    (plain / "vmlinuz").write_bytes(b"kernel")
    (plain / "initrd.img").write_bytes(b"initrd")
    manifest = {"recipe": recipe, "cmdline": "console=ttyS0 quiet", "kernel_version": "6.1.0-56-cloud-amd64"}
    (plain / "guest.json").write_text(json.dumps(manifest))
    return plain


def test_no_cache_yet(lab_root: Path) -> None:
    assert image.cached_guest() is None


def test_cached_guest_is_returned_without_apt(lab_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = fake_cache(lab_root, image._PLAIN.recipe)

    def no_commands(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("a cached guest must not run any command")

    monkeypatch.setattr(fetch, "run", no_commands)
    expected = image.GuestImage(plain / "vmlinuz", plain / "initrd.img", "console=ttyS0 quiet", "6.1.0-56-cloud-amd64")
    assert image.cached_guest() == expected
    assert image.build_guest() == expected


@pytest.mark.parametrize("damage", ["stale recipe", "no initrd", "bad manifest"])
def test_stale_or_incomplete_cache_is_ignored(lab_root: Path, damage: str) -> None:
    plain = fake_cache(lab_root, "an older recipe" if damage == "stale recipe" else image._PLAIN.recipe)
    if damage == "no initrd":
        (plain / "initrd.img").unlink()
    if damage == "bad manifest":
        (plain / "guest.json").write_text('{"recipe": ')
    assert image.cached_guest() is None


def test_recipe_follows_the_init_script_and_module_list() -> None:
    variant = image._PLAIN
    other = image._Variant(variant.name, (*variant.modules, "virtio_mem"), variant.required_modules)
    assert variant.recipe == image._PLAIN.recipe
    assert other.recipe != variant.recipe


def test_swap_in_replaces_a_whole_directory(tmp_path: Path) -> None:
    target, new = tmp_path / "plain", tmp_path / ".plain-build-x"
    target.mkdir()
    (target / "old-file").write_text("old")
    new.mkdir()
    (new / "vmlinuz").write_text("new")
    _files.swap_in(new, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain"]
    assert [p.name for p in target.iterdir()] == ["vmlinuz"]


def test_failed_command_names_step_command_and_stderr() -> None:
    with pytest.raises(LabError) as info:
        fetch.run(["sh", "-c", "echo 'E: Unable to locate package nope' >&2; exit 100"], step="download nope")
    message = str(info.value)
    assert "download nope" in message and "exited with 100" in message and "Unable to locate package" in message
    with pytest.raises(LabError, match="no-such-command"):
        fetch.run(["no-such-command-virtkit"], step="run a missing command")


def test_apt_update_runs_once_then_the_step_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    commands: list[list[str]] = []
    monkeypatch.setattr(fetch, "run", lambda args, **kwargs: commands.append(list(args)) or b"")
    apt = fetch.Apt(progress=lambda _msg: None)
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise LabError("guest image: cannot download x: E: Failed to fetch ... 404 Not Found")
        return "ok"

    assert apt.with_update(flaky) == "ok"
    assert commands == [["apt-get", "update", "-qq"]]

    def broken() -> str:
        raise LabError("guest image: cannot download y: E: Unable to locate package y")

    with pytest.raises(LabError, match="Unable to locate"):
        apt.with_update(broken)
    assert len(commands) == 1  # no second update within one build


def test_unusable_cache_directory_is_a_lab_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    monkeypatch.setenv("VIRTKIT_LAB_ROOT", str(not_a_dir))
    with pytest.raises(LabError, match="cannot build into"):
        image.build_guest()


# --- the agent variant -------------------------------------------------------------------------------------------


def test_plain_recipe_is_the_one_plain_caches_were_built_with() -> None:
    """The agent variant must not change the plain recipe: the plain one is its fields and init, nothing more."""
    plain = image._PLAIN
    load = [*memload.LOAD_COMMAND, hashlib.sha256(memload.load_source()).hexdigest()]
    fields = [2, "plain", "console=ttyS0 quiet", list(image.GUEST_MODULES), sorted(plain.required_modules), load]
    assert plain.recipe == hashlib.sha256(json.dumps(fields).encode() + init_script()).hexdigest()
    assert image._FORMAT == 2  # 2: the memory load joined the archive
    assert plain.required_modules == {"virtio_ring", "virtio", "virtio_pci", "virtio_blk"}


def test_agent_recipe_follows_its_scripts(monkeypatch: pytest.MonkeyPatch) -> None:
    agent, plain = image._AGENT.recipe, image._PLAIN.recipe
    assert agent != plain
    real = image.guest_file
    for name in (AGENT_INIT, SHUTDOWN):
        monkeypatch.setattr(image, "guest_file", lambda n, changed=name: real(n) + (b"#\n" if n == changed else b""))
        assert image._AGENT.recipe not in (agent, plain)
        assert image._PLAIN.recipe == plain
    assert "virtio_console" in image._AGENT.required_modules


def test_variants_and_unknown_variant(lab_root: Path) -> None:
    assert image.GUEST_VARIANTS == ("plain", "agent")
    for call in (lambda: image.build_guest(variant="windows"), lambda: image.cached_guest("windows")):
        with pytest.raises(InvalidSpec, match="plain, agent"):
            call()


def test_each_variant_has_its_own_cache(lab_root: Path) -> None:
    agent_dir = fake_cache(lab_root, image._AGENT.recipe, variant="agent")
    assert image.cached_guest() is None
    cached = image.cached_guest("agent")
    assert cached is not None and cached.initrd == agent_dir / "initrd.img"
    fake_cache(lab_root, image._AGENT.recipe)  # a plain directory holding the agent's recipe is stale
    assert image.cached_guest() is None


def test_cli_offers_exactly_the_variants() -> None:
    import click

    from virtkit.cli.main import lab_image

    (option,) = [p for p in lab_image.params if p.name == "variant"]
    assert isinstance(option.type, click.Choice)
    assert tuple(option.type.choices) == image.GUEST_VARIANTS
    assert option.default == "plain"


LDD = """\tlinux-vdso.so.1 (0x00007ffd5a1f2000)
\tlibudev.so.1 => /lib/x86_64-linux-gnu/libudev.so.1 (0x00007f3cf2e8a000)
\tlibglib-2.0.so.0 => /lib/x86_64-linux-gnu/libglib-2.0.so.0 (0x00007f3cf2d3e000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f3cf2a74000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f3cf2fc3000)
"""


def test_parse_ldd() -> None:
    assert parse_ldd(LDD) == [
        "/lib/x86_64-linux-gnu/libudev.so.1",
        "/lib/x86_64-linux-gnu/libglib-2.0.so.0",
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/ld-linux-x86-64.so.2",
    ]
    with pytest.raises(LabError, match=r"liburing\.so\.2, libnuma\.so\.1"):
        parse_ldd(LDD + "\tliburing.so.2 => not found\n\tlibnuma.so.1 => not found\n")
    with pytest.raises(LabError, match="not a dynamic executable"):
        parse_ldd("\tnot a dynamic executable\n")


def test_agent_layout() -> None:
    libraries = [("/lib64/ld-linux-x86-64.so.2", b"LD"), ("/lib/x86_64-linux-gnu/libc.so.6", b"C")]
    extra = agent_entries(plain_init=b"PLAIN", shutdown=b"SHUT", qemu_ga=b"QGA", libraries=libraries)
    entries = initramfs_entries(busybox=b"BB", init=b"AGENT", kernel_version="6.1", modules=[], extra=extra)
    by_name = {e.name: e for e in entries}
    names = [e.name for e in entries]
    assert len(names) == len(set(names))
    for name in names:  # every parent directory comes before its contents
        parent = name.rpartition("/")[0]
        assert not parent or (parent in names[: names.index(name)] and stat.S_ISDIR(by_name[parent].mode))
    assert entries[: len(entries) - len(extra)] == initramfs_entries(
        busybox=b"BB", init=b"AGENT", kernel_version="6.1", modules=[]
    )
    assert (by_name["init"].data, by_name["etc/virtkit/init"].data) == (b"AGENT", b"PLAIN")
    assert by_name["sbin/shutdown"].data == b"SHUT" and by_name["sbin/shutdown"].mode == stat.S_IFREG | 0o755
    assert by_name["usr/sbin/qemu-ga"].data == b"QGA"
    assert by_name["dev/null"].rdev == (1, 3) and stat.S_ISCHR(by_name["dev/null"].mode)
    assert by_name["lib64/ld-linux-x86-64.so.2"].data == b"LD"
    assert by_name["lib/x86_64-linux-gnu/libc.so.6"].data == b"C"
    for bad in ("lib/libc.so.6", "/etc/libc.so.6"):
        with pytest.raises(ValueError, match="shared library"):
            agent_entries(plain_init=b"", shutdown=b"", qemu_ga=b"", libraries=[(bad, b"")])


def test_agent_init_reports_exactly_the_statuses_the_parser_knows() -> None:
    script = guest_file(AGENT_INIT).decode()
    assert script.startswith("#!/bin/sh\n")
    said = {line.split()[1] for line in script.splitlines() if line.strip().startswith("say ")}
    assert said == set(AGENT_STATUSES)
    assert 'echo "VIRTKIT-AGENT uptime=$up $1"' in script
    assert "exec /bin/sh /etc/virtkit/init" in script
    assert "qemu-ga -m virtio-serial -p" in script


@pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox not installed")
@pytest.mark.parametrize("name", [AGENT_INIT, SHUTDOWN])
def test_agent_scripts_are_valid_busybox_sh(tmp_path: Path, name: str) -> None:
    script = tmp_path / name
    script.write_bytes(guest_file(name))
    subprocess.run(["busybox", "sh", "-n", str(script)], check=True)


@pytest.mark.parametrize(
    ("args", "action"),
    [
        (["-P", "+0", "hypervisor initiated shutdown"], "poweroff"),
        (["-H", "+0", "hypervisor initiated shutdown"], "poweroff"),
        (["-h", "now"], "poweroff"),
        (["-r", "+0", "hypervisor initiated shutdown"], "reboot"),
        ([], "poweroff"),
    ],
)
def test_shutdown_script_maps_qemu_ga_flags(tmp_path: Path, args: list[str], action: str) -> None:
    """qemu-ga's guest-shutdown runs /sbin/shutdown -P|-H|-r +0 "<message>"; the script powers off or reboots."""
    calls = tmp_path / "calls"
    fake = tmp_path / "busybox"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    fake.chmod(0o755)
    script = tmp_path / "shutdown"
    script.write_bytes(guest_file(SHUTDOWN).replace(b"/bin/busybox", str(fake).encode()))
    subprocess.run(["sh", str(script), *args], check=True, env={**os.environ, "PATH": "/usr/bin:/bin"})
    assert calls.read_text().splitlines() == ["sync", f"{action} -f"]
