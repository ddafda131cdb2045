"""The site file: the hosts of a site and the VMs that should exist on them, each in a desired state.

A site file is YAML (or JSON) read as strictly as a VM spec: an unknown key, a bad value or a reference to a host
the site does not have raises :class:`~virtkit.errors.InvalidSpec` naming the field's path
(``vms[2].host: 'h9' is not a host of this site``). ``hosts`` maps a host's name to how to reach it; each entry
of ``vms`` gives its VM as a neutral spec (``spec``) or a Hyper-V one (``hyperv``), its desired ``state``, where it
runs (``host``, or ``placement``) and the ``checkpoints`` it must have.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Self

from virtkit.errors import InvalidSpec
from virtkit.hyperv.spec import HyperVSpec
from virtkit.models._fields import Spec, dump, json_schema, load, normalize, spec_field
from virtkit.models._yaml import read_file, read_yaml
from virtkit.models.migration import MigrationMode
from virtkit.models.vm import VMSpec
from virtkit.remote.config import SSHConfig
from virtkit.validate import check_name, shown

__all__ = ["MAX_HOSTS", "MAX_SITE_VMS", "DesiredState", "HostSpec", "Placement", "SiteOptions", "SiteSpec", "SiteVM"]

#: The most hosts a site file may name.
MAX_HOSTS = 256
#: The most VMs a site file may declare.
MAX_SITE_VMS = 4096
#: The most checkpoints one VM of a site may ask for.
MAX_CHECKPOINTS = 256

_URI = r"[A-Za-z][A-Za-z0-9+.-]*:///?[^\s]*"


class DesiredState(StrEnum):
    """The state a site wants a VM in; ``absent`` removes it."""

    RUNNING = "running"
    STOPPED = "stopped"
    PAUSED = "paused"
    SAVED = "saved"
    ABSENT = "absent"


class Placement(StrEnum):
    """How to choose a host for a VM that names none. ``least-memory``: the host whose VMs have the least memory."""

    LEAST_MEMORY = "least-memory"


@dataclasses.dataclass(frozen=True)
class HostSpec(Spec):
    """A host of the site: its name (the key in ``hosts``), its libvirt URI and how to reach its files."""

    name: str = spec_field("host name in this site file", name=True)
    uri: str = spec_field("libvirt connection URI (qemu+ssh://root@h1/system)", pattern=_URI, expected="a libvirt URI")
    ssh: SSHConfig | None = spec_field("how to reach the host's files over SSH", default=None)
    storage_roots: tuple[Path, ...] = spec_field(
        "directories on the host where VM disks may live", default=(), max_items=64
    )

    def __post_init__(self) -> None:
        normalize(self)


@dataclasses.dataclass(frozen=True)
class SiteOptions(Spec):
    """How the site's plans are carried out."""

    migration: MigrationMode = spec_field(
        "how a running VM moves to the host the file names: live (shared storage), live-storage or quick; a VM "
        "that is off moves offline",
        default=MigrationMode.LIVE,
    )
    shared_storage: tuple[Path, ...] = spec_field(
        "directories every host sees at the same path (for live migration)", default=(), max_items=64
    )
    shutdown_timeout: float = spec_field(
        "seconds a guest has to power off when asked before it is powered off hard",
        default=60.0,
        minimum=0,
        maximum=3600,
    )
    keep_disks: bool = spec_field(
        "an absent VM keeps its disk images (by default they are deleted with it)", default=False
    )

    def __post_init__(self) -> None:
        normalize(self)
        if self.migration is MigrationMode.OFFLINE:
            raise InvalidSpec("migration", "live, live-storage or quick: a VM that is off always moves offline")


@dataclasses.dataclass(frozen=True)
class SiteVM(Spec):
    """One VM of the site: what it is (``spec`` or ``hyperv``), its state, where it runs, its checkpoints.

    The spec's own name may be left out: it is the VM's ``name``.
    """

    name: str = spec_field("VM name: 1-63 letters, digits, '_', '.', '-'", name=True)
    spec: VMSpec | None = spec_field("the VM as a neutral spec (or give hyperv)", default=None)
    hyperv: HyperVSpec | None = spec_field("the VM as a Hyper-V spec (or give spec)", default=None)
    state: DesiredState = spec_field("running, stopped, paused, saved or absent", default=DesiredState.RUNNING)
    host: str | None = spec_field("the host it runs on, a name in hosts (or give placement)", default=None, name=True)
    placement: Placement | None = spec_field("how to choose its host when host is not given", default=None)
    checkpoints: tuple[str, ...] = spec_field(
        "names of checkpoints that must exist", default=(), name=True, max_items=MAX_CHECKPOINTS
    )
    revert_to: str | None = spec_field(
        "a checkpoint the VM is reverted to when it is not its current one (after its checkpoints are taken)",
        default=None,
        name=True,
    )

    def __post_init__(self) -> None:
        check_name("name", self.name)
        for field, key in (("spec", "name"), ("hyperv", "Name")):
            given = getattr(self, field)
            if isinstance(given, Mapping) and key not in given:
                object.__setattr__(self, field, {key: self.name, **given})
        normalize(self)
        if (self.spec is None) == (self.hyperv is None):
            raise InvalidSpec("spec", "give exactly one of spec and hyperv")
        try:
            neutral = self.vm_spec
        except InvalidSpec as exc:  # a Hyper-V spec that has no neutral equivalent: the field in Hyper-V's words
            raise InvalidSpec(f"hyperv.{exc.field}", exc.reason) from None
        if neutral.name != self.name:
            field = "spec.name" if self.spec is not None else "hyperv.Name"
            raise InvalidSpec(field, f"{shown(neutral.name)} is not the VM's name {shown(self.name)}")
        if self.host is not None and self.placement is not None:
            raise InvalidSpec("placement", "give host or placement, not both")
        if self.host is None and self.placement is None and self.state is not DesiredState.ABSENT:
            raise InvalidSpec("host", "is required unless placement is given")
        if len(set(self.checkpoints)) != len(self.checkpoints):
            raise InvalidSpec("checkpoints", "lists a checkpoint twice")

    @functools.cached_property
    def vm_spec(self) -> VMSpec:
        """The neutral spec of this VM, converted from the Hyper-V spec when that is what was given."""
        if self.spec is not None:
            return self.spec
        assert self.hyperv is not None  # __post_init__ checked that one of them is given
        return self.hyperv.to_spec()


