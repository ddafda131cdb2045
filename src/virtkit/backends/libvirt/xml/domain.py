"""Domain XML from a :class:`VMSpec` and back, with ElementTree only.

:func:`render` starts from an existing definition when one is given and rewrites only what virtkit models, so XML it
does not model (video, input, extra features, metadata of other tools, device addresses of untouched devices)
survives a round-trip. :func:`parse` reads a definition back into a spec in canonical form (see :func:`canonical`).
No policy lives here: defaults and choices come from :mod:`virtkit.backends.libvirt.design`.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path

from virtkit.backends.libvirt import design
from virtkit.backends.libvirt.tables import BOOT_DEVICE, DISK_FORMAT, DOMAIN_TYPE, FEATURE_POLICY
from virtkit.errors import BackendError
from virtkit.models.disk import DiskBus, DiskCache, DiskFormat, DiskKind, DiskSpec
from virtkit.models.nic import NicKind, NicModel, NicSpec
from virtkit.models.vm import Accel, BootDevice, Firmware, KernelBoot, Machine, VMSpec, assign_targets

__all__ = ["METADATA_NS", "canonical", "disk_element", "parse", "parse_disk", "render", "to_string"]

#: virtkit's own namespace in ``<metadata>``: it keeps the request (``accel=auto``) that the XML alone cannot say.
METADATA_NS = "https://virtkit.dev/xmlns/vm/1"
ET.register_namespace("virtkit", METADATA_NS)

# Devices virtkit owns: render() removes and re-creates these; every other device is left as it was.
_OWNED_DEVICES = ("disk", "interface", "serial", "console", "channel", "memballoon")


def _child(parent: ET.Element, tag: str) -> ET.Element:
    """The first ``tag`` child of ``parent``, created if missing."""
    found = parent.find(tag)
    return found if found is not None else ET.SubElement(parent, tag)


def _set_text(parent: ET.Element, tag: str, text: str | None, **attrs: str) -> None:
    """Set (or with ``None`` remove) the ``tag`` child's text and attributes."""
    found = parent.find(tag)
    if text is None:
        if found is not None:
            parent.remove(found)
        return
    node = found if found is not None else ET.SubElement(parent, tag)
    node.text = text
    node.attrib.update(attrs)


