"""``Host``: the entry point of the Python API. Creates, finds and lists VMs on one hypervisor host.

``create`` is all-or-nothing: every input is checked before anything changes, and if defining or starting fails,
the domain it defined and the images it made are removed again.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from virtkit.backends.base import HostBackend, HostFiles, Subscription
from virtkit.errors import AlreadyExists, InvalidSpec, NotFound, Unsupported
from virtkit.models.change import Change
from virtkit.models.cpu import CPUModel
from virtkit.models.events import LifecycleEvent
from virtkit.models.state import VMInfo, VMState, VMStatus
from virtkit.models.vm import Accel, VMSpec
from virtkit.ops import saved
from virtkit.ops.agent import GuestAgent
from virtkit.ops.args import check_callbacks, check_cpus
from virtkit.ops.cpu import check_cpu
from virtkit.ops.storage import HostStorage
from virtkit.ops.vm import VM
from virtkit.remote.local import LocalFiles
from virtkit.remote.unreachable import UnreachableFiles
from virtkit.validate import check_flag, check_name, shown

__all__ = ["Host"]


class Host:
    """One hypervisor host. Use as a context manager, or call :meth:`close`."""

    def __init__(self, backend: HostBackend, *, files: HostFiles | None = None) -> None:
        """Wrap a backend; ``files`` reaches the host's files (``virtkit.connect`` chooses them: this machine's for
        a local host, SSH for ``ssh=``; without either, every file access is refused with a reason)."""
        self._backend = backend
        if files is None:
            files = LocalFiles() if backend.is_local else UnreachableFiles(backend.uri)
        self._storage = HostStorage(files, backend.storage_roots())

    def __enter__(self) -> Host:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Host {self._backend.uri}>"

    @property
    def uri(self) -> str:
        """The URI the host was reached by."""
        return self._backend.uri

    @property
    def hostname(self) -> str:
        """The host's own name."""
        return self._backend.hostname

    @property
    def storage_roots(self) -> tuple[Path, ...]:
        """Directories in which VM files (disks, logs, kernels) may live."""
        return self._backend.storage_roots()

    @property
    def storage(self) -> HostStorage:
        """The host's files: its storage roots where they are (this machine, or the host over SSH). Pass
        ``host.storage.roots`` as ``roots=`` to :mod:`virtkit.images` to work on this host's images."""
        return self._storage

    def accel(self, requested: Accel = Accel.AUTO) -> Accel:
        """What ``requested`` resolves to here: ``kvm`` only where hardware virtualization is really present."""
        return self._backend.resolve_accel(_accel(requested))

    def cpu(self, accel: Accel = Accel.AUTO) -> CPUModel:
        """The CPU this host offers VMs under ``accel``: the hypervisor's host-model CPU, a named model + features.

        :raises Unsupported: the hypervisor offers no host-model CPU under ``accel``.
        """
        return self._backend.host_cpu(self._backend.resolve_accel(_accel(accel)))

    def baseline_cpu(self, cpus: Sequence[CPUModel], *, accel: Accel = Accel.AUTO) -> CPUModel:
        """The richest CPU all of ``cpus`` can run, as this host's hypervisor provides it (see
        :func:`virtkit.cpu_baseline`, which feeds it every host's :meth:`cpu`).

        :raises InvalidSpec: ``cpus`` is no list of :class:`CPUModel`, or empty; a bad ``accel``.
        :raises Unsupported: the CPUs have nothing in common.
        """
        models = check_cpus("cpus", cpus)
        return self._backend.baseline_cpu(models, self._backend.resolve_accel(_accel(accel)))

    def check_cpu(self, cpu: CPUModel | VMSpec | VM, *, accel: Accel = Accel.AUTO) -> None:
        """Make sure this host can run ``cpu``: a CPU model, or the CPU of a spec or of a VM (before migrating it
        here). A spec's own accelerator is used for it; ``host-model`` and ``host-passthrough`` always pass.

        :raises CPUIncompatible: this host cannot run it; the message names the features it lacks.
        :raises Unsupported: the hypervisor cannot compare CPUs.
        """
        check_cpu(self._backend, cpu.spec() if isinstance(cpu, VM) else cpu, _accel(accel))

    def can_run_cpu(self, cpu: CPUModel | VMSpec | VM, *, accel: Accel = Accel.AUTO) -> bool:
        """Whether this host can run ``cpu`` (see :meth:`check_cpu`, which says why not)."""
        try:
            self.check_cpu(cpu, accel=accel)
        except Unsupported:
            return False
        return True

    def canonical(self, spec: VMSpec | Mapping[str, Any]) -> VMSpec:
        """``spec`` as this host would define it, with every default it fills in (accelerator, machine, CPU...):
        what :meth:`VM.spec` reads back after :meth:`create`. Comparing it with a VM's spec says whether they differ.

        :raises InvalidSpec: a bad spec.
        :raises Unsupported: the spec asks for an accelerator this host does not have.
        """
        spec = VMSpec.from_dict(spec) if isinstance(spec, Mapping) else spec
        if not isinstance(spec, VMSpec):
            raise InvalidSpec("spec", f"must be a VMSpec or a mapping of its fields, not {type(spec).__name__}")
        return self._backend.canonical(spec, self._backend.resolve_accel(spec.accel))

    def close(self) -> None:
        """Close the connection (and the SSH connection, if any)."""
        try:
            self._backend.close()
        finally:
            self._storage.files.close()

    # -- reading ------------------------------------------------------------------------------------------------

    def get(self, name: str) -> VM:
        """The VM of that name.

        :raises InvalidSpec: not a valid name.
        :raises NotFound: no such VM on this host.
        """
        check_name("name", name)
        dom = self._backend.lookup(name)
        if dom is None:
            raise NotFound(f"no VM named {name!r} on {self.uri}")
        return VM(self._backend, dom, self._storage)

    def exists(self, name: str) -> bool:
        """Whether a VM of that name is defined or running here."""
        return self._backend.lookup(check_name("name", name)) is not None

    def list(self) -> builtins.list[VM]:
        """Every VM on the host (one listing call)."""
        return [VM(self._backend, d, self._storage) for d in self._backend.domains()]

    def statuses(self) -> builtins.list[VMStatus]:
        """Every VM on the host with its state and resources, read in bulk: a constant number of calls however
        many VMs there are (:meth:`list` then :meth:`VM.info` makes several per VM). Each state is the one
        :meth:`VM.info` reads; memory and vCPUs are ``None`` where the host does not report them in bulk."""
        return builtins.list(self._backend.statuses())

    def subscribe(self, callback: Callable[[LifecycleEvent], None]) -> Subscription:
        """Call ``callback`` with each lifecycle event (started, suspended, stopped...) of any VM on the host.

        Callbacks run on virtkit's event thread; keep them short. ``close()`` the result to stop.

        :raises InvalidSpec: ``callback`` is not a function (it would fail on the event thread, unseen).
        """
        check_callbacks(callback=callback)
        return self._backend.subscribe(callback)

    def restore(self, path: str | Path, *, check: bool = False) -> Change[VMInfo]:
        """Start the VM saved in ``path`` (by :meth:`VM.save`) from it, where it was (its guest's clock then set
        through its agent when its time-sync service is on); a running VM changes nothing.
        A failed restore (a truncated or corrupted file) leaves no VM running, and none at all if none was defined.

        :raises InvalidSpec: (field ``path``) outside the storage roots, missing, or not a saved state.
        :raises AlreadyExists: another VM of that name is defined here.
        :raises Conflict: the VM is saved (managed) or in a transition.
        """
        check_flag("check", check)
        change = saved.restore(self._backend, self._storage, path, check=check)
        dom = self._backend.lookup(change.target) if change.changed and not check else None
        if dom is not None and dom.info().state is VMState.RUNNING:
            GuestAgent(dom, self._storage).sync_clock()  # the guest's clock stood still while it was saved
        return change

    # -- creating -----------------------------------------------------------------------------------------------

    def create(self, spec: VMSpec | Mapping[str, Any], *, start: bool = False, check: bool = False) -> Change[VMInfo]:
        """Define a VM from ``spec`` (creating the disk images it asks for), and boot it if ``start``.

        Idempotent: if a VM of that name exists with the same definition, nothing changes (it is started if asked
        and not running). All-or-nothing: on failure no domain and no new image are left.

        :raises InvalidSpec: bad spec, or a path outside the storage roots, a missing file, a format mismatch.
        :raises AlreadyExists: a VM of that name exists with a different definition; the message lists the fields.
        :raises Unsupported: the spec needs something this host cannot do (vhdx attached directly, images on a
            remote host connected without ``ssh=``).
        """
        spec = VMSpec.from_dict(spec) if isinstance(spec, Mapping) else spec
        if not isinstance(spec, VMSpec):
            raise InvalidSpec("spec", f"must be a VMSpec or a mapping of its fields, not {type(spec).__name__}")
        check_flag("start", start)
        check_flag("check", check)
        accel = self._backend.resolve_accel(spec.accel)
        existing = self._backend.lookup(spec.name)
        if existing is not None:
            return self._converge(VM(self._backend, existing, self._storage), spec, accel, start=start, check=check)
        to_create = self._storage.check_spec(spec)
        if check:
            return Change("create", spec.name, None, self._predict(spec, accel, start), check=True)
        created: builtins.list[Path] = []
        defined = False
        try:
            for disk in to_create:
                self._storage.create_image(disk)
                created.append(disk.path)
            dom = self._backend.define(spec, accel, new=True)
            defined = True
            if not start:
                # libvirt's contract for a domain it has just defined: shut off, persistent, no autostart, no saved
                # state. So the result needs no further round trip; the UUID is the one libvirt assigned.
                return Change("create", spec.name, None, self._predict(spec, accel, False, uuid=dom.uuid))
            dom.start()
            return Change("create", spec.name, None, dom.info())
        except BaseException:
            self._roll_back(spec.name, defined, created)
            raise

    def _roll_back(self, name: str, defined: bool, created: builtins.list[Path]) -> None:
        """Undo a failed create: the domain it defined (stopped first) and the images it made."""
        if defined:
            dom = self._backend.lookup(name)
            if dom is not None:
                if dom.info().state is not VMState.STOPPED:
                    dom.destroy()
                dom.undefine()
        self._storage.discard(created)

    def _converge(self, vm: VM, spec: VMSpec, accel: Accel, *, start: bool, check: bool) -> Change[VMInfo]:
        actual = vm.spec()
        wanted = self._backend.canonical(spec, accel).adopt_generated(actual)
        if wanted != actual:
            diff = [f.name for f in dataclasses.fields(VMSpec) if getattr(wanted, f.name) != getattr(actual, f.name)]
            raise AlreadyExists(
                f"a VM named {spec.name!r} exists on {self.uri} with a different definition (fields: {', '.join(diff)})"
            )
        if start and vm.state is not VMState.RUNNING:
            change = vm.start(check=check)
            return dataclasses.replace(change, action="create")
        info = vm.info()
        return Change("create", spec.name, info, info, check)

    def _predict(self, spec: VMSpec, accel: Accel, start: bool, *, uuid: str = "") -> VMInfo:
        return VMInfo(
            name=spec.name,
            uuid=uuid,
            state=VMState.RUNNING if start else VMState.STOPPED,
            reason="booted" if start else "unknown",
            accel=accel,
            vcpus=spec.vcpus,
            memory=spec.memory,
            max_memory=spec.effective_max_memory,
            persistent=True,
            autostart=False,
            managed_save=False,
            host=self.uri,
        )


def _accel(value: object) -> Accel:
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return Accel(value)
    except (ValueError, TypeError):
        allowed = ", ".join(a.value for a in Accel)
        raise InvalidSpec("accel", f"{shown(value)} is not an accelerator; use one of {allowed}") from None
