"""Move-VM and Set-VMProcessor on the real lab hosts, checked from inside the guest: its in-memory counter goes on
across every move (``virtkit.alive=1``), no new boot marker appears, and afterwards exactly one host runs it.

Storage copies are made three ways: into a directory both hosts see (both hosts' files are this machine's), and
between hosts whose files are reached over SSH (each lab host's own sshd, in its namespaces): there each disk lies
in the host's private /var/lib/libvirt/images, the destination's empty image is made by qemu-img over SSH, and the
copy is compared with what was written to the source before it started.

Both lab hosts are this machine, so no VM runs on one with a CPU the other lacks; the refusal of such a destination
is shown on a running VM whose definition (what it boots with next, which the destination keeps) names a CPU model
that neither host provides.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from click.testing import CliRunner

import helpers
import virtkit
from virtkit import CPUIncompatible, MigrationProgress, hyperv
from virtkit.cli.main import cli
from virtkit.lab import daemons, image
from virtkit.lab.paths import lab_root, shared_dir
from virtkit.lab.serial import GuestLog

PRIVATE = Path("/var/lib/libvirt/images")  # inside a lab host's namespace: its own directory, not this machine's
PATTERN = 4 * 2**20


def _goes_on(log: GuestLog) -> int:
    """The guest still runs its first boot: two alive lines in a row count on. Returns the last counter."""
    first = helpers.counter(helpers.next_alive(log))
    second = helpers.counter(helpers.next_alive(log))
    assert second == first + 1 and len(log.boots()) == 1, log.tail()
    return second


def _runs_only_on(host: virtkit.Host, other: virtkit.Host, name: str) -> None:
    assert host.get(name).info().state is virtkit.VMState.RUNNING and not other.exists(name)


def _write_pattern(disk: Path) -> Path:
    """Write a pattern into the stopped VM's image ``disk`` (as this machine sees it); return a copy to compare."""
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0x5a 0 {PATTERN}", str(disk)], check=True)
    reference = disk.with_name(f"{disk.name}.reference")
    shutil.copyfile(disk, reference)
    return reference


def _same(a: Path, b: Path) -> bool:
    compare = ["qemu-img", "compare", "-U", "-q", "-f", "qcow2", "-F", "qcow2", str(a), str(b)]
    return subprocess.run(compare, check=False).returncode == 0


def test_move_vm_live_with_the_baseline_cpu_and_back_on_the_command_line(
    hosts: tuple[virtkit.Host, virtkit.Host], guest: image.GuestImage, own: helpers.Owned
) -> None:
    a, b = hosts
    name = own("hvmove1")
    a.create(helpers.spec(guest, name, disk_size="64MiB"))
    change = hyperv.set_vm_processor(a, name, count=2, compatibility_for_migration_enabled=True, hosts=[b])
    baseline = virtkit.cpu_baseline([a, b])
    assert change.after is not None and (change.after.vcpus, change.after.cpu_model) == (2, baseline.model)
    processor = hyperv.get_vm_processor(a, name)
    assert processor.compatibility_for_migration_enabled and processor.features == baseline.features
    hyperv.start_vm(a, name)
    log = helpers.serial_log(name)
    log.wait_for_boot(timeout=120)
    _goes_on(log)
    with pytest.raises(virtkit.Conflict, match=r"^Count: "):
        hyperv.set_vm_processor(a, name, count=1)

    phases: list[str] = []

    def progress(p: MigrationProgress) -> None:
        phases.append(p.phase)

    assert hyperv.move_vm(a, name, b, shared_storage=[shared_dir()], what_if=True).check
    start = time.monotonic()
    result = hyperv.move_vm(a, name, b, shared_storage=[shared_dir()], progress=progress)
    took = time.monotonic() - start
    downtime = f"{result.downtime * 1000:.0f} ms" if result.downtime is not None else "?"
    print(f"\nMove-VM live, shared storage: {took:.2f} s, downtime {downtime}, post-copy {result.postcopy}")
    assert result.destination == b.uri and phases[-1] == "done"
    _runs_only_on(b, a, name)
    _goes_on(log)
    assert b.get(name).spec().cpu_model == baseline.model

    # Back to host1 through the command line, which draws the progress bar.
    run = CliRunner().invoke(
        cli, ["hyperv", "move-vm", name, "--uri", b.uri, "--destination-host", a.uri, "--shared", str(shared_dir())]
    )
    assert run.exit_code == 0, run.output
    assert f"changed: migrate {name}" in run.output and "took" in run.output
    _runs_only_on(a, b, name)
    _goes_on(log)


