"""Host devices through the backend seam: what ``LibvirtDomain.host_devices`` reads from the domain XML, and which of
them :mod:`virtkit.ops.blockers` lets a running VM's state be written out with (libvirt's rule).

The refusals themselves, in check mode and for real, are in tests/test_check_mode.py.
"""

from __future__ import annotations

import libvirt

from virtkit.backends.base.domain import HostDevice
from virtkit.backends.libvirt.domain import LibvirtDomain
from virtkit.ops.blockers import blockers

IFACE = """
<interface type='hostdev' managed='yes'><mac address='52:54:00:6d:90:02'/>
  <source><address type='pci' domain='0x0000' bus='0x00' slot='0x07' function='0x0'/></source></interface>
"""
DEVICES = (
    IFACE
    + """
<hostdev mode='subsystem' type='pci' managed='yes'>
  <source><address domain='0x0000' bus='0x06' slot='0x12' function='0x5'/></source></hostdev>
<hostdev mode='subsystem' type='pci' managed='yes'>
  <source><address domain='0x0000' bus='0x07' slot='0x00' function='0x1'/></source>
  <teaming type='transient' persistent='ua-backup0'/></hostdev>
<hostdev mode='subsystem' type='usb'><source><vendor id='0x1234'/><product id='0xbeef'/></source></hostdev>
<hostdev mode='subsystem' type='usb'><source><address bus='1' device='3'/></source></hostdev>
<hostdev mode='subsystem' type='scsi'>
  <source><adapter name='scsi_host0'/><address bus='0' target='0' unit='1'/></source></hostdev>
<hostdev mode='subsystem' type='scsi'>
  <source protocol='iscsi' name='iqn.2014-08.com.example:iscsi-nopool/1'><host name='example.com' port='3260'/></source>
</hostdev>
<hostdev mode='subsystem' type='scsi_host'><source protocol='vhost' wwpn='naa.50014057667280d8'/></hostdev>
<hostdev mode='subsystem' type='mdev' model='vfio-pci'>
  <source><address uuid='c2177883-f1bb-47f0-914d-32a22e3a8804'/></source></hostdev>
<hostdev mode='capabilities' type='storage'><source><block>/dev/sdf1</block></source></hostdev>
<hostdev mode='capabilities' type='misc'><source><char>/dev/input/event3</char></source></hostdev>
<hostdev mode='capabilities' type='net'><source><interface>eth0</interface></source></hostdev>
"""
)


def _domain(conn: libvirt.virConnect, devices: str, *, name: str = "web1", start: bool = True) -> LibvirtDomain:
    dom = conn.defineXML(
        f"<domain type='qemu'><name>{name}</name><memory unit='KiB'>131072</memory><vcpu>1</vcpu>"
        f"<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>{devices}</devices></domain>"
    )
    if start:
        dom.create()
    return LibvirtDomain(dom, "test")


def test_every_kind_of_host_device_is_read_with_its_host_address(conn: libvirt.virConnect) -> None:
    assert _domain(conn, DEVICES).host_devices() == (
        HostDevice("pci", "0000:00:07.0", interface=True),  # libvirt lists interfaces before host devices
        HostDevice("pci", "0000:06:12.5"),
        HostDevice("pci", "0000:07:00.1", transient=True),
        HostDevice("usb", "1234:beef"),
        HostDevice("usb", "bus 1 device 3"),
        HostDevice("scsi", "scsi_host0 0:0:1"),
        HostDevice("scsi", "iscsi iqn.2014-08.com.example:iscsi-nopool/1 on example.com:3260"),
        HostDevice("scsi_host", "vhost wwpn naa.50014057667280d8"),
        HostDevice("mdev", "c2177883-f1bb-47f0-914d-32a22e3a8804"),
        HostDevice("storage", "/dev/sdf1", mode="capabilities"),
        HostDevice("misc", "/dev/input/event3", mode="capabilities"),
        HostDevice("net", "eth0", mode="capabilities"),
    )


def test_a_vm_without_host_devices_has_none_and_a_stopped_vm_has_its_definitions(conn: libvirt.virConnect) -> None:
    assert _domain(conn, "<input type='tablet' bus='usb'/>").host_devices() == ()
    stopped = _domain(conn, IFACE, name="web2", start=False)
    assert stopped.host_devices() == (HostDevice("pci", "0000:00:07.0", interface=True),)


def test_libvirts_rule_usb_and_transient_pci_pass_everything_else_blocks(conn: libvirt.virConnect) -> None:
    reasons = blockers(_domain(conn, DEVICES))
    why = " is passed through (its state is in the host's hardware, out of QEMU's reach)"
    assert reasons == [
        "network interface on host device pci 0000:00:07.0" + why,
        "host device pci 0000:06:12.5" + why,
        "host device scsi scsi_host0 0:0:1" + why,
        "host device scsi iscsi iqn.2014-08.com.example:iscsi-nopool/1 on example.com:3260" + why,
        "host device scsi_host vhost wwpn naa.50014057667280d8" + why,
        "host device mdev c2177883-f1bb-47f0-914d-32a22e3a8804" + why,
        "capabilities-mode host device storage /dev/sdf1" + why,
        "capabilities-mode host device misc /dev/input/event3" + why,
        "capabilities-mode host device net eth0" + why,
    ]
