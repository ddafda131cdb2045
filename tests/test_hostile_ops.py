"""Hostile input to every operation on libvirt's test driver: connect, Host, every VM method, vm.disks,
vm.snapshots, migrate, drain and cpu_baseline. Each bad argument is refused with a VirtkitError (an InvalidSpec naming
the argument, for a malformed value) whose message is short and printable; nothing else escapes, nothing hangs, and
nothing changes: every domain, its definitions, saved state and snapshots, and every file are as they were (see
tests/hostile.py for the world these calls are aimed at).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import virtkit
from hostile import (
    CHAINED_OUT,
    NOT_FILES,
    World,
    aimed,
    bad_enums,
    bad_ints,
    bad_names,
    bad_paths,
    bad_sizes,
    bad_timeouts,
    huge_ints,
    long_strings,
    not_bools,
    not_text,
    places,
    with_bad_char,
    world_at,
)
from hostile import hostile as hostile_settings
from virtkit import InvalidSpec, VMState
from virtkit.errors import BackendError
from virtkit.validate import shown

# -- connect ---------------------------------------------------------------------------------------------------------

bad_uris = st.one_of(
    with_bad_char(st.just("test:///default")),
    st.sampled_from(["fifo", "dir", "to-zero", "to-fifo"]).map(lambda name: ("test-driver", name)),
    long_strings,
    not_text,
    st.just(""),
    st.none(),
)
bad_root_lists = st.one_of(
    st.sampled_from(["/var/lib/virtkit", Path("/var/lib/virtkit"), 5, b"/x"]),
    st.lists(bad_paths, min_size=1, max_size=3),
)
bad_ssh = st.one_of(
    not_text,
    st.sampled_from(["root@host", "/k"]),
    st.builds(dict, host=with_bad_char(st.just("h")), key_file=st.just("/k"), known_hosts=st.just("/kh")),
    st.builds(dict, host=st.just("h"), key_file=bad_paths, known_hosts=st.just("/kh")),
    st.builds(dict, host=st.just("h"), key_file=st.just("/k"), known_hosts=st.just("/kh"), port=bad_ints(1, 65535)),
)


@hostile_settings(150)
@given(
    st.one_of(
        bad_uris.map(lambda u: ("uri", {"uri": u})),
        bad_root_lists.map(lambda r: ("storage_roots", {"storage_roots": r})),
        bad_ssh.map(lambda s: ("ssh", {"ssh": s})),
    )
)
def test_connect_refuses_bad_arguments(world: World, case: tuple[str, dict[str, Any]]) -> None:
    field, kwargs = case
    call = {"uri": f"test://{world.top / 'a.xml'}", **kwargs}
    if isinstance(call["uri"], tuple):  # the test driver pointed at a file that is no node description
        call["uri"] = f"test://{world.storage / call['uri'][1]}"
    aimed(world, lambda: virtkit.connect(**call).close(), field, InvalidSpec)


# -- Host ------------------------------------------------------------------------------------------------------------

not_callables = st.one_of(not_text, st.just("print"))
bad_cpus = st.one_of(not_text, st.sampled_from(["EPYC", {"model": "EPYC"}, None]), long_strings)
bad_cpu_lists = st.one_of(
    st.sampled_from(["EPYC", [], (), None, 5, {"a": 1}]),
    st.lists(bad_cpus, min_size=1, max_size=3),
    huge_ints,
)
bad_accels = bad_enums("auto", "kvm", "tcg")


@st.composite
def host_calls(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    """A Host method, its field that is bad, and its arguments."""
    method = draw(
        st.sampled_from(["get", "exists", "accel", "cpu", "check_cpu", "can_run_cpu", "baseline_cpu", "subscribe"])
    )
    if method == "subscribe":
        return method, "callback", {"callback": draw(not_callables)}
    if method in ("get", "exists"):
        return method, "name", {"name": draw(bad_names)}
    if method in ("accel", "cpu"):
        return method, "accel", {("requested" if method == "accel" else "accel"): draw(bad_accels)}
    cpu = virtkit.CPUModel("qemu64")
    if method == "baseline_cpu":
        if draw(st.booleans()):
            return method, "cpus", {"cpus": draw(bad_cpu_lists)}
        return method, "accel", {"cpus": [cpu], "accel": draw(bad_accels)}
    if draw(st.booleans()):
        return method, "cpu", {"cpu": draw(bad_cpus)}
    return method, "accel", {"cpu": cpu, "accel": draw(bad_accels)}


@hostile_settings(600)
@given(host_calls())
def test_host_methods_refuse_bad_arguments(world: World, case: tuple[str, str, dict[str, Any]]) -> None:
    method, field, kwargs = case
    aimed(world, lambda: getattr(world.a, method)(**kwargs), field, InvalidSpec)


#: Saved states of off1 whose domain names /etc/shadow, a FIFO, a qcow2 image as its log, an image backed by a file
#: outside the roots; and headers whose length is far too long, or negative.
FORGED = ["etc", "fifo", "log", "backing", "garbage", "negative"]
RESTORE_FROM = [*NOT_FILES, "text.txt", "junk.bin", "image.qcow2", "image.raw", "run1.qcow2", "missing.save"]


@hostile_settings(150)
@given(st.one_of(places(*RESTORE_FROM).map(lambda p: ("path", p)), not_bools.map(lambda c: ("check", c))))
def test_restore_refuses_what_is_no_saved_state_of_its_own(world: World, case: tuple[str, Any]) -> None:
    field, value = case
    if field == "path":
        aimed(world, lambda: world.a.restore(world.path(value)), "path", InvalidSpec)
    else:
        aimed(world, lambda: world.a.restore(world.storage / "off1.save", check=value), "check", InvalidSpec)


@pytest.mark.parametrize("forged", FORGED)
def test_restore_refuses_a_forged_saved_state(world: World, forged: str) -> None:
    aimed(world, lambda: world.a.restore(world.storage / f"forged-{forged}.save"), "path", InvalidSpec)


@st.composite
def create_calls(draw: st.DrawFn) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Host.create of a new VM with one bad field (or a bad file where the spec points), or a bad flag."""
    spec: dict[str, Any] = {
        "name": "new1",
        "memory": "256MiB",
        "disks": [{"path": ("in", "new1.qcow2"), "size": "16MiB"}],
        "serial_log": ("in", "new1.log"),
    }
    flags: dict[str, Any] = {}
    which = draw(st.sampled_from(["disk", "log", "kernel", "name", "memory", "size", "spec", "start", "check"]))
    if which == "disk":
        spec["disks"][0] = {"path": draw(places(*NOT_FILES, *CHAINED_OUT, "image.vhd", "text.txt"))}
        return "disks[0]", spec, flags
    if which == "log":
        spec["serial_log"] = draw(places(*NOT_FILES, "image.qcow2", "image.vhd", "run1.qcow2", "new1.qcow2", "to-new"))
        return "serial_log", spec, flags
    if which == "kernel":
        spec["kernel"] = {"kernel": draw(places(*NOT_FILES, "missing"))}
        return "kernel.kernel", spec, flags
    if which == "name":
        spec["name"] = draw(bad_names)
        return "name", spec, flags
    if which == "memory":
        spec["memory"] = draw(bad_sizes)
        return "memory", spec, flags
    if which == "size":
        spec["disks"][0]["size"] = draw(bad_sizes.filter(lambda v: v is not None))
        return "disks[0].size", spec, flags
    if which == "spec":
        return "spec", draw(st.one_of(not_text.filter(lambda v: v != {}), st.just(None), long_strings)), flags
    flags[which] = draw(not_bools)
    return which, spec, flags


