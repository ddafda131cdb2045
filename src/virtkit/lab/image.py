"""The lab's test guest: a Debian cloud kernel and a busybox initramfs, built from Debian packages and cached.

The guest reports on its serial port (see ``guest/init`` and :mod:`virtkit.lab.serial`). One sub-directory of
:func:`virtkit.lab.paths.guest_dir` per variant holds ``vmlinuz``, ``initrd.img`` and ``guest.json``. Variants:

- ``plain``: busybox, the virtio modules and the memory load ``/bin/virtkit-load`` (``guest/virtkit-load.c``,
  compiled with this machine's gcc: :meth:`GuestImage.cmdline_for` turns it on);
- ``agent``: the same plus qemu-guest-agent (from Debian's package, with the shared libraries ``ldd`` finds on
  this machine), started on the virtio-serial port ``org.qemu.guest_agent.0`` (``guest/agent-init``); the
  agent's guest-shutdown powers the guest off (``guest/shutdown``). Boot it with ``guest_agent: true``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from virtkit.errors import InvalidSpec, LabError
from virtkit.lab._files import locked, swap_in, write_atomic
from virtkit.lab.guest import fetch, memload
from virtkit.lab.guest.fetch import AGENT_PACKAGE, KERNEL_META_PACKAGE, parse_kernel_dependency
from virtkit.lab.guest.initramfs import (
    AGENT_INIT,
    SHUTDOWN,
    CpioEntry,
    agent_entries,
    builtin_modules,
    guest_file,
    init_script,
    initramfs_entries,
    module_depends,
    module_files,
    order_modules,
    read_module,
    write_initramfs,
)
from virtkit.lab.paths import guest_dir
from virtkit.lab.serial import DIRTY_MODES, DirtyMode, GuestEvent, GuestEventKind, GuestLog

__all__ = [
    "GUEST_MODULES",
    "GUEST_VARIANTS",
    "BootCheck",
    "GuestImage",
    "boot_check",
    "build_guest",
    "cached_guest",
    "parse_kernel_dependency",
]

Progress = Callable[[str], None]
_BOOT, _ALIVE = GuestEventKind.BOOT, GuestEventKind.ALIVE

BASE_CMDLINE = "console=ttyS0 quiet"
# Load order measured on Debian 12 (docs/platform.md); order_modules() also puts every module's dependencies first.
GUEST_MODULES: tuple[str, ...] = (
    "scsi_common", "scsi_mod", "sd_mod", "virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
    "virtio_pci", "virtio_blk", "virtio_scsi", "failover", "net_failover", "virtio_net", "virtio_console",
    "virtio_balloon",
)  # fmt: skip
_FORMAT = 2  # bump when the cache layout or what guest/initramfs.py puts in the archive changes: rebuilds caches
_AGENT_FORMAT = 1  # bump when how the agent variant's additions are gathered or laid out changes


@dataclass(frozen=True)
class GuestImage:
    """A built test guest: boot it with direct kernel boot (``<kernel>``, ``<initrd>``, ``<cmdline>``)."""

    kernel: Path
    initrd: Path
    cmdline: str
    kernel_version: str

    def cmdline_for(
        self,
        *,
        alive: int | None = None,
        dirty: int | None = None,
        dirty_mode: DirtyMode | None = None,
        dirty_report: int | None = None,
        fill: int | None = None,
        fill_check: int | None = None,
    ) -> str:
        """The kernel command line, with the options given (the guest's defaults for the others):

        - ``alive``: seconds between ALIVE lines (default 10);
        - ``dirty``: MiB of memory the guest keeps rewriting, as fast as its vCPU goes (a load a plain live
          migration cannot keep up with); ``dirty_mode``: ``"pattern"`` (default) writes the same bytes on every
          pass, ``"counter"`` changes every byte of every page on every pass, so that neither XBZRLE nor a
          compressor saves anything; ``dirty_report``: seconds between DIRTY lines with the passes written so far
          (default: none, one DIRTY line when the load runs);
        - ``fill``: MiB of memory the guest fills once with data that differs in every page, then checks page by
          page every ``fill_check`` seconds (default 5), reporting each check on a FILL line.

        :raises InvalidSpec: a number is not a positive whole number, ``dirty_mode`` is not one of
            :data:`~virtkit.lab.serial.DIRTY_MODES`, or ``dirty_mode`` or ``dirty_report`` comes without ``dirty``,
            ``fill_check`` without ``fill``; the error names the field.
        """
        numbers = (("alive", alive), ("dirty", dirty), ("dirty_report", dirty_report), ("fill", fill))
        for field, value in (*numbers, ("fill_check", fill_check)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise InvalidSpec(field, f"must be a positive whole number, got {value!r}")
        if dirty_mode is not None and (not isinstance(dirty_mode, str) or dirty_mode not in DIRTY_MODES):
            raise InvalidSpec("dirty_mode", f"must be one of {', '.join(DIRTY_MODES)}, got {dirty_mode!r}")
        requirements: tuple[tuple[str, object, str, int | None], ...] = (
            ("dirty_mode", dirty_mode, "dirty", dirty),
            ("dirty_report", dirty_report, "dirty", dirty),
            ("fill_check", fill_check, "fill", fill),
        )
        for option, given, needs, base in requirements:
            if given is not None and base is None:
                raise InvalidSpec(option, f"needs {needs}: without it the guest runs no such load")
        options = (
            ("alive", alive),
            ("dirty", dirty),
            ("dirtymode", dirty_mode),
            ("dirtyreport", dirty_report),
            ("fill", fill),
            ("fillcheck", fill_check),
        )
        return self.cmdline + "".join(f" virtkit.{name}={value}" for name, value in options if value is not None)


@dataclass(frozen=True)
class _Variant:
    name: str
    modules: tuple[str, ...]
    required_modules: frozenset[str]  # the others are skipped when the kernel lacks them
    agent: bool = False  # qemu-guest-agent and its scripts on top

    @property
    def recipe(self) -> str:
        init = init_script()
        fields = [_FORMAT, self.name, BASE_CMDLINE, self.modules, sorted(self.required_modules), memload.load_recipe()]
        recipe = json.dumps(fields).encode() + init
        if self.agent:  # appended only here, so the plain recipe (and every plain cache) stays what it was
            agent = json.dumps([_AGENT_FORMAT, AGENT_PACKAGE, AGENT_INIT, SHUTDOWN]).encode()
            recipe += b"\0" + agent + b"\0" + guest_file(AGENT_INIT) + b"\0" + guest_file(SHUTDOWN)
        return hashlib.sha256(recipe).hexdigest()


_BASE_REQUIRED = frozenset({"virtio_ring", "virtio", "virtio_pci", "virtio_blk"})
_PLAIN = _Variant("plain", GUEST_MODULES, _BASE_REQUIRED)
_AGENT = _Variant("agent", GUEST_MODULES, _BASE_REQUIRED | {"virtio_console"}, agent=True)
_VARIANTS = {v.name: v for v in (_PLAIN, _AGENT)}
GUEST_VARIANTS: tuple[str, ...] = tuple(_VARIANTS)


def cached_guest(variant: str = "plain") -> GuestImage | None:
    """The cached guest of ``variant``, or ``None`` when it was never built, is incomplete or was built by another
    recipe.

    :raises InvalidSpec: ``variant`` is not one of :data:`GUEST_VARIANTS`.
    """
    return _load_cached(_variant(variant))


def build_guest(*, variant: str = "plain", force: bool = False, progress: Progress | None = None) -> GuestImage:
    """Build the test guest of ``variant`` (``plain`` or ``agent``) into the cache, or return the cached one (no apt
    call then).

    Builds run under a lock file and are swapped into place by renames, so a crashed or concurrent build never
    leaves a half-written cache. ``progress`` receives one short line per step.

    :raises InvalidSpec: ``variant`` is not one of :data:`GUEST_VARIANTS`.
    :raises LabError: a step failed (apt, dpkg-deb, ldd, a missing file); the message names the step, command and
        stderr.
    """
    return _build(_variant(variant), force=force, progress=progress or (lambda _msg: None))


def _variant(name: str) -> _Variant:
    try:
        return _VARIANTS[name]
    except KeyError:
        raise InvalidSpec("variant", f"must be one of {', '.join(GUEST_VARIANTS)}, got {name!r}") from None


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
        with locked(root / f".{variant.name}.lock"):
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
                write_atomic(out / "guest.json", json.dumps(manifest, indent=2).encode() + b"\n")
                swap_in(out, root / variant.name)
    except OSError as exc:
        raise LabError(f"guest image: cannot build into {root}: {exc}") from exc
    progress(f"guest {variant.name!r} built in {time.monotonic() - started:.1f} s: {root / variant.name}")
    image = _load_cached(variant)
    if image is None:
        raise LabError(f"guest image: {root / variant.name} is incomplete right after the build")
    return image


def _assemble(variant: _Variant, work: Path, out: Path, progress: Progress) -> str:
    load = memload.compile_load(work, progress)  # first: a missing compiler fails the build before any download
    apt = fetch.Apt(progress)
    progress(f"resolving the package {KERNEL_META_PACKAGE} depends on")
    kernel_deb = apt.with_update(lambda: apt.download(fetch.resolve_kernel_package(), work))
    progress(f"extracting {kernel_deb.name}")
    tree = work / "kernel"
    fetch.run(["dpkg-deb", "-x", str(kernel_deb), str(tree)], step="extract the kernel package")
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
    busybox = fetch.busybox(apt, work, progress)
    entries = initramfs_entries(
        busybox=busybox.read_bytes(),
        init=guest_file(AGENT_INIT) if variant.agent else init_script(),
        kernel_version=version,
        modules=[(name, contents[name]) for name in order],
        load=load,
        extra=_agent_entries(fetch.qemu_ga(apt, work, progress)) if variant.agent else (),
    )
    write_initramfs(entries, out / "initrd.img")
    progress(f"initramfs: {(out / 'initrd.img').stat().st_size / 1e6:.1f} MB, {len(entries)} entries")
    os.replace(vmlinuz[0], out / "vmlinuz")
    return version


def _agent_entries(agent: fetch.QemuGa) -> list[CpioEntry]:
    try:
        return agent_entries(
            plain_init=init_script(),
            shutdown=guest_file(SHUTDOWN),
            qemu_ga=agent.binary,
            libraries=sorted(agent.libraries.items()),
        )
    except ValueError as exc:
        raise LabError(f"guest image: qemu-ga from {agent.package}: {exc}") from exc


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
    fetch.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], step="create the boot check's disk")
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
