"""Print the lifecycle events (defined, started, suspended, resumed, stopped, ...) of every VM on a host.

.venv/bin/python examples/watch_events.py --uri qemu+tcp://127.0.0.2:16509/system --seconds 60
"""

from __future__ import annotations

import argparse
import sys
import time

import virtkit


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uri", default="qemu:///system", help="libvirt URI of the host")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to watch")
    args = parser.parse_args()

    with virtkit.connect(args.uri) as host:
        sub = host.subscribe(lambda e: print(f"{e.host} {e.vm}: {e.event} ({e.detail})", flush=True))
        try:
            time.sleep(args.seconds)
        finally:
            sub.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
