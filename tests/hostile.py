"""Hostile input for the property tests (tests/test_hostile_*.py): Hypothesis strategies for each class of bad value,
a world of hosts, VMs and hostile files to aim them at, and the property itself.

The property, for every public entry point: bad input raises a :class:`~virtkit.VirtkitError` (an
:class:`~virtkit.InvalidSpec` naming the field, for malformed values), whose message is short and printable; never
another exception, never a hang, and nothing changes (the domains of every host, their definitions, saved state and
snapshots, and the files of the storage root are the same before and after).
"""

from __future__ import annotations

import contextlib
import faulthandler
import math
import os
import re
import shutil
import signal
import struct
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import libvirt
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import virtkit
from virtkit.errors import InvalidSpec, VirtkitError

DATA = Path(__file__).parent / "data"

#: The longest message a refusal may have, and the longest field path.
MAX_MESSAGE = 500
MAX_FIELD = 120

#: Seconds one call may take before it counts as a hang.
HANG = 20


def hostile(max_examples: int) -> settings:
    """Hypothesis settings for a hostile-input test: reproducible (derandomized, no example database), no deadline
    per example (how fast a loaded machine parses 4 MiB of YAML is no property; a hang is caught by :func:`no_hang`
    instead), and the health checks that values meant to be huge (ints of 9,000 digits, 70,000-character strings,
    thousands of disks) trip switched off."""
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )


# -- values ----------------------------------------------------------------------------------------------------------

_NONCHARACTERS = [chr(0xFDD0 + i) for i in range(32)] + [
    chr(plane * 0x10000 + low) for plane in range(17) for low in (0xFFFE, 0xFFFF)
]
_REFUSED_CHAR = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff" + "".join(_NONCHARACTERS) + "]")

#: One character that text virtkit stores must never hold: C0 (NUL too) and C1 controls, DEL, lone surrogates and
#: Unicode non-characters.
bad_chars = st.one_of(
    st.integers(0, 0x1F).map(chr),
    st.integers(0x7F, 0x9F).map(chr),
    st.integers(0xD800, 0xDFFF).map(chr),
    st.sampled_from(_NONCHARACTERS),
)


_SHORT_TEXT = st.text(max_size=20)


#: :data:`bad_chars` but YAML's own white space (tab and the line breaks CR, LF and NEL): put into a YAML document
#: anywhere they may be syntax (a leading newline, a trailing tab), not text a field holds.
bad_yaml_chars = bad_chars.filter(lambda c: c not in "\t\n\r\x85")


def with_bad_char(
    base: st.SearchStrategy[str] = _SHORT_TEXT, chars: st.SearchStrategy[str] = bad_chars
) -> st.SearchStrategy[str]:
    """Strings of ``base`` with a bad character (one of ``chars``) put in somewhere."""
    return st.tuples(base, chars, st.integers(0, 40)).map(lambda t: t[0][: t[2]] + t[1] + t[0][t[2] :])


#: Integers too long to print: ``str()`` refuses more than 4300 digits.
huge_ints = st.integers(4400, 9000).flatmap(lambda n: st.sampled_from([10**n + 7, -(10**n)]))

#: Strings far longer than any field takes.
long_strings = st.integers(5000, 70_000).map(lambda n: "a" * n)

#: What is not text at all.
not_text = st.one_of(
    st.integers(-5, 5), huge_ints, st.floats(), st.just(b"bytes"), st.lists(st.integers(), max_size=3), st.just({})
)

#: Things that are not ``True`` or ``False`` but look like it somewhere: ``"no"`` is truthy in Python.
not_bools = st.one_of(
    st.sampled_from(["no", "yes", "false", "true", "off", "on", "0", "1", "", "False", "n"]),
    st.integers(-2, 2),
    huge_ints,
    st.floats(),
    st.sampled_from([None, [], {}, b"no", [False]]),
)


