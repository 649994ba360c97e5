"""Plain, validated configuration of the ACD: agents, teams and queues.

These dataclasses are the engine's input. They are checked once, at the edge, by
:func:`validate` (called by the :class:`~callmesh.acd.engine.Router` constructor), so the
engine itself never meets a dangling team name or a negative delay.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING

from callmesh.acd.errors import ConfigError
from callmesh.acd.strategy import Channel

if TYPE_CHECKING:
    from callmesh.api.agentteam import AgentTeam
    from callmesh.api.queue import Queue

__all__ = [
    "DEFAULT_CAPACITY",
    "AgentConfig",
    "OverflowAction",
    "OverflowConfig",
    "QueueConfig",
    "TeamConfig",
    "TierConfig",
    "from_resources",
    "validate",
]

DEFAULT_CAPACITY: Mapping[Channel, int] = MappingProxyType(
    {Channel.VOICE: 1, Channel.CHAT: 1, Channel.EMAIL: 1}
)
"""One contact at a time on every channel."""


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """An agent: who it is, what it knows, how much it can take at once.

    Attributes:
        id: unique agent id (e.g. the SIP user).
        skills: skill name -> level (a positive integer; higher is better).
        capacity: channel -> how many contacts of that channel at once (e.g. 1 voice,
            3 chats). A channel missing here, or 0, means the agent never takes it. An agent
            handles one channel at a time: a voice call blocks chats and the reverse.
        name: display name.
    """

    id: str
    skills: Mapping[str, int] = field(default_factory=dict)
    capacity: Mapping[Channel, int] = field(default_factory=lambda: dict(DEFAULT_CAPACITY))
    name: str = ""


@dataclass(frozen=True, slots=True)
class TeamConfig:
    """A team of agents; the order of ``agents`` is their position (top-down, round-robin).

    Attributes:
        name: unique team name.
        agents: the members, first is position 0.
        wrap_up_time: seconds of WrapUp after a contact, overriding the queue's; None
            leaves the queue's.
    """

    name: str
    agents: tuple[AgentConfig, ...]
    wrap_up_time: float | None = None


@dataclass(frozen=True, slots=True)
class TierConfig:
    """One tier of a queue: teams that become eligible ``delay`` seconds into the wait.

    Attributes:
        teams: team names, in order (positions run through them in this order).
        delay: seconds a contact waits in the queue before these teams may take it.
    """

    teams: tuple[str, ...]
    delay: float = 0.0


class OverflowAction(StrEnum):
    """What happens to a contact that waited a queue's ``max_wait``."""

    QUEUE = "queue"
    """Move to another queue, keeping the original enqueue time (its place in line)."""
    VOICEMAIL = "voicemail"
    """Leave the ACD to record a voicemail."""
    CALLBACK = "callback"
    """Leave the ACD with a callback request."""


@dataclass(frozen=True, slots=True)
class OverflowConfig:
    """Overflow at max wait: the action, and the target queue for ``QUEUE``."""

    action: OverflowAction
    target: str | None = None


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """A queue: what it serves, who serves it, in which order, and for how long.

    Attributes:
        name: unique queue name.
        tiers: teams by tier; tier level is the index + 1; delays must not decrease.
        strategy: routing strategy name (a built-in such as ``longest-idle-agent`` or a
            plugin's name).
        params: the strategy's parameters.
        channel: the media this queue serves.
        skills: skills every contact of this queue requires, name -> minimum level.
        priority: default priority of its contacts (higher is served first).
        max_wait: seconds before overflow; None waits forever.
        overflow: what to do at max wait; None ends the contact as timed out.
        offer_timeout: seconds an offer rings at an agent before RONA.
        wrap_up_time: seconds of WrapUp after each contact (a team may override it).
        expected_handle_time: seconds, for the estimated wait before any contact completed.
    """

    name: str
    tiers: tuple[TierConfig, ...]
    strategy: str = "longest-idle-agent"
    params: Mapping[str, object] = field(default_factory=dict)
    channel: Channel = Channel.VOICE
    skills: Mapping[str, int] = field(default_factory=dict)
    priority: int = 0
    max_wait: float | None = None
    overflow: OverflowConfig | None = None
    offer_timeout: float = 20.0
    wrap_up_time: float = 0.0
    expected_handle_time: float = 180.0


