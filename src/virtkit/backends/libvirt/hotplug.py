"""``LibvirtDisks``: disk and SCSI-controller hot-plug on one domain (libvirt's
:class:`~virtkit.backends.base.disks.DiskBackend`).

Facts measured with libvirt 9.0 and QEMU 7.2 (docs/platform.md), which this module relies on:

- ``attachDeviceFlags(LIVE | CONFIG)`` is all-or-nothing: libvirt edits a copy of the persistent definition and
  saves it only after the live attach succeeded (a locked image leaves the definition as it was).
- A SCSI disk on a controller that does not exist makes libvirt add one of its default model (lsilogic), so the
  virtio-scsi controller is added explicitly first; QEMU hot-plugs it (a PCI device) like any other.
- A disk without ``<address>`` on the scsi bus gets one derived from its target name (``sdh`` lands on controller
  1), so SCSI disks are always given their address.
- ``detachDeviceFlags(LIVE | CONFIG)`` changes the persistent definition even when the guest has not released the
  device yet (the live part stays pending), and blocks up to 5 s. So the live removal is asked for alone, with
  ``detachDeviceAlias`` (asynchronous), and waited for through ``VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED``; only then
  is the persistent definition changed. Asking again while the removal is pending is accepted, and a paused
  guest releases a virtio-blk disk only once it runs again; a SCSI disk is released by QEMU itself.
"""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import libvirt

from virtkit.backends.libvirt import design
from virtkit.backends.libvirt.errors import libvirt_errors
from virtkit.backends.libvirt.events import EventSubscription
from virtkit.backends.libvirt.xml import domain as domain_xml
from virtkit.errors import OperationTimeout, VirtkitError
from virtkit.models.attached import AttachedDisk, DiskLayout, DiskSlot, ScsiController
from virtkit.models.disk import DiskBus, DiskSpec

__all__ = ["LibvirtDisks"]

_RETRY_INTERVAL = 1.0  # seconds between repeated live-removal requests while the guest has not released a device


def _flags(*, live: bool, persistent: bool) -> int:
    flags = 0
    if live:
        flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
    if persistent:
        flags |= libvirt.VIR_DOMAIN_AFFECT_CONFIG
    return flags


def _controller_element(index: int) -> ET.Element:
    return ET.Element("controller", type="scsi", index=str(index), model=design.SCSI_CONTROLLER_MODEL)


def _scsi_address(el: ET.Element) -> tuple[int | None, int | None]:
    """(controller, unit) of a disk on the scsi bus, or (None, None)."""
    target = el.find("target")
    addr = el.find("address")
    if target is None or target.get("bus") != DiskBus.SCSI.value or addr is None or addr.get("type") != "drive":
        return None, None
    return int(addr.get("controller", "0")), int(addr.get("unit", "0"))


def _source(el: ET.Element) -> Path | None:
    src = el.find("source")
    if src is None:
        return None
    value = src.get("file") or src.get("dev")
    return Path(value) if value else None


def _devices(root: ET.Element | None) -> list[ET.Element]:
    devices = root.find("devices") if root is not None else None
    return list(devices) if devices is not None else []


