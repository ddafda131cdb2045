"""The pure parts of migration: tuning, the downtime ramp, the completion timeout, the libvirt flags and parameters,
and the registry that refuses a second migration or a lifecycle call on a VM being moved."""

from __future__ import annotations

import itertools
import shutil
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

import virtkit
from virtkit import Compression, InvalidSpec, MigrationMode, MigrationStrategy, MigrationTuning, TimeoutAction
from virtkit.backends.base.migration import MigrationRequest
from virtkit.backends.libvirt.design import memory_tracking_sound
from virtkit.backends.libvirt.migration import build_flags, build_params, job_stats, retarget_disks
from virtkit.errors import BackendError, Conflict
from virtkit.models.migration import MIN_STEP_INTERVAL, completion_timeout, downtime_schedule
from virtkit.models.vm import Accel
from virtkit.ops.migration import inflight as _inflight
from virtkit.ops.migration.modes import choose_strategy
from virtkit.units import GiB, MiB

DATA = Path(__file__).parent / "data"

# -- the downtime ramp -------------------------------------------------------------------------------------------


def test_ramp_starts_low_and_ends_at_the_ceiling() -> None:
    tuning = MigrationTuning(downtime_start=50, downtime_max=500, downtime_steps=10, downtime_delay=20)
    ramp = downtime_schedule(GiB, tuning)
    assert ramp[0] == (0.0, 50)
    assert ramp[-1] == (200.0, 500)
    assert len(ramp) == 11
    times = [t for t, _ in ramp]
    values = [v for _, v in ramp]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert values == sorted(values)
    assert [b - a for a, b in itertools.pairwise(values)] == [45] * 10


def test_ramp_interval_scales_with_the_data_to_move() -> None:
    tuning = MigrationTuning(downtime_delay=20)
    one = downtime_schedule(GiB, tuning)
    four = downtime_schedule(4 * GiB, tuning)
    assert four[1][0] == 4 * one[1][0] == 80.0
    assert [v for _, v in four] == [v for _, v in one]  # the same steps, only later


def test_ramp_steps_are_never_closer_than_the_minimum() -> None:
    ramp = downtime_schedule(16 * MiB, MigrationTuning(downtime_delay=20))
    assert ramp[1][0] == MIN_STEP_INTERVAL


def test_ramp_with_equal_start_and_ceiling_is_flat() -> None:
    ramp = downtime_schedule(GiB, MigrationTuning(downtime_start=300, downtime_max=300, downtime_steps=3))
    assert [v for _, v in ramp] == [300, 300, 300, 300]


# -- the completion timeout --------------------------------------------------------------------------------------


def test_timeout_scales_with_data_and_has_a_floor() -> None:
    tuning = MigrationTuning(timeout_per_gib=300, timeout_min=60)
    assert completion_timeout(2 * GiB, tuning) == 600
    assert completion_timeout(GiB // 2, tuning) == 150
    assert completion_timeout(64 * MiB, tuning) == 60  # the floor
    assert completion_timeout(GiB, MigrationTuning(timeout_per_gib=None)) is None


def test_default_timeout_gives_an_idle_guest_plenty_of_time() -> None:
    # A 512 MiB lab guest moves in about 2 s; its default timeout is minutes, not seconds.
    timeout = completion_timeout(512 * MiB, MigrationTuning())
    assert timeout is not None and timeout >= 60


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("tuning.bandwidth", {"bandwidth": 0}),
        ("tuning.bandwidth", {"bandwidth": 1.5}),
        ("tuning.bandwidth", {"bandwidth": True}),
        ("tuning.downtime_start", {"downtime_start": 0}),
        ("tuning.downtime_max", {"downtime_start": 600, "downtime_max": 500}),
        ("tuning.downtime_steps", {"downtime_steps": 0}),
        ("tuning.downtime_delay", {"downtime_delay": float("nan")}),
        ("tuning.timeout_per_gib", {"timeout_per_gib": -1}),
        ("tuning.timeout_min", {"timeout_min": -1}),
        ("tuning.throttle_initial", {"throttle_initial": 0}),
        ("tuning.throttle_increment", {"throttle_increment": 100}),
        ("tuning.auto_converge", {"auto_converge": "yes"}),
        ("tuning.strategy", {"strategy": "fast"}),
        ("tuning.strategy", {"strategy": "postcopy", "postcopy": False}),
        ("tuning.compression", {"compression": "zstd"}),
        ("tuning.compression", {"compression": "xbzrle", "connections": 2}),
        ("tuning.connections", {"connections": 0}),
        ("tuning.xbzrle_cache", {"xbzrle_cache": 0}),
        ("tuning.stall_passes", {"stall_passes": 0}),
        ("tuning.postcopy", {"postcopy": 1}),
        ("tuning.on_timeout", {"on_timeout": "panic"}),
    ],
)
def test_bad_tuning_is_refused_naming_the_field(field: str, kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidSpec) as err:
        MigrationTuning(**kwargs)  # type: ignore[arg-type]
    assert err.value.field == field.removeprefix("tuning.")
    with pytest.raises(InvalidSpec) as err:
        MigrationTuning.from_dict(kwargs, "tuning")
    assert err.value.field == field


