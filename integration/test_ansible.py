"""The collection virtkit.kvm in real ansible-playbook runs on the two lab hosts: two VMs made (after a --check run
that changes nothing), a disk hot-added that the guest sees, a checkpoint, a live migration, a revert seen by the
guest's counter, everything removed; each playbook run twice, the second run reporting changed=0. Then two
playbooks at once: one migrates a VM, the other's changes to it are refused (each task is a process of its own).

Guests run under TCG (docs/platform.md). Proof comes from the guests' serial logs and from the hosts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

import helpers
import virtkit
from virtkit.lab import daemons, image
from virtkit.lab.paths import shared_dir

_BOOT = 180.0  # seconds for a TCG guest to boot (measured 8-15 s)
_SEEN = 30.0  # seconds for the guest to report a change of its disks (measured 0.2-0.5 s)
_COLLECTIONS = Path(virtkit.__file__).parent.parent


class Run:
    """One ansible-playbook run: its exit code, its output and the JSON lines of the virtkit.kvm.jsonl callback."""

    def __init__(self, done: subprocess.CompletedProcess[str], lines: Path) -> None:
        self.rc = done.returncode
        self.out = done.stdout + done.stderr
        records = [json.loads(line) for line in lines.read_text().splitlines()] if lines.exists() else []
        self.tasks = [r for r in records if "stats" not in r]
        self.stats = next((r["stats"]["localhost"] for r in records if "stats" in r), {})


def _start(book: Path, tasks: list[dict[str, Any]], *args: str) -> tuple[subprocess.Popen[str], Path]:
    play = {"hosts": "localhost", "gather_facts": False, "tasks": tasks}
    book.write_text(yaml.safe_dump([play], sort_keys=False))
    lines = book.with_suffix(".jsonl")
    lines.unlink(missing_ok=True)
    home = book.parent / "ansible-home"
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": "/nonexistent/ansible.cfg",
        "ANSIBLE_HOME": str(home),
        "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
        "ANSIBLE_COLLECTIONS_PATH": str(_COLLECTIONS),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_CALLBACKS_ENABLED": "virtkit.kvm.jsonl",
        "VIRTKIT_JSONL_PATH": str(lines),
    }
    cmd = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        json.dumps({"ansible_python_interpreter": sys.executable}),
        str(book),
        *args,
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env), lines


def _play(book: Path, tasks: list[dict[str, Any]], *args: str) -> Run:
    proc, lines = _start(book, tasks, *args)
    out, err = proc.communicate(timeout=900)
    return Run(subprocess.CompletedProcess(proc.args, proc.returncode, out, err), lines)


def test_a_playbook_makes_changes_and_removes_two_vms(
    lab_hosts: list[daemons.LabHost], guest: image.GuestImage, own: helpers.Owned, tmp_path: Path
) -> None:
    h1, h2 = lab_hosts[0].uri, lab_hosts[1].uri
    w1, w2 = own("ans1"), own("ans2")
    spec1 = helpers.spec_data(guest, w1, disk_size="64MiB")
    spec2 = helpers.spec_data(guest, w2, disk_size="64MiB")
    create = [
        {"name": "w1", "virtkit.kvm.vm": {"uri": h1, "name": w1, "spec": spec1, "shutdown_timeout": 5}},
        {"name": "w2", "virtkit.kvm.vm": {"uri": h2, "name": w2, "spec": spec2, "shutdown_timeout": 5}},
    ]
    book = tmp_path / "create.yml"

    checked = _play(book, create, "--check", "--diff")
    assert checked.rc == 0, checked.out
    assert checked.stats["changed"] == 2 and helpers.where(lab_hosts, w1) == [] and helpers.where(lab_hosts, w2) == []
    assert checked.tasks[0]["result"]["plan"][0].startswith(f"+ define {w1}")
    assert '"memory": "256MiB"' in checked.out and f"+++ after: {w1}" in checked.out
    assert not Path(spec1["disks"][0]["path"]).exists()

    made = _play(book, create)
    assert made.rc == 0 and made.stats["changed"] == 2, made.out
    log1, log2 = helpers.serial_log(w1), helpers.serial_log(w2)
    log1.wait_for_boot(timeout=_BOOT)
    log2.wait_for_boot(timeout=_BOOT)
    again = _play(book, create)
    assert again.rc == 0 and again.stats["changed"] == 0, again.out

    data = own.file(shared_dir() / f"{w1}-data.qcow2")
    changes = [
        {
            "name": "move",
            "virtkit.kvm.migrate": {"uri": h1, "name": w1, "dest": {"uri": h2}, "shared_storage": [str(shared_dir())]},
        },
        {"name": "disk", "virtkit.kvm.disk": {"uri": h2, "vm": w1, "path": str(data), "size": "32MiB"}},
        {"name": "c1", "virtkit.kvm.snapshot": {"uri": h2, "vm": w2, "name": "c1"}},
        {"name": "c2", "virtkit.kvm.snapshot": {"uri": h2, "vm": w2, "name": "c2"}},
        {"name": "back", "virtkit.kvm.snapshot": {"uri": h2, "vm": w2, "name": "c1", "state": "reverted"}},
    ]
    book = tmp_path / "changes.yml"
    changed = _play(book, changes[:3], "--diff")
    assert changed.rc == 0 and changed.stats["changed"] == 3, changed.out
    log1.wait_for_disks(lambda d: d == ("vda", "vdb"), timeout=_SEEN)
    assert (
        helpers.where(lab_hosts, w1) == ["host2"] and len(log1.boots()) == 1
    )  # moved live, then hot-plugged: one boot
    moved = changed.tasks[0]["result"]
    assert moved["migration"]["mode"] == "live" and moved["progress"][-1]["phase"] == "done"
    assert moved["diff"] == {"before": {"host": h1}, "after": {"host": h2}, "before_header": w1, "after_header": w1}
    assert changed.tasks[1]["result"]["disk"]["target"] == "vdb"
    assert changed.tasks[2]["result"]["snapshot"]["kind"] == "memory"
    at_c1 = helpers.counter(helpers.next_alive(log2))  # read after c1 was taken: c1's counter is at most this
    before_revert = at_c1
    while before_revert < at_c1 + 8:  # far enough past c1 that going back shows, however slow the run
        before_revert = helpers.counter(helpers.next_alive(log2))

    reverted = _play(tmp_path / "revert.yml", changes[3:])
    assert reverted.rc == 0 and reverted.stats["changed"] == 2, reverted.out
    assert reverted.tasks[1]["result"]["vm_state"] == "running"
    assert helpers.counter(helpers.next_alive(log2)) < before_revert  # c1's memory: the counter went back
    assert len(log2.boots()) == 1

    again = _play(tmp_path / "all.yml", changes)
    assert again.rc == 0 and again.stats["changed"] == 0, again.out

    remove = [
        {"virtkit.kvm.vm": {"uri": h2, "name": w1, "state": "absent"}},
        {"virtkit.kvm.vm": {"uri": h2, "name": w2, "state": "absent"}},
    ]
    book = tmp_path / "remove.yml"
    gone = _play(book, remove)
    assert gone.rc == 0 and gone.stats["changed"] == 2, gone.out
    assert helpers.where(lab_hosts, w1) == [] and helpers.where(lab_hosts, w2) == []
    assert not Path(spec1["disks"][0]["path"]).exists() and not data.exists()
    assert _play(book, remove).stats["changed"] == 0


def _wait_for_job(vm: virtkit.VM, timeout: float = 120.0) -> None:
    """Until the hypervisor reports a job on ``vm`` (the other playbook started its migration)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            vm.configure(description="probe", check=True)
        except virtkit.Conflict:
            return
        time.sleep(0.2)
    raise AssertionError("the first playbook's migration never showed as a job")


