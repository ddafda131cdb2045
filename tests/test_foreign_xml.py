"""Domain XML that virtkit did not write (tests/data/foreign/, as virt-install and virt-manager leave it): parse it,
change one field of the spec, render on the parsed tree, and only that field differs.

Each case pairs a change to the spec with the same change made by hand to the tree; the rendered tree must equal the
hand-edited one (compared as trees: tags, attributes and text, in order, whitespace aside), and both must read the
same after libvirt's test driver has defined them. A round trip without a change renders the same text.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import libvirt
import pytest

from virtkit import Accel, VMSpec
from virtkit.backends.libvirt.host import LibvirtHost
from virtkit.backends.libvirt.xml.domain import Domain, canonical, parse, render, to_string, unmodelled_files
from virtkit.errors import InvalidSpec, Unsupported
from virtkit.models.disk import DiskBus, DiskCache, DiskFormat, DiskSpec
from virtkit.models.nic import NicModel
from virtkit.models.vm import BootDevice
from virtkit.units import GiB

FOREIGN = Path(__file__).parent / "data" / "foreign"
FILES = sorted(p.name for p in FOREIGN.glob("*.xml"))
AGENT = "org.qemu.guest_agent.0"
SPICE = "com.redhat.spice.0"


def _text(name: str) -> str:
    return (FOREIGN / name).read_text()


def _tree(el: ET.Element) -> tuple[Any, ...]:
    """A tree as comparable data: tag, attributes (unordered), text, children in order; whitespace aside."""
    return (el.tag, sorted(el.attrib.items()), (el.text or "").strip(), [_tree(c) for c in el])


def _defined(conn: libvirt.virConnect, xml: str) -> str:
    """What libvirt keeps of ``xml`` once defined (a definition of the same UUID replaces the one before)."""
    return str(conn.defineXML(xml).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))


# -- the hand edits ------------------------------------------------------------------------------------------------


def _find(root: ET.Element, path: str) -> ET.Element:
    found = root.find(path)
    assert found is not None, path
    return found


def _device(root: ET.Element, tag: str, **attrs: str) -> ET.Element:
    """The first device ``tag`` whose named children or attributes match: ``target="vdb"`` is ``<target dev>``."""
    for el in _find(root, "devices").iterfind(tag):
        if all(_key(el, k) == v for k, v in attrs.items()):
            return el
    raise AssertionError(f"no {tag} {attrs}")


def _key(el: ET.Element, key: str) -> str | None:
    if key == "target":
        target = el.find("target")
        return None if target is None else target.get("dev") or target.get("name")
    if key == "mac":
        mac = el.find("mac")
        return None if mac is None else mac.get("address")
    return el.get(key)


def _remove(root: ET.Element, el: ET.Element) -> None:
    _find(root, "devices").remove(el)


def _insert_after(root: ET.Element, before: ET.Element, el: ET.Element) -> None:
    devices = _find(root, "devices")
    devices.insert(list(devices).index(before) + 1, el)


def _memory(root: ET.Element) -> None:
    _find(root, "memory").text = _find(root, "currentMemory").text = str(8 * GiB // 1024)


def _max_memory(root: ET.Element) -> None:
    _find(root, "memory").text = str(4 * GiB // 1024)


def _vcpus(root: ET.Element) -> None:
    _find(root, "vcpu").text = "4"


def _max_vcpus(root: ET.Element) -> None:
    vcpu = _find(root, "vcpu")
    vcpu.set("current", vcpu.text or "")
    vcpu.text = "8"


def _cache_none(root: ET.Element) -> None:
    _find(_device(root, "disk", target="vda"), "driver").set("cache", "none")


def _readonly_vdb(root: ET.Element) -> None:
    disk = _device(root, "disk", target="vdb")
    disk.insert(list(disk).index(_find(disk, "target")) + 1, ET.Element("readonly"))


def _add_vdb(root: ET.Element) -> None:
    disk = ET.Element("disk", type="file", device="disk")
    ET.SubElement(disk, "driver", name="qemu", type="qcow2")
    ET.SubElement(disk, "source", file="/var/lib/libvirt/images/debian12-data.qcow2")
    ET.SubElement(disk, "target", dev="vdb", bus="virtio")
    _insert_after(root, _device(root, "disk", target="vda"), disk)


def _drop_sda(root: ET.Element) -> None:
    _remove(root, _device(root, "disk", target="sda", device="disk"))


def _drop_bridge_nic(root: ET.Element) -> None:
    _remove(root, _device(root, "interface", type="bridge"))


def _mtu_9000(root: ET.Element) -> None:
    nic = _device(root, "interface", type="network")
    nic.insert(list(nic).index(_find(nic, "model")) + 1, ET.Element("mtu", size="9000"))


def _virtio_nic(root: ET.Element) -> None:
    _find(_device(root, "interface", type="network"), "model").set("type", "virtio")


def _boot_network_first(root: ET.Element) -> None:
    os_el = _find(root, "os")
    for boot in os_el.findall("boot"):
        os_el.remove(boot)
    ET.SubElement(os_el, "boot", dev="network")
    ET.SubElement(os_el, "boot", dev="hd")


def _serial_log(root: ET.Element) -> None:
    for tag in ("serial", "console"):
        el = _device(root, tag)
        el.set("type", "file")
        el.insert(0, ET.Element("source", path="/var/log/guests/debian12.log", append="on"))


def _agent_off(root: ET.Element) -> None:
    _remove(root, _device(root, "channel", target=AGENT))


def _agent_on(root: ET.Element) -> None:
    channel = ET.Element("channel", type="unix")
    ET.SubElement(channel, "target", type="virtio", name=AGENT)
    _insert_after(root, _device(root, "channel", target=SPICE), channel)


def _named_cpu(root: ET.Element) -> None:
    cpu = _find(root, "cpu")
    cpu.attrib = {"mode": "custom", "match": "exact", "check": "partial"}
    ET.SubElement(cpu, "model", fallback="forbid").text = "EPYC"
    ET.SubElement(cpu, "feature", policy="disable", name="svm")


def _secure_boot_off(root: ET.Element) -> None:
    loader = _find(root, "os/loader")
    del loader.attrib["secure"]
    loader.text = "/usr/share/OVMF/OVMF_CODE_4M.fd"
    _find(root, "os/nvram").set("template", "/usr/share/OVMF/OVMF_VARS_4M.fd")
    # Its variable store holds the old firmware's keys: the next boot copies it afresh (Domain.nvram_stale).
    Domain(root).nvram_stale = True


def _rename(root: ET.Element) -> None:
    _find(root, "name").text = "focal-web2"


def _disk(spec: VMSpec, i: int, **changes: Any) -> tuple[DiskSpec, ...]:
    disks = list(spec.disks)
    disks[i] = dataclasses.replace(disks[i], **changes)
    return tuple(disks)


def _nic(spec: VMSpec, i: int, **changes: Any) -> Any:
    nics = list(spec.nics)
    nics[i] = dataclasses.replace(nics[i], **changes)
    return tuple(nics)


NEW_DISK = DiskSpec(path=Path("/var/lib/libvirt/images/debian12-data.qcow2"), format=DiskFormat.QCOW2)

# (file, what changes, the change to the spec, the same change by hand)
CASES: list[tuple[str, str, Callable[[VMSpec], dict[str, Any]], Callable[[ET.Element], None]]] = [
    ("q35-uefi-desktop.xml", "memory", lambda s: {"memory": 8 * GiB}, _memory),
    ("q35-uefi-desktop.xml", "vcpus", lambda s: {"vcpus": 4}, _vcpus),
    ("q35-uefi-desktop.xml", "disk cache", lambda s: {"disks": _disk(s, 0, cache=DiskCache.NONE)}, _cache_none),
    ("q35-uefi-desktop.xml", "a new disk", lambda s: {"disks": (*s.disks, NEW_DISK)}, _add_vdb),
    ("q35-uefi-desktop.xml", "serial log", lambda s: {"serial_log": Path("/var/log/guests/debian12.log")}, _serial_log),
    ("q35-uefi-desktop.xml", "agent off", lambda s: {"guest_agent": False}, _agent_off),
    ("q35-uefi-desktop.xml", "named CPU", lambda s: {"cpu_model": "EPYC", "cpu_features": ("-svm",)}, _named_cpu),
    ("pc-bios-server.xml", "remove a NIC", lambda s: {"nics": s.nics[:1]}, _drop_bridge_nic),
    (
        "pc-bios-server.xml",
        "boot order",
        lambda s: {"boot": (BootDevice.NETWORK, BootDevice.DISK)},
        _boot_network_first,
    ),
    ("pc-bios-server.xml", "disk readonly", lambda s: {"disks": _disk(s, 1, readonly=True)}, _readonly_vdb),
    ("pc-bios-server.xml", "NIC MTU", lambda s: {"nics": _nic(s, 0, mtu=9000)}, _mtu_9000),
    ("pc-bios-server.xml", "max memory", lambda s: {"max_memory": 4 * GiB}, _max_memory),
    ("pc-bios-server.xml", "name", lambda s: {"name": "focal-web2"}, _rename),
    ("q35-windows11.xml", "agent on", lambda s: {"guest_agent": True}, _agent_on),
    ("q35-windows11.xml", "max vcpus", lambda s: {"max_vcpus": 8}, _max_vcpus),
    ("q35-windows11.xml", "Secure Boot off", lambda s: {"secure_boot": False}, _secure_boot_off),
    ("q35-windows11.xml", "NIC model", lambda s: {"nics": _nic(s, 0, model=NicModel.VIRTIO)}, _virtio_nic),
    ("q35-windows11.xml", "remove the disk", lambda s: {"disks": ()}, _drop_sda),
]


@pytest.mark.parametrize(("name", "what", "change", "edit"), CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES])
def test_one_change_changes_only_that_field(
    name: str,
    what: str,
    change: Callable[[VMSpec], dict[str, Any]],
    edit: Callable[[ET.Element], None],
    conn: libvirt.virConnect,
) -> None:
    base = _text(name)
    spec = parse(base)
    changed = dataclasses.replace(spec, **change(spec))
    assert changed != spec, what

    rendered = render(changed, Accel.KVM, base=base)
    expected = ET.fromstring(base)
    edit(expected)
    assert _tree(rendered) == _tree(expected)

    # libvirt reads both the same, and what it keeps reads back as the changed spec
    by_hand = _defined(conn, to_string(expected))
    by_virtkit = _defined(conn, to_string(rendered))
    assert _tree(ET.fromstring(by_virtkit)) == _tree(ET.fromstring(by_hand))
    assert parse(by_virtkit) == canonical(changed, Accel.KVM)


@pytest.mark.parametrize("name", FILES)
def test_round_trip_without_a_change_renders_the_same_xml(name: str) -> None:
    base = _text(name)
    spec = parse(base)
    assert to_string(render(spec, Accel.KVM, base=base)) == to_string(ET.fromstring(base))


@pytest.mark.parametrize("name", FILES)
def test_libvirt_keeps_what_parse_reads(name: str, conn: libvirt.virConnect) -> None:
    base = _text(name)
    assert parse(_defined(conn, base)) == parse(base)


def test_what_the_foreign_definitions_read_as() -> None:
    desktop = parse(_text("q35-uefi-desktop.xml"))
    assert (desktop.machine.value, desktop.firmware.value, desktop.secure_boot) == ("q35", "uefi", False)
    assert (desktop.cpu_model, desktop.guest_agent, desktop.serial_log) == ("host-passthrough", True, None)
    assert [d.target for d in desktop.disks] == ["vda"]  # the CD-ROM is not a disk virtkit models
    assert desktop.accel is Accel.KVM and desktop.memory == 4 * GiB
    server = parse(_text("pc-bios-server.xml"))
    assert server.boot == (BootDevice.DISK, BootDevice.CDROM)
    assert [(d.target, d.format, d.cache) for d in server.disks] == [
        ("vda", DiskFormat.QCOW2, None),
        ("vdb", DiskFormat.RAW, DiskCache.WRITEBACK),
    ]
    assert [(n.kind.value, n.source, n.mac) for n in server.nics] == [
        ("network", "default", "52:54:00:1f:8a:02"),
        ("bridge", "br0", "52:54:00:1f:8a:03"),
    ]
    windows = parse(_text("q35-windows11.xml"))
    assert windows.secure_boot and not windows.guest_agent
    assert [(d.target, d.bus) for d in windows.disks] == [("sda", DiskBus.SATA)]


def test_an_update_through_the_host_keeps_every_device(tmp_path: Path) -> None:
    """LibvirtHost.define renders on the definition libvirt holds: nothing of virt-manager's goes."""
    node = tmp_path / "node.xml"
    node.write_text("<node/>")
    host = LibvirtHost(f"test://{node}")
    try:
        before = _defined(host.conn, _text("q35-uefi-desktop.xml"))
        spec = parse(before)
        host.define(dataclasses.replace(spec, vcpus=6), Accel.KVM)
        after = host.get("debian12").xml()
    finally:
        host.close()
    expected = ET.fromstring(before)
    _find(expected, "vcpu").text = "6"
    assert _tree(ET.fromstring(after)) == _tree(expected)