def _kib(size: int) -> str:
    return str(size // 1024)


def render(spec: VMSpec, accel: Accel, *, base: str | None = None) -> ET.Element:
    """The ``<domain>`` element for ``spec`` under the resolved ``accel`` (``kvm`` or ``tcg``).

    :param base: an existing definition to update; its unmodelled XML is kept.
    """
    if accel is Accel.AUTO:
        raise ValueError("render() needs a resolved accelerator; call design.resolve_accel first")
    root = ET.fromstring(base) if base else ET.Element("domain")
    root.set("type", DOMAIN_TYPE.to_libvirt(accel))
    root.attrib.pop("id", None)
    _set_text(root, "name", spec.name)
    _render_metadata(root, spec)
    _set_text(root, "memory", _kib(spec.effective_max_memory), unit="KiB")
    _set_text(root, "currentMemory", _kib(spec.memory), unit="KiB")
    vcpu = _child(root, "vcpu")
    vcpu.text = str(spec.effective_max_vcpus)
    vcpu.set("placement", "static")
    if spec.effective_max_vcpus != spec.vcpus:
        vcpu.set("current", str(spec.vcpus))
    else:
        vcpu.attrib.pop("current", None)
    _render_os(root, spec)
    _render_features(root, spec)
    _render_cpu(root, spec, accel)
    _render_devices(_child(root, "devices"), spec)
    return root


def _render_metadata(root: ET.Element, spec: VMSpec) -> None:
    metadata = _child(root, "metadata")
    for old in metadata.findall(f"{{{METADATA_NS}}}vm"):
        metadata.remove(old)
    vm = ET.SubElement(metadata, f"{{{METADATA_NS}}}vm")
    ET.SubElement(vm, f"{{{METADATA_NS}}}accel").text = spec.accel.value


def _render_os(root: ET.Element, spec: VMSpec) -> None:
    old = root.find("os")
    os_el = ET.Element("os")
    if old is not None:
        root.remove(old)
    ET.SubElement(os_el, "type", arch="x86_64", machine=spec.machine.value).text = "hvm"
    if spec.firmware is Firmware.UEFI:
        fw = design.OVMF[spec.secure_boot]
        loader = ET.SubElement(os_el, "loader", readonly="yes", type="pflash")
        if spec.secure_boot:
            loader.set("secure", "yes")
        loader.text = str(fw.code)
        ET.SubElement(os_el, "nvram", template=str(fw.vars_template))
    if spec.kernel is not None:
        ET.SubElement(os_el, "kernel").text = str(spec.kernel.kernel)
        if spec.kernel.initrd is not None:
            ET.SubElement(os_el, "initrd").text = str(spec.kernel.initrd)
        if spec.kernel.cmdline:
            ET.SubElement(os_el, "cmdline").text = spec.kernel.cmdline
    for dev in spec.boot:
        ET.SubElement(os_el, "boot", dev=BOOT_DEVICE.to_libvirt(dev))
    root.insert(_index_after(root, ("vcpu", "currentMemory", "memory", "metadata", "name")), os_el)


def _index_after(root: ET.Element, tags: tuple[str, ...]) -> int:
    """Position just after the last child named in ``tags`` (libvirt does not care; people reading the XML do)."""
    last = -1
    for i, child in enumerate(root):
        if child.tag in tags:
            last = i
    return last + 1


def _render_features(root: ET.Element, spec: VMSpec) -> None:
    features = _child(root, "features")
    _child(features, "acpi")
    _child(features, "apic")
    smm = features.find("smm")
    if spec.secure_boot:
        _child(features, "smm").set("state", "on")
    elif smm is not None:
        features.remove(smm)


def _render_cpu(root: ET.Element, spec: VMSpec, accel: Accel) -> None:
    old = root.find("cpu")
    if old is not None:
        root.remove(old)
    model = spec.cpu_model or design.default_cpu_mode(accel)
    if model in ("host-model", "host-passthrough"):
        ET.SubElement(root, "cpu", mode=model)
    else:
        cpu = ET.SubElement(root, "cpu", mode="custom", match="exact", check="partial")
        ET.SubElement(cpu, "model", fallback="forbid").text = model
        for feature in spec.cpu_features:
            ET.SubElement(cpu, "feature", policy=FEATURE_POLICY.to_libvirt(feature[0]), name=feature[1:])


def _render_devices(devices: ET.Element, spec: VMSpec) -> None:
    for child in list(devices):
        if child.tag in _OWNED_DEVICES:
            devices.remove(child)
    for disk, target in zip(spec.disks, assign_targets(spec.disks), strict=True):
        devices.append(_disk_element(disk, target))
    if any(d.bus is DiskBus.SCSI for d in spec.disks) and not _has_scsi_controller(devices):
        ET.SubElement(devices, "controller", type="scsi", index="0", model=design.SCSI_CONTROLLER_MODEL)
    for nic in spec.nics:
        devices.append(_nic_element(nic))
    if spec.serial_log is not None:
        serial_targets: tuple[tuple[str, dict[str, str]], ...] = (
            ("serial", {"port": "0"}),
            ("console", {"type": "serial", "port": "0"}),
        )
        for tag, target_attrs in serial_targets:
            el = ET.SubElement(devices, tag, type="file")
            ET.SubElement(el, "source", path=str(spec.serial_log), append="on")
            ET.SubElement(el, "target", attrib=target_attrs)
    if spec.guest_agent:
        channel = ET.SubElement(devices, "channel", type="unix")
        ET.SubElement(channel, "target", type="virtio", name=design.AGENT_CHANNEL)
    # No balloon unless Dynamic Memory asks for one: it costs a device and a guest driver for nothing.
    ET.SubElement(devices, "memballoon", model="none")


def _has_scsi_controller(devices: ET.Element) -> bool:
    return any(c.get("type") == "scsi" for c in devices.iterfind("controller"))


def _disk_element(disk: DiskSpec, target: str) -> ET.Element:
    """One ``<disk>``; also used by hot-plug, so it stands alone."""
    el = ET.Element("disk", type=disk.kind.value, device="disk")
    driver = ET.SubElement(el, "driver", name="qemu", type=DISK_FORMAT.to_libvirt(disk.format))
    if disk.cache is not None:
        driver.set("cache", disk.cache.value)
    ET.SubElement(el, "source", attrib={"file" if disk.kind is DiskKind.FILE else "dev": str(disk.path)})
    ET.SubElement(el, "target", dev=target, bus=disk.bus.value)
    if disk.readonly:
        ET.SubElement(el, "readonly")
    return el


def disk_element(disk: DiskSpec, target: str) -> ET.Element:
    """One ``<disk>`` element for ``disk`` at guest device ``target`` (hot-plug adds its ``<address>``)."""
    return _disk_element(disk, target)


def _nic_element(nic: NicSpec) -> ET.Element:
    el = ET.Element("interface", type=nic.kind.value)
    if nic.mac is not None:
        ET.SubElement(el, "mac", address=nic.mac)
    if nic.source is not None:
        ET.SubElement(el, "source", attrib={nic.kind.value: nic.source})
    ET.SubElement(el, "model", type=nic.model.value)
    if nic.mtu is not None:
        ET.SubElement(el, "mtu", size=str(nic.mtu))
    return el


def to_string(root: ET.Element) -> str:
    """Serialise a domain element for libvirt."""
    return ET.tostring(root, encoding="unicode")


def canonical(spec: VMSpec, accel: Accel | None = None) -> VMSpec:
    """The one form of ``spec`` that :func:`parse` returns for the domain it defines.

    Ceilings equal to the boot values become ``None``, disks get their targets, ``size`` (a creation request, not a
    property of the defined VM) is dropped, and with ``accel`` (the resolved accelerator) the default CPU model of
    that accelerator is filled in. The requested ``accel`` is kept: it is what the VM was asked to use.
    """
    disks = tuple(
        dataclasses.replace(d, target=t, size=None) for d, t in zip(spec.disks, assign_targets(spec.disks), strict=True)
    )
    return dataclasses.replace(
        spec,
        max_vcpus=None if spec.effective_max_vcpus == spec.vcpus else spec.max_vcpus,
        max_memory=None if spec.effective_max_memory == spec.memory else spec.max_memory,
        disks=disks,
        cpu_model=spec.cpu_model or (design.default_cpu_mode(accel) if accel is not None else None),
    )


def parse(xml: str) -> VMSpec:
    """The spec of a domain definition, in canonical form, with ``accel`` as requested at creation.

    :raises BackendError: the XML is not a domain definition virtkit can read.
    """
    try:
        root = ET.fromstring(xml)
        return _parse(root)
    except (ET.ParseError, KeyError, ValueError, AttributeError) as exc:
        raise BackendError(f"cannot read domain XML: {exc}") from exc


def _int(root: ET.Element, path: str) -> int:
    node = root.find(path)
    if node is None or node.text is None:
        raise ValueError(f"missing {path}")
    return int(node.text)


def _kib_bytes(root: ET.Element, path: str) -> int:
    node = root.find(path)
    if node is None or node.text is None:
        raise ValueError(f"missing {path}")
    unit = node.get("unit", "KiB")
    factor = {"KiB": 1024, "k": 1024, "MiB": 1024**2, "M": 1024**2, "GiB": 1024**3, "G": 1024**3, "b": 1, "bytes": 1}
    return int(node.text) * factor[unit]


def _parse(root: ET.Element) -> VMSpec:
    name = root.findtext("name") or ""
    max_vcpus = _int(root, "vcpu")
    vcpu_el = root.find("vcpu")
    vcpus = int(vcpu_el.get("current", max_vcpus)) if vcpu_el is not None else max_vcpus
    max_memory = _kib_bytes(root, "memory")
    memory = _kib_bytes(root, "currentMemory") if root.find("currentMemory") is not None else max_memory
    os_el = root.find("os")
    type_el = os_el.find("type") if os_el is not None else None
    machine_attr = type_el.get("machine", "pc") if type_el is not None else "pc"
    machine = Machine.Q35 if "q35" in machine_attr else Machine.PC
    loader = os_el.find("loader") if os_el is not None else None
    firmware = (
        Firmware.UEFI
        if loader is not None or (os_el is not None and os_el.get("firmware") == "efi")
        else (Firmware.BIOS)
    )
    secure_boot = loader is not None and loader.get("secure") == "yes"
    kernel = None
    if os_el is not None and os_el.findtext("kernel"):
        initrd = os_el.findtext("initrd")
        kernel = KernelBoot(
            kernel=Path(os_el.findtext("kernel") or ""),
            initrd=Path(initrd) if initrd else None,
            cmdline=os_el.findtext("cmdline") or "",
        )
    boot = tuple(
        BOOT_DEVICE.from_libvirt(b.get("dev", "hd")) for b in (os_el.iterfind("boot") if os_el is not None else ())
    )
    cpu = root.find("cpu")
    cpu_model = None
    cpu_features: tuple[str, ...] = ()
    if cpu is not None:
        cpu_model = cpu.findtext("model") if cpu.get("mode", "custom") == "custom" else cpu.get("mode")
        if cpu.get("mode", "custom") == "custom":
            signs = (
                (FEATURE_POLICY.find(f.get("policy", "require")), f.get("name", "")) for f in cpu.iterfind("feature")
            )
            cpu_features = tuple(sign + n for sign, n in signs if sign is not None)
    requested = root.findtext(f"metadata/{{{METADATA_NS}}}vm/{{{METADATA_NS}}}accel")
    accel = Accel(requested) if requested else DOMAIN_TYPE.from_libvirt(root.get("type", ""))
    devices = root.find("devices")
    devs = list(devices) if devices is not None else []
    disks = tuple(_parse_disk(d) for d in devs if d.tag == "disk" and d.get("device", "disk") == "disk")
    nics = tuple(_parse_nic(n) for n in devs if n.tag == "interface")
    serial_log = None
    for s in devs:
        if s.tag == "serial" and s.get("type") == "file":
            src = s.find("source")
            serial_log = Path(src.get("path", "")) if src is not None else None
            break
    agent = any(
        c.tag == "channel" and (t := c.find("target")) is not None and t.get("name") == design.AGENT_CHANNEL
        for c in devs
    )
    return VMSpec(
        name=name,
        vcpus=vcpus,
        max_vcpus=None if max_vcpus == vcpus else max_vcpus,
        memory=memory,
        max_memory=None if max_memory == memory else max_memory,
        firmware=firmware,
        secure_boot=secure_boot,
        machine=machine,
        accel=accel,
        cpu_model=cpu_model,
        cpu_features=cpu_features,
        boot=boot or (BootDevice.DISK,),
        kernel=kernel,
        disks=disks,
        nics=nics,
        serial_log=serial_log,
        guest_agent=agent,
    )


def parse_disk(el: ET.Element) -> DiskSpec:
    """The spec of one ``<disk>`` element (a file or block disk with a source), its ``target`` set.

    :raises BackendError: a disk virtkit does not model (no source, a network disk, an unknown driver type).
    """
    try:
        return _parse_disk(el)
    except (KeyError, ValueError, AttributeError) as exc:
        raise BackendError(f"cannot read disk XML: {exc}") from exc


def _parse_disk(el: ET.Element) -> DiskSpec:
    kind = DiskKind(el.get("type", "file"))
    src = el.find("source")
    path = (src.get("file") if kind is DiskKind.FILE else src.get("dev")) if src is not None else None
    if not path:
        raise ValueError("a disk without a source (an empty drive) is not modelled")
    driver = el.find("driver")
    target = el.find("target")
    cache = driver.get("cache") if driver is not None else None
    return DiskSpec(
        path=Path(path),
        format=DISK_FORMAT.from_libvirt(driver.get("type", "raw")) if driver is not None else DiskFormat.RAW,
        bus=DiskBus(target.get("bus", "virtio")) if target is not None else DiskBus.VIRTIO,
        kind=kind,
        target=target.get("dev") if target is not None else None,
        readonly=el.find("readonly") is not None,
        cache=DiskCache(cache) if cache else None,
    )


def _parse_nic(el: ET.Element) -> NicSpec:
    kind = NicKind(el.get("type", "network"))
    src = el.find("source")
    mac = el.find("mac")
    model = el.find("model")
    mtu = el.find("mtu")
    return NicSpec(
        kind=kind,
        source=src.get(kind.value) if src is not None and kind is not NicKind.USER else None,
        model=NicModel(model.get("type", "virtio")) if model is not None else NicModel.VIRTIO,
        mac=mac.get("address") if mac is not None else None,
        mtu=int(mtu.get("size", "1500")) if mtu is not None else None,
    )


# Devices whose <source> names a file QEMU opens on the host: a disk virtkit does not model (a CD-ROM, a floppy), a
# shared directory, a character device written to a file or a pipe. (A unix socket channel is libvirt's own.)
_FILE_DEVICES = ("disk", "filesystem", "serial", "console", "parallel", "channel")
_FILE_SOURCE_TYPES = ("file", "block", "dev", "pipe", "mount")


def unmodelled_files(root: ET.Element) -> list[Path]:
    """The files a domain definition names that :func:`parse` does not put in its spec (CD-ROM and floppy images,
    shared directories, character devices on files or pipes, a device tree), in document order.

    The disks a spec models and the serial log are left out: they are checked as a spec is.
    """
    out: list[Path] = []
    dtb = root.findtext("os/dtb")
    if dtb:
        out.append(Path(dtb))
    devices = root.find("devices")
    serial_log_seen = False
    for el in list(devices) if devices is not None else []:
        if el.tag not in _FILE_DEVICES or el.get("type", "file") not in _FILE_SOURCE_TYPES:
            continue
        if el.tag == "disk" and el.get("device", "disk") == "disk" and el.get("type") in ("file", "block"):
            continue  # a modelled disk
        if el.tag == "serial" and el.get("type") == "file" and not serial_log_seen:
            serial_log_seen = True  # the serial log
            continue
        for source in el.iterfind("source"):
            for attr in ("file", "dev", "path", "dir"):
                value = source.get(attr)
                if value:
                    out.append(Path(value))
    return out
