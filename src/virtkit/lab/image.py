"""The lab's test guest: a Debian cloud kernel and a busybox initramfs, built from Debian packages and cached.

The guest reports on its serial port (see ``guest/init`` and :mod:`virtkit.lab.serial`). One sub-directory of
:func:`virtkit.lab.paths.guest_dir` per variant holds ``vmlinuz``, ``initrd.img`` and ``guest.json``; only the
``plain`` variant exists so far (an ``agent`` one with qemu-guest-agent fits the same recipe).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from virtkit.errors import InvalidSpec, LabError
from virtkit.lab.guest.initramfs import (
    builtin_modules,
    init_script,
    initramfs_entries,
    is_static_elf,
    module_depends,
    module_files,
    order_modules,
    read_module,
    write_initramfs,
)
from virtkit.lab.paths import guest_dir
from virtkit.lab.serial import GuestEvent, GuestEventKind, GuestLog

__all__ = [
    "GUEST_MODULES",
    "BootCheck",
    "GuestImage",
    "boot_check",
    "build_guest",
    "cached_guest",
    "parse_kernel_dependency",
]

Progress = Callable[[str], None]
_T = TypeVar("_T")
_BOOT, _ALIVE = GuestEventKind.BOOT, GuestEventKind.ALIVE

KERNEL_META_PACKAGE = "linux-image-cloud-amd64"
BASE_CMDLINE = "console=ttyS0 quiet"
# Load order from LAB.md; order_modules() also puts every module's dependencies first.
GUEST_MODULES: tuple[str, ...] = (
    "scsi_common", "scsi_mod", "sd_mod", "virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
    "virtio_pci", "virtio_blk", "virtio_scsi", "failover", "net_failover", "virtio_net", "virtio_console",
    "virtio_balloon",
)  # fmt: skip
_FORMAT = 1  # bump when the cache layout or what guest/initramfs.py puts in the archive changes: rebuilds caches


@dataclass(frozen=True)
class GuestImage:
    """A built test guest: boot it with direct kernel boot (``<kernel>``, ``<initrd>``, ``<cmdline>``)."""

    kernel: Path
    initrd: Path
    cmdline: str
    kernel_version: str

    def cmdline_for(self, *, alive: int | None = None) -> str:
        """The kernel command line, with the guest's alive period in seconds if given.

        :raises InvalidSpec: ``alive`` is not a positive number of seconds.
        """
        if alive is None:
            return self.cmdline
        if alive < 1:
            raise InvalidSpec("alive", f"must be a positive number of seconds, got {alive}")
        return f"{self.cmdline} virtkit.alive={alive}"


@dataclass(frozen=True)
class _Variant:
    name: str
    modules: tuple[str, ...]
    required_modules: frozenset[str]  # the others are skipped when the kernel lacks them

    @property
    def recipe(self) -> str:
        init = init_script()
        text = json.dumps([_FORMAT, self.name, BASE_CMDLINE, self.modules, sorted(self.required_modules)])
        return hashlib.sha256(text.encode() + init).hexdigest()


_PLAIN = _Variant("plain", GUEST_MODULES, frozenset({"virtio_ring", "virtio", "virtio_pci", "virtio_blk"}))


def cached_guest() -> GuestImage | None:
    """The cached plain guest, or ``None`` when it was never built, is incomplete or was built by another recipe."""
    return _load_cached(_PLAIN)


def build_guest(*, force: bool = False, progress: Progress | None = None) -> GuestImage:
    """Build the plain test guest into the cache, or return the cached one (no apt call then).

    Builds run under a lock file and are swapped into place by renames, so a crashed or concurrent build never
    leaves a half-written cache. ``progress`` receives one short line per step.

    :raises LabError: a step failed (apt, dpkg-deb, a missing file); the message names the step, command and stderr.
    """
    return _build(_PLAIN, force=force, progress=progress or (lambda _msg: None))


def _load_cached(variant: _Variant) -> GuestImage | None:
    directory = guest_dir() / variant.name
    try:
        manifest = json.loads((directory / "guest.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("recipe") != variant.recipe:
        return None
    kernel, initrd = directory / "vmlinuz", directory / "initrd.img"
    cmdline, version = manifest.get("cmdline"), manifest.get("kernel_version")
    if not (isinstance(cmdline, str) and isinstance(version, str) and kernel.is_file() and initrd.is_file()):
        return None
    return GuestImage(kernel=kernel, initrd=initrd, cmdline=cmdline, kernel_version=version)


def _build(variant: _Variant, *, force: bool, progress: Progress) -> GuestImage:
    if not force and (image := _load_cached(variant)) is not None:
        return image
    root = guest_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
        with _locked(root / f".{variant.name}.lock"):
            # Another process may have finished the same build while this one waited for the lock.
            if not force and (image := _load_cached(variant)) is not None:
                return image
            for stale in root.glob(f".{variant.name}-*"):  # left by a crashed build
                shutil.rmtree(stale, ignore_errors=True)
            started = time.monotonic()
            with tempfile.TemporaryDirectory(prefix=f".{variant.name}-build-", dir=root) as tmp:
                out = Path(tmp) / "out"
                out.mkdir()
                kernel_version = _assemble(variant, Path(tmp), out, progress)
                manifest = {"recipe": variant.recipe, "cmdline": BASE_CMDLINE, "kernel_version": kernel_version}
                _write_atomic(out / "guest.json", json.dumps(manifest, indent=2).encode() + b"\n")
                _swap_in(out, root / variant.name)
    except OSError as exc:
        raise LabError(f"guest image: cannot build into {root}: {exc}") from exc
    progress(f"guest {variant.name!r} built in {time.monotonic() - started:.1f} s: {root / variant.name}")
    image = _load_cached(variant)
    if image is None:
        raise LabError(f"guest image: {root / variant.name} is incomplete right after the build")
    return image


def _assemble(variant: _Variant, work: Path, out: Path, progress: Progress) -> str:
    apt = _Apt(progress)
    progress(f"resolving the package {KERNEL_META_PACKAGE} depends on")
    kernel_deb = apt.with_update(lambda: apt.download(_resolve_kernel_package(), work))
    progress(f"extracting {kernel_deb.name}")
    tree = work / "kernel"
    _run(["dpkg-deb", "-x", str(kernel_deb), str(tree)], step="extract the kernel package")
    vmlinuz = sorted((tree / "boot").glob("vmlinuz-*"))
    if len(vmlinuz) != 1:
        raise LabError(f"guest image: expected one boot/vmlinuz-* in {kernel_deb.name}, found {len(vmlinuz)}")
    version = vmlinuz[0].name.removeprefix("vmlinuz-")
    modules_dir = next(
        (d for d in (tree / "lib/modules" / version, tree / "usr/lib/modules" / version) if d.is_dir()), None
    )
    if modules_dir is None:
        raise LabError(f"guest image: {kernel_deb.name} has no lib/modules/{version}")
    files = module_files(modules_dir)
    builtin = builtin_modules(modules_dir)
    contents: dict[str, bytes] = {}

    def depends(name: str) -> list[str]:
        contents[name] = read_module(files[name])
        return module_depends(contents[name])

    order = order_modules(variant.modules, available=files, builtin=builtin, depends=depends)
    missing = sorted(variant.required_modules - set(order) - builtin)
    if missing:
        raise LabError(f"guest image: kernel {version} has neither module nor built-in driver for {missing}")
    skipped = [m for m in variant.modules if m not in order]
    progress(f"kernel {version}: loading {len(order)} modules" + (f", skipped {skipped}" if skipped else ""))
    busybox = _busybox(apt, work, progress)
    entries = initramfs_entries(
        busybox=busybox.read_bytes(),
        init=init_script(),
        kernel_version=version,
        modules=[(name, contents[name]) for name in order],
    )
    write_initramfs(entries, out / "initrd.img")
    progress(f"initramfs: {(out / 'initrd.img').stat().st_size / 1e6:.1f} MB, {len(entries)} entries")
    os.replace(vmlinuz[0], out / "vmlinuz")
    return version


# --- boot check ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BootCheck:
    """What :func:`boot_check` saw: wall-clock seconds from starting QEMU to the boot marker, and the markers."""

    boot_seconds: float
    boot: GuestEvent
    disks: tuple[str, ...]
    alive: tuple[GuestEvent, ...]
    log: Path


def boot_check(
    image: GuestImage, workdir: Path, *, accel: str = "tcg", alive_lines: int = 2, timeout: float = 60.0
) -> BootCheck:
    """Boot ``image`` under plain QEMU (no libvirt) with one virtio disk and check its serial markers.

    Waits for the BOOT marker, a DISKS line listing ``vda`` and ``alive_lines`` ALIVE lines (sent every second),
    then stops QEMU. ``workdir`` receives ``disk.qcow2``, ``serial.log`` and ``qemu.stderr``.

    :raises LabError: qemu-img or QEMU failed (QEMU's stderr is in the message).
    :raises OperationTimeout: a marker did not appear within ``timeout`` seconds (the log's tail is in the message).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    disk, log_path, stderr_path = workdir / "disk.qcow2", workdir / "serial.log", workdir / "qemu.stderr"
    log_path.unlink(missing_ok=True)
    _run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], step="create the boot check's disk")
    args = ["qemu-system-x86_64", "-machine", "pc", "-accel", accel, "-m", "256", "-display", "none"]
    args += ["-monitor", "none", "-kernel", str(image.kernel), "-initrd", str(image.initrd)]
    args += ["-append", image.cmdline_for(alive=1), "-chardev", f"file,id=serial0,path={_qemu_escape(log_path)}"]
    args += ["-serial", "chardev:serial0", "-drive", f"file={_qemu_escape(disk)},if=virtio,format=qcow2"]
    log = GuestLog(log_path)
    with open(stderr_path, "wb") as stderr:
        started = time.monotonic()
        try:
            qemu = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        except OSError as exc:
            raise LabError(f"boot check: cannot start `{shlex.join(args)}`: {exc}") from exc
    try:

        def until(done: Callable[[list[GuestEvent]], bool]) -> Callable[[list[GuestEvent]], bool]:
            return lambda events: qemu.poll() is not None or done(events)

        def exited() -> LabError:
            detail = stderr_path.read_text(errors="replace").strip()[-2000:]
            return LabError(f"boot check: QEMU exited with {qemu.returncode} before the markers: {detail}")

        booted = until(lambda evs: any(e.kind is _BOOT for e in evs))
        events = log.wait_for(booted, timeout, description="boot marker")
        boot_seconds = time.monotonic() - started
        if qemu.poll() is not None:
            raise exited()
        boot = next(e for e in events if e.kind is _BOOT)
        disks = log.wait_for_disks(lambda d: "vda" in d or qemu.poll() is not None, timeout)
        done = until(lambda evs: sum(e.kind is _ALIVE for e in evs) >= alive_lines)
        events = log.wait_for(done, timeout, description=f"{alive_lines} ALIVE lines")
        if qemu.poll() is not None:
            raise exited()
    finally:
        qemu.terminate()
        try:
            qemu.wait(10)
        except subprocess.TimeoutExpired:
            qemu.kill()
            qemu.wait()
    alive = tuple(e for e in events if e.kind is _ALIVE)
    if [e.counter for e in alive] != list(range(len(alive))):
        raise LabError(f"boot check: ALIVE counters should count from 0 by 1, got {[e.counter for e in alive]}")
    return BootCheck(boot_seconds=boot_seconds, boot=boot, disks=disks, alive=alive, log=log_path)