def _in_world(world: World, spec: Any) -> Any:
    """The spec with its tagged places (see hostile.places) made paths in the world."""
    if not isinstance(spec, dict):
        return spec
    out = {**spec, "serial_log": world.path(spec["serial_log"])}
    out["disks"] = [{**disk, "path": world.path(disk["path"])} for disk in spec["disks"]]
    if "kernel" in spec:
        out["kernel"] = {"kernel": world.path(spec["kernel"]["kernel"])}
    return out


@hostile_settings(800)
@given(create_calls())
def test_create_refuses_a_bad_spec_or_file_and_creates_nothing(
    world: World, case: tuple[str, dict[str, Any], dict[str, Any]]
) -> None:
    field, spec, flags = case
    aimed(world, lambda: world.a.create(_in_world(world, spec), **flags), field, InvalidSpec)


# -- VM --------------------------------------------------------------------------------------------------------------

not_hosts = st.one_of(not_text, st.sampled_from(["qemu:///system", None, Path("/x")]))
not_events = st.one_of(not_text, st.sampled_from([True, "set", threading.Lock()]))
bad_tunings = st.one_of(
    not_text.filter(lambda v: v != {}),
    st.just("fast"),
    st.builds(dict, bandwidth=bad_ints(1, 2**43 - 1).filter(lambda v: v is not None)),
    st.builds(dict, downtime_delay=bad_timeouts()),
    st.builds(dict, strategy=bad_enums("auto", "precopy", "postcopy", "stopped")),
    st.builds(dict, connections=bad_ints(1, 64)),
)
bad_dir_lists = st.one_of(
    st.sampled_from(["/var/lib/virtkit", Path("/var/lib/virtkit"), b"/x", 5, None]),
    st.lists(bad_paths, min_size=1, max_size=2),
)

