"""Snapshots on libvirt's test:// driver: idempotence, check mode, tree and current, revert, delete, and the refusals
of what libvirt 9.0 cannot do, raised before anything changes.

The test driver takes internal (memory) snapshots but no disk-only ones; a disk-only snapshot is put in place with
libvirt's REDEFINE (metadata only), which is enough to check how virtkit reads and refuses it.
"""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

import virtkit
from virtkit import AlreadyExists, Conflict, InvalidSpec, NotFound, Unsupported, VMState
from virtkit.backends.libvirt.errors import is_transient, translate
from virtkit.backends.libvirt.host import LibvirtHost
from virtkit.backends.libvirt.xml import snapshot as snapshot_xml
from virtkit.models.snapshot import SnapshotInfo, SnapshotKind

DATA = Path(__file__).parent / "data"


@pytest.fixture
def backend(tmp_path: Path, storage: Path) -> Iterator[LibvirtHost]:
    """The libvirt side of a fresh test:// host, so a test can also reach libvirt itself (``backend.conn``)."""
    node = tmp_path / "node.xml"
    shutil.copy(DATA / "node.xml", node)
    b = LibvirtHost(f"test://{node}", storage_roots=(storage, Path("/var/lib/virtkit")))
    yield b
    b.close()


@pytest.fixture
def host(backend: LibvirtHost) -> virtkit.Host:
    return virtkit.Host(backend)


def _create(host: virtkit.Host, storage: Path, name: str = "web1", **extra: Any) -> virtkit.VM:
    data: dict[str, Any] = {
        "name": name,
        "memory": "256MiB",
        "disks": [{"path": str(storage / f"{name}.qcow2"), "size": "64MiB"}],
        **extra,
    }
    host.create(data, start=True)
    return host.get(name)


def _names(vm: virtkit.VM) -> list[str]:
    return [s.name for s in vm.snapshots.list()]


def _redefine_disk_only(
    backend: LibvirtHost, vm: str, name: str, parent: str | None, directory: Path = Path("/var/lib/virtkit/shared")
) -> None:
    """Put a disk-only snapshot's metadata in place (the test driver cannot take one), its overlay in
    ``directory``."""
    dom = backend.conn.lookupByName(vm)
    root = ET.Element("domainsnapshot")
    ET.SubElement(root, "name").text = name
    ET.SubElement(root, "state").text = "disk-snapshot"
    ET.SubElement(root, "creationTime").text = "2000000000"
    if parent:
        ET.SubElement(ET.SubElement(root, "parent"), "name").text = parent
    ET.SubElement(root, "memory", snapshot="no")
    disk = ET.SubElement(ET.SubElement(root, "disks"), "disk", name="vda", snapshot="external", type="file")
    ET.SubElement(disk, "source", file=str(directory / f"{vm}-vda.{name}.qcow2"))
    root.append(ET.fromstring(dom.XMLDesc(0)))
    dom.snapshotCreateXML(ET.tostring(root, encoding="unicode"), libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE)


def test_create_reads_back_what_was_taken_and_is_idempotent(host: virtkit.Host, storage: Path) -> None:
    vm = _create(host, storage)
    change = vm.snapshots.create("s1", description="before the upgrade")
    assert change.changed and change.before is None and change.after is not None
    info = change.after
    assert (info.name, info.vm, info.kind, info.parent, info.current) == ("s1", "web1", "memory", None, True)
    assert info.vm_state is VMState.RUNNING and not info.quiesced
    assert info.description == "before the upgrade"
    assert vm.snapshots.get("s1") == info
    assert vm.snapshots.current() == info
    again = vm.snapshots.create("s1")
    assert not again.changed and again.before == again.after == info
    with pytest.raises(AlreadyExists, match="memory, not disk-only"):
        vm.snapshots.create("s1", kind="disk-only")
    assert _names(vm) == ["s1"]


def test_check_mode_takes_nothing(host: virtkit.Host, storage: Path) -> None:
    vm = _create(host, storage)
    vm.snapshots.create("s1")
    change = vm.snapshots.create("s2", check=True)
    assert change.check and change.changed and change.after is not None
    assert change.after.parent == "s1" and change.after.kind is SnapshotKind.MEMORY
    assert _names(vm) == ["s1"]
    assert vm.snapshots.current() is not None and vm.snapshots.current().name == "s1"  # type: ignore[union-attr]
    vm.snapshots.create("s2")
    reverted = vm.snapshots.revert("s1", check=True)
    assert reverted.check and reverted.acted and reverted.changed
    assert vm.snapshots.current().name == "s2"  # type: ignore[union-attr]
    deleted = vm.snapshots.delete("s1", children=True, check=True)
    assert deleted.changed and deleted.after is None
    assert _names(vm) == ["s1", "s2"]


