"""The ``migrate`` task: a VM moved to another host, live, live with its storage, quick or offline."""

from __future__ import annotations

from typing import Any

from virtkit.errors import InvalidSpec, NotFound
from virtkit.models.migration import MigrationMode, MigrationProgress
from virtkit.ops.migration import migrate as _migrate
from virtkit.playbook.tasks.common import Params, chosen, given, opened, plain, required

__all__ = ["MODES", "migrate"]

#: What ``mode`` may say.
MODES = tuple(m.value for m in MigrationMode)
#: Progress samples kept in the result: the first and last, each new phase, and each further 10% of the data.
_STEP = 0.1


def migrate(params: Params, *, check: bool = False, diff: bool = False) -> dict[str, Any]:
    """Move VM ``name`` from the host of ``uri`` to the host of ``dest`` (``uri``, ``ssh``, ``storage_roots``).

    A VM already on ``dest`` and gone from the source changes nothing. The result holds ``changed``,
    ``migration`` (mode, strategy, times, downtime, data moved, what the escalation did), ``progress`` (samples of
    the move: phase, fraction of the data sent, seconds) and ``host`` (the destination's URI); with ``diff``,
    Ansible's ``diff`` of the VM's host.

    :raises InvalidSpec: a bad option; nothing moved. :raises NotFound: the VM is on neither host.
    :raises MigrationFailed: the move failed; the VM runs where it was, on exactly one host.
    """
    name = required(params, "name")
    dest = required(params, "dest")
    if not isinstance(dest, dict):
        raise InvalidSpec("dest", f"must be a mapping with uri, ssh and storage_roots, not {type(dest).__name__}")
    mode = chosen(params, "mode", MODES)
    samples: list[dict[str, Any]] = []
    with opened(params) as source, opened(dest, "dest.") as target:
        if not source.exists(name):
            if target.exists(name):
                return {"changed": False, "migration": None, "progress": [], "host": target.uri}
            raise NotFound(f"{name} is on neither {source.uri} nor {target.uri}")
        result = _migrate(
            source.get(name),
            target,
            mode=mode,
            tuning=params.get("tuning"),
            progress=lambda p: _sample(samples, p),
            shared_storage=given(params, "shared_storage", ()),
            storage=params.get("storage"),
            check=check,
        )
        out: dict[str, Any] = {
            "changed": True,
            "migration": plain(result),
            "progress": samples,
            "host": target.uri,
        }
        if diff:
            out["diff"] = {
                "before": {"host": source.uri},
                "after": {"host": target.uri},
                "before_header": name,
                "after_header": name,
            }
        return out


def _sample(samples: list[dict[str, Any]], p: MigrationProgress) -> None:
    fraction = p.fraction
    sample = {
        "phase": p.phase,
        "fraction": None if fraction is None else round(fraction, 3),
        "elapsed": round(p.elapsed, 2),
        "remaining": p.data_remaining,
    }
    if samples:
        last = samples[-1]
        same_phase = last["phase"] == p.phase
        small = fraction is None or (last["fraction"] is not None and fraction - last["fraction"] < _STEP)
        if same_phase and small and p.phase != "done":
            return
    samples.append(sample)
