"""stop_vms: each running VM of a host stopped as its on_host_stop (Hyper-V's AutomaticStopAction) says, on libvirt's
test driver; check mode changes nothing, bad arguments change nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import virtkit
from virtkit import InvalidSpec, VMState, hyperv
from virtkit.cli.main import cli


def _three(host: virtkit.Host) -> None:
    for name, action in (("keep", "Save"), ("down", "ShutDown"), ("cut", "TurnOff")):
        hyperv.new_vm(host, {"Name": name, "MemoryStartupBytes": "64MB", "AutomaticStopAction": action})
        hyperv.start_vm(host, name)
    hyperv.new_vm(host, {"Name": "idle", "MemoryStartupBytes": "64MB"})  # off: left alone


def test_each_running_vm_gets_its_action(host: virtkit.Host) -> None:
    _three(host)
    seen: list[str] = []
    result = virtkit.stop_vms(host, timeout=5, on_done=lambda outcome: seen.append(outcome.name))
    by_name = {v.name: v for v in result.vms}
    assert sorted(by_name) == sorted(seen) == sorted(["keep", "down", "cut", "legacy1"])
    assert (by_name["keep"].done, host.get("keep").state) == ("save", VMState.SAVED)
    assert (by_name["down"].done, host.get("down").state) == ("shutdown", VMState.STOPPED)
    assert (by_name["cut"].done, host.get("cut").state) == ("power_off", VMState.STOPPED)
    assert host.get("idle").state is VMState.STOPPED and "idle" not in by_name
    assert not result.failed and not result.check
    assert result.as_dict()["vms"][0]["name"] in by_name
    # Started again, the saved VM resumes from its state (Hyper-V's AutomaticStartAction then finds it Saved).
    assert hyperv.get_vm(host, "keep").state is hyperv.HyperVState.SAVED
    assert host.get("keep").start().after.state is VMState.RUNNING  # type: ignore[union-attr]
    # A second run finds nothing running but what was just started.
    assert [v.name for v in virtkit.stop_vms(host, timeout=5).vms] == ["keep"]


def test_check_mode_reports_and_stops_nothing(host: virtkit.Host) -> None:
    _three(host)
    result = virtkit.stop_vms(host, check=True)
    assert result.check and all(v.change is not None and v.change.check for v in result.vms)
    assert {v.name: v.done for v in result.vms}["keep"] == "save"
    assert all(host.get(n).state is VMState.RUNNING for n in ("keep", "down", "cut"))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": "60"}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"max_concurrent": 0}, "max_concurrent"),
        ({"max_concurrent": 2.5}, "max_concurrent"),
        ({"check": "yes"}, "check"),
        ({"on_done": 3}, "on_done"),
    ],
)
def test_bad_arguments_stop_nothing(host: virtkit.Host, kwargs: dict[str, object], field: str) -> None:
    _three(host)
    with pytest.raises(InvalidSpec) as err:
        virtkit.stop_vms(host, **kwargs)  # type: ignore[arg-type]
    assert err.value.field == field
    assert all(host.get(n).state is VMState.RUNNING for n in ("keep", "down", "cut"))


def test_stop_vms_on_the_command_line(tmp_path: Path) -> None:
    node = tmp_path / "node.xml"
    shutil.copy(Path(__file__).parent / "data" / "node.xml", node)
    result = CliRunner().invoke(cli, ["stop-vms", "--uri", f"test://{node}", "--check", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["check"] is True and [v["name"] for v in data["vms"]] == ["legacy1"]
    assert data["vms"][0]["done"] == "save"