def test_tree_current_and_revert(host: virtkit.Host, storage: Path) -> None:
    vm = _create(host, storage)
    vm.snapshots.create("s1")
    vm.snapshots.create("s2")
    vm.destroy()
    change = vm.snapshots.revert("s1")
    assert change.acted and change.changed
    assert change.before is not None and change.before.state is VMState.STOPPED
    assert change.after is not None and change.after.state is VMState.RUNNING  # s1 was taken running
    assert change.after.reason == "from_snapshot"
    vm.snapshots.create("s3")
    (root,) = vm.snapshots.tree()
    assert root.info.name == "s1"
    assert sorted(c.info.name for c in root.children) == ["s2", "s3"]
    assert [i.name for i in root.walk()] == ["s1", *sorted(c.info.name for c in root.children)]
    current = vm.snapshots.current()
    assert current is not None and current.name == "s3" and current.parent == "s1"
    assert [s.name for s in vm.snapshots.list() if s.current] == ["s3"]


def test_revert_of_a_stopped_snapshot_stops_the_vm(host: virtkit.Host, storage: Path) -> None:
    vm = _create(host, storage)
    vm.destroy()
    taken = vm.snapshots.create("off").after
    assert taken is not None and taken.vm_state is VMState.STOPPED
    vm.start()
    predicted = vm.snapshots.revert("off", check=True).after
    assert predicted is not None and predicted.state is VMState.STOPPED
    assert vm.state is VMState.RUNNING
    after = vm.snapshots.revert("off").after
    assert after is not None and after.state is VMState.STOPPED


def test_delete_one_with_children_and_missing(host: virtkit.Host, storage: Path) -> None:
    vm = _create(host, storage)
    for name in ("a", "b", "c"):
        vm.snapshots.create(name)
    # without children: b's child c moves up to a
    change = vm.snapshots.delete("b")
    assert change.changed and change.before is not None and change.before.name == "b"
    assert vm.snapshots.get("c").parent == "a"
    assert not vm.snapshots.delete("b").changed  # already gone
    vm.snapshots.create("d")
    vm.snapshots.delete("a", children=True)
    assert _names(vm) == []
    assert vm.snapshots.current() is None
    with pytest.raises(NotFound):
        vm.snapshots.get("a")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "bad;name"}, "name"),
        ({"name": ""}, "name"),
        ({"name": "s1", "kind": "full"}, "kind"),
        ({"name": "s1", "description": "two\nlines"}, "description"),
    ],
)
def test_bad_input_takes_nothing(host: virtkit.Host, storage: Path, kwargs: dict[str, Any], field: str) -> None:
    vm = _create(host, storage)
    name = kwargs.pop("name")
    with pytest.raises(InvalidSpec) as err:
        vm.snapshots.create(name, **kwargs)
    assert err.value.field == field
    assert _names(vm) == []


def test_memory_snapshot_of_a_raw_disk_is_refused_before_anything(host: virtkit.Host, storage: Path) -> None:
    vm = _create(host, storage, disks=[{"path": str(storage / "web1.img"), "size": "64MiB", "format": "raw"}])
    before = vm.info()
    with pytest.raises(Unsupported, match=r"vda is raw; take a disk-only snapshot"):
        vm.snapshots.create("s1")
    assert _names(vm) == [] and vm.info() == before


def test_memory_snapshot_of_a_uefi_vm_is_external_with_a_copy_of_its_variable_store(
    host: virtkit.Host, storage: Path
) -> None:
    vm = _create(host, storage, firmware="uefi", machine="q35")
    nvram = storage / "web1.nvram.fd"  # beside its first disk, where virtkit puts a new UEFI VM's store
    # The test driver makes no store: without one, no copy can be kept, and that is said before anything changes.
    for check in (True, False):
        with pytest.raises(Unsupported, match=r"UEFI variable store .* does not exist.*disk-only"):
            vm.snapshots.create("s1", check=check)
    assert _names(vm) == [] and sorted(p.name for p in storage.iterdir()) == ["web1.qcow2"]
    nvram.write_bytes(b"variables")
    predicted = vm.snapshots.create("s1", check=True).after
    assert predicted is not None and predicted.kind is SnapshotKind.MEMORY and _names(vm) == []
    taken = vm.snapshots.create("s1").after
    assert taken is not None and taken.kind is SnapshotKind.MEMORY and taken.vm_state is VMState.RUNNING
    assert (storage / "web1.s1.nvram.fd").read_bytes() == b"variables"
    assert vm.state is VMState.RUNNING  # paused for the copy, running again


