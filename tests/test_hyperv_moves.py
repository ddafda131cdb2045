"""Move-VM, Set-VMProcessor and Get-VMProcessor on libvirt's test driver: what each changes and refuses, with the
error naming the cmdlet's parameter, and a storage copy planned between hosts whose files are reached through a
HostFiles that is not this machine (the seam SSH uses; a real move over SSH is in integration/test_hyperv_moves.py).

libvirt's test driver cannot compare CPUs or give a baseline: the VMs that move here have the host's own CPU
(``host-model``, which nothing compares), and the baseline is asked for in integration/test_hyperv_moves.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import virtkit
from test_host_files import ROOT, ElsewhereTool
from virtkit import AlreadyExists, Conflict, InvalidSpec, MigrationMode, Unsupported, hyperv
from virtkit.backends.libvirt.host import LibvirtHost

DATA = Path(__file__).parent / "data"


def _vm(host: virtkit.Host, root: Path, name: str, *, start: bool, **extra: object) -> None:
    host.create(
        {"name": name, "memory": "64MiB", "disks": [{"path": str(root / f"{name}.qcow2"), "size": "16MiB"}], **extra},
        start=start,
    )


@pytest.fixture
def hosts(tmp_path: Path, storage: Path) -> Iterator[tuple[virtkit.Host, virtkit.Host]]:
    """Two test:// hosts on this machine: ``a`` with ``mover`` (running, the host's own CPU), ``plain`` (running,
    the default CPU) and ``off`` (stopped); ``b`` empty."""
    made = []
    for name, text in (("a", (DATA / "node.xml").read_text()), ("b", "<node/>")):
        node = tmp_path / f"node-{name}.xml"
        node.write_text(text)
        made.append(virtkit.connect(f"test://{node}", storage_roots=[storage]))
    a, b = made
    _vm(a, storage, "mover", start=True, cpu_model="host-model")
    _vm(a, storage, "plain", start=True)
    _vm(a, storage, "off", start=False, vcpus=2, max_vcpus=4)
    yield a, b
    for host in made:
        host.close()


# -- Get-VMProcessor and Set-VMProcessor --------------------------------------------------------------------------


def test_get_vm_processor_reads_count_and_compatibility(hosts: tuple[virtkit.Host, virtkit.Host]) -> None:
    a, _ = hosts
    own = hyperv.get_vm_processor(a, "mover")
    assert (own.count, own.compatibility_for_migration_enabled, own.model) == (1, False, None)
    fixed = hyperv.get_vm_processor(a, "off")  # TCG's default CPU: QEMU's qemu64, a fixed model every host runs
    assert (fixed.count, fixed.compatibility_for_migration_enabled, fixed.model) == (2, True, "qemu64")
    assert fixed.to_dict() == {"VMName": "off", "Count": 2, "CompatibilityForMigrationEnabled": True}


def test_count_changes_a_stopped_vm_and_keeps_the_rest(hosts: tuple[virtkit.Host, virtkit.Host]) -> None:
    a, _ = hosts
    before = a.get("off").spec()
    checked = hyperv.set_vm_processor(a, "off", count=3, what_if=True)
    assert checked.check and checked.changed and a.get("off").spec() == before
    change = hyperv.set_vm_processor(a, "off", count=3)
    assert change.diff() == {"vcpus": (2, 3)}  # the hot-add ceiling of 4 stays
    assert not hyperv.set_vm_processor(a, "off", count=3).changed
    grown = hyperv.set_vm_processor(a, "off", count=6)
    assert grown.diff() == {"vcpus": (3, 6), "max_vcpus": (4, None)}  # a ceiling below the count goes
    after = a.get("off").spec()
    assert (after.vcpus, after.memory, after.disks, after.cpu_model) == (6, before.memory, before.disks, "qemu64")


def test_a_running_vm_keeps_its_count_unless_it_is_the_same(hosts: tuple[virtkit.Host, virtkit.Host]) -> None:
    a, _ = hosts
    assert not hyperv.set_vm_processor(a, "mover", count=1).changed
    before = a.get("mover").spec()
    with pytest.raises(Conflict, match=r"^Count: .*running; stop it first"):
        hyperv.set_vm_processor(a, "mover", count=2)
    with pytest.raises(Conflict, match=r"^Count: "):
        hyperv.set_vm_processor(a, "mover", count=2, what_if=True)
    assert a.get("mover").spec() == before


def test_compatibility_off_is_the_hosts_own_cpu(hosts: tuple[virtkit.Host, virtkit.Host]) -> None:
    a, _ = hosts
    change = hyperv.set_vm_processor(a, "off", compatibility_for_migration_enabled=False)
    assert change.diff() == {"cpu_model": ("qemu64", "host-model")}
    assert not hyperv.get_vm_processor(a, "off").compatibility_for_migration_enabled
    assert not hyperv.set_vm_processor(a, "mover", compatibility_for_migration_enabled=False).changed
    with pytest.raises(Conflict, match=r"^CompatibilityForMigrationEnabled: "):
        hyperv.set_vm_processor(a, "plain", compatibility_for_migration_enabled=False)


def test_compatibility_on_needs_a_baseline_from_the_hypervisor(hosts: tuple[virtkit.Host, virtkit.Host]) -> None:
    a, b = hosts
    before = a.get("off").spec()
    with pytest.raises(Unsupported, match=r"^CompatibilityForMigrationEnabled: .*domain capabilities"):
        hyperv.set_vm_processor(a, "off", compatibility_for_migration_enabled=True, hosts=[b])
    assert a.get("off").spec() == before


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"count": 0}, "Count"),
        ({"count": 241}, "Count"),
        ({"count": True}, "Count"),
        ({"count": 2.0}, "Count"),
        ({"count": "2"}, "Count"),
        ({"count": 10**5000}, "Count"),
        ({"compatibility_for_migration_enabled": 1}, "CompatibilityForMigrationEnabled"),
        ({"compatibility_for_migration_enabled": "On"}, "CompatibilityForMigrationEnabled"),
        ({"hosts": ["qemu:///system"]}, "hosts[0]"),
        ({"hosts": "qemu:///system"}, "hosts"),
        ({"what_if": "yes"}, "what_if"),
    ],
)
def test_set_vm_processor_refuses_bad_arguments(
    hosts: tuple[virtkit.Host, virtkit.Host], kwargs: dict[str, object], field: str
) -> None:
    a, _ = hosts
    before = a.get("off").spec()
    with pytest.raises(InvalidSpec) as err:
        hyperv.set_vm_processor(a, "off", **kwargs)  # type: ignore[arg-type]
    assert err.value.field == field
    assert a.get("off").spec() == before


# -- Move-VM ------------------------------------------------------------------------------------------------------


def test_move_vm_what_if_runs_the_preflight_and_moves_nothing(
    hosts: tuple[virtkit.Host, virtkit.Host], storage: Path
) -> None:
    a, b = hosts
    result = hyperv.move_vm(a, "mover", b, what_if=True)
    assert result.check and result.mode is MigrationMode.LIVE and result.after is not None
    assert result.after.host == b.uri
    (storage / "there").mkdir()
    copy = hyperv.move_vm(a, "mover", b, destination_storage_path=storage / "there", what_if=True)
    assert copy.mode is MigrationMode.LIVE_STORAGE  # a destination path implies IncludeStorage
    assert a.get("mover").state is virtkit.VMState.RUNNING and not b.exists("mover")
    assert list((storage / "there").iterdir()) == []


def test_move_vm_refusals_name_the_cmdlets_parameters(
    hosts: tuple[virtkit.Host, virtkit.Host], storage: Path, tmp_path: Path
) -> None:
    a, b = hosts
    outside = tmp_path / "outside"
    outside.mkdir()
    (storage / "to-outside").symlink_to(outside)
    (storage / "file").write_text("not a directory\n")
    for kwargs, field in (
        ({"include_storage": True}, "DestinationStoragePath"),  # both hosts are this machine: a copy onto itself
        ({"destination_storage_path": storage / "none"}, "DestinationStoragePath"),
        ({"destination_storage_path": storage / "to-outside"}, "DestinationStoragePath"),
        ({"destination_storage_path": storage / "file"}, "DestinationStoragePath"),
        ({"destination_storage_path": "/etc"}, "DestinationStoragePath"),
        ({"destination_storage_path": "relative"}, "DestinationStoragePath"),
        ({"include_storage": 1}, "IncludeStorage"),
        ({"what_if": None}, "what_if"),
        ({"progress": "bar"}, "progress"),
        ({"shared_storage": ["relative"]}, "shared_storage[0]"),
    ):
        with pytest.raises(InvalidSpec) as err:
            hyperv.move_vm(a, "mover", b, **kwargs)  # type: ignore[arg-type]
        assert err.value.field == field, kwargs
    for destination in (a, "qemu:///system", None, a.get("mover")):
        with pytest.raises(InvalidSpec) as err:
            hyperv.move_vm(a, "mover", destination)  # type: ignore[arg-type]
        assert err.value.field == "DestinationHost"
    for name in ("", "a b", None, "x" * 70):
        with pytest.raises(InvalidSpec) as err:
            hyperv.move_vm(a, name, b)  # type: ignore[arg-type]
        assert err.value.field == "Name"
    with pytest.raises(Conflict, match=r"^Name: cannot move off live: it is stopped"):
        hyperv.move_vm(a, "off", b)
    with pytest.raises(virtkit.NotFound, match=r"^Name: "):
        hyperv.move_vm(a, "nosuchvm", b)
    # The default CPU is a named model: the test driver cannot compare it, and says so.
    with pytest.raises(Unsupported, match="not supported"):
        hyperv.move_vm(a, "plain", b, what_if=True)
    assert a.get("mover").state is virtkit.VMState.RUNNING and not b.list()
    assert list(outside.iterdir()) == []


# -- a storage copy between hosts whose files are elsewhere -------------------------------------------------------


@pytest.fixture
def remote_hosts(tmp_path: Path) -> Iterator[tuple[virtkit.Host, virtkit.Host, ElsewhereTool, ElsewhereTool]]:
    """Two test:// hosts, each with its files on a "host" of its own (its own directory here), as over SSH."""
    made = []
    for name, node_text in (("a", "<node/>"), ("b", "<node/>")):
        tool = ElsewhereTool(tmp_path / f"machine-{name}")
        (tool.base / ROOT.relative_to("/")).mkdir(parents=True)
        node = tmp_path / f"node-{name}.xml"
        node.write_text(node_text)
        made.append((virtkit.Host(LibvirtHost(f"test://{node}", storage_roots=(ROOT,)), files=tool), tool))
    (a, ta), (b, tb) = made
    _vm(a, ROOT, "mover", start=True, cpu_model="host-model")
    _vm(a, ROOT, "off", start=False, cpu_model="host-model")
    yield a, b, ta, tb
    a.close()
    b.close()


