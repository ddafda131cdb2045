"""The libvirt backend's translations: each table both ways, its lossy entries, and the terms it refuses."""

from __future__ import annotations

import libvirt
import pytest

from virtkit.backends.libvirt import states, tables
from virtkit.backends.libvirt.events import _detail_name
from virtkit.backends.libvirt.snapshots import parents_first
from virtkit.errors import Unsupported
from virtkit.models.disk import DiskFormat
from virtkit.models.migration import Location
from virtkit.models.state import VMState
from virtkit.models.vm import Accel, BootDevice, Machine


def test_two_way_tables_round_trip_every_term() -> None:
    for table in (tables.DOMAIN_TYPE, tables.DISK_FORMAT, tables.BOOT_DEVICE, tables.FEATURE_POLICY, tables.MACHINE):
        for term in table.terms:
            assert table.from_libvirt(table.to_libvirt(term)) == term


def test_lossy_entries_read_but_are_never_written() -> None:
    assert tables.FEATURE_POLICY.from_libvirt("force") == "+"
    assert tables.FEATURE_POLICY.from_libvirt("forbid") == "-"
    assert tables.FEATURE_POLICY.to_libvirt("+") == "require"
    assert tables.FEATURE_POLICY.find("optional") is None  # no change: left out by readers


def test_unmapped_terms_are_unsupported_not_guessed() -> None:
    with pytest.raises(Unsupported, match="domain type 'xen'"):
        tables.DOMAIN_TYPE.from_libvirt("xen")
    with pytest.raises(Unsupported, match="cannot write"):
        tables.DOMAIN_TYPE.to_libvirt(Accel.AUTO)
    with pytest.raises(Unsupported, match="boot device 'fd'"):
        tables.BOOT_DEVICE.from_libvirt("fd")
    assert tables.DISK_FORMAT.find("qed") is None and tables.DISK_FORMAT.find(None) is None
    assert tables.DISK_FORMAT.to_libvirt(DiskFormat.VHD) == "vpc"
    assert tables.BOOT_DEVICE.to_libvirt(BootDevice.DISK) == "hd"


@pytest.mark.parametrize(
    ("machine", "family"),
    [
        ("pc", Machine.PC),
        ("q35", Machine.Q35),
        ("pc-q35-7.2", Machine.Q35),
        ("pc-i440fx-7.2", Machine.PC),
        ("pc-1.0", Machine.PC),
    ],
)
def test_versioned_machines_read_as_their_family(machine: str, family: Machine) -> None:
    assert tables.machine_of(machine) is family


def test_other_machine_families_are_unsupported() -> None:
    with pytest.raises(Unsupported, match="microvm"):
        tables.machine_of("microvm")


def test_power_state_tables() -> None:
    assert tables.STATE[libvirt.VIR_DOMAIN_BLOCKED] is VMState.RUNNING
    assert tables.SNAPSHOT_STATE["shutoff"] is VMState.STOPPED
    assert tables.SNAPSHOT_STATE["disk-snapshot"] is VMState.RUNNING
    assert set(tables.SNAPSHOT_STATE) == {*tables.STATE_WORDS.values(), "disk-snapshot"}
    assert tables.LOCATION[libvirt.VIR_DOMAIN_PAUSED] is Location.PAUSED
    assert libvirt.VIR_DOMAIN_SHUTOFF not in tables.LOCATION
    assert states.to_state(libvirt.VIR_DOMAIN_SHUTOFF, 0, managed_save=True) is VMState.SAVED
    assert states.to_state(libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_MIGRATION, managed_save=False) is (
        VMState.MIGRATING
    )


def test_reason_and_detail_words_come_from_libvirt_names() -> None:
    assert states.reason_name(libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_BOOTED) == "booted"
    assert states.reason_name(libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_SAVED) == "saved"
    assert states.reason_name(libvirt.VIR_DOMAIN_SHUTDOWN, libvirt.VIR_DOMAIN_SHUTDOWN_USER) == "user"
    # VIR_DOMAIN_SHUTDOWN_GUEST_AGENT (2) is a flag of virDomainShutdownFlags, not a shutdown reason
    assert states.reason_name(libvirt.VIR_DOMAIN_SHUTDOWN, 2) == "unknown"
    assert states.reason_name(99, 0) == "unknown"
    assert _detail_name(libvirt.VIR_DOMAIN_EVENT_STOPPED, libvirt.VIR_DOMAIN_EVENT_STOPPED_DESTROYED) == "destroyed"
    assert _detail_name(99, 3) == "3"
    assert tables.libvirt_names("VIR_DOMAIN_CRASHED_") == {0: "unknown", 1: "panicked"}


def test_parents_first_orders_a_tree_breadth_first_and_a_subtree_from_its_root() -> None:
    parents = {"b2": "a", "a": None, "c": "b1", "b1": "a", "z": None, "orphan": "gone"}
    assert parents_first(parents) == [("a", 0), ("orphan", 0), ("z", 0), ("b1", 1), ("b2", 1), ("c", 2)]
    assert parents_first(parents, root="b1") == [("b1", 0), ("c", 1)]
