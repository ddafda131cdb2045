"""``virtkit hyperv move-vm``, ``set-vm-processor`` and ``get-vm-processor`` against libvirt's test:// driver: each
command opens its own copy of a node file (so what one command changes the next does not see) with ``mover``
(running, the host's own CPU) and ``off`` (shut off). A real move with its progress bar is in
integration/test_hyperv_moves.py."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from virtkit.cli.main import cli

_NODE = """<node xmlns:test="http://libvirt.org/schemas/domain/test/1.0">
  <domain type="qemu">
    <name>mover</name>
    <memory unit="KiB">65536</memory>
    <vcpu>1</vcpu>
    <os><type arch="x86_64" machine="pc">hvm</type></os>
    <cpu mode="host-model"/>
    <devices>
      <disk type="file" device="disk"><driver name="qemu" type="qcow2"/><source file="{storage}/mover.qcow2"/>
        <target dev="vda" bus="virtio"/></disk>
    </devices>
  </domain>
  <domain type="qemu">
    <name>off</name>
    <memory unit="KiB">65536</memory>
    <vcpu>1</vcpu>
    <os><type arch="x86_64" machine="pc">hvm</type></os>
    <devices>
      <disk type="file" device="disk"><driver name="qemu" type="qcow2"/><source file="{storage}/off.qcow2"/>
        <target dev="vda" bus="virtio"/></disk>
    </devices>
    <test:runstate>5</test:runstate>
  </domain>
</node>
"""


@pytest.fixture
def target(tmp_path: Path, storage: Path) -> list[str]:
    """``--uri`` (the node file with both VMs) and ``--storage-root``; the empty destination is ``dest.xml``."""
    for name in ("mover", "off"):
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(storage / f"{name}.qcow2"), "16M"], check=True)
    node = tmp_path / "node.xml"
    node.write_text(_NODE.format(storage=storage))
    (tmp_path / "dest.xml").write_text("<node/>\n")
    return ["--uri", f"test://{node}", "--storage-root", str(storage)]


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["hyperv", *args])
    return result.exit_code, result.output


def test_get_vm_processor_as_a_table_and_json(target: list[str]) -> None:
    code, output = _run("get-vm-processor", "mover", *target)
    assert code == 0, output
    assert "mover" in output and "host's own" in output and "False" in output
    code, output = _run("get-vm-processor", "mover", "--json", *target)
    assert code == 0, output
    assert json.loads(output) == {"VMName": "mover", "Count": 1, "CompatibilityForMigrationEnabled": False}


def test_set_vm_processor_changes_a_vm_that_is_off(target: list[str]) -> None:
    code, output = _run("set-vm-processor", "off", "--count", "2", "--what-if", *target)
    assert code == 0, output
    assert "changed: update off (check mode: nothing done)" in output and "vcpus: 1 -> 2" in output
    code, output = _run("set-vm-processor", "off", "--compatibility-for-migration-enabled", "off", "--json", *target)
    assert code == 0, output
    change = json.loads(output)
    assert change["changed"] and change["after"]["cpu_model"] == "host-model"


def test_set_vm_processor_refuses_a_running_vm_on_one_line(target: list[str]) -> None:
    code, output = _run("set-vm-processor", "mover", "--count", "2", *target)
    assert code == 1
    assert output.count("\n") == 1 and "Conflict: Count: cannot update mover: it is running" in output
    code, output = _run("set-vm-processor", "off", "--count", "300", *target)
    assert code == 1 and "InvalidSpec: Count: must be a number of virtual processors from 1 to 240" in output
    code, output = _run("set-vm-processor", "off", "--compatibility-for-migration-enabled", "maybe", *target)
    assert code == 2 and "'maybe' is not one of 'on', 'off'" in output


def test_move_vm_what_if_and_its_refusals(target: list[str], tmp_path: Path, storage: Path) -> None:
    destination = ["--destination-host", f"test://{tmp_path / 'dest.xml'}"]
    code, output = _run("move-vm", "--help")
    assert code == 0 and "--include-storage" in output and "--destination-storage-path" in output
    code, output = _run("move-vm", "mover", *destination, "--what-if", *target)
    assert code == 0, output
    assert "changed: migrate mover (check mode: nothing done)" in output
    (storage / "there").mkdir()
    there = ["--destination-storage-path", str(storage / "there")]
    code, output = _run("move-vm", "mover", *destination, *there, "--what-if", "--json", *target)
    assert code == 0, output
    assert json.loads(output)["mode"] == "live-storage" and list((storage / "there").iterdir()) == []
    for options, words in (
        (["--include-storage"], "InvalidSpec: DestinationStoragePath: both hosts are this machine"),
        (["--destination-storage-path", "/etc"], "InvalidSpec: DestinationStoragePath: '/etc' is outside"),
    ):
        code, output = _run("move-vm", "mover", *destination, *options, *target)
        assert code == 1 and words in output, output
    code, output = _run("move-vm", "off", *destination, *target)
    assert code == 1 and "Conflict: Name: cannot move off live: it is stopped" in output
    code, output = _run("move-vm", "mover", "--destination-host", target[1], *target)
    assert code == 1 and "InvalidSpec: DestinationHost:" in output