def test_tuning_takes_plain_strings_for_its_choices() -> None:
    tuning = MigrationTuning(strategy="stopped", compression="none", on_timeout="abort")  # type: ignore[arg-type]
    assert tuning.strategy is MigrationStrategy.STOPPED
    assert tuning.compression is Compression.NONE
    assert tuning.on_timeout is TimeoutAction.ABORT


def test_the_defaults_finish_a_busy_guest() -> None:
    tuning = MigrationTuning()
    assert tuning.strategy is MigrationStrategy.AUTO
    assert tuning.auto_converge and tuning.postcopy and tuning.on_timeout is TimeoutAction.FORCE
    assert tuning.uses_xbzrle and tuning.postcopy_usable


def test_parallel_connections_turn_compression_and_postcopy_off() -> None:
    tuning = MigrationTuning(connections=4)
    assert not tuning.uses_xbzrle  # auto: XBZRLE only on one connection
    assert not tuning.postcopy_usable  # QEMU before 8.1 refuses post-copy with multifd


@pytest.mark.parametrize(
    ("memory", "mib"),
    [(128 * MiB, 64), (256 * MiB, 64), (512 * MiB, 128), (1536 * MiB, 256), (3 * GiB, 512), (64 * GiB, 1024)],
)
def test_xbzrle_cache_is_a_quarter_of_memory_a_power_of_two_within_bounds(memory: int, mib: int) -> None:
    assert MigrationTuning().cache_size(memory) == mib * MiB
    assert MigrationTuning(xbzrle_cache=100).cache_size(memory) == 100 * MiB


def test_tcg_before_qemu_9_does_not_track_dirty_memory_soundly() -> None:
    assert not memory_tracking_sound(Accel.TCG, 7_002_000)
    assert memory_tracking_sound(Accel.TCG, 9_000_000)
    assert memory_tracking_sound(Accel.KVM, 7_002_000)


@pytest.mark.parametrize(
    ("kwargs", "sound", "chosen", "noted"),
    [
        ({}, True, MigrationStrategy.PRECOPY, False),
        ({}, False, MigrationStrategy.POSTCOPY, True),
        ({"postcopy": False}, False, MigrationStrategy.STOPPED, True),
        ({"connections": 2}, False, MigrationStrategy.STOPPED, True),
        ({"strategy": "precopy"}, False, MigrationStrategy.PRECOPY, False),
        ({"strategy": "stopped"}, True, MigrationStrategy.STOPPED, False),
    ],
)
def test_auto_strategy_avoids_pre_copy_where_tracking_is_unsound(
    kwargs: dict[str, object], sound: bool, chosen: MigrationStrategy, noted: bool
) -> None:
    strategy, note = choose_strategy(MigrationTuning.from_dict(kwargs, "tuning"), sound=sound)
    assert strategy is chosen
    assert (note is not None) == noted


# -- libvirt flags and parameters --------------------------------------------------------------------------------

_BASE = libvirt.VIR_MIGRATE_PEER2PEER | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE


def test_live_flags_move_the_definition_and_leave_the_source() -> None:
    flags = build_flags(MigrationRequest(live=True))
    assert flags == _BASE | libvirt.VIR_MIGRATE_LIVE


def test_unsafe_only_when_the_caller_vouches_for_shared_storage() -> None:
    assert not build_flags(MigrationRequest(live=True)) & libvirt.VIR_MIGRATE_UNSAFE
    assert build_flags(MigrationRequest(live=True, unsafe=True)) & libvirt.VIR_MIGRATE_UNSAFE


def test_convergence_flags() -> None:
    flags = build_flags(MigrationRequest(live=True, auto_converge=True))
    assert flags & libvirt.VIR_MIGRATE_AUTO_CONVERGE and not flags & libvirt.VIR_MIGRATE_POSTCOPY
    flags = build_flags(MigrationRequest(live=True, postcopy=True))
    assert flags & libvirt.VIR_MIGRATE_POSTCOPY and not flags & libvirt.VIR_MIGRATE_AUTO_CONVERGE
    none = build_flags(MigrationRequest(live=True))
    assert not none & (libvirt.VIR_MIGRATE_AUTO_CONVERGE | libvirt.VIR_MIGRATE_POSTCOPY)