@dataclasses.dataclass(frozen=True)
class SiteSpec(Spec):
    """A site: its hosts by name and the VMs that should run on them."""

    hosts: tuple[HostSpec, ...] = spec_field("the hosts, by name", max_items=MAX_HOSTS)
    vms: tuple[SiteVM, ...] = spec_field("the VMs, in the order they are planned", default=(), max_items=MAX_SITE_VMS)
    options: SiteOptions = spec_field("how plans are carried out", default_factory=SiteOptions)

    def __post_init__(self) -> None:
        normalize(self)
        hosts: dict[str, int] = {}
        for i, host in enumerate(self.hosts):
            if hosts.setdefault(host.name, i) != i:
                raise InvalidSpec(f"hosts.{host.name}", "is given twice")
        names: dict[str, int] = {}
        for i, vm in enumerate(self.vms):
            if (first := names.setdefault(vm.name, i)) != i:
                raise InvalidSpec(f"vms[{i}].name", f"{shown(vm.name)} is the name of vms[{first}] too")
            if vm.host is not None and vm.host not in hosts:
                raise InvalidSpec(f"vms[{i}].host", f"{shown(vm.host)} is not a host of this site")
            if vm.placement is not None and not hosts:
                raise InvalidSpec(f"vms[{i}].placement", "this site has no hosts to place it on")

    def host(self, name: str) -> HostSpec:
        """The host called ``name``.

        :raises InvalidSpec: the site has no such host (field ``host``).
        """
        for host in self.hosts:
            if host.name == name:
                return host
        raise InvalidSpec("host", f"{shown(name)} is not a host of this site")

    @classmethod
    def from_dict(cls, data: object, prefix: str = "") -> Self:
        """A site from plain data: ``hosts`` maps names to hosts, ``vms`` lists the VMs.

        :raises InvalidSpec: naming the field path (``hosts.h1.uri``, ``vms[2].host``) and the reason.
        """
        if isinstance(data, Mapping) and "hosts" in data:
            data = {**data, "hosts": _named_hosts(data["hosts"], f"{prefix}.hosts" if prefix else "hosts")}
        elif not isinstance(data, Mapping | cls):
            raise InvalidSpec(prefix or "site", f"must be a mapping of fields, not {type(data).__name__}")
        return load(cls, data, prefix)

    def to_dict(self) -> dict[str, Any]:
        """Plain data that :meth:`from_dict` reads back to an equal site."""
        hosts = {h.name: {k: v for k, v in dump(h).items() if k != "name"} for h in self.hosts}
        return {"hosts": hosts, "vms": dump(self.vms), "options": dump(self.options)}

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The JSON Schema of a site file."""
        schema = json_schema(cls)
        host = json_schema(HostSpec)
        del host["$schema"]
        del host["properties"]["name"]
        host["required"] = [k for k in host.get("required", []) if k != "name"]
        schema["properties"]["hosts"] = {
            "type": "object",
            "description": "the hosts, by name",
            "propertyNames": {"pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"},
            "additionalProperties": host,
            "maxProperties": MAX_HOSTS,
        }
        return schema

    @classmethod
    def from_yaml(cls, text: str) -> SiteSpec:
        """A site from YAML text, read with the bounds of :mod:`virtkit.models._yaml`.

        :raises InvalidSpec: on YAML that is not valid or too large (field ``yaml``) and on any bad field.
        """
        return cls.from_dict(read_yaml(text))

    @classmethod
    def from_file(cls, path: str | Path) -> SiteSpec:
        """A site from a YAML (or JSON) file of UTF-8 text.

        :raises InvalidSpec: the file cannot be read (field ``file``), or as :meth:`from_yaml`.
        """
        return cls.from_yaml(read_file(path))


def _named_hosts(hosts: object, field: str) -> object:
    """``hosts`` as a mapping of names to hosts turned into a list of :class:`HostSpec`, each knowing its name."""
    if not isinstance(hosts, Mapping):
        raise InvalidSpec(field, f"must be a mapping of host names to hosts, not {type(hosts).__name__}")
    if len(hosts) > MAX_HOSTS:
        raise InvalidSpec(field, f"has {len(hosts)} hosts; at most {MAX_HOSTS} are allowed")
    out: list[HostSpec] = []
    for name, host in hosts.items():
        check_name(field, name)
        where = f"{field}.{name}"
        if not isinstance(host, Mapping):
            raise InvalidSpec(where, f"must be a mapping of fields, not {type(host).__name__}")
        if "name" in host:
            raise InvalidSpec(f"{where}.name", "unknown field; a host's name is its key in hosts")
        out.append(HostSpec.from_dict({"name": name, **host}, where))
    return out
