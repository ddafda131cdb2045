"""The vendor-neutral VM spec: what a VM is, independent of how a hypervisor spells it."""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from pathlib import Path

import yaml

from virtkit.errors import InvalidSpec
from virtkit.models._fields import Spec, normalize, spec_field
from virtkit.models._yaml import read_file, read_yaml
from virtkit.models.cpu import HOST_CPU_MODES, check_cpu_features, check_cpu_model
from virtkit.models.disk import TARGET_PREFIX, DiskBus, DiskSpec
from virtkit.models.nic import NicSpec
from virtkit.units import MiB, TiB

__all__ = [
    "MAX_CPU_FEATURES",
    "MAX_DISKS",
    "MAX_NICS",
    "Accel",
    "AgentService",
    "BootDevice",
    "Firmware",
    "HostStopAction",
    "KernelBoot",
    "Machine",
    "SnapshotMode",
    "VMSpec",
]

#: The most disks a spec may have: Hyper-V's own (four SCSI controllers of 64 disks).
MAX_DISKS = 256
#: The most network adapters a spec may have: Hyper-V's own (64 synthetic and 4 legacy).
MAX_NICS = 68
#: The most CPU feature changes (an x86 CPU model has about two hundred features to require or disable).
MAX_CPU_FEATURES = 512


class Accel(StrEnum):
    """How guest code runs. ``auto`` picks ``kvm`` only where hardware virtualization is really there."""

    AUTO = "auto"
    KVM = "kvm"
    TCG = "tcg"


class Firmware(StrEnum):
    """``bios`` is SeaBIOS (Hyper-V Generation 1); ``uefi`` is OVMF (Generation 2)."""

    BIOS = "bios"
    UEFI = "uefi"


class Machine(StrEnum):
    """QEMU machine types: ``pc`` (i440fx, legacy devices) or ``q35`` (PCIe, no IDE)."""

    PC = "pc"
    Q35 = "q35"


class BootDevice(StrEnum):
    """Boot devices, in the order given."""

    DISK = "disk"
    NETWORK = "network"
    CDROM = "cdrom"


class SnapshotMode(StrEnum):
    """What a snapshot taken without saying otherwise holds (Hyper-V's CheckpointType).

    ``memory``: disks and memory (Standard); ``quiesced``: disks only, file systems frozen by the guest agent, or
    with memory when no agent answers (Production); ``quiesced_only``: like ``quiesced`` but failing without an
    agent (ProductionOnly); ``disabled``: no snapshots.
    """

    MEMORY = "memory"
    QUIESCED = "quiesced"
    QUIESCED_ONLY = "quiesced_only"
    DISABLED = "disabled"


class HostStopAction(StrEnum):
    """What to do with a running VM when its host stops (Hyper-V's AutomaticStopAction)."""

    SAVE = "save"
    SHUTDOWN = "shutdown"
    POWER_OFF = "power_off"


class AgentService(StrEnum):
    """What virtkit uses the guest agent for (Hyper-V's integration services), when ``guest_agent`` is on."""

    HEARTBEAT = "heartbeat"
    SHUTDOWN = "shutdown"
    TIME_SYNC = "time_sync"
    GUEST_INFO = "guest_info"  # OS, host name, addresses (Key-Value Pair Exchange)
    FILE_COPY = "file_copy"  # copy files into the guest (Guest Service Interface)
    FS_FREEZE = "fs_freeze"  # quiesce file systems for snapshots (VSS)


#: The agent services on unless a spec says otherwise: all but file copy, as on Hyper-V.
DEFAULT_AGENT_SERVICES = tuple(s for s in AgentService if s is not AgentService.FILE_COPY)


@dataclasses.dataclass(frozen=True)
class KernelBoot(Spec):
    """Direct kernel boot: the hypervisor loads the kernel and initrd itself (test guests, appliances)."""

    kernel: Path = spec_field("kernel image on the host")
    initrd: Path | None = spec_field("initial ramdisk on the host", default=None)
    cmdline: str = spec_field("kernel command line", default="")

    def __post_init__(self) -> None:
        normalize(self)


