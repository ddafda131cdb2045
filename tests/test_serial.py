"""Unit tests of the serial log parser and of GuestLog's incremental reading and waits (files in tmp only)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from virtkit.errors import OperationTimeout
from virtkit.lab.serial import (
    AGENT_STATUSES,
    DIRTY_MODES,
    FILL_STATUSES,
    GuestEvent,
    GuestEventKind,
    GuestLog,
    parse_log,
)

BOOT_LOG = (
    "[    0.000000] Linux version 6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org)\r\n"
    "VIRTKIT-BOOT uptime=2.42\r\n"
    "VIRTKIT-DISKS uptime=2.43 disks=vda\r\n"
    "VIRTKIT-ALIVE uptime=2.43 counter=0\r\n"
    "[    3.100000] random: crng init done\r\n"
    "VIRTKIT-DISKS uptime=6.02 disks=sda,vda\r\n"
    "VIRTKIT-ALIVE uptime=12.45 counter=1\r\n"
)


def test_parses_each_kind_with_line_numbers() -> None:
    assert parse_log(BOOT_LOG) == [
        GuestEvent(GuestEventKind.BOOT, 2.42, None, None, 2),
        GuestEvent(GuestEventKind.DISKS, 2.43, ("vda",), None, 3),
        GuestEvent(GuestEventKind.ALIVE, 2.43, None, 0, 4),
        GuestEvent(GuestEventKind.DISKS, 6.02, ("sda", "vda"), None, 6),
        GuestEvent(GuestEventKind.ALIVE, 12.45, None, 1, 7),
    ]


def test_kind_compares_equal_to_plain_strings() -> None:
    assert [e.kind for e in parse_log(BOOT_LOG)][:3] == ["boot", "disks", "alive"]


def test_dirty_marker_carries_the_mib_rewritten() -> None:
    assert parse_log("VIRTKIT-DIRTY uptime=2.60 mib=64\n") == [
        GuestEvent(GuestEventKind.DIRTY, 2.6, None, 64, 1, mib=64)
    ]
    assert parse_log("VIRTKIT-DIRTY uptime=2.60 mib=\n") == []


def test_no_disks_is_an_empty_tuple_not_none() -> None:
    (event,) = parse_log("VIRTKIT-DISKS uptime=2.39 disks=\n")
    assert event.disks == ()
    assert event.counter is None


def test_partial_last_line_is_left_out() -> None:
    assert parse_log("VIRTKIT-BOOT uptime=2.42\nVIRTKIT-ALIVE uptime=3.4") == [
        GuestEvent(GuestEventKind.BOOT, 2.42, None, None, 1)
    ]
    assert parse_log("VIRTKIT-BOOT uptime=2.42") == []
    assert parse_log("") == []


@pytest.mark.parametrize(
    "line",
    [
        "VIRTKIT-BOOT uptime=",  # cut short
        "VIRTKIT-BOOT uptime=abc",
        "VIRTKIT-ALIVE uptime=3.1 counter=",
        "VIRTKIT-ALIVE uptime=3.1 counter=1[    3.2] virtio_blk virtio2: [vdb] 131072 512-byte",  # interleaved
        "VIRTKIT-DISKS uptime=3.1 disks=vda,",
        "VIRTKIT-DISKS uptime=3.1",
        "VIRTKIT-HELLO uptime=3.1",
        "virtkit-boot uptime=3.1",
        "VIRTKIT-AGENT uptime=3.1",
        "VIRTKIT-AGENT uptime=3.1 starting",
        "VIRTKIT-AGENT uptime=3.1 started[    3.2] virtio_blk virtio2: [vdb] 131072 512-byte",
        "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100",
    ],
)
def test_garbled_markers_and_noise_are_ignored(line: str) -> None:
    assert parse_log(line + "\n") == []


@pytest.mark.parametrize(
    ("line", "firmware", "secure_boot"),
    [
        ("VIRTKIT-BOOT uptime=2.10 firmware=efi secureboot=on", "efi", True),
        ("VIRTKIT-BOOT uptime=2.10 firmware=efi secureboot=off", "efi", False),
        ("VIRTKIT-BOOT uptime=2.10 firmware=bios secureboot=off", "bios", False),
        ("VIRTKIT-BOOT uptime=2.10", None, None),  # a guest built before the fields
    ],
)
def test_boot_line_says_firmware_and_secure_boot(line: str, firmware: str | None, secure_boot: bool | None) -> None:
    (event,) = parse_log(line + "\n")
    assert (event.kind, event.firmware, event.secure_boot) == ("boot", firmware, secure_boot)


@pytest.mark.parametrize(
    "line", ["VIRTKIT-BOOT uptime=2.1 firmware=efi", "VIRTKIT-BOOT uptime=2.1 firmware=uefi secureboot=on"]
)
def test_boot_line_with_half_or_unknown_firmware_fields_is_ignored(line: str) -> None:
    assert parse_log(line + "\n") == []


def test_marker_after_kernel_noise_on_the_same_line_counts() -> None:
    (event,) = parse_log("[    3.2] sd 0:0:0:0: [sda] Attached SCSI disk VIRTKIT-ALIVE uptime=3.30 counter=7\r\n")
    assert (event.kind, event.uptime, event.counter) == ("alive", 3.3, 7)


def test_invalid_utf8_and_blank_lines_do_not_break_parsing(tmp_path: Path) -> None:
    path = tmp_path / "serial.log"
    path.write_bytes(b"\xff\xfe garbage\n\n\x00\x00VIRTKIT-BOOT uptime=1.00\r\n")
    log = GuestLog(path)
    assert log.boots() == [GuestEvent(GuestEventKind.BOOT, 1.0, None, None, 3)]


def test_missing_file_reads_as_empty(tmp_path: Path) -> None:
    log = GuestLog(tmp_path / "not-yet.log")
    assert log.events() == []
    assert log.boots() == []
    assert log.last_disks() is None
    assert log.last_alive() is None
    assert log.tail() == []


def test_reads_incrementally_and_waits_for_the_rest_of_a_line(tmp_path: Path) -> None:
    path = tmp_path / "serial.log"
    log = GuestLog(path)
    with open(path, "w") as f:
        f.write("VIRTKIT-BOOT uptime=2.42\r\nVIRTKIT-DISKS uptime=2.43 dis")
        f.flush()
        assert [e.kind for e in log.events()] == ["boot"]
        assert log.last_disks() is None
        f.write("ks=vda\r\nVIRTKIT-ALIVE uptime=2.43 counter=0\r\n")
        f.flush()
        assert log.last_disks() == ("vda",)
        alive = log.last_alive()
        assert alive is not None
        assert (alive.counter, alive.line_no) == (0, 3)
    assert log.tail(2) == ["VIRTKIT-DISKS uptime=2.43 disks=vda", "VIRTKIT-ALIVE uptime=2.43 counter=0"]


def test_a_reboot_appends_a_second_boot_marker(tmp_path: Path) -> None:
    path = tmp_path / "serial.log"
    path.write_text(BOOT_LOG + "[   20.0] reboot: Restarting system\r\nVIRTKIT-BOOT uptime=2.40\r\n")
    log = GuestLog(path)
    assert [b.line_no for b in log.boots()] == [2, 9]
    assert log.wait_for_boot(0.1, after_boots=1).line_no == 9


def test_a_truncated_or_replaced_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "serial.log"
    path.write_text(BOOT_LOG)
    log = GuestLog(path)
    assert len(log.events()) == 5
    path.write_text("VIRTKIT-BOOT uptime=9.99\n")  # truncated in place
    assert log.events() == [GuestEvent(GuestEventKind.BOOT, 9.99, None, None, 1)]
    replacement = tmp_path / "new.log"
    replacement.write_text("noise\n" + BOOT_LOG)
    replacement.replace(path)
    assert [e.line_no for e in log.boots()] == [3]


def test_wait_for_returns_as_soon_as_the_predicate_holds(tmp_path: Path) -> None:
    path = tmp_path / "serial.log"
    log = GuestLog(path)

    def boot_later() -> None:
        time.sleep(0.2)
        path.write_text("VIRTKIT-BOOT uptime=2.42\nVIRTKIT-DISKS uptime=2.43 disks=sda,vda\n")

    writer = threading.Thread(target=boot_later)
    writer.start()
    try:
        event = log.wait_for_boot(5)
        assert event.uptime == 2.42
        assert log.wait_for_disks(lambda d: "sda" in d, 5) == ("sda", "vda")
    finally:
        writer.join()


def test_wait_for_alive_after_a_given_line(tmp_path: Path) -> None:
    path = tmp_path / "serial.log"
    path.write_text(BOOT_LOG)
    log = GuestLog(path)
    first = log.wait_for_alive(1)
    assert first.counter == 0
    assert log.wait_for_alive(1, after_line=first.line_no).counter == 1
    with pytest.raises(OperationTimeout):
        log.wait_for_alive(0.2, after_line=7)


def test_timeout_names_the_file_and_shows_the_last_lines(tmp_path: Path) -> None:
    path = tmp_path / "serial.log"
    path.write_text("[    1.0] Kernel panic - not syncing: VFS: Unable to mount root fs\r\n")
    log = GuestLog(path)
    started = time.monotonic()
    with pytest.raises(OperationTimeout) as info:
        log.wait_for_boot(0.3)
    assert 0.3 <= time.monotonic() - started < 2
    assert str(path) in str(info.value)
    assert "Kernel panic" in str(info.value)
    assert "boot marker number 1" in str(info.value)


def test_wait_for_disks_needs_the_latest_line_to_match(tmp_path: Path) -> None:
    path = tmp_path / "serial.log"
    path.write_text(BOOT_LOG + "VIRTKIT-DISKS uptime=13.0 disks=vda\n")  # sda was removed again
    log = GuestLog(path)
    assert log.wait_for_disks(lambda d: d == ("vda",), 0.1) == ("vda",)
    with pytest.raises(OperationTimeout, match="DISKS"):
        log.wait_for_disks(lambda d: "sda" in d, 0.2)


AGENT_LOG = (
    "VIRTKIT-BOOT uptime=2.63\r\n"
    "VIRTKIT-DISKS uptime=2.64 disks=vda\r\n"
    "VIRTKIT-ALIVE uptime=2.64 counter=0\r\n"
    "VIRTKIT-AGENT uptime=3.45 started\r\n"
    "VIRTKIT-ALIVE uptime=3.70 counter=1\r\n"
)


def test_agent_line_carries_its_status() -> None:
    events = parse_log(AGENT_LOG)
    assert events[3] == GuestEvent(GuestEventKind.AGENT, 3.45, None, None, 4, "started")
    assert events[3].kind == "agent"
    assert [e.status for e in events] == [None, None, None, "started", None]  # other kinds have no status
    for status in AGENT_STATUSES:
        (event,) = parse_log(f"VIRTKIT-AGENT uptime=61.2 {status}\n")
        assert (event.kind, event.uptime, event.status) == ("agent", 61.2, status)


def test_existing_kinds_are_unchanged_by_the_agent_kind() -> None:
    assert [e.kind for e in parse_log(AGENT_LOG)] == ["boot", "disks", "alive", "agent", "alive"]
    assert list(GuestEventKind)[:3] == ["boot", "disks", "alive"]
    assert parse_log(BOOT_LOG)[0] == GuestEvent(GuestEventKind.BOOT, 2.42, None, None, 2, None)


def test_wait_for_the_agent_of_each_boot(tmp_path: Path) -> None:
    path = tmp_path / "serial.log"
    path.write_text(AGENT_LOG)
    log = GuestLog(path)
    first = log.wait_for_agent(1)
    assert (first.line_no, first.status) == (4, "started")
    assert log.last_agent() == first
    with open(path, "a") as f:  # a reboot: the next boot's agent has not reported yet
        f.write("[   20.0] reboot: Restarting system\r\nVIRTKIT-BOOT uptime=2.50\r\n")
    log.wait_for_boot(1, after_boots=1)
    with pytest.raises(OperationTimeout, match="AGENT line after line 4"):
        log.wait_for_agent(0.2, after_line=first.line_no)
    with open(path, "a") as f:
        f.write("VIRTKIT-AGENT uptime=62.48 no-port\r\n")
    assert log.wait_for_agent(1, after_line=first.line_no).status == "no-port"
    assert GuestLog(tmp_path / "missing.log").last_agent() is None


# --- the memory loads' lines -------------------------------------------------------------------------------------


def test_dirty_line_carries_mode_and_optional_pass_count() -> None:
    started, report = parse_log(
        "VIRTKIT-DIRTY uptime=2.60 mib=32 mode=counter\r\nVIRTKIT-DIRTY uptime=7.61 mib=32 mode=counter passes=41\r\n"
    )
    assert started == GuestEvent(GuestEventKind.DIRTY, 2.6, None, 32, 1, mib=32, mode="counter")
    assert (report.mib, report.counter, report.mode, report.passes, report.line_no) == (32, 32, "counter", 41, 2)
    (pattern,) = parse_log("VIRTKIT-DIRTY uptime=2.60 mib=8 mode=pattern\n")
    assert (pattern.mode, pattern.passes, pattern.status, pattern.bad_pages) == ("pattern", None, None, None)
    assert DIRTY_MODES == ("pattern", "counter")


def test_dirty_line_of_an_older_guest_still_parses() -> None:
    (event,) = parse_log("VIRTKIT-DIRTY uptime=2.60 mib=64\n")
    assert (event.counter, event.mib, event.mode, event.passes) == (64, 64, None, None)


def test_fill_lines_say_filled_ok_or_bad() -> None:
    log = (
        "VIRTKIT-FILL uptime=3.10 filled mib=64\r\n"
        "VIRTKIT-FILL uptime=5.12 ok pass=1\r\n"
        "VIRTKIT-FILL uptime=7.12 bad=3 pass=2\r\n"
    )
    filled, ok, bad = parse_log(log)
    assert filled == GuestEvent(GuestEventKind.FILL, 3.1, None, None, 1, status="filled", mib=64)
    assert ok == GuestEvent(GuestEventKind.FILL, 5.12, None, None, 2, status="ok", passes=1, bad_pages=0)
    assert bad == GuestEvent(GuestEventKind.FILL, 7.12, None, None, 3, status="bad", passes=2, bad_pages=3)
    assert [e.kind for e in (filled, ok, bad)] == ["fill"] * 3
    assert {e.status for e in (filled, ok, bad)} == set(FILL_STATUSES)
    assert list(GuestEventKind)[:5] == ["boot", "disks", "alive", "agent", "dirty"]  # FILL came last


@pytest.mark.parametrize(
    "line",
    [
        "VIRTKIT-DIRTY uptime=2.6 mib=32 mode=",
        "VIRTKIT-DIRTY uptime=2.6 mib=32 mode=random",
        "VIRTKIT-DIRTY uptime=2.6 mib=32 passes=4",  # passes only after a mode
        "VIRTKIT-DIRTY uptime=2.6 mib=32 mode=counter passes=",
        "VIRTKIT-DIRTY uptime=2.6 mib=32 mode=counterVIRTKIT-ALIVE",
        "VIRTKIT-FILL uptime=3.1",
        "VIRTKIT-FILL uptime=3.1 filled",
        "VIRTKIT-FILL uptime=3.1 filled mib=",
        "VIRTKIT-FILL uptime=3.1 ok",
        "VIRTKIT-FILL uptime=3.1 ok pass=1 bad=2",
        "VIRTKIT-FILL uptime=3.1 bad= pass=2",
        "VIRTKIT-FILL uptime=3.1 bad=2",
        "VIRTKIT-FILL uptime=3.1 ok pass=1[    3.2] virtio_blk virtio2: [vdb] 131072 512-byte",  # interleaved
        "virtkit: the fill load did not start",
        "virtkit-load: cannot map 64 MiB: Cannot allocate memory",
    ],
)
def test_garbled_load_lines_and_load_errors_are_ignored(line: str) -> None:
    assert parse_log(line + "\n") == []


def test_wait_for_fill_checks_after_a_given_line(tmp_path: Path) -> None:
    path = tmp_path / "serial.log"
    path.write_text(BOOT_LOG + "VIRTKIT-FILL uptime=3.10 filled mib=64\r\n")
    log = GuestLog(path)
    assert log.wait_for_fill(1).status == "filled"
    with pytest.raises(OperationTimeout, match="FILL check line after line 0"):
        log.wait_for_fill(0.2, checked=True)
    with open(path, "a") as f:
        f.write("VIRTKIT-FILL uptime=5.12 ok pass=1\r\nVIRTKIT-FILL uptime=7.12 bad=1 pass=2\r\n")
    first = log.wait_for_fill(1, checked=True)
    assert (first.status, first.passes, first.line_no) == ("ok", 1, 9)
    later = log.wait_for_fill(1, after_line=first.line_no)
    assert (later.status, later.bad_pages, later.passes) == ("bad", 1, 2)
    assert log.last_fill() == later
    assert GuestLog(tmp_path / "missing.log").last_fill() is None