def test_move_vm_with_storage_into_a_destination_storage_path(
    hosts: tuple[virtkit.Host, virtkit.Host], guest: image.GuestImage, own: helpers.Owned
) -> None:
    a, b = hosts
    name = own("hvmove2")
    disk = shared_dir() / f"{name}.qcow2"
    a.create(helpers.spec(guest, name, disk_size="64MiB"))
    # Processor compatibility off: the host's own CPU, which libvirt expands where the VM starts and checks when
    # it moves.
    assert hyperv.set_vm_processor(a, name, compatibility_for_migration_enabled=False).changed
    assert not hyperv.get_vm_processor(a, name).compatibility_for_migration_enabled
    reference = _write_pattern(disk)
    hyperv.start_vm(a, name)
    log = helpers.serial_log(name)
    log.wait_for_boot(timeout=120)
    _goes_on(log)
    with pytest.raises(virtkit.InvalidSpec) as err:  # both hosts' files are this machine's: a copy onto itself
        hyperv.move_vm(a, name, b, include_storage=True)
    assert err.value.field == "DestinationStoragePath"
    escape = own.path("escape")  # a link in the roots to a directory outside them
    escape.symlink_to(Path("/etc"))
    for path in (own.path("missing"), escape, Path("/etc"), disk):
        with pytest.raises(virtkit.InvalidSpec) as err:
            hyperv.move_vm(a, name, b, destination_storage_path=path)
        assert err.value.field == "DestinationStoragePath"
    target = own.path("dst")
    target.mkdir()
    assert hyperv.move_vm(a, name, b, destination_storage_path=target, what_if=True).check
    assert list(target.iterdir()) == []
    start = time.monotonic()
    result = hyperv.move_vm(a, name, b, destination_storage_path=target)
    print(f"\nMove-VM -IncludeStorage -DestinationStoragePath, 64 MiB disk: {time.monotonic() - start:.2f} s")
    assert b.get(name).spec().disks[0].path == target / disk.name
    _runs_only_on(b, a, name)
    _goes_on(log)
    assert _same(reference, target / disk.name)
    assert any("left in place" in note for note in result.notes)


@pytest.fixture
def ssh_hosts(lab_hosts: list[daemons.LabHost]) -> Iterator[tuple[virtkit.Host, virtkit.Host]]:
    """host1 and host2 reached over SSH too: their files are each host's own."""
    roots = [PRIVATE, lab_root()]
    configs = [daemons.ssh_config(h) for h in lab_hosts]
    with (
        virtkit.connect(lab_hosts[0].uri, storage_roots=roots, ssh=configs[0]) as a,
        virtkit.connect(lab_hosts[1].uri, storage_roots=roots, ssh=configs[1]) as b,
    ):
        for host in (a, b):
            host.storage.files.run(["mkdir", "-p", str(PRIVATE)], timeout=30)
        yield a, b


def _private(host: daemons.LabHost, path: Path) -> Path:
    """Where this machine sees a file of ``host``'s private /var/lib/libvirt."""
    return host.root / "lib" / path.relative_to("/var/lib/libvirt")


