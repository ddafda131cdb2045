"""``virtkit hyperv``: the cmdlets on the command line, against libvirt's test:// driver (a copy of the project's
node XML per test: each command opens it afresh, so what one command changes the next does not see)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from click.testing import CliRunner

from virtkit.cli.main import cli

DATA = Path(__file__).parent / "data"


def _target(tmp_path: Path) -> list[str]:
    node = tmp_path / "node.xml"
    shutil.copy(DATA / "node.xml", node)
    storage = tmp_path / "storage"
    storage.mkdir()
    return ["--uri", f"test://{node}", "--storage-root", str(storage)]


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["hyperv", *args])
    return result.exit_code, result.output


def test_new_vm_from_a_hyperv_file_imports_its_vhdx_and_starts_it(tmp_path: Path) -> None:
    target = _target(tmp_path)
    storage = tmp_path / "storage"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", str(storage / "web.vhdx"), "16M"], check=True)
    spec = tmp_path / "web.yml"
    spec.write_text(
        f"Name: web1\nGeneration: 2\nMemoryStartupBytes: 64MB\nHardDrives:\n  - Path: {storage / 'web.vhdx'}\n"
    )
    code, output = _run("new-vm", str(spec), "--what-if", "--json", *target)
    assert code == 0, output
    assert json.loads(output)["check"] is True and sorted(p.name for p in storage.iterdir()) == ["web.vhdx"]

    code, output = _run("new-vm", str(spec), "--start", *target)
    assert code == 0, output
    assert "changed: create web1" in output and "changed: start web1" in output
    assert (storage / "web.vhdx.qcow2").is_file()  # imported beside the original


def test_get_vm_lists_hyperv_states_and_json(tmp_path: Path) -> None:
    target = _target(tmp_path)
    code, output = _run("get-vm", *target)
    assert code == 0, output
    assert "legacy1" in output and "Running" in output
    code, output = _run("get-vm", "legacy1", "--json", *target)
    assert code == 0, output
    (vm,) = json.loads(output)
    assert vm["Name"] == "legacy1" and vm["State"] == "Running"


def test_lifecycle_verbs_report_their_change(tmp_path: Path) -> None:
    target = _target(tmp_path)
    code, output = _run("stop-vm", "legacy1", "--turn-off", "--json", *target)
    assert code == 0, output
    assert json.loads(output)["after"]["state"] == "stopped"
    code, output = _run("suspend-vm", "legacy1", "--what-if", *target)
    assert code == 0 and "check mode: nothing done" in output
    code, output = _run("restart-vm", "legacy1", "--type", "Reboot", "--what-if", *target)
    assert code == 0, output


def test_bad_input_is_one_line_naming_the_hyperv_field(tmp_path: Path) -> None:
    target = _target(tmp_path)
    spec = tmp_path / "bad.yml"
    spec.write_text("Name: web1\nGeneration: 3\n")
    code, output = _run("new-vm", str(spec), *target)
    assert code == 1 and "Generation" in output and "Traceback" not in output
    code, output = _run("add-vm-hard-disk-drive", "legacy1", "/etc/disk.qcow2", "--controller-type", "SCSI", *target)
    assert code == 1 and "Path" in output and "outside the storage roots" in output
    code, output = _run("stop-vm", "legacy1", "--turn-off", "--save", *target)
    assert code == 1 and "-TurnOff or -Save" in output


def test_schema_names_the_hyperv_fields() -> None:
    code, output = _run("schema")
    assert code == 0
    properties = json.loads(output)["properties"]
    assert {"Name", "Generation", "HardDrives", "SecureBoot", "ComPort1"} <= set(properties)


def test_schema_files_for_editors_are_what_the_cli_prints() -> None:
    specs = Path(__file__).parent.parent / "examples" / "specs"
    for command, name in ((["hyperv", "schema"], "hyperv-vm"), (["schema"], "vm")):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 0
        shipped = json.loads((specs / f"{name}.schema.json").read_text())
        assert shipped == json.loads(result.output), f"regenerate: virtkit {' '.join(command)} > {name}.schema.json"


def test_the_example_hyperv_spec_reads() -> None:
    from virtkit.hyperv import HyperVSpec

    spec = HyperVSpec.from_file(Path(__file__).parent.parent / "examples" / "specs" / "hyperv-gen2.yml")
    assert (spec.generation, spec.secure_boot, spec.processor_count) == (2, True, 2)
    assert spec.to_spec().enlightenments and spec.com_port1 is not None


def test_vhd_verbs_make_read_convert_compact_and_merge(tmp_path: Path) -> None:
    target = _target(tmp_path)
    storage = tmp_path / "storage"
    base, child, copy = storage / "base.vhdx", storage / "child.qcow2", storage / "copy.vhd"
    code, output = _run("new-vhd", str(base), "--size-bytes", "16MB", "--json", *target)
    assert code == 0, output
    assert json.loads(output)["after"]["VhdFormat"] == "VHDX" and base.is_file()
    code, output = _run("new-vhd", str(child), "--differencing", "--parent-path", str(base), *target)
    assert code == 0, output
    code, output = _run("get-vhd", str(child), "--json", *target)
    assert code == 0, output
    disk = json.loads(output)
    assert (disk["VhdType"], disk["ParentPath"], disk["Size"]) == ("Differencing", str(base), 16 * 2**20)
    code, output = _run("convert-vhd", str(base), str(copy), "--vhd-type", "Fixed", *target)
    assert code == 0, output
    assert "changed: convert" in output and copy.is_file()
    code, output = _run("optimize-vhd", str(base), *target)
    assert code == 0 and "reclaimed" in output, output
    code, output = _run("merge-vhd", str(child), "--what-if", *target)
    assert code == 0 and child.exists(), output
    code, output = _run("merge-vhd", str(child), *target)
    assert code == 0 and not child.exists(), output


def test_vhd_verbs_refuse_bad_input_naming_the_parameter(tmp_path: Path) -> None:
    target = _target(tmp_path)
    storage = tmp_path / "storage"
    code, output = _run("new-vhd", str(storage / "x.vhdx"), "--size-bytes", "-5", *target)
    assert code == 1 and "SizeBytes" in output
    (storage / "fake.vhdx").write_bytes(b"not a vhdx" * 100)
    code, output = _run("get-vhd", str(storage / "fake.vhdx"), *target)
    assert code == 1 and "Path" in output and "Traceback" not in output
    code, output = _run("new-vhd", str(storage / "d.qcow2"), "--differencing", "--parent-path", "/etc/x.vhdx", *target)
    assert code == 1 and "ParentPath" in output
    assert sorted(p.name for p in storage.iterdir()) == ["fake.vhdx"]


def test_export_vm_on_the_command_line_refuses_a_running_vm(tmp_path: Path) -> None:
    target = _target(tmp_path)
    storage = tmp_path / "storage"
    code, output = _run("export-vm", "legacy1", str(storage), "--what-if", *target)
    assert code == 1 and "stop or save it first" in output  # legacy1 runs in the node file
    assert list(storage.iterdir()) == []


def test_new_vm_start_what_if_reports_and_starts_nothing(tmp_path: Path) -> None:
    target = _target(tmp_path)
    spec = tmp_path / "web.yml"
    spec.write_text("Name: web5\nMemoryStartupBytes: 64MB\n")
    code, output = _run("new-vm", str(spec), "--start", "--what-if", *target)
    assert code == 0, output
    assert "then start web5 (check mode: nothing done)" in output


def test_lab_boot_disk_needs_a_disk_extension_or_a_format(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["lab", "boot-disk", str(tmp_path / "disk")])
    assert result.exit_code == 1 and "no disk extension" in result.output
    assert not (tmp_path / "disk").exists()


def test_set_vm_and_integration_services_on_the_command_line(tmp_path: Path) -> None:
    target = _target(tmp_path)
    code, output = _run("set-vm", "legacy1", "--checkpoint-type", "standard", "--notes", "hi", "--json", *target)
    assert code == 0, output
    assert json.loads(output)["after"]["description"] == "hi"
    code, output = _run("get-vm-integration-service", "legacy1", "--json", *target)
    assert code == 0, output
    assert {s["Name"] for s in json.loads(output)} >= {"Heartbeat", "VSS"}
    code, output = _run("enable-vm-integration-service", "legacy1", "Backup", *target)
    assert code == 1 and "Name" in output
    code, output = _run("copy-vm-file", "legacy1", "/etc/passwd", "/tmp/x", *target)
    assert code == 1 and ("disabled" in output or "SourcePath" in output)
