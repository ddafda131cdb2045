"""A VM in Hyper-V's words: the names New-VM, Set-VM, Set-VMProcessor, Set-VMMemory, Set-VMFirmware,
Add-VMHardDiskDrive and Add-VMNetworkAdapter take, read from YAML or a dict, converted to the neutral
:class:`~virtkit.models.vm.VMSpec` and back.

A Generation 1 VM is a ``pc`` machine with BIOS firmware (SeaBIOS) whose boot disk sits on IDE; a Generation 2 VM
is a ``q35`` machine with UEFI firmware (OVMF), Secure Boot on unless switched off, its disks on the SCSI
controller (virtio-scsi). Errors name the Hyper-V field (``HardDrives[1].ControllerLocation``). A value Hyper-V
takes that KVM cannot honour raises :class:`~virtkit.errors.Unsupported` saying what would work.

Virtual hard disks: a ``.vhdx`` or ``.vhd`` drive runs from a qcow2 image imported beside it (``web.vhdx`` runs
from ``web.vhdx.qcow2``; the original is kept), because QEMU cannot migrate, save or snapshot a VM with a VHD disk
and libvirt cannot attach VHDX at all. :meth:`HyperVSpec.imports` lists them; :func:`virtkit.hyperv.new_vm` makes
them. A ``Path`` under ``/dev`` is a host block device passed through (Hyper-V's pass-through disk).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from virtkit.errors import InvalidSpec, Unsupported
from virtkit.hyperv.vocabulary import (
    AUTOMATIC_STOP_ACTION,
    CHECKPOINT_TYPE,
    CONTROLLER_BUS,
    INTEGRATION_SERVICE,
    AutomaticStopAction,
    CheckpointType,
    ControllerType,
    SecureBootTemplate,
)
from virtkit.hyperv.words import hyperv_field, hyperv_text
from virtkit.models._fields import Spec, normalize, spec_field
from virtkit.models._yaml import read_file, read_yaml
from virtkit.models.disk import MAX_SCSI_CONTROLLER, MAX_SCSI_UNIT, DiskBus, DiskFormat, DiskKind, DiskSpec
from virtkit.models.nic import NicKind, NicModel, NicSpec
from virtkit.models.vm import (
    DEFAULT_AGENT_SERVICES,
    MAX_DISKS,
    MAX_NICS,
    BootDevice,
    Firmware,
    Machine,
    VMSpec,
)
from virtkit.units import MiB, TiB
from virtkit.validate import shown

__all__ = [
    "IMPORT_SUFFIX",
    "MAX_PROCESSORS",
    "HardDrive",
    "HyperVSpec",
    "IntegrationServices",
    "NetworkAdapter",
    "check_template",
    "disk_of",
    "drive_of",
    "place_drives",
    "unexpressed",
]

#: What an imported VHD or VHDX is called: its own name with this appended.
IMPORT_SUFFIX = ".qcow2"

# A file's extension and the format it holds. .avhd/.avhdx (Hyper-V's differencing disks) are refused apart.
_FORMATS = {
    ".vhdx": DiskFormat.VHDX,
    ".vhd": DiskFormat.VHD,
    ".qcow2": DiskFormat.QCOW2,
    ".img": DiskFormat.RAW,
    ".raw": DiskFormat.RAW,
}
_DIFFERENCING = (".avhdx", ".avhd")
_BLOCK_DIR = Path("/dev")
_IMPORTED = (DiskFormat.VHD, DiskFormat.VHDX)

# Hyper-V writes a MAC address as 12 hex digits (00155D010203); colons or dashes are read too.
_MAC = r"[0-9A-Fa-f]{2}([-:]?)[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}"
_IDE_SLOTS = ((0, 0), (0, 1), (1, 0), (1, 1))  # (ControllerNumber, ControllerLocation): hda, hdb, hdc, hdd
MAX_PROCESSORS = 240  # Hyper-V's own limit for one VM (New-VM, Set-VMProcessor -Count)


@dataclasses.dataclass(frozen=True)
class HardDrive(Spec):
    """One virtual hard disk drive (Add-VMHardDiskDrive)."""

    path: Path = spec_field(
        "a .vhdx, .vhd, .qcow2 or .img/.raw file, or a host block device under /dev (pass-through)", key="Path"
    )
    controller_type: ControllerType | None = spec_field(
        "IDE or SCSI (VirtIO and SATA on KVM only); IDE on Generation 1, SCSI on Generation 2 when omitted",
        default=None,
        key="ControllerType",
    )
    controller_number: int | None = spec_field(
        "which controller: IDE 0-1, SCSI 0-31; the first with a free location when omitted",
        default=None,
        minimum=0,
        maximum=MAX_SCSI_CONTROLLER,
        key="ControllerNumber",
    )
    controller_location: int | None = spec_field(
        "the location on the controller: IDE 0-1, SCSI 0-16383; the first free one when omitted",
        default=None,
        minimum=0,
        maximum=MAX_SCSI_UNIT,
        key="ControllerLocation",
    )
    format: DiskFormat | None = spec_field(
        "(KVM only) the image format, for a file whose extension does not say it: vhdx, vhd, qcow2 or raw",
        default=None,
        key="Format",
    )

    def __post_init__(self) -> None:
        normalize(self)
        if self.controller_type is ControllerType.IDE:
            for field in ("controller_number", "controller_location"):
                value = getattr(self, field)
                if value is not None and value > 1:
                    raise InvalidSpec(_KEYS[field], f"{value} is out of range: IDE has controllers and locations 0-1")
        elif self.controller_type in (ControllerType.VIRTIO, ControllerType.SATA):
            for field in ("controller_number", "controller_location"):
                if getattr(self, field) is not None:
                    raise InvalidSpec(_KEYS[field], f"only IDE and SCSI drives have one, not {self.controller_type}")
        suffix = self.path.suffix.lower()
        if suffix in _DIFFERENCING:
            raise Unsupported(
                f"Path: {self.path} is a Hyper-V differencing disk, which QEMU cannot read; merge it into its "
                "parent first (Merge-VHD), or make the differencing disk with new_vhd from a qcow2 parent"
            )
        if self.is_block:
            if self.format not in (None, DiskFormat.RAW):
                raise InvalidSpec("Format", "a block device passed through is raw")
            object.__setattr__(self, "format", DiskFormat.RAW)
        elif self.format is None:
            if suffix not in _FORMATS:
                raise InvalidSpec(
                    "Path", f"{shown(str(self.path))} is not a .vhdx, .vhd, .qcow2, .img or .raw file; or give Format"
                )
            object.__setattr__(self, "format", _FORMATS[suffix])

    @property
    def is_block(self) -> bool:
        """Whether it passes a host block device through (a path under ``/dev``)."""
        return self.path.is_relative_to(_BLOCK_DIR)

    @property
    def image_format(self) -> DiskFormat:
        """The format its file holds: ``Format``, else by extension (``raw`` for a block device)."""
        return self.format or DiskFormat.RAW

    @property
    def runs_from(self) -> Path:
        """The file the VM uses: the qcow2 import of a VHD or VHDX, else the path itself."""
        if self.image_format in _IMPORTED:
            return self.path.with_name(self.path.name + IMPORT_SUFFIX)
        return self.path


@dataclasses.dataclass(frozen=True)
class NetworkAdapter(Spec):
    """One network adapter (Add-VMNetworkAdapter): synthetic (virtio-net) or legacy (an emulated e1000)."""

    switch_name: str = spec_field("the virtual switch: a libvirt network on the host", key="SwitchName")
    is_legacy: bool = spec_field("a legacy adapter (Generation 1 only)", default=False, key="IsLegacy")
    mac_address: str | None = spec_field(
        "a static MAC address, 12 hex digits (00155D010203); dynamic when omitted",
        default=None,
        pattern=_MAC,
        expected="a MAC address of 12 hex digits, like 00155D010203",
        key="MacAddress",
    )

    def __post_init__(self) -> None:
        normalize(self)
        if self.mac_address is not None:
            object.__setattr__(self, "mac_address", re.sub("[-:]", "", self.mac_address).upper())


@dataclasses.dataclass(frozen=True)
class IntegrationServices(Spec):
    """Which integration services are on (Enable-VMIntegrationService); they run through qemu-guest-agent."""

    heartbeat: bool = spec_field("Heartbeat", default=True, on_off=True, key="Heartbeat")
    shutdown: bool = spec_field("Shutdown", default=True, on_off=True, key="Shutdown")
    time_synchronization: bool = spec_field(
        "Time Synchronization", default=True, on_off=True, key="TimeSynchronization", aliases=("Time Synchronization",)
    )
    key_value_pair_exchange: bool = spec_field(
        "Key-Value Pair Exchange (OS, host name, addresses)",
        default=True,
        on_off=True,
        key="KeyValuePairExchange",
        aliases=("Key-Value Pair Exchange",),
    )
    guest_service_interface: bool = spec_field(
        "Guest Service Interface (copy files into the guest)",
        default=False,
        on_off=True,
        key="GuestServiceInterface",
        aliases=("Guest Service Interface",),
    )
    vss: bool = spec_field(
        "VSS (quiesce file systems for Production checkpoints)", default=True, on_off=True, key="VSS"
    )

    def __post_init__(self) -> None:
        normalize(self)

    @property
    def enabled(self) -> dict[str, bool]:
        """Each service by the name Get-VMIntegrationService prints, and whether it is on."""
        values = [getattr(self, f.name) for f in dataclasses.fields(self)]
        return dict(zip(INTEGRATION_SERVICE, values, strict=True))


@dataclasses.dataclass(frozen=True)
class HyperVSpec(Spec):
    """A VM as New-VM and the Set-VM* cmdlets describe it."""

    name: str = spec_field("VM name: 1-63 letters, digits, '_', '.', '-'", name=True, key="Name")
    generation: int = spec_field(
        "1 (BIOS, IDE boot disk) or 2 (UEFI, SCSI boot disk)", default=1, minimum=1, maximum=2, key="Generation"
    )
    memory_startup_bytes: int = spec_field(
        "memory at boot (512MB, 2GB)",
        default=512 * MiB,
        size=True,
        minimum=16 * MiB,
        maximum=4 * TiB,
        key="MemoryStartupBytes",
    )
    processor_count: int = spec_field(
        "virtual processors", default=1, minimum=1, maximum=MAX_PROCESSORS, key="ProcessorCount"
    )
    secure_boot: bool | None = spec_field(
        "Secure Boot (Generation 2 only): On unless Off is given", default=None, on_off=True, key="SecureBoot"
    )
    secure_boot_template: SecureBootTemplate | None = spec_field(
        "the keys Secure Boot trusts: MicrosoftUEFICertificateAuthority (Windows and third-party loaders such as "
        "Linux's shim)",
        default=None,
        key="SecureBootTemplate",
    )
    hard_drives: tuple[HardDrive, ...] = spec_field(
        "virtual hard disk drives, the boot disk first", default=(), max_items=MAX_DISKS, key="HardDrives"
    )
    network_adapters: tuple[NetworkAdapter, ...] = spec_field(
        "network adapters", default=(), max_items=MAX_NICS, key="NetworkAdapters"
    )
    checkpoint_type: CheckpointType = spec_field(
        "Standard, Production, ProductionOnly or Disabled", default=CheckpointType.PRODUCTION, key="CheckpointType"
    )
    automatic_stop_action: AutomaticStopAction = spec_field(
        "Save, ShutDown or TurnOff, when the host stops", default=AutomaticStopAction.SAVE, key="AutomaticStopAction"
    )
    integration_services: IntegrationServices = spec_field(
        "which integration services are on", default=IntegrationServices(), key="IntegrationServices"
    )
    notes: str | None = spec_field("free text kept with the VM", default=None, multiline=True, key="Notes")
    com_port1: Path | None = spec_field(
        "a file that receives what the guest writes to COM1 (Set-VMComPort -Number 1; Hyper-V connects the port to "
        "a named pipe, virtkit appends it to this file in the storage roots)",
        default=None,
        key="ComPort1",
    )

    def __post_init__(self) -> None:
        normalize(self)
        if self.generation == 1:
            if self.secure_boot:
                raise InvalidSpec(
                    "SecureBoot", "Generation 1 VMs have BIOS firmware, without Secure Boot; use Generation 2"
                )
            if self.secure_boot_template is not None:
                raise InvalidSpec(
                    "SecureBootTemplate", "Generation 1 VMs have BIOS firmware, without Secure Boot; use Generation 2"
                )
            object.__setattr__(self, "secure_boot", False)
        elif self.secure_boot is None:
            object.__setattr__(self, "secure_boot", True)  # Hyper-V's default for Generation 2
        check_template(self.secure_boot_template)
        if self.secure_boot and self.secure_boot_template is None:
            object.__setattr__(self, "secure_boot_template", SecureBootTemplate.MICROSOFT_UEFI_CA)
        object.__setattr__(self, "hard_drives", place_drives(self.generation, self.hard_drives))
        for i, nic in enumerate(self.network_adapters):
            if nic.is_legacy and self.generation == 2:
                raise InvalidSpec(
                    f"NetworkAdapters[{i}].IsLegacy",
                    "Generation 2 VMs have no legacy network adapter; use IsLegacy: false",
                )
        self.to_spec()  # what the neutral spec refuses across fields (a path or a MAC given twice), named here

    # -- the neutral spec ---------------------------------------------------------------------------------------

    def to_spec(self) -> VMSpec:
        """The neutral spec of this VM; VHD and VHDX drives run from their imports (:meth:`imports`)."""
        gen2 = self.generation == 2
        services = self.integration_services.enabled
        try:
            return VMSpec(
                name=self.name,
                vcpus=self.processor_count,
                memory=self.memory_startup_bytes,
                firmware=Firmware.UEFI if gen2 else Firmware.BIOS,
                secure_boot=bool(self.secure_boot),
                machine=Machine.Q35 if gen2 else Machine.PC,
                boot=(BootDevice.DISK,),
                disks=tuple(_item("disks", i, disk_of, d) for i, d in enumerate(self.hard_drives)),
                nics=tuple(_item("nics", i, _nic, n) for i, n in enumerate(self.network_adapters)),
                guest_agent=any(services.values()),
                agent_services=tuple(INTEGRATION_SERVICE[n] for n, on in services.items() if on)
                if any(services.values())
                else DEFAULT_AGENT_SERVICES,
                snapshot_mode=CHECKPOINT_TYPE[self.checkpoint_type],
                on_host_stop=AUTOMATIC_STOP_ACTION[self.automatic_stop_action],
                description=self.notes,
                serial_log=self.com_port1,
                enlightenments=True,  # a guest on Hyper-V always sees them
            )
        except InvalidSpec as exc:
            raise InvalidSpec(hyperv_field(exc.field), hyperv_text(exc.reason)) from None

    def imports(self) -> list[tuple[Path, Path]]:
        """(VHD or VHDX, the qcow2 it runs from) for each such drive, in order."""
        return [(d.path, d.runs_from) for d in self.hard_drives if d.image_format in _IMPORTED]

    @classmethod
    def from_spec(cls, spec: VMSpec, *, strict: bool = False) -> HyperVSpec:
        """The Hyper-V form of a neutral spec (a VM made elsewhere reads back in Hyper-V terms).

        What Hyper-V has no word for (direct kernel boot, a CPU model, read-only disks, ceilings for
        hot-add, a VM without enlightenments) is left out, or with ``strict`` refused.

        :raises Unsupported: a machine and firmware that are no generation (q35 with BIOS, pc with UEFI), or with
            ``strict`` anything left out; the message names the neutral fields.
        """
        lost = unexpressed(spec)
        generation = 2 if spec.firmware is Firmware.UEFI else 1
        if (spec.machine is Machine.Q35) != (generation == 2):
            raise Unsupported(
                f"{spec.name} has no Hyper-V generation: machine {spec.machine.value} with firmware "
                f"{spec.firmware.value} (Generation 1 is pc with bios, Generation 2 q35 with uefi)"
            )
        if strict and lost:
            raise Unsupported(f"{spec.name} has no exact Hyper-V form: " + "; ".join(lost))
        agent = spec.guest_agent
        on = set(spec.agent_services) if agent else set()
        services = IntegrationServices(*(INTEGRATION_SERVICE[n] in on for n in INTEGRATION_SERVICE))
        return cls(
            name=spec.name,
            generation=generation,
            memory_startup_bytes=spec.memory,
            processor_count=spec.vcpus,
            secure_boot=spec.secure_boot if generation == 2 else None,
            hard_drives=tuple(drive_of(d) for d in spec.disks),
            network_adapters=tuple(
                NetworkAdapter(switch_name=n.source or "", is_legacy=n.model is NicModel.E1000, mac_address=n.mac)
                for n in spec.nics
                if n.kind is not NicKind.USER and n.source
            ),
            checkpoint_type=_inverse(CHECKPOINT_TYPE, spec.snapshot_mode),
            automatic_stop_action=_inverse(AUTOMATIC_STOP_ACTION, spec.on_host_stop),
            integration_services=services,
            notes=spec.description,
            com_port1=spec.serial_log,
        )

    # -- files --------------------------------------------------------------------------------------------------

    @classmethod
    def from_yaml(cls, text: str) -> HyperVSpec:
        """A spec from YAML text (``On``/``Off`` read as Hyper-V writes them); see :meth:`VMSpec.from_yaml`.

        :raises InvalidSpec: YAML that is not valid or too large (field ``yaml``), or any bad field.
        """
        return cls.from_dict(read_yaml(text))

    @classmethod
    def from_file(cls, path: str | Path) -> HyperVSpec:
        """A spec from a YAML or JSON file; see :meth:`VMSpec.from_file`."""
        return cls.from_yaml(read_file(path))

    def to_yaml(self) -> str:
        """YAML text that :meth:`from_yaml` reads back to an equal spec."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def unexpressed(spec: VMSpec) -> list[str]:
    """What of a neutral spec has no Hyper-V word, each as ``field (value)``."""
    out = []
    for field, default in (
        ("kernel", None),
        ("cpu_model", None),
        ("max_vcpus", None),
        ("max_memory", None),
    ):
        if getattr(spec, field) != default:
            out.append(field)
    if spec.cpu_features:
        out.append("cpu_features")
    if not spec.enlightenments:
        out.append("enlightenments (off: a Hyper-V guest always has them)")
    if spec.boot != (BootDevice.DISK,):
        out.append("boot")
    for i, d in enumerate(spec.disks):
        if d.readonly:
            out.append(f"disks[{i}].readonly")
        if d.cache is not None:
            out.append(f"disks[{i}].cache")
    for i, n in enumerate(spec.nics):
        if n.kind is not NicKind.NETWORK or n.source is None:
            out.append(f"nics[{i}].kind ({n.kind.value})")
        if n.model not in (NicModel.VIRTIO, NicModel.E1000):
            out.append(f"nics[{i}].model ({n.model.value})")
        if n.mtu is not None:
            out.append(f"nics[{i}].mtu")
    return out


