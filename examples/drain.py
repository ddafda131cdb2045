"""Drain a host for maintenance: move every VM off it to other hosts, two at a time, and say what moved where.

Running VMs move live, paused ones with a quick migration, stopped ones offline (their definitions). With the lab
(`virtkit lab up --hosts 3` prints the URIs) the shared directory plays the cluster shared volume:

    .venv/bin/python examples/drain.py qemu+tcp://127.0.0.2:16509/system \\
        --to qemu+tcp://127.0.0.3:16509/system --to qemu+tcp://127.0.0.4:16509/system \\
        --shared /var/lib/virtkit/shared

Add --check to see where each VM would go without moving anything. Ctrl-C cancels the migrations under way; those
VMs go on where they were.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from contextlib import ExitStack
from pathlib import Path

import virtkit


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="libvirt URI of the host to drain")
    parser.add_argument("--to", dest="targets", action="append", required=True, help="libvirt URI of a destination")
    parser.add_argument("--shared", type=Path, action="append", default=[], help="a directory every host sees")
    parser.add_argument("--max-concurrent", type=int, default=2, help="migrations at once")
    parser.add_argument("--check", action="store_true", help="say where each VM would go, move nothing")
    args = parser.parse_args()

    cancel = threading.Event()
    signal.signal(signal.SIGINT, lambda _signum, _frame: cancel.set())

    def done(name: str, outcome: virtkit.MigrationResult | virtkit.VirtkitError) -> None:
        if isinstance(outcome, virtkit.VirtkitError):
            print(f"{name}: not moved: {outcome}")
        else:
            how = "would move" if outcome.check else "moved"
            print(f"{name}: {how} {outcome.mode.value} to {outcome.destination} ({outcome.total_time:.1f} s)")

    with ExitStack() as stack:
        source = stack.enter_context(virtkit.connect(args.source))
        targets = [stack.enter_context(virtkit.connect(uri)) for uri in args.targets]
        try:
            result = virtkit.drain(
                source,
                targets,
                max_concurrent=args.max_concurrent,
                shared_storage=args.shared,
                on_done=done,
                cancel=cancel,
                check=args.check,
            )
        except virtkit.DrainIncomplete as exc:
            result = exc.result
    for name, reason in result.skipped:
        print(f"{name}: left on the host: {reason}")
    print(f"{len(result.moved)} moved, {len(result.failed)} failed, {len(result.skipped)} skipped")
    return 0 if result.complete else 1


if __name__ == "__main__":
    sys.exit(main())
