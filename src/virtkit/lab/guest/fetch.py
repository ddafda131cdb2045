"""Fetch the test guest's ingredients from Debian packages: ``apt-get download``, ``dpkg-deb -x`` and ``ldd``.

What the files become in the initramfs is :mod:`virtkit.lab.guest.initramfs`'s business; caching the result is
:mod:`virtkit.lab.image`'s. Every command runs through :func:`run` (argument lists, no shell).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from virtkit.errors import LabError
from virtkit.lab.guest.initramfs import is_static_elf, parse_ldd

__all__ = [
    "AGENT_PACKAGE",
    "KERNEL_META_PACKAGE",
    "Apt",
    "QemuGa",
    "busybox",
    "parse_kernel_dependency",
    "qemu_ga",
    "resolve_kernel_package",
    "run",
]

Progress = Callable[[str], None]
_T = TypeVar("_T")

KERNEL_META_PACKAGE = "linux-image-cloud-amd64"
AGENT_PACKAGE = "qemu-guest-agent"


class Apt:
    """apt-get download into a scratch directory, with at most one ``apt-get update`` per build."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.updated = False

    def with_update(self, step: Callable[[], _T]) -> _T:
        """Run ``step``; if it fails while the package lists may be stale, ``apt-get update`` once and retry.

        :raises LabError: the step failed again after the update, or the update itself failed.
        """
        try:
            return step()
        except LabError as exc:
            if self.updated:
                raise
            self.progress(f"{exc.message.splitlines()[0]}; running apt-get update and retrying")
            run(["apt-get", "update", "-qq"], step="update the package lists")
            self.updated = True
            return step()

    def download(self, spec: str, dest: Path) -> Path:
        """``apt-get download`` one package (``name`` or ``name=version``) into ``dest``; returns the .deb.

        :raises LabError: apt-get failed, or left no such .deb.
        """
        self.progress(f"downloading {spec}")
        # Without the sandbox option apt warns that its _apt user cannot write into a root-only temp directory.
        run(["apt-get", "-o", "APT::Sandbox::User=root", "download", spec], step=f"download {spec}", cwd=dest)
        name = spec.split("=", maxsplit=1)[0]
        debs = sorted(dest.glob(f"{name}_*.deb"))
        if not debs:
            raise LabError(f"guest image: apt-get download {spec} left no {name}_*.deb in {dest}")
        return debs[-1]


def resolve_kernel_package() -> str:
    """The ``name=version`` of the kernel image package ``linux-image-cloud-amd64`` depends on, from apt-cache.

    :raises LabError: apt-cache failed or named no kernel image.
    """
    show = run(["apt-cache", "show", "--no-all-versions", KERNEL_META_PACKAGE], step="resolve the kernel package")
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


def busybox(apt: Apt, work: Path, progress: Progress) -> Path:
    """A statically linked busybox: the one busybox-static installs, else one downloaded from that package.

    :raises LabError: the download or extraction failed, or the package holds no static busybox.
    """
    installed = Path("/bin/busybox")  # the busybox package (not -static) puts a dynamic one there
    if is_static_elf(installed):
        progress(f"busybox: {installed}")
        return installed
    deb = apt.with_update(lambda: apt.download("busybox-static", work))
    run(["dpkg-deb", "-x", str(deb), str(work / "busybox")], step="extract busybox-static")
    for candidate in (work / "busybox/bin/busybox", work / "busybox/usr/bin/busybox"):
        if is_static_elf(candidate):
            progress(f"busybox: from {deb.name}")
            return candidate
    raise LabError(f"guest image: no statically linked busybox in {deb.name}")


@dataclass(frozen=True)
class QemuGa:
    """qemu-ga from Debian's package, and the shared libraries it loads: absolute path to content."""

    binary: bytes
    libraries: dict[str, bytes]
    package: str  # the .deb's file name, for messages


def qemu_ga(apt: Apt, work: Path, progress: Progress) -> QemuGa:
    """Download qemu-guest-agent, take ``qemu-ga`` out of it and read the libraries ``ldd`` lists for it.

    The libraries are this machine's: the lab runs on the Debian release the package is built for, and
    qemu-system-x86 already needs the same ones (glib, libnuma, liburing, libudev).

    :raises LabError: a command failed, the package holds no qemu-ga, or a library is missing on this machine.
    """
    deb = apt.with_update(lambda: apt.download(AGENT_PACKAGE, work))
    tree = work / "agent"
    run(["dpkg-deb", "-x", str(deb), str(tree)], step=f"extract {AGENT_PACKAGE}")
    binary = next((p for p in (tree / "usr/sbin/qemu-ga", tree / "usr/bin/qemu-ga") if p.is_file()), None)
    if binary is None:
        raise LabError(f"guest image: no usr/sbin/qemu-ga in {deb.name}")
    ldd = run(["ldd", str(binary)], step="list qemu-ga's shared libraries").decode(errors="replace")
    try:
        libraries = {path: Path(path).read_bytes() for path in parse_ldd(ldd)}  # through symlinks: the real files
    except OSError as exc:
        raise LabError(f"guest image: cannot read a library of qemu-ga: {exc}") from exc
    found = QemuGa(binary=binary.read_bytes(), libraries=libraries, package=deb.name)
    size = sum(map(len, libraries.values())) + len(found.binary)
    progress(f"qemu-ga from {deb.name} with {len(libraries)} libraries ({size / 1e6:.1f} MB uncompressed)")
    return found


def run(
    args: Sequence[str],
    *,
    step: str,
    cwd: Path | None = None,
    timeout: float = 600.0,
    stdin: bytes | None = None,
    what: str = "guest image",
) -> bytes:
    """Run a command (argument list, no shell), feeding it ``stdin`` if given, and return its stdout.

    ``what`` begins the error's message: the thing being made.

    :raises LabError: it could not start, timed out or failed; the message names the step, command and stderr.
    """
    env = {**os.environ, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}
    try:
        proc = subprocess.run(
            list(args),
            cwd=cwd,
            env=env,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            check=False,
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"{what}: cannot {step}: `{shlex.join(args)}`: {exc}") from exc
    if proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace").strip()[-2000:]
        raise LabError(f"{what}: cannot {step}: `{shlex.join(args)}` exited with {proc.returncode}: {stderr}")
    return proc.stdout
