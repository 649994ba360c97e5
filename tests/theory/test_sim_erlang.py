"""The simulator against queueing theory: M/M/c vs Erlang C, M/M/c+M vs Erlang A.

Each case runs the whole simulator (manifests -> ACD configuration -> the real Router with
the built-in routing policy) on one queue served by one team, with independent seeded
replications, and checks that the theoretical value lies inside the 95% confidence interval
the simulator reports. The seeds are fixed, so a run is reproducible; the grid spans light to
heavy load and 2 to 50 agents (500 agents at 95% is marked slow).

With a 95% interval each single check may miss by chance 5% of the time; the checks of one
case are strongly correlated (P(wait), ASA and SL move together), and the fixed seed makes
the outcome deterministic, so a failure here is a real disagreement to investigate, not
noise to re-roll.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from callmesh.sim.mmc import mmc_tenant, mmc_workload
from callmesh.sim.results import simulate
from callmesh.sim.simulator import Simulator
from callmesh.wfm.erlang import QueueLoad, erlang_a, erlang_c

AHT = 60.0  # short handle times give many contacts per simulated hour


def _run(
    agents: int,
    load: float,
    hours: int,
    *,
    patience: float | None = None,
    replications: int = 8,
    warmup: int = 60,
    seed: int = 20261123,
    aht: float = AHT,
    sl_seconds: int = 20,
) -> dict[str, Any]:
    rate_per_hour = load * agents / aht * 3600.0
    sim = Simulator(
        mmc_tenant(agents, sl_seconds=sl_seconds, short_abandon_seconds=5 if patience else 0),
        mmc_workload(rate_per_hour, aht, patience=patience, hours=hours, warmup_minutes=warmup),
    )
    run = simulate(sim, seed, replications)
    assert run["checks"]["flowConservationViolations"] == 0
    assert run["checks"]["littleLawMaxRelativeError"] < 1e-9
    total: dict[str, Any] = run["queues"][0]["total"]
    return total


def _inside(est: dict[str, Any], value: float) -> bool:
    return est["low"] <= value <= est["high"]


def _check(total: dict[str, Any], expected: dict[str, float]) -> None:
    misses = [
        f"{name}: Erlang {value:.4g} outside simulated [{total[name]['low']:.4g},"
        f" {total[name]['high']:.4g}] (mean {total[name]['mean']:.4g})"
        for name, value in expected.items()
        if not _inside(total[name], value)
    ]
    assert not misses, "; ".join(misses)


MMC_GRID = [
    # agents, offered load per agent, simulated hours per replication
    (2, 0.6, 20),
    (10, 0.5, 6),
    (5, 0.75, 12),
    (20, 0.85, 4),
    (50, 0.9, 2),
]


@pytest.mark.parametrize(("agents", "load", "hours"), MMC_GRID)
def test_mmc_agrees_with_erlang_c(agents: int, load: float, hours: int) -> None:
    total = _run(agents, load, hours)
    perf = erlang_c(QueueLoad(load * agents / AHT, AHT), agents, answer_time=20.0)
    _check(
        total,
        {
            "waitProbabilityPercent": 100 * perf.p_wait,
            "asaSeconds": perf.asa,
            "serviceLevelPercent": 100 * perf.service_level,
        },
    )
    assert total["abandoned"]["mean"] == 0


MMCM_GRID = [
    # agents, offered load per agent (may exceed 1: callers leave), hours, mean patience
    (5, 0.9, 12, 60.0),
    (20, 1.05, 4, 120.0),
]


@pytest.mark.parametrize(("agents", "load", "hours", "patience"), MMCM_GRID)
def test_mmc_plus_m_agrees_with_erlang_a(
    agents: int, load: float, hours: int, patience: float
) -> None:
    total = _run(agents, load, hours, patience=patience)
    perf = erlang_a(QueueLoad(load * agents / AHT, AHT, patience), agents, 20.0, 5.0)
    _check(
        total,
        {
            "waitProbabilityPercent": 100 * perf.p_wait,
            "abandonedPercent": 100 * perf.p_abandon,
            "asaSeconds": perf.asa,
            "serviceLevelPercent": 100 * perf.service_level,
            "serviceLevelExclShortAbandonsPercent": 100 * perf.service_level_excl_short_abandons,
        },
    )


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("CALLMESH_SLOW_TESTS"),
    reason="about 200,000 contacts: set CALLMESH_SLOW_TESTS=1 to run it",
)
def test_mmc_500_agents_at_95_percent() -> None:
    # A 3-minute AHT and a 5 s threshold keep the service level away from 100%, where
    # every replication would agree exactly and the interval would have no width.
    total = _run(500, 0.95, 2, replications=10, warmup=60, aht=180.0, sl_seconds=5)
    perf = erlang_c(QueueLoad(0.95 * 500 / 180.0, 180.0), 500, answer_time=5.0)
    _check(
        total,
        {
            "waitProbabilityPercent": 100 * perf.p_wait,
            "asaSeconds": perf.asa,
            "serviceLevelPercent": 100 * perf.service_level,
        },
    )