def _qemu_escape(path: Path) -> str:
    return str(path).replace(",", ",,")  # a comma separates QEMU options; doubled it is part of the value


# --- apt -------------------------------------------------------------------------------------------------------


class _Apt:
    """apt-get download into a scratch directory, with at most one ``apt-get update`` per build."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.updated = False

    def with_update(self, step: Callable[[], _T]) -> _T:
        """Run ``step``; if it fails while the package lists may be stale, ``apt-get update`` once and retry."""
        try:
            return step()
        except LabError as exc:
            if self.updated:
                raise
            self.progress(f"{exc.message.splitlines()[0]}; running apt-get update and retrying")
            _run(["apt-get", "update", "-qq"], step="update the package lists")
            self.updated = True
            return step()

    def download(self, spec: str, dest: Path) -> Path:
        """``apt-get download`` one package (``name`` or ``name=version``) into ``dest``; returns the .deb."""
        self.progress(f"downloading {spec}")
        # Without the sandbox option apt warns that its _apt user cannot write into a root-only temp directory.
        _run(["apt-get", "-o", "APT::Sandbox::User=root", "download", spec], step=f"download {spec}", cwd=dest)
        name = spec.split("=", maxsplit=1)[0]
        debs = sorted(dest.glob(f"{name}_*.deb"))
        if not debs:
            raise LabError(f"guest image: apt-get download {spec} left no {name}_*.deb in {dest}")
        return debs[-1]


def _resolve_kernel_package() -> str:
    show = _run(["apt-cache", "show", "--no-all-versions", KERNEL_META_PACKAGE], step="resolve the kernel package")
    return parse_kernel_dependency(show.decode(errors="replace"))


def parse_kernel_dependency(apt_cache_show: str) -> str:
    """The ``name=version`` (or ``name``) of the kernel image a ``linux-image-*`` meta package depends on.

    :raises LabError: the Depends field names no ``linux-image-*`` package.
    """
    for line in apt_cache_show.splitlines():
        if not line.startswith("Depends:"):
            continue
        for item in line.removeprefix("Depends:").split(","):
            first = item.split("|")[0].strip()
            match = re.fullmatch(r"(linux-image-[\w.+-]+)(?:\s*\(\s*=\s*([^)\s]+)\s*\))?(?:\s*\(.*\))?", first)
            if match:
                return f"{match[1]}={match[2]}" if match[2] else match[1]
    raise LabError(f"guest image: no linux-image-* dependency in `apt-cache show {KERNEL_META_PACKAGE}`")


def _busybox(apt: _Apt, work: Path, progress: Progress) -> Path:
    """A statically linked busybox: the one busybox-static installs, else one downloaded from that package."""
    installed = Path("/bin/busybox")  # the busybox package (not -static) puts a dynamic one there
    if is_static_elf(installed):
        progress(f"busybox: {installed}")
        return installed
    deb = apt.with_update(lambda: apt.download("busybox-static", work))
    _run(["dpkg-deb", "-x", str(deb), str(work / "busybox")], step="extract busybox-static")
    for candidate in (work / "busybox/bin/busybox", work / "busybox/usr/bin/busybox"):
        if is_static_elf(candidate):
            progress(f"busybox: from {deb.name}")
            return candidate
    raise LabError(f"guest image: no statically linked busybox in {deb.name}")


# --- files and processes ---------------------------------------------------------------------------------------


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _swap_in(new: Path, target: Path) -> None:
    """Replace the directory ``target`` by ``new`` (same filesystem): at every instant it is whole or absent."""
    old = target.with_name(f".{target.name}-old-{os.getpid()}")
    if target.exists():
        os.rename(target, old)
    os.rename(new, target)
    shutil.rmtree(old, ignore_errors=True)


def _run(args: Sequence[str], *, step: str, cwd: Path | None = None, timeout: float = 600.0) -> bytes:
    """Run a command (argument list, no shell); its stdout, or LabError naming the step, command and stderr."""
    env = {**os.environ, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}
    try:
        proc = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, check=False, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"guest image: cannot {step}: `{shlex.join(args)}`: {exc}") from exc
    if proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace").strip()[-2000:]
        raise LabError(f"guest image: cannot {step}: `{shlex.join(args)}` exited with {proc.returncode}: {stderr}")
    return proc.stdout
