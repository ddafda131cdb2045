"""``Change(before, after)``: what every changing operation returns, in the API, the CLI and playbooks alike."""

from __future__ import annotations

import dataclasses
from typing import Any, Generic, TypeVar

from virtkit.models._fields import dump

__all__ = ["Change"]

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Change(Generic[T]):
    """The state of one object before and after an operation.

    ``before`` is ``None`` when the object did not exist, ``after`` is ``None`` when it no longer does. In check
    mode (``check=True``) nothing was touched and ``after`` is what the operation would have produced.
    """

    action: str
    target: str
    before: T | None
    after: T | None
    check: bool = False
    #: Set for actions that change something ``before``/``after`` cannot show (a reboot); else ``before != after``.
    acted: bool = False

    @property
    def changed(self) -> bool:
        """Whether the operation changed (or in check mode, would change) anything."""
        return self.acted or self.before != self.after

    def diff(self) -> dict[str, tuple[Any, Any]]:
        """Field by field, ``{field: (before, after)}`` for the fields that differ, as plain data."""
        before = dump(self.before) if self.before is not None else {}
        after = dump(self.after) if self.after is not None else {}
        if not isinstance(before, dict) or not isinstance(after, dict):
            return {} if before == after else {"value": (before, after)}
        keys = list(dict.fromkeys([*before, *after]))
        return {k: (before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)}

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON output and Ansible results."""
        return {
            "action": self.action,
            "target": self.target,
            "changed": self.changed,
            "check": self.check,
            "before": dump(self.before),
            "after": dump(self.after),
        }