# -- helpers ------------------------------------------------------------------------------------------------------

_KEYS = {
    "controller_number": "ControllerNumber",
    "controller_location": "ControllerLocation",
}


def check_template(template: SecureBootTemplate | None) -> None:
    """Refuse a Secure Boot template KVM cannot honour.

    :raises Unsupported: MicrosoftWindows or OpenSourceShieldedVM, with what would work instead.
    """
    if template is SecureBootTemplate.MICROSOFT_WINDOWS:
        raise Unsupported(
            "SecureBootTemplate: MicrosoftWindows trusts the Windows boot loader alone, and the UEFI firmware KVM "
            "runs (OVMF) enrolls the Microsoft keys as one set; use MicrosoftUEFICertificateAuthority, which boots "
            "Windows and third-party-signed loaders (Linux's shim) alike"
        )
    if template is SecureBootTemplate.OPEN_SOURCE_SHIELDED_VM:
        raise Unsupported(
            "SecureBootTemplate: OpenSourceShieldedVM belongs to Hyper-V's shielded VMs (a Host Guardian Service), "
            "which KVM does not have; use MicrosoftUEFICertificateAuthority"
        )


def place_drives(generation: int, drives: tuple[HardDrive, ...]) -> tuple[HardDrive, ...]:
    """Each drive with its controller type (by ``generation`` when not given), and IDE drives with their
    controller number and location (the first free ones when not given).

    :raises InvalidSpec: IDE on Generation 2, or a fifth IDE drive (naming ``HardDrives[i].ControllerType``).
    """
    default = ControllerType.SCSI if generation == 2 else ControllerType.IDE
    ide_taken = {
        (d.controller_number, d.controller_location)
        for d in drives
        if (d.controller_type or default) is ControllerType.IDE
        and d.controller_number is not None
        and d.controller_location is not None
    }
    out = []
    placed: dict[tuple[ControllerType, int, int], int] = {}
    for i, drive in enumerate(drives):
        kind = drive.controller_type or default
        if kind is ControllerType.IDE and generation == 2:
            raise InvalidSpec(f"HardDrives[{i}].ControllerType", "Generation 2 VMs have no IDE controller; use SCSI")
        number, location = drive.controller_number, drive.controller_location
        if kind is ControllerType.SCSI and location is not None and number is None:
            number = 0  # Add-VMHardDiskDrive -ControllerLocation alone means the first controller
        if number is not None and location is not None:
            other = placed.setdefault((kind, number, location), i)
            if other != i:
                raise InvalidSpec(
                    f"HardDrives[{i}].ControllerLocation",
                    f"{kind.value} {number}:{location} holds HardDrives[{other}] already",
                )
        if kind is ControllerType.IDE and (number is None or location is None):
            free = [s for s in _IDE_SLOTS if s not in ide_taken and (number is None or s[0] == number)]
            free = [s for s in free if location is None or s[1] == location]
            if not free:
                raise InvalidSpec(
                    f"HardDrives[{i}].ControllerType", "the two IDE controllers hold four drives in all; use SCSI"
                )
            number, location = free[0]
            ide_taken.add(free[0])
        try:  # the drive's own checks run again, now that its controller type is known
            out.append(
                dataclasses.replace(drive, controller_type=kind, controller_number=number, controller_location=location)
            )
        except InvalidSpec as exc:
            raise InvalidSpec(f"HardDrives[{i}].{exc.field}", exc.reason) from None
    return tuple(out)