MIGRATE_ARGS: dict[str, st.SearchStrategy[Any]] = {
    "to": not_hosts,
    "mode": bad_enums("live", "live-storage", "quick", "offline"),
    "tuning": bad_tunings,
    "progress": not_callables,
    "cancel": not_events,
    "shared_storage": bad_dir_lists,
    "storage": places("fifo", "text.txt", "to-etc", "to-outside", "loop", "nodir"),
    "check": not_bools,
}
SAVE_TO = [*NOT_FILES, "text.txt", "junk.bin", "image.qcow2", "run1.qcow2", "run1.log"]
VM_ARGS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "start": {"check": not_bools},
    "destroy": {"check": not_bools},
    "pause": {"check": not_bools},
    "resume": {"check": not_bools},
    "reboot": {"hard": not_bools, "check": not_bools},
    "shutdown": {
        "timeout": bad_timeouts(allow_zero=True),
        "force": not_bools,
        "agent": not_bools.filter(lambda v: v is not None),
        "check": not_bools,
    },
    "delete": {"storage": not_bools, "force": not_bools, "check": not_bools},
    "save": {"path": places(*SAVE_TO), "check": not_bools},
    "managed_save": {"check": not_bools},
    "discard_saved_state": {"check": not_bools},
    "wait_for_state": {"state": bad_enums(*(s.value for s in VMState)), "timeout": bad_timeouts()},
    "migrate": MIGRATE_ARGS,
}
VMS = ["run1", "paused1", "off1", "legacy1"]


@st.composite
def vm_calls(draw: st.DrawFn) -> tuple[str, str, str, Any]:
    method = draw(st.sampled_from(sorted(VM_ARGS)))
    field = draw(st.sampled_from(sorted(VM_ARGS[method])))
    return draw(st.sampled_from(VMS)), method, field, draw(VM_ARGS[method][field])


def _vm_call(world: World, vm: virtkit.VM, method: str, field: str, value: Any) -> Callable[[], object]:
    """The call of ``method`` with ``field`` bad and every other argument fine."""
    args: dict[str, Any] = {field: world.path(value)}
    if method == "save" and field != "path":
        args["path"] = world.storage / "fresh.save"
    if method == "wait_for_state" and field != "state":
        args["state"] = VMState.RUNNING
    if method == "migrate" and field != "to":
        args["to"] = world.b
    return lambda: getattr(vm, method)(**args)


@hostile_settings(2000)
@given(vm_calls())
def test_vm_methods_refuse_bad_arguments_and_change_nothing(world: World, case: tuple[str, str, str, Any]) -> None:
    name, method, field, value = case
    vm = world.a.get(name)
    aimed(world, _vm_call(world, vm, method, field, value), field, InvalidSpec)


# -- disks and snapshots ---------------------------------------------------------------------------------------------

