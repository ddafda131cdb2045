"""Hyper-V's integration services at work on real daemons: a Generation 1 VM booted from a VHD that holds the lab
guest with qemu-guest-agent. What the services do is checked inside the guest: the file Copy-VMFile wrote is hashed
there, and its clock is read there after a resume from a saved state and after a revert."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Iterator

import libvirt
import libvirt_qemu  # type: ignore[import-untyped]
import pytest

import helpers
import virtkit
from virtkit import AlreadyExists, hyperv
from virtkit.lab import bootdisk, daemons
from virtkit.lab.paths import shared_dir
from virtkit.lab.serial import GuestLog

_BOOT = 240.0


def _exec(uri: str, name: str, argv: list[str]) -> str:
    """Run ``argv`` inside the guest (through its agent's guest-exec) and return what it printed."""
    conn = libvirt.open(uri)
    try:
        dom = conn.lookupByName(name)

        def agent(cmd: str, args: dict[str, object]) -> dict[str, object]:
            reply = libvirt_qemu.qemuAgentCommand(dom, json.dumps({"execute": cmd, "arguments": args}), 30, 0)
            return json.loads(reply)["return"]  # type: ignore[no-any-return]

        pid = agent("guest-exec", {"path": argv[0], "arg": argv[1:], "capture-output": True})["pid"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = agent("guest-exec-status", {"pid": pid})
            if status.get("exited"):
                assert status.get("exitcode") == 0, status
                return base64.b64decode(str(status.get("out-data", ""))).decode()
            time.sleep(0.2)
    finally:
        conn.close()
    raise AssertionError(f"{argv} did not exit in the guest")


@pytest.fixture(scope="module")
def agent_vm(
    lab_hosts: list[daemons.LabHost], own_module: helpers.Owned
) -> Iterator[tuple[virtkit.Host, str, GuestLog]]:
    """A running Generation 1 VM with every integration service on, its agent answering."""
    name = own_module("hvagent")
    disk = bootdisk.build_boot_disk("bios", variant="agent").copy_to(shared_dir() / f"{name}-boot.vhd", "vhd")
    com1 = shared_dir() / f"{name}.com1.log"
    services = {s: "On" for s in ("Heartbeat", "Shutdown", "TimeSynchronization", "KeyValuePairExchange")}
    services |= {"GuestServiceInterface": "On", "VSS": "On"}
    with virtkit.connect(lab_hosts[0].uri) as host:
        spec = {"Name": name, "MemoryStartupBytes": "512MB", "HardDrives": [{"Path": str(disk)}],
                "ComPort1": str(com1), "IntegrationServices": services}  # fmt: skip
        hyperv.new_vm(host, spec)
        hyperv.start_vm(host, name)
        log = GuestLog(com1)
        log.wait_for_boot(timeout=_BOOT)
        assert log.wait_for_agent(timeout=_BOOT).status == "started"
        yield host, name, log
        hyperv.stop_vm(host, name, turn_off=True)


def test_every_service_reads_ok_and_kvp_describes_the_guest(agent_vm: tuple[virtkit.Host, str, GuestLog]) -> None:
    host, name, _log = agent_vm
    services = hyperv.get_vm_integration_service(host, name)
    assert len(services) == 6 and {(s.enabled, s.primary_status_description) for s in services} == {(True, "OK")}
    kvp = hyperv.get_vm_kvp(host, name)
    assert kvp["ProcessorArchitecture"] == "x86_64"
    assert kvp["OSKernelRelease"] == _exec(host.uri, name, ["/bin/busybox", "uname", "-r"]).strip()


def test_copy_vm_file_writes_the_bytes_the_guest_then_reads(agent_vm: tuple[virtkit.Host, str, GuestLog]) -> None:
    host, name, _log = agent_vm
    data = os.urandom(3 * 1024 * 1024 + 123)  # more than one agent message
    source = shared_dir() / f"{name}-payload.bin"
    source.write_bytes(data)
    seen: list[float] = []
    copied = hyperv.copy_vm_file(
        host, name, source, "/tmp/virtkit/in/payload.bin", create_full_path=True, progress=seen.append
    )
    assert copied == len(data) and seen[-1] == 100.0 and len(seen) > 1
    inside = _exec(host.uri, name, ["/bin/busybox", "sha256sum", "/tmp/virtkit/in/payload.bin"]).split()[0]
    assert inside == hashlib.sha256(data).hexdigest()
    with pytest.raises(AlreadyExists):
        hyperv.copy_vm_file(host, name, source, "/tmp/virtkit/in/payload.bin")
    source.write_bytes(b"second")
    assert hyperv.copy_vm_file(host, name, source, "/tmp/virtkit/in/payload.bin", force=True) == 6
    assert _exec(host.uri, name, ["/bin/busybox", "cat", "/tmp/virtkit/in/payload.bin"]) == "second"


def _lag(host: virtkit.Host, name: str) -> float:
    """How far the guest's clock is behind this machine's, in seconds (read inside the guest)."""
    return time.time() - float(_exec(host.uri, name, ["/bin/busybox", "date", "+%s"]))


def test_time_synchronization_sets_the_clock_after_a_restore_and_a_revert(
    agent_vm: tuple[virtkit.Host, str, GuestLog],
) -> None:
    host, name, log = agent_vm
    vm = host.get(name)
    # With the service off, a resume from a saved state leaves the guest's clock as it stood while saved.
    assert hyperv.disable_vm_integration_service(host, name, "Time Synchronization").changed
    try:
        assert hyperv.save_vm(host, name).changed
        time.sleep(8)
        assert hyperv.start_vm(host, name).changed
        assert _lag(host, name) > 5, "the guest clock should lag after 8 s saved, with the service off"
    finally:
        hyperv.enable_vm_integration_service(host, name, "Time Synchronization")
    # With it on, Start-VM sets it from the host's clock.
    assert hyperv.save_vm(host, name).changed
    time.sleep(8)
    assert hyperv.start_vm(host, name).changed
    assert abs(lag := _lag(host, name)) < 3, f"the guest clock is {lag:.1f} s off after Start-VM"
    # And a revert to a checkpoint brings back the memory of then, clock included: it is set again.
    vm.snapshots.create("clock")
    try:
        time.sleep(8)
        last = log.last_alive()
        assert vm.snapshots.revert("clock").after.state is virtkit.VMState.RUNNING  # type: ignore[union-attr]
        assert abs(lag := _lag(host, name)) < 3, f"the guest clock is {lag:.1f} s off after the revert"
        # the guest goes on from the checkpoint: it says its alive line again (the next test counts from there)
        log.wait_for_alive(timeout=60, after_line=last.line_no if last is not None else 0)
    finally:
        vm.snapshots.delete("clock")


def test_services_switch_while_the_guest_runs(agent_vm: tuple[virtkit.Host, str, GuestLog]) -> None:
    host, name, log = agent_vm
    alive = log.last_alive()
    assert hyperv.disable_vm_integration_service(host, name, "Key-Value Pair Exchange").changed
    (kvp,) = hyperv.get_vm_integration_service(host, name, "Key-Value Pair Exchange")
    assert not kvp.enabled and kvp.primary_status_description is None
    with pytest.raises(virtkit.Conflict, match="disabled"):
        hyperv.get_vm_kvp(host, name)
    assert hyperv.enable_vm_integration_service(host, name, "Key-Value Pair Exchange").changed
    assert hyperv.get_vm_kvp(host, name)["ProcessorArchitecture"] == "x86_64"
    # The guest ran on through both changes: its counter kept counting.
    assert alive is not None and helpers.counter(helpers.next_alive(log, timeout=30)) > helpers.counter(alive)
    assert helpers.domain_xml(host.uri, name, inactive=False).find("metadata") is not None


def test_heartbeat_reads_lost_communication_when_the_agent_stops(agent_vm: tuple[virtkit.Host, str, GuestLog]) -> None:
    host, name, _log = agent_vm
    _exec(host.uri, name, ["/bin/busybox", "sh", "-c", "(sleep 1; killall qemu-ga) >/dev/null 2>&1 &"])
    deadline = time.monotonic() + 30
    status = None
    while time.monotonic() < deadline:
        status = hyperv.get_vm_integration_service(host, name, "Heartbeat")[0].primary_status_description
        if status == "Lost Communication":
            break
        time.sleep(1)
    assert status == "Lost Communication"
