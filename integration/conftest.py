"""Fixtures of the integration suite: the real lab, the test guest, and VM names that are this run's alone.

Integration tests run as root on a machine set up by ``make setup`` (Debian's libvirt and QEMU installed).

Several runs may share one lab (``VIRTKIT_LAB_KEEP=1`` keeps it up between them). A test names every VM it makes
through ``own`` (``own_module`` for a module's fixtures): ``own("life1")`` gives a name with this run's prefix, and
when the test ends those VMs are removed from the lab hosts with the files named after them, and nothing else.
Tests marked ``lab_wide`` act on whole lab hosts (they stop, restart or drain one, or take the lab down), which
scoping by name cannot confine: run them where no other run uses the lab, or leave them out with
``-m "not lab_wide"``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import virtkit
from helpers import Owned
from virtkit.lab import daemons, image


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "lab_wide: stops, restarts or drains a whole lab host, so other runs on the lab are disturbed"
    )


@pytest.fixture(scope="session")
def lab_hosts() -> Iterator[list[daemons.LabHost]]:
    """Two running lab hosts (``host1``, ``host2``) for the whole session; the lab is taken down at its end."""
    if os.geteuid() != 0:
        pytest.fail("the integration suite runs real libvirt daemons and needs root (run `make test` as root)")
    hosts = daemons.up(2)
    yield hosts
    if not os.environ.get("VIRTKIT_LAB_KEEP"):  # set it to share one lab between parallel test runs
        daemons.down()


@pytest.fixture(scope="session")
def guest() -> image.GuestImage:
    """The lab's test guest (built once, cached between runs)."""
    return image.build_guest()


@pytest.fixture(scope="session")
def agent_guest() -> image.GuestImage:
    """The test guest with qemu-guest-agent."""
    return image.build_guest(variant="agent")


@pytest.fixture
def host1(lab_hosts: list[daemons.LabHost]) -> Iterator[virtkit.Host]:
    """A connection to lab host1 for one test."""
    with virtkit.connect(lab_hosts[0].uri) as host:
        yield host


@pytest.fixture(scope="module")
def hosts(lab_hosts: list[daemons.LabHost]) -> Iterator[tuple[virtkit.Host, virtkit.Host]]:
    """Connections to lab host1 and host2 for a module."""
    with virtkit.connect(lab_hosts[0].uri) as a, virtkit.connect(lab_hosts[1].uri) as b:
        yield a, b


@pytest.fixture
def own(lab_hosts: list[daemons.LabHost]) -> Iterator[Owned]:
    """Names for the VMs and files of one test, removed (they alone) when it ends: see :class:`helpers.Owned`."""
    owned = Owned()
    yield owned
    owned.remove()


@pytest.fixture(scope="module")
def own_module(lab_hosts: list[daemons.LabHost]) -> Iterator[Owned]:
    """:func:`own` for a module's fixtures: removed when the module ends."""
    owned = Owned()
    yield owned
    owned.remove()
