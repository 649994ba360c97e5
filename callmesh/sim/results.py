"""From replication counters to KPIs with 95% intervals, compared with Erlang C / Erlang A.

:func:`summarize` builds the document ``callmesh simulate --output json`` prints; its shape
is fixed by ``callmesh/sim/simulate-result.schema.json`` (``schemaVersion`` 2) and every KPI
is defined there and in ``docs/simulate.md``. In short, per queue and interval (contacts are
counted in the interval they first entered the ACD):

- ``offered``: contacts that entered the queue (overflow from another queue included);
- ``answered``: connected to an agent; ``abandoned``: hung up while waiting or ringing;
  ``overflowed``: left at max wait (moved on, voicemail, callback); ``timedOut``: max wait
  with no overflow; ``unfinished``: still waiting when the run stopped;
- ``serviceLevelPercent``: answered within the queue's threshold T over offered;
  ``serviceLevelExclShortAbandonsPercent``: the same over offered minus abandons quicker
  than the queue's ``excludeAbandonedUnderSeconds``;
- ``asaSeconds``: mean wait of answered contacts only; ``ahtSeconds``: talk + wrap-up of
  the contacts completed; ``longestWaitSeconds``: longest wait, answered or not;
- ``waitProbabilityPercent``: share of offered contacts not answered the instant they
  arrived (Erlang's P(wait));
- ``rona``: offers that rang out at an agent.

Each is computed per replication and reported as mean, 95% half-width and interval over the
replications that define it (see :mod:`callmesh.sim.stats`).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from functools import partial
from typing import Any

from callmesh.acd.strategy import RoutingPolicy
from callmesh.api import Channel, Tenant
from callmesh.sim.distributions import Exponential
from callmesh.sim.parallel import CpuTime, run_replications
from callmesh.sim.simulator import (
    HIST_BIN_SECONDS,
    HIST_BINS,
    OUTCOMES,
    ReplicationRecord,
    Simulator,
)
from callmesh.sim.stats import estimate
from callmesh.sim.workload import Workload
from callmesh.wfm.erlang import QueueLoad, performance

__all__ = ["KPI_NAMES", "SCHEMA_VERSION", "add_campaigns", "simulate", "summarize"]

SCHEMA_VERSION = 2
"""2: version 1 plus ``runs[].campaigns`` (every version-1 field unchanged)."""

#: Every KPI of a queue interval, in the order tables show them.
KPI_NAMES = (
    "offered",
    "answered",
    "abandoned",
    "abandonedPercent",
    "overflowed",
    "timedOut",
    "unfinished",
    "rona",
    "serviceLevelPercent",
    "serviceLevelExclShortAbandonsPercent",
    "asaSeconds",
    "ahtSeconds",
    "longestWaitSeconds",
    "waitProbabilityPercent",
)


def _ratio(num: float, den: float, scale: float = 1.0) -> float | None:
    return num / den * scale if den > 0 else None


def _kpis(recs: Sequence[ReplicationRecord], ks: Sequence[int]) -> dict[str, Any]:
    """KPIs over the given slots (one interval, or all of a queue's), per replication."""
    values: dict[str, list[float | None]] = {name: [] for name in KPI_NAMES}
    for r in recs:
        off = sum(r.offered[k] for k in ks)
        ans = sum(r.answered[k] for k in ks)
        ab = sum(r.abandoned[k] for k in ks)
        short = sum(r.abandoned_short[k] for k in ks)
        done = sum(r.completed[k] for k in ks)
        v = values
        v["offered"].append(off)
        v["answered"].append(ans)
        v["abandoned"].append(ab)
        v["abandonedPercent"].append(_ratio(ab, off, 100.0))
        v["overflowed"].append(sum(r.overflowed[k] for k in ks))
        v["timedOut"].append(sum(r.timed_out[k] for k in ks))
        v["unfinished"].append(sum(r.unfinished[k] for k in ks))
        v["rona"].append(sum(r.rona[k] for k in ks))
        in_sl = sum(r.answered_in_sl[k] for k in ks)
        v["serviceLevelPercent"].append(_ratio(in_sl, off, 100.0))
        v["serviceLevelExclShortAbandonsPercent"].append(_ratio(in_sl, off - short, 100.0))
        v["asaSeconds"].append(_ratio(sum(r.wait_answered[k] for k in ks), ans))
        v["ahtSeconds"].append(
            _ratio(sum(r.talk[k] for k in ks) + sum(r.wrap[k] for k in ks), done)
        )
        v["longestWaitSeconds"].append(
            max((r.longest_wait[k] for k in ks), default=0.0) if off else None
        )
        v["waitProbabilityPercent"].append(
            _ratio(off - sum(r.immediate[k] for k in ks), off, 100.0)
        )
    return {name: estimate(vals).as_dict() for name, vals in values.items()}


def _erlang(sim: Simulator, queue: str, rate: float, agents: float) -> dict[str, Any] | None:
    """Erlang C / A for one queue and interval, or None when the model does not apply."""
    if rate <= 0 or agents < 1 or abs(agents - round(agents)) > 1e-9:
        return None
    traffic = sim.workload.spec.queues[queue]
    q = sim.tenant.queues[queue].spec
    wrap = float(q.wrap_up_seconds)
    for tier in q.tiers:
        for team in tier.teams:
            override = sim.tenant.teams[team].spec.wrap_up_seconds
            if override is not None:
                wrap = float(override)
    aht = traffic.handle_time.mean_value + wrap
    patience = traffic.patience.mean_value if traffic.patience is not None else None
    exact = isinstance(traffic.handle_time, Exponential) and (
        traffic.patience is None or isinstance(traffic.patience, Exponential)
    )
    perf = performance(
        QueueLoad(rate, aht, patience),
        round(agents),
        float(q.service_level.seconds),
        float(q.service_level.exclude_abandoned_under_seconds),
    )

    def pct(x: float) -> float | None:
        return round(100.0 * x, 6) if math.isfinite(x) else None

    def sec(x: float) -> float | None:
        return round(x, 6) if math.isfinite(x) else None

    return {
        "model": perf.model,
        "exact": exact,
        "agents": round(agents),
        "trafficErlangs": round(perf.traffic, 6),
        "waitProbabilityPercent": pct(perf.p_wait),
        "abandonedPercent": pct(perf.p_abandon),
        "serviceLevelPercent": pct(perf.service_level),
        "serviceLevelExclShortAbandonsPercent": pct(perf.service_level_excl_short_abandons),
        "asaSeconds": sec(perf.asa),
        "occupancyPercent": pct(perf.occupancy),
    }


def _dedicated_agents(sim: Simulator) -> dict[str, tuple[str, ...]]:
    """Queues whose agents serve no other queue, one contact at a time (Erlang applies)."""
    serves: dict[str, set[str]] = {}
    members: dict[str, tuple[str, ...]] = {}
    single: dict[str, bool] = {}
    for queue in sim.setup.queues:
        agents = [a for tier in queue.tiers for t in tier.teams for a in _team(sim, t)]
        ids = tuple(dict.fromkeys(a.id for a in agents))
        members[queue.name] = ids
        # A chat agent holding several chats is not one Erlang server.
        single[queue.name] = all(a.capacity.get(queue.channel, 0) == 1 for a in agents)
        for agent_id in ids:
            serves.setdefault(agent_id, set()).add(queue.name)
    out = {}
    for queue in sim.setup.queues:
        ids = members[queue.name]
        if (
            ids
            and single[queue.name]
            and all(serves[a] == {queue.name} for a in ids)
            and all(t.delay == 0 for t in queue.tiers)
        ):
            out[queue.name] = ids
    return out


def _team(sim: Simulator, name: str) -> Sequence[Any]:
    for team in sim.setup.teams:
        if team.name == name:
            return team.agents
    return ()


def _staffed(sim: Simulator, agents: Sequence[str]) -> list[float]:
    """Time-average number of these agents logged in during each interval (from shifts)."""
    length = sim.interval_seconds
    out = [0.0] * sim.intervals
    wanted = set(agents)
    for shift in sim.shifts:
        if shift.agent_id not in wanted:
            continue
        end = shift.logout if shift.logout is not None else sim.horizon
        for i in range(sim.intervals):
            lo, hi = i * length, (i + 1) * length
            overlap = min(hi, end) - max(lo, shift.login)
            if overlap > 0:
                out[i] += overlap / length
    return out


def summarize(sim: Simulator, records: Sequence[ReplicationRecord], seed: int) -> dict[str, Any]:
    """The JSON document of a run (see the module docstring and the JSON Schema)."""
    spec = sim.workload.spec
    ni = sim.intervals
    labels = spec.interval_labels()
    dedicated = _dedicated_agents(sim)
    direct_rate: dict[str, list[float]] = {}
    for i, arrival in enumerate(spec.arrivals):
        if arrival.queue is not None:
            rates = sim.workload.rates_per_second(i)
            acc = direct_rate.setdefault(arrival.queue, [0.0] * ni)
            for j in range(ni):
                acc[j] += rates[j]
    inflow_other = {
        q.overflow.target for q in sim.setup.queues if q.overflow is not None and q.overflow.target
    }
    queues = []
    for qi, name in enumerate(sim.queue_names):
        q = sim.tenant.queues[name].spec
        if name not in spec.queues:
            continue
        base = qi * ni
        intervals = []
        comparable = name in dedicated and name not in inflow_other
        staffed = _staffed(sim, dedicated[name]) if comparable else [0.0] * ni
        rates = direct_rate.get(name, [0.0] * ni)
        for i in range(ni):
            entry: dict[str, Any] = {"start": labels[i]}
            entry.update(_kpis(records, [base + i]))
            entry["input"] = {
                "arrivalsPerHour": round(rates[i] * 3600.0, 6),
                "agentsLoggedIn": round(staffed[i], 6) if comparable else None,
            }
            entry["erlang"] = _erlang(sim, name, rates[i], staffed[i]) if comparable else None
            intervals.append(entry)
        total: dict[str, Any] = _kpis(records, range(base, base + ni))
        same = comparable and len(set(rates)) == 1 and len(set(staffed)) == 1
        total["erlang"] = _erlang(sim, name, rates[0], staffed[0]) if same else None
        hist = []
        for b in range(HIST_BINS):
            shares: list[float | None] = []
            for r in records:
                n = sum(r.wait_hist[qi * HIST_BINS : (qi + 1) * HIST_BINS])
                shares.append(_ratio(r.wait_hist[qi * HIST_BINS + b], n, 100.0))
            hist.append(estimate(shares).as_dict())
        traffic = spec.queues[name]
        queues.append(
            {
                "name": name,
                "channel": q.channel.value if isinstance(q.channel, Channel) else str(q.channel),
                "strategy": q.strategy.name,
                "serviceLevelTarget": {
                    "percent": q.service_level.percent,
                    "seconds": q.service_level.seconds,
                    "excludeAbandonedUnderSeconds": q.service_level.exclude_abandoned_under_seconds,
                },
                "handleTimeMeanSeconds": round(traffic.handle_time.mean_value, 6),
                "patienceMeanSeconds": round(traffic.patience.mean_value, 6)
                if traffic.patience is not None
                else None,
                "total": total,
                "intervals": intervals,
                "waitHistogram": {"binSeconds": HIST_BIN_SECONDS, "sharePercent": hist},
            }
        )

    agents = []
    for a, agent_id in enumerate(sim.agent_names):
        occ: list[float | None] = []
        handled: list[float | None] = []
        for r in records:
            work = sum(r.agent_work[a * ni : (a + 1) * ni])
            idle = sum(r.agent_idle[a * ni : (a + 1) * ni])
            occ.append(_ratio(work, work + idle, 100.0))
            handled.append(r.agent_handled[a])
        teams = [t.name for t in sim.setup.teams if any(x.id == agent_id for x in t.agents)]
        agents.append(
            {
                "id": agent_id,
                "teams": teams,
                "occupancyPercent": estimate(occ).as_dict(),
                "contactsHandled": estimate(handled).as_dict(),
            }
        )
    teams_out = []
    index = sim.agent_index
    for team in sim.setup.teams:
        ids = [index[a.id] for a in team.agents]
        by_interval = []
        for i in range(ni):
            vals: list[float | None] = []
            for r in records:
                work = sum(r.agent_work[a * ni + i] for a in ids)
                idle = sum(r.agent_idle[a * ni + i] for a in ids)
                vals.append(_ratio(work, work + idle, 100.0))
            by_interval.append(estimate(vals).as_dict())
        day_vals: list[float | None] = []
        for r in records:
            work = sum(sum(r.agent_work[a * ni : (a + 1) * ni]) for a in ids)
            idle = sum(sum(r.agent_idle[a * ni : (a + 1) * ni]) for a in ids)
            day_vals.append(_ratio(work, work + idle, 100.0))
        teams_out.append(
            {
                "name": team.name,
                "agents": len(ids),
                "occupancyPercent": estimate(day_vals).as_dict(),
                "occupancyPercentByInterval": by_interval,
            }
        )
    flows_out = []
    n_out = len(OUTCOMES)
    for f, name in enumerate(sim.flow_names):
        outcomes = {}
        for o, kind in enumerate(OUTCOMES):
            outcomes[kind.value] = estimate(
                [_ratio(r.flow_outcomes[f * n_out + o], r.flow_calls[f], 100.0) for r in records]
            ).as_dict()
        done = [sum(r.flow_outcomes[f * n_out : (f + 1) * n_out]) for r in records]
        flows_out.append(
            {
                "name": name,
                "calls": estimate([r.flow_calls[f] for r in records]).as_dict(),
                "outcomesPercent": outcomes,
                "ivrSecondsMean": estimate(
                    [_ratio(r.flow_seconds[f], d) for r, d in zip(records, done, strict=True)]
                ).as_dict(),
            }
        )
    names = sorted({name for r in records for name in r.decisions})
    totals = [sum(r.decisions.values()) for r in records]
    routing = {
        "decisionsPercent": {
            name: estimate(
                [
                    _ratio(r.decisions.get(name, 0), n, 100.0)
                    for r, n in zip(records, totals, strict=True)
                ]
            ).as_dict()
            for name in names
        },
        "fallbackPercent": estimate(
            [_ratio(r.fallbacks, n, 100.0) for r, n in zip(records, totals, strict=True)]
        ).as_dict(),
    }
    little = max(
        (abs(r.waiting_area - r.wait_total) / r.wait_total if r.wait_total > 0 else 0.0)
        for r in records
    )
    violations = sum(
        1
        for r in records
        for k in range(len(r.offered))
        if r.offered[k]
        != r.answered[k] + r.abandoned[k] + r.overflowed[k] + r.timed_out[k] + r.unfinished[k]
    )
    return {
        "schemaVersion": SCHEMA_VERSION,
        "tenant": sim.tenant.namespace,
        "workload": sim.workload.metadata.name,
        "seed": seed,
        "replications": len(records),
        "confidenceLevel": 0.95,
        "day": {
            "weekday": spec.weekday.value,
            "start": spec.start,
            "end": spec.end,
            "intervalMinutes": spec.interval_minutes,
            "warmupMinutes": spec.warmup_minutes,
            "intervals": labels,
        },
        "queues": queues,
        "flows": flows_out,
        "routing": routing,
        "teams": teams_out,
        "agents": agents,
        "campaigns": [],
        "checks": {
            "littleLawMaxRelativeError": little,
            "flowConservationViolations": violations,
            "contactsSimulated": sum(r.entered for r in records),
            "contactsCounted": sum(r.contacts for r in records),
        },
    }


def simulate(
    sim: Simulator,
    seed: int,
    replications: int,
    progress: Callable[[float], None] | None = None,
    *,
    campaigns: bool = True,
    executor: Executor | None = None,
    cpu: CpuTime | None = None,
) -> dict[str, Any]:
    """Play ``replications`` independent replications and summarize them.

    With ``campaigns``, then the workload's campaigns too (:func:`add_campaigns`; without,
    the caller may add them, and the progress bar stops where they would continue it).
    ``progress`` gets the fraction of the whole run done (0..1), a few times a second.
    With ``executor`` (a process pool), the replications run on it: the same result, as
    the records come back in replication order. ``cpu`` gets the CPU seconds they took.
    """
    if replications < 1:
        raise ValueError(f"replications must be >= 1, got {replications}")
    share = _inbound_share(sim)
    step = None
    if progress is not None:

        def step(fraction: float, tell: Callable[[float], None] = progress) -> None:
            tell(fraction * share)

    if executor is None:
        replicate: Callable[[int, Callable[[float], None] | None], ReplicationRecord] = partial(
            sim.run, seed
        )
    else:
        inputs = (uuid.uuid4().hex, sim.tenant, sim.workload, sim.policy_factory, sim.source)
        replicate = partial(_remote_replication, inputs, seed)
    records, seconds = run_replications(replicate, replications, executor, step)
    if cpu is not None:
        cpu.inbound += seconds
    run = summarize(sim, records, seed)
    if campaigns:
        add_campaigns(sim, run, seed, replications, progress, executor=executor, cpu=cpu)
    return run


_SimInputs = tuple[str, Tenant, Workload, Callable[[], RoutingPolicy] | None, str]
_WORKER_SIMULATORS: dict[str, Simulator] = {}
"""The simulators a worker process built, by the token of the run that sent them."""


def _remote_replication(
    inputs: _SimInputs, seed: int, r: int, step: Callable[[float], None] | None
) -> ReplicationRecord:
    """One replication on a worker process: its simulator is built once per run."""
    token, tenant, workload, factory, source = inputs
    sim = _WORKER_SIMULATORS.get(token)
    if sim is None:
        _WORKER_SIMULATORS.clear()  # one run at a time: keep only the current one
        sim = _WORKER_SIMULATORS[token] = Simulator(
            tenant, workload, policy_factory=factory, source=source
        )
    return sim.run(seed, r, step)


def _inbound_share(sim: Simulator) -> float:
    """Share of the progress bar of the inbound day (each campaign takes about as long)."""
    return 1.0 / (1 + len(sim.workload.spec.campaigns))


def add_campaigns(
    sim: Simulator,
    run: dict[str, Any],
    seed: int,
    replications: int,
    progress: Callable[[float], None] | None = None,
    *,
    executor: Executor | None = None,
    cpu: CpuTime | None = None,
) -> None:
    """Play the workload's campaigns (``spec.campaigns``) and fill ``run["campaigns"]``.

    Each campaign gets ``replications`` of its own on the tenant's agents, with the inbound
    load ``run`` measured (:func:`~callmesh.sim.campaigns.inbound_from_run`). ``progress``
    continues the bar of :func:`simulate` from the inbound share to 1; ``executor`` and
    ``cpu`` as in :func:`simulate`.
    """
    if not sim.workload.spec.campaigns:
        if progress is not None:
            progress(1.0)
        return
    from callmesh.sim.campaigns import inbound_from_run, simulate_tenant_campaigns, summary_document

    share = _inbound_share(sim)

    def step(fraction: float) -> None:
        if progress is not None:
            progress(share + (1.0 - share) * fraction)

    summaries = simulate_tenant_campaigns(
        sim.tenant,
        sim.workload,
        seed=seed,
        replications=replications,
        inbound=inbound_from_run(sim.workload, run),
        progress=step,
        executor=executor,
        cpu=cpu,
    )
    run["campaigns"] = [
        summary_document(s, sim.tenant.campaigns[s.campaign].spec) for s in summaries
    ]
