"""Unit tests of the lab guest's memory load: init's options that start it, and virtkit-load itself, compiled with
this machine's gcc and run here (not in a guest): its lines, its fill check, its refusals.

Booting the guest with a load is integration work; these need gcc and libc6-dev (skipped without gcc) and busybox.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from virtkit.errors import LabError
from virtkit.lab import image
from virtkit.lab.guest import memload
from virtkit.lab.guest.initramfs import init_script, is_static_elf
from virtkit.lab.serial import GuestEvent, GuestEventKind, parse_log

# --- init's options ----------------------------------------------------------------------------------------------


def run_init_options(tmp_path: Path, cmdline: str, *, load: str | None = "exit 0") -> list[str]:
    """The lines init's option parsing and load start print for ``cmdline``, run by busybox sh with a fake
    virtkit-load (a script with the body ``load``, or none at all), up to the boot marker."""
    script = init_script().decode()
    part = script[script.index("# A positive whole number") : script.index("\nfirmware=bios\n")]  # up to the boot line
    assert part.count("< /proc/cmdline") == 1 and part.count("load=/bin/virtkit-load") == 1
    fake = tmp_path / "virtkit-load"
    if load is not None:
        fake.write_text(f'#!/bin/sh\necho "load $*"\n{load}\n')
        fake.chmod(0o755)
    (tmp_path / "cmdline").write_text(cmdline + "\n")
    part = part.replace("< /proc/cmdline", f"< {tmp_path / 'cmdline'}").replace("/bin/virtkit-load", str(fake))
    test = tmp_path / "options.sh"
    test.write_text('exec 3>&1\nsay() {\n    echo "$*" >&3\n}\n' + part + 'echo "period=$period still running"\n')
    out = subprocess.run(["busybox", "sh", str(test)], capture_output=True, text=True, check=True, timeout=30)
    return out.stdout.splitlines()


@pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox not installed")
@pytest.mark.parametrize(
    ("cmdline", "started"),
    [
        ("console=ttyS0 quiet", []),
        ("virtkit.dirty=8", ["load dirty 8 pattern 0"]),
        (
            "quiet virtkit.dirty=32 virtkit.dirtymode=counter virtkit.fill=64 virtkit.fillcheck=2",
            ["load dirty 32 counter 0", "load fill 64 2"],
        ),
        ("virtkit.fill=16 virtkit.dirtyreport=5 virtkit.dirtymode=counter", ["load fill 16 5"]),  # no dirty: no load
        (
            "virtkit.dirty=4 virtkit.dirtymode=random virtkit.dirtyreport=3 virtkit.fill=1 virtkit.fillcheck=0x",
            ["load dirty 4 pattern 3", "load fill 1 5"],  # a mode it does not know, a period that is no number
        ),
        ("virtkit.dirty=08 virtkit.fill=0 virtkit.dirty= virtkit.fill=-1", []),  # not positive whole numbers
    ],
)
def test_init_starts_the_loads_the_command_line_asks_for(tmp_path: Path, cmdline: str, started: list[str]) -> None:
    assert run_init_options(tmp_path, cmdline + " virtkit.alive=3") == [*started, "period=3 still running"]


@pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox not installed")
def test_init_goes_on_when_the_load_is_missing_or_fails(tmp_path: Path) -> None:
    cmdline = "virtkit.dirty=8 virtkit.fill=8"
    assert run_init_options(tmp_path, cmdline, load=None) == [
        f"virtkit: no {tmp_path / 'virtkit-load'} in this initramfs: no dirty load",
        f"virtkit: no {tmp_path / 'virtkit-load'} in this initramfs: no fill load",
        "period=10 still running",
    ]
    assert run_init_options(tmp_path, cmdline, load="exit 1") == [
        "load dirty 8 pattern 0",
        "virtkit: the dirty load did not start",
        "load fill 8 5",
        "virtkit: the fill load did not start",
        "period=10 still running",
    ]


# --- virtkit-load ------------------------------------------------------------------------------------------------


def test_recipe_follows_the_load_source(monkeypatch: pytest.MonkeyPatch) -> None:
    plain, agent = image._PLAIN.recipe, image._AGENT.recipe
    real = memload.load_source
    monkeypatch.setattr(memload, "load_source", lambda: real() + b"/* changed */\n")
    assert image._PLAIN.recipe != plain and image._AGENT.recipe != agent


def test_a_failed_compile_is_a_lab_error_naming_the_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memload, "LOAD_COMMAND", ("no-such-gcc-virtkit", "-static"))
    with pytest.raises(LabError, match=r"guest image: cannot compile the guest's memory load .*libc6-dev"):
        memload.compile_load(tmp_path, lambda _msg: None)
    monkeypatch.undo()
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    monkeypatch.setattr(memload, "load_source", lambda: b"this is not C\n")
    with pytest.raises(LabError, match=r"exited with 1: .*error"):
        memload.compile_load(tmp_path, lambda _msg: None)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """virtkit-load compiled as the image build does, with -Werror on top."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    work = tmp_path_factory.mktemp("load")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(memload, "LOAD_COMMAND", (*memload.LOAD_COMMAND, "-Werror"))
        said: list[str] = []
        binary = work / "virtkit-load"
        assert memload.compile_load(work, said.append) == binary.read_bytes()
    assert is_static_elf(binary) and "compiled" in said[0]
    return binary


