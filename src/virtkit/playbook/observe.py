"""Reading a site's hosts: what each holds, for the planner.

Every host is read at once, each on its own thread: one bulk listing of all its VMs (state and memory), then the
spec and checkpoint names of the VMs the site names that it holds. VMs the site does not name are only counted
(their memory weighs in placement); they are never changed.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from virtkit.errors import CPUIncompatible, InvalidSpec, NotFound, Unsupported
from virtkit.models.vm import VMSpec
from virtkit.ops.host import Host
from virtkit.playbook.plan import Observed, ObservedVM
from virtkit.playbook.site import DesiredState, SiteSpec

__all__ = ["observe"]


def observe(site: SiteSpec, hosts: Mapping[str, Host]) -> Observed:
    """What the hosts of ``site`` hold now, for :func:`~virtkit.playbook.plan`; ``hosts`` maps each host's name to
    its open connection.

    :raises HostUnavailable: a host stopped answering (the first such error, by host name).
    """
    names = {vm.name for vm in site.vms}
    with ThreadPoolExecutor(max_workers=max(1, len(hosts)), thread_name_prefix="virtkit-observe") as pool:
        futures = {name: pool.submit(_read, host, names) for name, host in sorted(hosts.items())}
        read = {name: future.result() for name, future in futures.items()}
    seen = {name: vms for name, (vms, _) in read.items()}
    memory = {name: used for name, (_, used) in read.items()}
    where = {vm.name: h for h, vms in seen.items() for vm in vms}
    desired: dict[str, VMSpec] = {}
    eligible: dict[str, frozenset[str]] = {}
    for i, vm in enumerate(site.vms):
        if vm.state is DesiredState.ABSENT:
            continue
        field = f"vms[{i}].{'spec' if vm.spec is not None else 'hyperv'}"
        try:
            host = vm.host or where.get(vm.name)
            if host is None:  # to be placed: among the hosts that can run its CPU
                able = frozenset(h for h in sorted(hosts) if _can_run(hosts[h], vm.vm_spec))
                eligible[vm.name] = able
                host = min(able) if able else None
            if host is not None:
                desired[vm.name] = _canonical(hosts[host], vm.vm_spec)
        except InvalidSpec as exc:
            raise InvalidSpec(f"{field}.{exc.field}", exc.reason) from exc
        except Unsupported as exc:
            raise Unsupported(f"{field}: {exc}") from exc
    return Observed(seen, memory=memory, eligible=eligible, desired=desired)


def _can_run(host: Host, spec: VMSpec) -> bool:
    """Whether ``host`` can run the CPU of ``spec``; a host that cannot compare CPUs is taken at its word."""
    try:
        host.check_cpu(spec)
    except CPUIncompatible:
        return False
    except Unsupported:
        return True
    return True


def _canonical(host: Host, spec: VMSpec) -> VMSpec:
    """``spec`` as ``host`` writes it, its new disks keeping the ``size`` they are made with (a definition read
    back has none)."""
    written = host.canonical(spec)
    sizes = {d.path: d.size for d in spec.disks}
    disks = tuple(dataclasses.replace(d, size=sizes.get(d.path, d.size)) for d in written.disks)
    return dataclasses.replace(written, disks=disks)


def _read(host: Host, names: set[str]) -> tuple[builtins.list[ObservedVM], int]:
    """The site's VMs on ``host`` (spec and checkpoints) and the memory of all its VMs (the others' as the host
    lists them; none where it does not say)."""
    vms: builtins.list[ObservedVM] = []
    used = 0
    for status in host.statuses():
        if status.name not in names:
            used += status.memory or 0
            continue
        try:
            vm = host.get(status.name)
            spec = vm.spec()
            snapshots = vm.snapshots.list()
        except NotFound:  # it went away since the listing
            continue
        used += spec.memory if status.memory is None else status.memory
        current = next((s.name for s in snapshots if s.current), None)
        checkpoints = tuple(s.name for s in snapshots)
        vms.append(ObservedVM(status.name, status.state, spec, checkpoints, current))
    return vms, used
