"""CPU compatibility across hosts: the baseline CPU a VM meant to move should be created with, and the check that
a host can run a VM's CPU (before migrating it there).

Hyper-V's "processor compatibility for migration" is this: create the VM with ``cpu_baseline(hosts)`` and it runs
on every one of them::

    cpu = virtkit.cpu_baseline([host1, host2])
    host1.create(cpu.apply(spec))
    host2.check_cpu(host1.get(spec.name))      # raises Unsupported naming the missing features, if any
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from virtkit.backends.base import HostBackend
from virtkit.errors import InvalidSpec, Unsupported
from virtkit.models.cpu import HOST_CPU_MODES, CPUModel
from virtkit.models.vm import Accel, VMSpec
from virtkit.ops.args import check_hosts

if TYPE_CHECKING:
    from virtkit.ops.host import Host

__all__ = ["check_cpu", "cpu_baseline"]


def check_cpu(backend: HostBackend, what: CPUModel | VMSpec, accel: Accel) -> None:
    """Make sure the host of ``backend`` can run ``what``: a CPU model (under ``accel``), or the CPU of a spec (under
    the spec's own accelerator, with its default CPU model when it names none).

    A CPU that is the host's own (``host-model``, ``host-passthrough``) is whatever the host has, so there is
    nothing to compare; libvirt checks the expanded CPU of such a running VM itself when it migrates.

    :raises InvalidSpec: ``what`` is none of those.
    :raises CPUIncompatible: the host cannot run it; the message names the features it lacks.
    """
    if isinstance(what, CPUModel):
        backend.check_cpu(what, backend.resolve_accel(accel))
        return
    if not isinstance(what, VMSpec):
        raise InvalidSpec("cpu", f"must be a CPUModel, a VMSpec or a VM, not {type(what).__name__}")
    resolved = backend.resolve_accel(what.accel)
    spec = backend.canonical(what, resolved)  # fills in the accelerator's default CPU model
    if spec.cpu_model is None or spec.cpu_model in HOST_CPU_MODES:
        return
    backend.check_cpu(CPUModel(spec.cpu_model, spec.cpu_features), resolved)


def cpu_baseline(hosts: Sequence[Host], *, accel: Accel = Accel.AUTO) -> CPUModel:
    """The richest CPU model every one of ``hosts`` can run: libvirt's baseline of their host-model CPUs.

    Create a VM that must be able to move between these hosts with it (``cpu.apply(spec)``). Every host is asked
    to confirm it can run the result before it is returned.

    :param accel: the accelerator the VMs will use; ``auto`` resolves on each host and must agree.
    :raises InvalidSpec: no list of hosts, or an empty one; a bad ``accel``.
    :raises Unsupported: the hosts resolve ``accel`` differently, a host offers no host-model CPU, or the
        baseline is not runnable everywhere (the message names the host and the missing features).
    """
    hosts = check_hosts("hosts", hosts)
    resolved = {host.uri: host.accel(accel) for host in hosts}
    kinds = set(resolved.values())
    if len(kinds) != 1:
        each = ", ".join(f"{uri}: {value}" for uri, value in resolved.items())
        raise Unsupported(f"the hosts run VMs under different accelerators ({each}); pass accel= explicitly")
    common = kinds.pop()
    cpus = [host.cpu(common) for host in hosts]
    result = hosts[0].baseline_cpu(cpus, accel=common)
    for host in hosts:
        host.check_cpu(result, accel=common)
    return result
