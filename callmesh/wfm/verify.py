"""Check a staffing recommendation in the simulator: does the target really hold?

Each interval of a plan (the rows :func:`callmesh.wfm.staffing.staff` returns) is played
as its own steady-state queue, an M/M/n (Erlang C) or M/M/n+M (Erlang A) model built from
the same manifests users write (:mod:`callmesh.sim.mmc`), through the real ACD router, for
``hours`` simulated hours after a warm-up, over independent seeded replications. Every
KPI comes back as a mean with a 95 % confidence interval, and each target gets a verdict:

- ``holds``: the whole interval meets the target;
- ``misses``: the whole interval fails it;
- ``marginal``: the interval straddles the target. Minimal staffing sits just above the
  target by construction, so this is common; more hours or replications narrow it.

Not imported by :mod:`callmesh.wfm` itself (the simulator imports ``callmesh.wfm.erlang``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Literal

from callmesh.wfm.staffing import IntervalStaffing, StaffingTarget

__all__ = ["MAX_SIMULATED_AGENTS", "Check", "IntervalVerification", "Verdict", "verify"]

Verdict = Literal["holds", "marginal", "misses", "skipped"]
_ORDER: dict[Verdict, int] = {"holds": 0, "skipped": 1, "marginal": 2, "misses": 3}

#: The single-team M/M/n model of the simulator holds at most this many agents.
MAX_SIMULATED_AGENTS = 500


@dataclass(frozen=True)
class Check:
    """One KPI in the simulation next to its Erlang prediction and, if targeted, its verdict.

    Attributes:
        kpi: ``service_level``, ``asa``, ``p_abandon``, ``p_wait`` or ``occupancy`` (the
            :class:`~callmesh.wfm.erlang.Performance` field names, same definitions).
        erlang: the model's value.
        mean, low, high: the simulated mean and its 95 % interval (same units: seconds or
            a fraction); ``None`` when no replication defined the KPI.
        target: the limit it must meet, or ``None`` if the KPI is only reported.
        at_least: True when the KPI must be >= ``target`` (service level), False for <=.
        verdict: ``holds``, ``marginal``, ``misses``; ``None`` when there is no target.
    """

    kpi: str
    erlang: float
    mean: float | None
    low: float | None
    high: float | None
    target: float | None
    at_least: bool
    verdict: Verdict | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (infinite Erlang values become ``None``)."""
        return {
            "kpi": self.kpi,
            "erlang": self.erlang if math.isfinite(self.erlang) else None,
            "simulated": {"mean": self.mean, "low": self.low, "high": self.high},
            "target": self.target,
            "bound": "min" if self.at_least else "max",
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class IntervalVerification:
    """The simulator's verdict on one interval's staffing."""

    row: IntervalStaffing
    verdict: Verdict
    checks: tuple[Check, ...]
    contacts: int
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "verdict": self.verdict,
            "note": self.note or None,
            "contactsSimulated": self.contacts,
            "checks": [c.as_dict() for c in self.checks],
        }


def _judge(low: float | None, high: float | None, target: float, at_least: bool) -> Verdict:
    if low is None or high is None:
        # One replication or an undefined KPI: no interval, so no firm verdict.
        return "marginal"
    if at_least:
        return "holds" if low >= target else "misses" if high < target else "marginal"
    return "holds" if high <= target else "misses" if low > target else "marginal"


def _check(
    kpi: str,
    erlang: float,
    est: dict[str, Any],
    scale: float,
    target: float | None,
    at_least: bool,
) -> Check:
    def conv(key: str) -> float | None:
        value = est.get(key)
        return None if value is None else float(value) / scale

    mean, low, high = conv("mean"), conv("low"), conv("high")
    verdict = None if target is None else _judge(low, high, target, at_least)
    return Check(kpi, erlang, mean, low, high, target, at_least, verdict)


def _part(progress: Callable[[float], None], i: int, total: int) -> Callable[[float], None]:
    """Report interval ``i``'s progress as a share of the whole run."""

    def step(fraction: float) -> None:
        progress((i + fraction) / total)

    return step


def _whole_seconds(name: str, value: float) -> int:
    if value != round(value):
        raise ValueError(
            f"{name} must be whole seconds to verify in the simulator (queues state their "
            f"service level in seconds), got {value!r}"
        )
    return round(value)


