"""``virtkit apply`` on libvirt's process-wide test:///default driver: plan, apply, nothing left to do; exit codes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

import virtkit
from virtkit.cli.main import cli


@pytest.fixture
def name() -> Iterator[str]:
    """A VM name for this test alone, removed at the end. test:///default is shared by the process while a
    connection to it is open: this one keeps it open between the commands."""
    made = f"apply-{uuid.uuid4().hex[:8]}"
    with virtkit.connect("test:///default") as host:
        yield made
        if host.exists(made):
            host.get(made).delete(force=True)


def _site(tmp_path: Path, storage: Path, name: str, **vm: object) -> Path:
    spec = {"memory": "256MiB", "disks": [{"path": str(storage / f"{name}.qcow2"), "size": "16MiB"}]}
    site = {
        "hosts": {"h1": {"uri": "test:///default", "storage_roots": [str(storage)]}},
        "vms": [{"name": name, "host": "h1", "spec": spec, **vm}],
    }
    path = tmp_path / "site.yml"
    path.write_text(yaml.safe_dump(site))
    return path


def _apply(*args: str) -> Result:
    return CliRunner().invoke(cli, ["apply", *args])


def test_check_then_apply_then_nothing(tmp_path: Path, storage: Path, name: str) -> None:
    site = _site(tmp_path, storage, name)
    check = _apply(str(site), "--check", "--diff")
    assert check.exit_code == 2, check.output
    assert f"+ define {name} on h1 (1 vCPU, 256MiB, 1 disk)" in check.output
    assert f"~ {name}: start on h1" in check.output and "Plan: 2 steps." in check.output
    assert f"+++ after: {name}" in check.output and "+state: running" in check.output
    with virtkit.connect("test:///default") as host:
        assert not host.exists(name)

    made = _apply(str(site))
    assert made.exit_code == 2, made.output
    assert "Applied: 2 done." in made.output
    with virtkit.connect("test:///default") as host:
        assert host.get(name).state is virtkit.VMState.RUNNING

    again = _apply(str(site), "--json")
    assert again.exit_code == 0, again.output
    data = json.loads(again.stdout)
    assert data["changed"] is False and data["plan"] == [] and data["exit_code"] == 0


def test_stopping_is_reported_as_json(tmp_path: Path, storage: Path, name: str) -> None:
    assert _apply(str(_site(tmp_path, storage, name))).exit_code == 2
    result = _apply(str(_site(tmp_path, storage, name, state="stopped")), "--json")
    assert result.exit_code == 2, result.output
    data = json.loads(result.stdout)
    assert [(r["action"], r["status"]) for r in data["results"]] == [("stop", "done")]
    assert data["diffs"][0]["before"]["state"] == "running" and data["diffs"][0]["after"]["state"] == "stopped"


def test_a_bad_site_file_names_the_file_and_the_field(tmp_path: Path, storage: Path, name: str) -> None:
    site = _site(tmp_path, storage, name, host="h9")
    result = _apply(str(site))
    assert result.exit_code == 1
    assert str(site) in result.output and "vms[0].host: 'h9' is not a host of this site" in result.output


def test_usage_errors_exit_1_not_2(tmp_path: Path) -> None:
    assert _apply(str(tmp_path / "missing.yml")).exit_code == 1
    assert _apply("--bogus").exit_code == 1
