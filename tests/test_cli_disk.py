"""``virtkit disk list / add / remove`` on libvirt's test driver, read back through the API (clivm.py).

libvirt 9.0's test driver implements neither virDomainAttachDeviceFlags nor virDomainDetachDeviceFlags: a real add or
remove fails there once every check has passed, which shows that a failed command leaves the VM and its storage as
they were. Adding and removing for real is proven on the lab's daemons (integration/test_hotplug.py).
"""

from __future__ import annotations

import json

import pytest

from clivm import CliVM, assert_one_line_error


def _disks(cli: CliVM) -> list[tuple[str, str]]:
    return [(d.target, str(d.disk.path)) for d in cli.vm.disks.list()]


def _files(cli: CliVM) -> list[str]:
    return sorted(p.name for p in cli.storage.iterdir())


def test_list_shows_each_disk_and_where_it_is(cli_vm: CliVM) -> None:
    path = str(cli_vm.storage / f"{cli_vm.name}.qcow2")
    result = cli_vm.run("disk", "list", cli_vm.name, "--json")
    assert result.exit_code == 0, result.output
    (disk,) = json.loads(result.stdout)
    assert (disk["target"], disk["disk"]["path"], disk["disk"]["bus"]) == ("vda", path, "virtio")
    assert disk["live"] and disk["persistent"]
    table = cli_vm.run("disk", "list", cli_vm.name)
    assert table.exit_code == 0, table.output
    row = next(line for line in table.output.splitlines() if "vda" in line)
    assert "virtio" in row and "qcow2" in row and "live+persistent" in row


def test_add_check_mode_predicts_and_changes_nothing(cli_vm: CliVM) -> None:
    disks, files = _disks(cli_vm), _files(cli_vm)
    new = str(cli_vm.storage / "data.qcow2")
    result = cli_vm.run("disk", "add", cli_vm.name, new, "--size", "32MiB", "--bus", "scsi", "--check", "--json")
    assert result.exit_code == 0, result.output
    change = json.loads(result.stdout)
    assert change["check"] and change["before"] is None
    after = change["after"]
    assert (after["target"], after["controller"], after["unit"], after["disk"]["path"]) == ("sda", 0, 0, new)
    assert _disks(cli_vm) == disks and _files(cli_vm) == files

    virtio = cli_vm.run("disk", "add", cli_vm.name, new, "--size", "32MiB", "--readonly", "--no-live", "--check")
    assert virtio.exit_code == 0 and "check mode: nothing done" in virtio.output, virtio.output
    assert "target: None -> vdb" in virtio.output and "live: None -> False" in virtio.output
    assert _disks(cli_vm) == disks and _files(cli_vm) == files


def test_adding_the_attached_disk_again_changes_nothing(cli_vm: CliVM) -> None:
    result = cli_vm.run("disk", "add", cli_vm.name, str(cli_vm.storage / f"{cli_vm.name}.qcow2"))
    assert result.exit_code == 0 and result.output.startswith(f"ok: attach {cli_vm.name}:vda"), result.output


def test_a_failed_add_leaves_no_disk_and_no_new_image(cli_vm: CliVM) -> None:
    disks, files = _disks(cli_vm), _files(cli_vm)
    result = cli_vm.run("disk", "add", cli_vm.name, str(cli_vm.storage / "data.qcow2"), "--size", "32MiB")
    assert result.exit_code == 1
    assert_one_line_error(result.output, "Unsupported", "not supported")  # the test driver cannot attach
    assert _disks(cli_vm) == disks and _files(cli_vm) == files


def test_remove_check_mode_and_a_disk_not_there(cli_vm: CliVM) -> None:
    disks = _disks(cli_vm)
    result = cli_vm.run("disk", "remove", cli_vm.name, "vda", "--check")
    assert result.exit_code == 0 and "check mode: nothing done" in result.output, result.output
    assert "target: vda -> None" in result.output
    partial = cli_vm.run("disk", "remove", cli_vm.name, disks[0][1], "--no-persistent", "--check", "--json")
    assert partial.exit_code == 0, partial.output
    assert json.loads(partial.stdout)["after"]["persistent"] is True
    for key in ("vdq", str(cli_vm.storage / "nothing.qcow2")):
        absent = cli_vm.run("disk", "remove", cli_vm.name, key)
        assert absent.exit_code == 0 and absent.output.startswith("ok: detach"), absent.output
    failed = cli_vm.run("disk", "remove", cli_vm.name, "vda")
    assert failed.exit_code == 1
    assert_one_line_error(failed.output, "Unsupported")  # the test driver cannot detach
    assert _disks(cli_vm) == disks and (cli_vm.storage / f"{cli_vm.name}.qcow2").is_file()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["add", "{vm}", "/etc/data.qcow2", "--size", "1MiB"], ["InvalidSpec", "disk.path:"]),
        (["add", "{vm}", "{storage}/../data.qcow2", "--size", "1MiB"], ["InvalidSpec", "disk.path:"]),
        (["add", "{vm}", "{storage}/missing.qcow2"], ["InvalidSpec", "disk.path:"]),
        (["add", "{vm}", "{storage}/data.qcow2", "--size", "-5"], ["InvalidSpec", "disk.size:"]),
        (["add", "{vm}", "{storage}/data.qcow2", "--size", "1MiB", "--target", "sdb"], ["InvalidSpec", "disk.target:"]),
        (["add", "{vm}", "{storage}/data.qcow2", "--size", "1MiB", "--unit", "2"], ["InvalidSpec", "unit:"]),
        (
            ["add", "{vm}", "{storage}/data.qcow2", "--size", "1MiB", "--no-live", "--no-persistent"],
            ["InvalidSpec", "persistent:"],
        ),
        (["add", "{vm}", "{storage}/data.qcow2", "--size", "1MiB", "--target", "vda"], ["Conflict", "vda"]),
        (["add", "ghost", "{storage}/data.qcow2", "--size", "1MiB"], ["NotFound", "ghost"]),
        (["remove", "{vm}", "sda1"], ["InvalidSpec", "target_or_path:"]),
        (["remove", "{vm}", "vda", "--timeout", "0"], ["InvalidSpec", "timeout:"]),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(cli_vm: CliVM, args: list[str], words: list[str]) -> None:
    disks, files = _disks(cli_vm), _files(cli_vm)
    result = cli_vm.run("disk", *(a.format(vm=cli_vm.name, storage=cli_vm.storage) for a in args))
    assert result.exit_code == 1
    assert_one_line_error(result.output, *words)
    assert _disks(cli_vm) == disks and _files(cli_vm) == files


def test_a_stopped_vm_takes_no_live_only_change(cli_vm: CliVM) -> None:
    cli_vm.vm.destroy()
    new = str(cli_vm.storage / "data.qcow2")
    result = cli_vm.run("disk", "add", cli_vm.name, new, "--size", "1MiB", "--no-persistent")
    assert result.exit_code == 1
    assert_one_line_error(result.output, "Conflict", "live only: it is stopped")
    check = cli_vm.run("disk", "add", cli_vm.name, new, "--size", "1MiB", "--check")
    assert check.exit_code == 0 and "live: None -> False" in check.output, check.output  # the definition only
    assert not (cli_vm.storage / "data.qcow2").exists()
