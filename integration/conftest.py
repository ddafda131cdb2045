"""Fixtures of the integration suite: the real two-host lab, and cleaning up after a test.

Integration tests run as root on a machine set up by ``make setup`` (Debian's libvirt and QEMU installed).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import libvirt
import pytest

from virtkit.lab import daemons


@pytest.fixture(scope="session")
def lab_hosts() -> Iterator[list[daemons.LabHost]]:
    """Two running lab hosts (``host1``, ``host2``) for the whole session; the lab is taken down at its end."""
    if os.geteuid() != 0:
        pytest.fail("the integration suite runs real libvirt daemons and needs root (run `make test` as root)")
    hosts = daemons.up(2)
    yield hosts
    daemons.down()


def clear_domains(uri: str) -> None:
    """Destroy and undefine every domain of the libvirt at ``uri``."""
    conn = libvirt.open(uri)
    try:
        for dom in conn.listAllDomains():
            with contextlib.suppress(libvirt.libvirtError):  # it may vanish meanwhile (transient, migrated)
                if dom.isActive():
                    dom.destroy()
                if dom.isPersistent():
                    dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
    finally:
        conn.close()


@pytest.fixture
def cleanup(lab_hosts: list[daemons.LabHost]) -> Iterator[Callable[[Path], Path]]:
    """After the test, remove every domain of the lab hosts and the files registered with ``cleanup(path)``."""
    files: list[Path] = []

    def register(path: Path) -> Path:
        files.append(path)
        return path

    yield register
    for state in daemons.status():
        if state.running:
            clear_domains(state.host.uri)
    for path in files:
        path.unlink(missing_ok=True)
