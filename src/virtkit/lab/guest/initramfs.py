"""What goes into the test guest's initramfs, and the newc cpio writer that packs it.

No apt and no network here: the inputs are a busybox binary, the ``init`` script next to this module, the memory
load (:mod:`~virtkit.lab.guest.memload`) and the kernel's module files, already on disk.
"""

from __future__ import annotations

import gzip
import importlib.resources
import lzma
import os
import re
import stat
import struct
import subprocess
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from virtkit.errors import LabError

__all__ = [
    "AGENT_INIT",
    "LOAD_PATH",
    "PLAIN_INIT",
    "SHUTDOWN",
    "CpioEntry",
    "agent_entries",
    "builtin_modules",
    "guest_file",
    "init_script",
    "initramfs_entries",
    "is_static_elf",
    "module_depends",
    "module_files",
    "order_modules",
    "parse_ldd",
    "read_module",
    "write_initramfs",
    "write_newc",
]

_MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")
# Parents before children, as the kernel's unpacker needs them.
_DIRS = ("bin", "dev", "etc", "etc/virtkit", "lib", "lib/modules", "proc", "root", "run", "sbin", "sys", "tmp", "usr",
         "usr/bin", "usr/sbin")  # fmt: skip
_MODULE_LIST = "etc/virtkit/modules"  # read by init: one module path per line, in load order
# Package data next to this module: the scripts the guest runs.
PLAIN_INIT = "init"
AGENT_INIT = "agent-init"  # the agent variant's /init: starts qemu-ga, then execs the plain init
SHUTDOWN = "shutdown"  # the agent variant's /sbin/shutdown, run by qemu-ga's guest-shutdown
_PLAIN_INIT_PATH = "etc/virtkit/init"  # where the agent variant's /init finds the plain one
_QEMU_GA = "usr/sbin/qemu-ga"
LOAD_PATH = "bin/virtkit-load"  # the memory load, which init starts for virtkit.dirty= and virtkit.fill=


def guest_file(name: str) -> bytes:
    """A script shipped as package data next to this module (``PLAIN_INIT``, ``AGENT_INIT``, ``SHUTDOWN``).

    :raises FileNotFoundError: no such file in the package.
    """
    return importlib.resources.files(__package__ or "virtkit.lab.guest").joinpath(name).read_bytes()


def init_script() -> bytes:
    """The guest's ``/init`` (busybox sh), shipped as package data."""
    return guest_file(PLAIN_INIT)


# --- the archive's contents --------------------------------------------------------------------------------------


def initramfs_entries(
    *,
    busybox: bytes,
    init: bytes,
    kernel_version: str,
    modules: Sequence[tuple[str, bytes]],
    load: bytes | None = None,
    extra: Sequence[CpioEntry] = (),
) -> list[CpioEntry]:
    """The initramfs members: busybox as ``/bin/sh``, ``/init``, the memory load as ``/bin/virtkit-load`` (if
    given: without it init starts no load), the modules (uncompressed) and their load order.

    ``modules`` are (name, content) pairs already in load order; ``extra`` members (a variant's additions, see
    :func:`agent_entries`) come last, so without them the archive is the plain guest's, byte for byte.
    """
    entries = [CpioEntry(d, stat.S_IFDIR | 0o755) for d in _DIRS]
    entries += [
        CpioEntry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)),  # the kernel opens it before running init
        CpioEntry("bin/busybox", stat.S_IFREG | 0o755, busybox),
        CpioEntry("bin/sh", stat.S_IFLNK | 0o777, b"busybox"),
        CpioEntry("init", stat.S_IFREG | 0o755, init),
    ]
    if load is not None:
        entries.append(CpioEntry(LOAD_PATH, stat.S_IFREG | 0o755, load))
    entries.append(CpioEntry(f"lib/modules/{kernel_version}", stat.S_IFDIR | 0o755))
    paths = [f"lib/modules/{kernel_version}/{name}.ko" for name, _ in modules]
    entries += [CpioEntry(p, stat.S_IFREG | 0o644, data) for p, (_, data) in zip(paths, modules, strict=True)]
    entries.append(CpioEntry(_MODULE_LIST, stat.S_IFREG | 0o644, "".join(f"/{p}\n" for p in paths).encode()))
    entries += extra
    return entries


