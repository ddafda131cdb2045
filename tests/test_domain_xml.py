"""Domain XML virtkit writes: golden files, definition on libvirt's test driver, parse round-trips, unmodelled XML
kept (XML others wrote is in test_foreign_xml.py)."""

from __future__ import annotations

import dataclasses
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from virtkit import Accel, VMSpec
from virtkit.backends.libvirt import design
from virtkit.backends.libvirt.xml.domain import canonical, parse, render, to_string

GOLDEN = Path(__file__).parent / "golden"
DATA = Path(__file__).parent / "data"

SPECS = {
    "minimal": {"name": "tiny"},
    "lab-guest": {
        "name": "demo1",
        "memory": "256MiB",
        "kernel": {
            "kernel": "/var/lib/virtkit/guest/plain/vmlinuz",
            "initrd": "/var/lib/virtkit/guest/plain/initrd.img",
            "cmdline": "console=ttyS0 quiet",
        },
        "disks": [{"path": "/var/lib/virtkit/shared/demo1.qcow2", "size": "1GiB"}],
        "serial_log": "/var/lib/virtkit/shared/demo1.serial.log",
    },
    "generation2": {
        "name": "gen2",
        "vcpus": 2,
        "max_vcpus": 8,
        "memory": "1GiB",
        "max_memory": "4GiB",
        "firmware": "uefi",
        "secure_boot": True,
        "machine": "q35",
        "boot": ["disk", "network"],
        "disks": [
            {"path": "/var/lib/virtkit/shared/gen2.qcow2", "bus": "scsi", "cache": "none"},
            {"path": "/var/lib/virtkit/shared/data.vhd", "format": "vhd", "bus": "scsi"},
            {"path": "/dev/sdz", "kind": "block", "format": "raw", "bus": "virtio", "readonly": True},
        ],
        "nics": [
            {"kind": "network", "source": "default", "mac": "52:54:00:aa:bb:cc", "mtu": 9000},
            {"kind": "bridge", "source": "br0", "model": "e1000"},
        ],
        "guest_agent": True,
    },
    "named-cpu": {"name": "pinned", "cpu_model": "Haswell-noTSX", "accel": "kvm"},
    "enlightened": {"name": "win1", "memory": "4GiB", "firmware": "uefi", "machine": "q35", "enlightenments": True},
}


def _render(name: str, accel: Accel) -> str:
    spec = VMSpec.from_dict(SPECS[name])
    root = render(spec, accel)
    ET.indent(root)
    return to_string(root) + "\n"


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("accel", [Accel.TCG, Accel.KVM])
def test_golden_xml(name: str, accel: Accel) -> None:
    """Rendered XML matches tests/golden/ (regenerate with VIRTKIT_UPDATE_GOLDEN=1 and review the diff)."""
    golden = GOLDEN / f"{name}.{accel.value}.xml"
    xml = _render(name, accel)
    if os.environ.get("VIRTKIT_UPDATE_GOLDEN"):
        golden.write_text(xml)
    assert xml == golden.read_text()


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("accel", [Accel.TCG, Accel.KVM])
def test_defines_on_libvirt_and_parses_back(name: str, accel: Accel, tmp_path: Path) -> None:
    """libvirt accepts the XML, and what it stores reads back as the canonical spec."""
    node = tmp_path / "node.xml"
    node.write_text("<node/>")
    conn = libvirt.open(f"test://{node}")
    try:
        spec = VMSpec.from_dict(SPECS[name])
        dom = conn.defineXML(to_string(render(spec, accel)))
        stored = parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    finally:
        conn.close()
    assert stored == canonical(spec, accel).adopt_generated(stored)
    assert stored.nics == () or all(n.mac for n in stored.nics)  # libvirt chose the MACs left open


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("accel", [Accel.TCG, Accel.KVM])
def test_golden_round_trip_without_a_change_renders_the_same_xml(name: str, accel: Accel) -> None:
    xml = (GOLDEN / f"{name}.{accel.value}.xml").read_text()
    assert to_string(render(parse(xml), accel, base=xml)) == to_string(ET.fromstring(xml))


def test_kvm_uses_host_model_cpu_and_tcg_names_qemu64() -> None:
    kvm = ET.fromstring(_render("minimal", Accel.KVM))
    tcg = ET.fromstring(_render("minimal", Accel.TCG))
    assert kvm.get("type") == "kvm"
    assert kvm.find("cpu") is not None and kvm.find("cpu").get("mode") == "host-model"  # type: ignore[union-attr]
    assert tcg.get("type") == "qemu"
    assert tcg.findtext("cpu/model") == "qemu64"


