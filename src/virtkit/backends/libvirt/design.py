"""Policy: the choices virtkit makes when a spec leaves them open. The XML layer holds none of these.

Like Nova's ``designer.py``: accelerator choice, CPU model defaults, firmware files, device naming.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from virtkit.models.vm import Accel

if TYPE_CHECKING:
    from virtkit.backends.libvirt.xml.domain import Domain

__all__ = [
    "AGENT_CHANNEL",
    "ARCH",
    "BALLOON_MODEL",
    "ENLIGHTENMENTS",
    "FEATURES",
    "IMPLIED_PCI_DEVICES",
    "MEMBALLOON_MODEL",
    "OVMF",
    "SCSI_CONTROLLER_MODEL",
    "SPARE_ROOT_PORTS",
    "SPINLOCK_RETRIES",
    "TCG_SOUND_TRACKING",
    "Firmware",
    "HostFacts",
    "default_cpu_mode",
    "foreign_firmware",
    "host_facts",
    "memory_tracking_sound",
    "resolve_accel",
]

#: The virtio-serial port name qemu-guest-agent listens on.
AGENT_CHANNEL = "org.qemu.guest_agent.0"

#: The guest architecture of every VM.
ARCH = "x86_64"

#: The ``<features>`` a new definition gets: ACPI (power button, shutdown) and the local APIC, which every guest
#: operating system virtkit runs expects.
FEATURES = ("acpi", "apic")

#: The Hyper-V enlightenments a VM with ``enlightenments`` gets, per accelerator, in the order libvirt writes them.
#: Under KVM the full set Windows uses, with what each needs: synthetic interrupts (``synic``), timers (``stimer``,
#: direct mode), remote TLB flushes (``tlbflush``) and IPIs (``ipi``) all need ``vpindex``; ``stimer`` also needs
#: ``synic`` and the reference clock (``runtime``, the ``hypervclock`` timer). The nested-only ``evmcs`` (Intel)
#: and ``avic`` (AMD) are left out. Under TCG QEMU refuses ``vpindex`` at start ("kernel doesn't allow setting
#: HyperV VP_INDEX"), so nothing that needs it is given; what remains starts, and the guest boots (measured on
#: QEMU 7.2).
ENLIGHTENMENTS: dict[Accel, tuple[str, ...]] = {
    Accel.KVM: (
        "relaxed", "vapic", "spinlocks", "vpindex", "runtime", "synic", "stimer", "reset", "frequencies",
        "reenlightenment", "tlbflush", "ipi",
    ),
    Accel.TCG: ("relaxed", "vapic", "spinlocks", "runtime", "reset", "frequencies"),
}  # fmt: skip

#: How often a guest spins on a lock before it tells the hypervisor (the retries Hyper-V itself suggests).
SPINLOCK_RETRIES = 8191

#: No balloon in a new definition unless its memory may change while it runs (``max_memory`` above ``memory``,
#: Hyper-V's Dynamic Memory): it costs a device and a guest driver for nothing. (QEMU domains get a virtio balloon
#: when the definition names none.)
MEMBALLOON_MODEL = "none"
#: The balloon of a VM whose memory changes while it runs.
BALLOON_MODEL = "virtio"

#: Disks on the ``scsi`` bus sit on one virtio-scsi controller (Hyper-V's synthetic SCSI controller).
SCSI_CONTROLLER_MODEL = "virtio-scsi"


#: Free PCI Express root ports a new q35 VM gets for hot-added devices (a virtio disk, an adapter, a SCSI controller
#: each take one; a port itself cannot be hot-added). libvirt alone leaves one free.
SPARE_ROOT_PORTS = 8

#: Devices libvirt adds to a q35 definition by itself that sit on a root port: the USB controller (qemu-xhci).
IMPLIED_PCI_DEVICES = ("usb",)


@dataclass(frozen=True)
class Firmware:
    """One OVMF build: code (read-only pflash) and the template its per-VM NVRAM is copied from."""

    code: Path
    vars_template: Path


#: Debian's ovmf package. A bare ``<os firmware='efi'>`` would pick the Secure Boot build with Microsoft keys and
#: turn SMM on (measured, see docs/platform.md), so virtkit names the files itself.
OVMF = {
    False: Firmware(Path("/usr/share/OVMF/OVMF_CODE_4M.fd"), Path("/usr/share/OVMF/OVMF_VARS_4M.fd")),
    True: Firmware(Path("/usr/share/OVMF/OVMF_CODE_4M.ms.fd"), Path("/usr/share/OVMF/OVMF_VARS_4M.ms.fd")),
}


def foreign_firmware(dom: Domain) -> str | None:
    """Why the ``<os>`` firmware of a domain definition is not one virtkit writes, or ``None`` when it is.

    virtkit names its firmware itself (:data:`OVMF`): a loader or NVRAM template from anywhere else would let a
    definition read a host file into the guest.
    """
    if dom.loader is not None and dom.loader not in {f.code for f in OVMF.values()}:
        return f"loader {str(dom.loader)[:120]}"
    if dom.nvram_template is not None and dom.nvram_template not in {f.vars_template for f in OVMF.values()}:
        return f"NVRAM template {str(dom.nvram_template)[:120]}"
    return None


@dataclass(frozen=True)
class HostFacts:
    """What a host's libvirt capabilities say about acceleration."""

    hardware_virt: bool  # the host CPU has vmx or svm
    kvm_domain_type: bool  # libvirt offers <domain type='kvm'> for x86_64
    cpu_features: frozenset[str]

    @property
    def kvm_usable(self) -> bool:
        """Hardware virtualization is really there, not only a /dev/kvm.

        libvirt lists ``type='kvm'`` whenever /dev/kvm opens, which is also true of PVM ("pagetable-based VM"), on
        which a stock guest kernel does not run (docs/platform.md). So both must hold: libvirt offers kvm, and the
        host CPU that libvirt reports carries vmx or svm.
        """
        return self.hardware_virt and self.kvm_domain_type


