"""What the integration modules share: names scoped to this run, the test guest's spec, and small readers of the lab.

Several runs of the suite may share one lab (``VIRTKIT_LAB_KEEP=1``), so every VM and file a test makes is named
with this run's prefix (:data:`RUN`) through the ``own`` fixtures (conftest.py), and only what a test was handed
is removed when it ends: never a VM or file of another run, whatever it is called.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import libvirt

import virtkit
from virtkit.lab import daemons, image
from virtkit.lab.paths import shared_dir
from virtkit.lab.serial import GuestEvent, GuestLog

#: This run's prefix for the names of its VMs and files: ``it`` and six hex digits.
RUN = f"it{secrets.token_hex(3)}"
_ANY_RUN = re.compile(r"it[0-9a-f]{6}-")

# Where files named after a VM may be: the shared directory, and this machine's libvirt image directory (which the
# lab hosts do not see: a storage copy into it fails on the destination).
_NAMED_FILES = (Path("/var/lib/libvirt/images"),)

# Undefine with everything libvirt keeps beside a definition: managed save, snapshot and checkpoint metadata, NVRAM.
_UNDEFINE_ALL = (
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
)


def other_run(name: str) -> bool:
    """Whether ``name`` (a VM or a file) belongs to another run of the suite: it has another run's prefix."""
    return _ANY_RUN.match(name) is not None and not name.startswith(f"{RUN}-")


def listing(directory: Path) -> list[str]:
    """The names in ``directory``, sorted, without other runs' files (which come and go while this one runs)."""
    return sorted(n for n in os.listdir(directory) if not other_run(n))


class Owned:
    """The VMs and files one test (or one module) owns; :meth:`remove` deletes them, and nothing else."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.paths: list[Path] = []

    def __call__(self, base: str) -> str:
        """A VM name for this run (``own("life1")`` is ``it3f9a2c-life1``). The VM is removed afterwards from every
        running lab host, with every file named after it (``<name>.*``, ``<name>-*``) in the shared directory."""
        name = f"{RUN}-{base}"
        if name not in self.names:
            self.names.append(name)
        return name

    def path(self, base: str) -> Path:
        """A file in the shared directory named for this run (``<shared>/<RUN>-<base>``), removed afterwards."""
        return self.file(shared_dir() / f"{RUN}-{base}")

    def file(self, path: Path) -> Path:
        """Remove ``path`` (a file, or a directory with what is in it) afterwards too; return it."""
        self.paths.append(path)
        return path

    def remove(self) -> None:
        """Delete the VMs from every running lab host, then their files and the registered paths."""
        remove_vms(self.names)
        for name in self.names:
            for base in (shared_dir(), *_NAMED_FILES):
                for path in [*base.glob(f"{name}.*"), *base.glob(f"{name}-*")]:
                    _remove_path(path)
        for path in self.paths:
            _remove_path(path)


def remove_vms(names: Iterable[str]) -> None:
    """Destroy and undefine the VMs of these exact names on every running lab host (transient ones vanish)."""
    wanted = list(names)
    for state in daemons.status():
        if not state.running:
            continue
        conn = libvirt.open(state.host.uri)
        try:
            for name in wanted:
                with contextlib.suppress(libvirt.libvirtError):  # not there, or gone meanwhile
                    dom = conn.lookupByName(name)
                    persistent = dom.isPersistent()  # ask first: a transient domain vanishes when destroyed
                    if dom.isActive():
                        dom.destroy()
                    if persistent:
                        dom.undefineFlags(_UNDEFINE_ALL)
        finally:
            conn.close()


def _remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


# -- the test guest ------------------------------------------------------------------------------------------------


def spec_data(
    guest: image.GuestImage,
    name: str,
    *,
    memory: str = "256MiB",
    disk_size: str = "256MiB",
    alive: int | None = 1,
    dirty: int | None = None,
    dirty_mode: str | None = None,
    fill: int | None = None,
    fill_check: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A spec of the test guest as data: ``name.qcow2`` of ``disk_size`` and ``name.serial.log`` in the shared
    directory, an alive line every ``alive`` seconds (the guest's default without it); ``extra`` fields go on top."""
    shared = shared_dir()
    return {
        "name": name,
        "memory": memory,
        "kernel": {
            "kernel": str(guest.kernel),
            "initrd": str(guest.initrd),
            "cmdline": guest.cmdline_for(
                alive=alive, dirty=dirty, dirty_mode=dirty_mode, fill=fill, fill_check=fill_check
            ),
        },
        "disks": [{"path": str(shared / f"{name}.qcow2"), "size": disk_size}],
        "serial_log": str(shared / f"{name}.serial.log"),
        **extra,
    }


def spec(guest: image.GuestImage, name: str, **options: Any) -> virtkit.VMSpec:
    """:func:`spec_data` as a :class:`virtkit.VMSpec`."""
    return virtkit.VMSpec.from_dict(spec_data(guest, name, **options))


def serial_log(name: str) -> GuestLog:
    """The serial log of the VM ``name`` made from :func:`spec_data`."""
    return GuestLog(shared_dir() / f"{name}.serial.log")


def next_alive(log: GuestLog, timeout: float = 15) -> GuestEvent:
    """The guest's next alive line after the last one logged so far."""
    last = log.last_alive()
    return log.wait_for_alive(timeout=timeout, after_line=last.line_no if last else 0)


def counter(event: GuestEvent) -> int:
    """The in-memory counter of an alive line."""
    assert event.counter is not None
    return event.counter


# -- the lab, read and disturbed -----------------------------------------------------------------------------------


def domain_xml(uri: str, name: str, *, inactive: bool) -> ET.Element:
    """The domain XML libvirt holds for ``name`` at ``uri``: the persistent definition, or the running one."""
    conn = libvirt.open(uri)
    try:
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0
        return ET.fromstring(conn.lookupByName(name).XMLDesc(flags))
    finally:
        conn.close()


def libvirtd_pid(host: str) -> int:
    """The PID of lab host ``host``'s libvirtd (``host1``, ...)."""
    return next(s.pids["libvirtd"] for s in daemons.status() if s.host.name == host)


def kill_libvirtd(host: daemons.LabHost) -> None:
    """SIGKILL ``host``'s libvirtd and wait until the lab sees the host down (``daemons.up`` starts it again)."""
    os.kill(libvirtd_pid(host.name), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(s.running for s in daemons.status() if s.host.name == host.name):
        assert time.monotonic() < deadline, "libvirtd did not die"
        time.sleep(0.05)


def listeners(port: int) -> set[str]:
    """Addresses with a TCP socket listening on ``port`` (IPv6 ones as ``v6:`` + hex), from /proc/net/tcp{,6}."""
    found: set[str] = set()
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add("v6:" + address if v6 else ".".join(str(b) for b in bytes.fromhex(address)[::-1]))
    return found


def where(lab: list[daemons.LabHost], name: str) -> list[str]:
    """The names of the lab hosts that define VM ``name`` (exactly one, after any operation that ended)."""
    out = []
    for h in lab:
        with virtkit.connect(h.uri) as host:
            if host.exists(name):
                out.append(h.name)
    return out