def test_auto_converge_throttle_parameters_only_with_auto_converge() -> None:
    plan = MigrationRequest(live=True, auto_converge=True, throttle=(40, 20))
    params = build_params(plan)
    assert params[libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INITIAL] == 40
    assert params[libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INCREMENT] == 20
    assert build_params(MigrationRequest(live=True, postcopy=True, throttle=(40, 20))) == {}


def test_compression_and_parallel_connections() -> None:
    plan = MigrationRequest(live=True, xbzrle_cache=64 * MiB)
    assert build_flags(plan) & libvirt.VIR_MIGRATE_COMPRESSED
    params = build_params(plan)
    assert params[libvirt.VIR_MIGRATE_PARAM_COMPRESSION] == "xbzrle"
    assert params[libvirt.VIR_MIGRATE_PARAM_COMPRESSION_XBZRLE_CACHE] == 64 * MiB
    plan = MigrationRequest(live=True, connections=4)
    assert build_flags(plan) & libvirt.VIR_MIGRATE_PARALLEL
    assert build_params(plan) == {libvirt.VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS: 4}
    assert not build_flags(MigrationRequest(live=True)) & (
        libvirt.VIR_MIGRATE_PARALLEL | libvirt.VIR_MIGRATE_COMPRESSED
    )


def test_postcopy_bandwidth_and_resume() -> None:
    plan = MigrationRequest(live=True, postcopy=True, bandwidth=1, bandwidth_postcopy=50)
    params = build_params(plan)
    assert params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] == 1
    assert params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY] == 50
    assert not build_flags(plan) & libvirt.VIR_MIGRATE_POSTCOPY_RESUME
    assert build_flags(plan, resume=True) & libvirt.VIR_MIGRATE_POSTCOPY_RESUME


def test_storage_copy_flags_and_parameters() -> None:
    plan = MigrationRequest(live=True, copy_disks=("vda", "sdb"), bandwidth=5)
    assert build_flags(plan) & libvirt.VIR_MIGRATE_NON_SHARED_DISK
    params = build_params(plan, dest_xml="<domain/>", persist_xml="<domain/>")
    assert params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] == ["vda", "sdb"]
    assert params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] == 5
    assert params[libvirt.VIR_MIGRATE_PARAM_DEST_XML] == "<domain/>"
    assert libvirt.VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY not in params


def test_offline_flags_carry_no_live_options() -> None:
    flags = build_flags(MigrationRequest(live=False, auto_converge=True, postcopy=True, copy_disks=("vda",)))
    assert flags == _BASE | libvirt.VIR_MIGRATE_OFFLINE
    assert build_params(MigrationRequest(live=False)) == {}


def test_retarget_disks_changes_only_the_named_disks() -> None:
    xml = (
        "<domain><name>a</name><devices>"
        "<disk type='file' device='disk'><source file='/s/a.qcow2'/><target dev='vda'/></disk>"
        "<disk type='file' device='cdrom'><source file='/s/a.iso'/><target dev='hdc'/></disk>"
        "</devices></domain>"
    )
    out = ET.fromstring(retarget_disks(xml, {"vda": Path("/d/a.qcow2")}))
    assert [s.get("file") for s in out.iter("source")] == ["/d/a.qcow2", "/s/a.iso"]
    with pytest.raises(BackendError, match="vdz"):
        retarget_disks(xml, {"vdz": Path("/d/x")})


def test_job_stats_in_neutral_units() -> None:
    raw = {
        "type": 2,
        "data_total": 100,
        "data_processed": 40,
        "data_remaining": 60,
        "memory_bps": 1000,
        "disk_bps": 500,
        "memory_dirty_rate": 3,
        "memory_page_size": 4096,
        "memory_iteration": 2,
        "downtime": 38,
        "time_elapsed": 1500,
        "auto_converge_throttle": 30,
    }
    stats = job_stats(raw)
    assert (stats.data_total, stats.data_processed, stats.data_remaining) == (100, 40, 60)
    assert stats.rate == 1500 and stats.dirty_rate == 3 * 4096 and stats.iteration == 2
    assert stats.downtime == 0.038 and stats.elapsed == 1.5 and stats.throttle == 30
    assert job_stats({}).downtime is None and job_stats({}).throttle is None


# -- the registry: one migration at a time, no lifecycle call meanwhile -----------------------------------------


