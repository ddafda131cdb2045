"""Pure parts of the lab: host addressing and libvirt configuration files.

Nothing here touches a daemon or the file system, so all of it is unit-tested without root. The settings follow
``docs/platform.md`` ("Several hosts on one machine"); each choice is explained where it is made.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from virtkit.errors import LabError

__all__ = [
    "BASE_PORT",
    "MAX_HOSTS",
    "ConfValue",
    "format_value",
    "host_address",
    "host_name",
    "host_uri",
    "libvirtd_settings",
    "lockd_settings",
    "log_settings",
    "qemu_settings",
    "set_values",
]

#: libvirtd's TCP port on every lab host; one port is enough because each host listens on its own address.
BASE_PORT = 16509

#: Host ``N`` listens on ``127.0.0.(N+1)``; 127.0.0.1 is never used (libvirt refuses it as ``migration_host``).
MAX_HOSTS = 253

#: A value in libvirt's ``key = value`` configuration syntax.
ConfValue = str | int | bool | Sequence[str]

# Characters a libvirt configuration string cannot carry: its parser has no escapes.
_BAD_CHARS = re.compile(r'["\\\x00-\x1f\x7f]')


def host_name(index: int) -> str:
    """The name of lab host ``index`` (1-based): ``host1``, ``host2``, ...

    :raises LabError: ``index`` is outside ``1..MAX_HOSTS``.
    """
    _check_index(index)
    return f"host{index}"


def host_address(index: int) -> str:
    """The loopback address lab host ``index`` listens on: ``127.0.0.2`` for host 1, never ``127.0.0.1``.

    :raises LabError: ``index`` is outside ``1..MAX_HOSTS``.
    """
    _check_index(index)
    return f"127.0.0.{index + 1}"


def host_uri(address: str, port: int = BASE_PORT) -> str:
    """The libvirt URI clients use for a lab host: ``qemu+tcp://127.0.0.2:16509/system``."""
    return f"qemu+tcp://{address}:{port}/system"


def _check_index(index: int) -> None:
    if not 1 <= index <= MAX_HOSTS:
        raise LabError(f"lab host index {index} is outside 1..{MAX_HOSTS}")


def format_value(value: ConfValue) -> str:
    """Render ``value`` in libvirt's configuration syntax: ``"text"``, ``1``, ``[ "a", "b" ]``.

    Booleans become ``1``/``0``, as libvirt's own files write them.

    :raises LabError: a string holds a double quote, a backslash or a control character (libvirt's parser
        has no escapes, so such a value cannot be written faithfully).
    """
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _quote(value)
    return "[ " + ", ".join(_quote(item) for item in value) + " ]" if value else "[ ]"


def _quote(text: str) -> str:
    bad = _BAD_CHARS.search(text)
    if bad:
        raise LabError(f"cannot write {text!r} into a libvirt configuration file: it contains {bad.group()!r}")
    return f'"{text}"'


def _key_re(key: str, *, commented: bool) -> re.Pattern[str]:
    prefix = r"#[ \t]*" if commented else ""
    return re.compile(rf"^[ \t]*{prefix}{re.escape(key)}[ \t]*=(?P<value>.*)$")


def set_values(text: str, values: Mapping[str, ConfValue]) -> str:
    """Return ``text`` (a libvirt ``*.conf`` file) with each ``key = value`` of ``values`` set.

    For each key, in order of preference: the active ``key = ...`` line is replaced (with the continuation
    lines of a multi-line ``[ ... ]`` list); else the first commented-out ``#key = ...`` example is replaced
    in place, so the setting sits next to its documentation; else ``key = value`` is appended. Later
    duplicate active lines of the same key are removed, so the file says one thing. Everything else is kept.

    :raises LabError: a key is not a plain identifier, or a value cannot be written (see :func:`format_value`).
    """
    lines = text.splitlines()
    for key, value in values.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise LabError(f"{key!r} is not a libvirt configuration key")
        lines = _set_one(lines, key, f"{key} = {format_value(value)}")
    return "\n".join(lines) + "\n"


