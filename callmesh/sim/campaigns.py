"""Outbound campaigns on the simulated clock: the real dialer engine and the real ACD.

:func:`simulate_campaign` plays one day of one DialerCampaign. Nothing of the dialer or of
the ACD is reimplemented: the :class:`~callmesh.dialer.campaign.Campaign` decides every dial
(pacing, calling window, do-not-call, retries, abandonment cap) and the
:class:`~callmesh.acd.engine.Router` routes the answered calls to the target queue's agents,
who may also serve inbound queues (the agents are shared, as on a real floor). The loop only
does what the outside world does:

- a ``Dial`` rings the number: a person answers with probability ``contactRate`` after a
  drawn time to answer, a machine with ``machineRate`` (recognised ``amdSeconds`` later), the
  line is busy with ``busyRate``, otherwise it rings out at the campaign's ring timeout;
- a person -> ``campaign.on_outcome(HUMAN)`` -> ``Connect`` -> ``router.enqueue``; the offer
  is taken at once (outbound agents auto-answer) -> ``Connected`` ->
  ``campaign.on_agent_connected``; the talk ends after a drawn talk time ->
  ``router.complete`` (the router runs the wrap-up);
- no agent within the compliance window -> the campaign's ``SafeHarbour`` -> the contact
  leaves the queue (``router.abandon``), counted abandoned, as a regulator counts it;
- inbound arrivals (Poisson) into other queues compete for the same agents.

Pacers compared in the same run: the campaign's own mode (``predictive`` or
``progressive``), or VICIdial's adaptive dial level (:class:`~callmesh.dialer.pacing.
VicidialPacer`), which replaces only the number of calls; every compliance gate stays.

KPIs (per replication, read from the engines' effects): agent occupancy (Busy, Reserved and
WrapUp time over logged-in time), abandonment rate (the campaign's own meter: answered by a
person with no agent within the window, per day), contacts reached per agent-hour, dials.
"""

from __future__ import annotations

import datetime as dt
import heapq
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from callmesh.acd.config import QueueConfig, TeamConfig
from callmesh.acd.effects import AgentState, AgentStateChanged, Connected, ContactEnded, Offer
from callmesh.acd.engine import ContactSpec, Router
from callmesh.api import Tenant
from callmesh.api.dialercampaign import DialerCampaignSpec, DialerMode
from callmesh.dialer.campaign import (
    AgentSnapshot,
    Campaign,
    Connect,
    Dial,
    HangupCall,
    LeaveMessage,
    Outcome,
    PlayAnnouncement,
    SafeHarbour,
)
from callmesh.dialer.contacts import Contact, ContactList
from callmesh.dialer.pacing import VicidialPacer
from callmesh.sim.distributions import Distribution
from callmesh.sim.parallel import CpuTime, run_replications
from callmesh.sim.stats import Estimate, estimate
from callmesh.sim.workload import CampaignTraffic, Workload

if TYPE_CHECKING:
    from callmesh.acd.config import TierConfig

__all__ = [
    "CampaignRecord",
    "CampaignSummary",
    "CampaignTraffic",
    "InboundTraffic",
    "Pacer",
    "campaign_agents",
    "inbound_from_run",
    "parse_campaign_traffic",
    "simulate_campaign",
    "simulate_tenant_campaigns",
    "summarize",
    "summary_document",
    "summary_line",
    "synthetic_contacts",
]

Pacer = Literal["campaign", "progressive", "vicidial"]
"""Who decides how many calls: the campaign's own mode, 1:1, or VICIdial's dial level."""

_WORKING = frozenset({AgentState.RESERVED, AgentState.BUSY, AgentState.WRAP_UP})
_ON = frozenset(set(AgentState) - {AgentState.LOGGED_OUT})

