"""Migration in neutral terms: the modes, the tuning, what a running migration reports, and where a VM is.

| Hyper-V                                  | virtkit                                                        |
|------------------------------------------|----------------------------------------------------------------|
| Live Migration (cluster shared volume)   | mode ``live``: memory moves, the disks stay on shared storage  |
| Move-VM -IncludeStorage (shared nothing) | mode ``live-storage``: memory and disks move while it runs     |
| Quick Migration                          | mode ``quick``: save on the source, restore on the destination |
| Move-VM of a VM that is off              | mode ``offline``: the definition moves, and the disks if asked |

The pure rules that drive a migration (the downtime ramp, the completion timeout) live here too, so they can be
read and tested without a hypervisor.
"""

from __future__ import annotations

import dataclasses
from enum import StrEnum

from virtkit.errors import InvalidSpec
from virtkit.models._fields import Spec, normalize, spec_field
from virtkit.units import GiB, MiB
from virtkit.validate import MAX_TIMEOUT

__all__ = [
    "MAX_BANDWIDTH",
    "MAX_DOWNTIME",
    "MAX_DOWNTIME_STEPS",
    "Compression",
    "Escalated",
    "JobStats",
    "Location",
    "MigrationMode",
    "MigrationProgress",
    "MigrationStrategy",
    "MigrationTuning",
    "Presence",
    "TimeoutAction",
    "completion_timeout",
    "downtime_schedule",
]


class MigrationMode(StrEnum):
    """How a VM moves (see the table in the module's docstring)."""

    LIVE = "live"
    LIVE_STORAGE = "live-storage"
    QUICK = "quick"
    OFFLINE = "offline"


class MigrationStrategy(StrEnum):
    """How a live migration copies memory.

    ``precopy`` copies it while the guest runs, then resends what the guest dirtied, pass after pass, until the
    rest fits in the allowed downtime (escalating as :class:`MigrationTuning` says). ``postcopy`` moves the guest
    to the destination at once and copies its memory afterwards, on demand and in the background: it always ends,
    but until it does the guest depends on both hosts. ``stopped`` pauses the guest, copies everything, and resumes
    it on the destination: the longest downtime, but the memory never changes under the copy. ``auto`` is
    ``precopy`` wherever the hypervisor tracks the guest's dirty memory soundly, and otherwise ``postcopy`` if it is
    allowed, else ``stopped`` (QEMU before 9.0 under TCG, software emulation: see docs/platform.md).
    """

    AUTO = "auto"
    PRECOPY = "precopy"
    POSTCOPY = "postcopy"
    STOPPED = "stopped"


class Compression(StrEnum):
    """How pages sent again are compressed.

    ``xbzrle`` keeps a cache of the pages sent and sends only what changed in a page (QEMU's XBZRLE): it helps a
    guest that rewrites part of its pages, costs the source CPU time and cache memory, and cannot be combined with
    parallel connections. ``none`` sends pages whole. ``auto`` is ``xbzrle`` on one connection and ``none`` on
    several.
    """

    AUTO = "auto"
    XBZRLE = "xbzrle"
    NONE = "none"


class TimeoutAction(StrEnum):
    """What happens when a live migration runs past its completion timeout, or stops making progress with every
    other step of the escalation taken.

    ``abort`` cancels it (the VM goes on on the source); ``force`` completes it: by switching to post-copy when
    ``postcopy`` is allowed, else by pausing the guest on the source for the final copy (a downtime beyond
    ``downtime_max``, but it ends).
    """

    ABORT = "abort"
    FORCE = "force"


#: libvirt's ceiling for a bandwidth cap with QEMU, in MiB/s: the rate in bytes must fit a signed 64-bit integer.
MAX_BANDWIDTH = (2**63 - 1) // MiB
#: QEMU's ceiling for the maximum downtime, in milliseconds (2000 s).
MAX_DOWNTIME = 2_000_000
#: The most steps of the downtime ramp (the whole schedule is computed up front).
MAX_DOWNTIME_STEPS = 1000


