"""``virtkit snapshot`` on libvirt's test driver: what each command did, read back through the API (clivm.py).

The test driver takes memory snapshots only: a disk-only one fails there (after virtkit's own checks), which the
bad-input test uses as a failure that must leave nothing behind.
"""

from __future__ import annotations

import json

import pytest

from clivm import CliVM, assert_one_line_error
from virtkit import VMState


def _names(cli: CliVM) -> list[str]:
    return [s.name for s in cli.vm.snapshots.list()]


def test_create_takes_it_once_and_list_shows_the_tree(cli_vm: CliVM) -> None:
    result = cli_vm.run("snapshot", "create", cli_vm.name, "s1", "--description", "before the upgrade", "--json")
    assert result.exit_code == 0, result.output
    change = json.loads(result.stdout)
    assert change["changed"] and change["after"]["kind"] == "memory" and change["after"]["vm_state"] == "running"
    assert _names(cli_vm) == ["s1"] and cli_vm.vm.snapshots.get("s1").description == "before the upgrade"

    again = cli_vm.run("snapshot", "create", cli_vm.name, "s1")
    assert again.exit_code == 0 and again.output.startswith(f"ok: create-snapshot {cli_vm.name}/s1"), again.output
    assert cli_vm.run("snapshot", "create", cli_vm.name, "s2").exit_code == 0

    listed = cli_vm.run("snapshot", "list", cli_vm.name, "--json")
    assert listed.exit_code == 0, listed.output
    rows = {s["name"]: s for s in json.loads(listed.stdout)}
    assert list(rows) == ["s1", "s2"]
    assert "parent" not in rows["s1"] and rows["s2"]["parent"] == "s1"
    assert (rows["s1"]["current"], rows["s2"]["current"]) == (False, True)

    table = cli_vm.run("snapshot", "list", cli_vm.name)
    assert table.exit_code == 0, table.output
    s1, s2 = (next(line for line in table.output.splitlines() if f" {n} " in line) for n in ("s1", "s2"))
    assert s2.index("s2") > s1.index("s1")  # indented under its parent
    assert "*" in s2 and "*" not in s1 and "memory" in s1 and "running" in s1


def test_a_vm_without_snapshots_says_so(cli_vm: CliVM) -> None:
    result = cli_vm.run("snapshot", "list", cli_vm.name)
    assert result.exit_code == 0 and f"{cli_vm.name} has no snapshots" in result.output
    assert json.loads(cli_vm.run("snapshot", "list", cli_vm.name, "--json").stdout) == []


def test_check_mode_changes_nothing(cli_vm: CliVM) -> None:
    result = cli_vm.run("snapshot", "create", cli_vm.name, "s1", "--check", "--json")
    assert result.exit_code == 0, result.output
    change = json.loads(result.stdout)
    assert change["check"] and change["changed"] and change["after"]["name"] == "s1"
    assert _names(cli_vm) == []

    cli_vm.vm.snapshots.create("s1")
    cli_vm.vm.destroy()
    revert = cli_vm.run("snapshot", "revert", cli_vm.name, "s1", "--check")
    assert revert.exit_code == 0 and "check mode: nothing done" in revert.output, revert.output
    assert "state: stopped -> running" in revert.output
    assert cli_vm.vm.state is VMState.STOPPED

    delete = cli_vm.run("snapshot", "delete", cli_vm.name, "s1", "--check")
    assert delete.exit_code == 0 and "changed: delete-snapshot" in delete.output, delete.output
    assert _names(cli_vm) == ["s1"]


def test_revert_brings_back_the_power_state(cli_vm: CliVM) -> None:
    cli_vm.vm.snapshots.create("running")
    cli_vm.vm.destroy()
    result = cli_vm.run("snapshot", "revert", cli_vm.name, "running", "--json")
    assert result.exit_code == 0, result.output
    change = json.loads(result.stdout)
    assert change["before"]["state"] == "stopped" and change["after"]["state"] == "running"
    assert cli_vm.vm.state is VMState.RUNNING


@pytest.mark.parametrize(("children", "left"), [(False, ["s2"]), (True, [])])
def test_delete_with_or_without_its_children(cli_vm: CliVM, children: bool, left: list[str]) -> None:
    for name in ("s1", "s2"):
        cli_vm.vm.snapshots.create(name)
    result = cli_vm.run("snapshot", "delete", cli_vm.name, "s1", *(["--children"] if children else []))
    assert result.exit_code == 0 and "changed: delete-snapshot" in result.output, result.output
    assert _names(cli_vm) == left
    if left:
        assert cli_vm.vm.snapshots.get("s2").parent is None  # moved up to s1's parent: none
    again = cli_vm.run("snapshot", "delete", cli_vm.name, "s1")
    assert again.exit_code == 0 and again.output.startswith("ok: delete-snapshot"), again.output


def test_quiesced_without_an_agent_falls_back_and_says_so(cli_vm: CliVM) -> None:
    result = cli_vm.run("snapshot", "create", cli_vm.name, "prod", "--kind", "quiesced")
    assert result.exit_code == 0, result.output
    assert "taken as memory" in result.output
    assert cli_vm.vm.snapshots.get("prod").kind.value == "memory"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["create", "{vm}", "bad name"], ["InvalidSpec", "name:"]),
        (["create", "{vm}", "s1", "--description", "bell\a"], ["InvalidSpec", "description:"]),
        (["create", "{vm}", "s1", "--kind", "quiesced", "--no-fallback"], ["Unsupported", "quiesced"]),
        (["create", "{vm}", "s1", "--kind", "disk-only"], ["Unsupported"]),
        (["create", "ghost", "s1"], ["NotFound", "ghost"]),
        (["revert", "{vm}", "nowhere"], ["NotFound", "nowhere"]),
        (["delete", "{vm}", "../s1"], ["InvalidSpec", "name:"]),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(cli_vm: CliVM, args: list[str], words: list[str]) -> None:
    result = cli_vm.run("snapshot", *(a.format(vm=cli_vm.name) for a in args))
    assert result.exit_code == 1
    assert_one_line_error(result.output, *words)
    assert _names(cli_vm) == [] and cli_vm.vm.state is VMState.RUNNING


def test_rename_keeps_the_snapshot_under_its_new_name(cli_vm: CliVM) -> None:
    cli_vm.vm.snapshots.create("s1")
    check = cli_vm.run("snapshot", "rename", cli_vm.name, "s1", "before-upgrade", "--check")
    assert check.exit_code == 0 and "name: s1 -> before-upgrade" in check.output, check.output
    assert _names(cli_vm) == ["s1"]
    result = cli_vm.run("snapshot", "rename", cli_vm.name, "s1", "before-upgrade", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["after"]["name"] == "before-upgrade"
    assert _names(cli_vm) == ["before-upgrade"]
    cli_vm.vm.snapshots.create("s2")
    for new, words in (("s2", ["AlreadyExists", "new_name", "s2"]), ("bad name", ["InvalidSpec", "new_name:"])):
        refused = cli_vm.run("snapshot", "rename", cli_vm.name, "before-upgrade", new)
        assert refused.exit_code == 1
        assert_one_line_error(refused.output, *words)
    assert _names(cli_vm) == ["before-upgrade", "s2"]
