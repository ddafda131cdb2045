"""The lab guest's ``agent`` variant on a real lab host: qemu-guest-agent answers through libvirt, a graceful
shutdown through virtkit powers the VM off, and quiesced disk-only snapshots succeed.

Guests run under TCG (docs/platform.md). The agent variant is built on demand here, like any test that needs it would.
"""

from __future__ import annotations

import base64
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import libvirt_qemu
import pytest

import helpers
import virtkit
from virtkit import VMState
from virtkit.lab import daemons, image
from virtkit.lab.paths import shared_dir
from virtkit.lab.serial import GuestLog

_QUIESCED_DISK_ONLY = (
    libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY
    | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE
    | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC
)


@pytest.fixture
def conn1(lab_hosts: list[daemons.LabHost]) -> Iterator[libvirt.virConnect]:
    conn = libvirt.open(lab_hosts[0].uri)
    yield conn
    conn.close()


def _start(host: virtkit.Host, guest: image.GuestImage, name: str) -> GuestLog:
    """Create and start ``name`` with the agent channel; wait for its boot and AGENT lines; return its serial log."""
    spec = helpers.spec(guest, name, guest_agent=True)
    assert host.create(spec, start=True).changed
    log = helpers.serial_log(name)
    log.wait_for_boot(timeout=120)
    agent = log.wait_for_agent(timeout=120)
    assert agent.status == "started", log.tail()
    return log


def _agent(dom: libvirt.virDomain, command: str, **arguments: Any) -> Any:
    """Run one guest agent command through libvirt; its ``return`` value."""
    message = {"execute": command, **({"arguments": arguments} if arguments else {})}
    return json.loads(libvirt_qemu.qemuAgentCommand(dom, json.dumps(message), 10, 0))["return"]


def _ping(dom: libvirt.virDomain, timeout: float) -> float:
    """Seconds until guest-ping answers; the AGENT line means qemu-ga holds its port, so the first try should do."""
    started = time.monotonic()
    while True:
        try:
            assert _agent(dom, "guest-ping") == {}
            return time.monotonic() - started
        except libvirt.libvirtError:
            if time.monotonic() - started > timeout:
                raise
            time.sleep(0.2)


def _guest_sh(dom: libvirt.virDomain, *argv: str) -> str:
    """Run a busybox applet in the guest through guest-exec; its stdout.

    :raises AssertionError: it exited with a non-zero status.
    """
    pid = _agent(dom, "guest-exec", path="/bin/busybox", arg=list(argv), **{"capture-output": True})["pid"]
    deadline = time.monotonic() + 30
    while not (status := _agent(dom, "guest-exec-status", pid=pid))["exited"]:
        assert time.monotonic() < deadline, f"guest command {argv} still runs"
        time.sleep(0.1)
    out, err = (base64.b64decode(status.get(key, "")).decode(errors="replace") for key in ("out-data", "err-data"))
    assert status.get("exitcode") == 0, f"guest command {argv} failed: {status} {err}"
    return out


def _snapshot_xml(name: str, overlay: Path) -> str:
    return (
        f"<domainsnapshot><name>{name}</name><disks><disk name='vda' snapshot='external'>"
        f"<source file='{overlay}'/></disk></disks></domainsnapshot>"
    )


def _disk_source(dom: libvirt.virDomain) -> str | None:
    source = ET.fromstring(dom.XMLDesc(0)).find("devices/disk[@device='disk']/source")
    return None if source is None else source.get("file")


def test_agent_answers_reboots_and_shuts_down_gracefully(
    host1: virtkit.Host,
    conn1: libvirt.virConnect,
    agent_guest: image.GuestImage,
    own: helpers.Owned,
) -> None:
    name = own("agent1")
    log = _start(host1, agent_guest, name)
    dom = conn1.lookupByName(name)
    assert _ping(dom, timeout=10) < 10
    info = _agent(dom, "guest-info")
    enabled = {c["name"] for c in info["supported_commands"] if c["enabled"]}
    assert {"guest-ping", "guest-shutdown", "guest-fsfreeze-freeze", "guest-exec"} <= enabled
    assert _agent(dom, "guest-get-fsinfo") == []  # nothing mounted: the guest lives in its initramfs

    vm = host1.get(name)
    # libvirt prefers the agent for a reboot when it is connected: guest-shutdown mode reboot runs
    # /sbin/shutdown -r, which reboots at once; the new boot starts its agent again.
    first = log.last_agent()
    assert first is not None
    assert vm.reboot().changed
    log.wait_for_boot(timeout=120, after_boots=1)
    assert log.wait_for_agent(timeout=120, after_line=first.line_no).status == "started"
    _ping(dom, timeout=10)

    # The VM has the agent channel, so a graceful shutdown goes through the agent: no ACPI needed, no force.
    stopped = vm.shutdown(timeout=30)
    assert stopped.after is not None and stopped.after.state is VMState.STOPPED
    assert any("reboot: Power down" in line for line in log.tail(5))


def test_quiesced_disk_only_snapshots(
    host1: virtkit.Host,
    conn1: libvirt.virConnect,
    agent_guest: image.GuestImage,
    own: helpers.Owned,
) -> None:
    name = own("agent2")
    _start(host1, agent_guest, name)
    dom = conn1.lookupByName(name)
    _ping(dom, timeout=10)
    overlays = [shared_dir() / f"{name}.s{i}.qcow2" for i in (1, 2)]

    # Nothing is mounted: qemu-ga freezes zero filesystems, which libvirt accepts (and then has nothing to thaw).
    assert _agent(dom, "guest-fsfreeze-freeze") == 0
    dom.snapshotCreateXML(
        _snapshot_xml("s1", overlays[0]), _QUIESCED_DISK_ONLY | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA
    )
    assert _disk_source(dom) == str(overlays[0])

    # With a filesystem mounted from the disk (busybox makes ext2, the kernel's ext4 driver mounts it), quiescing
    # really freezes and thaws it.
    _guest_sh(dom, "mke2fs", "-q", "/dev/vda")
    _guest_sh(dom, "mkdir", "-p", "/mnt")
    _guest_sh(dom, "mount", "-t", "ext4", "/dev/vda", "/mnt")
    assert [fs["mountpoint"] for fs in _agent(dom, "guest-get-fsinfo")] == ["/mnt"]
    assert dom.fsFreeze() == 1
    assert _agent(dom, "guest-fsfreeze-status") == "frozen"
    assert dom.fsThaw() == 1
    snapshot = dom.snapshotCreateXML(_snapshot_xml("s2", overlays[1]), _QUIESCED_DISK_ONLY)
    try:
        assert snapshot.getName() == "s2"
        assert _disk_source(dom) == str(overlays[1])
        assert _agent(dom, "guest-fsfreeze-status") == "thawed"
        _guest_sh(dom, "touch", "/mnt/written-after-the-snapshot")  # thawed: writes go through
    finally:
        snapshot.delete(libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY)  # or the domain cannot be undefined
    dom.destroy()
