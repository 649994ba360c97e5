"""The router's mutable records, its free-agent indexes and its candidate set.

Internal to :mod:`callmesh.acd`: the :class:`~callmesh.acd.engine.Router` owns every
instance. Strategies only see :class:`~callmesh.acd.strategy.AgentView` and
:class:`~callmesh.acd.strategy.ContactView`, named tuples built here when asked for.

Free agents (logged in, Available, with free capacity) sit in sorted indexes, one per team
and order (and skill, for skill order), created the first time a strategy asks for that
order, and kept up to date on every agent change. A decision walks the index of the
contact's eligible teams and stops at the first agent that passes the remaining checks
(channel capacity, every required skill, not declined), so it costs about the same with
10,000 agents as with 100.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from enum import Enum
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from callmesh.acd.config import AgentConfig, QueueConfig
from callmesh.acd.effects import AgentState, AgentStateChanged, DecisionRecord
from callmesh.acd.strategy import AgentView, CandidateOrder, Channel, ContactView

__all__ = [
    "AgentRecord",
    "Candidates",
    "ContactRecord",
    "OfferRecord",
    "QueueRecord",
    "key_skill",
]

# Enum members read through the class cost a few hundred ns each in Python 3.11: the hot
# paths read these module constants instead.
_AVAILABLE: Final[AgentState] = AgentState.AVAILABLE
_LOGGED_OUT: Final[AgentState] = AgentState.LOGGED_OUT
_BUSY: Final[AgentState] = AgentState.BUSY
_RESERVED: Final[AgentState] = AgentState.RESERVED
_SKILL_LEVEL: Final[CandidateOrder] = CandidateOrder.SKILL_LEVEL
_LONGEST_IDLE: Final[CandidateOrder] = CandidateOrder.LONGEST_IDLE
_TIER_POSITION: Final[CandidateOrder] = CandidateOrder.TIER_POSITION
_FEWEST_CALLS: Final[CandidateOrder] = CandidateOrder.FEWEST_CALLS
# The views are named tuples: tuple.__new__(View, values) builds one without a Python frame.
_new_tuple: Final = tuple.__new__
# Compiled, a class of a non-compiled module is looked up in the globals dict at each use in
# a function: the views' classes are read from these C statics instead.
_ContactView: Final[type[ContactView]] = ContactView
_AgentView: Final[type[AgentView]] = AgentView
# What an agent's history is when none is kept (history_limit 0): it can hold nothing.
_NO_HISTORY: Final[deque[AgentStateChanged]] = deque(maxlen=0)


class StateRecord(NamedTuple):
    """One entry of an agent's state history."""

    at: float
    state: AgentState
    reason: str


class AgentRecord:
    """An agent's live state in the router."""

    __slots__ = (
        "calls_handled",
        "can_work",
        "capacity",
        "channel",
        "channels",
        "config",
        "contacts",
        "history",
        "id",
        "idle_since",
        "indexed",
        "offers",
        "presence",
        "queues",
        "reason",
        "skills",
        "skills_view",
        "slots",
        "state",
        "talk_time",
        "teams",
        "wrap_serial",
    )

    def __init__(self, config: AgentConfig, teams: dict[str, int], history_limit: int) -> None:
        self.config = config
        self.id = config.id
        # dicts, typed so: compiled, ``get`` on a dict is a C call, on a Mapping a method
        # lookup and a Python-level call
        self.skills: dict[str, int] = dict(config.skills)
        self.skills_view: Mapping[str, int] = MappingProxyType(self.skills)
        """What views hand to strategies: the same skills, read-only."""
        self.capacity: dict[Channel, int] = dict(config.capacity)
        channels = [c for c, n in self.capacity.items() if n > 0]
        self.can_work = bool(channels)
        self.channels = frozenset(channels)
        """The channels it can take at least one contact of."""
        self.teams: tuple[str, ...] = tuple(teams)
        self.queues: list[str] = []
        self.slots: list[tuple[Index, int]] = []
        """Every index of its teams built so far, with its position in that index's team."""
        self.presence = _LOGGED_OUT
        self.state = _LOGGED_OUT
        self.reason = ""
        self.offers: dict[str, Channel] = {}
        self.contacts: dict[str, Channel] = {}
        self.channel: Channel | None = None
        self.idle_since = 0.0
        self.calls_handled = 0
        self.talk_time = 0.0
        self.indexed = False
        self.history: deque[AgentStateChanged] = (
            deque(maxlen=history_limit) if history_limit > 0 else _NO_HISTORY
        )
        """Its recent state changes: the very effects returned (immutable), oldest first.
        With no history kept, every agent shares one deque that holds nothing."""
        self.wrap_serial = 0

    def derived_state(self) -> AgentState:
        """The reported state: work in progress wins over presence, except LoggedOut."""
        presence = self.presence
        if presence is _LOGGED_OUT:
            return presence
        if self.contacts:
            return _BUSY
        if self.offers:
            return _RESERVED
        return presence

    def load(self) -> int:
        """Contacts ringing or connected at this agent."""
        return len(self.offers) + len(self.contacts)

    def is_free(self) -> bool:
        """Available with free capacity on some channel (so it belongs in the indexes)."""
        if self.presence is not _AVAILABLE:
            return False
        load = len(self.offers) + len(self.contacts)
        if load == 0:
            return self.can_work
        return load < self.capacity.get(self.channel, 0)  # type: ignore[arg-type]

    def free_capacity(self, channel: Channel) -> int:
        """How many more contacts of ``channel`` it can take now."""
        if self.presence is not _AVAILABLE:
            return 0
        load = len(self.offers) + len(self.contacts)
        if load and self.channel != channel:
            return 0
        return max(0, self.capacity.get(channel, 0) - load)