ATTACH_TO = [*NOT_FILES, *CHAINED_OUT, "image.vhd", "text.txt"]
bad_disks = st.one_of(
    not_text.filter(lambda v: v != {}),
    st.just({}),
    places(*ATTACH_TO).map(lambda p: {"path": p, "bus": "scsi"}),
    bad_sizes.map(lambda s: {"path": ("in", "att.qcow2"), "size": s, "bus": "scsi"}),
    bad_enums("virtio", "scsi", "sata", "ide").map(lambda b: {"path": ("in", "att.qcow2"), "size": "1MiB", "bus": b}),
    with_bad_char(st.just("vdq")).map(lambda t: {"path": ("in", "att.qcow2"), "size": "1MiB", "target": t}),
)
DISK_ARGS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "attach": {
        "disk": bad_disks,
        "live": not_bools,
        "persistent": not_bools,
        "controller": bad_ints(0, 31).filter(lambda v: v is not None),
        "unit": bad_ints(0, 16383).filter(lambda v: v is not None),
        "check": not_bools,
    },
    "detach": {
        "target_or_path": st.one_of(
            bad_paths.filter(lambda p: not (isinstance(p, str) and p[:2] in ("vd", "sd", "hd") and p[2:].isalpha())),
            st.sampled_from(["vd", "VDA", "xda", "vdaaaa", "vd\xe9", "sd1"]),
        ),
        "live": not_bools,
        "persistent": not_bools,
        "timeout": bad_timeouts(),
        "check": not_bools,
    },
}
SNAPSHOT_ARGS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "create": {
        "name": bad_names,
        "kind": bad_enums("memory", "disk-only", "quiesced"),
        "description": st.one_of(with_bad_char(), long_strings, not_text),
        "fallback": not_bools,
        "check": not_bools,
    },
    "get": {"name": bad_names},
    "exists": {"name": bad_names},
    "revert": {"name": bad_names, "check": not_bools},
    "delete": {"name": bad_names, "children": not_bools, "check": not_bools},
}


def _dress_disk(world: World, disk: Any) -> Any:
    return {**disk, "path": world.path(disk.get("path"))} if isinstance(disk, dict) and "path" in disk else disk


@st.composite
def part_calls(draw: st.DrawFn) -> tuple[str, str, str, str, Any]:
    part = draw(st.sampled_from(["disks", "snapshots"]))
    table = DISK_ARGS if part == "disks" else SNAPSHOT_ARGS
    method = draw(st.sampled_from(sorted(table)))
    field = draw(st.sampled_from(sorted(table[method])))
    return draw(st.sampled_from(VMS)), part, method, field, draw(table[method][field])


@hostile_settings(1500)
@given(part_calls())
def test_disks_and_snapshots_refuse_bad_arguments(world: World, case: tuple[str, str, str, str, Any]) -> None:
    name, part, method, field, value = case
    args: dict[str, Any] = {field: _dress_disk(world, value) if field == "disk" else value}
    defaults = {
        "attach": {"disk": {"path": str(world.storage / "att.qcow2"), "size": "1MiB", "bus": "scsi"}},
        "detach": {"target_or_path": "sdq"},
    }.get(method, {"name": "snap1"} if part == "snapshots" else {})
    call = {**defaults, **args}
    aimed(world, lambda: getattr(getattr(world.a.get(name), part), method)(**call), field, InvalidSpec)


# -- migrate, drain, cpu_baseline ------------------------------------------------------------------------------------


@hostile_settings(400)
@given(
    st.one_of(
        st.sampled_from(["run1", None, 5]).map(lambda v: ("vm", {"vm": v})),
        st.sampled_from(sorted(MIGRATE_ARGS)).flatmap(lambda f: MIGRATE_ARGS[f].map(lambda v: (f, {f: v}))),
        st.just(("to", {"to": "a"})),
    )
)
def test_migrate_refuses_bad_arguments_and_moves_nothing(world: World, case: tuple[str, dict[str, Any]]) -> None:
    field, kwargs = case
    call: dict[str, Any] = {"vm": world.a.get("run1"), "to": world.b}
    for key, value in kwargs.items():
        call[key] = world.path(value)
    if call["to"] == "a":
        call["to"] = world.a
    aimed(world, lambda: virtkit.migrate(**call), field, InvalidSpec)


DRAIN_ARGS: dict[str, st.SearchStrategy[Any]] = {
    "host": not_hosts,
    "to": st.one_of(not_hosts, st.just([]), st.lists(not_hosts, min_size=1, max_size=2), st.just("a")),
    "mode": bad_enums("live", "live-storage"),
    "max_concurrent": st.one_of(
        st.integers(max_value=0), st.floats(), st.booleans(), st.sampled_from(["2", None, [], b"1", -(10**5000)])
    ),
    "include_stopped": not_bools,
    "tuning": bad_tunings,
    "shared_storage": bad_dir_lists,
    "progress": not_callables,
    "on_done": not_callables,
    "cancel": not_events,
    "check": not_bools,
}


@hostile_settings(400)
@given(st.sampled_from(sorted(DRAIN_ARGS)).flatmap(lambda f: DRAIN_ARGS[f].map(lambda v: (f, v))))
def test_drain_refuses_bad_arguments_and_moves_nothing(world: World, case: tuple[str, Any]) -> None:
    field, value = case
    call: dict[str, Any] = {"host": world.a, "to": [world.b], field: value}
    if value == "a":
        call[field] = world.a
    aimed(world, lambda: virtkit.drain(**call), field, InvalidSpec)


