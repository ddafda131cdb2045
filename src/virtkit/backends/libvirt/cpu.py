"""CPU models across hosts: a host's own CPU, the baseline of several, and whether a host can run a given one.

All three go through the hypervisor, not the bare host CPU: ``virConnectGetDomainCapabilities`` gives the
``host-model`` CPU QEMU can offer under an accelerator, ``virConnectBaselineHypervisorCPU`` the richest CPU every
given CPU can run (libvirt's advice is to feed it the host-model CPUs of the hosts), and
``virConnectCompareHypervisorCPU`` says whether a host can run a CPU, naming the features it lacks.

Measured with libvirt 9.0 and QEMU 7.2 on an AMD EPYC host: under KVM the host-model is ``EPYC-Milan`` with about
50 feature changes; under TCG it is ``EPYC`` with features TCG emulates required and the ones it cannot disabled.
A domain defined with the TCG baseline boots the lab guest. See https://libvirt.org/formatdomaincaps.html#cpu-configuration.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

import libvirt

from virtkit.backends.libvirt import design
from virtkit.backends.libvirt.errors import libvirt_errors
from virtkit.backends.libvirt.tables import DOMAIN_TYPE
from virtkit.backends.libvirt.xml.cpu import CPU
from virtkit.errors import BackendError, CPUIncompatible, Unsupported
from virtkit.models.cpu import CPUModel
from virtkit.models.vm import Accel

__all__ = ["baseline", "check", "cpu_xml", "host_cpu", "host_model", "parse_cpu"]


def cpu_xml(cpu: CPUModel) -> str:
    """``<cpu mode='custom' match='exact'>`` for ``cpu``: its model, vendor and features, one element each."""
    return CPU.of_model(cpu).to_string()


def parse_cpu(xml: str) -> CPUModel:
    """The :class:`CPUModel` of a ``<cpu>`` element (what the baseline call returns).

    :raises BackendError: not a CPU element with a model.
    """
    return CPU.from_string(xml).to_model()


def host_model(domcaps_xml: str) -> CPUModel:
    """The ``host-model`` CPU of a domain capabilities document.

    :raises Unsupported: the hypervisor offers no host-model CPU (then no baseline can include this host).
    :raises BackendError: the document cannot be read.
    """
    try:
        root = ET.fromstring(domcaps_xml)
    except ET.ParseError as exc:
        raise BackendError(f"cannot read domain capabilities: {exc}") from exc
    mode = root.find("./cpu/mode[@name='host-model']")
    if mode is None or mode.get("supported") != "yes":
        raise Unsupported("the hypervisor offers no host-model CPU, so it cannot say which CPU it can run")
    return CPU(mode).to_model()


def _virt_type(accel: Accel) -> str:
    if accel is Accel.AUTO:
        raise ValueError("a resolved accelerator is needed (kvm or tcg)")
    return DOMAIN_TYPE.to_libvirt(accel)


def host_cpu(conn: libvirt.virConnect, accel: Accel, where: str) -> CPUModel:
    """The CPU the host at ``conn`` offers VMs under ``accel``: its host-model CPU.

    :raises Unsupported: no host-model CPU under ``accel``.
    :raises VirtkitError: translated from libvirt.
    """
    with libvirt_errors(f"read the domain capabilities of {where}"):
        caps: str = conn.getDomainCapabilities(None, design.ARCH, None, _virt_type(accel), 0)
    return host_model(caps)


def baseline(conn: libvirt.virConnect, cpus: Sequence[CPUModel], accel: Accel, where: str) -> CPUModel:
    """The richest CPU that every one of ``cpus`` can run, as the hypervisor at ``conn`` can provide it.

    :raises Unsupported: the CPUs have nothing in common (different vendors).
    :raises VirtkitError: translated from libvirt.
    """
    with libvirt_errors(f"compute a CPU baseline on {where}"):
        xmls = [cpu_xml(c) for c in cpus]
        text: str = conn.baselineHypervisorCPU(None, design.ARCH, None, _virt_type(accel), xmls, 0)
    return parse_cpu(text)


def check(conn: libvirt.virConnect, cpu: CPUModel, accel: Accel, where: str) -> None:
    """Make sure the host at ``conn`` can run ``cpu`` under ``accel``.

    :raises CPUIncompatible: it cannot; libvirt's message names the features the host does not provide.
    :raises Unsupported: the driver cannot compare CPUs.
    :raises VirtkitError: translated from libvirt.
    """
    flags = libvirt.VIR_CONNECT_COMPARE_CPU_FAIL_INCOMPATIBLE
    with libvirt_errors(f"{where} cannot run CPU {cpu.model} under {accel}"):
        result = conn.compareHypervisorCPU(None, design.ARCH, None, _virt_type(accel), cpu_xml(cpu), flags)
    if result == libvirt.VIR_CPU_COMPARE_INCOMPATIBLE:  # the flag makes libvirt raise instead; never trust it blindly
        raise CPUIncompatible(f"{where} cannot run CPU {cpu.model} under {accel}")
