"""From a tenant's manifests and a workload to what the simulator runs.

The ACD engine takes plain :mod:`callmesh.acd.config` dataclasses, built from the
``callmesh.io/v1alpha1`` models by the engine's own mapping (the router worker uses the same);
this module applies the workload's overrides (chat concurrency, expected handle time) and
turns ``AgentTeam.spec.shifts`` into login and logout times on the simulated clock (0 = the
workload's ``start``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from callmesh.acd.config import AgentConfig, QueueConfig, TeamConfig, from_resources
from callmesh.acd.strategy import Channel
from callmesh.api import Tenant
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


def build_acd(tenant: Tenant, workload: Workload) -> AcdSetup:
    """The engine configuration of ``tenant`` under ``workload``'s overrides.

    The mapping itself is the engine's own (:func:`callmesh.acd.config.from_resources`, the
    one the router worker uses); the simulation only sets each queue's expected handle time
    (for the router's estimated wait before any contact completes) to the workload's mean,
    and each agent's chat capacity to the team's ``chatConcurrency``. An agent in several
    teams keeps one configuration: the largest override of its teams applies.
    """
    queues, teams = from_resources(
        (tenant.queues[name] for name in sorted(tenant.queues)),
        (tenant.teams[name] for name in sorted(tenant.teams)),
    )
    chat: dict[str, int] = {}
    for team in teams:
        override = workload.spec.teams.get(team.name)
        if override is None or override.chat_concurrency is None:
            continue
        for member in team.agents:
            if member.capacity.get(Channel.CHAT, 0) > 0:
                chat[member.id] = max(chat.get(member.id, 0), override.chat_concurrency)

    def agent(config: AgentConfig) -> AgentConfig:
        if config.id not in chat:
            return config
        return replace(config, capacity={**config.capacity, Channel.CHAT: chat[config.id]})

    out_teams = tuple(replace(t, agents=tuple(agent(a) for a in t.agents)) for t in teams)
    out_queues = []
    for queue in queues:
        traffic = workload.spec.queues.get(queue.name)
        if traffic is not None:
            queue = replace(queue, expected_handle_time=max(traffic.handle_time.mean_value, 1e-9))
        out_queues.append(queue)
    return AcdSetup(tuple(out_queues), out_teams)


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
