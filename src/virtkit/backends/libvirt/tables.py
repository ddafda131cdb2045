"""Every translation between virtkit's terms and libvirt's, one table per pair, each read from here alone.

A :class:`Table` goes both ways: virtkit's term to the one libvirt writes, and back. Where libvirt has more terms
than virtkit, the extra ones that read as one of virtkit's are listed as ``lossy`` entries, each with a comment; a
term in neither direction raises :class:`~virtkit.errors.Unsupported` rather than being guessed. Tables that only
read (libvirt's power states) are plain dicts, and their lossy entries are commented the same way.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Generic, TypeVar

import libvirt

from virtkit.backends.libvirt.xml.base import Codec
from virtkit.errors import Unsupported
from virtkit.models.disk import DiskFormat
from virtkit.models.migration import Location
from virtkit.models.state import VMState
from virtkit.models.vm import Accel, BootDevice, Machine

__all__ = [
    "BOOT_DEVICE",
    "DISK_FORMAT",
    "DOMAIN_TYPE",
    "FEATURE_POLICY",
    "LOCATION",
    "MACHINE",
    "SNAPSHOT_STATE",
    "STATE",
    "STATE_WORDS",
    "Table",
    "codec",
    "libvirt_names",
    "machine_of",
]

K = TypeVar("K")


class Table(Generic[K]):
    """virtkit's terms (``K``) and the strings libvirt spells them with, both ways.

    :param what: what libvirt's strings name, for error messages (``domain type``).
    :param lossy: libvirt strings that read as one of virtkit's terms but are never written.
    """

    def __init__(self, what: str, terms: Mapping[K, str], *, lossy: Mapping[str, K] | None = None) -> None:
        self.what = what
        self._to = dict(terms)
        self._from = {v: k for k, v in terms.items()} | dict(lossy or {})

    @property
    def terms(self) -> tuple[K, ...]:
        """virtkit's terms, each of which has a libvirt string."""
        return tuple(self._to)

    def to_libvirt(self, term: K) -> str:
        """libvirt's string for ``term``.

        :raises Unsupported: libvirt has none.
        """
        try:
            return self._to[term]
        except KeyError:
            raise Unsupported(f"virtkit cannot write {term!r} as a libvirt {self.what}") from None

    def from_libvirt(self, value: str) -> K:
        """virtkit's term for libvirt's ``value``.

        :raises Unsupported: virtkit has none (it does not model that {what}).
        """
        try:
            return self._from[value]
        except KeyError:
            raise Unsupported(f"virtkit does not model the libvirt {self.what} {value!r}") from None

    def find(self, value: str | None) -> K | None:
        """virtkit's term for libvirt's ``value``, or ``None`` when there is none."""
        return self._from.get(value) if value is not None else None


#: The resolved accelerator and the ``<domain type>`` that runs it.
DOMAIN_TYPE = Table("domain type", {Accel.KVM: "kvm", Accel.TCG: "qemu"})

#: Image formats and libvirt's ``<driver type>``: libvirt calls the VHD format ``vpc`` (QEMU's name). libvirt 9.0
#: has no ``vhdx`` driver type; the entry is there so that the refusal comes from libvirt, in its own words.
DISK_FORMAT = Table(
    "disk driver type",
    {DiskFormat.QCOW2: "qcow2", DiskFormat.RAW: "raw", DiskFormat.VHD: "vpc", DiskFormat.VHDX: "vhdx"},
)

#: Boot devices and ``<os><boot dev>``. libvirt's ``fd`` (floppy) is not modelled.
BOOT_DEVICE = Table("boot device", {BootDevice.DISK: "hd", BootDevice.NETWORK: "network", BootDevice.CDROM: "cdrom"})

#: ``cpu_features`` signs and ``<feature policy>``: virtkit writes require and disable. ``optional`` (taken if the host
#: has it) is neither and reads as nothing (``find`` gives ``None``): readers leave it out.
FEATURE_POLICY = Table(
    "CPU feature policy",
    {"+": "require", "-": "disable"},
    lossy={
        "force": "+",  # lossy: required even where the host lacks it; libvirt's baseline never writes it
        "forbid": "-",  # lossy: disabled, and the guest refuses to start where the host has it
    },
)