class ContactState(Enum):
    """Where a contact is in its life in the router."""

    WAITING = "waiting"
    OFFERED = "offered"
    CONNECTED = "connected"


_WAITING: Final[ContactState] = ContactState.WAITING
_EMPTY_STR: Final[Mapping[str, str]] = MappingProxyType({})
_EMPTY_INT: Final[Mapping[str, int]] = MappingProxyType({})
_NO_ONE: Final[AbstractSet[str]] = frozenset()


class OfferRecord:
    """An offer in progress: which agents ring, which are still to be added."""

    __slots__ = ("decision", "delay", "pending", "ringing", "serial")

    def __init__(
        self,
        decision: DecisionRecord,
        ringing: dict[str, float],
        pending: tuple[str, ...],
        delay: float | None,
        serial: int,
    ) -> None:
        self.decision = decision
        self.ringing = ringing
        self.pending = pending
        self.delay = delay
        self.serial = serial


class ContactRecord:
    """A contact's live state in the router."""

    __slots__ = (
        "agent_id",
        "answered_at",
        "attempts",
        "attributes",
        "channel",
        "declined",
        "enqueued_at",
        "escalation_serial",
        "id",
        "key",
        "key_level",
        "key_skill",
        "last_position",
        "offer",
        "other_skills",
        "own_skills",
        "priority",
        "queue",
        "queue_serial",
        "queued_at",
        "skills",
        "state",
        "trace",
    )

    def __init__(
        self,
        contact_id: str,
        channel: Channel,
        priority: int,
        attributes: Mapping[str, str],
        own_skills: Mapping[str, int],
        enqueued_at: float,
        seq: int,
        queue: str,
        queued_at: float,
        queue_serial: int,
        needs: Needs,
    ) -> None:
        self.id = contact_id
        self.channel = channel
        self.priority = priority
        # Strategies see these mappings through views: read-only proxies, shared when empty.
        self.attributes: Mapping[str, str] = (
            MappingProxyType(dict(attributes)) if attributes else _EMPTY_STR
        )
        self.own_skills: Mapping[str, int] = dict(own_skills) if own_skills else _EMPTY_INT
        self.queue = queue
        self.queued_at = queued_at
        self.queue_serial = queue_serial
        self.skills: Mapping[str, int]
        """The skills it needs in its queue (the queue's and its own), read-only."""
        self.key_skill: str | None
        """The skill it is matched on (see :func:`key_skill`)."""
        self.key_level: int
        """Its minimum level in the key skill (0 without one)."""
        self.other_skills: tuple[tuple[str, int], ...]
        """Its other needed skills and levels: what a walk in the key skill's order checks."""
        self.skills, self.key_skill, self.key_level, self.other_skills = needs
        self.escalation_serial = 0
        self.enqueued_at = enqueued_at
        self.key: tuple[int, float, int, str] = (-priority, enqueued_at, seq, contact_id)
        self.state = _WAITING
        self.offer: OfferRecord | None = None
        self.agent_id: str | None = None
        self.answered_at = 0.0
        self.attempts = 0
        self.last_position: tuple[int, int] | None = None
        self.declined: AbstractSet[str] = _NO_ONE
        """Agents that rejected this contact (a shared empty set until the first one)."""
        self.trace: tuple[DecisionRecord, ...] = ()
        """Its routing decisions so far (a tuple: handed out as is)."""

    def view(self) -> ContactView:
        """The contact as strategies see it now (a named tuple, built in one call)."""
        return _new_tuple(
            _ContactView,
            (
                self.id,
                self.channel,
                self.priority,
                self.attributes,
                self.skills,
                self.queue,
                self.enqueued_at,
                self.attempts,
                self.last_position,
            ),
        )


