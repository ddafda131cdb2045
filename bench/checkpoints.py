"""Checkpoints: virtkit against the same work done with virsh (and qemu-img), same run, same lab host, same guest.

Two benchmarks (``--only`` runs one); in both the sides alternate which goes first:

``bios``: memory snapshot create, revert and delete, save to a file and restore from it, of the lab's test guest with
BIOS firmware (its memory snapshots are libvirt's internal ones). Each run does every operation once through
``virsh -c <uri> ...`` (a subprocess per command, as a script would call it) and once through virtkit (one open
connection); the first row is what a virsh call costs before it does anything.

``gen2``: the checkpoints of a Generation 2 VM: the test guest with qemu-guest-agent, UEFI (q35, OVMF, its variable
store beside its disk), direct kernel boot, 256 MiB; one VM per side, both running. A Standard checkpoint
(``vm.snapshots.create(name)``) is an external snapshot with memory plus a copy of the variable store, which on
libvirt 9.0 virtkit reverts to and deletes itself. By hand, one process per step:

- create: ``virsh suspend``, ``cp`` of the variable store, ``virsh snapshot-create-as --atomic --memspec ...
  --diskspec ...``, ``virsh resume``;
- revert: ``virsh destroy``, ``qemu-img create -b <kept image>`` (a new overlay), ``cp`` of the store's copy back,
  ``virsh save-image-dumpxml`` (its disk pointed at the new overlay with ElementTree), ``virsh restore --xml ...
  --running``, ``virsh define`` of that definition, ``virsh snapshot-current``, ``rm`` of the overlay the VM ran on;
- delete: ``virsh snapshot-delete --metadata``, ``rm`` of the memory file and the store's copy, ``virsh blockcommit
  --active --pivot`` (the overlay merged into the image; libvirt points the persistent definition at the image
  itself), ``rm`` of the overlay.

A Production checkpoint (``kind="quiesced"``: the guest's file systems frozen through its agent, disks only) is
timed against the Standard one, and against ``virsh snapshot-create-as --disk-only --quiesce``; a virtkit result
that is not quiesced (the fallback to memory) is not counted. Every revert is checked: the guest's in-memory counter
(its ALIVE lines, one a second) must come back to what it was at the checkpoint, without a new boot, or the revert's
time is not counted. After every delete the VM must run on its image again, with no snapshot and no other file of
its own left.

The script prints medians (min-max) over the runs, the difference and the ratio virtkit / by hand, as Markdown
tables. It removes the VMs and files it made; the lab is left up.

    flock /tmp/virtkit-integration.lock .venv/bin/python bench/checkpoints.py --runs 7
    flock /tmp/virtkit-integration.lock .venv/bin/python bench/checkpoints.py --only gen2 --runs 7
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import libvirt

import virtkit
from virtkit.lab import daemons, image
from virtkit.lab.paths import shared_dir
from virtkit.lab.serial import GuestEvent, GuestLog

BIOS_NAME = "bench-snap"
BIOS_OPS = ("virsh start-up and connect", "snapshot create", "snapshot revert", "snapshot delete", "save", "restore")

GEN2_VMS = {"by hand": "bench-ckpt-raw", "virtkit": "bench-ckpt-vk"}
GEN2_OPS = (
    "virsh start-up and connect",
    "Standard create",
    "Standard revert",
    "Standard delete (merge)",
    "Production create",
    "Production delete (merge)",
)
_BOOT = 180.0  # seconds for a UEFI boot under TCG (measured: 7-9 s)
_GAP = 5  # ALIVE lines the guest writes between the checkpoint and the revert
_UNDEFINE_ALL = (
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
)

Times = dict[str, dict[str, list[float]]]


def _timed(fn: Callable[..., object], *args: Any) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def _cell(samples: list[float]) -> str:
    if not samples:
        return "-"
    ms = [t * 1000 for t in samples]
    return f"{statistics.median(ms):.1f} ms ({min(ms):.0f}-{max(ms):.0f})"


def _table(times: Times, raw: str, raw_title: str) -> None:
    print(f"| operation | {raw_title} | virtkit | difference | ratio |")
    print("|---|---|---|---|---|")
    for op, sides in times.items():
        if not sides[raw] or not sides["virtkit"]:
            print(f"| {op} | {_cell(sides[raw])} | {_cell(sides['virtkit'])} | - | - |")
            continue
        by_hand, vk = statistics.median(sides[raw]), statistics.median(sides["virtkit"])
        diff = (vk - by_hand) * 1000
        print(f"| {op} | {_cell(sides[raw])} | {_cell(sides['virtkit'])} | {diff:+.1f} ms | {vk / by_hand:.2f} |")


def _run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=300).stdout


def _virsh(uri: str, *args: str) -> str:
    return _run("virsh", "-q", "-c", uri, *args)


def _remove(uri: str, names: list[str]) -> None:
    """Destroy and undefine the VMs ``names`` with all libvirt keeps for them, and remove their files."""
    conn = libvirt.open(uri)
    try:
        for dom in conn.listAllDomains(0):
            if dom.name() not in names:
                continue
            if dom.isActive():
                dom.destroy()
            dom.undefineFlags(_UNDEFINE_ALL)
    finally:
        conn.close()
    for name in names:
        for path in [*shared_dir().glob(f"{name}.*"), *shared_dir().glob(f"{name}-*")]:
            path.unlink(missing_ok=True)


# -- bios: internal snapshots and saved state, virtkit against virsh ---------------------------------------------------


def _bios(uri: str, runs: int) -> Times:
    guest = image.build_guest()
    _remove(uri, [BIOS_NAME])
    shared = shared_dir()
    spec = virtkit.VMSpec.from_dict(
        {
            "name": BIOS_NAME,
            "memory": "256MiB",
            "kernel": {"kernel": str(guest.kernel), "initrd": str(guest.initrd), "cmdline": guest.cmdline},
            "disks": [{"path": str(shared / f"{BIOS_NAME}.qcow2"), "size": "256MiB"}],
            "serial_log": str(shared / f"{BIOS_NAME}.serial.log"),
        }
    )

    def run(*argv: str) -> None:
        _virsh(uri, *argv)

    times: Times = {op: {"virsh": [], "virtkit": []} for op in BIOS_OPS}
    host = virtkit.connect(uri)
    try:
        host.create(spec, start=True)
        GuestLog(shared / f"{BIOS_NAME}.serial.log").wait_for_boot(timeout=180)
        vm = host.get(BIOS_NAME)
        for i in range(runs):
            for side in ("virsh", "virtkit") if i % 2 == 0 else ("virtkit", "virsh"):
                snap = f"{side}{i}"
                saved = shared / f"{BIOS_NAME}.{side}{i}.save"
                steps: list[tuple[str, Callable[..., object], tuple[Any, ...]]]
                if side == "virsh":
                    steps = [
                        (BIOS_OPS[0], run, ("uri",)),
                        ("snapshot create", run, ("snapshot-create-as", BIOS_NAME, snap)),
                        ("snapshot revert", run, ("snapshot-revert", BIOS_NAME, snap)),
                        ("snapshot delete", run, ("snapshot-delete", BIOS_NAME, snap)),
                        ("save", run, ("save", BIOS_NAME, str(saved))),
                        ("restore", run, ("restore", str(saved))),
                    ]
                else:
                    steps = [
                        ("snapshot create", vm.snapshots.create, (snap,)),
                        ("snapshot revert", vm.snapshots.revert, (snap,)),
                        ("snapshot delete", vm.snapshots.delete, (snap,)),
                        ("save", vm.save, (saved,)),
                        ("restore", host.restore, (saved,)),
                    ]
                for op, fn, argv in steps:
                    times[op][side].append(_timed(fn, *argv))
                saved.unlink()
    finally:
        host.close()
        _remove(uri, [BIOS_NAME])
    return times


# -- gen2: UEFI checkpoints, virtkit against the same steps by hand --------------------------------------------------


def _with_disk(xml: str, target: str, path: Path) -> str:
    """The ``<domain>`` ``xml`` with disk ``target`` on the image ``path``, its backing chain left to libvirt."""
    root = ET.fromstring(xml)
    for disk in root.iterfind("devices/disk"):
        node, source = disk.find("target"), disk.find("source")
        if node is not None and source is not None and node.get("dev") == target:
            source.set("file", str(path))
            for chain in disk.findall("backingStore"):
                disk.remove(chain)
    return ET.tostring(root, encoding="unicode")


class ByHand:
    """A Generation 2 checkpoint of VM ``name`` done by hand: virsh, qemu-img, cp and rm, one process per step."""

    def __init__(self, uri: str, name: str) -> None:
        self.uri = uri
        self.name = name
        self.dir = shared_dir()
        self.image = self.dir / f"{name}.qcow2"
        self.nvram = self.dir / f"{name}.nvram.fd"

    def overlay(self, snap: str) -> Path:
        return self.dir / f"{self.name}-vda.{snap}.qcow2"

    def reverted(self, snap: str) -> Path:
        return self.dir / f"{self.name}-vda.{snap}.rev.qcow2"

    def memory(self, snap: str) -> Path:
        return self.dir / f"{self.name}.{snap}.mem"

    def nvram_copy(self, snap: str) -> Path:
        return self.dir / f"{self.name}.{snap}.nvram.fd"

    def create(self, snap: str) -> None:
        _virsh(self.uri, "suspend", self.name)
        _run("cp", str(self.nvram), str(self.nvram_copy(snap)))
        _virsh(
            self.uri,
            *("snapshot-create-as", self.name, snap, "--atomic"),
            *("--memspec", f"file={self.memory(snap)},snapshot=external"),
            *("--diskspec", f"vda,snapshot=external,file={self.overlay(snap)}"),
        )
        _virsh(self.uri, "resume", self.name)

    def revert(self, snap: str) -> None:
        new, xml = self.reverted(snap), self.dir / f"{self.name}.{snap}.xml"
        _virsh(self.uri, "destroy", self.name)
        _run("qemu-img", "create", "-q", "-f", "qcow2", "-b", str(self.image), "-F", "qcow2", str(new))
        _run("cp", str(self.nvram_copy(snap)), str(self.nvram))
        saved = _virsh(self.uri, "save-image-dumpxml", "--security-info", str(self.memory(snap)))
        xml.write_text(_with_disk(saved, "vda", new))
        _virsh(self.uri, "restore", str(self.memory(snap)), "--xml", str(xml), "--running")
        _virsh(self.uri, "define", str(xml))
        _virsh(self.uri, "snapshot-current", self.name, snap)
        _run("rm", str(self.overlay(snap)), str(xml))

    def delete(self, snap: str) -> None:
        """Delete Standard checkpoint ``snap`` after a revert to it: the VM runs on :meth:`reverted`."""
        _virsh(self.uri, "snapshot-delete", self.name, snap, "--metadata")
        _run("rm", str(self.memory(snap)), str(self.nvram_copy(snap)))
        _virsh(self.uri, "blockcommit", self.name, "vda", "--active", "--pivot", "--shallow", "--wait")
        _run("rm", str(self.reverted(snap)))

    def production(self, snap: str) -> None:
        _virsh(
            self.uri,
            *("snapshot-create-as", self.name, snap, "--disk-only", "--quiesce", "--atomic"),
            *("--diskspec", f"vda,snapshot=external,file={self.overlay(snap)}"),
        )

    def production_delete(self, snap: str) -> None:
        _virsh(self.uri, "snapshot-delete", self.name, snap, "--metadata")
        _virsh(self.uri, "blockcommit", self.name, "vda", "--active", "--pivot", "--shallow", "--wait")
        _run("rm", str(self.overlay(snap)))


def _gen2_spec(guest: image.GuestImage, name: str) -> virtkit.VMSpec:
    shared = shared_dir()
    return virtkit.VMSpec.from_dict(
        {
            "name": name,
            "memory": "256MiB",
            "firmware": "uefi",
            "machine": "q35",
            "guest_agent": True,
            "kernel": {"kernel": str(guest.kernel), "initrd": str(guest.initrd), "cmdline": guest.cmdline_for(alive=1)},
            "disks": [{"path": str(shared / f"{name}.qcow2"), "size": "256MiB"}],
            "serial_log": str(shared / f"{name}.serial.log"),
        }
    )


def _last_alive(events: list[GuestEvent]) -> GuestEvent | None:
    return next((e for e in reversed(events) if e.counter is not None), None)


def _counter(event: GuestEvent | None) -> int:
    return -1 if event is None or event.counter is None else event.counter


def _wait_agent(vm: virtkit.VM, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not vm.agent.ping(2):
        if time.monotonic() > deadline:
            raise virtkit.OperationTimeout(f"the guest agent of {vm.name} does not answer after {timeout:g} s")
        time.sleep(0.2)


def _problems_after_delete(conn: libvirt.virConnect, name: str) -> list[str]:
    """What is wrong with VM ``name`` after its checkpoint was deleted: a snapshot left, a disk that is not its
    image (running or persistent definition), a file of its own besides its image, variable store and serial log."""
    dom = conn.lookupByName(name)
    image_path = str(shared_dir() / f"{name}.qcow2")
    problems = [f"{n} snapshot(s) left" for n in [dom.snapshotNum(0)] if n]
    for what, flags in (("running", 0), ("persistent", libvirt.VIR_DOMAIN_XML_INACTIVE)):
        source = ET.fromstring(dom.XMLDesc(flags)).find("devices/disk/source")
        found = source.get("file") if source is not None else None
        if found != image_path:
            problems.append(f"the {what} definition's disk is {found}")
    files = sorted(p.name for p in [*shared_dir().glob(f"{name}.*"), *shared_dir().glob(f"{name}-*")])
    expected = sorted(f"{name}{suffix}" for suffix in (".qcow2", ".nvram.fd", ".serial.log"))
    if files != expected:
        problems.append(f"files {', '.join(sorted(set(files) - set(expected)))} left")
    return problems


def _gen2(uri: str, runs: int) -> tuple[Times, list[str], dict[str, int]]:
    """The times, the problems seen (a revert that did not go back, a file left), and how many of the virtkit
    Production checkpoints were quiesced."""
    guest = image.build_guest(variant="agent")
    names = list(GEN2_VMS.values())
    _remove(uri, names)
    times: Times = {op: {"by hand": [], "virtkit": []} for op in GEN2_OPS}
    problems: list[str] = []
    quiesced = {"quiesced": 0, "other": 0}
    conn = libvirt.open(uri)
    host = virtkit.connect(uri)
    try:
        logs: dict[str, GuestLog] = {}
        for side, name in GEN2_VMS.items():
            host.create(_gen2_spec(guest, name), start=True)
            logs[side] = GuestLog(shared_dir() / f"{name}.serial.log")
        for side in GEN2_VMS:
            boot = logs[side].wait_for_boot(_BOOT)
            logs[side].wait_for_agent(_BOOT, after_line=boot.line_no)
        vms = {side: host.get(name) for side, name in GEN2_VMS.items()}
        hands = ByHand(uri, GEN2_VMS["by hand"])
        for i in range(runs):
            times["virsh start-up and connect"]["by hand"].append(_timed(_virsh, uri, "uri"))
            for side in ("by hand", "virtkit") if i % 2 == 0 else ("virtkit", "by hand"):
                name, vm, log = GEN2_VMS[side], vms[side], logs[side]
                snap = f"s{i}"
                created: list[Any] = []

                def standard(s: str, vm: virtkit.VM = vm, out: list[Any] = created) -> None:
                    out.append(vm.snapshots.create(s).after)

                ops: dict[str, Callable[[str], object]] = (
                    {"create": hands.create, "revert": hands.revert, "delete": hands.delete}
                    if side == "by hand"
                    else {"create": standard, "revert": vm.snapshots.revert, "delete": vm.snapshots.delete}
                )
                # Standard: create; the guest counts on; revert, and the counter must be back; delete (merge).
                last = log.last_alive()
                at = log.wait_for_alive(30, after_line=last.line_no if last else 0)
                boots = len(log.boots())
                times["Standard create"][side].append(_timed(ops["create"], snap))
                if created and created[0].kind is not virtkit.SnapshotKind.MEMORY:
                    problems.append(f"virtkit run {i}: the Standard checkpoint is {created[0].kind.value}")
                until = _counter(at) + _GAP
                before = _last_alive(log.wait_for(lambda evs, c=until: _counter(_last_alive(evs)) >= c, 30))
                revert = _timed(ops["revert"], snap)
                back = log.wait_for_alive(30, after_line=before.line_no if before else 0)
                if _counter(at) <= _counter(back) <= _counter(at) + 2 and len(log.boots()) == boots:
                    times["Standard revert"][side].append(revert)
                else:
                    problems.append(
                        f"{side} run {i}: after the revert the guest counted {back.counter} (uptime {back.uptime}); "
                        f"it counted {at.counter} at the checkpoint, {_counter(before)} before the revert, and "
                        f"booted {len(log.boots()) - boots} time(s)"
                    )
                times["Standard delete (merge)"][side].append(_timed(ops["delete"], snap))
                problems += [f"{side} run {i}, Standard delete: {p}" for p in _problems_after_delete(conn, name)]

                # Production: the agent answering first (not timed), then create and delete (merge).
                prod = f"p{i}"
                _wait_agent(vm)
                if side == "by hand":
                    times["Production create"][side].append(_timed(hands.production, prod))
                    times["Production delete (merge)"][side].append(_timed(hands.production_delete, prod))
                else:
                    t0 = time.perf_counter()
                    taken = vm.snapshots.create(prod, kind="quiesced").after
                    took = time.perf_counter() - t0
                    if taken is not None and taken.kind is virtkit.SnapshotKind.QUIESCED:
                        quiesced["quiesced"] += 1
                        times["Production create"][side].append(took)
                    else:
                        quiesced["other"] += 1
                        problems.append(f"virtkit run {i}: the Production checkpoint is {taken and taken.kind.value}")
                    times["Production delete (merge)"][side].append(_timed(vm.snapshots.delete, prod))
                problems += [f"{side} run {i}, Production delete: {p}" for p in _problems_after_delete(conn, name)]
    finally:
        host.close()
        conn.close()
        _remove(uri, names)
    return times, problems, quiesced


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs per side (medians are reported)")
    parser.add_argument("--only", choices=("bios", "gen2"), help="run one of the two benchmarks")
    args = parser.parse_args()

    lab = daemons.up(1)[0]
    status = 0
    if args.only in (None, "bios"):
        times = _bios(lab.uri, args.runs)
        print(f"lab host {lab.uri}, TCG guest with 256 MiB, {args.runs} runs per side, medians (min-max)\n")
        _table(times, "virsh", "virsh")
    if args.only in (None, "gen2"):
        times, problems, quiesced = _gen2(lab.uri, args.runs)
        print(f"\nGeneration 2 (UEFI, q35, TCG, 256 MiB) on {lab.uri}, {args.runs} runs per side, medians (min-max)\n")
        _table(times, "by hand", "by hand (virsh, qemu-img, cp)")
        print("\n| create | Standard | Production | Production / Standard |")
        print("|---|---|---|---|")
        for side in ("by hand", "virtkit"):
            standard = times["Standard create"][side]
            production = times["Production create"][side]
            ratio = statistics.median(production) / statistics.median(standard) if standard and production else None
            shown = f"{ratio:.2f}" if ratio is not None else "-"
            print(f"| {side} | {_cell(standard)} | {_cell(production)} | {shown} |")
        reverts = {side: len(times["Standard revert"][side]) for side in GEN2_VMS}
        print(
            f"\nreverts back at the checkpoint: by hand {reverts['by hand']} of {args.runs}, virtkit "
            f"{reverts['virtkit']} of {args.runs}; virtkit Production checkpoints quiesced: {quiesced['quiesced']} of "
            f"{quiesced['quiesced'] + quiesced['other']}"
        )
        for problem in problems:
            print(f"PROBLEM: {problem}", file=sys.stderr)
        status = 1 if problems else 0
    return status


if __name__ == "__main__":
    sys.exit(main())