def _check_number(value: float, where: str, *, positive: bool = False) -> None:
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        need = "a positive number" if positive else "a number >= 0"
        raise ConfigError(f"{where} is {value!r}: set it to {need} of seconds")


def _check_skills(skills: Mapping[str, int], where: str) -> None:
    for skill, level in skills.items():
        if not skill:
            raise ConfigError(f"{where} has an empty skill name: name every skill")
        if isinstance(level, bool) or not isinstance(level, int) or level < 1:
            raise ConfigError(f"{where}[{skill!r}] is {level!r}: levels are integers >= 1")


def validate(
    queues: Iterable[QueueConfig],
    teams: Iterable[TeamConfig],
    roster: Iterable[AgentConfig] = (),
) -> tuple[dict[str, QueueConfig], dict[str, TeamConfig], dict[str, AgentConfig]]:
    """Check queues, teams and agents together; return them keyed by name / id.

    An agent may be listed in several teams only with the same configuration. ``roster``
    lists agents known outside any team (they cannot log in until added to one).

    Raises:
        ConfigError: naming the field at fault and the fix.
    """
    team_map: dict[str, TeamConfig] = {}
    agent_map: dict[str, AgentConfig] = {}
    for team in teams:
        if not team.name:
            raise ConfigError("team.name is empty: give every team a name")
        if team.name in team_map:
            raise ConfigError(f"team {team.name!r} is defined twice: team names are unique")
        if team.wrap_up_time is not None:
            _check_number(team.wrap_up_time, f"team {team.name!r}.wrap_up_time")
        seen: set[str] = set()
        for agent in team.agents:
            # (the agent's place in messages is only spelled out for an error: a Router and
            # each simulated replication validate every agent)
            if not agent.id:
                raise ConfigError(f"team {team.name!r} has an agent with an empty id")
            if agent.id in seen:
                raise ConfigError(
                    f"team {team.name!r} agent {agent.id!r} is listed twice in the team: list"
                    " it once"
                )
            seen.add(agent.id)
            if agent.skills:
                _check_skills(agent.skills, f"team {team.name!r} agent {agent.id!r}.skills")
            for channel, cap in agent.capacity.items():
                if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
                    raise ConfigError(
                        f"team {team.name!r} agent {agent.id!r}.capacity[{channel}] is {cap!r}:"
                        " use an int >= 0"
                    )
            known = agent_map.get(agent.id)
            if known is not None and known is not agent and known != agent:
                raise ConfigError(
                    f"team {team.name!r} agent {agent.id!r} differs from the same agent in"
                    " another team: an agent has one configuration (skills, capacity) across"
                    " teams"
                )
            agent_map[agent.id] = agent
        team_map[team.name] = team
    for agent in roster:
        agent_map.setdefault(agent.id, agent)

    queue_list = list(queues)
    queue_map: dict[str, QueueConfig] = {}
    for queue in queue_list:
        if not queue.name:
            raise ConfigError("queue.name is empty: give every queue a name")
        if queue.name in queue_map:
            raise ConfigError(f"queue {queue.name!r} is defined twice: queue names are unique")
        queue_map[queue.name] = queue
    for queue in queue_list:
        where = f"queue {queue.name!r}"
        if not queue.tiers:
            raise ConfigError(f"{where}.tiers is empty: list at least one tier of teams")
        last_delay = 0.0
        in_queue: set[str] = set()
        for level, tier in enumerate(queue.tiers, start=1):
            _check_number(tier.delay, f"{where}.tiers[{level - 1}].delay")
            if tier.delay < last_delay:
                raise ConfigError(
                    f"{where}.tiers[{level - 1}].delay is {tier.delay}, less than the tier"
                    f" before ({last_delay}): escalation delays must not decrease"
                )
            last_delay = tier.delay
            if not tier.teams:
                raise ConfigError(f"{where}.tiers[{level - 1}].teams is empty: name a team")
            for team_name in tier.teams:
                if team_name not in team_map:
                    raise ConfigError(
                        f"{where}.tiers[{level - 1}] names unknown team {team_name!r}:"
                        " define the AgentTeam or fix the name"
                    )
                if team_name in in_queue:
                    raise ConfigError(
                        f"{where} lists team {team_name!r} in two tiers: keep it in one"
                    )
                in_queue.add(team_name)
        if not queue.strategy:
            raise ConfigError(f"{where}.strategy is empty: name a routing strategy")
        if isinstance(queue.priority, bool) or not isinstance(queue.priority, int):
            raise ConfigError(
                f"{where}.priority is {queue.priority!r}: use an integer (higher is served first)"
            )
        _check_skills(queue.skills, f"{where}.skills")
        if queue.max_wait is not None:
            _check_number(queue.max_wait, f"{where}.max_wait", positive=True)
        _check_number(queue.offer_timeout, f"{where}.offer_timeout", positive=True)
        _check_number(queue.expected_handle_time, f"{where}.expected_handle_time", positive=True)
        _check_number(queue.wrap_up_time, f"{where}.wrap_up_time")
        if queue.overflow is not None:
            if queue.max_wait is None:
                raise ConfigError(
                    f"{where}.overflow is set but max_wait is not: set max_wait, the wait"
                    " after which the overflow happens"
                )
            if queue.overflow.action is OverflowAction.QUEUE:
                target = queue.overflow.target
                if target is None or target not in queue_map:
                    raise ConfigError(
                        f"{where}.overflow.target is {target!r}: name an existing queue"
                    )
                if target == queue.name:
                    raise ConfigError(f"{where}.overflow.target is the queue itself")
                if queue_map[target].channel != queue.channel:
                    raise ConfigError(
                        f"{where}.overflow.target {target!r} serves"
                        f" {queue_map[target].channel}, not {queue.channel}: overflow to a"
                        " queue of the same channel"
                    )
            elif queue.overflow.target is not None:
                raise ConfigError(
                    f"{where}.overflow.target is set for action {queue.overflow.action}:"
                    " only action 'queue' takes a target"
                )
    return queue_map, team_map, agent_map