# Event kinds, also their priority at equal times: agents get free before calls land.
_TIMER = 0
_TALK_END = 1
_OUTCOME = 2
_LISTEN = 3
_PATIENCE = 4
_INBOUND = 5
_TICK = 6
_DEADLINE = 7


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class InboundTraffic(_Model):
    """Inbound calls into another queue served by the same agents."""

    queue: str = Field(description="The inbound queue.")
    per_hour: float = Field(ge=0, description="Poisson arrivals per hour.")
    handle_time: Distribution = Field(description="Talk time in seconds.")


def synthetic_contacts(count: int, time_zone: str = "UTC") -> ContactList:
    """``count`` distinct contacts (numbers +1555xxxxxxx) in one zone, for simulations."""
    return ContactList(
        tuple(Contact(f"s{i}", f"+1555{i:07d}", time_zone, {}) for i in range(count)), ()
    )


@dataclass(slots=True)
class CampaignRecord:
    """One replication's counters (flat, as the simulator's records)."""

    pacer: str
    seed: int
    hours: float
    agents: int
    dialled: int = 0
    answered: int = 0
    abandoned: int = 0
    machines: int = 0
    reached: int = 0
    inbound_answered: int = 0
    transferred: int = 0
    opted_out: int = 0
    transfers_abandoned: int = 0
    logged_in_seconds: float = 0.0
    working_seconds: float = 0.0
    per_day: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def occupancy(self) -> float:
        """Busy, reserved and wrap-up time over logged-in time (0..1)."""
        return self.working_seconds / self.logged_in_seconds if self.logged_in_seconds else 0.0

    @property
    def abandon_rate(self) -> float:
        """Abandoned over answered by a person, over the run."""
        return self.abandoned / self.answered if self.answered else 0.0

    @property
    def worst_day_abandon_rate(self) -> float:
        """The highest abandonment rate of any day of the run (the regulator's test)."""
        rates = [b / a for a, b in self.per_day.values() if a]
        return max(rates, default=0.0)

    @property
    def reached_per_agent_hour(self) -> float:
        """Contacts that reached an agent, per logged-in agent-hour."""
        hours = self.logged_in_seconds / 3600
        return self.reached / hours if hours else 0.0


def _start_time(date: dt.date, clock: str, zone: str) -> float:
    hh, mm = (int(x) for x in clock.split(":"))
    return dt.datetime(date.year, date.month, date.day, hh, mm, tzinfo=ZoneInfo(zone)).timestamp()


def campaign_agents(
    spec: DialerCampaignSpec, target: QueueConfig, teams: Mapping[str, TeamConfig]
) -> tuple[str, ...]:
    """The agents who can take the campaign's answered calls in time, in tier order.

    A predictive or progressive call must reach an agent within the compliance window, so
    only tiers the target queue opens to within ``pacing.complianceWindowSeconds`` count
    (a tier that helps after 90 s never takes one); an agentless transfer waits like an
    inbound caller, so every tier counts. These agents are the ones the pacer sees and the
    ones whose occupancy is reported.
    """
    window = spec.pacing.compliance_window_seconds
    tiers: Iterable[TierConfig] = (
        target.tiers
        if spec.mode is DialerMode.agentless
        else [t for t in target.tiers if t.delay <= window]
    )
    out: dict[str, None] = {}
    for tier in tiers:
        for team in tier.teams:
            for agent in teams[team].agents:
                out.setdefault(agent.id, None)
    return tuple(out)


def _with_wrap_up(
    queues: list[QueueConfig], teams: list[TeamConfig], target: QueueConfig, seconds: float
) -> tuple[list[QueueConfig], list[TeamConfig]]:
    """The target queue and the teams of its tiers with ``seconds`` of wrap-up."""
    names = {team for tier in target.tiers for team in tier.teams}
    queues = [replace(q, wrap_up_time=seconds) if q.name == target.name else q for q in queues]
    teams = [
        replace(t, wrap_up_time=seconds) if t.name in names and t.wrap_up_time is not None else t
        for t in teams
    ]
    return queues, teams