def test_move_vm_with_storage_between_hosts_reached_over_ssh(
    lab_hosts: list[daemons.LabHost],
    ssh_hosts: tuple[virtkit.Host, virtkit.Host],
    guest: image.GuestImage,
    own: helpers.Owned,
) -> None:
    a, b = ssh_hosts
    name = own("hvmove3")
    disk = PRIVATE / f"{name}.qcow2"
    back = PRIVATE / f"{name}-back"
    src, dst = _private(lab_hosts[0], disk), _private(lab_hosts[1], disk)
    for path in (src, dst, _private(lab_hosts[0], back), src.with_name(f"{src.name}.reference")):
        own.file(path)
    a.create(helpers.spec(guest, name, disks=[{"path": str(disk), "size": "64MiB"}]))  # made over SSH on host1
    assert src.is_file() and not disk.exists()
    reference = _write_pattern(src)
    hyperv.start_vm(a, name)
    log = helpers.serial_log(name)
    log.wait_for_boot(timeout=120)
    _goes_on(log)

    checked = hyperv.move_vm(a, name, b, include_storage=True, what_if=True)
    assert checked.check and not dst.exists()
    phases: list[str] = []
    start = time.monotonic()
    result = hyperv.move_vm(a, name, b, include_storage=True, progress=lambda p: phases.append(p.phase))
    took = time.monotonic() - start
    downtime = f"{result.downtime * 1000:.0f} ms" if result.downtime is not None else "?"
    print(f"\nMove-VM -IncludeStorage between hosts over SSH, 64 MiB disk: {took:.2f} s, downtime {downtime}")
    assert phases[-1] == "done" and result.destination == b.uri
    _runs_only_on(b, a, name)
    _goes_on(log)
    assert dst.is_file() and not disk.exists()  # made on host2, through its files, not on this machine
    assert _same(reference, dst)
    assert b.get(name).spec().disks[0].path == disk  # the same path, on another host's files
    assert src.is_file()  # left in place on host1

    # Back to host1: its old image is still there, so the same path is refused with nothing changed; a directory
    # that exists on host1 alone takes the copy.
    with pytest.raises(virtkit.AlreadyExists, match="move it with shared storage"):
        hyperv.move_vm(b, name, a, include_storage=True)
    _runs_only_on(b, a, name)
    with pytest.raises(virtkit.InvalidSpec) as err:
        hyperv.move_vm(b, name, a, destination_storage_path=back)
    assert (
        err.value.field == "DestinationStoragePath"
        and f"does not exist on root@{lab_hosts[0].address}" in err.value.reason
    )
    a.storage.files.run(["mkdir", str(back)], timeout=30)
    hyperv.move_vm(b, name, a, destination_storage_path=back)
    _runs_only_on(a, b, name)
    _goes_on(log)
    assert _same(reference, _private(lab_hosts[0], back / disk.name))


def test_a_destination_that_cannot_run_the_vms_cpu_is_refused(
    hosts: tuple[virtkit.Host, virtkit.Host], guest: image.GuestImage, own: helpers.Owned
) -> None:
    a, b = hosts
    name = own("hvmove4")
    a.create(helpers.spec(guest, name, disk_size="64MiB"), start=True)
    log = helpers.serial_log(name)
    log.wait_for_boot(timeout=120)
    conn = libvirt.open(a.uri)
    try:
        dom = conn.lookupByName(name)
        definition = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        cpu = definition.find("cpu")
        assert cpu is not None
        cpu.clear()
        cpu.attrib.update({"mode": "custom", "match": "exact"})
        ET.SubElement(cpu, "model", fallback="forbid").text = "Icelake-Server"
        conn.defineXML(ET.tostring(definition, encoding="unicode"))  # the running VM keeps its CPU
        live = dom.XMLDesc(0)
    finally:
        conn.close()
    assert a.get(name).spec().cpu_model == "Icelake-Server"
    for what_if in (True, False):
        with pytest.raises(CPUIncompatible, match=r"^DestinationHost: .*Icelake-Server") as err:
            hyperv.move_vm(a, name, b, shared_storage=[shared_dir()], what_if=what_if)
        assert "avx512f" in str(err.value) or "does not provide required features" in str(err.value)
    _runs_only_on(a, b, name)
    _goes_on(log)
    conn = libvirt.open(a.uri)
    try:
        assert conn.lookupByName(name).XMLDesc(0) == live
    finally:
        conn.close()


@pytest.mark.parametrize("over_ssh", [False, True], ids=["shared-volume", "over-ssh"])
def test_the_example_moves_a_vm_on_the_lab(
    lab_hosts: list[daemons.LabHost], own: helpers.Owned, over_ssh: bool
) -> None:
    name = own("hvmoveex")
    for host in lab_hosts:
        own.file(_private(host, PRIVATE / f"{name}.qcow2"))
    argv = ["--from", lab_hosts[0].uri, "--to", lab_hosts[1].uri, "--name", name, *(["--over-ssh"] if over_ssh else [])]
    example = Path(__file__).parent.parent / "examples" / "hyperv_move.py"
    run = [sys.executable, str(example), *argv]
    done = subprocess.run(run, check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Move-VM: {name} runs on {lab_hosts[1].uri}" in done.stdout and "removed" in done.stdout
    assert not any(_private(h, PRIVATE / f"{name}.qcow2").exists() for h in lab_hosts)
    assert not list(shared_dir().glob(f"{name}*"))
