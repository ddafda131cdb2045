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

from virtkit import images
from virtkit.backend import HostBackend, LifecycleEvent, Subscription
from virtkit.errors import AlreadyExists, InvalidSpec, NotFound, Unsupported
from virtkit.image_tool import ImageTool, LocalImageTool
from virtkit.models.cpu import CPUModel
from virtkit.models.disk import DiskSpec
from virtkit.models.state import VMInfo, VMState
from virtkit.models.vm import Accel, VMSpec
from virtkit.ops import saved
from virtkit.ops._diskfile import check_disk_file
from virtkit.ops._hostfiles import check_disk_file_on, check_other_files_on
from virtkit.ops.change import Change
from virtkit.ops.cpu import check_cpu
from virtkit.ops.vm import VM
from virtkit.validate import check_name, check_path

__all__ = ["Host"]


class Host:
    """One hypervisor host. Use as a context manager, or call :meth:`close`."""

    def __init__(self, backend: HostBackend, *, image_tool: ImageTool | None = None) -> None:
        self._backend = backend
        # With an image tool (a RemoteHost), the VM's files are made and checked on the host itself.
        self._files: ImageTool = image_tool or LocalImageTool()
        self._files_on_host = image_tool is not None

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
    def image_tool(self) -> ImageTool:
        """Where this host's image files are reached (``tool=`` of :mod:`virtkit.images`): this machine, or the
        host itself over SSH when it was connected with ``ssh=``."""
        return self._files

    def accel(self, requested: Accel = Accel.AUTO) -> Accel:
        """What ``requested`` resolves to here: ``kvm`` only where hardware virtualization is really present."""
        return self._backend.resolve_accel(requested)

    def cpu(self, accel: Accel = Accel.AUTO) -> CPUModel:
        """The CPU this host offers VMs under ``accel``: the hypervisor's host-model CPU, a named model + features.

        :raises Unsupported: the hypervisor offers no host-model CPU under ``accel``.
        """
        return self._backend.host_cpu(self._backend.resolve_accel(accel))

    def baseline_cpu(self, cpus: Sequence[CPUModel], *, accel: Accel = Accel.AUTO) -> CPUModel:
        """The richest CPU all of ``cpus`` can run, as this host's hypervisor provides it (see
        :func:`virtkit.cpu_baseline`, which feeds it every host's :meth:`cpu`).

        :raises Unsupported: the CPUs have nothing in common.
        """
        return self._backend.baseline_cpu(cpus, self._backend.resolve_accel(accel))

    def check_cpu(self, cpu: CPUModel | VMSpec | VM, *, accel: Accel = Accel.AUTO) -> None:
        """Make sure this host can run ``cpu``: a CPU model, or the CPU of a spec or of a VM (before migrating it
        here). A spec's own accelerator is used for it; ``host-model`` and ``host-passthrough`` always pass.

        :raises Unsupported: this host cannot run it; the message names the features it lacks.
        """
        check_cpu(self._backend, cpu, accel)

    def can_run_cpu(self, cpu: CPUModel | VMSpec | VM, *, accel: Accel = Accel.AUTO) -> bool:
        """Whether this host can run ``cpu`` (see :meth:`check_cpu`, which says why not)."""
        try:
            self.check_cpu(cpu, accel=accel)
        except Unsupported:
            return False
        return True

    def close(self) -> None:
        """Close the connection (and the SSH connection, if any)."""
        try:
            self._backend.close()
        finally:
            self._files.close()

    # -- reading ------------------------------------------------------------------------------------------------

    @property
    def _host_files(self) -> ImageTool | None:
        """The tool that reaches the host's own files, when it was given one (SSH); else ``None``."""
        return self._files if self._files_on_host else None

    def get(self, name: str) -> VM:
        """The VM of that name.

        :raises InvalidSpec: not a valid name.
        :raises NotFound: no such VM on this host.
        """
        check_name("name", name)
        dom = self._backend.lookup(name)
        if dom is None:
            raise NotFound(f"no VM named {name!r} on {self.uri}")
        return VM(self._backend, dom, self._host_files)

    def exists(self, name: str) -> bool:
        """Whether a VM of that name is defined or running here."""
        return self._backend.lookup(check_name("name", name)) is not None

    def list(self) -> builtins.list[VM]:
        """Every VM on the host (one listing call)."""
        return [VM(self._backend, d, self._host_files) for d in self._backend.domains()]

    def subscribe(self, callback: Callable[[LifecycleEvent], None]) -> Subscription:
        """Call ``callback`` with each lifecycle event (started, suspended, stopped...) of any VM on the host.

        Callbacks run on virtkit's event thread; keep them short. ``close()`` the result to stop.
        """
        return self._backend.subscribe(callback)

    def restore(self, path: str | Path, *, check: bool = False) -> Change[VMInfo]:
        """Start the VM saved in ``path`` (by :meth:`VM.save`) from it, where it was; a running VM changes nothing.
        A failed restore (a truncated or corrupted file) leaves no VM running, and none at all if none was defined.

        :raises InvalidSpec: (field ``path``) outside the storage roots, missing, or not a saved state.
        :raises AlreadyExists: another VM of that name is defined here.
        :raises Conflict: the VM is saved (managed) or in a transition.
        """
        return saved.restore(self._backend, path, check=check)

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
        accel = self._backend.resolve_accel(spec.accel)
        existing = self._backend.lookup(spec.name)
        if existing is not None:
            return self._converge(VM(self._backend, existing, self._host_files), spec, accel, start=start, check=check)
        to_create = self._check_files(spec)
        if check:
            return Change("create", spec.name, None, self._predict(spec, accel, start), check=True)
        created: builtins.list[Path] = []
        defined = False
        try:
            for disk in to_create:
                assert disk.size is not None
                images.create(disk.path, disk.size, disk.format, roots=self.storage_roots, tool=self._files)
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
        for path in created:
            self._files.unlink(path)

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

    def _check_files(self, spec: VMSpec) -> builtins.list[DiskSpec]:
        """Check every file the spec names; return the disks whose images must be made.

        :raises InvalidSpec: a path outside the roots, a missing file, or an existing image of another format.
        :raises Unsupported: vhdx (libvirt 9.0 has no driver for it), or files on a remote host.
        """
        roots = self.storage_roots
        if self._files_on_host:
            made = [d for i, d in enumerate(spec.disks) if check_disk_file_on(self._files, f"disks[{i}]", d, roots)]
            check_other_files_on(self._files, spec, roots)
            return made
        local = self._backend.is_local
        to_create: builtins.list[DiskSpec] = []
        for i, disk in enumerate(spec.disks):
            if check_disk_file(f"disks[{i}]", disk, roots, local=local):
                to_create.append(disk)
        self._check_other_files(spec, roots, local)
        return to_create

    @staticmethod
    def _check_other_files(spec: VMSpec, roots: tuple[Path, ...], local: bool) -> None:
        if spec.serial_log is not None:
            log = check_path("serial_log", spec.serial_log, roots)
            if local and not log.parent.is_dir():
                raise InvalidSpec("serial_log", f"directory {log.parent} does not exist")
        if spec.kernel is not None:
            for field, value in (("kernel.kernel", spec.kernel.kernel), ("kernel.initrd", spec.kernel.initrd)):
                if value is None:
                    continue
                path = check_path(field, value, roots)
                if local and not path.is_file():
                    raise InvalidSpec(field, f"{path} is not a file")

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
