"""Unit-test fixtures: libvirt's test:// driver loaded from the project's own XML, and a storage root in tmp."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

import virtkit

DATA = Path(__file__).parent / "data"
GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[libvirt.virConnect]:
    """libvirt's test driver with no domains, for this test alone."""
    node = tmp_path / "node.xml"
    node.write_text("<node/>")
    c = libvirt.open(f"test://{node}")
    yield c
    c.close()


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    """A storage root for one test."""
    root = tmp_path / "storage"
    root.mkdir()
    return root


@pytest.fixture
def host(tmp_path: Path, storage: Path) -> Iterator[virtkit.Host]:
    """A fresh test:// host per test (its own copy of tests/data/node.xml, never the shared test:///default)."""
    node = tmp_path / "node.xml"
    shutil.copy(DATA / "node.xml", node)
    with virtkit.connect(f"test://{node}", storage_roots=[storage, Path("/var/lib/virtkit")]) as h:
        yield h


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Hosts, VMs and hostile files for the hostile-input tests, built once per module (tests/hostile.py)."""
    from hostile import world_at

    with world_at(tmp_path_factory.mktemp("world")) as built:
        yield built


@pytest.fixture
def cli_vm(storage: Path) -> Iterator[object]:
    """A running VM of this test's own on test:///default, for CLI tests that read what a command did (clivm.py)."""
    from clivm import cli_vm

    with cli_vm(storage) as made:
        yield made
