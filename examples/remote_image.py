"""Create a disk image on the hypervisor host where its VM will run: qemu-img runs there, over SSH.

The host key is checked against the known_hosts file given (an unknown or changed key is refused, never added):

    .venv/bin/python examples/remote_image.py 192.0.2.10 /var/lib/libvirt/images/web1.qcow2 20GiB \\
        --key ~/.ssh/id_ed25519 --known-hosts ~/.ssh/known_hosts

With --lab HOST (host1, host2, ...), the virtkit lab's host of that name is used, through its own sshd:

    .venv/bin/python examples/remote_image.py --lab host1 /var/lib/libvirt/images/web1.qcow2 1GiB
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from virtkit import DiskFormat, SSHConfig, VirtkitError, images
from virtkit.remote.ssh import SSHFiles

ROOTS = [Path("/var/lib/libvirt/images"), Path("/var/lib/virtkit")]


def _config(args: argparse.Namespace) -> SSHConfig:
    if args.lab:
        from virtkit.lab import daemons

        found = [h for h in daemons.hosts() if h.name == args.lab]
        if not found:
            raise SystemExit(f"no lab host named {args.lab}; start the lab with `virtkit lab up`")
        return daemons.ssh_config(found[0])
    if not (args.host and args.key and args.known_hosts):
        raise SystemExit("give HOST, --key and --known-hosts (or --lab NAME)")
    return SSHConfig(
        host=args.host, port=args.port, user=args.user, key_file=args.key.expanduser(), known_hosts=args.known_hosts
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("host", nargs="?", help="the host's name or address (not with --lab)")
    parser.add_argument("path", type=Path, help="the image to create, an absolute path on that host")
    parser.add_argument("size", help="virtual size: bytes or 20GiB, 512MB, ...")
    parser.add_argument("--format", default="qcow2", choices=[f.value for f in DiskFormat], help="image format")
    parser.add_argument("--port", type=int, default=22)
    parser.add_argument("--user", default="root")
    parser.add_argument("--key", type=Path, help="private key file")
    parser.add_argument("--known-hosts", type=Path, help="the known_hosts file with the host's key")
    parser.add_argument("--lab", metavar="NAME", help="a virtkit lab host instead (host1, host2, ...)")
    args = parser.parse_args()

    try:
        config = _config(args)
        start = time.monotonic()
        with SSHFiles(config) as remote:
            print(f"connected to {remote.where} ({remote.hostname()}) in {time.monotonic() - start:.2f} s")
            made = images.create(args.path, args.size, args.format, roots=ROOTS, tool=remote, exist_ok=True)
            print(f"{made.path} on {remote.where}: {made.format}, {made.virtual_size} bytes")
            print(f"{remote.free_bytes(made.path.parent)} bytes free there")
    except VirtkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
