"""The ``vm`` and ``vm_info`` tasks: one VM on one host through the engine, and what a host holds."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from virtkit.errors import InvalidSpec, NotFound, Unsupported
from virtkit.ops.host import Host
from virtkit.ops.vm import VM
from virtkit.playbook.engine import Engine, Report
from virtkit.playbook.site import SiteSpec
from virtkit.playbook.tasks.common import Params, given, opened, plain, required
from virtkit.validate import check_name

__all__ = ["vm", "vm_info"]

_SITE_HOST = re.compile(r"^hosts\.[^.]+\.")
_SITE_VM = re.compile(r"^vms\[0\]\.")
_HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def vm(params: Params, *, check: bool = False, diff: bool = False) -> dict[str, Any]:
    """Bring VM ``name`` on the host to ``spec`` (or ``hyperv``), ``state``, ``checkpoints`` and ``revert_to``:
    the engine of ``virtkit apply`` on a site of this one host and this one VM. Without ``spec`` or ``hyperv`` the
    VM's spec stays as it is (only its state, checkpoints and revert change); a VM that does not exist needs one.

    The result holds ``changed``, ``plan`` (each step), ``steps`` (what became of each), ``held`` (steps that need
    the VM off, made only with ``allow_restart``), ``vm`` (its status afterwards, ``None`` once absent) and, with
    ``diff``, Ansible's ``diff``. A step that failed gives ``failed`` and ``msg`` (the steps before it stand).

    :raises InvalidSpec: a bad option, named as the module's (``spec.memory``, ``ssh.port``); nothing changed.
    :raises HostUnavailable: the host cannot be reached; nothing changed.
    """
    name = required(params, "name")
    state = given(params, "state", "running")
    entry: dict[str, Any] = {"name": name, "state": state, "host": _host_name(params)}
    for key in ("spec", "hyperv", "revert_to"):
        if params.get(key) is not None:
            entry[key] = params[key]
    entry["checkpoints"] = given(params, "checkpoints", [])
    keep_spec = "spec" not in entry and "hyperv" not in entry
    if keep_spec and state == "absent":
        entry["spec"] = {}
        keep_spec = False
    site = None if keep_spec else _site(params, entry)  # bad options refused before anything is opened
    with opened(params) as host:
        if site is None:
            entry["spec"] = _current_spec(host, name)
            site = _site(params, entry)
        try:
            with Engine(site, hosts={entry["host"]: host}) as engine:
                report = engine.run(check=check, allow_restart=given(params, "allow_restart", False))
        except InvalidSpec as exc:
            raise InvalidSpec(_module_field(exc.field), exc.reason) from exc
        status = next((s for s in host.statuses() if s.name == name), None)
    return _result(report, status=plain(status), diff=diff)


def _site(params: Params, entry: dict[str, Any]) -> SiteSpec:
    """The site of this one host and this one VM; the host is opened by the task itself.

    :raises InvalidSpec: a bad option, named as the module's.
    """
    options = {k: params[k] for k in ("shutdown_timeout", "keep_disks") if params.get(k) is not None}
    data = {"hosts": {entry["host"]: {"uri": params.get("uri")}}, "vms": [entry], "options": options}
    try:
        return SiteSpec.from_dict(data)
    except InvalidSpec as exc:
        raise InvalidSpec(_module_field(exc.field), exc.reason) from exc


def vm_info(params: Params) -> dict[str, Any]:
    """Every VM of the host with its state, memory and vCPUs (one bulk listing); with ``name``, that VM only, with
    its spec and checkpoints (``vms`` is empty when it does not exist).

    :raises InvalidSpec: a bad option; :raises HostUnavailable: the host cannot be reached.
    """
    name = params.get("name")
    if name is not None:
        check_name("name", name)
    with opened(params) as host:
        statuses = [s for s in host.statuses() if name is None or s.name == name]
        vms = [plain(s) for s in statuses]
        if name is not None and statuses:
            try:
                found = host.get(name)
                snapshots = found.snapshots.list()
                current = found.snapshots.current()
                vms[0]["spec"] = _spec(found)
                vms[0]["checkpoints"] = [s.name for s in snapshots]
                vms[0]["current_checkpoint"] = None if current is None else current.name
            except NotFound:  # gone between the listing and now
                vms = []
    return {"changed": False, "vms": vms}


def _current_spec(host: Host, name: str) -> dict[str, Any]:
    """The spec of VM ``name`` as ``host`` defines it now, for a task that changes only its state.

    :raises InvalidSpec: (``spec``) the VM does not exist, so it needs one; or virtkit does not model it.
    """
    if not host.exists(name):
        raise InvalidSpec("spec", f"is required: {name} does not exist yet (give spec or hyperv)")
    found = _spec(host.get(name))
    if found is None:
        raise InvalidSpec("spec", f"is required: virtkit does not model {name} as it is defined (give spec)")
    return found


def _spec(found: VM) -> dict[str, Any] | None:
    """The VM's spec as plain data, or ``None`` for a VM virtkit does not model (made by other tools)."""
    try:
        return found.spec().to_dict()
    except Unsupported:
        return None


def _host_name(params: Params) -> str:
    """A name for the host in the one-host site: its URI's host name, else ``localhost``."""
    uri = params.get("uri")
    try:
        hostname = urlsplit(uri).hostname if isinstance(uri, str) else None
    except ValueError:
        hostname = None
    return hostname if hostname and _HOST_NAME.match(hostname) else "localhost"


def _module_field(field: str) -> str:
    """A site file's field path as the module's option (``vms[0].spec.memory`` is ``spec.memory``)."""
    for pattern in (_SITE_HOST, _SITE_VM):
        if pattern.match(field):
            return pattern.sub("", field, count=1)
    for prefix in ("options.", "hosts."):
        if field.startswith(prefix):
            return field.removeprefix(prefix)
    return field


def _result(report: Report, *, status: Any, diff: bool) -> dict[str, Any]:
    data = report.to_dict()
    result: dict[str, Any] = {
        "changed": report.changed,
        "plan": [s["text"] for s in data["plan"]],
        "steps": data["results"],
        "held": [r["text"] for r in data["results"] if r["status"] == "held"],
        "vm": status,
    }
    if report.held:
        result["warnings"] = [
            f"{len(report.held)} change(s) need the VM off and were not made: set allow_restart to make them "
            f"({'; '.join(result['held'])})"
        ]
    if diff and report.diffs:
        d = report.diffs[0]
        result["diff"] = {
            "before": d.before or {},
            "after": d.after or {},
            "before_header": f"{d.vm} on {d.host}" if d.before else f"{d.vm} (absent)",
            "after_header": f"{d.vm} on {d.host}" if d.after else f"{d.vm} (absent)",
        }
    if report.failed:
        result["failed"] = True
        result["msg"] = report.error
    return result