#: Machine families and the alias libvirt resolves to the newest versioned machine of the family.
MACHINE = Table("machine type", {Machine.PC: "pc", Machine.Q35: "q35"})

_VERSIONED_MACHINE = re.compile(r"pc-(?:(q35)|i440fx)-[0-9.]+|pc-[0-9.]+")


def machine_of(machine_type: str) -> Machine:
    """The family of a ``<type machine>``: lossy, a versioned machine (``pc-q35-7.2``, ``pc-i440fx-7.2``) reads as
    its family. Writers leave a versioned machine alone while its family is the one asked for, so the guest keeps the
    hardware it was installed on.

    :raises Unsupported: a machine of another family (``microvm``, ``isapc``).
    """
    found = _VERSIONED_MACHINE.fullmatch(machine_type)
    if found is None:
        return MACHINE.from_libvirt(machine_type)
    return Machine.Q35 if found.group(1) else Machine.PC


#: libvirt's domain state -> the neutral power state (a shut-off VM with a managed save is SAVED, decided in states).
STATE: dict[int, VMState] = {
    libvirt.VIR_DOMAIN_NOSTATE: VMState.UNKNOWN,
    libvirt.VIR_DOMAIN_RUNNING: VMState.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: VMState.RUNNING,  # lossy: blocked on a resource is still running to its owner
    libvirt.VIR_DOMAIN_PAUSED: VMState.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: VMState.SHUTTING_DOWN,
    libvirt.VIR_DOMAIN_SHUTOFF: VMState.STOPPED,
    libvirt.VIR_DOMAIN_CRASHED: VMState.CRASHED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: VMState.SUSPENDED,
}

#: libvirt's words for its domain states (virDomainState's names), as a snapshot's ``<state>`` writes them.
STATE_WORDS = {
    libvirt.VIR_DOMAIN_NOSTATE: "nostate",
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "blocked",
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_SHUTOFF: "shutoff",
    libvirt.VIR_DOMAIN_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "pmsuspended",
}

#: A snapshot's ``<state>`` -> the VM's power state when it was taken: :data:`STATE` by libvirt's words, and
#: ``disk-snapshot``, lossy: libvirt writes it for every disk-only snapshot of an active VM, running or paused;
#: virtkit's own record says which for the snapshots it took.
SNAPSHOT_STATE: dict[str, VMState] = {STATE_WORDS[code]: state for code, state in STATE.items()} | {
    "disk-snapshot": VMState.RUNNING
}

#: An active domain's state -> where migration finds it. An inactive one is DEFINED or ABSENT by its persistence.
LOCATION: dict[int, Location] = {
    libvirt.VIR_DOMAIN_RUNNING: Location.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: Location.RUNNING,  # lossy, as in STATE
    libvirt.VIR_DOMAIN_SHUTDOWN: Location.RUNNING,  # lossy: shutting down, its vCPUs still run
    libvirt.VIR_DOMAIN_PMSUSPENDED: Location.RUNNING,  # lossy: suspended by its guest, QEMU still runs it
    libvirt.VIR_DOMAIN_PAUSED: Location.PAUSED,
}


@functools.cache
def libvirt_names(prefix: str, *, skip: tuple[str, ...] = ()) -> dict[int, str]:
    """libvirt's constants named ``prefix`` + a word, as ``{value: word}`` in lower case (``VIR_DOMAIN_RUNNING_BOOTED``
    with prefix ``VIR_DOMAIN_RUNNING_`` is ``{1: "booted"}``); ``_LAST`` sentinels and the words in ``skip`` (flags of
    another enum that share the prefix) are left out. Read from the libvirt module at first use, then kept.
    """
    out: dict[int, str] = {}
    for attr in dir(libvirt):
        word = attr[len(prefix) :]
        if attr.startswith(prefix) and word != "LAST" and word not in skip:
            out[int(getattr(libvirt, attr))] = word.lower()
    return out


def codec(table: Table[K]) -> Codec[K]:
    """The :class:`~virtkit.backends.libvirt.xml.base.Codec` that spells a field with ``table``."""
    return Codec(table.from_libvirt, table.to_libvirt)
