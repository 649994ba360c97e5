"""Predictive pacing beside progressive (1:1) and VICIdial's adaptive dial level.

A simulated predictive campaign: 20 agents, 30% contact rate (10% machines, 5% busy, the
rest ring out at 25 s), time to answer exponential with mean 10 s, 3 min talk (exponential),
30 s wrap-up, 3% abandonment cap per day with a 2 s compliance window. Each replication
runs one 8-hour day three times with the same seed, once per pacer, on the real dialer
engine and the real ACD (``callmesh.sim.campaigns``), and prints occupancy, abandonment and
contacts reached per agent-hour with 95% intervals over the replications.

    PYTHONSAFEPATH=1 .venv/bin/python bench/dialer.py [--replications 10] [--hours 8] [--jobs 2]
        [--seed 1] [--pacers campaign,progressive,vicidial]

After the table it prints each pacer's distribution over the replications: occupancy min and
median, and the per-day abandonment rate's median, 90th percentile and maximum, with the
number of days over the cap (the regulator's test is every day, not the mean).

Replications run in ``--jobs`` processes; each is a pure function of its seed, so the
figures do not depend on the number of jobs.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from callmesh.acd.config import AgentConfig, QueueConfig, TeamConfig, TierConfig
from callmesh.api.dialercampaign import DialerCampaignSpec
from callmesh.sim.campaigns import (
    CampaignRecord,
    CampaignTraffic,
    Pacer,
    simulate_campaign,
    summarize,
)
from callmesh.sim.distributions import Exponential, Lognormal

PACERS: tuple[tuple[Pacer, str], ...] = (
    ("campaign", "predictive (callmesh)"),
    ("progressive", "progressive 1:1"),
    ("vicidial", "VICIdial adaptive"),
)


def setup(agents: int) -> tuple[DialerCampaignSpec, CampaignTraffic, QueueConfig, TeamConfig]:
    """The benchmark's campaign, traffic, queue and team."""
    team = TeamConfig(
        "outbound", tuple(AgentConfig(f"a{i:02d}") for i in range(agents)), wrap_up_time=30.0
    )
    queue = QueueConfig("sales", (TierConfig(("outbound",)),), wrap_up_time=30.0)
    spec = DialerCampaignSpec.model_validate(
        {
            "mode": "predictive",
            "state": "running",
            "queue": "sales",
            "contactList": {"configMap": {"name": "list", "key": "contacts.csv"}},
            "callerId": {"number": "+12125550100"},
            "pacing": {"maxAbandonPercent": 3, "complianceWindowSeconds": 2, "period": "day"},
            "callingWindow": {"days": ["mon"], "start": "08:00", "end": "20:00"},
        }
    )
    traffic = CampaignTraffic(
        contact_rate=0.30,
        machine_rate=0.10,
        busy_rate=0.05,
        answer_time=Lognormal(type="lognormal", mean=12.0, sd=4.0),
        talk_time=Exponential(type="exponential", mean=180.0),
        contacts=15_000,
    )
    return spec, traffic, queue, team


def one_run(job: tuple[Pacer, int, float, int]) -> tuple[CampaignRecord, float]:
    """One replication of one pacer (a process-pool job): its record and CPU seconds."""
    pacer, seed, hours, agents = job
    spec, traffic, queue, team = setup(agents)
    started = time.process_time()
    record = simulate_campaign(
        "bench", spec, [queue], [team], traffic, seed=seed, hours=hours, pacer=pacer
    )
    return record, time.process_time() - started


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replications", type=int, default=10)
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--pacers",
        default=",".join(p for p, _ in PACERS),
        help="Which pacers to run, comma-separated (campaign, progressive, vicidial).",
    )
    args = parser.parse_args()
    chosen = [(p, label) for p, label in PACERS if p in args.pacers.split(",")]
    if not chosen:
        parser.error(
            f"--pacers {args.pacers!r}: name one or more of campaign, progressive, vicidial"
        )

    print(
        f"{args.agents} agents, contact rate 30%, talk 180 s, wrap-up 30 s, cap 3%/day in 2 s,"
        f" {args.hours:g} h, {args.replications} replications (seed {args.seed})"
    )
    print(
        f"{'pacer':<22} {'occupancy':>16} {'abandon (day)':>18} {'worst rep.':>11}"
        f" {'reached/agent-h':>18} {'dials':>8} {'cpu s/run':>9}"
    )
    jobs = [
        (pacer, args.seed * 1000 + r, args.hours, args.agents)
        for pacer, _ in chosen
        for r in range(args.replications)
    ]
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(one_run, jobs))
    spreads = []
    cap = setup(args.agents)[0].pacing.max_abandon_percent
    for index, (_pacer, label) in enumerate(chosen):
        mine = results[index * args.replications : (index + 1) * args.replications]
        records = [record for record, _ in mine]
        per_run = sum(cpu for _, cpu in mine) / len(mine)
        kpi = summarize(records)

        def pm(name: str, scale: float = 100.0, digits: int = 1, kpi: Any = kpi) -> str:
            e = kpi[name]
            half = e.half_width if e.half_width is not None else float("nan")
            return f"{e.mean * scale:.{digits}f} ± {half * scale:.{digits}f}"

        worst = max(r.abandon_rate for r in records) * 100
        print(
            f"{label:<22} {pm('occupancy') + ' %':>16} {pm('abandon_rate', digits=2) + ' %':>18}"
            f" {worst:>9.2f} % {pm('reached_per_agent_hour', 1.0, 2):>18}"
            f" {kpi['dialled'].mean:>8.0f} {per_run:>9.1f}"
        )
        days = sorted(r.worst_day_abandon_rate * 100 for r in records)
        occupancy = sorted(r.occupancy * 100 for r in records)
        spreads.append(
            f"{label:<22} occupancy min {occupancy[0]:.1f} % median"
            f" {occupancy[len(occupancy) // 2]:.1f} %; abandoned per day: median"
            f" {days[len(days) // 2]:.2f} %, 90th pct {days[int(0.9 * (len(days) - 1))]:.2f} %,"
            f" max {days[-1]:.2f} % ({sum(d > cap for d in days)} of {len(days)} days over {cap:g} %)"
        )
    print("distribution over the replications:")
    for line in spreads:
        print("  " + line)


if __name__ == "__main__":
    main()
