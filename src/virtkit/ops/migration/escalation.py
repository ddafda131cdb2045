"""The escalation of a live migration: what to raise, and when to force an end, from what the job reports.

Pure: :class:`Escalation` reads the elapsed time and the job's figures at each poll and answers with the actions
to take; the monitor (:mod:`virtkit.ops.migration.monitor`) carries them out. The rules, in order:

1. **The ramp.** The maximum downtime follows the time-based ramp (``downtime_schedule``).
2. **Stalls.** At each new pass over memory, what is left to send is compared with the least left at an earlier
   pass. A pass that shrinks it by less than :data:`PROGRESS`, while what is left would not fit in the allowed
   downtime (the hypervisor's own estimate), counts as stalled; after ``stall_passes`` stalled
   passes in a row the allowance is doubled (never above ``downtime_max``), as Proxmox does. Auto-converge raises
   the vCPU throttle by itself at each such pass.
3. **The last resort.** At the completion timeout, or when the passes still stall with the allowance at its ceiling
   and the throttle at QEMU's 99 % (or auto-converge off), the migration is ended: ``force`` switches to post-copy
   where allowed, else pauses the guest for the final copy; ``abort`` cancels it, and only at the timeout.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from virtkit.models.migration import JobStats

__all__ = ["PROGRESS", "THROTTLE_CEILING", "Action", "Escalation"]

#: A pass must shrink what is left to send by at least this share to count as progress.
PROGRESS = 0.05
#: QEMU's ceiling for auto-converge's throttle, in percent.
THROTTLE_CEILING = 99


@dataclasses.dataclass(frozen=True)
class Action:
    """What the monitor is to do: ``downtime`` (set the allowance to ``value`` ms) or ``end`` (the last resort)."""

    kind: str
    cause: str
    value: int | None = None


class Escalation:
    """The escalation state of one migration.

    :param ramp: ``(seconds after the start, maximum downtime in ms)`` steps, in time order.
    :param downtime_max: the ceiling doubling never exceeds, in ms.
    :param stall_passes: stalled passes in a row before the allowance is doubled.
    :param timeout: the completion timeout in seconds, or ``None``.
    :param auto_converge: whether the hypervisor throttles the guest (else the throttle is not waited for).
    :param force: the last resort completes the migration; when ``False`` it aborts, and only at the timeout.
    """

    def __init__(
        self,
        ramp: Sequence[tuple[float, int]],
        *,
        downtime_max: int,
        stall_passes: int = 2,
        timeout: float | None = None,
        auto_converge: bool = True,
        force: bool = True,
    ) -> None:
        self.ramp = tuple(ramp)
        self.downtime_max = downtime_max
        self.stall_passes = stall_passes
        self.timeout = timeout
        self.auto_converge = auto_converge
        self.force = force
        self.downtime: int | None = None
        self.ended = False
        self._step = 0
        self._doubled = 0  # the allowance doubling has reached, in ms (0: none yet)
        self._pass: int | None = None
        self._best: int | None = None
        self._stalled = 0

    def _raise_to(self, milliseconds: int, cause: str) -> list[Action]:
        if self.downtime is not None and milliseconds <= self.downtime:
            return []
        self.downtime = milliseconds
        return [Action("downtime", cause, milliseconds)]

    def _ramp(self, elapsed: float) -> list[Action]:
        actions: list[Action] = []
        while self._step < len(self.ramp) and self.ramp[self._step][0] <= elapsed:
            actions += self._raise_to(self.ramp[self._step][1], "ramp")
            self._step += 1
        return actions

    def _new_pass(self, stats: JobStats) -> bool:
        """Record the pass ``stats`` is in; whether it just began (and its start was stalled)."""
        if stats.iteration is None or stats.data_remaining is None or stats.iteration == self._pass:
            return False
        first = self._pass is None
        self._pass = stats.iteration
        remaining = stats.data_remaining
        if first or self._best is None or remaining < self._best * (1 - PROGRESS):
            self._best = remaining if self._best is None else min(self._best, remaining)
            self._stalled = 0
            return False
        if stats.downtime is not None and self.downtime is not None and stats.downtime * 1000 <= self.downtime:
            return False  # it fits: the hypervisor is about to finish
        self._stalled += 1
        return True

    def _stuck(self, stats: JobStats) -> bool:
        at_ceiling = self.downtime is not None and self.downtime >= self.downtime_max
        throttled = not self.auto_converge or (stats.throttle or 0) >= THROTTLE_CEILING
        return at_ceiling and throttled

    def step(self, elapsed: float, stats: JobStats | None) -> list[Action]:
        """The actions for this poll: ``elapsed`` seconds after the start, with the job's figures (``None`` when
        the hypervisor reports none)."""
        if self.ended:
            return []
        actions = self._ramp(elapsed)
        if self.timeout is not None and elapsed > self.timeout:
            self.ended = True
            return [*actions, Action("end", "timeout")]
        if stats is None or not self._new_pass(stats) or self._stalled < self.stall_passes:
            return actions
        if self.downtime is not None and self.downtime < self.downtime_max:
            self._stalled = 0
            self._doubled = min(self.downtime_max, max(self._doubled, self.downtime) * 2)
            return actions + self._raise_to(self._doubled, "stalled")
        if self.force and self._stuck(stats):
            self.ended = True
            return [*actions, Action("end", "stalled")]
        return actions
