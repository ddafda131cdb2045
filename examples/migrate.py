"""Live-migrate a running VM to another host, printing its progress, and report how it ended: the strategy, each
step the escalation took (downtime raised, post-copy, a pause) and the downtime the guest saw.

With the lab (`virtkit lab up` prints the URIs) the shared directory plays the cluster shared volume:

    .venv/bin/python examples/migrate.py web1 --from qemu+tcp://127.0.0.2:16509/system \\
        --to qemu+tcp://127.0.0.3:16509/system --shared /var/lib/virtkit/shared

Ctrl-C cancels the migration; the VM then goes on where it was.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

import virtkit


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("vm", help="name of a running VM")
    parser.add_argument("--from", dest="source", required=True, help="libvirt URI of the host the VM is on")
    parser.add_argument("--to", dest="destination", required=True, help="libvirt URI of the host to move it to")
    parser.add_argument("--shared", type=Path, action="append", default=[], help="a directory both hosts see")
    parser.add_argument("--bandwidth", type=int, default=None, help="transfer cap in MiB/s")
    parser.add_argument("--strategy", default="auto", choices=[s.value for s in virtkit.MigrationStrategy])
    parser.add_argument("--no-postcopy", action="store_true", help="never depend on both hosts at once")
    args = parser.parse_args()

    cancel = threading.Event()
    signal.signal(signal.SIGINT, lambda _signum, _frame: cancel.set())

    def show(p: virtkit.MigrationProgress) -> None:
        done = f"{p.fraction:5.1%}" if p.fraction is not None else "  ..."
        sent = (p.data_processed or 0) / 2**20
        line = f"{p.elapsed:5.1f} s {p.phase:10} {done} sent {sent:6.0f} MiB, pass {p.iteration or '-'}"
        print(f"\r{line}", end="", flush=True)

    with virtkit.connect(args.source) as src, virtkit.connect(args.destination) as dst:
        tuning = virtkit.MigrationTuning(
            bandwidth=args.bandwidth, strategy=args.strategy, postcopy=not args.no_postcopy
        )
        try:
            result = src.get(args.vm).migrate(
                dst, tuning=tuning, shared_storage=args.shared, progress=show, cancel=cancel
            )
        except virtkit.MigrationFailed as exc:
            print(f"\nnot moved ({exc.cause}): {args.vm} runs on {exc.host or 'an unconfirmed host'}")
            return 1
    downtime = f"{result.downtime * 1000:.0f} ms" if result.downtime is not None else "unknown"
    print(f"\n{args.vm} now runs on {result.destination}: {result.total_time:.2f} s, downtime {downtime}")
    print(f"strategy {result.strategy}, post-copy {result.postcopy}, highest throttle {result.max_throttle or 0} %")
    for step in result.escalated:
        value = f" to {step.value} ms" if step.value is not None else ""
        print(f"  at {step.elapsed:5.1f} s: {step.action}{value} ({step.cause})")
    for note in result.notes:
        print(f"  note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
