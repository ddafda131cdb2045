"""CPU models without a real hypervisor: the CPUModel and cpu_features checks, the <cpu> XML virtkit sends to the
baseline and compare calls and reads back, a baseline CPU in a domain definition (defined on libvirt's test
driver), and what Host does where the driver cannot compare CPUs. The real baseline is in integration/test_cpu.py.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

import virtkit
from virtkit import Accel, CPUModel, InvalidSpec, Unsupported, VMSpec
from virtkit.backends.libvirt import cpu as libvirt_cpu
from virtkit.backends.libvirt.xml.domain import canonical, parse, render, to_string

# The shape of libvirt 9.0's answer under TCG on an AMD host (trimmed).
DOMCAPS = """<domainCapabilities><path>/usr/bin/qemu-system-x86_64</path><domain>qemu</domain><arch>x86_64</arch>
  <cpu>
    <mode name='host-passthrough' supported='no'/>
    <mode name='host-model' supported='yes'>
      <model fallback='forbid'>EPYC</model>
      <vendor>AMD</vendor>
      <feature policy='require' name='pku'/>
      <feature policy='require' name='la57'/>
      <feature policy='disable' name='vme'/>
      <feature policy='disable' name='sha-ni'/>
    </mode>
    <mode name='custom' supported='yes'><model usable='yes' vendor='unknown'>qemu64</model></mode>
  </cpu>
</domainCapabilities>"""

BASELINE = CPUModel("EPYC", ("+pku", "+la57", "-vme", "-sha-ni"), vendor="AMD")


def test_cpu_model_checks() -> None:
    assert BASELINE.required == ("pku", "la57") and BASELINE.disabled == ("vme", "sha-ni")
    assert CPUModel("Haswell-noTSX", ["+sse4.1", "-tsc_adjust"]).features == ("+sse4.1", "-tsc_adjust")  # type: ignore[arg-type]
    for kwargs, field in [
        ({"model": "host-model"}, "model"),
        ({"model": "bad model"}, "model"),
        ({"model": "EPYC", "features": ("pku",)}, "features[0]"),
        ({"model": "EPYC", "features": ("+pku", "-x", "-pku")}, "features[2]"),
        ({"model": "EPYC", "features": ("+a;b",)}, "features[0]"),
        ({"model": "EPYC", "features": "+pku"}, "features"),
    ]:
        with pytest.raises(InvalidSpec) as err:
            CPUModel(**kwargs)  # type: ignore[arg-type]
        assert err.value.field == field


def test_spec_cpu_features_need_a_named_model() -> None:
    spec = BASELINE.apply(VMSpec(name="mover"))
    assert spec.cpu_model == "EPYC" and spec.cpu_features == BASELINE.features
    assert VMSpec.from_yaml(spec.to_yaml()) == spec
    for data in (
        {"name": "a", "cpu_features": ["+pku"]},
        {"name": "a", "cpu_model": "host-model", "cpu_features": ["+pku"]},
        {"name": "a", "cpu_model": "EPYC", "cpu_features": ["pku"]},
        {"name": "a", "cpu_model": "EPYC", "cpu_features": "+pku"},
    ):
        with pytest.raises(InvalidSpec, match="cpu_features"):
            VMSpec.from_dict(data)


def test_cpu_xml_for_the_baseline_and_compare_calls() -> None:
    root = ET.fromstring(libvirt_cpu.cpu_xml(BASELINE))
    assert (root.tag, root.get("mode"), root.get("match")) == ("cpu", "custom", "exact")
    assert root.findtext("model") == "EPYC" and root.find("model").get("fallback") == "forbid"  # type: ignore[union-attr]
    assert root.findtext("vendor") == "AMD"
    assert [(f.get("policy"), f.get("name")) for f in root.iterfind("feature")] == [
        ("require", "pku"),
        ("require", "la57"),
        ("disable", "vme"),
        ("disable", "sha-ni"),
    ]
    assert libvirt_cpu.parse_cpu(libvirt_cpu.cpu_xml(BASELINE)) == BASELINE
    assert ET.fromstring(libvirt_cpu.cpu_xml(CPUModel("qemu64"))).find("vendor") is None


def test_host_model_is_read_from_domain_capabilities() -> None:
    assert libvirt_cpu.host_model(DOMCAPS) == BASELINE
    unsupported = DOMCAPS.replace("name='host-model' supported='yes'", "name='host-model' supported='no'")
    with pytest.raises(Unsupported, match="host-model"):
        libvirt_cpu.host_model(unsupported)


def test_libvirt_policies_read_as_signs_lossy_ones_explained() -> None:
    xml = """<cpu mode='custom'><model>EPYC</model><feature policy='force' name='a'/>
      <feature policy='forbid' name='b'/><feature policy='optional' name='c'/><feature name='d'/></cpu>"""
    assert libvirt_cpu.parse_cpu(xml).features == ("+a", "-b", "+d")  # optional: no change; no policy: require


def test_a_baseline_cpu_defines_on_libvirt_and_parses_back(tmp_path: Path) -> None:
    spec = BASELINE.apply(VMSpec(name="mover", memory=256 * 2**20))
    root = render(spec, Accel.TCG)
    cpu = root.find("cpu")
    assert cpu is not None and cpu.get("mode") == "custom" and cpu.findtext("model") == "EPYC"
    assert [f.get("policy") + ":" + f.get("name", "") for f in cpu.iterfind("feature")] == [  # type: ignore[operator]
        "require:pku",
        "require:la57",
        "disable:vme",
        "disable:sha-ni",
    ]
    node = tmp_path / "node.xml"
    node.write_text("<node/>")
    conn = libvirt.open(f"test://{node}")
    try:
        dom = conn.defineXML(to_string(root))
        stored = parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    finally:
        conn.close()
    assert stored == canonical(spec, Accel.TCG)
    assert stored.cpu_features == BASELINE.features


def test_host_checks_where_the_driver_cannot_compare(host: virtkit.Host) -> None:
    with pytest.raises(Unsupported, match="not supported"):  # libvirt's test driver has no domain capabilities
        host.cpu()
    assert not host.can_run_cpu(BASELINE)  # it cannot say yes, so the answer is no
    # The host's own CPU needs no comparison: any host runs its host-model.
    assert host.can_run_cpu(VMSpec(name="own", cpu_model="host-model"))
    with pytest.raises(InvalidSpec, match="CPUModel"):
        host.check_cpu("EPYC")  # type: ignore[arg-type]


def test_cpu_baseline_needs_hosts() -> None:
    with pytest.raises(InvalidSpec, match="hosts"):
        virtkit.cpu_baseline([])