def simulate_campaign(
    name: str,
    spec: DialerCampaignSpec,
    queues: Iterable[QueueConfig],
    teams: Iterable[TeamConfig],
    traffic: CampaignTraffic,
    *,
    seed: int,
    hours: float = 8.0,
    pacer: Pacer = "campaign",
    date: dt.date = dt.date(2026, 6, 1),
    start: str = "09:00",
    time_zone: str = "UTC",
    inbound: Iterable[InboundTraffic] = (),
    contacts: ContactList | None = None,
    do_not_call: frozenset[str] = frozenset(),
    tick_seconds: float = 1.0,
) -> CampaignRecord:
    """Play ``hours`` of campaign ``name`` from ``start`` on ``date`` (see the module doc).

    Every agent of ``teams`` is logged in for the whole run. ``pacer`` picks who sizes the
    dialling (``campaign``: the campaign's own mode). ``time_zone`` is the zone of the
    start time; the synthetic contacts live in the calling window's ``defaultTimeZone``.
    The same ``seed`` gives the same record.
    """
    rng = random.Random(seed)
    queue_list, team_list = list(queues), list(teams)
    target = next((q for q in queue_list if q.name == spec.queue), None)
    if target is None:
        raise ValueError(
            f"campaign {name}: spec.queue {spec.queue!r} is not among the queues"
            f" ({', '.join(q.name for q in queue_list)}): add the queue or fix spec.queue"
        )
    if traffic.wrap_up_seconds is not None:
        queue_list, team_list = _with_wrap_up(
            queue_list, team_list, target, traffic.wrap_up_seconds
        )
        target = next(q for q in queue_list if q.name == spec.queue)
    router = Router(queue_list, team_list, seed=rng.getrandbits(63), history_limit=0)
    team_of = {t.name: t for t in team_list}
    target_agents = campaign_agents(spec, target, team_of)
    measured = frozenset(target_agents)
    wrap_time = target.wrap_up_time or 0.0
    for tier in target.tiers:
        for team in tier.teams:
            if team_of[team].wrap_up_time is not None:
                wrap_time = float(team_of[team].wrap_up_time or 0.0)
    all_agents = sorted({a.id for t in team_list for a in t.agents})
    if contacts is None:
        contacts = synthetic_contacts(traffic.contacts, spec.calling_window.default_time_zone)
    campaign_spec = spec
    if pacer == "progressive":
        campaign_spec = spec.model_copy(update={"mode": DialerMode.progressive})
    campaign = Campaign(name, campaign_spec, contacts, do_not_call, time_zone=time_zone)
    t0 = _start_time(date, start, time_zone)
    end = t0 + hours * 3600
    rec = CampaignRecord(pacer=pacer, seed=seed, hours=hours, agents=len(target_agents))

    answer_time, talk_time = traffic.answer_time.sampler(), traffic.talk_time.sampler()
    listen_time = traffic.listen_time.sampler()
    patience = traffic.patience.sampler() if traffic.patience is not None else None
    p_transfer = traffic.transfer_rate or 0.0
    p_opt_out = traffic.opt_out_rate
    inbound_list = list(inbound)
    inbound_talk = [s.handle_time.sampler() for s in inbound_list]
    p_human, p_machine, p_busy = traffic.contact_rate, traffic.machine_rate, traffic.busy_rate
    ring_timeout = float(spec.pacing.ring_timeout_seconds)
    amd_seconds = traffic.amd_seconds
    random01 = rng.random

    events: list[tuple[float, int, int, Any]] = []
    seq = 0

    def push(at: float, kind: int, payload: Any) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (at, kind, seq, payload))

    state: dict[str, AgentState] = dict.fromkeys(all_agents, AgentState.LOGGED_OUT)
    since: dict[str, float] = dict.fromkeys(all_agents, t0)
    wrap_ends: dict[str, float] = {}
    free_agents: set[str] = set()  # campaign agents Available to the router
    contact_agent: dict[str, str] = {}
    outbound: set[str] = set()

    def agent_changed(change: AgentStateChanged) -> None:
        agent, new = change.agent_id, change.state
        if agent not in measured:
            return
        old = state[agent]
        at = max(t0, min(change.at, end))
        span = at - since[agent]
        if old in _ON:
            rec.logged_in_seconds += span
            if old in _WORKING:
                rec.working_seconds += span
        state[agent], since[agent] = new, at
        if new is AgentState.WRAP_UP:
            wrap_ends[agent] = change.at + wrap_time
        else:
            wrap_ends.pop(agent, None)
        if new is AgentState.AVAILABLE:
            free_agents.add(agent)
        else:
            free_agents.discard(agent)

    def apply(effects: Iterable[Any], now: float) -> None:
        pending = list(effects)
        i = 0
        while i < len(pending):
            effect = pending[i]
            i += 1
            cls = type(effect)
            if cls is AgentStateChanged:
                agent_changed(effect)
            elif cls is Offer:
                pending += router.accept(effect.agent_ids[0], effect.contact_id, now)
            elif cls is Connected:
                contact_agent[effect.contact_id] = effect.agent_id
                if effect.contact_id in outbound:
                    campaign.on_agent_connected(effect.contact_id, now)
                    rec.reached += 1
                    push(now + talk_time(rng), _TALK_END, effect.contact_id)
                else:
                    rec.inbound_answered += 1
                    index = int(effect.contact_id.split(":", 2)[1])
                    push(now + inbound_talk[index](rng), _TALK_END, effect.contact_id)
            elif cls is ContactEnded and effect.agent_id is None:
                outbound.discard(effect.contact_id)  # left the queue without an agent

    def carry(effects: Iterable[Any], now: float) -> None:
        for effect in effects:
            cls = type(effect)
            if cls is Dial:
                rec.dialled += 1
                draw = random01()
                if draw < p_human:
                    delay = min(answer_time(rng), ring_timeout)
                    push(now + delay, _OUTCOME, (effect.attempt_id, Outcome.HUMAN))
                elif draw < p_human + p_machine:
                    delay = min(answer_time(rng), ring_timeout) + amd_seconds
                    push(now + delay, _OUTCOME, (effect.attempt_id, Outcome.MACHINE))
                elif draw < p_human + p_machine + p_busy:
                    push(now + 3.0, _OUTCOME, (effect.attempt_id, Outcome.BUSY))
                else:
                    push(now + ring_timeout, _OUTCOME, (effect.attempt_id, Outcome.NO_ANSWER))
            elif cls is Connect:
                outbound.add(effect.attempt_id)
                apply(
                    router.enqueue(
                        ContactSpec(effect.attempt_id, effect.queue, attributes=effect.attributes),
                        now,
                    ),
                    now,
                )
                if patience is not None and effect.attempt_id not in contact_agent:
                    push(now + patience(rng), _PATIENCE, effect.attempt_id)
            elif cls is SafeHarbour:
                if effect.attempt_id not in contact_agent and effect.attempt_id in outbound:
                    apply(router.abandon(effect.attempt_id, now), now)
                outbound.discard(effect.attempt_id)
            elif cls is LeaveMessage:
                rec.machines += 1
            elif cls is HangupCall:
                pass
            elif cls is PlayAnnouncement:
                push(now + listen_time(rng), _LISTEN, effect)

    def listened(effect: PlayAnnouncement, now: float) -> None:
        """An agentless listener presses the transfer key, the opt-out key, or hangs up."""
        draw = random01()
        if draw < p_transfer:
            rec.transferred += 1
            carry(campaign.on_digit(effect.attempt_id, effect.transfer_digit, now), now)
        elif draw < p_transfer + p_opt_out and effect.opt_out_digit is not None:
            rec.opted_out += 1
            carry(campaign.on_digit(effect.attempt_id, effect.opt_out_digit, now), now)

    vici = VicidialPacer(next_update=t0 + 60.0)
    cap = spec.pacing.max_abandon_percent / 100
    n_target = len(target_agents)

    def pace(now: float) -> None:
        free = len(free_agents)
        wanted: int | None = None
        if pacer == "vicidial":
            waiting = len(router.waiting(spec.queue))
            vici.observe(now, free, waiting, n_target, campaign.abandon_rate(now), cap)
            wanted = vici.calls(free, campaign.in_flight)
            snapshot = AgentSnapshot(free=free)
        else:
            snapshot = AgentSnapshot(
                free=free, freeing=tuple(at - now for at in wrap_ends.values())
            )
        carry(campaign.tick(now, snapshot, wanted=wanted), now)

    for agent in all_agents:
        apply(router.login(agent, t0), t0)
    for index, stream in enumerate(inbound_list):
        if stream.per_hour > 0:
            push(t0 + rng.expovariate(stream.per_hour / 3600), _INBOUND, index)
    push(t0, _TICK, None)
    inbound_seq = 0
    while events:
        at, kind, _, payload = heapq.heappop(events)
        timer = router.next_deadline()
        if timer is not None and timer < at:
            heapq.heappush(events, (at, kind, _, payload))
            at, kind, payload = timer, _TIMER, None
        if at > end:
            break
        if kind == _TIMER:
            apply(router.tick(at), at)
        elif kind == _TALK_END:
            outbound.discard(payload)
            apply(router.complete(payload, at), at)
            contact_agent.pop(payload, None)
        elif kind == _OUTCOME:
            attempt_id, outcome = payload
            carry(campaign.on_outcome(attempt_id, outcome, at), at)
        elif kind == _LISTEN:
            listened(payload, at)
        elif kind == _PATIENCE:
            if payload in outbound and payload not in contact_agent:
                rec.transfers_abandoned += 1
                outbound.discard(payload)
                apply(router.abandon(payload, at), at)
        elif kind == _INBOUND:
            stream = inbound_list[payload]
            inbound_seq += 1
            apply(router.enqueue(ContactSpec(f"in:{payload}:{inbound_seq}", stream.queue), at), at)
            push(at + rng.expovariate(stream.per_hour / 3600), _INBOUND, payload)
            continue
        if kind == _TICK:
            push(at + tick_seconds, _TICK, None)
        pace(at)  # expires the compliance windows that are due, then dials
        deadline = campaign.next_deadline()
        if deadline is not None:
            push(deadline, _DEADLINE, None)
    for agent in all_agents:  # close the books at the end of the run
        agent_changed(AgentStateChanged(agent, AgentState.LOGGED_OUT, "end of run", end))
    stats = campaign.stats(end)
    rec.answered, rec.abandoned = stats.answered, stats.abandoned
    rec.per_day = campaign.abandon_by_day()
    return rec