def agent_entries(
    *, plain_init: bytes, shutdown: bytes, qemu_ga: bytes, libraries: Sequence[tuple[str, bytes]]
) -> list[CpioEntry]:
    """The agent variant's additions to :func:`initramfs_entries` (whose ``init`` is then ``AGENT_INIT``).

    The plain init moves to ``/etc/virtkit/init``; ``/sbin/shutdown`` is the ``SHUTDOWN`` script; qemu-ga goes to
    ``/usr/sbin/qemu-ga`` and each shared library to its absolute path as :func:`parse_ldd` gives it (the loader
    included), with the directories it needs; ``/dev/null`` lets init start a background job before devtmpfs.

    :raises ValueError: a library path is not absolute, or lies under ``/dev``, ``/etc``, ``/proc``, ``/run``,
        ``/sys`` or ``/tmp``.
    """
    entries = [
        CpioEntry("dev/null", stat.S_IFCHR | 0o666, rdev=(1, 3)),
        CpioEntry(_PLAIN_INIT_PATH, stat.S_IFREG | 0o755, plain_init),
        CpioEntry("sbin/shutdown", stat.S_IFREG | 0o755, shutdown),
        CpioEntry(_QEMU_GA, stat.S_IFREG | 0o755, qemu_ga),
    ]
    made = set(_DIRS)
    for path, data in sorted(libraries):
        name = path.removeprefix("/")
        if not path.startswith("/") or name.partition("/")[0] in ("dev", "etc", "proc", "sys", "run", "tmp"):
            raise ValueError(f"not a place for a shared library in the guest: {path!r}")
        parts = name.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directory = "/".join(parts[:depth])
            if directory not in made:
                made.add(directory)
                entries.append(CpioEntry(directory, stat.S_IFDIR | 0o755))
        entries.append(CpioEntry(name, stat.S_IFREG | 0o755, data))
    return entries


def parse_ldd(output: str) -> list[str]:
    """The absolute paths of the shared objects ``ldd`` lists, the dynamic loader included, in its order.

    The vDSO (no file) is left out.

    :raises LabError: a library was not found (its names are in the message), or a line is not understood.
    """
    paths: list[str] = []
    missing: list[str] = []
    for raw in output.splitlines():
        line = raw.strip()
        if not line or line.startswith(("linux-vdso.so", "linux-gate.so")):
            continue
        if match := re.fullmatch(r"(\S+) => not found", line):
            missing.append(match[1])
        elif match := re.fullmatch(r"(?:\S+ => )?(/\S+) \(0x[0-9a-f]+\)", line):
            paths.append(match[1])
        else:
            raise LabError(f"guest image: cannot read this line of ldd's output: {line!r}")
    if missing:
        raise LabError(f"guest image: ldd finds no {', '.join(missing)} on this machine")
    return paths


def write_initramfs(entries: Iterable[CpioEntry], path: Path) -> None:
    """Write ``entries`` to ``path`` as a gzip-compressed newc archive (reproducible: no name, mtime 0), synced.

    Gzip level 6: level 9 takes five times as long for 0.5 % less.
    """
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as gz:
            write_newc(entries, gz)
        raw.flush()
        os.fsync(raw.fileno())


# --- kernel modules ----------------------------------------------------------------------------------------------


def _module_name(filename: str) -> str:
    return filename.split(".ko", maxsplit=1)[0].replace("-", "_")


def module_files(modules_dir: Path) -> dict[str, Path]:
    """Module name (``-`` read as ``_``, as the kernel does) to its file, for every module under ``modules_dir``."""
    return {_module_name(p.name): p for p in modules_dir.rglob("*.ko*") if p.name.endswith(_MODULE_SUFFIXES)}


def builtin_modules(modules_dir: Path) -> set[str]:
    """The names ``modules.builtin`` lists: drivers compiled into the kernel, nothing to load."""
    try:
        text = (modules_dir / "modules.builtin").read_text()
    except OSError:
        return set()
    return {_module_name(line.rsplit("/", 1)[-1]) for line in text.split()}


