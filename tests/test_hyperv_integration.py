"""Integration services on libvirt's test driver: which are enabled, switching them (while the VM is off), and the
refusals that need no guest (the agent at work is proven on real daemons: integration/test_agent_services.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import virtkit
from virtkit import Conflict, GuestAgentUnavailable, InvalidSpec, hyperv
from virtkit.models.agent import GuestInfo


def test_get_enable_disable_follow_the_spec(host: virtkit.Host) -> None:
    hyperv.new_vm(host, {"Name": "ic1", "MemoryStartupBytes": "64MB"})
    services = {s.name: s for s in hyperv.get_vm_integration_service(host, "ic1")}
    assert set(services) == {
        "Heartbeat", "Shutdown", "Time Synchronization", "Key-Value Pair Exchange", "Guest Service Interface", "VSS",
    }  # fmt: skip
    assert not services["Guest Service Interface"].enabled and services["Heartbeat"].enabled
    assert services["Heartbeat"].primary_status_description == "No Contact"  # the VM is off
    assert services["Guest Service Interface"].to_dict()["PrimaryStatusDescription"] is None

    assert hyperv.enable_vm_integration_service(host, "ic1", "Guest Service Interface", what_if=True).check
    assert not hyperv.get_vm_integration_service(host, "ic1", "guest service interface")[0].enabled
    assert hyperv.enable_vm_integration_service(host, "ic1", "Guest Service Interface").changed
    assert hyperv.get_vm_integration_service(host, "ic1", "Guest Service Interface")[0].enabled
    assert not hyperv.enable_vm_integration_service(host, "ic1", "Guest Service Interface").changed  # idempotent
    assert hyperv.disable_vm_integration_service(host, "ic1", "VSS").changed
    spec = host.get("ic1").spec()
    assert spec.guest_agent and virtkit.models.vm.AgentService.FS_FREEZE not in spec.agent_services


def test_services_switch_while_the_vm_runs_but_the_first_needs_it_off(host: virtkit.Host) -> None:
    hyperv.new_vm(host, {"Name": "ic2", "MemoryStartupBytes": "64MB"})
    hyperv.start_vm(host, "ic2")
    assert hyperv.disable_vm_integration_service(host, "ic2", "Heartbeat").changed
    assert not hyperv.get_vm_integration_service(host, "ic2", "Heartbeat")[0].enabled
    vm = host.get("ic2")
    assert vm.state is virtkit.VMState.RUNNING  # no restart
    # It runs, and the test driver has no agent: every enabled service reads Lost Communication.
    assert {s.primary_status_description for s in hyperv.get_vm_integration_service(host, "ic2")} == {
        "Lost Communication",
        None,
    }
    host.create({"name": "bare", "memory": "64MiB"}, start=True)  # no agent channel at all
    before = host.get("bare").spec()
    with pytest.raises(Conflict, match="adds the guest agent channel"):
        hyperv.enable_vm_integration_service(host, "bare", "Heartbeat")
    assert host.get("bare").spec() == before


def test_set_vm_changes_checkpoint_type_stop_action_and_notes_while_running(host: virtkit.Host) -> None:
    hyperv.new_vm(host, {"Name": "sv1", "MemoryStartupBytes": "64MB"})
    hyperv.start_vm(host, "sv1")
    assert hyperv.set_vm(host, "sv1", checkpoint_type="Standard", what_if=True).check
    assert hyperv.get_vm(host, "sv1").checkpoint_type is hyperv.CheckpointType.PRODUCTION
    change = hyperv.set_vm(host, "sv1", checkpoint_type="standard", automatic_stop_action="TurnOff", notes="web\ntier")
    assert change.changed
    vm = hyperv.get_vm(host, "sv1")
    assert (vm.checkpoint_type, vm.automatic_stop_action, vm.notes) == ("Standard", "TurnOff", "web\ntier")
    assert vm.state is hyperv.HyperVState.RUNNING
    assert not hyperv.set_vm(host, "sv1", checkpoint_type="Standard").changed
    assert hyperv.set_vm(host, "sv1", notes=None).after.description is None  # type: ignore[union-attr]
    for kwargs, field in (
        ({"checkpoint_type": "Snapshot"}, "CheckpointType"),
        ({"automatic_stop_action": 3}, "AutomaticStopAction"),
        ({"notes": "bad\x00note"}, "Notes"),
        ({"what_if": "yes"}, "what_if"),
    ):
        with pytest.raises(InvalidSpec) as err:
            hyperv.set_vm(host, "sv1", **kwargs)  # type: ignore[arg-type]
        assert err.value.field == field


@pytest.mark.parametrize("name", ["Backup", "", None, 5, "Heartbeat "])
def test_an_unknown_service_is_named(host: virtkit.Host, name: object) -> None:
    hyperv.new_vm(host, {"Name": "ic3", "MemoryStartupBytes": "64MB"})
    calls = [hyperv.enable_vm_integration_service, hyperv.disable_vm_integration_service]
    if name is not None:  # Get-VMIntegrationService without a name lists them all
        calls.append(hyperv.get_vm_integration_service)  # type: ignore[arg-type]
    for call in calls:
        with pytest.raises(InvalidSpec) as err:
            call(host, "ic3", name)  # type: ignore[arg-type]
        assert err.value.field == "Name" and "Heartbeat" in err.value.reason


def test_copy_vm_file_and_kvp_need_their_service_a_running_vm_and_good_paths(
    host: virtkit.Host, storage: Path, tmp_path: Path
) -> None:
    hyperv.new_vm(host, {"Name": "ic4", "MemoryStartupBytes": "64MB"})
    source = storage / "payload.txt"
    source.write_text("hello")
    with pytest.raises(Conflict, match="Guest Service Interface integration service of ic4 is disabled"):
        hyperv.copy_vm_file(host, "ic4", source, "/tmp/payload.txt")
    hyperv.enable_vm_integration_service(host, "ic4", "Guest Service Interface")
    with pytest.raises(GuestAgentUnavailable, match="stopped"):
        hyperv.copy_vm_file(host, "ic4", source, "/tmp/payload.txt")
    with pytest.raises(GuestAgentUnavailable):
        hyperv.get_vm_kvp(host, "ic4")
    (tmp_path / "outside.txt").write_text("x")
    for src, dest, field in (
        (tmp_path / "outside.txt", "/tmp/x", "SourcePath"),
        (storage / "missing.txt", "/tmp/x", "SourcePath"),
        (source, "relative/path", "DestinationPath"),
        (source, "/tmp/../etc/passwd", "DestinationPath"),
        (source, "/tmp/dir/", "DestinationPath"),
        (source, "/tmp/a\nb", "DestinationPath"),
    ):
        with pytest.raises(InvalidSpec) as err:
            hyperv.copy_vm_file(host, "ic4", src, dest)
        assert err.value.field == field
    with pytest.raises(InvalidSpec) as err:
        hyperv.copy_vm_file(host, "ic4", source, "/tmp/x", file_source="Guest")
    assert err.value.field == "FileSource"
    assert sorted(os.listdir(storage)) == ["payload.txt"]


def test_agent_calls_on_a_vm_without_agent_or_not_running(host: virtkit.Host) -> None:
    host.create({"name": "noagent", "memory": "64MiB"}, start=True)
    vm = host.get("noagent")
    assert vm.agent.ping(1) is False
    with pytest.raises(GuestAgentUnavailable, match="no guest agent channel"):
        vm.agent.info()
    for bad in (0, 301, "5", True, None):
        with pytest.raises(InvalidSpec) as err:
            vm.agent.ping(bad)  # type: ignore[arg-type]
        assert err.value.field == "timeout"
    for bad in (-1, "now", True, 1e12):
        with pytest.raises(InvalidSpec) as err:
            vm.agent.set_time(bad)  # type: ignore[arg-type]
        assert err.value.field == "seconds"


def test_guest_info_reads_libvirts_typed_parameters() -> None:
    info = GuestInfo.from_params(
        {
            "hostname": "web1", "os.id": "debian", "os.pretty-name": "Debian GNU/Linux 12 (bookworm)",
            "os.version-id": "12", "os.kernel-release": "6.1.0-57-cloud-amd64", "os.machine": "x86_64",
            "timezone.name": "UTC", "if.count": 2, "if.0.name": "lo", "if.0.hwaddr": "00:00:00:00:00:00",
            "if.0.addr.count": 1, "if.0.addr.0.addr": "127.0.0.1", "if.0.addr.0.prefix": 8,
            "if.1.name": "eth0", "if.1.hwaddr": "52:54:00:aa:bb:cc", "if.1.addr.count": 2,
            "if.1.addr.0.addr": "192.168.122.5", "if.1.addr.0.prefix": 24,
            "if.1.addr.1.addr": "fe80::1", "if.1.addr.1.prefix": 64,
        }
    )  # fmt: skip
    assert (info.hostname, info.os_name, info.os_version) == ("web1", "Debian GNU/Linux 12 (bookworm)", "12")
    assert info.addresses == ("192.168.122.5", "fe80::1")
    assert info.interfaces[1].addresses == ("192.168.122.5/24", "fe80::1/64")
    assert GuestInfo.from_params({"hostname": "(none)"}).hostname is None