def test_render_keeps_xml_it_does_not_model() -> None:
    base = ET.fromstring((DATA / "node.xml").read_text()).find("domain")
    assert base is not None
    spec = parse(to_string(base))
    bigger = VMSpec.from_dict({**spec.to_dict(), "memory": "512MiB"})
    out = render(bigger, Accel.TCG, base=to_string(base))
    assert out.findtext("description") == "made by hand, not by virtkit"
    assert out.find("devices/video/model[@type='vga']") is not None
    assert out.find("devices/input[@type='tablet']") is not None
    assert out.find("features/pae") is not None
    assert out.findtext("currentMemory") == str(512 * 1024)
    assert parse(to_string(out)) == canonical(bigger, Accel.TCG)


def test_hostile_strings_are_escaped_by_elementtree_not_interpreted() -> None:
    spec = VMSpec.from_dict(
        {
            "name": "x",
            "kernel": {"kernel": "/k", "cmdline": "console=ttyS0 a=<b>&'\"</cmdline><evil/>"},
        }
    )
    root = ET.fromstring(to_string(render(spec, Accel.TCG)))
    assert root.findtext("os/cmdline") == "console=ttyS0 a=<b>&'\"</cmdline><evil/>"
    assert root.find(".//evil") is None


def test_accel_auto_resolution_needs_real_hardware_virtualization() -> None:
    caps = """<capabilities><host><cpu><arch>x86_64</arch>{features}</cpu></host>
      <guest><os_type>hvm</os_type><arch name='x86_64'><domain type='qemu'/>{kvm}</arch></guest></capabilities>"""
    pvm = design.host_facts(caps.format(features="<feature name='hypervisor'/>", kvm="<domain type='kvm'/>"))
    vtx = design.host_facts(caps.format(features="<feature name='vmx'/>", kvm="<domain type='kvm'/>"))
    amd_no_dev = design.host_facts(caps.format(features="<feature name='svm'/>", kvm=""))
    assert design.resolve_accel(Accel.AUTO, pvm) is Accel.TCG  # /dev/kvm without vmx/svm (PVM): not real
    assert design.resolve_accel(Accel.AUTO, vtx) is Accel.KVM
    assert design.resolve_accel(Accel.AUTO, amd_no_dev) is Accel.TCG
    assert design.resolve_accel(Accel.KVM, pvm) is Accel.KVM  # forcing is allowed


@pytest.mark.parametrize("accel", [Accel.KVM, Accel.TCG])
def test_enlightenments_are_the_accelerators_set_with_the_reference_clock(accel: Accel) -> None:
    root = ET.fromstring(_render("enlightened", accel))
    hyperv = root.find("features/hyperv")
    assert hyperv is not None and hyperv.get("mode") == "custom"
    assert tuple(child.tag for child in hyperv) == design.ENLIGHTENMENTS[accel]
    assert all(child.get("state") == "on" for child in hyperv)
    assert root.find("features/hyperv/spinlocks").get("retries") == "8191"  # type: ignore[union-attr]
    assert root.find("clock/timer[@name='hypervclock']").get("present") == "yes"  # type: ignore[union-attr]
    if accel is Accel.KVM:  # what each needs is there: synic, stimer, tlbflush and ipi need vpindex
        assert {"vpindex", "synic", "stimer", "tlbflush", "ipi"} <= set(design.ENLIGHTENMENTS[accel])
        assert root.find("features/hyperv/stimer/direct").get("state") == "on"  # type: ignore[union-attr]
    else:  # QEMU refuses vpindex under TCG at start, so nothing that needs it is there
        assert not {"vpindex", "synic", "stimer", "tlbflush", "ipi"} & set(design.ENLIGHTENMENTS[accel])
    assert parse(to_string(root)).enlightenments


def test_enlightenments_off_removes_them_and_their_clock_and_keeps_the_rest() -> None:
    xml = _render("enlightened", Accel.KVM)
    spec = parse(xml)
    out = render(dataclasses.replace(spec, enlightenments=False), Accel.KVM, base=xml)
    assert out.find("features/hyperv") is None and out.find("clock/timer[@name='hypervclock']") is None
    assert out.find("features/acpi") is not None and out.find("features/smm") is None
    assert not parse(to_string(out)).enlightenments


def test_enlightenments_made_by_others_are_kept_as_they_are() -> None:
    xml = _render("minimal", Accel.KVM).replace("<features>", "<features><hyperv mode='passthrough'/>")
    spec = parse(xml)
    assert spec.enlightenments
    out = render(dataclasses.replace(spec, memory=2 * spec.memory), Accel.KVM, base=xml)
    assert out.find("features/hyperv").get("mode") == "passthrough"  # type: ignore[union-attr]