def test_a_storage_copy_is_planned_on_each_hosts_own_files(
    remote_hosts: tuple[virtkit.Host, virtkit.Host, ElsewhereTool, ElsewhereTool],
) -> None:
    a, b, ta, tb = remote_hosts
    src_images, dst_images = ta.base / "srv/vmhost/images", tb.base / "srv/vmhost/images"
    # The same path on another machine is no copy onto itself: the image is read on a's, the target checked on b's.
    result = hyperv.move_vm(a, "mover", b, include_storage=True, what_if=True)
    assert result.check and result.mode is MigrationMode.LIVE_STORAGE
    assert ("qemu-img", "info") in [c[:2] for c in ta.commands]
    assert sorted(p.name for p in src_images.iterdir()) == ["mover.qcow2", "off.qcow2"]
    assert list(dst_images.iterdir()) == []
    # A directory for the copies exists where they go: on b, not on a.
    (dst_images / "moved").mkdir()
    assert hyperv.move_vm(a, "mover", b, destination_storage_path=ROOT / "moved", what_if=True).check
    (src_images / "only-here").mkdir()
    with pytest.raises(InvalidSpec) as err:
        hyperv.move_vm(a, "mover", b, destination_storage_path=ROOT / "only-here", what_if=True)
    assert err.value.field == "DestinationStoragePath" and "does not exist on the elsewhere host" in err.value.reason
    # A file there already (the hosts may share the directory): refused, nothing written.
    shutil.copy(src_images / "mover.qcow2", dst_images / "mover.qcow2")
    with pytest.raises(AlreadyExists, match="move it with shared storage"):
        hyperv.move_vm(a, "mover", b, include_storage=True, what_if=True)
    # qemu-img copies an offline move's disks on this machine, which holds neither host's files.
    (dst_images / "mover.qcow2").unlink()
    with pytest.raises(Unsupported, match="offline needs both hosts' image files on this machine"):
        virtkit.migrate(a.get("off"), b, mode="offline", storage=ROOT / "moved", check=True)
    assert not [c for c in tb.commands if c[:2] == ("qemu-img", "create")]
    assert a.get("mover").state is virtkit.VMState.RUNNING and not b.list()