@hostile_settings(100)
@given(
    st.one_of(
        st.one_of(not_hosts, st.just([]), st.lists(not_hosts, min_size=1, max_size=2)).map(lambda h: ("hosts", h)),
        bad_accels.map(lambda a: ("accel", a)),
    )
)
def test_cpu_baseline_refuses_bad_arguments(world: World, case: tuple[str, Any]) -> None:
    field, value = case
    call: dict[str, Any] = {"hosts": [world.a, world.b], field: value}
    aimed(world, lambda: virtkit.cpu_baseline(**call), field, InvalidSpec)


# -- the concrete defects of the issue -------------------------------------------------------------------------------


def test_delete_with_force_no_is_refused_and_the_vm_keeps_running(world: World) -> None:
    vm = world.a.get("run1")
    aimed(world, lambda: vm.delete(force="no"), "force", InvalidSpec)  # type: ignore[arg-type]
    assert world.a.get("run1").state is VMState.RUNNING


@pytest.mark.parametrize("timeout", [float("inf"), float("nan"), -1.0, 1e300, 10**5000], ids=shown)
def test_an_infinite_or_nan_timeout_is_refused_before_anything_changes(world: World, timeout: float) -> None:
    vm = world.a.get("run1")
    aimed(world, lambda: vm.shutdown(timeout=timeout), "timeout", InvalidSpec)
    aimed(world, lambda: vm.wait_for_state(VMState.STOPPED, timeout=timeout), "timeout", InvalidSpec)
    aimed(world, lambda: vm.disks.detach("vda", timeout=timeout), "timeout", InvalidSpec)


@pytest.mark.parametrize("log", ["image.qcow2", "run1.qcow2", "new1.qcow2", "to-new"])
def test_a_serial_log_that_is_a_disk_image_is_refused(world: World, log: str) -> None:
    disk = {"path": str(world.storage / "new1.qcow2"), "size": "16MiB"}
    spec = {"name": "new1", "disks": [disk], "serial_log": str(world.storage / log)}
    aimed(world, lambda: world.a.create(spec), "serial_log", InvalidSpec)


def test_a_failed_save_leaves_the_file_it_was_given(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with world_at(tmp_path / "own") as own:  # a world of its own: this save changes the VM's state
        vm, path = own.a.get("run1"), own.storage / "run1.save"
        vm.save(path)
        vm.start()
        kept = path.read_bytes()

        def fail(_self: object, _path: Path) -> None:
            raise BackendError("the disk filled up")

        monkeypatch.setattr(type(vm._dom), "save", fail)
        with pytest.raises(BackendError):
            vm.save(path)
        assert path.read_bytes() == kept
        assert sorted(p.name for p in own.storage.iterdir() if p.name.startswith(".")) == []
        assert vm.state is VMState.RUNNING


def test_restore_with_check_zero_is_refused_and_restores_nothing(world: World) -> None:
    aimed(world, lambda: world.a.restore(world.storage / "off1.save", check=0), "check", InvalidSpec)  # type: ignore[arg-type]


def test_connect_to_a_test_driver_fifo_is_refused_at_once(world: World) -> None:
    aimed(world, lambda: virtkit.connect(f"test://{world.storage / 'fifo'}"), "uri", InvalidSpec)


def test_a_symlink_loop_in_the_storage_root_is_refused(world: World) -> None:
    spec = {"name": "new1", "disks": [{"path": str(world.storage / "loop" / "x.qcow2"), "size": "1MiB"}]}
    aimed(world, lambda: world.a.create(spec), "disks[0].path", InvalidSpec)
    aimed(world, lambda: world.a.get("run1").save(world.storage / "loop"), "path", InvalidSpec)


def test_drain_and_migrate_refuse_names_where_hosts_and_vms_belong(world: World) -> None:
    aimed(world, lambda: virtkit.drain(world.a, "qemu:///system"), "to", InvalidSpec)  # type: ignore[arg-type]
    aimed(world, lambda: virtkit.migrate("run1", world.b), "vm", InvalidSpec)  # type: ignore[arg-type]
    aimed(world, lambda: virtkit.cpu_baseline("ab"), "hosts", InvalidSpec)  # type: ignore[arg-type]
