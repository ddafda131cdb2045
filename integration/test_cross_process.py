"""A VM that another process is migrating is refused here: the hypervisor's job on it is read before every change
(each Ansible task is a process of its own, so a registry inside one process would protect nothing).

The migration runs in a child process with a bandwidth cap, on a guest that fills 200 MiB of its memory, so that it
lasts long enough; this process waits until libvirt reports the job, then tries every kind of change.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

import helpers
import virtkit
from virtkit import Conflict
from virtkit.lab import daemons, image
from virtkit.lab.paths import shared_dir

_MIGRATE = textwrap.dedent(
    """
    import sys, virtkit
    src, dst, name, shared = sys.argv[1:]
    with virtkit.connect(src) as a, virtkit.connect(dst) as b:
        virtkit.migrate(a.get(name), b, shared_storage=[shared],
                        tuning={"bandwidth": 8, "strategy": "precopy"})
    print("moved")
    """
)


def _wait_for_job(vm: virtkit.VM, timeout: float = 120.0) -> None:
    """Until the hypervisor reports a job on ``vm`` (the child process started its migration)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            vm.configure(description="probe", check=True)
        except Conflict:
            return
        time.sleep(0.2)
    raise AssertionError("the child's migration never showed as a job")


def test_a_vm_another_process_migrates_is_refused(
    lab_hosts: list[daemons.LabHost], guest: image.GuestImage, own: helpers.Owned
) -> None:
    name = own("xproc1")
    src, dst = lab_hosts[0].uri, lab_hosts[1].uri
    with virtkit.connect(src) as a, virtkit.connect(dst) as b:
        a.create(helpers.spec(guest, name, memory="512MiB", fill=200), start=True)
        log = helpers.serial_log(name)
        log.wait_for_boot(timeout=180)
        helpers.next_alive(log, timeout=120)  # memory filled: the guest reports alive after its fill
        vm = a.get(name)
        child = subprocess.Popen(
            [sys.executable, "-c", _MIGRATE, src, dst, name, str(shared_dir())],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_for_job(vm)
            attempts = {
                "migrate": lambda: virtkit.migrate(vm, b, shared_storage=[shared_dir()]),
                "delete": lambda: vm.delete(force=True),
                "update": lambda: vm.update(vm.spec()),
                "snapshot": lambda: vm.snapshots.create("during"),
                "shutdown": lambda: vm.shutdown(timeout=0, force=True),
                "pause": vm.pause,
            }
            refused = {}
            for what, attempt in attempts.items():
                with pytest.raises(Conflict) as err:
                    attempt()
                refused[what] = str(err.value)
            for what, message in refused.items():
                assert name in message and ("migration" in message or "job" in message), (what, message)
        finally:
            out, errors = child.communicate(timeout=600)
        assert child.returncode == 0, errors
        assert out.strip() == "moved"
        assert not a.exists(name) and b.get(name).state is virtkit.VMState.RUNNING
        assert [s.name for s in b.get(name).snapshots.list()] == []