def key_skill(skills: Mapping[str, int]) -> str | None:
    """The skill a contact is matched on: the highest minimum level (ties: alphabetical)."""
    if len(skills) > 1:
        return min(skills, key=lambda s: (-skills[s], s))
    return next(iter(skills), None)


Needs = tuple[Mapping[str, int], str | None, int, tuple[tuple[str, int], ...]]
"""What a contact needs in a queue: ``(skills, key skill, its level, the other skills)``."""


def needs(skills: Mapping[str, int]) -> Needs:
    """The :data:`Needs` of a contact that requires ``skills`` (a read-only mapping)."""
    key = key_skill(skills)
    level = skills[key] if key is not None else 0
    return skills, key, level, tuple((s, n) for s, n in skills.items() if s != key)


class Membership:
    """How an agent serves a queue: through which team, at which tier and position.

    Read-only by convention (only :class:`QueueRecord` builds them). A plain class with its
    own ``__init__``: compiled, a frozen dataclass is built ten times slower, and a Router
    builds one per agent and queue.
    """

    __slots__ = ("position", "team", "tier")

    def __init__(self, team: str, tier: int, position: int) -> None:
        self.team = team
        self.tier = tier
        self.position = position


class QueueRecord:
    """A queue's live state: its waiting line and its tier structure."""

    __slots__ = (
        "channel",
        "config",
        "handle_total",
        "handled",
        "last_position",
        "max_wait",
        "members",
        "name",
        "needs",
        "offer_timeout",
        "params",
        "plan",
        "priority",
        "skills",
        "strategy",
        "tier_delay",
        "tier_position",
        "tiers",
        "waiting",
        "wrap_up",
        "wrap_up_time",
    )

    def __init__(self, config: QueueConfig, team_members: Mapping[str, tuple[str, ...]]) -> None:
        self.config = config
        self.name = config.name
        # read for every contact: native attributes, not the frozen config's slots (a reload
        # builds a new Router, so these copies never go stale)
        self.strategy = config.strategy
        self.params = config.params
        self.offer_timeout = config.offer_timeout
        self.wrap_up_time = config.wrap_up_time
        self.channel = config.channel
        self.priority = config.priority
        self.max_wait = config.max_wait
        self.waiting: list[tuple[int, float, int, str]] = []
        self.last_position: tuple[int, int] | None = None
        self.handled = 0
        self.handle_total = 0.0
        self.tiers: list[tuple[int, float, tuple[str, ...]]] = []
        self.tier_delay: dict[int, float] = {}
        self.members: dict[str, Membership] = {}
        self.tier_position: dict[str, tuple[int, int]] = {}
        """Agent id -> ``(tier, position)`` of its membership (the queue's cursor value)."""
        self.wrap_up: dict[str, float] = {}
        """Member id -> the wrap-up time of its team, where the team overrides the queue's."""
        self.plan: list[TierPlan] | None = None
        """How to walk the free agents (see :meth:`Candidates.find`), built on first use."""
        skills = dict(config.skills)
        self.skills: Mapping[str, int] = MappingProxyType(skills)
        """The skills a contact of this queue needs when it brings none of its own."""
        self.needs = needs(self.skills)
        """The :data:`Needs` of such a contact, computed once."""
        for level, tier in enumerate(config.tiers, start=1):
            self.tiers.append((level, tier.delay, tier.teams))
            self.tier_delay[level] = tier.delay
            position = 0
            for team in tier.teams:
                for agent_id in team_members[team]:
                    if agent_id not in self.members:
                        self.members[agent_id] = Membership(team, level, position)
                        self.tier_position[agent_id] = (level, position)
                    position += 1