def test_a_new_disk_cannot_take_the_target_of_a_cdrom() -> None:
    base = _text("q35-uefi-desktop.xml")
    spec = parse(base)
    sata = DiskSpec(path=Path("/var/lib/libvirt/images/more.qcow2"), bus=DiskBus.SATA)  # gets sda: the CD-ROM's
    with pytest.raises(InvalidSpec, match=r"disks\[1\].target: sda is the cdrom of this VM"):
        render(dataclasses.replace(spec, disks=(*spec.disks, sata)), Accel.KVM, base=base)


def test_devices_own_boot_order_is_read_and_kept() -> None:
    """virt-manager writes <boot order> in the devices when the order is customised; libvirt refuses it next to
    <os><boot>, so a changed order replaces theirs, and an unchanged one leaves them."""
    root = ET.fromstring(_text("pc-bios-server.xml"))
    os_el = _find(root, "os")
    for boot in os_el.findall("boot"):
        os_el.remove(boot)
    ET.SubElement(_device(root, "interface", type="network"), "boot", order="1")
    ET.SubElement(_device(root, "disk", target="vda"), "boot", order="2")
    base = to_string(root)
    spec = parse(base)
    assert spec.boot == (BootDevice.NETWORK, BootDevice.DISK)
    assert to_string(render(spec, Accel.KVM, base=base)) == base
    disk_first = render(dataclasses.replace(spec, boot=(BootDevice.DISK,)), Accel.KVM, base=base)
    assert [b.get("dev") for b in disk_first.iterfind("os/boot")] == ["hd"]
    assert disk_first.find("devices/*/boot") is None


def test_domain_facts() -> None:
    desktop = Domain.from_string(_text("q35-uefi-desktop.xml"))
    assert desktop.identity() == ("debian12", "6f1e3a8c-2b4d-4c5e-9f70-81a2b3c4d5e6")
    assert desktop.has_pflash and desktop.has_nvram
    assert desktop.agent_channel_state(AGENT) == "" and desktop.agent_channel_state("nope") is None
    assert [str(p) for p in desktop.unmodelled_files()] == ["/var/lib/libvirt/images/debian-12.5.0-amd64-netinst.iso"]
    server = Domain.from_string(_text("pc-bios-server.xml"))
    assert not server.has_pflash
    assert unmodelled_files(server.node) == []  # the CD-ROM is empty


def test_a_term_virtkit_does_not_model_is_unsupported_not_guessed() -> None:
    root = ET.fromstring(_text("pc-bios-server.xml"))
    _find(_device(root, "disk", target="vda"), "target").set("bus", "usb")
    with pytest.raises(Unsupported, match="DiskBus 'usb'"):
        parse(to_string(root))
    _find(root, "os/type").set("machine", "microvm")
    with pytest.raises(Unsupported, match="machine type 'microvm'"):
        parse(to_string(root))
