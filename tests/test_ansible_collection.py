"""The collection virtkit.kvm as Ansible sees it: each module's documented options are its argument spec and agree
with virtkit's models; real ansible-playbook runs (a module on this machine's files: changed once, then not, check
mode and diff mode, a bad option refused naming it); the inventory plugin through ansible-inventory."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

import virtkit
from virtkit.images import Preallocation
from virtkit.playbook import DesiredState
from virtkit.playbook.tasks import TASKS
from virtkit.playbook.tasks.disk import DISK_OPTIONS
from virtkit.remote.config import SSHConfig

COLLECTION = Path(virtkit.__file__).parent.parent / "ansible_collections" / "virtkit" / "kvm"
MODULES = sorted(p.stem for p in (COLLECTION / "plugins" / "modules").glob("*.py"))
BIN = Path(sys.executable).parent


def _argspec(module: str) -> dict[str, Any]:
    """The argument spec ``module`` builds, caught as it constructs its AnsibleModule."""
    loaded = importlib.import_module(f"ansible_collections.virtkit.kvm.plugins.modules.{module}")
    seen: dict[str, Any] = {}

    class Caught(Exception):
        pass

    def fake(**kwargs: Any) -> None:
        seen.update(kwargs)
        raise Caught

    original = loaded.AnsibleModule
    loaded.AnsibleModule = fake
    try:
        with pytest.raises(Caught):
            loaded.main()
    finally:
        loaded.AnsibleModule = original
    return seen


def _doc(module: str) -> dict[str, Any]:
    """The module's DOCUMENTATION with its fragments merged, as ansible-doc reads it."""
    out = subprocess.run(
        [str(BIN / "ansible-doc"), "--json", f"virtkit.kvm.{module}"],
        check=True,
        capture_output=True,
        text=True,
        env=_env(),
    )
    return json.loads(out.stdout)[f"virtkit.kvm.{module}"]


def _env(tmp: Path | None = None) -> dict[str, str]:
    home = str(tmp or Path("/tmp/virtkit-ansible-home"))
    return {
        **os.environ,
        "ANSIBLE_CONFIG": "/nonexistent/ansible.cfg",
        "ANSIBLE_HOME": home,
        "ANSIBLE_LOCAL_TEMP": f"{home}/tmp",
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTION.parent.parent.parent),
        "ANSIBLE_NOCOLOR": "1",
    }


def test_every_module_has_a_task_and_the_task_a_module() -> None:
    assert set(MODULES) == set(TASKS)


def _compare(options: dict[str, Any], spec: dict[str, Any], where: str) -> None:
    assert set(options) == set(spec), where
    for name, arg in spec.items():
        doc = options[name]
        here = f"{where}.{name}"
        assert doc["type"] == arg.get("type", "str"), here
        assert bool(doc.get("required", False)) == bool(arg.get("required", False)), here
        assert doc.get("choices") == arg.get("choices"), here
        assert doc.get("default") == arg.get("default"), here
        assert doc.get("elements") == arg.get("elements"), here
        assert doc["description"], here
        if "options" in arg:
            _compare(doc["suboptions"], arg["options"], here)


@pytest.mark.parametrize("module", MODULES)
def test_documented_options_are_the_argument_spec(module: str) -> None:
    doc = _doc(module)
    spec = _argspec(module)
    _compare(doc["doc"]["options"], spec["argument_spec"], module)
    assert spec["supports_check_mode"] is True
    assert doc["doc"]["attributes"]["check_mode"]["support"] == "full"
    assert doc["examples"].strip() and doc["return"] is not None


def _choices(module: str, option: str) -> list[str]:
    return _argspec(module)["argument_spec"][option]["choices"]


def test_choices_are_the_models_values() -> None:
    values = lambda enum: [m.value for m in enum]  # noqa: E731
    assert _choices("vm", "state") == values(DesiredState)
    assert _choices("snapshot", "kind") == values(virtkit.SnapshotKind)
    assert _choices("disk", "format") == values(virtkit.DiskFormat) == _choices("image", "format")
    assert _choices("disk", "bus") == values(virtkit.DiskBus)
    assert _choices("disk", "kind") == values(virtkit.DiskKind)
    assert _choices("disk", "cache") == values(virtkit.DiskCache)
    assert _choices("migrate", "mode") == values(virtkit.MigrationMode)
    assert _choices("image", "preallocation") == list(typing.get_args(Preallocation))
    disk = _argspec("disk")["argument_spec"]
    fields = {f.name for f in dataclasses.fields(virtkit.DiskSpec)}
    assert set(DISK_OPTIONS) <= set(disk) and set(DISK_OPTIONS) <= fields


def test_ssh_options_are_the_ssh_config() -> None:
    ssh = _argspec("vm")["argument_spec"]["ssh"]["options"]
    fields = {f.name: f for f in dataclasses.fields(SSHConfig)}
    assert set(ssh) == set(fields)
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        assert bool(ssh[name].get("required")) == required, name
        if not required:
            assert ssh[name]["default"] == f.default, name