def test_two_playbooks_at_once_a_migrating_vm_is_refused(
    lab_hosts: list[daemons.LabHost], guest: image.GuestImage, own: helpers.Owned, tmp_path: Path
) -> None:
    h1, h2 = lab_hosts[0].uri, lab_hosts[1].uri
    name = own("ansx")
    with virtkit.connect(h1) as a:
        a.create(helpers.spec(guest, name, memory="512MiB", fill=200), start=True)
        log = helpers.serial_log(name)
        log.wait_for_boot(timeout=_BOOT)
        helpers.next_alive(log, timeout=120)  # memory filled: the guest reports alive after its fill
        shared = [str(shared_dir())]
        move = {
            "virtkit.kvm.migrate": {
                "uri": h1,
                "name": name,
                "dest": {"uri": h2},
                "shared_storage": shared,
                "tuning": {"bandwidth": 8, "strategy": "precopy"},
            }
        }
        first, first_lines = _start(tmp_path / "move.yml", [move])
        try:
            _wait_for_job(a.get(name))
            data = str(shared_dir() / f"{name}-x.qcow2")
            others = [
                {"name": "stop", "virtkit.kvm.vm": {"uri": h1, "name": name, "state": "stopped"}},
                {"name": "checkpoint", "virtkit.kvm.snapshot": {"uri": h1, "vm": name, "name": "during"}},
                {"name": "disk", "virtkit.kvm.disk": {"uri": h1, "vm": name, "path": data, "size": "8MiB"}},
                {"name": "move too", "virtkit.kvm.migrate": {"uri": h1, "name": name, "dest": {"uri": h2}}},
                {"name": "delete", "virtkit.kvm.vm": {"uri": h1, "name": name, "state": "absent"}},
            ]
            for task in others:
                task["ignore_errors"] = True
            second = _play(tmp_path / "others.yml", others)
        finally:
            out, err = first.communicate(timeout=900)
        moved = Run(subprocess.CompletedProcess(first.args, first.returncode, out, err), first_lines)
    assert moved.rc == 0 and moved.stats["changed"] == 1, moved.out
    assert [t["status"] for t in second.tasks] == ["ignored"] * 5, second.out
    for task in second.tasks:
        assert task["result"]["changed"] is False and "job" in task["result"]["msg"], task
    assert second.stats["changed"] == 0
    assert helpers.where(lab_hosts, name) == ["host2"] and not Path(data).exists()
    with virtkit.connect(h2) as b:
        vm = b.get(name)
        assert vm.state is virtkit.VMState.RUNNING and vm.snapshots.list() == []
        assert len(vm.disks.list()) == 1
