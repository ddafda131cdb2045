# Copyright: virtkit developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""virtkit.kvm.jsonl: each task's result and the play's totals as JSON lines, for machines to read."""

from __future__ import annotations

DOCUMENTATION = r"""
name: jsonl
type: aggregate
short_description: Each task result and the totals as one JSON line each, in a file
description:
  - Writes one JSON line per task result (host, task, module, status, the whole result with its diff) and one line
    with each host's totals (ok, changed, failed ...) at the end, to O(path). The screen output stays as it is.
  - Enable it with C(ANSIBLE_CALLBACKS_ENABLED=virtkit.kvm.jsonl).
author:
  - virtkit developers (@virtkit)
requirements:
  - enabled in callbacks_enabled
options:
  path:
    description: The file to write (appended to).
    type: path
    required: true
    env:
      - name: VIRTKIT_JSONL_PATH
"""

import json
from typing import Any

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):  # type: ignore[misc]  # ansible-core ships no types
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "virtkit.kvm.jsonl"
    CALLBACK_NEEDS_ENABLED = True

    def _write(self, record: dict[str, Any]) -> None:
        with open(self.get_option("path"), "a", encoding="utf-8") as out:
            out.write(json.dumps(record, default=str) + "\n")

    def _task(self, result: Any, status: str) -> None:
        host = getattr(result, "host", None) or result._host
        task = getattr(result, "task", None) or result._task
        data = getattr(result, "result", None)
        if data is None:
            data = result._result
        self._write(
            {
                "host": host.get_name(),
                "task": task.get_name(),
                "action": task.action,
                "status": status,
                "result": dict(data),
            }
        )

    def v2_runner_on_ok(self, result: Any) -> None:
        self._task(result, "ok")

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._task(result, "ignored" if ignore_errors else "failed")

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._task(result, "skipped")

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._task(result, "unreachable")

    def v2_playbook_on_stats(self, stats: Any) -> None:
        totals = {host: stats.summarize(host) for host in sorted(stats.processed)}
        self._write({"stats": totals})