class Index:
    """Free agents of one team, sorted by one order (and skill)."""

    __slots__ = ("entries", "keys", "order", "skill")

    def __init__(self, order: CandidateOrder, skill: str | None) -> None:
        self.order = order
        self.skill = skill
        self.entries: list[tuple[Any, ...]] = []
        self.keys: dict[str, tuple[Any, ...]] = {}

    def key(self, agent: AgentRecord, pos: int) -> tuple[Any, ...] | None:
        """The sort key of ``agent`` (at ``pos`` in its team), None if it does not belong.

        A method testing the order (compiled, a few pointer comparisons), not a closure
        chosen once: calling a closure is a Python-level call.
        """
        order = self.order
        if order is _LONGEST_IDLE:
            return (agent.idle_since, pos, agent.id)
        if order is _SKILL_LEVEL:
            level = agent.skills.get(self.skill or "")
            if level is None:
                return None
            return (-level, agent.idle_since, pos, agent.id)
        if order is _TIER_POSITION:
            return (pos, agent.id)
        if order is _FEWEST_CALLS:
            return (agent.calls_handled, agent.idle_since, pos, agent.id)
        return (agent.talk_time, agent.idle_since, pos, agent.id)

    def update(self, agent: AgentRecord, pos: int, free: bool) -> None:
        """Put ``agent`` at its current key, or take it out when not free."""
        new = self.key(agent, pos) if free else None
        keys = self.keys
        old = keys.get(agent.id)
        if old is None:
            if new is None:
                return
        elif new is not None and new == old:
            return
        entries = self.entries
        if old is not None:
            _discard(entries, old)
        if new is None:
            del keys[agent.id]
        else:
            if not entries or entries[-1] < new:
                # The usual place: an agent freed now has been idle the shortest (one tuple
                # comparison instead of a bisection's).
                entries.append(new)
            else:
                insort(entries, new)
            keys[agent.id] = new


def _discard(entries: list[tuple[Any, ...]], key: tuple[Any, ...]) -> None:
    """Take ``key`` (the very object in ``keys``) out of the sorted ``entries``."""
    if entries[0] is key:
        # The usual one: the agent chosen is the first of the order (longest idle, ...).
        del entries[0]
    else:
        del entries[bisect_left(entries, key)]


class Indexes:
    """Every team's indexes, created on first use."""

    __slots__ = ("_agents", "_by_team", "_flat", "_team_members")

    def __init__(
        self, agents: dict[str, AgentRecord], team_members: Mapping[str, tuple[str, ...]]
    ) -> None:
        self._agents = agents
        self._team_members = team_members
        self._by_team: dict[str, dict[tuple[CandidateOrder, str | None], Index]] = {}
        self._flat: dict[tuple[str, CandidateOrder, str | None], Index] = {}

    def get(self, team: str, order: CandidateOrder, skill: str | None) -> Index:
        """The index of ``team`` in ``order``, built from the free members if new."""
        found = self._flat.get((team, order, skill))
        if found is not None:
            return found
        by_order = self._by_team.get(team)
        if by_order is None:
            by_order = self._by_team[team] = {}
        index = by_order.get((order, skill))
        if index is None:
            index = by_order[(order, skill)] = Index(order, skill)
            for pos, agent_id in enumerate(self._team_members[team]):
                agent = self._agents[agent_id]
                agent.slots.append((index, pos))
                if agent.is_free():
                    index.update(agent, pos, True)
        self._flat[(team, order, skill)] = index
        return index

    def members(self, team: str) -> tuple[str, ...]:
        """The team's agent ids, in member order."""
        return self._team_members[team]

    def refresh(self, agent: AgentRecord) -> None:
        """Bring every index up to date with ``agent`` after a change."""
        # agent.is_free(), inlined: this runs on every agent transition
        if agent.presence is not _AVAILABLE:
            free = False
        else:
            load = len(agent.offers) + len(agent.contacts)
            channel = agent.channel
            free = agent.can_work if load == 0 else load < agent.capacity.get(channel, 0)  # type: ignore[arg-type]
        if free:
            self.add(agent)
        elif agent.indexed:
            self.remove(agent)

    def add(self, agent: AgentRecord) -> None:
        """Put (or move) a free ``agent`` at its current key in every index."""
        for index, pos in agent.slots:
            index.update(agent, pos, True)
        agent.indexed = True

    def remove(self, agent: AgentRecord) -> None:
        """Take ``agent`` out of every index (it is no longer free)."""
        agent_id = agent.id
        for index, _pos in agent.slots:
            keys = index.keys
            old = keys.get(agent_id)  # get and del: compiled, C calls (pop is a method call)
            if old is not None:
                del keys[agent_id]
                _discard(index.entries, old)
        agent.indexed = False

    def all(self) -> Iterator[tuple[str, Index]]:
        """Every (team, index), for invariant checks."""
        for team, indexes in self._by_team.items():
            for index in indexes.values():
                yield team, index


