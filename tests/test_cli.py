"""The CLI against libvirt's test:// driver (a copy of the project's node XML per test)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from virtkit.cli.main import cli

DATA = Path(__file__).parent / "data"


def _uri(tmp_path: Path) -> str:
    node = tmp_path / "node.xml"
    shutil.copy(DATA / "node.xml", node)
    return f"test://{node}"


def test_schema_is_json() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.output)["properties"]["name"]["type"] == "string"


def test_vm_list_and_lifecycle(tmp_path: Path) -> None:
    uri = _uri(tmp_path)
    runner = CliRunner()
    listing = runner.invoke(cli, ["vm", "list", "--uri", uri])
    assert listing.exit_code == 0, listing.output
    assert "legacy1" in listing.output
    paused = runner.invoke(cli, ["vm", "pause", "legacy1", "--uri", uri, "--json"])
    assert paused.exit_code == 0, paused.output
    change = json.loads(paused.output)
    assert change["changed"] is True and change["after"]["state"] == "paused"
    # Each command opens the test driver afresh from the node file, where legacy1 runs: starting it is a no-op.
    again = runner.invoke(cli, ["vm", "start", "legacy1", "--uri", uri])
    assert again.exit_code == 0 and "ok: start legacy1" in again.output


def test_errors_are_one_line_and_exit_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["vm", "start", "ghost", "--uri", _uri(tmp_path)])
    assert result.exit_code == 1
    assert "NotFound" in result.output
    assert "Traceback" not in result.output


def test_create_check_mode_from_spec_file(tmp_path: Path) -> None:
    spec = tmp_path / "vm.yml"
    spec.write_text("name: web9\nmemory: 256MiB\n")
    result = CliRunner().invoke(cli, ["vm", "create", str(spec), "--uri", _uri(tmp_path), "--check", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["check"] is True and out["before"] is None and out["after"]["name"] == "web9"
