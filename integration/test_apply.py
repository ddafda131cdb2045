"""``virtkit apply`` on the two lab hosts, the real command in its own process, with the site file edited between
runs: check first (nothing changes), create two VMs, nothing left to do, hot-add a disk the guest sees, checkpoint,
migrate one VM live, revert the other (its guest's counter goes back), remove everything.

Guests run under TCG (docs/platform.md). Proof comes from the guests' serial logs and from the hosts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

import helpers
import virtkit
from virtkit.lab import daemons, image
from virtkit.lab.paths import shared_dir

_BOOT = 180.0  # seconds for a TCG guest to boot (measured 8-15 s)
_SEEN = 30.0  # seconds for the guest to report a change of its disks (measured 0.2-0.5 s)


def _apply(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "virtkit.cli.main", "apply", str(site), *args]
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=900)


def _write(path: Path, lab: list[daemons.LabHost], vms: list[dict[str, Any]]) -> Path:
    site = {
        "hosts": {h.name: {"uri": h.uri} for h in lab},
        "vms": vms,
        "options": {"migration": "live", "shared_storage": [str(shared_dir())], "shutdown_timeout": 5},
    }
    path.write_text(yaml.safe_dump(site, sort_keys=False))
    return path


def test_a_site_applied_edited_and_removed(
    lab_hosts: list[daemons.LabHost], guest: image.GuestImage, own: helpers.Owned, tmp_path: Path
) -> None:
    w1, w2 = own("apply1"), own("apply2")
    spec1 = helpers.spec_data(guest, w1, disk_size="64MiB")
    spec2 = helpers.spec_data(guest, w2, disk_size="64MiB")
    site = tmp_path / "site.yml"
    vm1: dict[str, Any] = {"name": w1, "host": "host1", "spec": spec1}
    vm2: dict[str, Any] = {"name": w2, "host": "host2", "spec": spec2}
    _write(site, lab_hosts, [vm1, vm2])

    check = _apply(site, "--check", "--diff")
    assert check.returncode == 2, check.stderr
    assert f"+ define {w1} on host1" in check.stdout and f"+ define {w2} on host2" in check.stdout
    assert f"+++ after: {w1}" in check.stdout
    assert helpers.where(lab_hosts, w1) == [] and helpers.where(lab_hosts, w2) == []
    assert not Path(spec1["disks"][0]["path"]).exists()

    made = _apply(site)
    assert made.returncode == 2, made.stdout + made.stderr
    log1, log2 = helpers.serial_log(w1), helpers.serial_log(w2)
    log1.wait_for_boot(timeout=_BOOT)
    log2.wait_for_boot(timeout=_BOOT)
    with virtkit.connect(lab_hosts[0].uri) as h1:
        uuid1 = h1.get(w1).info().uuid

    again = _apply(site)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.strip() == "No changes."

    # A disk for w1 (hot-plugged: the guest sees it, the VM is not recreated) and a checkpoint of w2.
    data = own.file(shared_dir() / f"{w1}-data.qcow2")
    vm1["spec"] = {**spec1, "disks": [*spec1["disks"], {"path": str(data), "size": "32MiB"}]}
    vm2["checkpoints"] = ["c1"]
    _write(site, lab_hosts, [vm1, vm2])
    edited = _apply(site, "--json")
    assert edited.returncode == 2, edited.stdout + edited.stderr
    report = json.loads(edited.stdout)
    assert [(r["vm"], r["action"], r["status"]) for r in report["results"]] == [
        (w1, "attach", "done"),
        (w2, "checkpoint", "done"),
    ]
    assert "(hot-plug)" in report["results"][0]["detail"]
    log1.wait_for_disks(lambda d: d == ("vda", "vdb"), timeout=_SEEN)
    with virtkit.connect(lab_hosts[0].uri) as h1:
        assert h1.get(w1).info().uuid == uuid1 and len(log1.boots()) == 1
    at_c1 = helpers.counter(helpers.next_alive(log2))

    # w1 moves live to host2; w2 takes c2, then goes back to c1.
    vm1["host"] = "host2"
    vm2["checkpoints"] = ["c1", "c2"]
    vm2["revert_to"] = "c1"
    _write(site, lab_hosts, [vm1, vm2])
    before_revert = at_c1
    while before_revert < at_c1 + 8:  # far enough past c1 that going back shows, however slow the apply
        before_revert = helpers.counter(helpers.next_alive(log2))
    moved = _apply(site, "--json")
    assert moved.returncode == 2, moved.stdout + moved.stderr
    steps = [(r["vm"], r["action"], r["status"]) for r in json.loads(moved.stdout)["results"]]
    assert steps == [(w1, "migrate", "done"), (w2, "checkpoint", "done"), (w2, "revert", "done")]
    assert helpers.where(lab_hosts, w1) == ["host2"]
    with virtkit.connect(lab_hosts[1].uri) as h2:
        assert h2.get(w1).state is virtkit.VMState.RUNNING and h2.get(w1).info().uuid == uuid1
    assert len(log1.boots()) == 1  # moved live, not restarted
    reverted = helpers.counter(helpers.next_alive(log2))
    assert reverted < before_revert, (at_c1, reverted, before_revert)  # c1's memory: its counter went back
    assert len(log2.boots()) == 1

    settled = _apply(site)
    assert settled.returncode == 0, settled.stdout + settled.stderr

    vm1["state"] = vm2["state"] = "absent"
    _write(site, lab_hosts, [vm1, vm2])
    removed = _apply(site)
    assert removed.returncode == 2, removed.stdout + removed.stderr
    assert helpers.where(lab_hosts, w1) == [] and helpers.where(lab_hosts, w2) == []
    assert not Path(spec1["disks"][0]["path"]).exists() and not data.exists()
    assert _apply(site).returncode == 0