class TierPlan:
    """One tier of a queue, ready to be walked (see :meth:`Candidates.find`).

    Built once per queue. A tier of one team walks that team's index directly:
    ``by_order`` and ``by_skill`` (SKILL_LEVEL) keep them, fetched on the tier's first walk, so
    an index is only kept up to date once a decision has needed it. ``foreign`` holds the
    team's agents that serve the queue through an earlier team and are skipped here
    (usually none).
    """

    __slots__ = ("by_order", "by_skill", "delay", "foreign", "level", "team", "teams")

    def __init__(
        self,
        level: int,
        delay: float,
        teams: tuple[str, ...],
        foreign: frozenset[str],
    ) -> None:
        self.level = level
        self.delay = delay
        self.teams = teams
        self.team: str | None = teams[0] if len(teams) == 1 else None
        self.by_order: dict[CandidateOrder, Index] = {}
        self.by_skill: dict[str, Index] = {}
        self.foreign = foreign


def _plan(queue: QueueRecord, indexes: Indexes) -> list[TierPlan]:
    plan = []
    members = queue.members
    for level, delay, teams in queue.tiers:
        foreign: frozenset[str] = frozenset()
        if len(teams) == 1:
            team = teams[0]
            foreign = frozenset(a for a in indexes.members(team) if members[a].team != team)
        plan.append(TierPlan(level, delay, teams, foreign))
    return plan