@dataclasses.dataclass(frozen=True)
class VMSpec(Spec):
    """A virtual machine: its hardware, firmware, disks and adapters. Frozen; equality drives idempotence."""

    name: str = spec_field("VM name: 1-63 letters, digits, '_', '.', '-'", name=True)
    vcpus: int = spec_field("virtual CPUs at boot", default=1, minimum=1, maximum=512)
    max_vcpus: int | None = spec_field("vCPU ceiling for hot-add (>= vcpus)", default=None, minimum=1, maximum=512)
    memory: int = spec_field(
        "memory at boot (Hyper-V MemoryStartupBytes)", default=512 * MiB, size=True, minimum=16 * MiB, maximum=4 * TiB
    )
    max_memory: int | None = spec_field(
        "memory ceiling for ballooning or hot-add (>= memory)",
        default=None,
        size=True,
        minimum=16 * MiB,
        maximum=4 * TiB,
    )
    firmware: Firmware = spec_field("bios or uefi", default=Firmware.BIOS)
    secure_boot: bool = spec_field("UEFI Secure Boot (needs firmware uefi and machine q35)", default=False)
    machine: Machine = spec_field("pc or q35", default=Machine.PC)
    accel: Accel = spec_field("auto, kvm or tcg", default=Accel.AUTO)
    cpu_model: str | None = spec_field(
        "host-model, host-passthrough, or a named model (a cluster baseline); default chosen per accelerator",
        default=None,
    )
    cpu_features: tuple[str, ...] = spec_field(
        "changes to a named cpu_model: '+name' requires a feature, '-name' disables it (as virtkit.cpu_baseline gives)",
        default=(),
        max_items=MAX_CPU_FEATURES,
    )
    boot: tuple[BootDevice, ...] = spec_field("boot order", default=(BootDevice.DISK,))
    kernel: KernelBoot | None = spec_field("direct kernel boot instead of firmware boot", default=None)
    disks: tuple[DiskSpec, ...] = spec_field("disks, in order", default=(), max_items=MAX_DISKS)
    nics: tuple[NicSpec, ...] = spec_field("network adapters, in order", default=(), max_items=MAX_NICS)
    serial_log: Path | None = spec_field("file that receives the serial console (appended)", default=None)
    guest_agent: bool = spec_field("add the qemu-guest-agent channel", default=False)
    agent_services: tuple[AgentService, ...] = spec_field(
        "what virtkit uses the guest agent for (Hyper-V's integration services)", default=DEFAULT_AGENT_SERVICES
    )
    snapshot_mode: SnapshotMode = spec_field(
        "what a snapshot holds when not told (Hyper-V's CheckpointType)", default=SnapshotMode.MEMORY
    )
    on_host_stop: HostStopAction = spec_field(
        "what happens to the running VM when its host stops (Hyper-V's AutomaticStopAction)",
        default=HostStopAction.SAVE,
    )
    description: str | None = spec_field(
        "free text kept with the VM, lines allowed (Hyper-V's Notes)", default=None, multiline=True
    )
    enlightenments: bool = spec_field(
        "Hyper-V enlightenments, the paravirtual interfaces Windows guests use (relaxed timing, virtual APIC, "
        "spinlock hints, synthetic timers and interrupts, the reference clock): the set the accelerator supports",
        default=False,
    )

    def __post_init__(self) -> None:
        normalize(self)
        if len(set(self.agent_services)) != len(self.agent_services):
            raise InvalidSpec("agent_services", "lists a service twice")
        # One order for equal sets, so that equality of specs means equality of what they ask for.
        object.__setattr__(self, "agent_services", tuple(s for s in AgentService if s in self.agent_services))
        if self.max_vcpus is not None and self.max_vcpus < self.vcpus:
            raise InvalidSpec("max_vcpus", f"{self.max_vcpus} is below vcpus ({self.vcpus})")
        if self.max_memory is not None and self.max_memory < self.memory:
            raise InvalidSpec("max_memory", "is below memory")
        if self.secure_boot and (self.firmware is not Firmware.UEFI or self.machine is not Machine.Q35):
            raise InvalidSpec("secure_boot", "needs firmware uefi and machine q35")
        if self.cpu_model is not None:
            check_cpu_model("cpu_model", self.cpu_model)
        object.__setattr__(self, "cpu_features", check_cpu_features("cpu_features", self.cpu_features))
        if self.cpu_features and (self.cpu_model is None or self.cpu_model in HOST_CPU_MODES):
            raise InvalidSpec("cpu_features", "apply only to a named cpu_model, not to the host's own CPU")
        if len(set(self.boot)) != len(self.boot):
            raise InvalidSpec("boot", "lists a device twice")
        self._check_disks()
        macs: dict[str, int] = {}
        for i, nic in enumerate(self.nics):
            if nic.mac is not None and macs.setdefault(nic.mac, i) != i:
                raise InvalidSpec(f"nics[{i}].mac", f"{nic.mac} is the MAC address of nics[{macs[nic.mac]}] too")

    def _check_disks(self) -> None:
        paths: set[Path] = set()
        addresses: dict[tuple[int, int], int] = {}
        for i, disk in enumerate(self.disks):
            if disk.controller is not None and disk.unit is not None:
                other = addresses.setdefault((disk.controller, disk.unit), i)
                if other != i:
                    raise InvalidSpec(
                        f"disks[{i}].unit", f"unit {disk.unit} of SCSI controller {disk.controller} is disks[{other}]'s"
                    )
            if disk.bus is DiskBus.IDE and self.machine is Machine.Q35:
                raise InvalidSpec(f"disks[{i}].bus", "q35 has no IDE controller; use sata, scsi or virtio")
            if disk.path in paths:
                raise InvalidSpec(f"disks[{i}].path", f"{disk.path} is used by another disk of this VM")
            paths.add(disk.path)
        if self.serial_log in paths:
            raise InvalidSpec(
                "serial_log", f"{self.serial_log} is a disk of this VM; the serial log would write into it"
            )
        targets = assign_targets(self.disks)
        if len(set(targets)) != len(targets):
            raise InvalidSpec("disks", "two disks have the same target")

    @property
    def effective_max_vcpus(self) -> int:
        """The vCPU ceiling: ``max_vcpus``, or ``vcpus`` when none was given."""
        return self.max_vcpus or self.vcpus

    @property
    def effective_max_memory(self) -> int:
        """The memory ceiling: ``max_memory``, or ``memory`` when none was given."""
        return self.max_memory or self.memory

    def adopt_generated(self, actual: VMSpec) -> VMSpec:
        """This spec with the values it left to the hypervisor (NIC MAC addresses, SCSI addresses of disks) taken
        from ``actual``.

        Comparing the result with ``actual`` tells whether a defined VM is the one this spec asks for.
        """
        placed = {d.target: d for d in actual.disks if d.target is not None}
        disks = tuple(
            dataclasses.replace(
                w,
                controller=a.controller if w.controller is None else w.controller,
                unit=a.unit if w.unit is None else w.unit,
            )
            if w.bus is DiskBus.SCSI and (a := placed.get(w.target or "")) is not None and a.bus is DiskBus.SCSI
            else w
            for w in self.disks
        )
        nics = (
            tuple(
                dataclasses.replace(w, mac=a.mac) if w.mac is None and w.kind is a.kind else w
                for w, a in zip(self.nics, actual.nics, strict=False)
            )
            + self.nics[len(actual.nics) :]
        )
        return dataclasses.replace(self, nics=nics, disks=disks)

    @classmethod
    def from_yaml(cls, text: str) -> VMSpec:
        """A spec from YAML text; deep nesting, alias bombs and keys given twice are refused (see
        :mod:`virtkit.models._yaml`).

        :raises InvalidSpec: on YAML that is not valid or too large (field ``yaml``) and on any bad field.
        """
        return cls.from_dict(read_yaml(text))

    @classmethod
    def from_file(cls, path: str | Path) -> VMSpec:
        """A spec from a YAML (or JSON) file of UTF-8 text; a FIFO or a device is refused without waiting on it.

        :raises InvalidSpec: the file cannot be read, is no regular file, too large or not UTF-8 (field ``file``,
            the message names it), or as :meth:`from_yaml`.
        """
        return cls.from_yaml(read_file(path))

    def to_yaml(self) -> str:
        """YAML text that :meth:`from_yaml` reads back to an equal spec."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def assign_targets(disks: tuple[DiskSpec, ...]) -> list[str]:
    """The guest device name of each disk: its own ``target``, or the next free one for its bus prefix."""
    used = {d.target for d in disks if d.target}
    lowest: dict[str, int] = {}  # per prefix, the first name that may still be free: each name is tried once
    out: list[str] = []
    for disk in disks:
        if disk.target:
            out.append(disk.target)
            continue
        prefix = TARGET_PREFIX[disk.bus]
        n = lowest.get(prefix, 0)
        while (name := prefix + _letters(n)) in used:
            n += 1
        lowest[prefix] = n + 1
        used.add(name)
        out.append(name)
    return out


def _letters(n: int) -> str:
    """0 -> 'a', 25 -> 'z', 26 -> 'aa' (the kernel's sd naming)."""
    s = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(ord("a") + r) + s
    return s
