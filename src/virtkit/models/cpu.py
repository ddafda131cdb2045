"""A named CPU model with feature changes: the CPU of a VM that must be able to run on several hosts.

Hyper-V calls this "processor compatibility for migration"; on KVM it is the baseline of the hosts' CPUs, a named
QEMU model (``EPYC``, ``Haswell-noTSX``) plus features required (``+pku``) or disabled (``-vme``) on top of it.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING

from virtkit.errors import InvalidSpec
from virtkit.validate import check_text, shown

if TYPE_CHECKING:
    from virtkit.models.vm import VMSpec

__all__ = ["HOST_CPU_MODES", "CPUModel", "check_cpu_features", "check_cpu_model"]

#: ``cpu_model`` values that mean "whatever this host has" rather than a named model.
HOST_CPU_MODES = frozenset({"host-model", "host-passthrough"})

_MODEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# QEMU/libvirt feature names: "pku", "sse4.1", "tsc-deadline", "tsc_adjust", "3dnowprefetch".
_FEATURE_RE = re.compile(r"[+-][A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_cpu_model(field: str, value: object) -> str:
    """Return ``value`` if it is a CPU model name (``EPYC``, ``host-model``), else raise :class:`InvalidSpec`.

    :raises InvalidSpec: not a string, or not a model name.
    """
    if not isinstance(value, str) or not _MODEL_RE.fullmatch(value):
        raise InvalidSpec(field, f"{shown(value)} is not a CPU model name")
    return value


def check_cpu_features(field: str, value: object) -> tuple[str, ...]:
    """Return ``value`` as a tuple of feature changes, ``+name`` (required) or ``-name`` (disabled), each named once.

    :raises InvalidSpec: not a list of such strings, or a feature named twice (the item is named).
    """
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise InvalidSpec(field, "must be a list of '+feature' or '-feature'")
    seen: set[str] = set()
    for i, item in enumerate(value):
        if not isinstance(item, str) or not _FEATURE_RE.fullmatch(item):
            raise InvalidSpec(f"{field}[{i}]", f"{shown(item)} is not '+feature' (require) or '-feature' (disable)")
        if item[1:] in seen:
            raise InvalidSpec(f"{field}[{i}]", f"feature {item[1:]} is named twice")
        seen.add(item[1:])
    return tuple(value)


@dataclasses.dataclass(frozen=True)
class CPUModel:
    """A named CPU model and feature changes on top of it (``+name`` required, ``-name`` disabled).

    ``vendor`` is informative (``AMD``, ``Intel``); a VM's definition does not need it.

    :raises InvalidSpec: a bad model name (``host-model`` is no named model) or feature list.
    """

    model: str
    features: tuple[str, ...] = ()
    vendor: str | None = None

    def __post_init__(self) -> None:
        check_cpu_model("model", self.model)
        if self.model in HOST_CPU_MODES:
            raise InvalidSpec("model", f"{self.model} is a mode, not a named CPU model")
        object.__setattr__(self, "features", check_cpu_features("features", self.features))
        if self.vendor is not None:
            check_text("vendor", self.vendor, max_len=64)

    @property
    def required(self) -> tuple[str, ...]:
        """The names of the features required on top of the model."""
        return tuple(f[1:] for f in self.features if f[0] == "+")

    @property
    def disabled(self) -> tuple[str, ...]:
        """The names of the features of the model that are disabled."""
        return tuple(f[1:] for f in self.features if f[0] == "-")

    def apply(self, spec: VMSpec) -> VMSpec:
        """``spec`` with this CPU: ``cpu_model`` and ``cpu_features`` set from it."""
        return dataclasses.replace(spec, cpu_model=self.model, cpu_features=self.features)
