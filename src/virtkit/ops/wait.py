"""Waiting for a condition, the one way virtkit waits: poll, with a deadline, and say what was last seen."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from virtkit.errors import OperationTimeout

__all__ = ["wait_for"]

T = TypeVar("T")


def wait_for(
    read: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout: float,
    interval: float = 0.1,
    what: str,
) -> T:
    """Call ``read`` every ``interval`` seconds until ``done(value)``; return that value.

    :raises OperationTimeout: ``timeout`` seconds passed; the message names ``what`` and the last value read.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() >= deadline:
            raise OperationTimeout(f"timed out after {timeout:g} s waiting for {what}; last seen: {value}")
        time.sleep(interval)