@pytest.fixture
def two_hosts(tmp_path: Path, storage: Path) -> Iterator[tuple[virtkit.Host, virtkit.Host]]:
    """Two test:// hosts, each from its own copy of the project's node XML."""
    hosts = []
    for name in ("a", "b"):
        node = tmp_path / f"node-{name}.xml"
        shutil.copy(DATA / "node.xml", node)
        hosts.append(virtkit.connect(f"test://{node}", storage_roots=[storage, Path("/var/lib/virtkit")]))
    yield hosts[0], hosts[1]
    for host in hosts:
        host.close()


def test_a_vm_being_moved_refuses_lifecycle_calls_and_a_second_move(
    two_hosts: tuple[virtkit.Host, virtkit.Host],
) -> None:
    a, b = two_hosts
    vm = a.get("legacy1")
    uuid = vm.info().uuid
    with _inflight.claim(uuid, vm.name, "live migration to test"):
        for call in (vm.start, vm.destroy, vm.pause, vm.resume, vm.reboot, vm.shutdown, vm.delete, vm.managed_save):
            with pytest.raises(Conflict, match="being moved"):
                call()
        with pytest.raises(Conflict, match="being moved already"):
            virtkit.migrate(vm, b)
        with pytest.raises(Conflict, match="being moved already"):
            vm.migrate(b, check=True)
    assert _inflight.migrating(uuid) is None
    assert vm.destroy().changed  # released: lifecycle calls work again


def test_the_claim_is_released_when_the_migration_fails(two_hosts: tuple[virtkit.Host, virtkit.Host]) -> None:
    a, _ = two_hosts
    vm = a.get("legacy1")
    uuid = vm.info().uuid
    with pytest.raises(RuntimeError), _inflight.claim(uuid, vm.name, "test"):
        raise RuntimeError("boom")
    assert _inflight.migrating(uuid) is None


def test_claims_are_per_vm_and_thread_safe() -> None:
    won: list[str] = []
    lost: list[str] = []
    barrier = threading.Barrier(8)
    held = threading.Event()

    def contender(i: int) -> None:
        barrier.wait()
        try:
            with _inflight.claim("uuid-1", "vm1", f"thread {i}"):
                won.append(str(i))
                held.wait(2)
        except Conflict:
            lost.append(str(i))

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    while len(won) + len(lost) < 8 and len(lost) < 7:
        threading.Event().wait(0.01)
    with _inflight.claim("uuid-2", "vm2", "another VM"):
        pass  # another VM is not held up
    held.set()
    for thread in threads:
        thread.join()
    assert len(won) == 1 and len(lost) == 7


def test_bad_arguments_are_refused_before_anything(two_hosts: tuple[virtkit.Host, virtkit.Host]) -> None:
    a, b = two_hosts
    vm = a.get("legacy1")
    with pytest.raises(InvalidSpec) as err:
        virtkit.migrate(vm, a)
    assert err.value.field == "to"
    with pytest.raises(InvalidSpec) as err:
        virtkit.migrate(vm, b, mode="teleport")
    assert err.value.field == "mode"
    with pytest.raises(InvalidSpec) as err:
        virtkit.migrate(vm, b, shared_storage=["relative/dir"])
    assert err.value.field == "shared_storage[0]"
    with pytest.raises(InvalidSpec) as err:
        virtkit.migrate(vm, b, tuning="fast")  # type: ignore[arg-type]
    assert err.value.field == "tuning"
    assert MigrationMode("live-storage") is MigrationMode.LIVE_STORAGE


# -- the command line --------------------------------------------------------------------------------------------


def test_cli_migrate_refuses_with_one_line_and_changes_nothing(two_hosts: tuple[virtkit.Host, virtkit.Host]) -> None:
    from click.testing import CliRunner

    from virtkit.cli.main import cli

    a, b = two_hosts
    runner = CliRunner()
    assert "--mode" in runner.invoke(cli, ["migrate", "--help"]).output
    same = runner.invoke(cli, ["migrate", "legacy1", "--from", a.uri, "--to", a.uri])
    assert same.exit_code == 1 and "InvalidSpec: to:" in same.output
    running = runner.invoke(cli, ["migrate", "legacy1", "--from", a.uri, "--to", b.uri, "--mode", "offline"])
    assert running.exit_code == 1 and "Conflict" in running.output and "shut it down" in running.output
    bad = runner.invoke(cli, ["migrate", "legacy1", "--from", a.uri, "--to", b.uri, "--max-downtime", "0"])
    assert bad.exit_code == 1 and "downtime_start" in bad.output
    assert a.get("legacy1").state is virtkit.VMState.RUNNING