#: The XBZRLE cache sizes ``xbzrle_cache`` chooses from when it is left to virtkit, in MiB.
XBZRLE_CACHE_MIN, XBZRLE_CACHE_MAX = 64, 1024


@dataclasses.dataclass(frozen=True)
class MigrationTuning(Spec):
    """How a live migration is run. The defaults move an idle guest at the first, lowest downtime, and make a busy
    one finish by escalating (see :class:`~virtkit.ops.migration.escalation.Escalation`):

    1. the maximum downtime is raised along a ramp, from ``downtime_start`` to ``downtime_max``;
    2. auto-converge takes ``throttle_initial`` percent of the guest's vCPU time, ``throttle_increment`` more at each
       pass that still does not keep up (QEMU caps it at 99 %);
    3. pages sent again are compressed (``compression``);
    4. when ``stall_passes`` passes in a row do not shrink what is left to send, the downtime allowance is doubled
       (up to ``downtime_max``);
    5. at the completion timeout, or when nothing is left to raise and it still does not shrink, ``on_timeout``
       decides: ``force`` switches to post-copy if ``postcopy`` allows it, else pauses the guest for the final copy;
       ``abort`` cancels the migration and the VM goes on where it was.

    To cap the downtime strictly, set ``downtime_max``, ``on_timeout="abort"`` and ``strategy="precopy"`` (the
    switch to post-copy pauses the guest once, for as long as the hypervisor needs: about 100 ms for a busy guest
    under TCG); to keep the VM independent of the source at every moment, ``postcopy=False`` (in post-copy the
    guest runs on the destination while part of its memory is still on the source: if the source dies then, the
    guest is lost).

    Durations scale with the data to move, as Nova does: a 4 GiB guest gets four times the time of a 1 GiB one
    before the next downtime step or the completion timeout.

    :raises InvalidSpec: a field out of range, NaN or infinite, or of the wrong type (the field is named);
        ``downtime_max`` below ``downtime_start``; XBZRLE with parallel connections; ``strategy="postcopy"`` with
        post-copy forbidden.
    """

    bandwidth: int | None = spec_field(
        "transfer cap in MiB/s; none for no cap", default=None, minimum=1, maximum=MAX_BANDWIDTH
    )
    strategy: MigrationStrategy = spec_field(
        "how memory is copied: auto, precopy, postcopy or stopped", default=MigrationStrategy.AUTO
    )
    downtime_start: int = spec_field(
        "the maximum downtime (the guest paused for the final copy) allowed at first, in ms",
        default=50,
        minimum=1,
        maximum=MAX_DOWNTIME,
    )
    downtime_max: int = spec_field(
        "the ceiling the maximum downtime is raised to, in ms", default=500, minimum=1, maximum=MAX_DOWNTIME
    )
    downtime_steps: int = spec_field(
        "in how many equal steps it is raised from downtime_start to downtime_max",
        default=10,
        minimum=1,
        maximum=MAX_DOWNTIME_STEPS,
    )
    downtime_delay: float = spec_field(
        "seconds between two steps per GiB of data to move (at least one second)",
        default=20.0,
        above=0,
        maximum=MAX_TIMEOUT,
    )
    stall_passes: int = spec_field(
        "passes over memory in a row that shrink what is left by less than 5 % before the downtime is doubled",
        default=2,
        minimum=1,
        maximum=100,
    )
    auto_converge: bool = spec_field("slow the guest's vCPUs down while it dirties memory too fast", default=True)
    throttle_initial: int = spec_field(
        "auto-converge: percent of vCPU time taken at first", default=40, minimum=1, maximum=99
    )
    throttle_increment: int = spec_field(
        "auto-converge: percent more at each later pass", default=20, minimum=1, maximum=99
    )
    compression: Compression = spec_field(
        "how pages sent again are compressed: auto, xbzrle or none", default=Compression.AUTO
    )
    xbzrle_cache: int | None = spec_field(
        "the XBZRLE cache in MiB; none for a quarter of the guest's memory (64 to 1024 MiB)",
        default=None,
        minimum=1,
        maximum=MAX_BANDWIDTH,
    )
    connections: int = spec_field(
        "parallel connections that carry memory (QEMU's multifd); 1 for one stream", default=1, minimum=1, maximum=64
    )
    postcopy: bool = spec_field("allow post-copy (the guest depends on both hosts until it ends)", default=True)
    timeout_per_gib: float | None = spec_field(
        "the completion timeout in seconds per GiB of data to move; none for no timeout",
        default=300.0,
        above=0,
        maximum=MAX_TIMEOUT,
    )
    timeout_min: float = spec_field(
        "the completion timeout is never shorter than this, in seconds", default=60.0, minimum=0, maximum=MAX_TIMEOUT
    )
    on_timeout: TimeoutAction = spec_field(
        "what the completion timeout does: force (post-copy, or a paused final copy) or abort",
        default=TimeoutAction.FORCE,
    )

    def __post_init__(self) -> None:
        normalize(self)
        if self.downtime_max < self.downtime_start:
            raise InvalidSpec(
                "downtime_max", f"{self.downtime_max} ms is below downtime_start ({self.downtime_start} ms)"
            )
        if self.compression is Compression.XBZRLE and self.connections > 1:
            raise InvalidSpec(
                "compression",
                f"xbzrle cannot be combined with {self.connections} parallel connections: use none, or connections 1",
            )
        if self.strategy is MigrationStrategy.POSTCOPY and not self.postcopy:
            raise InvalidSpec("strategy", "postcopy, but post-copy is forbidden (postcopy is false)")

    @property
    def uses_xbzrle(self) -> bool:
        """Whether pages sent again are XBZRLE-compressed (``auto``: on one connection only)."""
        if self.compression is Compression.AUTO:
            return self.connections == 1
        return self.compression is Compression.XBZRLE

    @property
    def postcopy_usable(self) -> bool:
        """Post-copy is allowed and possible: QEMU before 8.1 cannot run it over parallel connections."""
        return self.postcopy and self.connections == 1

    def cache_size(self, memory: int) -> int:
        """The XBZRLE cache in bytes for a guest of ``memory`` bytes: ``xbzrle_cache``, or a quarter of the memory
        rounded down to a power of two within 64 MiB to 1 GiB (QEMU needs a power of two)."""
        if self.xbzrle_cache is not None:
            return self.xbzrle_cache * MiB
        quarter = max(1, memory // 4 // MiB)
        power = 1 << (quarter.bit_length() - 1)
        return min(XBZRLE_CACHE_MAX, max(XBZRLE_CACHE_MIN, power)) * MiB


#: The shortest time between two steps of the downtime ramp, whatever the data size.
MIN_STEP_INTERVAL = 1.0


def downtime_schedule(data: int, tuning: MigrationTuning) -> tuple[tuple[float, int], ...]:
    """The downtime ramp: ``(seconds after the start, maximum downtime in ms)`` pairs, in time order.

    The first pair is ``(0, downtime_start)``; then ``downtime_steps`` equal steps up to ``downtime_max``, one every
    ``downtime_delay`` seconds per GiB of ``data`` (bytes to move), but at least :data:`MIN_STEP_INTERVAL` apart.
    """
    interval = max(MIN_STEP_INTERVAL, tuning.downtime_delay * data / GiB)
    span = tuning.downtime_max - tuning.downtime_start
    steps = tuning.downtime_steps
    return tuple((i * interval, tuning.downtime_start + round(span * i / steps)) for i in range(steps + 1))


def completion_timeout(data: int, tuning: MigrationTuning) -> float | None:
    """Seconds a live migration of ``data`` bytes may take before ``tuning.on_timeout`` applies, or ``None``.

    ``timeout_per_gib`` seconds per GiB of data, never below ``timeout_min``. A bandwidth cap is not counted in:
    with a low cap, give a larger ``timeout_per_gib`` (at 10 MiB/s a GiB of memory takes at least 100 s to send).
    """
    if tuning.timeout_per_gib is None:
        return None
    return max(tuning.timeout_min, tuning.timeout_per_gib * data / GiB)


@dataclasses.dataclass(frozen=True)
class JobStats:
    """A migration (or save) job as the hypervisor reports it. Sizes in bytes, rates in bytes per second, times in
    seconds; ``None`` where the hypervisor did not say."""

    data_total: int | None = None
    data_processed: int | None = None
    data_remaining: int | None = None
    rate: int | None = None
    dirty_rate: int | None = None
    iteration: int | None = None
    #: For a running job, the downtime the hypervisor expects; for a completed one, the real downtime.
    downtime: float | None = None
    elapsed: float | None = None
    #: The share of vCPU time auto-converge takes from the guest now, in percent.
    throttle: int | None = None


@dataclasses.dataclass(frozen=True)
class MigrationProgress:
    """What a running migration reports to the ``progress`` callback, about four times a second."""

    data_total: int | None
    data_remaining: int | None
    data_processed: int | None
    #: Transfer rate, bytes per second.
    rate: int | None
    #: How fast the guest dirties memory, bytes per second.
    dirty_rate: int | None
    #: The pass over memory: 1 is the first full copy, later ones resend what the guest dirtied.
    iteration: int | None
    #: The downtime the hypervisor expects if it stopped the guest now, in seconds.
    expected_downtime: float | None
    #: Seconds since the migration started.
    elapsed: float
    #: ``precopy``, ``postcopy``, ``stopped`` (the guest paused, its memory copied), ``completing`` (the last
    #: copy and the switch-over, when the hypervisor no longer reports figures), ``saving``, ``restoring``,
    #: ``copying`` (disks of an offline migration), and ``done`` once, at the end of a move that succeeded.
    phase: str = "precopy"
    #: The maximum downtime allowed now (the ramp's current step), in seconds.
    max_downtime: float | None = None
    #: The share of vCPU time auto-converge takes from the guest now, in percent (``None`` while it does not).
    throttle: int | None = None

    @property
    def fraction(self) -> float | None:
        """How much of the data is sent, from 0 to 1 (``None`` before the total is known; 1 once ``done``)."""
        if self.phase == "done":
            return 1.0
        if not self.data_total or self.data_remaining is None:
            return None
        return min(1.0, max(0.0, 1 - self.data_remaining / self.data_total))


class Location(StrEnum):
    """Whether and how a VM is on one host, as far as migration cares."""

    ABSENT = "absent"  # no VM of that identity on the host
    DEFINED = "defined"  # defined, but not running (off, saved or crashed)
    RUNNING = "running"  # its vCPUs run
    PAUSED = "paused"  # present and stopped: by a user, by a migration's switch-over, or a failed post-copy
    UNKNOWN = "unknown"  # the host did not answer


@dataclasses.dataclass(frozen=True)
class Presence:
    """A VM on one host after (or during) a migration: where it is, and whether a job still runs on it."""

    location: Location
    #: The hypervisor says it is in, or failed in, post-copy.
    postcopy: bool = False
    #: A migration job still runs on it (the outcome is not decided yet).
    job_active: bool = False
    persistent: bool = False
    #: Post-copy broke off (the connection between the hosts dropped): the guest is paused on the destination and
    #: part of its memory is still on the source, until the post-copy is resumed.
    postcopy_failed: bool = False


@dataclasses.dataclass(frozen=True)
class Escalated:
    """One step a live migration's escalation took (see :class:`MigrationTuning`)."""

    #: Seconds after the start.
    elapsed: float
    #: ``downtime`` (the allowance was raised to ``value`` ms), ``postcopy``, ``pause`` (the guest paused for the
    #: final copy) or ``abort``.
    action: str
    #: ``ramp`` (the time-based ramp), ``stalled`` (passes stopped shrinking what is left), ``timeout`` (the
    #: completion timeout) or ``strategy`` (the chosen strategy, from the start).
    cause: str
    value: int | None = None
