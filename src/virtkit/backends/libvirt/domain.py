"""``LibvirtDomain``: owns one ``virDomain`` handle; the only code that calls domain methods of libvirt."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt

from virtkit.backends.base.domain import HostDevice
from virtkit.backends.libvirt import states
from virtkit.backends.libvirt.agent import LibvirtAgent
from virtkit.backends.libvirt.errors import libvirt_errors, translate
from virtkit.backends.libvirt.hotplug import LibvirtDisks
from virtkit.backends.libvirt.snapshots import LibvirtSnapshots
from virtkit.backends.libvirt.tables import libvirt_names
from virtkit.backends.libvirt.xml import domain as domain_xml
from virtkit.backends.libvirt.xml.domain import Domain
from virtkit.errors import BackendError, Conflict, NotFound, Unsupported
from virtkit.models.state import VMInfo, VMState
from virtkit.models.vm import Accel, VMSpec

__all__ = ["LibvirtDomain"]

# Undefine takes what belongs to the definition with it; storage is the caller's decision.
_UNDEFINE_FLAGS = libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
_UNDEFINE_ALL = _UNDEFINE_FLAGS | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA


class LibvirtDomain:
    """One VM on one libvirt host."""

    def __init__(self, dom: libvirt.virDomain, host: str, *, accel: Accel | None = None) -> None:
        self._dom = dom
        self._host = host
        self._name: str = dom.name()
        self._accel = accel  # read from the XML on first use when not known

    @property
    def name(self) -> str:
        """The VM's name."""
        return self._name

    @property
    def uuid(self) -> str:
        """The VM's UUID, held by the handle itself (no round trip)."""
        value: str = self._dom.UUIDString()
        return value

    def _what(self, op: str) -> str:
        return f"{op} {self._name} on {self._host}"

    def xml(self, *, inactive: bool = True) -> str:
        """The domain XML: the persistent definition (``inactive``), or the running one.

        :raises VirtkitError: translated from libvirt.
        """
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0
        with libvirt_errors(self._what("read the definition of")):
            text: str = self._dom.XMLDesc(flags)
        return text

    def spec(self) -> VMSpec:
        """The persistent definition, in canonical form.

        :raises VirtkitError: translated from libvirt, or the XML cannot be read.
        """
        return domain_xml.parse(self.xml())

    def active_job(self) -> str | None:
        """The operation of the domain's active job (``jobStats``: ``migration out``, ``migration in``, ``save``,
        ``snapshot``...), or ``None`` when none runs, the VM is stopped or gone, or the driver keeps no jobs.

        :raises VirtkitError: translated from libvirt (the host does not answer).
        """
        try:
            raw = self._dom.jobStats(0)
        except libvirt.libvirtError as exc:
            err = translate(exc, self._what("read the job of"))
            if isinstance(err, NotFound | Conflict | Unsupported):
                return None
            raise err from exc
        if raw.get("type", libvirt.VIR_DOMAIN_JOB_NONE) in (
            libvirt.VIR_DOMAIN_JOB_NONE,
            libvirt.VIR_DOMAIN_JOB_COMPLETED,
        ):
            return None
        operation = libvirt_names("VIR_DOMAIN_JOB_OPERATION_").get(raw.get("operation", -1), "unknown")
        return operation.replace("_", " ")

    def set_resources(self, *, memory: int | None, vcpus: int | None) -> None:
        """Memory through the balloon and vCPUs by hot-plug: the definition first, then the running VM; if the
        running VM refuses, the definition is set back (``setMemoryFlags``/``setVcpusFlags``).

        :raises VirtkitError: translated from libvirt (a guest without a balloon device, a machine without vCPU
            hot-plug).
        """
        was = self.spec()
        config, live = libvirt.VIR_DOMAIN_AFFECT_CONFIG, libvirt.VIR_DOMAIN_AFFECT_LIVE
        changes = (
            ("memory", self._dom.setMemoryFlags, memory, was.memory, 1024),
            ("vCPUs", self._dom.setVcpusFlags, vcpus, was.vcpus, 1),
        )
        for what, setter, value, old, unit in changes:
            if value is None:
                continue
            with libvirt_errors(self._what(f"change the {what} of")):
                setter(value // unit, config)
                try:
                    setter(value // unit, live)
                except libvirt.libvirtError:
                    setter(old // unit, config)
                    raise

    def set_policy(self, spec: VMSpec) -> None:
        """Write ``spec``'s description, snapshot mode, host-stop action and agent services to the persistent
        definition and, while it runs, to the running VM, at once (libvirt's metadata calls: no restart).

        :raises VirtkitError: translated from libvirt.
        """
        dom = domain_xml.Domain.from_string(self.xml())
        domain_xml.write_policy(dom, spec)
        element = dom.node.find(f"metadata/{{{domain_xml.METADATA_NS}}}vm")
        text = None if element is None else ET.tostring(_without_namespace(element), encoding="unicode")
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
        with libvirt_errors(self._what("change the metadata of")):
            if self._dom.isActive():
                flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
            self._dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, text, "virtkit", domain_xml.METADATA_NS, flags)
            self._dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_DESCRIPTION, spec.description, None, None, flags)

    def accel(self) -> Accel:
        """The accelerator the definition uses (``kvm`` or ``tcg``), read once per handle.

        :raises Unsupported: a domain type virtkit does not model (not a QEMU domain).
        :raises VirtkitError: translated from libvirt.
        """
        if self._accel is None:
            accel = Domain.from_string(self.xml()).accel
            if accel is None:
                raise BackendError(f"the definition of {self._name} on {self._host} has no domain type")
            self._accel = accel
        return self._accel

    def info(self) -> VMInfo:
        """The VM's state and resources now.

        :raises NotFound: the VM went away.
        """
        with libvirt_errors(self._what("read the state of")):
            state, reason = self._dom.state()
            _, max_mem_kib, mem_kib, vcpus, _ = self._dom.info()
            persistent = bool(self._dom.isPersistent())
            managed_save = persistent and bool(self._dom.hasManagedSaveImage(0))
            autostart = persistent and bool(self._dom.autostart())
            uuid: str = self._dom.UUIDString()
            vm_state = states.to_state(state, reason, managed_save=managed_save)
            if vm_state is VMState.MIGRATING and self._dom.jobInfo()[0] == libvirt.VIR_DOMAIN_JOB_NONE:
                # A VM restored paused keeps the reason "migration" (a restore is an incoming migration in
                # libvirt) until it is resumed: with no job running, it is simply paused.
                vm_state = VMState.PAUSED
        return VMInfo(
            name=self._name,
            uuid=uuid,
            state=vm_state,
            reason=states.reason_name(state, reason),
            accel=self.accel(),
            vcpus=vcpus,
            memory=mem_kib * 1024,
            max_memory=max_mem_kib * 1024,
            persistent=persistent,
            autostart=autostart,
            managed_save=managed_save,
            host=self._host,
        )

    def disks(self) -> LibvirtDisks:
        """Disk hot-plug on this VM (see :mod:`virtkit.backends.libvirt.hotplug`)."""
        return LibvirtDisks(self._dom, self._host)

    def host_devices(self) -> tuple[HostDevice, ...]:
        """The host devices passed through to the VM, in document order: each ``<hostdev>`` (``subsystem`` or
        ``capabilities`` mode) and each ``<interface type='hostdev'>`` of the running definition, or of the
        persistent one when the VM is stopped (``XMLDesc`` without flags gives whichever holds).

        :raises VirtkitError: translated from libvirt, or the XML cannot be read.
        """
        devices = Domain.from_string(self.xml(inactive=False)).node.find("./devices")
        found = []
        for el in [] if devices is None else list(devices):
            interface = el.tag == "interface" and el.get("type") == "hostdev"
            if el.tag != "hostdev" and not interface:
                continue
            source = el.find("./source")
            address = None if source is None else source.find("./address")
            src = {} if source is None else dict(source.attrib)
            addr = {} if address is None else dict(address.attrib)
            parts: dict[str, str] = {}
            for child in [] if source is None else list(source):
                value = (child.text or "").strip() or child.get("id") or child.get("name") or ""
                parts[child.tag] = f"{value}:{child.get('port')}" if child.get("port") else value
            kind = addr.get("type", "pci") if interface else el.get("type", "")
            teaming = el.find("./teaming")
            found.append(
                HostDevice(
                    kind=kind,
                    address=self._host_address(kind, src, addr, parts),
                    mode="subsystem" if interface else el.get("mode", "subsystem"),
                    interface=interface,
                    transient=teaming is not None and teaming.get("type") == "transient",
                )
            )
        return tuple(found)

    @staticmethod
    def _host_address(kind: str, src: dict[str, str], addr: dict[str, str], parts: dict[str, str]) -> str:
        """Where a passed-through device is on the host, as a person reads it, from its ``<source>``: the attributes
        of the source and of its ``<address>``, and the text (or ``id``, or ``name``) of each child."""
        if kind == "pci" and {"bus", "slot"} <= addr.keys():
            try:
                dom, bus, slot, fn = (int(addr.get(k, "0"), 0) for k in ("domain", "bus", "slot", "function"))
            except ValueError:
                pass
            else:
                return f"{dom:04x}:{bus:02x}:{slot:02x}.{fn:x}"
        if kind == "usb" and ({"vendor", "product"} <= parts.keys() or {"bus", "device"} <= addr.keys()):
            ids = (
                f"{parts['vendor'].removeprefix('0x')}:{parts['product'].removeprefix('0x')}"
                if {"vendor", "product"} <= parts.keys()
                else ""
            )
            at = f"bus {addr['bus']} device {addr['device']}" if {"bus", "device"} <= addr.keys() else ""
            return " at ".join(p for p in (ids, at) if p)
        if kind == "scsi" and "adapter" in parts:
            return f"{parts['adapter']} {addr.get('bus', '0')}:{addr.get('target', '0')}:{addr.get('unit', '0')}"
        if kind == "scsi" and "name" in src:
            where = f" on {parts['host']}" if parts.get("host") else ""
            return f"{src.get('protocol', 'iscsi')} {src['name']}{where}"
        if kind == "scsi_host" and "wwpn" in src:
            return f"{src.get('protocol', 'vhost')} wwpn {src['wwpn']}"
        if kind == "mdev" and "uuid" in addr:
            return addr["uuid"]
        for tag in ("block", "char", "interface"):  # capabilities mode: a host device node, or a host NIC
            if parts.get(tag):
                return parts[tag]
        given = {**src, **addr, **parts}
        return " ".join(f"{k}={v}" for k, v in given.items() if v) or "(no address given)"

    def start(self) -> None:
        """Boot it; a managed-save image is resumed instead (libvirt does this by itself).

        A VM whose UEFI firmware was changed while it was off (Secure Boot switched) boots with its UEFI variables
        copied afresh from the new firmware's template: the old ones lack (or keep) the enrolled keys.
        """
        dom = domain_xml.Domain.from_string(self.xml())
        if not dom.nvram_stale:
            with libvirt_errors(self._what("start")):
                self._dom.create()
            return
        try:
            self._dom.createWithFlags(libvirt.VIR_DOMAIN_START_RESET_NVRAM)
        except libvirt.libvirtError as exc:
            err = translate(exc, self._what("start"))
            if not isinstance(err, Unsupported):
                raise err from exc
            # A driver without UEFI variable stores (libvirt's test driver) refuses the flag: nothing to reset.
            with libvirt_errors(self._what("start")):
                self._dom.create()
        dom.nvram_stale = None
        with libvirt_errors(self._what("clear the stale-NVRAM mark of")):
            self._dom.connect().defineXML(domain_xml.to_string(dom.node))

    def shutdown(self, *, agent: bool) -> None:
        """Ask the guest to power off, through the guest agent if ``agent`` else as the hypervisor prefers (ACPI
        power button for QEMU); returns at once."""
        flags = libvirt.VIR_DOMAIN_SHUTDOWN_GUEST_AGENT if agent else libvirt.VIR_DOMAIN_SHUTDOWN_DEFAULT
        with libvirt_errors(self._what("shut down")):
            self._dom.shutdownFlags(flags)

    def destroy(self) -> None:
        """Power off at once (QEMU is terminated; under TCG this takes about 1.5 s, docs/platform.md)."""
        with libvirt_errors(self._what("destroy")):
            self._dom.destroy()

    def reboot(self, *, hard: bool) -> None:
        """Ask the guest to reboot (ACPI), or reset the virtual hardware at once when ``hard``."""
        with libvirt_errors(self._what("reset" if hard else "reboot")):
            if hard:
                self._dom.reset(0)
            else:
                self._dom.reboot(libvirt.VIR_DOMAIN_REBOOT_DEFAULT)

    def pause(self) -> None:
        """Stop the vCPUs."""
        with libvirt_errors(self._what("pause")):
            self._dom.suspend()

    def resume(self) -> None:
        """Restart the vCPUs."""
        with libvirt_errors(self._what("resume")):
            self._dom.resume()

    def agent(self) -> LibvirtAgent:
        """The VM's guest agent (see :mod:`virtkit.backends.libvirt.agent`)."""
        return LibvirtAgent(self._dom, self._name)

    def snapshots(self) -> LibvirtSnapshots:
        """The VM's snapshots (see :mod:`virtkit.backends.libvirt.snapshots`)."""
        return LibvirtSnapshots(self._dom, self._name, self._host)

    def save(self, path: Path) -> None:
        """Write the memory and device state to ``path`` (``virDomainSaveFlags``); QEMU stops afterwards."""
        with libvirt_errors(f"{self._what('save')} to {path}"):
            self._dom.saveFlags(str(path), None, 0)

    def managed_save(self) -> None:
        """Save the state where libvirt keeps it (``virDomainManagedSave``); ``create`` resumes it."""
        with libvirt_errors(self._what("save the state of")):
            self._dom.managedSave(0)

    def discard_saved_state(self) -> None:
        """Remove the managed-save image (``virDomainManagedSaveRemove``)."""
        with libvirt_errors(self._what("discard the saved state of")):
            self._dom.managedSaveRemove(0)

    def undefine(self) -> None:
        """Remove the definition with its managed save, snapshot and checkpoint metadata and NVRAM."""
        try:
            self._dom.undefineFlags(_UNDEFINE_ALL)
            return
        except libvirt.libvirtError as exc:
            err = translate(exc, self._what("undefine"))
            if not isinstance(err, Unsupported):
                raise err from exc
        # A driver without NVRAM or checkpoints (libvirt's test driver) refuses those flags ("unsupported flags"):
        # then ask only for what this domain has.
        flags = _UNDEFINE_FLAGS
        if Domain.from_string(self.xml()).has_nvram:
            flags |= libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
        with libvirt_errors(self._what("undefine")):
            if self._dom.listAllCheckpoints(0):
                flags |= libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
            self._dom.undefineFlags(flags)


def _without_namespace(element: ET.Element) -> ET.Element:
    """A copy of ``element`` with its tags' namespace dropped: libvirt's setMetadata puts the element it is given
    into the namespace it is told, and refuses one that declares a namespace itself."""
    copy = ET.Element(element.tag.rsplit("}", 1)[-1], element.attrib)
    copy.text, copy.tail = element.text, None
    copy.extend(_without_namespace(child) for child in element)
    for new, old in zip(copy, element, strict=True):
        new.tail = old.tail
    return copy
