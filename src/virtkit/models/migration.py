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
    "Convergence",
    "JobStats",
    "Location",
    "MigrationMode",
    "MigrationProgress",
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


class Convergence(StrEnum):
    """What helps a live migration of a busy guest finish.

    ``auto-converge`` slows the guest's vCPUs down step by step while it dirties memory faster than it can be sent;
    ``postcopy`` lets the completion timeout switch to post-copy (the guest runs on the destination at once and
    fetches the pages it lacks from the source); ``none`` relies on the downtime ramp alone.
    """

    NONE = "none"
    AUTO_CONVERGE = "auto-converge"
    POSTCOPY = "postcopy"


class TimeoutAction(StrEnum):
    """What happens when a live migration runs past its completion timeout.

    ``abort`` cancels it (the VM goes on on the source); ``force`` completes it: by switching to post-copy when
    :class:`Convergence` is ``postcopy``, else by pausing the guest on the source for the final copy (a longer
    downtime, but it ends).
    """

    ABORT = "abort"
    FORCE = "force"


#: libvirt's ceiling for a bandwidth cap with QEMU, in MiB/s: the rate in bytes must fit a signed 64-bit integer.
MAX_BANDWIDTH = (2**63 - 1) // MiB
#: QEMU's ceiling for the maximum downtime, in milliseconds (2000 s).
MAX_DOWNTIME = 2_000_000
#: The most steps of the downtime ramp (the whole schedule is computed up front).
MAX_DOWNTIME_STEPS = 1000


@dataclasses.dataclass(frozen=True)
class MigrationTuning(Spec):
    """How a live migration is run. The defaults suit an idle guest (the first, lowest downtime is enough) and let
    a busy one converge (auto-converge, and a downtime allowance that grows to ``downtime_max``).

    Fields that are durations scale with the data to move, as Nova does: a 4 GiB guest gets four times the time
    of a 1 GiB one before the next downtime step or the completion timeout.

    Auto-converge takes ``throttle_initial`` percent of vCPU time from a guest that dirties memory faster than it is
    sent, and ``throttle_increment`` more at each later pass that still does not keep up. QEMU's own 20 and 10 need
    nine passes to reach its 99 % ceiling; on the lab a guest rewriting its memory converged only there (see
    docs/benchmarks.md), so virtkit gets there in four.

    :raises InvalidSpec: a field out of range, NaN or infinite, or of the wrong type (the field is named), or
        ``downtime_max`` below ``downtime_start``.
    """

    bandwidth: int | None = spec_field(
        "transfer cap in MiB/s; none for no cap", default=None, minimum=1, maximum=MAX_BANDWIDTH
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
    convergence: Convergence = spec_field(
        "what helps a busy guest's migration finish: none, auto-converge or postcopy",
        default=Convergence.AUTO_CONVERGE,
    )
    throttle_initial: int = spec_field(
        "auto-converge: percent of vCPU time taken at first", default=40, minimum=1, maximum=99
    )
    throttle_increment: int = spec_field(
        "auto-converge: percent more at each later pass", default=20, minimum=1, maximum=99
    )
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
        "what the completion timeout does: abort, or force (post-copy, or a paused final copy)",
        default=TimeoutAction.ABORT,
    )

    def __post_init__(self) -> None:
        normalize(self)
        if self.downtime_max < self.downtime_start:
            raise InvalidSpec(
                "downtime_max", f"{self.downtime_max} ms is below downtime_start ({self.downtime_start} ms)"
            )


#: The shortest time between two steps of the downtime ramp, whatever the data size.
MIN_STEP_INTERVAL = 1.0

#: The lowest maximum downtime used for a guest under TCG (software emulation), in milliseconds: QEMU 7.2's own
#: default. Measured on the lab (QEMU 7.2, 10 MiB/s cap, idle 128 MiB guest): with 50 ms, the guest crashed right
#: after the switch-over (stale memory: a kernel oops in a timer) in 4 of 6 plain ``virsh migrate`` runs and 3 of 6
#: virtkit runs; with 300 ms, in none of 18 (6 virsh, 12 virtkit). KVM tracks dirty memory in hardware instead.
TCG_MIN_DOWNTIME = 300


def downtime_schedule(data: int, tuning: MigrationTuning, *, floor: int = 0) -> tuple[tuple[float, int], ...]:
    """The downtime ramp: ``(seconds after the start, maximum downtime in ms)`` pairs, in time order.

    The first pair is ``(0, downtime_start)``; then ``downtime_steps`` equal steps up to ``downtime_max``, one every
    ``downtime_delay`` seconds per GiB of ``data`` (bytes to move), but at least :data:`MIN_STEP_INTERVAL` apart.
    No step is below ``floor`` milliseconds (see :data:`TCG_MIN_DOWNTIME`).
    """
    interval = max(MIN_STEP_INTERVAL, tuning.downtime_delay * data / GiB)
    span = tuning.downtime_max - tuning.downtime_start
    steps = tuning.downtime_steps
    return tuple((i * interval, max(floor, tuning.downtime_start + round(span * i / steps))) for i in range(steps + 1))


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
    #: ``precopy``, ``postcopy``, ``saving``, ``restoring`` or ``copying`` (disks of an offline migration).
    phase: str = "precopy"
    #: The maximum downtime allowed now (the ramp's current step), in seconds.
    max_downtime: float | None = None
    #: The share of vCPU time auto-converge takes from the guest now, in percent (``None`` while it does not).
    throttle: int | None = None

    @property
    def fraction(self) -> float | None:
        """How much of the data is sent, from 0 to 1 (``None`` before the total is known)."""
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
