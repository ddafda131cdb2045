"""``virtkit vm save / restore / managed-save / discard-saved`` on libvirt's test driver: what each command did,
read back through the API (clivm.py)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from clivm import URI, CliVM, assert_one_line_error
from virtkit import VMState
from virtkit.cli.main import cli


def test_save_to_a_file_and_restore_from_it(cli_vm: CliVM) -> None:
    path = cli_vm.storage / "vm.save"
    result = cli_vm.run("vm", "save", cli_vm.name, str(path), "--json")
    assert result.exit_code == 0, result.output
    change = json.loads(result.stdout)
    assert change["changed"] and change["after"]["state"] == "stopped" and change["after"]["reason"] == "saved"
    assert path.is_file() and cli_vm.vm.state is VMState.STOPPED
    again = cli_vm.run("vm", "save", cli_vm.name, str(path))
    assert again.exit_code == 0 and again.output.startswith(f"ok: save {cli_vm.name}"), again.output

    restored = cli_vm.run("vm", "restore", str(path))
    assert restored.exit_code == 0, restored.output
    assert f"changed: restore {cli_vm.name}" in restored.output and "state: stopped -> running" in restored.output
    assert cli_vm.vm.state is VMState.RUNNING and path.is_file()  # the file stays
    again = cli_vm.run("vm", "restore", str(path))
    assert again.exit_code == 0 and again.output.startswith(f"ok: restore {cli_vm.name}"), again.output


def test_save_and_restore_check_mode_change_nothing(cli_vm: CliVM) -> None:
    path = cli_vm.storage / "vm.save"
    result = cli_vm.run("vm", "save", cli_vm.name, str(path), "--check")
    assert result.exit_code == 0 and "check mode: nothing done" in result.output, result.output
    assert "state: running -> stopped" in result.output
    assert not path.exists() and cli_vm.vm.state is VMState.RUNNING

    cli_vm.vm.save(path)
    result = cli_vm.run("vm", "restore", str(path), "--check", "--json")
    assert result.exit_code == 0, result.output
    change = json.loads(result.stdout)
    assert change["check"] and change["after"]["state"] == "running"
    assert cli_vm.vm.state is VMState.STOPPED


def test_managed_save_then_start_resumes_or_discard_boots_afresh(cli_vm: CliVM) -> None:
    result = cli_vm.run("vm", "managed-save", cli_vm.name, "--check")
    assert result.exit_code == 0 and "check mode: nothing done" in result.output, result.output
    assert cli_vm.vm.state is VMState.RUNNING

    result = cli_vm.run("vm", "managed-save", cli_vm.name, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["after"]["managed_save"] is True
    assert cli_vm.vm.state is VMState.SAVED
    again = cli_vm.run("vm", "managed-save", cli_vm.name)
    assert again.exit_code == 0 and again.output.startswith("ok: managed-save"), again.output

    started = CliRunner().invoke(cli, ["vm", "start", cli_vm.name, "--uri", URI])
    assert started.exit_code == 0, started.output
    assert cli_vm.vm.state is VMState.RUNNING and not cli_vm.vm.info().managed_save

    cli_vm.vm.managed_save()
    result = cli_vm.run("vm", "discard-saved", cli_vm.name, "--check")
    assert result.exit_code == 0 and "check mode: nothing done" in result.output, result.output
    assert cli_vm.vm.state is VMState.SAVED
    result = cli_vm.run("vm", "discard-saved", cli_vm.name)
    assert result.exit_code == 0 and "managed_save: True -> False" in result.output, result.output
    assert cli_vm.vm.state is VMState.STOPPED and not cli_vm.vm.info().managed_save
    again = cli_vm.run("vm", "discard-saved", cli_vm.name)
    assert again.exit_code == 0 and again.output.startswith("ok: discard-saved-state"), again.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["save", "{vm}", "/etc/vm.save"], ["InvalidSpec", "path:", "outside the storage roots"]),
        (["save", "{vm}", "relative.save"], ["InvalidSpec", "path:"]),
        (["save", "{vm}", "{storage}/nodir/vm.save"], ["InvalidSpec", "path:"]),
        (["save", "{vm}", "{storage}/notes.txt"], ["InvalidSpec", "not a saved state of"]),
        (["restore", "{storage}/notes.txt"], ["InvalidSpec", "path:"]),
        (["restore", "{storage}/missing.save"], ["InvalidSpec", "path:", "does not exist"]),
        (["save", "ghost", "{storage}/vm.save"], ["NotFound", "ghost"]),
        (["managed-save", "ghost"], ["NotFound", "ghost"]),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(cli_vm: CliVM, args: list[str], words: list[str]) -> None:
    notes = cli_vm.storage / "notes.txt"
    notes.write_text("keep me\n")
    files = sorted(p.name for p in cli_vm.storage.iterdir())
    result = cli_vm.run("vm", *(a.format(vm=cli_vm.name, storage=cli_vm.storage) for a in args))
    assert result.exit_code == 1
    assert_one_line_error(result.output, *words)
    assert cli_vm.vm.state is VMState.RUNNING
    assert sorted(p.name for p in cli_vm.storage.iterdir()) == files and notes.read_text() == "keep me\n"


def test_saving_a_stopped_vm_is_a_conflict(cli_vm: CliVM) -> None:
    cli_vm.vm.destroy()
    for args in (["save", cli_vm.name, str(cli_vm.storage / "vm.save")], ["managed-save", cli_vm.name]):
        result = cli_vm.run("vm", *args)
        assert result.exit_code == 1
        assert_one_line_error(result.output, "Conflict", "stopped")
    assert not (cli_vm.storage / "vm.save").exists() and cli_vm.vm.state is VMState.STOPPED