class LibvirtDisks:
    """Disk hot-plug on one libvirt domain; get one from :meth:`LibvirtDomain.disks`."""

    def __init__(self, dom: libvirt.virDomain, host: str) -> None:
        self._dom = dom
        self._host = host
        self._name: str = dom.name()

    def _what(self, op: str) -> str:
        return f"{op} of {self._name} on {self._host}"

    def _live_root(self) -> ET.Element | None:
        with libvirt_errors(self._what("read the running definition")):
            if not self._dom.isActive():
                return None
            return ET.fromstring(self._dom.XMLDesc(0))

    # -- reading ------------------------------------------------------------------------------------------------

    def layout(self) -> DiskLayout:
        """The disks, occupied slots and SCSI controllers of the running and persistent definitions.

        :raises VirtkitError: translated from libvirt.
        """
        live = self._live_root()
        with libvirt_errors(self._what("read the persistent definition")):
            config = (
                ET.fromstring(self._dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)) if self._dom.isPersistent() else None
            )
        disks: dict[str, AttachedDisk] = {}
        slots: dict[tuple[str, int | None, int | None], DiskSlot] = {}
        controllers: dict[int, ScsiController] = {}
        for root, is_live in ((live, True), (config, False)):
            for el in _devices(root):
                if el.tag == "disk":
                    self._read_disk(el, is_live, disks, slots)
                elif el.tag == "controller" and el.get("type") == "scsi":
                    index = int(el.get("index", "0"))
                    old = controllers.get(index) or ScsiController(
                        index, el.get("model") == design.SCSI_CONTROLLER_MODEL
                    )
                    controllers[index] = ScsiController(
                        index, old.virtio, live=old.live or is_live, persistent=old.persistent or not is_live
                    )
        return DiskLayout(
            disks=tuple(sorted(disks.values(), key=lambda d: (len(d.target), d.target))),
            slots=tuple(slots.values()),
            controllers=tuple(sorted(controllers.values(), key=lambda c: c.index)),
        )

    @staticmethod
    def _read_disk(
        el: ET.Element,
        is_live: bool,
        disks: dict[str, AttachedDisk],
        slots: dict[tuple[str, int | None, int | None], DiskSlot],
    ) -> None:
        target_el = el.find("target")
        target = target_el.get("dev") if target_el is not None else None
        if not target:
            return
        controller, unit = _scsi_address(el)
        slots.setdefault((target, controller, unit), DiskSlot(target, _source(el), controller, unit))
        if el.get("device", "disk") != "disk" or el.get("type") not in ("file", "block"):
            return  # a CD-ROM, a network disk: it takes a slot, but is not a disk virtkit models
        try:
            spec = domain_xml.parse_disk(el)
        except VirtkitError:
            return  # a driver type or a target virtkit does not model
        old = disks.get(target)
        if old is None:
            disks[target] = AttachedDisk(spec, target, controller, unit, live=is_live, persistent=not is_live)
        elif old.disk.path == spec.path:  # the live definition came first: it wins where they differ
            disks[target] = AttachedDisk(
                old.disk,
                target,
                old.controller,
                old.unit,
                live=old.live or is_live,
                persistent=old.persistent or not is_live,
            )

    # -- changing -----------------------------------------------------------------------------------------------

    def attach(self, disk: DiskSpec, *, controller: int | None, unit: int | None, live: bool, persistent: bool) -> None:
        """Attach ``disk`` (``target`` set), on SCSI at ``controller``/``unit``.

        :raises VirtkitError: translated from libvirt; the persistent definition is then as it was.
        """
        if disk.target is None:
            raise ValueError("attach() needs the disk's target")
        el = domain_xml.disk_element(disk, disk.target)
        if controller is not None and unit is not None:
            attrs = {"type": "drive", "controller": str(controller), "bus": "0", "target": "0", "unit": str(unit)}
            ET.SubElement(el, "address", attrib=attrs)
        with libvirt_errors(self._what(f"attach {disk.path} as {disk.target} to the definitions")):
            self._dom.attachDeviceFlags(ET.tostring(el, encoding="unicode"), _flags(live=live, persistent=persistent))

    def add_scsi_controller(self, index: int, *, live: bool, persistent: bool) -> None:
        """Add a virtio-scsi controller with that index.

        :raises VirtkitError: translated from libvirt (no free PCI slot, for one).
        """
        xml = ET.tostring(_controller_element(index), encoding="unicode")
        with libvirt_errors(self._what(f"add SCSI controller {index} to the definitions")):
            self._dom.attachDeviceFlags(xml, _flags(live=live, persistent=persistent))

    def remove_scsi_controller(self, index: int, *, live: bool, persistent: bool, timeout: float) -> None:
        """Remove SCSI controller ``index``: from the running VM (waited for), then from the persistent definition.

        :raises OperationTimeout: the guest did not release it in time (the persistent definition is unchanged).
        :raises VirtkitError: translated from libvirt.
        """
        xml = ET.tostring(_controller_element(index), encoding="unicode")

        def match(el: ET.Element) -> bool:
            return el.tag == "controller" and el.get("type") == "scsi" and el.get("index") == str(index)

        if live:
            self._remove_live(match, xml, f"SCSI controller {index}", timeout)
        if persistent:
            with libvirt_errors(self._what(f"remove SCSI controller {index} from the persistent definition")):
                self._dom.detachDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_CONFIG)

    def detach(self, target: str, *, live: bool, persistent: bool, timeout: float) -> None:
        """Remove the disk at ``target``: live first (waited for, asked again every second), then persistently.

        The image file is never touched.

        :raises OperationTimeout: the guest did not release it within ``timeout`` seconds; the persistent
            definition is unchanged.
        :raises VirtkitError: translated from libvirt.
        """
        el = ET.Element("disk", device="disk")
        ET.SubElement(el, "target", dev=target)
        xml = ET.tostring(el, encoding="unicode")

        def match(dev: ET.Element) -> bool:
            target_el = dev.find("target")
            return dev.tag == "disk" and target_el is not None and target_el.get("dev") == target

        if live:
            self._remove_live(match, xml, f"disk {target}", timeout)
        if persistent:
            with libvirt_errors(self._what(f"remove disk {target} from the persistent definition")):
                self._dom.detachDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_CONFIG)

    def _find_live(self, match: Callable[[ET.Element], bool]) -> ET.Element | None:
        return next((el for el in _devices(self._live_root()) if match(el)), None)

    def _remove_live(self, match: Callable[[ET.Element], bool], xml: str, what: str, timeout: float) -> None:
        """Ask for the running VM's device that ``match`` finds to be unplugged, and wait for libvirt's
        DEVICE_REMOVED event, asking again every :data:`_RETRY_INTERVAL` seconds; the running definition is read
        after each wait too (an event lost in a reconnect). Nothing is done when the device is not there.

        The request goes by the device's alias (``detachDeviceAlias``, asynchronous); a driver that gives devices
        no alias is asked with the device XML (``xml``) instead.

        :raises OperationTimeout: still there after ``timeout`` seconds.
        """
        found = self._find_live(match)
        if found is None:
            return
        alias_el = found.find("alias")
        alias = alias_el.get("name") if alias_el is not None else None
        removed = threading.Event()

        def on_removed(_conn: libvirt.virConnect, _dom: libvirt.virDomain, dev_alias: str, _opaque: object) -> None:
            if alias is None or dev_alias == alias:
                removed.set()

        def request() -> None:
            with libvirt_errors(self._what(f"remove {what} from the running VM")):
                if alias is not None:
                    self._dom.detachDeviceAlias(alias, libvirt.VIR_DOMAIN_AFFECT_LIVE)
                else:
                    self._dom.detachDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)

        conn = self._dom.connect()
        with libvirt_errors(self._what(f"watch the removal of {what}")):
            cid = conn.domainEventRegisterAny(self._dom, libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED, on_removed, None)
        subscription = EventSubscription(conn, cid)
        deadline = time.monotonic() + timeout
        last_error: VirtkitError | None = None
        try:
            request()
            while True:
                remaining = deadline - time.monotonic()
                removed.wait(max(0.0, min(_RETRY_INTERVAL, remaining)))
                removed.clear()
                if self._find_live(match) is None:
                    return
                if time.monotonic() >= deadline:
                    break
                try:  # the guest may have missed the request, or be slow: ask again
                    request()
                except VirtkitError as exc:
                    last_error = exc  # it may have gone meanwhile: the next round reads the definition
        finally:
            subscription.close()
        detail = f"; the last request failed: {last_error}" if last_error is not None else ""
        raise OperationTimeout(
            f"the guest of {self._name} on {self._host} did not release {what}"
            f"{f' (device {alias})' if alias else ''} within {timeout:g} s{detail}; the persistent definition was "
            "not changed"
        )