def summarize(records: Iterable[CampaignRecord]) -> Mapping[str, Estimate]:
    """Mean and 95% interval over replications of each KPI."""
    recs = list(records)
    return {
        "occupancy": estimate(r.occupancy for r in recs),
        "abandon_rate": estimate(r.abandon_rate for r in recs),
        "worst_day_abandon_rate": estimate(r.worst_day_abandon_rate for r in recs),
        "reached_per_agent_hour": estimate(r.reached_per_agent_hour for r in recs),
        "dialled": estimate(float(r.dialled) for r in recs),
    }


@dataclass(frozen=True, slots=True)
class CampaignSummary:
    """One campaign over the replications of a simulated day: records and intervals."""

    campaign: str
    pacer: str
    records: tuple[CampaignRecord, ...]
    kpis: Mapping[str, Estimate]


def parse_campaign_traffic(data: object, source: str = "workload") -> dict[str, CampaignTraffic]:
    """The ``spec.campaigns`` mapping of a workload document (campaign name -> traffic).

    Raises:
        ValueError: naming the field and what to put there.
    """
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValueError(f"{source}: spec.campaigns must map campaign names to their traffic")
    out: dict[str, CampaignTraffic] = {}
    for name, body in data.items():
        try:
            out[str(name)] = CampaignTraffic.model_validate(body)
        except ValueError as exc:
            raise ValueError(f"{source}: spec.campaigns.{name}: {exc}") from None
    return out