def verify(
    rows: Sequence[IntervalStaffing],
    target: StaffingTarget,
    *,
    seed: int = 1,
    replications: int = 5,
    hours: int = 8,
    warmup_minutes: int = 30,
    progress: Callable[[float], None] | None = None,
    executor: Executor | None = None,
) -> list[IntervalVerification]:
    """Simulate each row at its recommended agents and judge every target that is set.

    Args:
        rows: a plan, e.g. from :func:`~callmesh.wfm.staffing.staff`.
        target: the target the plan was made for (service level on the ``offered`` or
            ``excl-short-abandons`` basis: the simulator does not report SL over answered).
        seed: base seed; replication ``r`` of every interval uses its own derived stream.
        replications: independent replications per interval (>= 2 for an interval).
        hours: simulated hours per replication, after ``warmup_minutes`` of warm-up.
        progress: called with the fraction done (0..1).
        executor: a process pool the replications of each interval run on (see
            :func:`~callmesh.sim.parallel.run_replications`); the result is the same.

    Raises:
        ValueError: a setting the simulator cannot honour, naming it.
    """
    from callmesh.sim.mmc import mmc_tenant, mmc_workload
    from callmesh.sim.results import simulate
    from callmesh.sim.simulator import Simulator

    if target.sl_basis == "answered" and target.service_level > 0:
        raise ValueError(
            "sl_basis 'answered' cannot be verified: the simulator reports the service level "
            "over offered contacts and excluding short abandons; use one of those"
        )
    if replications < 2:
        raise ValueError(f"replications must be >= 2 for a confidence interval, got {replications}")
    if not 1 <= hours <= 24:
        raise ValueError(f"hours must be 1..24 simulated hours per replication, got {hours}")
    if not 0 <= warmup_minutes <= 1440:
        raise ValueError(f"warmup_minutes must be 0..1440, got {warmup_minutes}")
    sl_seconds = _whole_seconds("answer_time", target.answer_time)
    short = _whole_seconds("short_abandon_time", target.short_abandon_time)
    sl_key = (
        "serviceLevelExclShortAbandonsPercent"
        if target.sl_basis == "excl-short-abandons"
        else "serviceLevelPercent"
    )
    out: list[IntervalVerification] = []
    total = max(1, len(rows))
    for i, row in enumerate(rows):
        perf = row.performance
        load = row.interval.load
        if load.arrival_rate == 0.0 or perf.agents == 0:
            out.append(IntervalVerification(row, "skipped", (), 0, "no traffic"))
            continue
        if perf.agents > MAX_SIMULATED_AGENTS:
            note = f"{perf.agents} agents: the simulated model holds at most {MAX_SIMULATED_AGENTS}"
            out.append(IntervalVerification(row, "skipped", (), 0, note))
            continue
        sim = Simulator(
            mmc_tenant(perf.agents, sl_seconds=sl_seconds, short_abandon_seconds=short),
            mmc_workload(
                load.arrival_rate * 3600.0,
                load.aht,
                patience=load.patience,
                hours=hours,
                warmup_minutes=warmup_minutes,
            ),
            source="staff --verify",
        )
        step = None if progress is None else _part(progress, i, total)
        doc = simulate(sim, seed, replications, step, executor=executor)
        kpis = doc["queues"][0]["total"]
        occupancy = doc["teams"][0]["occupancyPercent"]
        sl_target = target.service_level if target.service_level > 0 else None
        checks = (
            _check(
                "service_level",
                target.achieved_service_level(perf),
                kpis[sl_key],
                100.0,
                sl_target,
                True,
            ),
            _check("asa", perf.asa, kpis["asaSeconds"], 1.0, target.max_asa, False),
            _check(
                "p_abandon",
                perf.p_abandon,
                kpis["abandonedPercent"],
                100.0,
                target.max_abandon,
                False,
            ),
            _check("p_wait", perf.p_wait, kpis["waitProbabilityPercent"], 100.0, None, False),
            _check("occupancy", perf.occupancy, occupancy, 100.0, target.max_occupancy, False),
        )
        verdicts: list[Verdict] = [c.verdict for c in checks if c.verdict is not None]
        verdict: Verdict = max(verdicts, key=_ORDER.__getitem__) if verdicts else "holds"
        contacts = int(doc["checks"]["contactsCounted"])
        out.append(IntervalVerification(row, verdict, checks, contacts))
    if progress is not None:
        progress(1.0)
    return out
