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
    if not os.environ.get("VIRTKIT_LAB_KEEP"):  # set it to share one lab between parallel test runs
        daemons.down()


def clear_domains(uri: str, keep: set[str] | frozenset[str] = frozenset()) -> None:
    """Destroy and undefine every domain of the libvirt at ``uri`` but those named in ``keep``."""
    conn = libvirt.open(uri)
    try:
        for dom in conn.listAllDomains():
            if dom.name() in keep:
                continue
            with contextlib.suppress(libvirt.libvirtError):  # it may vanish meanwhile (transient, migrated)
                if dom.isActive():
                    dom.destroy()
                if dom.isPersistent():
                    dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
    finally:
        conn.close()


def _domain_names(uri: str) -> set[str]:
    conn = libvirt.open(uri)
    try:
        return {d.name() for d in conn.listAllDomains()}
    finally:
        conn.close()


@pytest.fixture
def cleanup(lab_hosts: list[daemons.LabHost]) -> Iterator[Callable[[Path], Path]]:
    """After the test, remove the domains the test added to the lab hosts and the files registered with
    ``cleanup(path)``. Domains that existed before the test (another run's) are left alone."""
    files: list[Path] = []
    before = {h.uri: _domain_names(h.uri) for h in lab_hosts}

    def register(path: Path) -> Path:
        files.append(path)
        return path

    yield register
    for state in daemons.status():
        if state.running:
            clear_domains(state.host.uri, keep=before.get(state.host.uri, set()))
    for path in files:
        path.unlink(missing_ok=True)