def bad_timeouts(*, allow_zero: bool = False) -> st.SearchStrategy[Any]:
    """Timeouts that are no finite, positive number of seconds below a year and a bit (NaN, infinities, negative,
    far too long, not a number)."""
    values: list[st.SearchStrategy[Any]] = [
        st.sampled_from([math.nan, math.inf, -math.inf, -1, -1e-9, 1e300, 10**8, 1e8]),
        st.floats(max_value=-1e-9),
        st.floats(min_value=1.1e7),
        st.integers(max_value=-1),
        st.integers(min_value=10**7 + 1),
        huge_ints,
        st.booleans(),
        st.sampled_from(["10", "1s", None, [], b"1", "nan"]),
    ]
    if not allow_zero:
        values.append(st.sampled_from([0, 0.0, -0.0]))
    return st.one_of(values)


def _fraction(whole: int, zeros: int, digit: int, unit: str) -> str:
    return f"{whole}.{'0' * zeros}{digit}{unit}"


#: Sizes that are no whole number of bytes in range: fractions of a byte (also below Decimal's 28 digits), more
#: digits than fit, NaN and infinity, unknown units, and numbers that are no sizes.
bad_sizes = st.one_of(
    st.builds(_fraction, st.integers(0, 10**6), st.integers(0, 60), st.integers(1, 9), st.sampled_from(["", "B"])),
    st.builds(
        _fraction,
        st.integers(0, 3),
        st.integers(1, 60),
        st.integers(1, 9),
        st.sampled_from(["K", "KiB", "mb", "G", "T"]),
    ),
    st.integers(31, 6000).map(lambda n: "9" * n),
    st.integers(31, 6000).map(lambda n: "1." + "0" * n + "1"),
    st.sampled_from(
        ["", " ", "1e3", "0x10", "-1", "+1", "1,5G", "1 PB", "inf", "nan", "NaN GiB", "1.", ".5", "1..2", "1GB1", "Ⅻ"]
    ),
    st.sampled_from(["\u0661\u0662", "1\u00bdK", "0", "0B", "0.0G"]),
    with_bad_char(st.just("1GiB")),
    st.floats(),
    st.integers(max_value=0),
    st.integers(min_value=64 * 1024**4 + 1),
    huge_ints,
    st.booleans(),
    st.sampled_from([[], {}, b"1G"]),
)

#: Valid names, for building bad ones around them.
names = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,20}\Z")

#: VM, snapshot and image names that are no names.
bad_names = st.one_of(
    with_bad_char(names),
    st.sampled_from(["", "-x", ".", "..", "_a", "a b", "a/b", "é", "a" * 64, "web1\n", "\uff57\uff45\uff42"]),
    long_strings,
    not_text,
    st.none(),
)