def test_quiesced_without_agent_falls_back_or_is_refused(host: virtkit.Host, storage: Path) -> None:
    vm = _create(host, storage)
    with pytest.raises(Unsupported, match="no guest-agent channel"):
        vm.snapshots.create("prod", kind=SnapshotKind.QUIESCED, fallback=False)
    assert _names(vm) == []
    predicted = vm.snapshots.create("prod", kind="quiesced", check=True).after
    assert predicted is not None and predicted.kind is SnapshotKind.MEMORY
    change = vm.snapshots.create("prod", kind="quiesced")
    assert change.after is not None and change.after.kind is SnapshotKind.MEMORY and not change.after.quiesced
    # asking again is satisfied by what the fallback took; without the fallback it is not
    assert not vm.snapshots.create("prod", kind="quiesced").changed
    with pytest.raises(AlreadyExists):
        vm.snapshots.create("prod", kind="quiesced", fallback=False)


def test_quiesced_with_the_freeze_service_off_is_not_quiesced(host: virtkit.Host, storage: Path) -> None:
    vm = _create(host, storage, guest_agent=True, agent_services=["heartbeat", "time_sync"])
    with pytest.raises(Unsupported, match=r"file-system freeze service .* is off \(fs_freeze, Hyper-V's VSS\)"):
        vm.snapshots.create("prod", kind="quiesced", fallback=False)
    assert _names(vm) == []
    taken = vm.snapshots.create("prod", kind="quiesced").after  # Production falls back to Standard
    assert taken is not None and taken.kind is SnapshotKind.MEMORY


def test_quiesced_fallback_impossible_says_both_reasons(host: virtkit.Host, storage: Path) -> None:
    vm = _create(host, storage, firmware="uefi", machine="q35")
    with pytest.raises(Unsupported, match=r"no guest-agent channel.*fallback to a memory snapshot.*UEFI variable"):
        vm.snapshots.create("prod", kind="quiesced")
    (storage / "web1.nvram.fd").write_bytes(b"variables")  # as libvirt makes it when the VM starts
    taken = vm.snapshots.create("prod", kind="quiesced").after
    assert taken is not None and taken.kind is SnapshotKind.MEMORY


def test_snapshots_of_a_saved_vm_are_refused(host: virtkit.Host, storage: Path) -> None:
    vm = _create(host, storage)
    vm.snapshots.create("s1")
    vm.managed_save()
    with pytest.raises(Conflict, match="saved"):
        vm.snapshots.create("s2")
    with pytest.raises(Conflict, match="discard its saved state"):
        vm.snapshots.revert("s1")
    assert vm.state is VMState.SAVED and _names(vm) == ["s1"]


def test_disk_only_the_driver_cannot_take_is_unsupported_and_check_mode_predicts(
    host: virtkit.Host, storage: Path
) -> None:
    vm = _create(host, storage)
    predicted = vm.snapshots.create("d1", kind="disk-only", check=True).after
    assert predicted is not None and predicted.kind is SnapshotKind.DISK_ONLY
    with pytest.raises(Unsupported, match="unsupported flags"):
        vm.snapshots.create("d1", kind="disk-only")  # the test driver has no external snapshots
    assert _names(vm) == []


def test_disk_only_overlay_that_exists_is_refused(host: virtkit.Host, storage: Path) -> None:
    vm = _create(host, storage)
    (storage / "web1-vda.d1.qcow2").write_bytes(b"")
    with pytest.raises(InvalidSpec, match="exists already") as err:
        vm.snapshots.create("d1", kind="disk-only", check=True)
    assert err.value.field == "name"


