"""Draining a host: bad arguments, which VMs are skipped and why, how destinations are chosen, and that a drain
that cannot move a VM says so (the moves themselves are proven on the lab, in integration/test_drain.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import virtkit
from virtkit import DrainIncomplete, InvalidSpec, VMState
from virtkit.cluster.placement import Placer as _Placer
from virtkit.units import MiB

DATA = Path(__file__).parent / "data"


@pytest.fixture
def hosts(tmp_path: Path, storage: Path) -> Iterator[tuple[virtkit.Host, virtkit.Host, virtkit.Host]]:
    """A test:// source with the hand-made VM ``legacy1`` (running), and two empty destinations."""
    shutil.copy(DATA / "node.xml", tmp_path / "source.xml")
    for name in ("b", "c"):
        (tmp_path / f"{name}.xml").write_text("<node/>\n")
    uris = [f"test://{tmp_path / name}.xml" for name in ("source", "b", "c")]
    opened = [virtkit.connect(uri, storage_roots=[storage, Path("/var/lib/virtkit")]) for uri in uris]
    yield opened[0], opened[1], opened[2]
    for host in opened:
        host.close()


def _vm(host: virtkit.Host, storage: Path, name: str, memory: str, *, start: bool) -> virtkit.VM:
    host.create(
        {"name": name, "memory": memory, "disks": [{"path": str(storage / f"{name}.qcow2"), "size": "16MiB"}]},
        start=start,
    )
    return host.get(name)


def test_bad_arguments_are_refused_naming_the_field(hosts: tuple[virtkit.Host, ...]) -> None:
    a, b, _ = hosts
    for kwargs, field in (
        ({"to": []}, "to"),
        ({"to": [b, a]}, "to"),
        ({"to": b, "max_concurrent": 0}, "max_concurrent"),
        ({"to": b, "max_concurrent": True}, "max_concurrent"),
        ({"to": b, "mode": "quick"}, "mode"),
        ({"to": b, "mode": "teleport"}, "mode"),
    ):
        with pytest.raises(InvalidSpec) as err:
            virtkit.drain(a, **kwargs)  # type: ignore[arg-type]
        assert err.value.field == field, kwargs
    assert a.get("legacy1").state is VMState.RUNNING


def test_what_cannot_move_is_skipped_with_its_reason(hosts: tuple[virtkit.Host, ...], storage: Path) -> None:
    a, b, _ = hosts
    a.get("legacy1").destroy()
    _vm(a, storage, "stopped1", "64MiB", start=False)
    paused = _vm(a, storage, "paused1", "64MiB", start=True)
    paused.pause()
    saved = _vm(a, storage, "saved1", "64MiB", start=True)
    saved.managed_save()
    transient = _vm(a, storage, "transient1", "64MiB", start=True)
    # Still running, no longer defined (through the host's own connection: each test:// connection is a world).
    a._backend.conn.lookupByName("transient1").undefine()  # type: ignore[attr-defined]
    assert not transient.info().persistent

    result = virtkit.drain(a, b, include_stopped=False, check=True)
    skipped = dict(result.skipped)
    assert set(skipped) == {"legacy1", "stopped1", "paused1", "saved1", "transient1"}
    assert "include_stopped" in skipped["stopped1"] and "include_stopped" in skipped["legacy1"]
    assert "shared storage" in skipped["paused1"]
    assert "saved state" in skipped["saved1"]
    assert "transient" in skipped["transient1"]
    assert not result.moved and not result.failed and not result.complete
    assert result.as_dict()["skipped"][0].keys() == {"name", "reason"}
    assert b.list() == []


def test_a_vm_no_destination_can_take_fails_the_drain_and_stays(hosts: tuple[virtkit.Host, ...]) -> None:
    # The test driver cannot compare CPUs, so no destination qualifies: the drain says so, per VM, and moves nothing.
    a, b, c = hosts
    with pytest.raises(DrainIncomplete) as err:
        virtkit.drain(a, [b, c], check=True)
    result = err.value.result
    assert [name for name, _ in result.failed] == ["legacy1"]
    assert "no destination can run its CPU" in str(result.failed[0][1])
    assert "legacy1" in str(err.value)
    assert a.get("legacy1").state is VMState.RUNNING
    assert b.list() == [] and c.list() == []


def test_destinations_are_balanced_by_committed_memory(hosts: tuple[virtkit.Host, ...], storage: Path) -> None:
    a, b, c = hosts
    _vm(b, storage, "resident", "128MiB", start=True)  # b starts with 128 MiB committed, c with nothing
    _vm(b, storage, "stopped-there", "1GiB", start=False)  # stopped: commits nothing
    vm = a.get("legacy1")
    placer = _Placer([b, c], lambda _host, _vm: True)
    chosen = [placer.choose(vm, size * MiB) for size in (256, 128, 64, 64)]
    # 256 -> c (0 < 128); 128 -> b (128 < 256); 64 -> b (a tie at 256 goes to the first listed); 64 -> c (256 < 320)
    assert chosen == [c, b, b, c]


def test_a_destination_that_cannot_run_the_cpu_is_never_chosen(hosts: tuple[virtkit.Host, ...]) -> None:
    a, b, c = hosts
    vm = a.get("legacy1")
    placer = _Placer([b, c], lambda host, _vm: host is c)
    assert placer.choose(vm, 10 * 2**30) is c
    assert placer.choose(vm, MiB) is c  # despite its load
    nowhere = _Placer([b], lambda _host, _vm: False).choose(vm, MiB)
    assert isinstance(nowhere, str) and b.uri in nowhere