def _set_one(lines: list[str], key: str, new_line: str) -> list[str]:
    active = _key_re(key, commented=False)
    commented = _key_re(key, commented=True)
    out: list[str] = []
    placed = False
    i = 0
    while i < len(lines):
        line = lines[i]
        match = active.match(line)
        if match:
            i = _skip_list_continuation(lines, i, match.group("value"))
            if not placed:
                out.append(new_line)
                placed = True
            continue
        out.append(line)
        i += 1
    if placed:
        return out
    for n, line in enumerate(out):
        if commented.match(line):
            out[n] = new_line
            return out
    if out and out[-1].strip():
        out.append("")
    out.append(new_line)
    return out


def _skip_list_continuation(lines: list[str], i: int, value: str) -> int:
    """Index of the first line after the setting that starts at line ``i`` (whose value text is ``value``)."""
    i += 1
    if "[" in value and "]" not in value:
        while i < len(lines):
            closing = "]" in lines[i]
            i += 1
            if closing:
                break
    return i


def libvirtd_settings(*, address: str, port: int, host_uuid: str) -> dict[str, ConfValue]:
    """``libvirtd.conf`` of one lab host: plain TCP on its own loopback address, its own host UUID.

    ``auth_tcp = "none"`` is acceptable only because the address is loopback: a real deployment uses ssh or TLS.
    The UNIX sockets stay (they live in the host's own ``/run/libvirt``). A distinct ``host_uuid`` is what lets
    libvirt migrate between two daemons of one machine ("Attempt to migrate guest to the same host" otherwise).
    """
    return {
        "listen_tls": 0,
        "listen_tcp": 1,
        "tcp_port": str(port),
        "listen_addr": address,
        "auth_tcp": "none",
        "host_uuid": host_uuid,
        "log_outputs": "3:file:/var/log/libvirt/libvirtd.log",
    }


def qemu_settings(*, address: str, security_none: bool) -> dict[str, ConfValue]:
    """``qemu.conf`` of one lab host.

    - ``migration_address``/``migration_host``: incoming migrations listen on, and are announced as, the host's
      own loopback address (never a real interface).
    - ``user``/``group = "root"`` with ``dynamic_ownership = 0`` and ``remember_owner = 0``: every lab host sees
      the same shared directory, which is a local file system, so libvirt cannot tell it is shared. With the
      default ``libvirt-qemu`` user, the source host would restore the owner of a disk (and of its ownership
      xattrs) after a migration while the destination's QEMU still uses it. Running the lab's QEMU as root makes
      relabelling pointless, so it is switched off. Production hosts keep libvirt's defaults.
    - ``lock_manager = "lockd"``: virtlockd of each host takes leases in the shared lockspace, so one disk cannot
      be opened by two QEMUs on two hosts (see :func:`lockd_settings`).
    - ``security_driver = "none"`` when neither AppArmor nor SELinux is enabled on the machine, so libvirt does
      not depend on which driver its probe happens to pick; otherwise libvirt's default is kept.
    """
    settings: dict[str, ConfValue] = {
        "migration_address": address,
        "migration_host": address,
        "user": "root",
        "group": "root",
        "dynamic_ownership": 0,
        "remember_owner": 0,
        "lock_manager": "lockd",
    }
    if security_none:
        settings["security_driver"] = "none"
    return settings


def lockd_settings(*, lockspace: Path) -> dict[str, ConfValue]:
    """``qemu-lockd.conf``: a lease on every disk, required, kept in ``lockspace`` on the shared directory."""
    return {
        "auto_disk_leases": 1,
        "require_lease_for_disks": 1,
        "file_lockspace_dir": str(lockspace),
    }


def log_settings(daemon: str) -> dict[str, ConfValue]:
    """``virtlogd.conf``/``virtlockd.conf``: warnings and errors to a file in the host's own log directory."""
    return {"log_outputs": f"3:file:/var/log/libvirt/{daemon}.log"}
