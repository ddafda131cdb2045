"""``<channel>``: a virtio-serial port between host and guest, named by its target (the guest agent's
``org.qemu.guest_agent.0``, SPICE's ``com.redhat.spice.0``)."""

from __future__ import annotations

from virtkit.backends.libvirt.xml.devices.chardev import CharDevice

__all__ = ["Channel"]


class Channel(CharDevice):
    """One ``<channel>``."""

    TAG = "channel"

    @classmethod
    def virtio(cls, name: str) -> Channel:
        """A virtio-serial port ``name`` on a unix socket libvirt makes (as the guest agent's channel is)."""
        channel = cls()
        channel.type = "unix"
        channel.target_type = "virtio"
        channel.target_name = name
        return channel