def read_module(path: Path) -> bytes:
    """The module, decompressed: busybox insmod hands the bytes to init_module(2), which wants a plain ELF.

    :raises LabError: a ``.ko.zst`` module and no working ``zstd`` command (Python 3.11 has no zstd codec).
    """
    if path.name.endswith(".ko.xz"):
        return lzma.decompress(path.read_bytes())
    if path.name.endswith(".ko.gz"):
        return gzip.decompress(path.read_bytes())
    if path.name.endswith(".ko.zst"):
        try:
            return subprocess.run(["zstd", "-dc", str(path)], capture_output=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError) as exc:
            raise LabError(
                f"guest image: cannot decompress {path} with `zstd -dc` (apt-get install zstd): {exc}"
            ) from exc
    return path.read_bytes()


def module_depends(module: bytes) -> list[str]:
    """The ``depends=`` of a module's .modinfo: the other modules it needs (built-in ones are never listed)."""
    # .modinfo holds NUL-terminated "key=value" strings.
    match = re.search(rb"(?:^|\x00)depends=([\w,-]*)\x00", module)
    return [_module_name(m) for m in match[1].decode().split(",") if m] if match else []


def order_modules(
    wanted: Sequence[str],
    *,
    available: Collection[str],
    builtin: Collection[str],
    depends: Callable[[str], Sequence[str]],
) -> list[str]:
    """The load order for ``wanted``: its order kept, each module preceded by its dependencies, each listed once.

    Built-in modules are left out (nothing to load); a module that is absent, or needs one that is neither
    available nor built in, is left out too, with the dependencies only it needed.
    """
    order: list[str] = []
    unusable: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> bool:
        if name in order or name in builtin:
            return True
        if name in unusable or name not in available or name in path:  # a cycle cannot be loaded either
            unusable.add(name)
            return False
        mark = len(order)
        if not all(visit(dep, (*path, name)) for dep in depends(name)):
            del order[mark:]  # no use loading the dependencies of a module that cannot load
            unusable.add(name)
            return False
        order.append(name)
        return True

    for name in wanted:
        visit(name, ())
    return order


def is_static_elf(path: Path) -> bool:
    """Whether ``path`` is a 64-bit little-endian ELF with no program interpreter (PT_INTERP), i.e. static."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if len(head) < 64 or head[:6] != b"\x7fELF\x02\x01":
                return False
            (phoff,), (phentsize, phnum) = struct.unpack_from("<Q", head, 0x20), struct.unpack_from("<HH", head, 0x36)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return False
    if phentsize < 4 or len(table) < phentsize * phnum:
        return False
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != 3 for i in range(phnum))  # 3 = PT_INTERP


# --- newc cpio ---------------------------------------------------------------------------------------------------


class _Writer(Protocol):
    def write(self, data: bytes, /) -> int: ...


@dataclass(frozen=True)
class CpioEntry:
    """One member of a newc cpio archive: ``mode`` includes the file type bits (``stat.S_IFREG | 0o644``)."""

    name: str
    mode: int
    data: bytes = b""  # file content, or the target of a symlink
    rdev: tuple[int, int] = (0, 0)  # major, minor of a device node


def write_newc(entries: Iterable[CpioEntry], out: _Writer) -> None:
    """Write ``entries`` as a newc ("070701") cpio archive, the format the kernel unpacks as an initramfs.

    Owner root, mtime 0 and inode numbers counted from 1 make the archive byte-for-byte reproducible. Parent
    directories must come before their contents; names are relative (no leading ``/``).
    """
    for ino, entry in enumerate(entries, start=1):
        _newc_member(out, ino, 2 if stat.S_ISDIR(entry.mode) else 1, entry)
    _newc_member(out, 0, 1, CpioEntry("TRAILER!!!", 0))


def _newc_member(out: _Writer, ino: int, nlink: int, entry: CpioEntry) -> None:
    name = entry.name.encode() + b"\x00"
    # ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check, 8 hex digits each
    fields = (ino, entry.mode, 0, 0, nlink, 0, len(entry.data), 0, 0, *entry.rdev, len(name), 0)
    header = b"070701" + b"".join(b"%08X" % value for value in fields)
    out.write(header + name + b"\x00" * (-(len(header) + len(name)) % 4))
    out.write(entry.data + b"\x00" * (-len(entry.data) % 4))