def inbound_from_run(workload: Workload, run: Mapping[str, Any]) -> list[InboundTraffic]:
    """Inbound load on the agents, from a ``callmesh simulate`` run of the same workload.

    Each queue's answered contacts per measured hour (mean over the replications, IVR-routed
    calls included) become a Poisson stream with the workload's handle time, so campaign
    agents also serve what the inbound simulation gave them.
    """
    spec = workload.spec
    hours = (spec.day_seconds - spec.warmup_minutes * 60.0) / 3600.0
    out = []
    for queue in run["queues"]:
        answered = queue["total"]["answered"]["mean"]
        traffic = spec.queues.get(queue["name"])
        if answered and traffic is not None:
            out.append(
                InboundTraffic(
                    queue=queue["name"], per_hour=answered / hours, handle_time=traffic.handle_time
                )
            )
    return out


def simulate_tenant_campaigns(
    tenant: Tenant,
    workload: Workload,
    traffic: Mapping[str, CampaignTraffic] | None = None,
    *,
    seed: int,
    replications: int,
    inbound: Iterable[InboundTraffic] | None = None,
    progress: Callable[[float], None] | None = None,
    executor: Executor | None = None,
    cpu: CpuTime | None = None,
) -> list[CampaignSummary]:
    """Every campaign of ``tenant`` that ``traffic`` describes, on the workload's day.

    ``traffic`` defaults to the workload's ``spec.campaigns``. The agents are the tenant's
    teams (all logged in from the workload's start to its end); ``inbound`` competes for
    them (default: the workload's direct queue arrivals at their mean hourly rate;
    ``callmesh simulate`` passes :func:`inbound_from_run`). Campaigns run one at a time,
    each with its own replications (seed ``seed * 1000 + replication``), on ``executor``'s
    processes if given (see :func:`~callmesh.sim.parallel.run_replications`). ``progress``
    gets the fraction of all the campaign replications done, ``cpu`` their CPU seconds.
    """
    from callmesh.sim.build import build_acd
    from callmesh.sim.workload import mean_rate_per_hour

    if traffic is None:
        traffic = workload.spec.campaigns
    missing = sorted(set(traffic) - set(tenant.campaigns))
    if missing:
        raise ValueError(
            f"workload spec.campaigns names {', '.join(missing)}, which the manifests do not"
            f" define: add the DialerCampaign or remove it from the workload"
        )
    setup = build_acd(tenant, workload)
    spec = workload.spec
    if inbound is None:
        inbound = [
            InboundTraffic(
                queue=arrival.queue,
                per_hour=mean_rate_per_hour(workload, i),
                handle_time=spec.queues[arrival.queue].handle_time,
            )
            for i, arrival in enumerate(spec.arrivals)
            if arrival.queue is not None and arrival.queue in spec.queues
        ]
    streams = list(inbound)
    zone = tenant.center.spec.time_zone if tenant.center is not None else "UTC"
    out = []
    names = sorted(traffic)
    for i, name in enumerate(names):
        resource = tenant.campaigns[name]
        step = None
        if progress is not None:

            def step(fraction: float, i: int = i, tell: Callable[[float], None] = progress) -> None:
                tell((i + fraction) / len(names))

        replicate = partial(
            _campaign_replication,
            name,
            resource.spec,
            setup.queues,
            setup.teams,
            traffic[name],
            seed,
            spec.day_seconds / 3600,
            spec.calendar_date(),
            spec.start,
            zone,
            streams,
        )
        records, seconds = run_replications(replicate, replications, executor, step)
        if cpu is not None:
            cpu.campaigns += seconds
        summary = CampaignSummary(
            name, resource.spec.mode.value, tuple(records), summarize(records)
        )
        out.append(summary)
    return out


