"""Ansible task overhead on a lab host, in the same run:

1. Define and start one VM: a playbook with one ``virtkit.kvm.vm`` task, against community.libvirt's ``virt`` module
   (``command: define`` with the same domain XML, then ``state: running``: two tasks, as its users write it), and
   against ``virsh define`` + ``virsh start`` (the raw tool, no Ansible).
2. Twenty VMs over two hosts (defined, not started, so that twenty TCG guests do not load the 2-core machine):
   ``virtkit apply`` of a site file against a playbook of twenty ``virtkit.kvm.vm`` tasks.

Each measurement is the wall-clock time of the whole command (``ansible-playbook`` or ``virtkit apply``), medians
over the runs, runs interleaved. community.libvirt is not in ansible-core: give the directory that holds its
``ansible_collections`` (extracted from the ``ansible`` package's wheel) and one with ``lxml``, which its ``virt``
module needs to define a VM:

    .venv/bin/pip download ansible==12.3.0 --no-deps -d /tmp/ansdl
    unzip -q /tmp/ansdl/ansible-12.3.0-py3-none-any.whl 'ansible_collections/community/libvirt/*' -d /tmp/commlibvirt
    .venv/bin/pip install --target /tmp/benchlib lxml
    .venv/bin/python bench/ansible_tasks.py --community /tmp/commlibvirt --lxml /tmp/benchlib --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import libvirt
import yaml

import virtkit
from virtkit.lab import daemons

_BIN = Path(sys.executable).parent
_COLLECTIONS = Path(virtkit.__file__).parent.parent


def _spec(name: str, storage: Path) -> dict[str, Any]:
    return {"name": name, "memory": "128MiB", "disks": [{"path": str(storage / f"{name}.qcow2"), "size": "16MiB"}]}


def _playbook(work: Path, tasks: list[dict[str, Any]], pythonpath: str = "") -> float:
    """Seconds ``ansible-playbook`` takes to run ``tasks`` on localhost (it must succeed)."""
    book = work / f"{uuid.uuid4().hex[:8]}.yml"
    play = {"hosts": "localhost", "gather_facts": False, "tasks": tasks}
    book.write_text(yaml.safe_dump([play], sort_keys=False))
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": "/nonexistent/ansible.cfg",
        "ANSIBLE_HOME": str(work / "home"),
        "ANSIBLE_COLLECTIONS_PATH": os.pathsep.join(
            p for p in (str(_COLLECTIONS), os.environ.get("COMMUNITY", "")) if p
        ),
        "PYTHONPATH": pythonpath,
    }
    cmd = [str(_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local"]
    cmd += ["-e", json.dumps({"ansible_python_interpreter": sys.executable}), str(book)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=900)
    took = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"ansible-playbook failed:\n{done.stdout}\n{done.stderr}")
    return took


def _commands(*cmds: list[str], ok: tuple[int, ...] = (0,)) -> float:
    """Seconds the commands take, one after the other (each must exit with a code in ``ok``)."""
    t0 = time.perf_counter()
    for cmd in cmds:
        done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=900)
        if done.returncode not in ok:
            raise SystemExit(f"{cmd[0]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - t0


def _remove(uri: str, names: list[str]) -> None:
    with virtkit.connect(uri) as host:
        for name in names:
            if host.exists(name):
                host.get(name).delete(storage=True, force=True)


def one_vm(uri: str, storage: Path, work: Path, lxml: str, runs: int) -> list[str]:
    ours, theirs, raw = [], [], []
    conn = libvirt.open(uri)
    try:
        for i in range(runs):
            name = f"bans-{uuid.uuid4().hex[:6]}"
            spec = _spec(name, storage)
            ours.append(_playbook(work, [{"virtkit.kvm.vm": {"uri": uri, "name": name, "spec": spec}}]))
            xml = conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
            _remove(uri, [name])
            for who in ("community", "virsh"):
                other = f"{name}-{who[0]}"
                with virtkit.connect(uri) as host:  # the same disk image, made outside the timing
                    virtkit.images.create(storage / f"{other}.qcow2", "16MiB", roots=host.storage.roots)
                text = xml.replace(f"<name>{name}</name>", f"<name>{other}</name>")
                text = text.replace(f"{name}.qcow2", f"{other}.qcow2")
                text = "\n".join(line for line in text.splitlines() if "<uuid>" not in line)
                if who == "community":
                    tasks = [
                        {"community.libvirt.virt": {"command": "define", "xml": text, "uri": uri}},
                        {"community.libvirt.virt": {"name": other, "state": "running", "uri": uri}},
                    ]
                    theirs.append(_playbook(work, tasks, pythonpath=lxml))
                else:
                    path = work / f"{other}.xml"
                    path.write_text(text)
                    virsh = ["virsh", "-c", uri]
                    raw.append(_commands([*virsh, "define", str(path)], [*virsh, "start", other]))
                _remove(uri, [other])
            print(f"run {i + 1}: virtkit.kvm.vm {ours[-1]:.2f} s, virt {theirs[-1]:.2f} s, virsh {raw[-1]:.2f} s")
    finally:
        conn.close()
    o, t, r = (statistics.median(x) for x in (ours, theirs, raw))
    return [
        "| define and start one VM | median s |",
        "|---|---|",
        f"| `virtkit.kvm.vm` (1 task) | {o:.2f} |",
        f"| community.libvirt `virt` (define, running: 2 tasks) | {t:.2f} |",
        f"| `virsh define` + `virsh start` (no Ansible) | {r:.2f} |",
        f"| ratio virtkit / community.libvirt | {o / t:.2f} |",
        f"| ratio virtkit / virsh | {o / r:.2f} |",
    ]


def twenty_vms(uris: list[str], storage: Path, work: Path, runs: int, count: int) -> list[str]:
    applied, played = [], []
    for i in range(runs):
        names = [f"b20-{uuid.uuid4().hex[:5]}-{n}" for n in range(count)]
        hosts = {f"h{k + 1}": {"uri": u} for k, u in enumerate(uris)}
        vms = [
            {"name": n, "host": f"h{k % len(uris) + 1}", "state": "stopped", "spec": _spec(n, storage)}
            for k, n in enumerate(names)
        ]
        site = work / "site.yml"
        site.write_text(yaml.safe_dump({"hosts": hosts, "vms": vms}, sort_keys=False))
        cmd = [sys.executable, "-m", "virtkit.cli.main", "apply", str(site)]
        applied.append(_commands(cmd, ok=(2,)))  # 2: changes made
        for k, u in enumerate(uris):
            _remove(u, names[k :: len(uris)])
        tasks = [
            {"virtkit.kvm.vm": {"uri": uris[k % len(uris)], "name": n, "state": "stopped", "spec": _spec(n, storage)}}
            for k, n in enumerate(names)
        ]
        played.append(_playbook(work, tasks))
        for k, u in enumerate(uris):
            _remove(u, names[k :: len(uris)])
        print(f"run {i + 1}: virtkit apply {applied[-1]:.2f} s, playbook {played[-1]:.2f} s")
    a, p = statistics.median(applied), statistics.median(played)
    return [
        f"| {count} VMs on {len(uris)} hosts (defined, disks made) | median s |",
        "|---|---|",
        f"| `virtkit apply site.yml` | {a:.2f} |",
        f"| playbook of {count} `virtkit.kvm.vm` tasks | {p:.2f} |",
        f"| ratio apply / playbook | {a / p:.2f} |",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--community", type=Path, required=True, help="directory holding community.libvirt")
    parser.add_argument("--lxml", type=Path, required=True, help="directory holding lxml (pip install --target)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--vms", type=int, default=20)
    args = parser.parse_args()
    os.environ["COMMUNITY"] = str(args.community)
    lab = daemons.up(2)
    uris = [h.uri for h in lab]
    from virtkit.lab.paths import shared_dir

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = one_vm(uris[0], shared_dir(), work, str(args.lxml), args.runs)
        rows += ["", *twenty_vms(uris, shared_dir(), work, max(1, args.runs // 2), args.vms)]
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