#: Paths that are malformed wherever they would point: empty or relative, with ``..``, with a character that means
#: something to XML, shells or QEMU, with a bad character, longer than 1024 characters, with a component longer than
#: 255 bytes (no file system holds it), or no text at all.
bad_paths = st.one_of(
    st.text(max_size=30).filter(lambda s: not s.startswith("/")),
    st.sampled_from(["/a/../etc/passwd", "/var/lib/virtkit/..", "/x/./../y", "//..", "/var/lib/virtkit/a/../../b"]),
    st.builds(lambda name, c: f"/var/lib/virtkit/{name}{c}", names, st.sampled_from(list(",<>&'\"`$;|*?\\=[]{}!~#%^"))),
    with_bad_char(st.just("/var/lib/virtkit/disk.qcow2")),
    st.integers(1025, 5000).map(lambda n: "/" + "a/" * (n // 2)),
    st.integers(256, 1000).map(lambda n: "/var/lib/virtkit/" + "b" * n),
    st.integers(128, 400).map(lambda n: "/var/lib/virtkit/" + "\xe9" * n),
    not_text,
)


def bad_enums(*valid: str) -> st.SearchStrategy[Any]:
    """Values that are none of the choices ``valid``."""
    return st.one_of(
        with_bad_char(st.sampled_from(valid)),
        st.text(max_size=12).filter(lambda s: s.lower() not in valid),
        long_strings,
        not_text.filter(lambda v: v not in valid),
    )


def bad_ints(low: int, high: int) -> st.SearchStrategy[Any]:
    """What is no integer from ``low`` to ``high``."""
    return st.one_of(
        st.integers(max_value=low - 1),
        st.integers(min_value=high + 1),
        huge_ints,
        st.floats(),
        st.booleans(),
        st.sampled_from([str(low), None, [], b"1"]),
    )


# -- the world they are aimed at -------------------------------------------------------------------------------------

#: In the storage root: things that are no image, no log, no saved state (see World), and a missing directory.
NOT_FILES = ["fifo", "dir", "to-etc", "to-zero", "to-fifo", "to-outside", "loop", "loop/x", "nodir/x"]
#: Images whose backing chain leaves the root, or whose data lives outside it.
CHAINED_OUT = ["backing-etc.qcow2", "backing-json.qcow2", "backing-nbd.qcow2", "backing-loop.qcow2", "external.qcow2"]
#: Outside the storage roots.
OUTSIDE = ["/etc/passwd", "/dev/zero", "/proc/self/mem", "/", "/etc/ssh/ssh_host_rsa_key", "/var/lib/other.qcow2"]


def places(*inside: str) -> st.SearchStrategy[tuple[str, Any]]:
    """Paths, each tagged: names in the storage root (``inside``, ``("in", name)``), places outside it and
    malformed paths (``("as", path)``). :meth:`World.path` turns them into the paths."""
    return st.one_of(
        st.sampled_from(list(inside)).map(lambda n: ("in", n)),
        st.sampled_from(OUTSIDE).map(lambda p: ("as", p)),
        bad_paths.map(lambda p: ("as", p)),
    )


def _qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


def saved_state(xml: str) -> bytes:
    """A saved-state file of libvirt's test driver holding the domain ``xml`` (its magic, length and XML)."""
    raw = xml.encode()
    return b"TestGuestMagic\0" + struct.pack("<i", len(raw)) + raw


class World:
    """Two test:// hosts (``a`` with VMs in every state, ``b`` empty) and a storage root full of hostile files.

    ``a`` has ``run1`` (running, with a snapshot ``snap1``, a NIC with a fixed MAC and a serial log), ``paused1``,
    ``off1`` (stopped, with a saved state in ``off1.save``) and the hand-made ``legacy1``. The storage root holds a
    FIFO, a directory, symlinks out of it, to a device and in a loop, images whose backing leaves it, images of
    each format, one not closed cleanly, text, bytes, and saved states forged to name files they must not.
    """

    def __init__(self, top: Path) -> None:
        self.top = top
        self.storage = top / "storage"
        self.outside = top / "outside"
        self.hosts: list[virtkit.Host] = []
        self._build()

    def _build(self) -> None:
        shutil.rmtree(self.top, ignore_errors=True)
        self.storage.mkdir(parents=True)
        self.outside.mkdir()
        s, out = self.storage, self.outside
        (out / "secret").write_text("outside the roots\n")
        os.mkfifo(s / "fifo")
        (s / "dir").mkdir()
        (s / "to-etc").symlink_to("/etc/passwd")
        (s / "to-zero").symlink_to("/dev/zero")
        (s / "to-fifo").symlink_to(s / "fifo")
        (s / "to-outside").symlink_to(out / "secret")
        (s / "loop").symlink_to(s / "loop")
        (s / "to-new").symlink_to(s / "new1.qcow2")  # where Host.create is asked to make a disk
        (s / "text.txt").write_text("just text\n")
        (s / "junk.bin").write_bytes(bytes(range(256)) * 16)
        _qemu_img("create", "-q", "-f", "qcow2", str(s / "image.qcow2"), "16M")
        _qemu_img("create", "-q", "-f", "raw", str(s / "image.raw"), "1M")
        _qemu_img("create", "-q", "-f", "vpc", str(s / "image.vhd"), "16M")
        _qemu_img("create", "-q", "-f", "qcow2", "-o", "cluster_size=512", str(s / "small-clusters.qcow2"), "16M")
        for name, backing in (
            ("backing-etc.qcow2", "/etc/passwd"),
            ("backing-json.qcow2", 'json:{"driver":"raw","file":{"driver":"file","filename":"/etc/passwd"}}'),
            ("backing-nbd.qcow2", "nbd://127.0.0.1:9/x"),
        ):
            _qemu_img("create", "-q", "-f", "qcow2", "-u", "-b", backing, "-F", "raw", str(s / name), "16M")
        loop = str(s / "backing-loop.qcow2")
        _qemu_img("create", "-q", "-f", "qcow2", loop, "16M")
        _qemu_img("rebase", "-q", "-u", "-f", "qcow2", "-b", loop, "-F", "qcow2", loop)
        external = str(s / "external.qcow2")
        _qemu_img("create", "-q", "-f", "qcow2", "-o", f"data_file={out / 'data.raw'}", external, "16M")
        self._dirty(s / "dirty.qcow2")
        a, b = self.top / "a.xml", self.top / "b.xml"
        shutil.copy(DATA / "node.xml", a)
        b.write_text("<node/>\n")
        self.hosts = [virtkit.connect(f"test://{x}", storage_roots=[s, Path("/var/lib/virtkit")]) for x in (a, b)]
        self._vms()
        self.baseline = self.state()

    @staticmethod
    def _dirty(path: Path) -> None:
        """A qcow2 image with small clusters (it holds at most 128 GiB) that was not closed cleanly: opening it for
        writing repairs it, in place."""
        _qemu_img("create", "-q", "-f", "qcow2", "-o", "cluster_size=512,lazy_refcounts=on", str(path), "16M")
        header = bytearray(path.read_bytes())
        (features,) = struct.unpack_from(">Q", header, 72)
        struct.pack_into(">Q", header, 72, features | 1)  # incompatible feature bit 0: dirty
        path.write_bytes(header)

    def _vms(self) -> None:
        a, s = self.hosts[0], self.storage
        for i, name in enumerate(("run1", "paused1", "off1")):
            a.create(
                {
                    "name": name,
                    "memory": "256MiB",
                    "disks": [{"path": str(s / f"{name}.qcow2"), "size": "16MiB"}],
                    "nics": [{"kind": "user", "mac": f"52:54:00:00:00:{i + 1:02x}"}],
                    "serial_log": str(s / f"{name}.log"),
                },
                start=True,
            )
        a.get("run1").snapshots.create("snap1")
        a.get("paused1").pause()
        a.get("off1").save(s / "off1.save")
        xml = a._backend.conn.lookupByName("off1").XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE)  # type: ignore[attr-defined]
        for name, old, new in (
            ("forged-etc.save", str(s / "off1.qcow2"), "/etc/shadow"),
            ("forged-fifo.save", str(s / "off1.qcow2"), str(s / "fifo")),
            ("forged-log.save", str(s / "off1.log"), str(s / "image.qcow2")),
            ("forged-backing.save", str(s / "off1.qcow2"), str(s / "backing-etc.qcow2")),
        ):
            assert old in xml
            (s / name).write_bytes(saved_state(xml.replace(old, new)))
        (s / "forged-garbage.save").write_bytes(b"TestGuestMagic\0" + struct.pack("<i", 2**31 - 1) + b"<dom")
        (s / "forged-negative.save").write_bytes(b"TestGuestMagic\0" + struct.pack("<i", -5) + b"<domain/>")

    def path(self, place: object) -> Any:
        """The path a tagged place of :func:`places` stands for; anything else as it is."""
        if isinstance(place, tuple) and len(place) == 2 and place[0] in ("in", "as"):
            return str(self.storage / place[1]) if place[0] == "in" else place[1]
        return place

    def rebuild(self) -> None:
        """Close the hosts and build everything again (after a test changed something)."""
        for host in self.hosts:
            host.close()
        self._build()

    @property
    def a(self) -> virtkit.Host:
        """The host with the VMs."""
        return self.hosts[0]

    @property
    def b(self) -> virtkit.Host:
        """The empty host."""
        return self.hosts[1]

    def state(self) -> object:
        """Everything a refused call must leave as it was: each host's domains (state, live and persistent
        definition, managed save, snapshots) and each file under the world's directory (type, size, time, link)."""
        domains = []
        for host in self.hosts:
            conn = host._backend.conn  # type: ignore[attr-defined]
            for dom in sorted(conn.listAllDomains(), key=lambda d: d.name()):
                persistent = dom.isPersistent()
                domains.append(
                    (
                        host.uri,
                        dom.name(),
                        dom.state()[0],
                        dom.XMLDesc(0),
                        dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) if persistent else None,
                        dom.hasManagedSaveImage() if persistent else None,
                        sorted((snap.getName(), snap.getXMLDesc()) for snap in dom.listAllSnapshots()),
                    )
                )
        files = []
        for where, dirs, names in os.walk(self.top):
            for name in sorted(dirs + names):
                path = Path(where) / name
                st_ = path.lstat()
                link = os.readlink(path) if path.is_symlink() else None
                files.append((str(path.relative_to(self.top)), st_.st_mode, st_.st_size, st_.st_mtime_ns, link))
        return domains, sorted(files)

    def check_unchanged(self) -> None:
        """Fail (after rebuilding the world, so later examples start clean) if anything changed."""
        now = self.state()
        if now != self.baseline:
            before, after = self.baseline, now
            self.rebuild()
            raise AssertionError(f"state changed:\n before={_diff(before, after)}")


