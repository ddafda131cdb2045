"""First process of a lab host, run inside the host's new mount + UTS namespace.

:mod:`virtkit.lab.daemons` runs ``unshare --mount --uts --propagation private -- python -m virtkit.lab._nsinit
<config.json>``. This module bind-mounts the host's own state directories over libvirt's standard paths, sets the
host name and starts the daemons, each from an argument list. The daemons fork into the background (``-d``) and
keep the namespace alive after this process exits; the namespace and its mounts vanish with their last process.

The JSON configuration holds ``hostname`` (str), ``binds`` (list of ``[source, target]``), ``daemons`` (list of
argument lists, started in order) and ``outer`` (the caller's ``mnt`` and ``uts`` namespace ids, which this process
must not share). Exit status 0 means every daemon reported a successful start.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from virtkit.lab import _procs

__all__ = ["main"]


class _NsInitError(Exception):
    """A step failed; the message goes to stderr and the exit status is 1."""


def _ns(kind: str) -> str:
    return os.readlink(f"/proc/self/ns/{kind}")


def _check_private(outer: object) -> None:
    # The binds below must never land on the machine's own /etc/libvirt: refuse to run in the caller's namespace.
    if not isinstance(outer, dict):
        raise _NsInitError("malformed configuration: no outer namespaces")
    for kind in ("mnt", "uts"):
        if _ns(kind) == outer.get(kind):
            raise _NsInitError(f"still in the caller's {kind} namespace (run through unshare); refusing to mount")


def _bind(source: str, target: str) -> None:
    Path(target).mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "--bind", source, target], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise _NsInitError(f"mount --bind {source} {target} failed: {result.stderr.strip()}")


def _start(argv: list[str]) -> None:
    # With -d the daemon's first process returns once the daemon is initialised, or has failed.
    rc, output = _procs.run(argv, timeout=60)
    if rc != 0:
        raise _NsInitError(f"{' '.join(argv)} exited with status {rc}: {output}")


def run(config: dict[str, object]) -> None:
    """Set up the namespace described by ``config`` and start its daemons.

    :raises _NsInitError: not in a private namespace, a mount failed, or a daemon did not start.
    """
    _check_private(config.get("outer"))
    binds = config["binds"]
    daemons = config["daemons"]
    hostname = config["hostname"]
    if not isinstance(binds, list) or not isinstance(daemons, list) or not isinstance(hostname, str):
        raise _NsInitError("malformed configuration")
    for source, target in binds:
        _bind(str(source), str(target))
    socket.sethostname(hostname)
    for argv in daemons:
        _start([str(arg) for arg in argv])


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m virtkit.lab._nsinit CONFIG.json``; returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m virtkit.lab._nsinit CONFIG.json", file=sys.stderr)
        return 2
    try:
        config = json.loads(Path(args[0]).read_text())
        if not isinstance(config, dict):
            raise _NsInitError("configuration is not a JSON object")
        run(config)
    except (OSError, ValueError, subprocess.SubprocessError, _NsInitError) as exc:
        print(f"virtkit lab: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