def _campaign_replication(
    name: str,
    spec: DialerCampaignSpec,
    queues: Sequence[QueueConfig],
    teams: Sequence[TeamConfig],
    traffic: CampaignTraffic,
    seed: int,
    hours: float,
    date: dt.date,
    start: str,
    time_zone: str,
    inbound: Sequence[InboundTraffic],
    r: int,
    step: Callable[[float], None] | None,
) -> CampaignRecord:
    """Replication ``r`` of one campaign of :func:`simulate_tenant_campaigns` (picklable)."""
    record = simulate_campaign(
        name,
        spec,
        queues,
        teams,
        traffic,
        seed=seed * 1000 + r,
        hours=hours,
        date=date,
        start=start,
        time_zone=time_zone,
        inbound=inbound,
    )
    if step is not None:
        step(1.0)
    return record


def _pct(values: Iterable[float]) -> dict[str, float | int | None]:
    return estimate(100.0 * v for v in values).as_dict()


def summary_document(summary: CampaignSummary, spec: DialerCampaignSpec) -> dict[str, Any]:
    """A campaign's KPIs for the ``campaigns`` array of ``callmesh simulate --output json``.

    Every KPI is an estimate (mean, 95% half-width, interval, n) over the replications;
    ``simulate-result.schema.json`` defines each one.
    """
    recs = summary.records
    return {
        "name": summary.campaign,
        "mode": summary.pacer,
        "queue": spec.queue,
        "agents": recs[0].agents if recs else 0,
        "maxAbandonPercent": spec.pacing.max_abandon_percent,
        "complianceWindowSeconds": spec.pacing.compliance_window_seconds,
        "abandonPeriod": spec.pacing.period.value,
        "occupancyPercent": _pct(r.occupancy for r in recs),
        "abandonedPercent": _pct(r.abandon_rate for r in recs),
        "worstDayAbandonedPercent": _pct(r.worst_day_abandon_rate for r in recs),
        "reachedPerAgentHour": estimate(r.reached_per_agent_hour for r in recs).as_dict(),
        "dialled": estimate(float(r.dialled) for r in recs).as_dict(),
        "answered": estimate(float(r.answered) for r in recs).as_dict(),
        "abandoned": estimate(float(r.abandoned) for r in recs).as_dict(),
        "reached": estimate(float(r.reached) for r in recs).as_dict(),
        "machines": estimate(float(r.machines) for r in recs).as_dict(),
        "transferred": estimate(float(r.transferred) for r in recs).as_dict(),
        "inboundAnswered": estimate(float(r.inbound_answered) for r in recs).as_dict(),
    }


def summary_line(document: Mapping[str, Any]) -> str:
    """One line for the terminal from :func:`summary_document`: occupancy, abandonment and
    reach per agent-hour, each mean ± 95% half-width."""

    def pm(key: str, digits: int) -> str:
        e = document[key]
        mean = e["mean"] if e["mean"] is not None else 0.0
        half = f" ± {e['halfWidth']:.{digits}f}" if e["halfWidth"] is not None else ""
        return f"{mean:.{digits}f}{half}"

    return (
        f"campaign {document['name']} ({document['mode']}, {document['agents']} agents):"
        f" occupancy {pm('occupancyPercent', 1)}%,"
        f" abandoned {pm('abandonedPercent', 2)}% of answered"
        f" (cap {document['maxAbandonPercent']:g}%),"
        f" {pm('reachedPerAgentHour', 2)} contacts reached per agent-hour"
    )