def aimed(world: World, call: Callable[[], object], field: str | None, kind: type[VirtkitError] = VirtkitError) -> None:
    """The property for a call at the world: ``call`` is refused (see :func:`refused`) and nothing changed."""
    try:
        refused(call, field=field, kind=kind)
    finally:
        world.check_unchanged()


def _diff(before: Any, after: Any) -> str:
    b_domains, b_files = before
    a_domains, a_files = after
    lines = [f"domain {x[:3]}" for x in set(map(repr, b_domains)) ^ set(map(repr, a_domains))]
    lines += [f"file {x}" for x in sorted(set(b_files) ^ set(a_files))]
    return "\n".join(lines)[:4000]


@contextlib.contextmanager
def world_at(top: Path) -> Iterator[World]:
    """A :class:`World` under ``top``, closed afterwards."""
    world = World(top)
    try:
        yield world
    finally:
        for host in world.hosts:
            host.close()


# -- the property ----------------------------------------------------------------------------------------------------


class Hang(BaseException):
    """A call ran longer than :data:`HANG` seconds."""


@contextlib.contextmanager
def no_hang(seconds: float = HANG) -> Iterator[None]:
    """Raise :class:`Hang` in a call that blocks past ``seconds``; and should the call be stuck where Python cannot
    interrupt it (inside C), dump every thread's stack and end the run a little later rather than wait forever."""

    def alarm(_signum: int, _frame: FrameType | None) -> None:
        raise Hang(f"the call did not return within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    faulthandler.dump_traceback_later(seconds * 3, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def printable(text: str) -> bool:
    """Whether ``text`` holds none of the characters virtkit refuses in text (see :data:`bad_chars`)."""
    return _REFUSED_CHAR.search(text) is None


def field_matches(field: str, expected: str) -> bool:
    """Whether the field path ``field`` is ``expected`` or lies below it (``disks[0].path`` below ``disks``)."""
    return field == expected or field.startswith((f"{expected}.", f"{expected}["))


def refused(
    call: Callable[[], object],
    *,
    field: str | None = None,
    kind: type[VirtkitError] = VirtkitError,
) -> VirtkitError:
    """Call ``call`` and check the property: it raises a ``kind`` (an :class:`InvalidSpec` for ``field``, when
    given, naming it or a field below it), with a short, printable message; it returns within :data:`HANG`.

    Any other exception propagates: that is the failure to find.
    """
    try:
        with no_hang():
            result = call()
    except VirtkitError as exc:
        message = str(exc)
        assert len(message) <= MAX_MESSAGE, f"a message of {len(message)} characters: {message[:200]!a}..."
        assert printable(message), f"an unprintable message: {message[:MAX_MESSAGE]!a}"
        assert isinstance(exc, kind), f"{type(exc).__name__}, not {kind.__name__}: {message}"
        if field is not None:
            assert isinstance(exc, InvalidSpec), f"{type(exc).__name__}, not InvalidSpec for {field}: {message}"
            assert field_matches(exc.field, field), f"field {exc.field!a}, not {field}: {message}"
        if isinstance(exc, InvalidSpec):
            assert len(exc.field) <= MAX_FIELD and printable(exc.field), f"field {exc.field[:200]!a}"
        return exc
    raise AssertionError(f"accepted, returning {result!r:.300}")