def disk_of(drive: HardDrive) -> DiskSpec:
    """The neutral disk of a placed drive (see :func:`place_drives`); a VHD or VHDX runs from its import."""
    kind = drive.controller_type or ControllerType.SCSI
    bus = CONTROLLER_BUS[kind]
    target = None
    if kind is ControllerType.IDE:
        target = "hd" + chr(ord("a") + 2 * (drive.controller_number or 0) + (drive.controller_location or 0))
    scsi = kind is ControllerType.SCSI
    fmt = drive.image_format
    return DiskSpec(
        path=drive.runs_from,
        format=DiskFormat.QCOW2 if fmt in _IMPORTED else fmt,
        bus=bus,
        kind=DiskKind.BLOCK if drive.is_block else DiskKind.FILE,
        target=target,
        controller=drive.controller_number if scsi else None,
        unit=drive.controller_location if scsi else None,
    )


def drive_of(disk: DiskSpec) -> HardDrive:
    """The drive of a neutral disk: its controller type by bus, IDE numbers from its target (``hdc`` is 1:0)."""
    kind = next(k for k, bus in CONTROLLER_BUS.items() if bus is disk.bus)
    number = location = None
    if disk.bus is DiskBus.SCSI:
        number, location = disk.controller, disk.unit
    elif disk.bus is DiskBus.IDE and disk.target is not None and len(disk.target) == 3:
        index = ord(disk.target[2]) - ord("a")
        number, location = divmod(index, 2) if index < 4 else (None, None)
    by_name = DiskFormat.RAW if disk.kind is DiskKind.BLOCK else _FORMATS.get(disk.path.suffix.lower())
    return HardDrive(
        path=disk.path,
        controller_type=kind,
        controller_number=number,
        controller_location=location,
        format=None if by_name is disk.format else disk.format,
    )


def _nic(adapter: NetworkAdapter) -> NicSpec:
    mac = adapter.mac_address
    return NicSpec(
        kind=NicKind.NETWORK,
        source=adapter.switch_name,
        model=NicModel.E1000 if adapter.is_legacy else NicModel.VIRTIO,
        mac=":".join(mac[i : i + 2] for i in range(0, 12, 2)).lower() if mac else None,
    )


def _item(kind: str, index: int, make: Callable[[Any], Any], value: object) -> Any:
    """``make(value)`` for the ``index``-th item of a neutral list: its errors name the item (``nics[1].mac``)."""
    try:
        return make(value)
    except InvalidSpec as exc:
        raise InvalidSpec(f"{kind}[{index}].{exc.field}", exc.reason) from None


def _inverse(table: dict[Any, Any], value: object) -> Any:
    return next(k for k, v in table.items() if v == value)
