"""Staffing: the fewest agents that meet a queue's targets, per interval of a workload.

A target (:class:`StaffingTarget`) combines any of: a service level (``service_level`` of
contacts answered within ``answer_time`` seconds, on one of three bases), a maximum ASA
(over answered contacts), a maximum occupancy and, for Erlang A, a maximum abandonment
rate. :func:`required_staffing` returns the KPIs at the smallest number of agents meeting
all of them; :func:`staff` does that for each interval of a workload.

Every KPI used here is monotone in the number of agents (more agents: less waiting, fewer
abandons, lower occupancy), so "the smallest n that meets the target" is well defined and
is found by scanning (Erlang C, where the Erlang B recursion steps from n to n+1 in O(1))
or by galloping plus bisection (Erlang A). The result is checked: ``n - 1`` agents miss.

The simulator (``callmesh.sim``) is meant to take the rows returned by :func:`staff`
(each carries its :class:`~callmesh.wfm.erlang.QueueLoad` and recommended ``agents``) and
replay them to verify the recommendation; this module does no simulation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from callmesh.wfm.erlang import Performance, QueueLoad, erlang_a, erlang_b, erlang_c

__all__ = [
    "Interval",
    "IntervalStaffing",
    "ServiceLevelBasis",
    "StaffingInfeasibleError",
    "StaffingTarget",
    "agents_needed",
    "required_staffing",
    "staff",
]

ServiceLevelBasis = Literal["offered", "answered", "excl-short-abandons"]
_BASES: tuple[ServiceLevelBasis, ...] = ("offered", "answered", "excl-short-abandons")

# No search goes beyond this many agents unless the caller raises it.
DEFAULT_MAX_AGENTS = 1_000_000


class StaffingInfeasibleError(ValueError):
    """No number of agents up to the search limit meets the target."""


@dataclass(frozen=True)
class StaffingTarget:
    """What a queue must achieve. Unset optional targets are not checked.

    Attributes:
        service_level: fraction in [0, 1) of contacts to answer within ``answer_time``
            (0.8 for "80/20"); 0 disables the service-level target.
        answer_time: the service-level threshold T in seconds (20 for "80/20").
        max_asa: maximum mean wait of answered contacts, in seconds.
        max_occupancy: maximum agent occupancy in (0, 1] (e.g. 0.85 to avoid burn-out).
        max_abandon: maximum fraction of offered contacts that abandon, in (0, 1);
            only meaningful for Erlang A (with Erlang C nobody abandons).
        sl_basis: which service level the target applies to: ``"offered"`` (answered
            within T over all offered contacts, abandons count as misses),
            ``"answered"`` (over answered contacts) or ``"excl-short-abandons"`` (over
            offered minus contacts that abandoned within ``short_abandon_time``).
        short_abandon_time: seconds under which an abandon is "short" (default 5).
    """

    service_level: float = 0.8
    answer_time: float = 20.0
    max_asa: float | None = None
    max_occupancy: float | None = None
    max_abandon: float | None = None
    sl_basis: ServiceLevelBasis = "offered"
    short_abandon_time: float = 5.0

    def __post_init__(self) -> None:
        if not (0.0 <= self.service_level < 1.0):
            raise ValueError(
                f"service_level must be in [0, 1), got {self.service_level!r}: "
                "give a fraction such as 0.8 for 80% (1.0 is unreachable: some contact "
                "always waits), or 0 for no service-level target"
            )
        if not (math.isfinite(self.answer_time) and self.answer_time >= 0.0):
            raise ValueError(f"answer_time must be seconds >= 0, got {self.answer_time!r}")
        if self.max_asa is not None and not (self.max_asa > 0.0 and math.isfinite(self.max_asa)):
            raise ValueError(f"max_asa must be seconds > 0, got {self.max_asa!r}")
        if self.max_occupancy is not None and not (0.0 < self.max_occupancy <= 1.0):
            raise ValueError(
                f"max_occupancy must be in (0, 1], got {self.max_occupancy!r}: e.g. 0.85"
            )
        if self.max_abandon is not None and not (0.0 < self.max_abandon < 1.0):
            raise ValueError(f"max_abandon must be in (0, 1), got {self.max_abandon!r}: e.g. 0.05")
        if self.sl_basis not in _BASES:
            raise ValueError(f"sl_basis must be one of {', '.join(_BASES)}; got {self.sl_basis!r}")
        if not (math.isfinite(self.short_abandon_time) and self.short_abandon_time >= 0.0):
            raise ValueError(
                f"short_abandon_time must be seconds >= 0, got {self.short_abandon_time!r}"
            )

    def achieved_service_level(self, perf: Performance) -> float:
        """The service level of ``perf`` on this target's basis."""
        if self.sl_basis == "answered":
            return perf.service_level_answered
        if self.sl_basis == "excl-short-abandons":
            return perf.service_level_excl_short_abandons
        return perf.service_level

    def misses(self, perf: Performance) -> list[str]:
        """The targets ``perf`` misses, as short sentences; empty when all are met."""
        out: list[str] = []
        if not perf.stable:
            out.append(f"unstable: {perf.traffic:.2f} Erlangs need more than {perf.agents} agents")
            return out
        sl = self.achieved_service_level(perf)
        if self.service_level > 0.0 and sl < self.service_level:
            out.append(f"service level {sl:.4f} < {self.service_level}")
        if self.max_asa is not None and perf.asa > self.max_asa:
            out.append(f"ASA {perf.asa:.2f}s > {self.max_asa}s")
        if self.max_occupancy is not None and perf.occupancy > self.max_occupancy:
            out.append(f"occupancy {perf.occupancy:.4f} > {self.max_occupancy}")
        if self.max_abandon is not None and perf.p_abandon > self.max_abandon:
            out.append(f"abandon {perf.p_abandon:.4f} > {self.max_abandon}")
        return out

    def is_met(self, perf: Performance) -> bool:
        """True when ``perf`` meets every target set."""
        return not self.misses(perf)


