"""``virtkit hyperv checkpoint-vm``, ``get-vm-snapshot``, ``restore-vm-snapshot``, ``rename-vm-snapshot`` and
``remove-vm-snapshot`` on libvirt's test driver (a VM of the test's own on ``test:///default``: see clivm.py)."""

from __future__ import annotations

import json

from clivm import CliVM, assert_one_line_error


def _names(cli_vm: CliVM) -> list[str]:
    return [s.name for s in cli_vm.vm.snapshots.list()]


def test_checkpoint_get_restore_rename_remove(cli_vm: CliVM) -> None:
    name = cli_vm.name
    assert cli_vm.run("hyperv", "set-vm", name, "--checkpoint-type", "Standard").exit_code == 0
    done = cli_vm.run("hyperv", "checkpoint-vm", name, "--snapshot-name", "a", "--what-if")
    assert done.exit_code == 0 and "check mode" in done.output and _names(cli_vm) == []
    assert cli_vm.run("hyperv", "checkpoint-vm", name, "--snapshot-name", "a").exit_code == 0
    assert cli_vm.run("hyperv", "checkpoint-vm", name, "--snapshot-name", "b").exit_code == 0
    listed = json.loads(cli_vm.run("hyperv", "get-vm-snapshot", name, "--json").output)
    assert [(s["Name"], s["ParentSnapshotName"], s["IsCurrent"], s["SnapshotType"]) for s in listed] == [
        ("a", None, False, "Standard"),
        ("b", "a", True, "Standard"),
    ]
    table = cli_vm.run("hyperv", "get-vm-snapshot", name)
    assert table.exit_code == 0 and "Standard" in table.output and "*" in table.output

    restored = cli_vm.run("hyperv", "restore-vm-snapshot", name, "a", "--json")
    assert restored.exit_code == 0 and json.loads(restored.output)["action"] == "revert-snapshot"
    assert cli_vm.vm.snapshots.current().name == "a"  # type: ignore[union-attr]
    assert cli_vm.run("hyperv", "rename-vm-snapshot", name, "a", "base").exit_code == 0
    assert _names(cli_vm) == ["base", "b"]
    removed = cli_vm.run("hyperv", "remove-vm-snapshot", name, "base", "--include-all-child-snapshots")
    assert removed.exit_code == 0 and _names(cli_vm) == []


def test_refusals_are_one_line_naming_the_parameter(cli_vm: CliVM) -> None:
    name = cli_vm.name
    cli_vm.run("hyperv", "set-vm", name, "--checkpoint-type", "ProductionOnly")
    only = cli_vm.run("hyperv", "checkpoint-vm", name, "--snapshot-name", "p")
    assert only.exit_code == 1
    assert_one_line_error(only.output, "CheckpointType", "ProductionOnly")
    bad = cli_vm.run("hyperv", "checkpoint-vm", name, "--snapshot-name", "no way")
    assert_one_line_error(bad.output, "SnapshotName")
    missing = cli_vm.run("hyperv", "restore-vm-snapshot", name, "nope")
    assert_one_line_error(missing.output, "Name:", "nope")
    assert _names(cli_vm) == []
