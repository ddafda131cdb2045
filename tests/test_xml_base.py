"""The declared-XML base: one descriptor reads and writes a field, edits the tree in place, and leaves alone what it
does not declare."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from virtkit.backends.libvirt.xml.base import INT, PATH, YES_NO, XMLChild, XMLChildren, XMLObject, XMLProperty
from virtkit.backends.libvirt.xml.devices.disk import Disk
from virtkit.backends.libvirt.xml.devices.nic import Interface
from virtkit.backends.libvirt.xml.domain import Domain
from virtkit.errors import BackendError
from virtkit.models.disk import DiskCache, DiskFormat, DiskKind, DiskSpec
from virtkit.models.nic import NicKind, NicSpec


class Leaf(XMLObject):
    TAG = "leaf"
    colour = XMLProperty("./@colour")


class Thing(XMLObject):
    TAG = "thing"
    name = XMLProperty("./name")
    size = XMLProperty("./size", INT)
    unit = XMLProperty("./size/@unit", default="KiB")
    file = XMLProperty("./store/source/@file", PATH)
    secure = XMLProperty("./store/@secure", YES_NO)
    flag = XMLProperty("./flags/on", is_bool=True)
    inner = XMLChild(Leaf, "./inner/leaf")
    leaves = XMLChildren(Leaf, "./leaves")


def test_a_field_reads_and_writes_its_one_place() -> None:
    thing = Thing()
    assert (thing.name, thing.size, thing.unit, thing.file, thing.flag) == (None, None, "KiB", None, False)
    thing.name = "a"
    thing.size = 3
    thing.file = Path("/x")
    thing.flag = True
    assert thing.to_string() == (
        '<thing><name>a</name><size>3</size><store><source file="/x" /></store><flags><on /></flags></thing>'
    )
    assert (thing.name, thing.size, thing.file, thing.flag) == ("a", 3, Path("/x"), True)


def test_new_elements_go_where_the_class_declares_them_among_siblings_it_does_not() -> None:
    thing = Thing(ET.fromstring("<thing><other/><size>1</size><more/></thing>"))
    thing.name = "first"  # declared before size: goes before it, the unknown <other> stays first
    thing.flag = True  # declared after size: goes after the last declared sibling before it
    assert [el.tag for el in thing.node] == ["other", "name", "size", "flags", "more"]


def test_none_removes_the_value_and_what_it_leaves_empty_only() -> None:
    thing = Thing(ET.fromstring('<thing><store secure="yes"><source file="/x" mode="ro"/></store></thing>'))
    thing.file = None  # <source> keeps its mode
    assert thing.to_string() == '<thing><store secure="yes"><source mode="ro" /></store></thing>'
    thing = Thing(ET.fromstring('<thing><store><source file="/x"/></store><flags><on/></flags></thing>'))
    thing.file = None
    thing.flag = False
    assert thing.to_string() == "<thing />"


def test_a_value_that_already_reads_the_same_is_not_rewritten() -> None:
    thing = Thing(ET.fromstring('<thing><size unit="GiB"> 0004</size><store secure="yes"/></thing>'))
    thing.size = 4  # int(" 0004") == 4: the spelling stays
    thing.secure = True
    assert thing.to_string() == '<thing><size unit="GiB"> 0004</size><store secure="yes" /></thing>'
    thing.secure = False
    assert thing.to_string() == '<thing><size unit="GiB"> 0004</size><store secure="no" /></thing>'


def test_an_absent_field_is_written_even_when_it_reads_as_its_default() -> None:
    thing = Thing()
    thing.unit = "KiB"
    assert thing.to_string() == '<thing><size unit="KiB" /></thing>'


def test_a_spelling_the_codec_cannot_read_raises_on_read_and_is_replaced_on_write() -> None:
    thing = Thing(ET.fromstring("<thing><size>lots</size></thing>"))
    with pytest.raises(ValueError, match="lots"):
        _ = thing.size
    assert Thing.size.raw(thing) == "lots"
    thing.size = 5
    assert thing.size == 5


def test_a_child_object_is_made_on_its_first_write_only() -> None:
    thing = Thing()
    assert not thing.inner.exists and thing.inner.colour is None and thing.to_string() == "<thing />"
    thing.inner.colour = "red"
    assert thing.to_string() == '<thing><inner><leaf colour="red" /></inner></thing>'
    thing.inner.delete()
    assert thing.to_string() == "<thing><inner /></thing>"


def test_children_add_remove_and_replace_in_place() -> None:
    thing = Thing(ET.fromstring('<thing><leaves><x/><leaf colour="a"/><y/><leaf colour="b"/><z/></leaves></thing>'))
    a, b = list(thing.leaves)
    c = Leaf()
    c.colour = "c"
    thing.leaves.replace([a, b], [b, c, a])
    assert [(el.tag, el.get("colour")) for el in thing.node.find("leaves")] == [  # type: ignore[union-attr]
        ("x", None),
        ("leaf", "b"),
        ("y", None),
        ("leaf", "c"),
        ("leaf", "a"),
        ("z", None),
    ]
    thing.leaves.remove(c)
    d = thing.leaves.add(Leaf())
    assert [leaf.colour for leaf in thing.leaves] == ["b", "a", None] and d.is_(list(thing.leaves)[-1])
    assert len(Thing().leaves) == 0


def test_paths_with_namespaces_and_bad_paths() -> None:
    class Meta(XMLObject):
        TAG = "domain"
        accel = XMLProperty("./metadata/{https://x.example/ns}vm/{https://x.example/ns}accel")

    meta = Meta()
    meta.accel = "kvm"
    assert meta.node.findtext("metadata/{https://x.example/ns}vm/{https://x.example/ns}accel") == "kvm"
    with pytest.raises(ValueError, match="starts with"):
        XMLProperty("name")
    with pytest.raises(ValueError, match="presence"):
        XMLProperty("./@x", is_bool=True)


def test_from_string_refuses_what_is_not_its_element() -> None:
    with pytest.raises(BackendError, match="expected a <domain>"):
        Domain.from_string("<domainsnapshot/>")
    with pytest.raises(BackendError, match="cannot read"):
        Domain.from_string("<domain>")


def test_every_spec_field_has_its_declaration() -> None:
    """DiskSpec and NicSpec are read and written field by field: a new spec field needs a declaration (a disk's
    SCSI controller and unit are its drive address, read and written together)."""
    assert set(Disk.SPEC_FIELDS) == {f.name for f in dataclasses.fields(DiskSpec)} - {"size", "controller", "unit"}
    assert set(Interface.SPEC_FIELDS) == {f.name for f in dataclasses.fields(NicSpec)}


def test_a_disk_edited_in_place_keeps_what_it_does_not_model() -> None:
    el = ET.fromstring(
        "<disk type='file' device='disk'><driver name='qemu' type='raw' io='threads'/>"
        "<source file='/a.img'><seclabel model='dac' relabel='no'/></source><target dev='vdb' bus='virtio'/>"
        "<iotune><total_iops_sec>2000</total_iops_sec></iotune><boot order='2'/><alias name='virtio-disk1'/>"
        "<address type='pci' domain='0x0000' bus='0x00' slot='0x0a' function='0x0'/></disk>"
    )
    disk = Disk(el)
    spec = disk.spec()
    assert (spec.path, spec.format, spec.cache, disk.boot_order, disk.alias) == (
        Path("/a.img"),
        DiskFormat.RAW,
        None,
        2,
        "virtio-disk1",
    )
    disk.update(dataclasses.replace(spec, path=Path("/b.qcow2"), format=DiskFormat.QCOW2, cache=DiskCache.NONE))
    assert disk.to_string() == (
        '<disk type="file" device="disk"><driver name="qemu" type="qcow2" io="threads" cache="none" />'
        '<source file="/b.qcow2"><seclabel model="dac" relabel="no" /></source><target dev="vdb" bus="virtio" />'
        '<iotune><total_iops_sec>2000</total_iops_sec></iotune><boot order="2" /><alias name="virtio-disk1" />'
        '<address type="pci" domain="0x0000" bus="0x00" slot="0x0a" function="0x0" /></disk>'
    )
    disk.update(dataclasses.replace(disk.spec(), kind=DiskKind.BLOCK, path=Path("/dev/sdz"), format=DiskFormat.RAW))
    assert disk.node.find("source").attrib == {"dev": "/dev/sdz"}  # type: ignore[union-attr]


def test_an_adapter_keeps_its_mac_when_the_spec_leaves_it_open() -> None:
    nic = Interface(
        ET.fromstring(
            "<interface type='network'><mac address='52:54:00:00:00:01'/>"
            "<source network='default'/><model type='virtio'/></interface>"
        )
    )
    nic.update(NicSpec(kind=NicKind.BRIDGE, source="br0"))
    assert nic.to_string() == (
        '<interface type="bridge"><mac address="52:54:00:00:00:01" /><source bridge="br0" />'
        '<model type="virtio" /></interface>'
    )
    nic.update(NicSpec(kind=NicKind.USER))
    assert nic.node.find("source") is None and nic.spec() == NicSpec(kind=NicKind.USER, mac="52:54:00:00:00:01")


@pytest.mark.parametrize(
    ("text", "unit", "size"),
    [
        ("4", "GiB", 4 * 2**30),
        ("4", "G", 4 * 2**30),
        ("4000", "MB", 4 * 10**9),
        ("512", None, 512 * 1024),
        ("8", "b", 8),
    ],
)
def test_memory_in_any_unit_libvirt_reads_and_kept_while_equal(text: str, unit: str | None, size: int) -> None:
    dom = Domain(ET.fromstring(f"<domain><memory{f' unit={unit!r}' if unit else ''}>{text}</memory></domain>"))
    before = dom.to_string()
    assert dom.memory == size
    dom.memory = size
    assert dom.to_string() == before
    dom.memory = 2**30
    assert dom.node.find("memory").attrib == {"unit": "KiB"} and dom.node.findtext("memory") == str(2**20)  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="not a size unit"):
        _ = Domain(ET.fromstring("<domain><memory unit='KiBi'>1</memory></domain>")).memory
