"""VM.set_resources on a running guest (TCG), read inside the guest through its agent: the vCPU hot-plugged is
present in the guest, and the memory the balloon takes back leaves the guest's MemTotal."""

from __future__ import annotations

import base64
import json
import time

import libvirt
import libvirt_qemu  # type: ignore[import-untyped]
import pytest

import helpers
import virtkit
from virtkit.lab import daemons, image
from virtkit.units import MiB

_BOOT = 180.0


def _run(uri: str, name: str, *argv: str) -> str:
    """What ``argv`` prints inside the guest (guest-exec through its agent)."""
    conn = libvirt.open(uri)
    try:
        dom = conn.lookupByName(name)

        def agent(cmd: str, args: dict[str, object]) -> dict[str, object]:
            reply = libvirt_qemu.qemuAgentCommand(dom, json.dumps({"execute": cmd, "arguments": args}), 30, 0)
            return json.loads(reply)["return"]  # type: ignore[no-any-return]

        pid = agent("guest-exec", {"path": argv[0], "arg": list(argv[1:]), "capture-output": True})["pid"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = agent("guest-exec-status", {"pid": pid})
            if status.get("exited"):
                return base64.b64decode(str(status.get("out-data", ""))).decode()
            time.sleep(0.2)
    finally:
        conn.close()
    raise AssertionError(f"{argv} did not exit in the guest")


def _mem_total(uri: str, name: str) -> int:
    line = next(x for x in _run(uri, name, "cat", "/proc/meminfo").splitlines() if x.startswith("MemTotal:"))
    return int(line.split()[1]) * 1024


def _wait(read: object, ok: object, timeout: float = 60.0) -> object:
    deadline = time.monotonic() + timeout
    value = read()  # type: ignore[operator]
    while not ok(value) and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.5)
        value = read()  # type: ignore[operator]
    return value


def test_vcpus_and_memory_change_while_the_guest_runs(
    lab_hosts: list[daemons.LabHost], agent_guest: image.GuestImage, own: helpers.Owned, host1: virtkit.Host
) -> None:
    name = own("live1")
    uri = lab_hosts[0].uri
    spec = helpers.spec(agent_guest, name, memory="384MiB", max_memory="512MiB", vcpus=1, max_vcpus=2, guest_agent=True)
    host1.create(spec, start=True)
    log = helpers.serial_log(name)
    log.wait_for_boot(timeout=_BOOT)
    assert log.wait_for_agent(timeout=_BOOT).status == "started", log.tail()
    vm = host1.get(name)
    assert _run(uri, name, "cat", "/sys/devices/system/cpu/present").strip() == "0"
    first = _wait(lambda: _mem_total(uri, name), lambda m: m <= 384 * MiB)  # the balloon at boot
    assert isinstance(first, int) and first <= 384 * MiB

    change = vm.set_resources(vcpus=2, memory="256MiB")
    assert change.changed and change.after is not None
    assert (change.after.vcpus, change.after.memory) == (2, 256 * MiB)
    present = _wait(lambda: _run(uri, name, "cat", "/sys/devices/system/cpu/present").strip(), lambda p: p == "0-1")
    assert present == "0-1"
    smaller = _wait(lambda: _mem_total(uri, name), lambda m: m <= first - 100 * MiB)
    assert isinstance(smaller, int) and smaller <= first - 100 * MiB, (first, smaller)
    assert vm.state is virtkit.VMState.RUNNING and len(log.boots()) == 1
    assert not vm.set_resources(vcpus=2, memory="256MiB").changed
    with pytest.raises(virtkit.InvalidSpec, match="max_memory"):
        vm.set_resources(memory="1GiB")