def test_external_snapshot_is_reverted_and_merged_by_hand_where_libvirt_9_0_cannot(
    backend: LibvirtHost, host: virtkit.Host, storage: Path
) -> None:
    vm = _create(host, storage)
    base = storage / "web1.qcow2"
    _redefine_disk_only(backend, "web1", "d1", None, storage)
    info = vm.snapshots.get("d1")
    assert info.kind is SnapshotKind.DISK_ONLY and info.vm_state is VMState.RUNNING and not info.quiesced
    with pytest.raises(Unsupported, match="cannot mix internal"):
        vm.snapshots.create("m1")
    before = vm.info()
    predicted = vm.snapshots.revert("d1", check=True).after
    assert predicted is not None and predicted.state is VMState.STOPPED  # no memory: off, as Hyper-V leaves it
    assert vm.info() == before and sorted(p.name for p in storage.iterdir()) == ["web1.qcow2"]

    change = vm.snapshots.revert("d1")
    assert change.after is not None and change.after.state is VMState.STOPPED
    overlay = vm.spec().disks[0].path
    assert overlay.parent == storage and overlay.name.startswith("web1-vda.d1.") and overlay.suffix == ".qcow2"
    assert virtkit.images.info(overlay, roots=[storage]).backing_file == base  # a new overlay on the kept image
    assert vm.snapshots.current().name == "d1"  # type: ignore[union-attr]
    (storage / "scratch").write_bytes(b"")  # a file virtkit did not make stays, whatever its name

    # Deleting it merges the overlay into the image below: the VM is back on its first image, the overlay gone.
    vm.snapshots.delete("d1")
    assert vm.spec().disks[0].path == base and not overlay.exists()
    assert sorted(p.name for p in storage.iterdir()) == ["scratch", "web1.qcow2"] and _names(vm) == []


def test_disk_only_on_top_of_memory_is_refused_both_ways(
    backend: LibvirtHost, host: virtkit.Host, storage: Path
) -> None:
    vm = _create(host, storage)
    vm.snapshots.create("m1")
    with pytest.raises(Unsupported, match="has memory snapshots"):
        vm.snapshots.create("d1", kind="disk-only")
    _redefine_disk_only(backend, "web1", "d1", "m1")  # as virsh could have made it
    with pytest.raises(Unsupported, match="on top of the memory snapshot m1"):
        vm.snapshots.delete("d1")
    with pytest.raises(Unsupported, match="on top of the memory snapshot m1"):
        vm.snapshots.delete("m1", children=True)
    assert sorted(_names(vm)) == ["d1", "m1"]


def test_virtkit_record_says_quiesced_and_paused(backend: LibvirtHost, host: virtkit.Host, storage: Path) -> None:
    vm = _create(host, storage)
    _redefine_disk_only(backend, "web1", "q1", None)
    record = snapshot_xml.render_records({"q1": snapshot_xml.SnapshotRecord(quiesced=True, vm_state="paused")})
    dom = backend.conn.lookupByName("web1")
    flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG | libvirt.VIR_DOMAIN_AFFECT_LIVE
    ns, prefix = snapshot_xml.RECORD_NS, snapshot_xml.RECORD_PREFIX
    dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, record, prefix, ns, flags)
    info = vm.snapshots.get("q1")
    assert info.kind is SnapshotKind.QUIESCED and info.quiesced and info.vm_state is VMState.PAUSED
    assert vm.snapshots.list() == [info]
    # a disk-only request is met by a quiesced snapshot; a memory request is not
    assert not vm.snapshots.create("q1", kind="disk-only").changed
    with pytest.raises(AlreadyExists):
        vm.snapshots.create("q1")


def test_snapshot_xml_is_built_and_read_with_elementtree() -> None:
    text = snapshot_xml.render("s1", "a <b> & c", overlays={"vda": Path("/v/web1-vda.s1.qcow2")}, skip=["sda"])
    root = ET.fromstring(text)
    assert root.findtext("description") == "a <b> & c"
    assert root.find("memory").get("snapshot") == "no"  # type: ignore[union-attr]
    assert [(d.get("name"), d.get("snapshot")) for d in root.iter("disk")] == [("vda", "external"), ("sda", "no")]
    assert root.find("disks/disk/source").get("file") == "/v/web1-vda.s1.qcow2"  # type: ignore[union-attr]
    assert ET.fromstring(snapshot_xml.render("s2", "")).find("memory") is None
    records = {"a": snapshot_xml.SnapshotRecord(True, "running"), "b": snapshot_xml.SnapshotRecord(False, "paused")}
    assert snapshot_xml.parse_records(snapshot_xml.render_records(records)) == records


def test_snapshot_infos_are_plain_data() -> None:
    info = SnapshotInfo("s1", "web1", SnapshotKind.QUIESCED, 1, None, True, VMState.RUNNING, True, "")
    change = virtkit.Change("create-snapshot", "web1/s1", None, info)
    assert change.as_dict()["after"]["kind"] == "quiesced"
    assert change.diff()["vm_state"] == (None, "running")


