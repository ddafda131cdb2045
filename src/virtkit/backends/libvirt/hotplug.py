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
from collections.abc import Callable

import libvirt

from virtkit.backends.libvirt import design
from virtkit.backends.libvirt.errors import libvirt_errors
from virtkit.backends.libvirt.events import EventSubscription
from virtkit.backends.libvirt.xml.devices.controller import Controller
from virtkit.backends.libvirt.xml.devices.device import Device
from virtkit.backends.libvirt.xml.devices.disk import Disk
from virtkit.backends.libvirt.xml.domain import Domain
from virtkit.errors import OperationTimeout, VirtkitError
from virtkit.models.attached import AttachedDisk, DiskLayout, DiskSlot, ScsiController
from virtkit.models.disk import DiskSpec

__all__ = ["LibvirtDisks"]

_RETRY_INTERVAL = 1.0  # seconds between repeated live-removal requests while the guest has not released a device


def _flags(*, live: bool, persistent: bool) -> int:
    flags = 0
    if live:
        flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
    if persistent:
        flags |= libvirt.VIR_DOMAIN_AFFECT_CONFIG
    return flags


def _scsi_controller(index: int) -> Controller:
    return Controller.new("scsi", index, design.SCSI_CONTROLLER_MODEL)


class LibvirtDisks:
    """Disk hot-plug on one libvirt domain; get one from :meth:`LibvirtDomain.disks`."""

    def __init__(self, dom: libvirt.virDomain, host: str) -> None:
        self._dom = dom
        self._host = host
        self._name: str = dom.name()

    def _what(self, op: str) -> str:
        return f"{op} of {self._name} on {self._host}"

    def _live(self) -> Domain | None:
        with libvirt_errors(self._what("read the running definition")):
            if not self._dom.isActive():
                return None
            xml: str = self._dom.XMLDesc(0)
        return Domain.from_string(xml)

    # -- reading ------------------------------------------------------------------------------------------------

    def layout(self) -> DiskLayout:
        """The disks, occupied slots and SCSI controllers of the running and persistent definitions.

        :raises VirtkitError: translated from libvirt.
        """
        live = self._live()
        with libvirt_errors(self._what("read the persistent definition")):
            persistent = bool(self._dom.isPersistent())
            xml: str | None = self._dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) if persistent else None
        config = Domain.from_string(xml) if xml is not None else None
        disks: dict[str, AttachedDisk] = {}
        slots: dict[tuple[str, int | None, int | None], DiskSlot] = {}
        controllers: dict[int, ScsiController] = {}
        for dom, is_live in ((live, True), (config, False)):
            if dom is None:
                continue
            for disk in dom.disks:
                self._read_disk(disk, is_live, disks, slots)
            for controller in dom.controllers:
                if controller.type != "scsi":
                    continue
                index = controller.index
                old = controllers.get(index) or ScsiController(index, controller.model == design.SCSI_CONTROLLER_MODEL)
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
        disk: Disk,
        is_live: bool,
        disks: dict[str, AttachedDisk],
        slots: dict[tuple[str, int | None, int | None], DiskSlot],
    ) -> None:
        target = disk.target
        if not target:
            return
        controller, unit = disk.scsi_address
        slots.setdefault((target, controller, unit), DiskSlot(target, disk.path, controller, unit))
        if not disk.modelled:
            return  # a CD-ROM, a network disk: it takes a slot, but is not a disk virtkit models
        try:
            spec = disk.spec()
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
        element = Disk.new(disk)
        if controller is not None and unit is not None:
            element.address.set_drive(controller, unit)
        with libvirt_errors(self._what(f"attach {disk.path} as {disk.target} to the definitions")):
            self._dom.attachDeviceFlags(element.to_string(), _flags(live=live, persistent=persistent))

    def add_scsi_controller(self, index: int, *, live: bool, persistent: bool) -> None:
        """Add a virtio-scsi controller with that index.

        :raises VirtkitError: translated from libvirt (no free PCI slot, for one).
        """
        xml = _scsi_controller(index).to_string()
        with libvirt_errors(self._what(f"add SCSI controller {index} to the definitions")):
            self._dom.attachDeviceFlags(xml, _flags(live=live, persistent=persistent))

    def remove_scsi_controller(self, index: int, *, live: bool, persistent: bool, timeout: float) -> None:
        """Remove SCSI controller ``index``: from the running VM (waited for), then from the persistent definition.

        :raises OperationTimeout: the guest did not release it in time (the persistent definition is unchanged).
        :raises VirtkitError: translated from libvirt.
        """
        xml = _scsi_controller(index).to_string()

        def match(dom: Domain) -> Device | None:
            return next((c for c in dom.controllers if c.type == "scsi" and c.index == index), None)

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
        request = Disk()
        request.device = "disk"
        request.target = target
        xml = request.to_string()

        def match(dom: Domain) -> Device | None:
            return next((d for d in dom.disks if d.target == target), None)

        if live:
            self._remove_live(match, xml, f"disk {target}", timeout)
        if persistent:
            with libvirt_errors(self._what(f"remove disk {target} from the persistent definition")):
                self._dom.detachDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_CONFIG)

    def _find_live(self, match: Callable[[Domain], Device | None]) -> Device | None:
        live = self._live()
        return match(live) if live is not None else None

    def _remove_live(self, match: Callable[[Domain], Device | None], xml: str, what: str, timeout: float) -> None:
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
        alias = found.alias
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
