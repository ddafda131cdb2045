"""A VM of its own for the CLI tests, on libvirt's process-wide ``test:///default`` driver.

Each ``virtkit`` command opens its own connection, and a driver loaded from a node file starts afresh at each open:
what one command did, the next would not see. ``test:///default`` keeps its state for the whole process, so a test
can run commands one after the other and read the outcome through its own connection. It is shared by every test in
the process, hence a VM named for one test alone, and removed (with its files) when the test ends.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from click.testing import CliRunner, Result

import virtkit

URI = "test:///default"


@dataclasses.dataclass(frozen=True)
class CliVM:
    """A running VM ``name`` with one 16 MiB qcow2 disk in ``storage``, and ``host``, a connection to read it by."""

    host: virtkit.Host
    name: str
    storage: Path

    @property
    def vm(self) -> virtkit.VM:
        return self.host.get(self.name)

    def run(self, *args: str) -> Result:
        """``virtkit ARGS --uri test:///default --storage-root STORAGE``."""
        from virtkit.cli.main import cli

        return CliRunner().invoke(cli, [*args, "--uri", URI, "--storage-root", str(self.storage)])


@contextmanager
def cli_vm(storage: Path) -> Iterator[CliVM]:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    with virtkit.connect(URI, storage_roots=[storage]) as host:
        disk = {"path": str(storage / f"{name}.qcow2"), "size": "16MiB"}
        host.create({"name": name, "memory": "64MiB", "disks": [disk]}, start=True)
        try:
            yield CliVM(host, name, storage)
        finally:
            if host.exists(name):
                host.get(name).delete(force=True)


def assert_one_line_error(output: str, *words: str) -> None:
    """``output`` is a single ``error: ...`` line holding each of ``words``."""
    assert len(output.strip().splitlines()) == 1, output
    assert output.startswith("error: ") and all(w in output for w in words), output
