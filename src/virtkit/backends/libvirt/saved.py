"""Saved-state files on the libvirt side: what a file holds (``virDomainSaveImageGetXMLDesc``) and bringing it back
(``virDomainRestore``). Saving itself is a method of :class:`~virtkit.backends.libvirt.domain.LibvirtDomain`."""

from __future__ import annotations

from pathlib import Path

import libvirt

from virtkit.backends.libvirt import design
from virtkit.backends.libvirt.errors import libvirt_errors, translate
from virtkit.backends.libvirt.xml import domain as domain_xml
from virtkit.backends.libvirt.xml.domain import Domain
from virtkit.errors import BackendError, InvalidSpec, Unsupported
from virtkit.models.snapshot import SavedImage

__all__ = ["read_image", "restore"]


def read_image(conn: libvirt.virConnect, path: Path, host: str) -> SavedImage:
    """The VM a saved-state file holds, read from its header (the file's domain XML) alone.

    :raises InvalidSpec: (field ``path``) the file is missing or holds no saved state libvirt can read.
    :raises HostUnavailable: the host cannot be reached.
    """
    try:
        xml: str = conn.saveImageGetXMLDesc(str(path), 0)
    except libvirt.libvirtError as exc:
        err = translate(exc, f"read the saved state {path} on {host}")
        if type(err) is BackendError:  # a missing, unreadable or foreign file; not a connection failure
            reason = f"{path} is not a saved state libvirt can read: {exc.get_error_message()}"
            raise InvalidSpec("path", reason) from exc
        raise err from exc
    dom = Domain.from_string(xml)
    name, uuid = dom.identity()
    foreign = design.foreign_firmware(dom)
    if foreign is not None:
        raise InvalidSpec("path", f"{path} holds a VM whose firmware is not one virtkit knows: {foreign}")
    try:
        spec = domain_xml.parse(xml)
    except (BackendError, Unsupported) as exc:
        raise InvalidSpec("path", f"{path} holds a VM virtkit cannot check: {exc.message}") from exc
    except InvalidSpec as exc:
        raise InvalidSpec(f"path.{exc.field}", exc.reason) from exc
    return SavedImage(
        name=name,
        uuid=uuid,
        accel=dom.accel or spec.accel,  # parse() refuses a definition without a type
        vcpus=spec.vcpus,
        memory=spec.memory,
        max_memory=spec.effective_max_memory,
        spec=spec,
        other_files=tuple(dom.unmodelled_files()),
    )


def restore(conn: libvirt.virConnect, path: Path, host: str) -> libvirt.virDomain:
    """Start the VM of a saved-state file from it, in the power state it was saved in; return its domain.

    Into the persistent definition of that VM when the host has one, else as a transient VM.

    :raises VirtkitError: translated from libvirt (a truncated or corrupted file fails here).
    """
    with libvirt_errors(f"restore {path} on {host}"):
        xml: str = conn.saveImageGetXMLDesc(str(path), 0)
        conn.restoreFlags(str(path), None, 0)
        return conn.lookupByUUIDString(Domain.from_string(xml).identity()[1])
