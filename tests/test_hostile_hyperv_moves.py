"""Hostile input to Move-VM, Set-VMProcessor and Get-VMProcessor on libvirt's test driver (tests/hostile.py): each
bad argument is refused with an InvalidSpec naming the cmdlet's parameter (``Name``, ``Count``,
``CompatibilityForMigrationEnabled``, ``DestinationHost``, ``IncludeStorage``, ``DestinationStoragePath``), with a
short, printable message, and nothing changes: no domain, no definition, no file of the world.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from hostile import NOT_FILES, World, aimed, bad_ints, bad_names, not_bools, not_text, places
from hostile import hostile as hostile_settings
from virtkit import hyperv

_VMS = ("run1", "paused1", "off1", "legacy1")

#: Directories a storage copy must refuse: what is no directory, links out of the root or to a device, a missing
#: one, places outside the roots and malformed paths ("dir" is a real directory in the root).
bad_directories = places(*(n for n in NOT_FILES if n != "dir"), "image.qcow2", "text.txt", "nodir")


@st.composite
def processor_calls(draw: st.DrawFn) -> tuple[str, Any]:
    """Set-VMProcessor or Get-VMProcessor with one bad argument: (the field it must name, a call on the world)."""
    vm = draw(st.sampled_from(_VMS))
    kind = draw(st.integers(0, 5))
    if kind == 0:
        name = draw(bad_names)
        call = draw(st.sampled_from([hyperv.set_vm_processor, hyperv.get_vm_processor]))
        return "Name", lambda w: call(w.a, name)
    if kind == 1:
        count = draw(bad_ints(1, 240).filter(lambda v: v is not None))
        return "Count", lambda w: hyperv.set_vm_processor(w.a, vm, count=count)
    if kind == 2:
        flag = draw(not_bools.filter(lambda v: v is not None))
        return "CompatibilityForMigrationEnabled", lambda w: hyperv.set_vm_processor(
            w.a, vm, compatibility_for_migration_enabled=flag
        )
    if kind == 3:
        hosts = draw(st.one_of(not_text.filter(lambda v: v != []), st.text(max_size=20)))
        return "hosts", lambda w: hyperv.set_vm_processor(
            w.a, vm, compatibility_for_migration_enabled=True, hosts=hosts
        )
    if kind == 4:
        flag = draw(not_bools)
        return "what_if", lambda w: hyperv.set_vm_processor(w.a, vm, count=1, what_if=flag)
    return "Count", lambda w: hyperv.set_vm_processor(w.a, vm, count=draw(st.integers(241, 10**6)))


@hostile_settings(400)
@given(processor_calls())
def test_processor_cmdlets_refuse_bad_arguments_and_change_nothing(world: World, case: tuple[str, Any]) -> None:
    field, call = case
    aimed(world, lambda: call(world), field)


@st.composite
def move_calls(draw: st.DrawFn) -> tuple[str, Any]:
    """Move-VM with one bad argument: (the field it must name, a call on the world)."""
    vm = draw(st.sampled_from(_VMS))
    kind = draw(st.integers(0, 7))
    if kind == 0:
        name = draw(bad_names)
        return "Name", lambda w: hyperv.move_vm(w.a, name, w.b)
    if kind == 1:
        other = draw(st.one_of(not_text, st.text(max_size=30), st.none(), st.just("same")))
        return "DestinationHost", lambda w: hyperv.move_vm(w.a, vm, w.a if other == "same" else other)
    if kind == 2:
        flag = draw(not_bools)
        return "IncludeStorage", lambda w: hyperv.move_vm(w.a, vm, w.b, include_storage=flag)
    if kind == 3:
        where = draw(bad_directories)
        what_if = draw(st.booleans())
        return "DestinationStoragePath", lambda w: hyperv.move_vm(
            w.a, vm, w.b, destination_storage_path=w.path(where), what_if=what_if
        )
    if kind == 4:
        flag = draw(not_bools)
        return "what_if", lambda w: hyperv.move_vm(w.a, vm, w.b, what_if=flag)
    if kind == 5:
        progress = draw(not_text)
        return "progress", lambda w: hyperv.move_vm(w.a, vm, w.b, progress=progress)
    if kind == 6:
        cancel = draw(st.one_of(not_text, not_bools.filter(lambda v: v is not None)))
        return "cancel", lambda w: hyperv.move_vm(w.a, vm, w.b, cancel=cancel)
    relative = st.text(max_size=10).filter(lambda t: not t.startswith("/"))
    shared = draw(st.one_of(st.text(max_size=20), not_text.filter(lambda v: v != []), st.lists(relative, min_size=1)))
    return "shared_storage", lambda w: hyperv.move_vm(w.a, vm, w.b, shared_storage=shared)


@hostile_settings(500)
@given(move_calls())
def test_move_vm_refuses_bad_arguments_and_changes_nothing(world: World, case: tuple[str, Any]) -> None:
    field, call = case
    aimed(world, lambda: call(world), field)