def from_resources(
    queues: Iterable[Queue], teams: Iterable[AgentTeam]
) -> tuple[list[QueueConfig], list[TeamConfig]]:
    """Build the engine's configuration from Queue and AgentTeam resources (one tenant).

    Tiers are taken in ascending ``level`` (the engine numbers them 1, 2, ... in that
    order); ``maxWaitSeconds: 0`` waits forever; overflow ``hangup`` ends the contact as
    timed out; a team's ``wrapUpSeconds`` overrides the queue's. The result is checked by
    :func:`validate` when a :class:`~callmesh.acd.engine.Router` is built from it.
    """
    team_configs = [
        TeamConfig(
            name=team.name,
            agents=tuple(
                AgentConfig(
                    id=agent.id,
                    skills={skill.name: skill.level for skill in agent.skills},
                    capacity={
                        Channel.VOICE: agent.capacity.voice,
                        Channel.CHAT: agent.capacity.chat,
                        Channel.EMAIL: agent.capacity.email,
                    },
                    name=agent.name,
                )
                for agent in team.spec.agents
            ),
            wrap_up_time=(
                None if team.spec.wrap_up_seconds is None else float(team.spec.wrap_up_seconds)
            ),
        )
        for team in teams
    ]
    queue_configs = []
    for queue in queues:
        spec = queue.spec
        max_wait = float(spec.max_wait_seconds) if spec.max_wait_seconds else None
        overflow: OverflowConfig | None = None
        if spec.overflow is not None and max_wait is not None:
            action = str(spec.overflow.action)
            if action == OverflowAction.QUEUE:
                overflow = OverflowConfig(OverflowAction.QUEUE, spec.overflow.queue)
            elif action in (OverflowAction.VOICEMAIL, OverflowAction.CALLBACK):
                overflow = OverflowConfig(OverflowAction(action))
            # "hangup": no overflow, the contact ends as timed out
        queue_configs.append(
            QueueConfig(
                name=queue.name,
                tiers=tuple(
                    TierConfig(tuple(tier.teams), float(tier.escalate_after_seconds))
                    for tier in sorted(spec.tiers, key=lambda t: t.level)
                ),
                strategy=spec.strategy.name,
                params=dict(spec.strategy.params),
                channel=Channel(str(spec.channel)),
                skills={req.name: req.min_level for req in spec.required_skills},
                priority=spec.priority,
                max_wait=max_wait,
                overflow=overflow,
                offer_timeout=float(spec.offer_timeout_seconds),
                wrap_up_time=float(spec.wrap_up_seconds),
            )
        )
    return queue_configs, team_configs
