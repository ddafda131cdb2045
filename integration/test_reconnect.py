"""A host connection survives its daemon's restart: the transient error is retried after a reconnect."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import virtkit
from virtkit.lab import daemons
from virtkit.lab.paths import shared_dir


def test_reconnect_after_libvirtd_restart(lab_hosts: list[daemons.LabHost], cleanup: Callable[[Path], Path]) -> None:
    host_def = lab_hosts[0]
    with virtkit.connect(host_def.uri) as host:
        host.create({"name": "recon1", "memory": "128MiB", "serial_log": str(cleanup(shared_dir() / "recon1.log"))})
        before = host.get("recon1").info()

        pid = next(s.pids["libvirtd"] for s in daemons.status() if s.host.name == host_def.name)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(s.running for s in daemons.status() if s.host.name == host_def.name):
            assert time.monotonic() < deadline, "libvirtd did not die"
            time.sleep(0.05)
        daemons.up(len(lab_hosts))  # restarts the dead host; its persistent definitions are kept

        # The same Host object: its first call meets the dropped connection, reconnects and retries.
        again = host.get("recon1").info()
        assert again.uuid == before.uuid
        assert host.exists("recon1")
        host.get("recon1").delete()
