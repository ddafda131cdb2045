"""``<cpu>``: the CPU of a domain, of a baseline or compare call, or a host-model CPU in domain capabilities.

A named model is always written the one way: ``mode='custom' match='exact'`` and ``<model fallback='forbid'>``, so
a guest gets exactly that model or does not start. See https://libvirt.org/formatdomain.html#cpu-model-and-topology.
"""

from __future__ import annotations

from collections.abc import Sequence

from virtkit.backends.libvirt import tables
from virtkit.backends.libvirt.xml.base import ON_OFF, XMLChildren, XMLObject, XMLProperty
from virtkit.errors import BackendError
from virtkit.models.cpu import CPUModel

__all__ = ["CPU", "CPUFeature"]


class CPUFeature(XMLObject):
    """One ``<feature>`` change to a named model."""

    TAG = "feature"
    policy = XMLProperty("./@policy")
    name = XMLProperty("./@name")


class CPU(XMLObject):
    """A ``<cpu>`` element (or a domain capabilities ``<mode>``, which holds the same children)."""

    TAG = "cpu"
    mode = XMLProperty("./@mode")  # custom (the default), host-model, host-passthrough, maximum
    match = XMLProperty("./@match")
    check = XMLProperty("./@check")
    migratable = XMLProperty("./@migratable", ON_OFF)  # host-passthrough and maximum only
    model = XMLProperty("./model")
    fallback = XMLProperty("./model/@fallback")
    vendor = XMLProperty("./vendor")
    feature_list = XMLChildren(CPUFeature)

    @property
    def features(self) -> tuple[str, ...]:
        """The feature changes as ``+name`` (required) and ``-name`` (disabled), in document order.

        A feature without a policy is required (libvirt's default); ``optional`` ones change nothing and are left
        out (see :data:`tables.FEATURE_POLICY`).
        """
        out = []
        for feature in self.feature_list:
            sign = tables.FEATURE_POLICY.find(feature.policy or "require")
            if sign is not None and feature.name:
                out.append(sign + feature.name)
        return tuple(out)

    @features.setter
    def features(self, value: Sequence[str]) -> None:
        if tuple(value) == self.features:
            return
        for old in list(self.feature_list):
            self.feature_list.remove(old)
        for change in value:
            feature = CPUFeature()
            feature.policy = tables.FEATURE_POLICY.to_libvirt(change[0])
            feature.name = change[1:]
            self.feature_list.add(feature)

    @property
    def named(self) -> tuple[str | None, tuple[str, ...]]:
        """(model, feature changes) as a spec says them: a named model and its changes, or the mode
        (``host-model``, ``host-passthrough``) with none; (``None``, ()) when there is no ``<cpu>``."""
        if not self.exists:
            return None, ()
        mode = self.mode or "custom"
        if mode != "custom":
            return mode, ()
        return self.model, self.features

    def set_named(self, model: str, features: Sequence[str] = (), *, vendor: str | None = None) -> None:
        """Make it exactly ``model`` with ``features`` changed (see the module's docstring)."""
        if self.mode not in (None, "custom"):
            self.migratable = None  # an attribute of the host modes
        self.mode = "custom"
        self.match = "exact"
        self.fallback = "forbid"
        self.model = model
        self.vendor = vendor
        self.features = features

    def set_mode(self, mode: str) -> None:
        """Make it the host's own CPU (``host-model``, ``host-passthrough``): a named model's fields go."""
        if self.mode == mode:
            return
        self.mode = mode
        self.match = self.check = self.model = self.fallback = self.vendor = None
        self.features = ()

    def to_model(self) -> CPUModel:
        """The :class:`CPUModel` it names.

        :raises BackendError: it names no model.
        """
        if not self.model:
            raise BackendError(f"libvirt returned a CPU without a model: {self.to_string()[:200]}")
        return CPUModel(model=self.model, features=self.features, vendor=self.vendor)

    @classmethod
    def of_model(cls, cpu: CPUModel) -> CPU:
        """A ``<cpu>`` for ``cpu``, as the baseline and compare calls take it."""
        element = cls()
        element.set_named(cpu.model, cpu.features, vendor=cpu.vendor)
        return element