def _play(tmp_path: Path, tasks: list[dict[str, Any]], *args: str) -> tuple[int, list[dict[str, Any]], str]:
    """Run ``tasks`` in a real ansible-playbook on localhost; its exit code, JSON lines and output."""
    book = tmp_path / "play.yml"
    play = {
        "hosts": "localhost",
        "gather_facts": False,
        "vars": {"ansible_python_interpreter": sys.executable},
        "tasks": tasks,
    }
    book.write_text(yaml.safe_dump([play]))
    lines = tmp_path / "out.jsonl"
    lines.unlink(missing_ok=True)
    env = {
        **_env(tmp_path / "home"),
        "ANSIBLE_CALLBACKS_ENABLED": "virtkit.kvm.jsonl",
        "VIRTKIT_JSONL_PATH": str(lines),
    }
    done = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(book), *args],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    records = [json.loads(line) for line in lines.read_text().splitlines()] if lines.exists() else []
    return done.returncode, records, done.stdout + done.stderr


def test_a_real_playbook_changes_once_checks_and_diffs(tmp_path: Path, storage: Path) -> None:
    image = storage / "disk.vhd"
    task = {
        "name": "a VHD",
        "virtkit.kvm.image": {"path": str(image), "format": "vhd", "size": "4MiB", "storage_roots": [str(storage)]},
    }
    rc, records, out = _play(tmp_path, [task], "--check", "--diff")
    assert rc == 0, out
    assert records[0]["result"]["changed"] is True and not image.exists()
    assert records[-1]["stats"]["localhost"]["changed"] == 1
    assert "+++ after: " in out and '"format": "vhd"' in out

    rc, records, out = _play(tmp_path, [task], "--diff")
    assert rc == 0, out
    assert records[0]["result"]["image"]["format"] == "vhd" and image.exists()
    assert records[0]["result"]["diff"]["after"]["virtual_size"] >= 4 << 20

    rc, records, out = _play(tmp_path, [task])
    assert rc == 0, out
    assert records[-1]["stats"]["localhost"]["changed"] == 0


def test_a_real_playbook_refuses_bad_options_naming_them(tmp_path: Path, storage: Path) -> None:
    tasks = [
        {"virtkit.kvm.image": {"path": str(storage / "a.qcow2"), "size": "lots", "storage_roots": [str(storage)]}},
    ]
    rc, records, out = _play(tmp_path, tasks)
    assert rc == 2, out
    assert records[0]["status"] == "failed" and records[0]["result"]["field"] == "size"
    assert list(storage.iterdir()) == []
    rc, records, out = _play(tmp_path, [{"virtkit.kvm.vm": {"uri": "test:///default", "name": "x", "state": "on"}}])
    assert rc == 2 and "state" in records[0]["result"]["msg"], out
    rc, records, out = _play(
        tmp_path, [{"virtkit.kvm.vm": {"uri": "test:///default", "name": "x", "spec": {"memory": "1PB"}}}]
    )
    assert rc == 2 and records[0]["result"]["field"] == "spec.memory", out


def test_vm_info_and_vm_in_check_mode_through_ansible(tmp_path: Path) -> None:
    tasks = [
        {"virtkit.kvm.vm_info": {"uri": "test:///default"}, "register": "listing"},
        {"virtkit.kvm.vm": {"uri": "test:///default", "name": "new1", "spec": {"memory": "64MiB"}}, "check_mode": True},
    ]
    rc, records, out = _play(tmp_path, tasks)
    assert rc == 0, out
    assert [v["name"] for v in records[0]["result"]["vms"]] == ["test"]
    assert records[1]["result"]["changed"] is True and records[1]["result"]["plan"][0].startswith("+ define new1")


def test_inventory_lists_the_vms_by_host_and_state(tmp_path: Path) -> None:
    source = tmp_path / "lab.virtkit.yml"
    source.write_text(yaml.safe_dump({"plugin": "virtkit.kvm.vms", "hosts": {"h1": {"uri": "test:///default"}}}))
    env = {**_env(tmp_path / "home"), "ANSIBLE_INVENTORY_ENABLED": "virtkit.kvm.vms"}
    done = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(source), "--list"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    hostvars = {k: _trusted(v) for k, v in listing["_meta"]["hostvars"]["test"].items()}
    assert hostvars["virtkit_state"] == "running" and hostvars["virtkit_host"] == "h1"
    assert hostvars["virtkit_uri"] == "test:///default" and len(hostvars["virtkit_uuid"]) == 36
    assert "test" in listing["virtkit_h1"]["hosts"] and "test" in listing["state_running"]["hosts"]


def _trusted(value: Any) -> Any:
    """A value as ansible-inventory --list prints it, without the mark it puts on text from plugins."""
    return value["__ansible_unsafe"] if isinstance(value, dict) and "__ansible_unsafe" in value else value