def _evaluate(load: QueueLoad, agents: int, target: StaffingTarget) -> Performance:
    if load.patience is None:
        return erlang_c(load, agents, target.answer_time, target.short_abandon_time)
    return erlang_a(load, agents, target.answer_time, target.short_abandon_time)


def required_staffing(
    load: QueueLoad, target: StaffingTarget, *, max_agents: int = DEFAULT_MAX_AGENTS
) -> Performance:
    """KPIs at the smallest number of agents that meets ``target`` for ``load``.

    Zero traffic needs zero agents. Raises :class:`StaffingInfeasibleError` when no number
    of agents up to ``max_agents`` meets the target (e.g. ``max_abandon`` below what even
    ``max_agents`` agents achieve).
    """
    if load.arrival_rate == 0.0:
        return _evaluate(load, 0, target)
    if load.patience is None:
        return _scan_erlang_c(load, target, max_agents)
    return _search_erlang_a(load, target, max_agents)


def agents_needed(
    load: QueueLoad, target: StaffingTarget, *, max_agents: int = DEFAULT_MAX_AGENTS
) -> int:
    """The smallest number of agents that meets ``target`` (see :func:`required_staffing`)."""
    return required_staffing(load, target, max_agents=max_agents).agents


def _infeasible(
    load: QueueLoad, target: StaffingTarget, max_agents: int
) -> StaffingInfeasibleError:
    last = _evaluate(load, max_agents, target)
    why = "; ".join(target.misses(last)) or "target not met"
    return StaffingInfeasibleError(
        f"no staffing up to max_agents={max_agents} meets the target ({why} at {max_agents} "
        "agents): relax the target or raise max_agents"
    )


def _scan_erlang_c(load: QueueLoad, target: StaffingTarget, max_agents: int) -> Performance:
    """Erlang C: step n upward from the first stable staffing, B(n) updated in O(1)."""
    a = load.traffic
    n = math.floor(a) + 1
    if target.max_occupancy is not None:
        n = max(n, math.ceil(a / target.max_occupancy - 1e-12))
    if n > max_agents:
        raise _infeasible(load, target, max_agents)
    b = erlang_b(n, a)
    while True:
        perf = erlang_c(load, n, target.answer_time, target.short_abandon_time, blocking=b)
        if target.is_met(perf):
            return perf
        if n >= max_agents:
            raise _infeasible(load, target, max_agents)
        n += 1
        ab = a * b
        b = ab / (n + ab)


def _search_erlang_a(load: QueueLoad, target: StaffingTarget, max_agents: int) -> Performance:
    """Erlang A: gallop from ``ceil(a)`` to bracket the answer, then bisect."""
    cache: dict[int, Performance] = {}

    def perf_at(n: int) -> Performance:
        if n not in cache:
            cache[n] = _evaluate(load, n, target)
        return cache[n]

    def ok(n: int) -> bool:
        return target.is_met(perf_at(n))

    start = min(max_agents, max(1, math.ceil(load.traffic)))
    if ok(start):
        hi = start
        lo, step = start, 1
        while True:  # walk down until a staffing misses (or we reach 0 agents)
            lo = max(0, hi - step)
            if lo == 0 or not ok(lo):
                break
            hi, step = lo, step * 2
        if lo == 0 and ok(0):  # only when no target is set at all
            return perf_at(0)
    else:
        lo, step = start, 1
        while True:  # walk up until a staffing meets
            hi = min(max_agents, lo + step)
            if ok(hi):
                break
            if hi >= max_agents:
                raise _infeasible(load, target, max_agents)
            lo, step = hi, step * 2
    # Invariant: ok(hi) and not ok(lo) (lo == 0 counts as a miss).
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return perf_at(hi)


@dataclass(frozen=True)
class Interval:
    """One planning interval of a workload: its label and the load offered during it.

    Attributes:
        start: a label such as ``"09:00"`` (shown as given).
        load: arrival rate, handle time and patience during the interval.
        length: interval length in seconds (e.g. 900 or 1800); used for contact counts.
    """

    start: str
    load: QueueLoad
    length: float = 1800.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.length) and self.length > 0):
            raise ValueError(f"interval length must be seconds > 0, got {self.length!r}")

    @property
    def offered(self) -> float:
        """Expected contacts offered in the interval."""
        return self.load.arrival_rate * self.length


@dataclass(frozen=True)
class IntervalStaffing:
    """The recommendation for one interval: its input and the KPIs at ``agents``."""

    interval: Interval
    performance: Performance

    @property
    def agents(self) -> int:
        """Agents on the queue (handling contacts, so before shrinkage) for the interval."""
        return self.performance.agents


def staff(
    intervals: Iterable[Interval],
    target: StaffingTarget,
    *,
    max_agents: int = DEFAULT_MAX_AGENTS,
) -> list[IntervalStaffing]:
    """Agents needed per interval so that each interval meets ``target`` on its own.

    Each interval is treated as a steady state (the usual stationary independent period
    approach); contacts carried over between intervals are not modelled.
    """
    return [
        IntervalStaffing(iv, required_staffing(iv.load, target, max_agents=max_agents))
        for iv in intervals
    ]