@pytest.mark.parametrize(
    "code",
    [libvirt.VIR_ERR_AGENT_UNRESPONSIVE, libvirt.VIR_ERR_AGENT_UNSYNCED, libvirt.VIR_ERR_SNAPSHOT_REVERT_RISKY],
)
def test_agent_and_risky_revert_errors_are_conflicts(code: int) -> None:
    # The test driver has no guest agent: the error is made the way libvirt-python makes it, with its fields.
    exc = libvirt.libvirtError("failed")
    exc.err = (code, libvirt.VIR_FROM_QEMU, "Guest agent is not responding", 2, None, None, None, 0, 0)
    err = translate(exc, "take snapshot s1 of web1")
    assert isinstance(err, Conflict) and err.code == code and not is_transient(err)
    assert str(err) == "take snapshot s1 of web1: Guest agent is not responding"


def test_delete_with_storage_is_refused_while_disk_only_snapshots_exist(
    host: virtkit.Host, backend: LibvirtHost, storage: Path
) -> None:
    """Its disks are overlay chains then: deleting the top files alone would leave the images below."""
    vm = _create(host, storage)
    vm.destroy()
    _redefine_disk_only(backend, "web1", "d1", None)
    with pytest.raises(virtkit.Conflict, match="snapshots d1 keep its disks as chains of overlays"):
        vm.delete(storage=True)
    assert host.exists("web1") and (storage / "web1.qcow2").exists()
    assert vm.delete().changed  # without storage it may go


def test_rename_shows_the_new_name_everywhere_and_keeps_what_it_is(host: virtkit.Host, storage: Path) -> None:
    vm = _create(host, storage)
    vm.snapshots.create("s1", description="first")
    vm.snapshots.create("s2")
    predicted = vm.snapshots.rename("s1", "base", check=True)
    assert predicted.changed and predicted.after is not None and predicted.after.name == "base"
    assert _names(vm) == ["s1", "s2"]  # check mode changes nothing

    renamed = vm.snapshots.rename("s1", "base").after
    assert renamed is not None and (renamed.name, renamed.description) == ("base", "first")
    assert [(s.name, s.parent) for s in vm.snapshots.list()] == [("base", None), ("s2", "base")]
    assert not vm.snapshots.exists("s1") and not vm.snapshots.rename("base", "base").changed
    # a memory snapshot lives in the qcow2 images under its first name: reverting by the new one still works
    vm.destroy()
    assert vm.snapshots.revert("base").after.state is VMState.RUNNING  # type: ignore[union-attr]
    assert vm.snapshots.current().name == "base"  # type: ignore[union-attr]
    # the old name is free again, for a new snapshot
    again = vm.snapshots.create("s1").after
    assert again is not None and again.parent == "base"
    assert sorted(_names(vm)) == ["base", "s1", "s2"]
    vm.snapshots.delete("base", children=True)
    assert _names(vm) == []


@pytest.mark.parametrize(
    ("old", "new", "error", "field"),
    [
        ("nope", "x", NotFound, None),
        ("s1", "s2", AlreadyExists, None),
        ("s1", "", InvalidSpec, "new_name"),
        ("s1", "a/b", InvalidSpec, "new_name"),
        ("s1", 7, InvalidSpec, "new_name"),
        ("s1", "x" * 5000, InvalidSpec, "new_name"),
    ],
)
def test_rename_refuses_bad_names_and_changes_nothing(
    host: virtkit.Host, storage: Path, old: str, new: Any, error: type[Exception], field: str | None
) -> None:
    vm = _create(host, storage)
    vm.snapshots.create("s1")
    vm.snapshots.create("s2")
    before = vm.snapshots.list()
    with pytest.raises(error) as err:
        vm.snapshots.rename(old, new)
    if field is not None:
        assert err.value.field == field  # type: ignore[attr-defined]
    assert vm.snapshots.list() == before


def test_a_snapshot_without_a_kind_follows_the_snapshot_mode(host: virtkit.Host, storage: Path) -> None:
    vm = _create(host, storage)
    taken = vm.snapshots.create("s1", kind=None)
    assert taken.after is not None and taken.after.kind is virtkit.SnapshotKind.MEMORY
    vm.configure(snapshot_mode="disabled")
    with pytest.raises(virtkit.Conflict, match="snapshot_mode"):
        vm.snapshots.create("s2", kind=None)
    assert [s.name for s in vm.snapshots.list()] == ["s1"]
