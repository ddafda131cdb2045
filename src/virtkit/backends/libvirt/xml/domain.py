"""The domain definition (``<domain>``) as declared XML, and a :class:`VMSpec` written into one and read back.

:class:`Domain` declares each field of the definition virtkit reads or writes once, and holds the facts other modules
ask of a definition (its identity, pflash firmware, the guest agent's channel, the files it names).

:func:`render` writes a spec into a definition: a new one, or the parsed tree of an existing one (``base``), which
it edits in place. A device the spec describes is matched to its element (disks by target, adapters by MAC address
or else in order, the serial log, the agent channel) and only its modelled fields change; everything else, from a
CD-ROM or a SPICE channel to a disk's ``<address>``, ``<iotune>`` or ``<boot order>``, stays as it was, and a field
that already reads as the spec asks is not rewritten (a ``pc-q35-7.2`` machine stays versioned). :func:`parse`
reads a definition back into a spec in canonical form (see :func:`canonical`). The choices a spec leaves open come
from :mod:`virtkit.backends.libvirt.design`; the translations from :mod:`virtkit.backends.libvirt.tables`.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from virtkit.backends.libvirt import design, tables
from virtkit.backends.libvirt.xml.base import (
    INT,
    ON_OFF,
    PATH,
    YES_NO,
    Codec,
    XMLChild,
    XMLChildren,
    XMLObject,
    XMLProperty,
    enum_codec,
)
from virtkit.backends.libvirt.xml.cpu import CPU
from virtkit.backends.libvirt.xml.devices.channel import Channel
from virtkit.backends.libvirt.xml.devices.controller import Controller
from virtkit.backends.libvirt.xml.devices.disk import Disk
from virtkit.backends.libvirt.xml.devices.memballoon import MemBalloon
from virtkit.backends.libvirt.xml.devices.nic import Interface
from virtkit.backends.libvirt.xml.devices.serial import Console, Serial
from virtkit.backends.libvirt.xml.features import enlightened, write_enlightenments
from virtkit.errors import BackendError, InvalidSpec
from virtkit.models.cpu import HOST_CPU_MODES
from virtkit.models.disk import DiskBus, DiskKind, DiskSpec
from virtkit.models.nic import NicSpec
from virtkit.models.vm import (
    DEFAULT_AGENT_SERVICES,
    Accel,
    AgentService,
    BootDevice,
    Firmware,
    HostStopAction,
    KernelBoot,
    Machine,
    SnapshotMode,
    VMSpec,
    assign_targets,
)

__all__ = [
    "METADATA_NS",
    "Boot",
    "Domain",
    "canonical",
    "parse",
    "render",
    "to_string",
    "unmodelled_files",
    "write_policy",
]

#: virtkit's own namespace in ``<metadata>``: it keeps the request (``accel=auto``) that the XML alone cannot say.
METADATA_NS = "https://virtkit.dev/xmlns/vm/1"
ET.register_namespace("virtkit", METADATA_NS)

_POWERS = "kmgtpe"  # the scaled units libvirt reads: k(ilo) to e(xa)


def _unit_bytes(unit: str) -> int:
    """Bytes per ``unit`` as libvirt reads a size: ``b``/``bytes``, ``k``/``KiB`` (1024), ``KB`` (1000), and so on
    up to exbibytes, the first letter in either case (https://libvirt.org/formatdomain.html#memory-allocation).

    :raises ValueError: not such a unit.
    """
    if unit.lower() in ("b", "byte", "bytes"):
        return 1
    power = _POWERS.find(unit[:1].lower()) + 1 if unit else 0
    base = 1024 if unit[1:] in ("", "iB") else 1000 if unit[1:].lower() == "b" else 0
    if power == 0 or base == 0:
        raise ValueError(f"{unit!r} is not a size unit")
    return int(base**power)  # a non-negative power: an int


class _Memory(XMLProperty[int | None]):
    """A size in bytes, written in KiB: its text and ``unit`` attribute together (``unit`` defaults to KiB)."""

    def __init__(self, path: str) -> None:
        super().__init__(path, INT)

    def _read(self, el: ET.Element) -> Any:
        if el.text is None:
            return None
        return int(el.text) * _unit_bytes(el.get("unit") or "KiB")

    def _write(self, el: ET.Element, value: Any) -> None:
        el.text = str(value // 1024)
        el.set("unit", "KiB")

    def _clear(self, el: ET.Element) -> None:
        el.text = None
        el.attrib.pop("unit", None)


class Boot(XMLObject):
    """One ``<os><boot dev>``, a boot device in order."""

    TAG = "boot"
    dev = XMLProperty("./@dev", tables.codec(tables.BOOT_DEVICE))


_VM = f"{{{METADATA_NS}}}vm"


def _services(text: str) -> tuple[AgentService, ...]:
    return tuple(AgentService(word) for word in text.split())


_SERVICES: Codec[tuple[AgentService, ...]] = Codec(_services, lambda value: " ".join(s.value for s in value))


class Domain(XMLObject):
    """A ``<domain>`` definition. See https://libvirt.org/formatdomain.html."""

    TAG = "domain"
    accel = XMLProperty("./@type", tables.codec(tables.DOMAIN_TYPE))  # the accelerator it runs under
    live_id = XMLProperty("./@id", INT)  # only in a running definition
    name = XMLProperty("./name")
    uuid = XMLProperty("./uuid")
    title = XMLProperty("./title")
    description = XMLProperty("./description")
    requested_accel = XMLProperty(f"./metadata/{_VM}/{{{METADATA_NS}}}accel", enum_codec(Accel))
    # The VM's policies, kept only when they differ from the defaults (a definition from elsewhere has the defaults).
    snapshot_mode = XMLProperty(f"./metadata/{_VM}/{{{METADATA_NS}}}snapshot-mode", enum_codec(SnapshotMode))
    on_host_stop = XMLProperty(f"./metadata/{_VM}/{{{METADATA_NS}}}on-host-stop", enum_codec(HostStopAction))
    agent_services = XMLProperty(f"./metadata/{_VM}/{{{METADATA_NS}}}agent-services", _SERVICES)
    # Set when the firmware changed under an existing NVRAM store: the next boot copies it afresh from the template.
    nvram_stale = XMLProperty(f"./metadata/{_VM}/{{{METADATA_NS}}}nvram-stale", YES_NO)
    memory = _Memory("./memory")  # the ceiling
    current_memory = _Memory("./currentMemory")  # at boot
    vcpu = XMLProperty("./vcpu", INT)  # the ceiling
    vcpu_placement = XMLProperty("./vcpu/@placement")
    vcpu_current = XMLProperty("./vcpu/@current", INT)  # at boot, when below the ceiling
    firmware_autoselect = XMLProperty("./os/@firmware")  # efi or bios: libvirt picks the files
    os_type = XMLProperty("./os/type")
    arch = XMLProperty("./os/type/@arch")
    # Lossy: QEMU's default machine for x86_64 is pc, so a definition without one reads as pc.
    machine = XMLProperty("./os/type/@machine", Codec(tables.machine_of, tables.MACHINE.to_libvirt), default=Machine.PC)
    loader_readonly = XMLProperty("./os/loader/@readonly", YES_NO)
    loader_type = XMLProperty("./os/loader/@type")
    loader_secure = XMLProperty("./os/loader/@secure", YES_NO)
    loader = XMLProperty("./os/loader", PATH)
    nvram_template = XMLProperty("./os/nvram/@template", PATH)
    nvram = XMLProperty("./os/nvram", PATH)
    kernel = XMLProperty("./os/kernel", PATH)
    initrd = XMLProperty("./os/initrd", PATH)
    cmdline = XMLProperty("./os/cmdline")
    dtb = XMLProperty("./os/dtb", PATH)
    boot_devices = XMLChildren(Boot, "./os")
    acpi = XMLProperty("./features/acpi", is_bool=True)
    apic = XMLProperty("./features/apic", is_bool=True)
    smm = XMLProperty("./features/smm/@state", ON_OFF)
    cpu = XMLChild(CPU)
    disks = XMLChildren(Disk, "./devices")
    controllers = XMLChildren(Controller, "./devices")
    interfaces = XMLChildren(Interface, "./devices")
    serials = XMLChildren(Serial, "./devices")
    consoles = XMLChildren(Console, "./devices")
    channels = XMLChildren(Channel, "./devices")
    memballoon = XMLChild(MemBalloon, "./devices/memballoon")

    # -- facts ----------------------------------------------------------------------------------------------------

    def identity(self) -> tuple[str, str]:
        """The ``name`` and ``uuid``.

        :raises BackendError: the definition lacks either.
        """
        if not self.name or not self.uuid:
            raise BackendError("a domain XML from libvirt has no <name> or <uuid>")
        return self.name, self.uuid

    @property
    def has_nvram(self) -> bool:
        """Whether it has a per-VM UEFI variable store (``<nvram>``)."""
        return self.nvram is not None or self.nvram_template is not None

    @property
    def has_pflash(self) -> bool:
        """Whether it boots UEFI firmware from pflash with a per-VM NVRAM store."""
        return self.has_nvram or self.loader_type == "pflash"

    @property
    def firmware(self) -> tuple[Firmware, bool]:
        """(firmware, Secure Boot): UEFI with a loader or ``<os firmware='efi'>``, else BIOS."""
        uefi = self.loader is not None or self.loader_type is not None or self.firmware_autoselect == "efi"
        return (Firmware.UEFI if uefi else Firmware.BIOS), bool(self.loader_secure)

    def agent_channel(self, name: str) -> Channel | None:
        """The virtio-serial channel ``name`` (the guest agent's is ``design.AGENT_CHANNEL``), if there is one."""
        return next((c for c in self.channels if c.target_name == name), None)

    def agent_channel_state(self, name: str) -> str | None:
        """The state libvirt reports for the channel ``name`` in a running definition: ``connected`` while a program
        in the guest holds the port open, ``disconnected``, ``""`` when not reported; ``None`` when there is no such
        channel."""
        channel = self.agent_channel(name)
        return None if channel is None else channel.target_state or ""

    @property
    def serial_log(self) -> Serial | None:
        """The serial port that writes to a file (the first), which virtkit calls the serial log."""
        return next((s for s in self.serials if s.type == "file"), None)

    @property
    def boot_order(self) -> tuple[BootDevice, ...]:
        """The boot devices in order: ``<os><boot>``, or else the devices' own ``<boot order>``; none when it has
        neither (QEMU's firmware then boots from the disks)."""
        if found := tuple(b.dev for b in self.boot_devices if b.dev is not None):
            return found
        ordered: list[tuple[int, BootDevice]] = []
        for disk in self.disks:
            if disk.boot_order is not None:
                kind = BootDevice.CDROM if disk.device == "cdrom" else BootDevice.DISK
                ordered.append((disk.boot_order, kind))
        ordered += [(n.boot_order, BootDevice.NETWORK) for n in self.interfaces if n.boot_order is not None]
        return tuple(dict.fromkeys(kind for _, kind in sorted(ordered)))

    def unmodelled_files(self) -> list[Path]:
        """The files it names that :func:`parse` does not put in a spec (CD-ROM and floppy images, shared
        directories, character devices on files or pipes, a device tree), in document order.

        The disks a spec models and the serial log (and the console that mirrors it) are left out: they are checked
        as a spec is.
        """
        kept: list[ET.Element] = [d.node for d in self.disks if d.modelled]
        if (log := self.serial_log) is not None:
            kept.append(log.node)
            kept += [c.node for c in self.consoles if c.mirrors_serial and c.source_path == log.source_path]
        out = [self.dtb] if self.dtb else []
        devices = self._find(("devices",))
        for el in list(devices) if devices is not None else []:
            if el.tag not in _FILE_DEVICES or el.get("type", "file") not in _FILE_SOURCE_TYPES:
                continue
            if any(el is k for k in kept):
                continue
            for source in el.iterfind("source"):
                out += [Path(value) for attr in ("file", "dev", "path", "dir") if (value := source.get(attr))]
        return out


# Devices whose <source> names a file QEMU opens on the host: a disk virtkit does not model (a CD-ROM, a floppy), a
# shared directory, a character device written to a file or a pipe. (A unix socket channel is libvirt's own.)
_FILE_DEVICES = ("disk", "filesystem", "serial", "console", "parallel", "channel")
_FILE_SOURCE_TYPES = ("file", "block", "dev", "pipe", "mount")


def unmodelled_files(root: ET.Element) -> list[Path]:
    """The files a domain definition names that :func:`parse` does not put in its spec (see
    :meth:`Domain.unmodelled_files`)."""
    return Domain(root).unmodelled_files()


def to_string(root: ET.Element) -> str:
    """Serialise a domain element for libvirt."""
    return ET.tostring(root, encoding="unicode")


# What a definition without a boot order boots from (QEMU's firmware tries the disks).
_DEFAULT_BOOT = (BootDevice.DISK,)


# -- a spec as a definition ---------------------------------------------------------------------------------------


def render(spec: VMSpec, accel: Accel, *, base: str | None = None) -> ET.Element:
    """The ``<domain>`` element for ``spec`` under the resolved ``accel`` (``kvm`` or ``tcg``).

    :param base: an existing definition to update in place; what virtkit does not model in it is kept.
    :raises InvalidSpec: a disk's target is taken by a device of ``base`` that the spec does not describe.
    :raises BackendError: ``base`` is not a domain definition.
    """
    if accel is Accel.AUTO:
        raise ValueError("render() needs a resolved accelerator; call design.resolve_accel first")
    dom = Domain.from_string(base) if base else _new_domain()
    dom.live_id = None
    dom.accel = accel
    dom.name = spec.name
    if base is None or (dom.requested_accel or dom.accel) is not spec.accel:
        dom.requested_accel = spec.accel
    dom.memory = spec.effective_max_memory
    dom.current_memory = spec.memory
    if spec.effective_max_memory > spec.memory:  # memory that changes while the VM runs: through a balloon
        dom.memballoon.model = design.BALLOON_MODEL
    dom.vcpu = spec.effective_max_vcpus
    dom.vcpu_current = spec.vcpus if spec.vcpus != spec.effective_max_vcpus else None
    dom.machine = spec.machine
    _write_firmware(dom, spec)
    dom.kernel = spec.kernel.kernel if spec.kernel else None
    dom.initrd = spec.kernel.initrd if spec.kernel else None
    dom.cmdline = spec.kernel.cmdline if spec.kernel and spec.kernel.cmdline else None
    if base is None or (dom.boot_order or _DEFAULT_BOOT) != spec.boot:
        _write_boot(dom, spec.boot)
    _write_cpu(dom, spec.cpu_model or design.default_cpu_mode(accel), spec.cpu_features)
    if base is None or enlightened(dom.node) != spec.enlightenments:  # a set made by others stays as it is
        names = design.ENLIGHTENMENTS[accel] if spec.enlightenments else None
        write_enlightenments(dom.node, names, spinlock_retries=design.SPINLOCK_RETRIES)
    _write_disks(dom, spec.disks)
    _write_nics(dom, spec.nics)
    _write_serial_log(dom, spec.serial_log)
    _write_agent(dom, spec.guest_agent)
    write_policy(dom, spec)
    if base is None and spec.machine is Machine.Q35:
        _add_root_ports(dom)
    return dom.node


def write_policy(dom: Domain, spec: VMSpec) -> None:
    """Write what of ``spec`` only virtkit reads: the description and, in virtkit's ``<metadata>``, the snapshot mode,
    the host-stop action and the agent services (each only when it differs from its default)."""
    dom.description = spec.description
    dom.snapshot_mode = None if spec.snapshot_mode is SnapshotMode.MEMORY else spec.snapshot_mode
    dom.on_host_stop = None if spec.on_host_stop is HostStopAction.SAVE else spec.on_host_stop
    dom.agent_services = None if spec.agent_services == DEFAULT_AGENT_SERVICES else spec.agent_services


def _new_domain() -> Domain:
    """A definition with what every new VM gets and no spec field says (see :mod:`design`)."""
    dom = Domain()
    dom.vcpu_placement = "static"
    dom.os_type = "hvm"
    dom.arch = design.ARCH
    for feature in design.FEATURES:
        setattr(dom, feature, True)
    dom.memballoon.model = design.MEMBALLOON_MODEL
    return dom


def _add_root_ports(dom: Domain) -> None:
    """PCI Express root ports for a new q35 definition: one for each device that will sit on one, and
    :data:`design.SPARE_ROOT_PORTS` more for devices hot-added later (a port cannot itself be hot-added)."""
    on_ports = sum(1 for d in dom.disks if d.bus is DiskBus.VIRTIO) + sum(1 for _ in dom.interfaces)
    on_ports += sum(1 for c in dom.controllers if c.type in ("scsi", "virtio-serial"))
    on_ports += len(design.IMPLIED_PCI_DEVICES) + (1 if any(True for _ in dom.channels) else 0)
    # libvirt reads a PCI controller without an index as index 0, which on q35 must be the root complex itself.
    dom.controllers.add(Controller.new("pci", 0, "pcie-root"))
    for index in range(1, 1 + on_ports + design.SPARE_ROOT_PORTS):
        dom.controllers.add(Controller.new("pci", index, "pcie-root-port"))


def _write_firmware(dom: Domain, spec: VMSpec) -> None:
    if dom.firmware == (spec.firmware, spec.secure_boot):
        return  # the files it has stay, as libvirt or its maker chose them
    dom.firmware_autoselect = None
    dom.nvram_stale = True if spec.firmware is Firmware.UEFI and dom.has_nvram else None
    if spec.firmware is Firmware.UEFI:
        files = design.OVMF[spec.secure_boot]
        dom.loader_readonly = True
        dom.loader_type = "pflash"
        dom.loader_secure = True if spec.secure_boot else None
        dom.loader = files.code
        dom.nvram_template = files.vars_template
        if dom.nvram is None:
            dom.nvram = nvram_path(spec)
    else:
        dom.loader_readonly = dom.loader_type = dom.loader_secure = dom.loader = None
        dom.nvram_template = dom.nvram = None
    if spec.secure_boot:
        dom.smm = True  # OVMF's Secure Boot build needs SMM; it is left on when Secure Boot goes


def nvram_path(spec: VMSpec) -> Path | None:
    """Where a new UEFI VM keeps its variable store: ``<name>.nvram.fd`` beside its first writable image file (or
    its serial log), inside the storage roots, so that virtkit can copy it for a checkpoint and, on shared storage,
    every host sees it; ``None`` (libvirt's own directory) for a VM with neither."""
    files = [d.path for d in spec.disks if d.kind is DiskKind.FILE and not d.readonly]
    if not files and spec.serial_log is not None:
        files.append(spec.serial_log)
    return files[0].parent / f"{spec.name}.nvram.fd" if files else None


def _write_boot(dom: Domain, boot: tuple[BootDevice, ...]) -> None:
    for old in list(dom.boot_devices):
        dom.boot_devices.remove(old)
    for dev in boot:
        entry = Boot()
        entry.dev = dev
        dom.boot_devices.add(entry)
    # libvirt refuses <os><boot> next to devices' own <boot order>: the order asked for replaces theirs.
    for device in list(dom.node.iterfind("devices/*")):
        for order in device.findall("boot"):
            device.remove(order)


def _write_cpu(dom: Domain, model: str, features: tuple[str, ...]) -> None:
    if dom.cpu.named == (model, features):
        return
    if model in HOST_CPU_MODES:
        dom.cpu.set_mode(model)
    else:
        dom.cpu.set_named(model, features)
        dom.cpu.check = "partial"  # what libvirt writes for a custom CPU, so that the definition reads back as sent


def _write_disks(dom: Domain, disks: tuple[DiskSpec, ...]) -> None:
    old = [d for d in dom.disks if d.modelled]
    by_target = {d.target: d for d in old}
    others = {d.target: d.device for d in dom.disks if not d.modelled}
    new = []
    for i, (disk, target) in enumerate(zip(disks, assign_targets(disks), strict=True)):
        if target in others:
            raise InvalidSpec(f"disks[{i}].target", f"{target} is the {others[target]} of this VM")
        spec = dataclasses.replace(disk, target=target)
        element = by_target.get(target)
        if element is None:
            element = Disk.new(spec)
        else:
            element.update(spec)
        new.append(element)
    _place_scsi(list(zip(new, disks, strict=True)), [d for d in dom.disks if not d.modelled])
    dom.disks.replace(old, new)
    have = {c.index for c in dom.controllers if c.type == "scsi"}
    used = {c for d in new if d.bus is DiskBus.SCSI and (c := d.scsi_address[0]) is not None}
    for index in sorted(used - have):
        dom.controllers.add(Controller.new("scsi", index, design.SCSI_CONTROLLER_MODEL))


def _place_scsi(disks: list[tuple[Disk, DiskSpec]], others: list[Disk]) -> None:
    """Give each SCSI disk without a drive address its controller (0 unless named) and the lowest free unit there:
    the place is virtkit's choice, read back as written, and never one a spec names for another disk."""
    taken = {d.scsi_address for d in [e for e, _ in disks] + others if d.address.drive is not None}
    for element, spec in disks:
        if element.bus is not DiskBus.SCSI or element.address.drive is not None:
            continue
        controller = spec.controller or 0
        unit = next(u for u in range(len(taken) + 1) if (controller, u) not in taken)
        element.address.set_drive(controller, unit)
        taken.add((controller, unit))


def _write_nics(dom: Domain, nics: tuple[NicSpec, ...]) -> None:
    old = [n for n in dom.interfaces if n.modelled]
    free = list(old)
    matched: list[Interface | None] = []
    for nic in nics:  # by MAC address first
        found = next((n for n in free if nic.mac is not None and n.mac == nic.mac), None)
        if found is not None:
            free.remove(found)
        matched.append(found)
    for i, nic in enumerate(nics):  # then the adapters without one, in order
        if matched[i] is None and nic.mac is None and free:
            matched[i] = free.pop(0)
    new = []
    for nic, found in zip(nics, matched, strict=True):
        if found is None:
            found = Interface.new(nic)  # noqa: PLW2901
        else:
            found.update(nic)
        new.append(found)
    dom.interfaces.replace(old, new)


def _write_serial_log(dom: Domain, path: Path | None) -> None:
    log = dom.serial_log
    mirror = next((c for c in dom.consoles if c.mirrors_serial), None)
    if path is None:
        if log is not None:
            dom.serials.remove(log)
            if mirror is not None and mirror.type == "file" and mirror.source_path == log.source_path:
                dom.consoles.remove(mirror)
        return
    if log is None:  # serial port 0 of another kind (a pty) becomes the log, or a new port
        log = next((s for s in dom.serials if (s.target_port or 0) == 0), None) or dom.serials.add(Serial())
    log.log_to(path)
    if log.target_port is None:
        log.target_port = 0
    if mirror is None:
        mirror = dom.consoles.add(Console())
    mirror.log_to(path)
    mirror.target_type = "serial"
    if mirror.target_port is None:
        mirror.target_port = 0


def _write_agent(dom: Domain, wanted: bool) -> None:
    channel = dom.agent_channel(design.AGENT_CHANNEL)
    if wanted and channel is None:
        dom.channels.add(Channel.virtio(design.AGENT_CHANNEL))
    elif not wanted and channel is not None:
        dom.channels.remove(channel)


# -- a definition as a spec ---------------------------------------------------------------------------------------


def canonical(spec: VMSpec, accel: Accel | None = None) -> VMSpec:
    """The one form of ``spec`` that :func:`parse` returns for the domain it defines.

    Ceilings equal to the boot values become ``None``, disks get their targets, ``size`` (a creation request, not a
    property of the defined VM) is dropped, and with ``accel`` (the resolved accelerator) the default CPU model of
    that accelerator is filled in. The requested ``accel`` is kept: it is what the VM was asked to use.
    """
    targets = assign_targets(spec.disks)
    disks = _in_libvirt_order(
        [dataclasses.replace(d, target=t, size=None) for d, t in zip(spec.disks, targets, strict=True)]
    )
    return dataclasses.replace(
        spec,
        max_vcpus=None if spec.effective_max_vcpus == spec.vcpus else spec.max_vcpus,
        max_memory=None if spec.effective_max_memory == spec.memory else spec.max_memory,
        disks=disks,
        cpu_model=spec.cpu_model or (design.default_cpu_mode(accel) if accel is not None else None),
    )


def _in_libvirt_order(disks: list[DiskSpec]) -> tuple[DiskSpec, ...]:
    """The disks in the order libvirt keeps them: it inserts each one after the last disk of its bus, before the
    first of that bus with a later target (``sda``, ``vda``, ``sdb`` become ``sda``, ``sdb``, ``vda``)."""
    out: list[DiskSpec] = []
    for disk in disks:
        at = len(out)
        for i in range(len(out) - 1, -1, -1):
            if out[i].bus is not disk.bus:
                continue
            if _target_index(out[i].target) > _target_index(disk.target):
                at = i
            elif at == len(out):
                at = i + 1
        out.insert(at, disk)
    return tuple(out)


def _target_index(target: str | None) -> int:
    """``sda`` -> 0, ``vdz`` -> 25, ``sdaa`` -> 26: the letters after the two-letter prefix, as libvirt counts."""
    n = 0
    for letter in (target or "")[2:]:
        n = n * 26 + (ord(letter) - ord("a") + 1)
    return n - 1


def parse(xml: str) -> VMSpec:
    """The spec of a domain definition, in canonical form, with ``accel`` as requested at creation.

    :raises BackendError: the XML is not a domain definition virtkit can read.
    :raises Unsupported: it uses a term virtkit does not model (a disk bus, an adapter kind, a machine family).
    :raises InvalidSpec: a value a spec refuses (a disk target that does not fit its bus).
    """
    dom = Domain.from_string(xml)
    try:
        return _spec_of(dom)
    except (KeyError, ValueError) as exc:
        raise BackendError(f"cannot read domain XML: {exc}") from exc


def _spec_of(dom: Domain) -> VMSpec:
    if dom.vcpu is None or dom.memory is None:
        raise ValueError("no <vcpu> or <memory>")
    vcpus = dom.vcpu_current or dom.vcpu
    memory = dom.current_memory or dom.memory
    firmware, secure_boot = dom.firmware
    kernel = None
    if dom.kernel is not None:
        kernel = KernelBoot(kernel=dom.kernel, initrd=dom.initrd, cmdline=dom.cmdline or "")
    cpu_model, cpu_features = dom.cpu.named
    log = dom.serial_log
    if dom.accel is None:
        raise ValueError("no domain type")
    return VMSpec(
        name=dom.name or "",
        vcpus=vcpus,
        max_vcpus=None if dom.vcpu == vcpus else dom.vcpu,
        memory=memory,
        max_memory=None if dom.memory == memory else dom.memory,
        firmware=firmware,
        secure_boot=secure_boot,
        machine=dom.machine,
        accel=dom.requested_accel or dom.accel,
        cpu_model=cpu_model,
        cpu_features=cpu_features,
        boot=dom.boot_order or _DEFAULT_BOOT,
        kernel=kernel,
        disks=tuple(d.spec() for d in dom.disks if d.modelled),
        nics=tuple(n.spec() for n in dom.interfaces),
        serial_log=log.source_path if log is not None else None,
        guest_agent=dom.agent_channel(design.AGENT_CHANNEL) is not None,
        agent_services=DEFAULT_AGENT_SERVICES if dom.agent_services is None else dom.agent_services,
        snapshot_mode=dom.snapshot_mode or SnapshotMode.MEMORY,
        on_host_stop=dom.on_host_stop or HostStopAction.SAVE,
        description=dom.description,
        enlightenments=enlightened(dom.node),
    )
