"""From a tenant's manifests and a workload to what the simulator runs.

The ACD engine takes plain :mod:`callmesh.acd.config` dataclasses; this module maps the
``callmesh.io/v1alpha1`` models onto them (the same mapping a router worker needs), applies
the workload's overrides (chat concurrency), and turns ``AgentTeam.spec.shifts`` into login
and logout times on the simulated clock (0 = the workload's ``start``).
"""

from __future__ import annotations

from dataclasses import dataclass

from callmesh.acd.config import (
    AgentConfig,
    OverflowAction,
    OverflowConfig,
    QueueConfig,
    TeamConfig,
    TierConfig,
)
from callmesh.acd.strategy import Channel
from callmesh.api import AgentTeam, Queue, Tenant
from callmesh.api.queue import OverflowAction as ApiOverflow
from callmesh.sim.workload import Workload, clock

__all__ = ["AcdSetup", "Shift", "build_acd", "shift_plan", "team_members"]


@dataclass(frozen=True, slots=True)
class AcdSetup:
    """The engine's configuration for one tenant and workload."""

    queues: tuple[QueueConfig, ...]
    teams: tuple[TeamConfig, ...]


@dataclass(frozen=True, slots=True)
class Shift:
    """One agent's logged-in period on the simulated clock, in seconds."""

    agent_id: str
    login: float
    logout: float | None


def _channel(value: str) -> Channel:
    return Channel(value)


def _queue_config(queue: Queue, teams: dict[str, AgentTeam], workload: Workload) -> QueueConfig:
    spec = queue.spec
    tiers = tuple(
        TierConfig(tuple(t.teams), float(t.escalate_after_seconds))
        for t in sorted(spec.tiers, key=lambda t: t.level)
    )
    overflow: OverflowConfig | None = None
    if spec.overflow is not None and spec.overflow.action is not ApiOverflow.hangup:
        action = OverflowAction(spec.overflow.action.value)
        target = spec.overflow.queue if action is OverflowAction.QUEUE else None
        overflow = OverflowConfig(action, target)
    team_names = [name for t in spec.tiers for name in t.teams]
    override = any(teams[n].spec.wrap_up_seconds is not None for n in team_names if n in teams)
    traffic = workload.spec.queues.get(queue.name)
    aht = traffic.handle_time.mean_value if traffic is not None else 180.0
    return QueueConfig(
        name=queue.name,
        tiers=tiers,
        strategy=spec.strategy.name,
        params=dict(spec.strategy.params),
        channel=_channel(spec.channel.value),
        skills={s.name: s.min_level for s in spec.required_skills},
        priority=spec.priority,
        max_wait=float(spec.max_wait_seconds) if spec.max_wait_seconds > 0 else None,
        overflow=overflow,
        offer_timeout=float(spec.offer_timeout_seconds),
        # A team's wrapUpSeconds overrides the queue's (the API's rule); the engine reads the
        # team's value only when the queue sets none, so leave it unset then.
        wrap_up_time=None if override else float(spec.wrap_up_seconds),
        expected_handle_time=max(aht, 1e-9),
    )


def build_acd(tenant: Tenant, workload: Workload) -> AcdSetup:
    """The engine configuration of ``tenant`` under ``workload``'s overrides.

    A team's wrap-up override applies to every queue it serves; a team without one, in a
    queue where another team overrides, wraps up for the queue's ``wrapUpSeconds`` (the
    longest, if it serves several such queues).
    """
    queues = tuple(
        _queue_config(tenant.queues[name], tenant.teams, workload) for name in sorted(tenant.queues)
    )
    queue_wrap: dict[str, float] = {}
    for name in sorted(tenant.queues):
        q = tenant.queues[name]
        for tier in q.spec.tiers:
            for team_name in tier.teams:
                queue_wrap[team_name] = max(
                    queue_wrap.get(team_name, 0.0), float(q.spec.wrap_up_seconds)
                )
    agents: dict[str, AgentConfig] = {}
    teams: list[TeamConfig] = []
    for name in sorted(tenant.teams):
        team = tenant.teams[name]
        override = workload.spec.teams.get(name)
        members: list[AgentConfig] = []
        for agent in team.spec.agents:
            chat = agent.capacity.chat
            if override is not None and override.chat_concurrency is not None and chat > 0:
                chat = override.chat_concurrency
            config = AgentConfig(
                id=agent.id,
                skills={s.name: s.level for s in agent.skills},
                capacity={
                    Channel.VOICE: agent.capacity.voice,
                    Channel.CHAT: chat,
                    Channel.EMAIL: agent.capacity.email,
                },
                name=agent.name,
            )
            known = agents.get(agent.id)
            if known is not None and known != config:
                config = known  # first team's definition wins; `callmesh validate` reports it
            agents[agent.id] = config
            members.append(config)
        wrap = team.spec.wrap_up_seconds
        teams.append(
            TeamConfig(
                name=name,
                agents=tuple(members),
                wrap_up_time=float(wrap) if wrap is not None else queue_wrap.get(name, 0.0),
            )
        )
    return AcdSetup(queues, tuple(teams))


def team_members(tenant: Tenant) -> dict[str, tuple[str, ...]]:
    """Agent ids of each team, in member order."""
    return {name: tuple(a.id for a in t.spec.agents) for name, t in sorted(tenant.teams.items())}


def shift_plan(tenant: Tenant, workload: Workload, horizon: float) -> list[Shift]:
    """Login/logout times of every agent for the workload's weekday, clipped to the run.

    A team without shifts keeps its agents logged in from 0 to the end of the run. A shift
    with no ``agents`` list covers the whole team. Overlapping shifts of one agent (also
    across teams) are merged; a logout at or after ``horizon`` is left out (None).
    """
    spec = workload.spec
    day0 = clock(spec.start) * 60.0
    periods: dict[str, list[tuple[float, float]]] = {}
    for name in sorted(tenant.teams):
        team = tenant.teams[name]
        ids = [a.id for a in team.spec.agents]
        if not team.spec.shifts:
            for agent_id in ids:
                periods.setdefault(agent_id, []).append((0.0, horizon))
            continue
        for agent_id in ids:
            periods.setdefault(agent_id, [])
        for shift in team.spec.shifts:
            if spec.weekday not in shift.days:
                continue
            start = clock(shift.start) * 60.0 - day0
            end = clock(shift.end) * 60.0 - day0
            start, end = max(start, 0.0), min(end, horizon)
            if end <= start:
                continue
            for agent_id in shift.agents or ids:
                if agent_id in periods:
                    periods[agent_id].append((start, end))
    plan: list[Shift] = []
    for agent_id in sorted(periods):
        merged: list[list[float]] = []
        for start, end in sorted(periods[agent_id]):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        for start, end in merged:
            plan.append(Shift(agent_id, start, end if end < horizon else None))
    return plan