@pytest.fixture
def load_binary(compiled: Path) -> Iterator[Path]:
    """The compiled virtkit-load; the loads a test started are killed after it (they run until killed)."""
    yield compiled
    for pid in load_processes(compiled):
        os.kill(pid, signal.SIGKILL)


def load_processes(binary: Path) -> list[int]:
    """The pids running ``binary`` (a file of this test's own temporary directory)."""
    pids = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and os.readlink(proc / "exe") == str(binary):
                pids.append(int(proc.name))
    return pids


def start_load(binary: Path, out: Path, *args: str, limit: int | None = None) -> int:
    """Run virtkit-load with stdout and stderr appended to ``out``; its exit status (it forks the load and exits)."""

    def limit_memory() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    with open(out, "ab") as f:
        run = subprocess.run(
            [str(binary), *args],
            check=False,
            stdin=subprocess.DEVNULL,
            stdout=f,
            stderr=f,
            timeout=60,
            preexec_fn=limit_memory,
        )
    return run.returncode


def wait_lines(out: Path, done: Callable[[list[GuestEvent]], bool], timeout: float = 20) -> list[GuestEvent]:
    deadline = time.monotonic() + timeout
    while not done(events := parse_log(out.read_text())):
        assert time.monotonic() < deadline, out.read_text()
        time.sleep(0.05)
    return events


def test_load_reports_dirty_passes_and_fill_checks(load_binary: Path, tmp_path: Path) -> None:
    out = tmp_path / "serial.log"
    assert start_load(load_binary, out, "dirty", "4", "counter", "1") == 0
    (started,) = parse_log(out.read_text())  # the DIRTY line is out before the parent returns
    assert (started.kind, started.mib, started.mode, started.passes) == ("dirty", 4, "counter", None)
    assert start_load(load_binary, out, "dirty", "4", "pattern", "0") == 0
    assert start_load(load_binary, out, "fill", "8", "1") == 0

    def enough(events: list[GuestEvent]) -> bool:
        reports = [e for e in events if e.passes is not None and e.kind is GuestEventKind.DIRTY]
        return len(reports) >= 2 and sum(e.status == "ok" for e in events) >= 2

    events = wait_lines(out, enough)
    fills = [e for e in events if e.kind is GuestEventKind.FILL]
    assert fills[0].status == "filled" and fills[0].mib == 8
    assert [(e.status, e.passes, e.bad_pages) for e in fills[1:3]] == [("ok", 1, 0), ("ok", 2, 0)]
    dirty = [e for e in events if e.kind is GuestEventKind.DIRTY]
    assert [e.mode for e in dirty if e.passes is None] == ["counter", "pattern"]  # the pattern load reports no passes
    reports = [e.passes for e in dirty if e.passes is not None]
    assert all(e.mode == "counter" and e.mib == 4 for e in dirty if e.passes is not None)
    assert 0 < reports[0] < reports[1]
    lines = out.read_text().splitlines()
    assert all(line.startswith("VIRTKIT-") for line in lines) and len(parse_log(out.read_text())) == len(lines)


def test_fill_check_counts_the_pages_that_changed(load_binary: Path, tmp_path: Path) -> None:
    out = tmp_path / "serial.log"
    before = set(load_processes(load_binary))
    assert start_load(load_binary, out, "fill", "2", "1") == 0
    (pid,) = set(load_processes(load_binary)) - before
    wait_lines(out, lambda events: any(e.status == "filled" for e in events))
    ranges = [
        [int(a, 16) for a in line.split()[0].split("-")] for line in Path(f"/proc/{pid}/maps").read_text().splitlines()
    ]
    (start,) = [begin for begin, end in ranges if end - begin == 2 << 20]  # the 2 MiB filled
    try:
        with open(f"/proc/{pid}/mem", "r+b") as mem:
            for page in (0, 7, 511):  # the first and last of the 512 pages, and one between
                mem.seek(start + page * 4096 + 100)
                mem.write(b"\x00")
    except OSError as exc:  # no ptrace rights over it (not root, or a Yama policy)
        pytest.skip(f"cannot write into the load's memory: {exc}")
    events = wait_lines(out, lambda events: any(e.status == "bad" for e in events), timeout=10)
    bad = next(e for e in events if e.status == "bad")
    assert bad.bad_pages == 3 and bad.passes is not None and bad.passes >= 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dirty", "0", "counter", "0"], "MiB must be a whole number from 1 to 1048576, got '0'"),
        (["dirty", "8", "random", "0"], "the dirty mode must be pattern or counter, got 'random'"),
        (["fill", "8", "0"], "the check period must be a whole number from 1"),
        (["fill", "8"], "usage: virtkit-load dirty"),
    ],
)
def test_load_refuses_bad_arguments_without_starting(
    load_binary: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "serial.log"
    before = set(load_processes(load_binary))
    assert start_load(load_binary, out, *args) == 1
    said = out.read_text()
    assert said.startswith("virtkit-load: ") and message in said and said.count("\n") == 1
    assert set(load_processes(load_binary)) <= before  # none new (one of an earlier test may be ending meanwhile)


def test_load_that_cannot_get_its_memory_exits_1(load_binary: Path, tmp_path: Path) -> None:
    out = tmp_path / "serial.log"
    before = set(load_processes(load_binary))
    assert start_load(load_binary, out, "dirty", "256", "counter", "0", limit=128 << 20) == 1
    assert out.read_text() == "virtkit-load: cannot map 256 MiB: Cannot allocate memory\n"
    assert set(load_processes(load_binary)) <= before
