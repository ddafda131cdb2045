"""A host connection survives its daemon's restart: the transient error is retried after a reconnect."""

from __future__ import annotations

import pytest

import helpers
import virtkit
from virtkit.lab import daemons
from virtkit.lab.paths import shared_dir


@pytest.mark.lab_wide  # host1's libvirtd is killed and the host started again: its running VMs stop
def test_reconnect_after_libvirtd_restart(lab_hosts: list[daemons.LabHost], own: helpers.Owned) -> None:
    host_def = lab_hosts[0]
    name = own("recon1")
    with virtkit.connect(host_def.uri) as host:
        host.create({"name": name, "memory": "128MiB", "serial_log": str(shared_dir() / f"{name}.log")})
        before = host.get(name).info()

        helpers.kill_libvirtd(host_def)
        daemons.up(len(lab_hosts))  # restarts the dead host; its persistent definitions are kept

        # The same Host object: its first call meets the dropped connection, reconnects and retries.
        again = host.get(name).info()
        assert again.uuid == before.uuid
        assert host.exists(name)
        host.get(name).delete()
