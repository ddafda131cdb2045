"""Draining a lab host: every VM leaves it for two others, at most two at a time, and the guests never reboot.
(What a drain skips, such as a transient VM, and how it balances the hosts is pinned in tests/test_drain.py.)

Runs after test_lab (whose host3 test needs host3 stopped): this module starts host3 and stops it again. VMs are
named ``drain*`` (with the run's prefix, through the ``own_module`` fixture, which removes them). A drain moves every
VM off a host, another run's too: the module is marked ``lab_wide``.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import helpers
import virtkit
from virtkit import MigrationProgress, MigrationResult, MigrationTuning, VirtkitError
from virtkit.lab import daemons, image
from virtkit.lab.paths import shared_dir
from virtkit.lab.serial import GuestLog

EXAMPLES = Path(__file__).parent.parent / "examples"
pytestmark = pytest.mark.lab_wide  # drains whole lab hosts, and stops host3 at the end


@pytest.fixture(scope="module")
def three(lab_hosts: list[daemons.LabHost]) -> Iterator[list[virtkit.Host]]:
    lab = daemons.up(3)
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(virtkit.connect(h.uri)) for h in lab]
    daemons.stop("host3")


@pytest.fixture(scope="module")
def names(own_module: helpers.Owned) -> dict[str, str]:
    """The module's VM names: ``drain-a``, ``drain-b``, ``drain-off``, ``drain-ex`` with the run's prefix."""
    return {base: own_module(base) for base in ("drain-a", "drain-b", "drain-off", "drain-ex")}


def _spec(guest: image.GuestImage, name: str, memory: str) -> dict[str, object]:
    return helpers.spec_data(guest, name, memory=memory, disks=[])


def test_drain_moves_every_vm_off_the_host(
    three: list[virtkit.Host], guest: image.GuestImage, names: dict[str, str]
) -> None:
    one, two, three_ = three
    a, b, off = names["drain-a"], names["drain-b"], names["drain-off"]
    logs: dict[str, GuestLog] = {}
    for name, memory in ((a, "192MiB"), (b, "128MiB")):
        one.create(_spec(guest, name, memory), start=True)
        logs[name] = helpers.serial_log(name)
    one.create(_spec(guest, off, "128MiB"))
    for log in logs.values():
        log.wait_for_boot(timeout=120)
        log.wait_for_alive(timeout=15)

    # Check mode, through the command line: where each would go, nothing moved.
    planned = subprocess.run(
        [
            str(Path(sys.executable).with_name("virtkit")),
            "drain",
            one.uri,
            "--to",
            two.uri,
            "--to",
            three_.uri,
            "--check",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert plan["check"] and plan["complete"]
    assert sorted(m["target"] for m in plan["moved"]) == sorted([a, b, off])
    assert sorted(vm.name for vm in one.list()) == sorted([a, b, off])

    # The real thing, two at a time, slowed down so that they overlap.
    lock = threading.Lock()
    active: set[str] = set()
    most = 0
    finished: dict[str, MigrationResult | VirtkitError] = {}

    def progress(name: str, _p: MigrationProgress) -> None:
        nonlocal most
        with lock:
            if name not in finished:
                active.add(name)
            most = max(most, len(active))

    def done(name: str, outcome: MigrationResult | VirtkitError) -> None:
        with lock:
            active.discard(name)
            finished[name] = outcome

    result = virtkit.drain(
        one,
        [two, three_],
        max_concurrent=2,
        tuning=MigrationTuning(bandwidth=10),
        shared_storage=[shared_dir()],
        progress=progress,
        on_done=done,
    )
    assert result.complete and not result.failed and not result.skipped
    assert sorted(r.target for r in result.moved) == sorted([a, b, off])
    assert most == 2, "two migrations ran at once, never more"
    assert set(finished) == {a, b, off}

    # Nothing left; each VM is on exactly one destination, in the state it had.
    assert one.list() == []
    where: dict[str, str] = {}
    for name in (a, b, off):
        holders = [h for h in (two, three_) if h.exists(name)]
        assert len(holders) == 1, name
        info = holders[0].get(name).info()
        assert info.persistent
        expected = virtkit.VMState.STOPPED if name == off else virtkit.VMState.RUNNING
        assert info.state is expected, name
        where[name] = holders[0].uri
    # Balanced by memory (the exact choice depends on what else runs on the lab: tests/test_drain.py pins it).
    assert set(where.values()) == {two.uri, three_.uri}
    for name, log in logs.items():
        last = log.last_alive()
        assert last is not None
        following = log.wait_for_alive(timeout=15, after_line=last.line_no)
        assert following.counter == (last.counter or 0) + 1
        assert len(log.boots()) == 1, name


def test_drain_refuses_bad_arguments_before_anything(three: list[virtkit.Host]) -> None:
    one, two, _ = three
    with pytest.raises(virtkit.InvalidSpec) as err:
        virtkit.drain(one, [two, one])
    assert err.value.field == "to"
    with pytest.raises(virtkit.InvalidSpec) as err:
        virtkit.drain(one, two, max_concurrent=0)
    assert err.value.field == "max_concurrent"
    assert Path(shared_dir()).is_dir()


def _example(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=300, check=False)


def test_the_migrate_and_drain_examples_work_on_the_lab(
    three: list[virtkit.Host], guest: image.GuestImage, names: dict[str, str]
) -> None:
    one, two, three_ = three
    ex = names["drain-ex"]
    one.create(_spec(guest, ex, "128MiB"), start=True)
    log = helpers.serial_log(ex)
    log.wait_for_boot(timeout=120)
    shared = str(shared_dir())

    moved = _example(str(EXAMPLES / "migrate.py"), ex, "--from", one.uri, "--to", two.uri, "--shared", shared)
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert f"{ex} now runs on {two.uri}" in moved.stdout
    assert two.get(ex).state is virtkit.VMState.RUNNING and not one.exists(ex)

    drained = _example(str(EXAMPLES / "drain.py"), two.uri, "--to", one.uri, "--to", three_.uri, "--shared", shared)
    assert drained.returncode == 0, drained.stdout + drained.stderr
    assert f"{ex}: moved live to" in drained.stdout
    assert two.list() == []
    assert [h.get(ex).state for h in (one, three_) if h.exists(ex)] == [virtkit.VMState.RUNNING]
    last = log.last_alive()
    assert last is not None and len(log.boots()) == 1