def host_facts(capabilities_xml: str) -> HostFacts:
    """Read :class:`HostFacts` from ``virConnectGetCapabilities`` XML (works for remote hosts too)."""
    root = ET.fromstring(capabilities_xml)
    features = frozenset(f.get("name", "") for f in root.iterfind("./host/cpu/feature"))
    kvm = any(
        d.get("type") == "kvm"
        for g in root.iterfind("./guest")
        if g.find("./arch[@name='x86_64']") is not None
        for d in g.iterfind("./arch/domain")
    )
    return HostFacts(hardware_virt=bool({"vmx", "svm"} & features), kvm_domain_type=kvm, cpu_features=features)


def resolve_accel(requested: Accel, facts: HostFacts) -> Accel:
    """``auto`` becomes ``kvm`` only where it really works, else ``tcg``; an explicit choice is kept."""
    if requested is Accel.AUTO:
        return Accel.KVM if facts.kvm_usable else Accel.TCG
    return requested


def default_cpu_mode(accel: Accel) -> str:
    """The CPU model used when a spec names none: ``host-model`` under KVM; ``qemu64`` under TCG.

    ``qemu64`` is what libvirt writes into a TCG definition that names no CPU; virtkit writes it itself so that the
    definition it reads back is the one it asked for.
    """
    return "host-model" if accel is Accel.KVM else "qemu64"


#: The first QEMU whose TCG tracks dirty memory soundly during a migration, as libvirt encodes versions
#: (major * 1,000,000 + minor * 1,000 + micro). Before it, a dirty-bitmap sync can leave a vCPU's TLB allowing
#: writes to a page that is no longer tracked: the page is copied once and never again, and the guest resumes on the
#: destination with stale memory (a crash). QEMU 9.0 resets the TLB on every sync (docs/platform.md).
TCG_SOUND_TRACKING = 9_000_000


def memory_tracking_sound(accel: Accel, qemu_version: int) -> bool:
    """Whether QEMU ``qemu_version`` tracks a running guest's dirty memory soundly under ``accel``: KVM always
    does (the hardware marks pages), TCG from QEMU 9.0."""
    return accel is not Accel.TCG or qemu_version >= TCG_SOUND_TRACKING
