"""Replications on worker processes (``callmesh simulate --jobs``) give the same result as
on one process: the same records in the same order, whatever order they finish in."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
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
    # as each of the 3 finishes; the inbound day is half of the bar (the campaign is the rest)
    assert seen == pytest.approx([1 / 6, 2 / 6, 3 / 6])


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
        results, _ = run_replications(_slow_first, 4, executor, told.append)
    assert results == [0, 1, 4, 9]
    assert told == [0.25, 0.5, 0.75, 1.0]
    here, _ = run_replications(_slow_first, 4)
    assert here == results
    assert available_cpus() >= 1


_STARTED: list[int] = []
_RELEASE = threading.Event()


def _fails_on_two(r: int, step: Callable[[float], None] | None) -> int:
    _STARTED.append(r)
    if r == 2:
        raise ValueError("replication 2: bad")
    if r > 2:  # held until the test has seen the failure: the cancel comes first, however slow
        _RELEASE.wait(10)
    return r


def test_a_failed_replication_stops_the_run_and_cancels_the_rest() -> None:
    _STARTED.clear()
    _RELEASE.clear()
    with ThreadPoolExecutor(1) as executor:
        with pytest.raises(ValueError, match="replication 2"):
            run_replications(_fails_on_two, 50, executor)
        _RELEASE.set()
    # one worker: 0, 1, 2 ran (and perhaps 3, taken before the cancel); none of the rest
    assert _STARTED[:3] == [0, 1, 2] and len(_STARTED) <= 4


_SHORT_DAY = """
import pickle, sys
from pathlib import Path
from callmesh.api.validate import load_tenants
from callmesh.sim.commands import load_workload
from callmesh.sim.simulator import Simulator
example = Path(sys.argv[1])
tenant = load_tenants([example])["acme-insurance"]
workload = load_workload(example / "simulate" / "workload.yaml")
spec = workload.spec.model_copy(update={"start": "09:00", "end": "10:00"})
short = workload.model_copy(update={"spec": spec})
sim = Simulator(tenant, short)
sys.stdout.write(repr([sim.run(5, r) for r in range(3)]))
from callmesh.sim.campaigns import parse_campaign_traffic, simulate_tenant_campaigns
traffic = parse_campaign_traffic({"policy-renewals": {"contactRate": 0.3, "contacts": 500}})
short = workload.model_copy(update={"spec": spec.model_copy(update={"end": "09:30"})})
(summary,) = simulate_tenant_campaigns(tenant, short, traffic, seed=2, replications=2)
sys.stdout.write(repr(summary.records))
"""


def test_records_do_not_depend_on_the_process() -> None:
    """A worker process has its own string hash seed: nothing in a replication's record may
    depend on it (sets of contact and attempt ids summed in their iteration order once did:
    the simulator's waiting contacts, the predictive pacer's calls in flight)."""
    out = []
    for hash_seed in ("0", "4"):
        done = subprocess.run(
            [sys.executable, "-c", _SHORT_DAY, str(EXAMPLE)],
            env={**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONSAFEPATH": "1"},
            capture_output=True,
            text=True,
            check=True,
            cwd=EXAMPLE,
        )
        out.append(done.stdout)
    assert out[0] == out[1] and "ReplicationRecord" in out[0] and "CampaignRecord" in out[0]


def test_a_container_cpu_limit_caps_the_workers(tmp_path: Path) -> None:
    unlimited = available_cpus(tmp_path)  # no cgroup files: the affinity mask
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # cgroup v2: 1.5 CPUs
    assert available_cpus(tmp_path) == min(unlimited, 2)
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert available_cpus(tmp_path) == unlimited
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")  # cgroup v1: 1 CPU
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert available_cpus(tmp_path) == 1
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")  # v1: no limit
    assert available_cpus(tmp_path) == unlimited
