"""Resuming a post-copy that broke off, over scripted hosts: retried until it goes through or the time is up, and
never tried when nothing broke. (Cutting a real connection is in integration/test_migration.py.)"""

from __future__ import annotations

import types

import pytest

from virtkit.backends.base.migration import MigrationRequest
from virtkit.errors import Conflict
from virtkit.models.migration import Location, Presence
from virtkit.ops.migration import modes


class Side:
    """One host's migration backend as recovery sees it: broken until a resume goes through."""

    def __init__(self, *, refusals: int = 0, broken: bool = True) -> None:
        self.refusals = refusals
        self.broken = broken
        self.resumes = 0

    def presence(self, name: str, uuid: str) -> Presence:
        if self.broken:
            return Presence(Location.PAUSED, postcopy=True, job_active=True, postcopy_failed=True)
        return Presence(Location.ABSENT)

    def resume_postcopy(self, name: str, destination: str, plan: MigrationRequest) -> None:
        self.resumes += 1
        if self.resumes <= self.refusals:
            raise Conflict("QEMU reports migration is still running")
        self.broken = False


def _ctx(src: Side, dst: Side) -> types.SimpleNamespace:
    return types.SimpleNamespace(
        srcm=src, dstm=dst, name="vm1", uuid="u", dst=types.SimpleNamespace(uri="qemu+tcp://h2/system")
    )


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(modes, "RESUME_INTERVAL", 0.0)


def test_a_refused_resume_is_retried_until_it_goes_through() -> None:
    src, dst = Side(refusals=2), Side(broken=False)
    notes = modes.recover_postcopy(_ctx(src, dst), MigrationRequest(live=True, postcopy=True))  # type: ignore[arg-type]
    assert src.resumes == 3
    assert notes[-1] == "the post-copy that broke off was resumed (attempt 3)"
    assert sum("still running" in n for n in notes) == 2


def test_nothing_is_resumed_when_nothing_broke() -> None:
    src, dst = Side(broken=False), Side(broken=False)
    assert modes.recover_postcopy(_ctx(src, dst), MigrationRequest(live=True)) == []  # type: ignore[arg-type]
    assert src.resumes == 0


def test_recovery_gives_up_after_its_timeout_and_says_so() -> None:
    src, dst = Side(refusals=10**6), Side()
    notes = modes.recover_postcopy(_ctx(src, dst), MigrationRequest(live=True), timeout=0.05)  # type: ignore[arg-type]
    assert src.resumes >= 1
    assert "could not be resumed" in notes[-1]