class Candidates:
    """The engine's :class:`~callmesh.acd.strategy.CandidateSet` for one contact, now.

    Cheap to build (one per decision): nothing is computed until asked. :meth:`probe` and
    :meth:`find` walk the queue's cached tier plan over the engine's indexes and return the
    first agent record that qualifies; a view of it is only built when a strategy asks for
    one (and the answer is kept for :meth:`first`).
    """

    __slots__ = (
        "_agents",
        "_contact",
        "_indexes",
        "_now",
        "_order",
        "_queue",
        "_skill",
        "_view",
        "first_id",
    )

    def __init__(
        self,
        agents: dict[str, AgentRecord],
        indexes: Indexes,
        contact: ContactRecord,
        queue: QueueRecord,
        now: float,
    ) -> None:
        self._agents = agents
        self._indexes = indexes
        self._contact = contact
        self._queue = queue
        self._now = now
        self._order: CandidateOrder | None = None
        self._skill: str | None = None
        self._view: AgentView | None = None
        self.first_id: str | None = None
        """The agent id of the last :meth:`find` / :meth:`first` answer, from the engine's
        own record (the engine never reads agent ids back from a view)."""

    @property
    def last_position(self) -> tuple[int, int] | None:
        """``(tier, position)`` of the agent the queue last offered a contact to."""
        return self._queue.last_position

    def _tiers(self) -> Iterator[tuple[int, float, tuple[str, ...]]]:
        """The queue's tiers eligible now (their escalation delay has passed), in order."""
        since, now = self._contact.queued_at, self._now
        for tier in self._queue.tiers:
            if since + tier[1] <= now:
                yield tier

    def admits(self, agent: AgentRecord) -> bool:
        """Whether ``agent`` may take the contact, apart from its tier."""
        if agent.presence is not _AVAILABLE:
            return False
        contact = self._contact
        channel = contact.channel
        load = len(agent.offers) + len(agent.contacts)
        if load:
            if agent.channel is not channel or load >= agent.capacity.get(channel, 0):
                return False
            if contact.id in agent.offers or contact.id in agent.contacts:
                return False
        elif agent.capacity.get(channel, 0) <= 0:
            return False
        if contact.declined and agent.id in contact.declined:
            return False
        if contact.key_skill is not None:  # it needs skills (None: it needs none)
            skills = agent.skills
            for skill, level in contact.skills.items():  # a loop beats all() here
                if skills.get(skill, 0) < level:
                    return False
        return True

    def view(self, agent: AgentRecord) -> AgentView:
        """The candidate ``agent`` as seen from this queue (a named tuple, built in one call)."""
        m = self._queue.members[agent.id]
        channel = self._contact.channel  # the queue's
        if agent.offers or agent.contacts:
            free = agent.free_capacity(channel)
        else:
            free = agent.capacity.get(channel, 0)
        return _new_tuple(
            _AgentView,
            (
                agent.id,
                agent.skills_view,
                agent.idle_since,
                agent.calls_handled,
                agent.talk_time,
                m.team,
                m.tier,
                m.position,
                free,
            ),
        )

    def probe(self) -> AgentRecord | None:
        """The first candidate in the contact's own order, or None when there is none.

        That order is SKILL_LEVEL in its key skill (LONGEST_IDLE when it needs no skill),
        the order skills-best-match asks for, so that strategy's :meth:`first` is answered
        from this walk.
        """
        skill = self._contact.key_skill
        if skill is None:
            return self.find(_LONGEST_IDLE, None)
        return self.find(_SKILL_LEVEL, skill)

    def find(self, order: CandidateOrder, skill: str | None = None) -> AgentRecord | None:
        """The record of the first candidate in ``order`` (``skill`` only for SKILL_LEVEL).

        The hot path of every decision: it walks the queue's tier plan over the engine's
        indexes with the candidate checks inlined, and remembers its answer for
        :meth:`first`.
        """
        self._order = order
        self._skill = skill
        self._view = None
        queue = self._queue
        contact = self._contact
        required = contact.skills
        plan = queue.plan
        if plan is None:
            plan = queue.plan = _plan(queue, self._indexes)
        if order is _SKILL_LEVEL:
            # Levels only go down along the walk: below the contact's minimum, stop; and
            # the key skill needs no other check.
            if skill == contact.key_skill:
                floor = contact.key_level
                check = contact.other_skills
            else:
                floor = required.get(skill, 0)  # type: ignore[arg-type]
                check = tuple(required.items())
        else:
            floor = 0
            # tuple(items()) costs ~1,200 instructions even when empty (no skill required,
            # the common case): then skip it (key_skill None: it needs none; a native read,
            # where the mapping's truth is a Python-level call)
            check = tuple(required.items()) if contact.key_skill is not None else ()
        since, now = contact.queued_at, self._now
        agents = self._agents
        contact_id = contact.id
        channel = contact.channel
        declined = contact.declined
        for tier in plan:
            if since + tier.delay > now:
                continue
            team = tier.team
            if team is None:  # several teams in this tier: merge their indexes
                for agent in self._ordered_tier(tier.level, tier.teams, order, skill):
                    self.first_id = agent.id
                    return agent
                continue
            index = tier.by_skill.get(skill) if skill is not None else tier.by_order.get(order)
            if index is None:
                index = self._indexes.get(team, order, skill)
                if skill is not None:
                    tier.by_skill[skill] = index
                else:
                    tier.by_order[order] = index
            foreign = tier.foreign
            for key in index.entries:
                if floor and -key[0] < floor:
                    break
                agent_id = key[-1]
                if foreign and agent_id in foreign:
                    continue
                agent = agents[agent_id]
                # self.admits(agent), inlined
                if agent.presence is not _AVAILABLE:
                    continue
                offers = agent.offers
                busy = agent.contacts
                if offers or busy:
                    if (
                        agent.channel is not channel
                        or len(offers) + len(busy) >= agent.capacity.get(channel, 0)
                        or contact_id in offers
                        or contact_id in busy
                    ):
                        continue
                elif channel not in agent.channels:
                    continue
                if declined and agent_id in declined:
                    continue
                if check:
                    skills = agent.skills
                    for name, level in check:
                        if skills.get(name, 0) < level:
                            break
                    else:
                        self.first_id = agent_id
                        return agent
                    continue
                self.first_id = agent_id
                return agent
        self.first_id = None
        return None

    def ordered(self, order: CandidateOrder, skill: str | None = None) -> Iterator[AgentView]:
        """Candidates in ``order`` within each eligible tier, lowest tier first."""
        if order is _SKILL_LEVEL:
            if not skill:
                raise ValueError("CandidateOrder.SKILL_LEVEL needs a skill: pass skill='name'")
        else:
            skill = None
        return self._ordered(order, skill)

    def _ordered(self, order: CandidateOrder, skill: str | None) -> Iterator[AgentView]:
        agents = self._agents
        members = self._queue.members
        get_index = self._indexes.get
        for level, _delay, teams in self._tiers():
            if len(teams) == 1:
                team = teams[0]
                for key in get_index(team, order, skill).entries:
                    agent = agents[key[-1]]
                    m = members[agent.id]
                    if m.team == team and self.admits(agent):
                        yield self.view(agent)
                continue
            for agent in self._ordered_tier(level, teams, order, skill):
                yield self.view(agent)

    def _ordered_tier(
        self, level: int, teams: tuple[str, ...], order: CandidateOrder, skill: str | None
    ) -> Iterator[AgentRecord]:
        """Candidates of a tier with several teams, merged from the teams' indexes."""
        agents = self._agents
        members = self._queue.members
        get_index = self._indexes.get
        lists = [get_index(team, order, skill).entries for team in teams]
        merged: Any
        if order is _TIER_POSITION:
            # Positions run through the tier's teams in order: concatenation is sorted.
            merged = (key for entries in lists for key in entries)
        else:
            merged = heapq.merge(*lists)
        seen: set[str] = set()  # an agent in two teams of this tier is yielded once
        for key in merged:
            agent_id = key[-1]
            if agent_id in seen:
                continue
            seen.add(agent_id)
            agent = agents[agent_id]
            if members[agent_id].tier == level and self.admits(agent):
                yield agent

    def first(self, order: CandidateOrder, skill: str | None = None) -> AgentView | None:
        """The first candidate in ``order`` (the last answer is kept for this request)."""
        if order is _SKILL_LEVEL:
            if not skill:
                raise ValueError("CandidateOrder.SKILL_LEVEL needs a skill: pass skill='name'")
        else:
            skill = None
        if order is self._order and skill == self._skill:
            view = self._view
            if view is not None:
                return view
            agent_id = self.first_id
            if agent_id is None:
                return None
            agent = self._agents[agent_id]
        else:
            found = self.find(order, skill)
            if found is None:
                return None
            agent = found
        view = self._view = self.view(agent)
        return view

    def first_record(self, order: CandidateOrder) -> AgentRecord | None:
        """:meth:`first` for an order without a skill, as the agent's record: no view built.

        For the built-in strategies, which read two or three of its fields (with
        :meth:`placement`); building the view would cost more than the rest of their decision.
        """
        if order is _SKILL_LEVEL:
            raise ValueError("first_record is for orders without a skill: use first()")
        if order is self._order and self._skill is None:
            agent_id = self.first_id
            return None if agent_id is None else self._agents[agent_id]
        return self.find(order, None)

    def placement(self, agent_id: str) -> tuple[int, int]:
        """``(tier, position)`` of the candidate ``agent_id`` in this queue."""
        return self._queue.tier_position[agent_id]

    def __iter__(self) -> Iterator[AgentView]:
        """Every candidate, by tier and position."""
        return self._ordered(_TIER_POSITION, None)

    def get(self, agent_id: str) -> AgentView | None:
        """The candidate ``agent_id``, or None if it is not one."""
        agent = self._agents.get(agent_id)
        if agent is None:
            return None
        queue = self._queue
        m = queue.members.get(agent_id)
        if m is None or not self.admits(agent):
            return None
        if self._contact.queued_at + queue.tier_delay[m.tier] <= self._now:
            return self.view(agent)
        return None

    def __contains__(self, agent_id: object) -> bool:
        """Whether ``agent_id`` is a candidate."""
        return isinstance(agent_id, str) and self.get(agent_id) is not None

    def best(self, key: Callable[[AgentView], Any]) -> AgentView | None:
        """The candidate with the smallest ``key`` (ties: smallest id), by a full scan."""
        best: AgentView | None = None
        best_key: Any = None
        for view in self._ordered(_TIER_POSITION, None):
            k = (key(view), view.id)
            if best is None or k < best_key:
                best, best_key = view, k
        return best
