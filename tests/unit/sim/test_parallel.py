"""Replications on worker processes (``callmesh simulate --jobs``) give the same result as
on one process: the same records in the same order, whatever order they finish in."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest

from callmesh.api.validate import load_tenants
from callmesh.sim.campaigns import parse_campaign_traffic, simulate_tenant_campaigns
from callmesh.sim.commands import _policy_factory, load_workload
from callmesh.sim.parallel import CpuTime, available_cpus, run_replications
from callmesh.sim.results import simulate
from callmesh.sim.simulator import Simulator
from callmesh.sim.workload import Workload

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "acme-insurance"


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    # spawn, as the command does: the workers import callmesh afresh and rebuild everything
    # from what the tasks carry
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as executor:
        yield executor


def _short_day(end: str) -> Workload:
    workload = load_workload(EXAMPLE / "simulate" / "workload.yaml")
    return workload.model_copy(
        update={"spec": workload.spec.model_copy(update={"start": "09:00", "end": end})}
    )


def test_inbound_replications_on_worker_processes_match_one_process(
    pool: ProcessPoolExecutor,
) -> None:
    tenant = load_tenants([EXAMPLE])["acme-insurance"]
    # the tenant's plugin manager (memory-crm, the VIP routing plugin) on every worker
    sim = Simulator(tenant, _short_day("10:00"), policy_factory=_policy_factory(tenant))
    here = simulate(sim, 5, 3, campaigns=False)
    cpu = CpuTime()
    seen: list[float] = []
    there = simulate(sim, 5, 3, seen.append, campaigns=False, executor=pool, cpu=cpu)
    assert there == here
    assert here["queues"][0]["total"]["offered"]["mean"] > 0
    assert cpu.inbound > 0 and cpu.campaigns == 0
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1 / 2)  # half: one campaign


def test_campaign_replications_on_worker_processes_match_one_process(
    pool: ProcessPoolExecutor,
) -> None:
    tenant = load_tenants([EXAMPLE])["acme-insurance"]
    traffic = parse_campaign_traffic({"policy-renewals": {"contactRate": 0.3, "contacts": 500}})
    args = (tenant, _short_day("09:20"), traffic)
    here = simulate_tenant_campaigns(*args, seed=3, replications=3)
    cpu = CpuTime()
    there = simulate_tenant_campaigns(*args, seed=3, replications=3, executor=pool, cpu=cpu)
    assert there == here
    assert [r.seed for r in there[0].records] == [3000, 3001, 3002]
    assert cpu.campaigns > 0


def _slow_first(r: int, step: Callable[[float], None] | None) -> int:
    time.sleep(0.2 if r == 0 else 0.0)  # the first replication finishes last
    return r * r


def test_results_come_back_in_replication_order() -> None:
    told: list[float] = []
    with ThreadPoolExecutor(3) as executor:
        results, cpu = run_replications(_slow_first, 4, executor, told.append)
    assert results == [0, 1, 4, 9]
    assert told == [0.25, 0.5, 0.75, 1.0] and cpu >= 0
    here, _ = run_replications(_slow_first, 4)
    assert here == results
    assert available_cpus() >= 1
