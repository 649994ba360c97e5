"""The built-in routing strategies: mod_callcenter's nine, and skills-best-match.

Each is a small, stateless class implementing :class:`~callmesh.acd.strategy.RoutingStrategy`.
They read the candidates through the engine's indexed orders, so the common strategies cost
one index lookup per decision. Their behaviour follows FreeSWITCH mod_callcenter
(``members_callback`` in ``mod_callcenter.c``): every strategy serves the lowest eligible tier
first, and orders agents inside a tier as described on each class. ``docs/routing.md``
gives a worked example of each.

Per-queue and per-contact memory (round-robin's and top-down's cursors) and randomness come
from the request, never from the strategy object, so one instance serves every queue and
every router, and a run is reproducible from the router's seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from callmesh.acd.state import Candidates
from callmesh.acd.strategy import (
    AgentView,
    CandidateOrder,
    RoutingDecision,
    RoutingOutcome,
    RoutingRequest,
    RoutingStrategy,
    _RequestFields,
)

__all__ = [
    "BUILTIN_STRATEGIES",
    "AgentWithFewestCalls",
    "AgentWithLeastTalkTime",
    "BuiltinRoutingPolicy",
    "IndexedStrategy",
    "LongestIdleAgent",
    "RandomAgent",
    "RingAll",
    "RingProgressively",
    "RoundRobin",
    "SequentiallyByAgentOrder",
    "SkillsBestMatch",
    "TopDown",
    "check_params",
]


_SKILL_LEVEL: Final = CandidateOrder.SKILL_LEVEL  # a module constant: cheaper than the class lookup
_LONGEST_IDLE: Final[CandidateOrder] = CandidateOrder.LONGEST_IDLE
_LEAST_TALK_TIME: Final[CandidateOrder] = CandidateOrder.LEAST_TALK_TIME
_FEWEST_CALLS: Final[CandidateOrder] = CandidateOrder.FEWEST_CALLS
_TIER_POSITION: Final[CandidateOrder] = CandidateOrder.TIER_POSITION
# Compiled, a class of a non-compiled module is looked up in the globals dict at each use in
# a function; this C static is not.
_RoutingDecision: Final[type[RoutingDecision]] = RoutingDecision


def _seconds(duration: float) -> int:
    """A duration in whole seconds for a reason, rounded half up.

    Compiled, ``math.floor`` of a float is native code, where ``round()`` is a call into
    Python (about a third of a decision's reason); an int in an f-string is then a
    concatenation rather than a ``str.format`` call.
    """
    whole = math.floor(duration)
    return whole + 1 if duration - whole >= 0.5 else whole  # (exact: no x + 0.5 rounding)


def _one(name: str, agent: AgentView | None, reason: str) -> RoutingDecision | None:
    if agent is None:
        return None
    return _RoutingDecision((agent.id,), name, reason)


class IndexedStrategy:
    """A built-in strategy whose decision is the first candidate in one indexed order.

    Four of mod_callcenter's strategies are that: longest-idle-agent, agent-with-least-
    talk-time, agent-with-fewest-calls and sequentially-by-agent-order. The engine asks
    :meth:`pick` itself when the policy lists the strategy in ``direct_strategies``: one
    native call on the engine's candidate set, with no request, view or
    :class:`~callmesh.acd.strategy.RoutingDecision` built. :meth:`choose`, the contract's
    entry, answers the same agent and reason through the same code; a subclass (pure build)
    that overrides ``choose`` is asked through its ``choose`` instead.
    """

    name: str
    order: CandidateOrder

    def pick(self, candidates: Candidates, now: float) -> tuple[str, str]:
        """``(agent id, reason)`` of the first candidate in :attr:`order`; ``("", "")``
        when there is none."""
        record = candidates.first_record(self.order)
        if record is None:
            return "", ""
        agent_id = record.id
        tier, position = candidates.placement(agent_id)
        reason = self.reason(
            record.idle_since, record.talk_time, record.calls_handled, tier, position, now
        )
        return agent_id, reason

    def choose(self, request: RoutingRequest) -> RoutingDecision | None:
        """The first candidate in :attr:`order`."""
        # Typed as the named tuple RoutingRequest extends: compiled, its fields are then read
        # as tuple items (RoutingRequest's own are attribute lookups, ~20 times dearer).
        fields: _RequestFields = request
        candidates = fields.candidates
        if type(candidates) is Candidates:
            # The engine's own set (always, but for tests and plugins that make their own).
            agent_id, reason = self.pick(candidates, fields.now)
            if not agent_id:
                return None
            return _RoutingDecision((agent_id,), self.name, reason)
        agent = candidates.first(self.order)
        if agent is None:
            return None
        reason = self.reason(
            agent.idle_since,
            agent.talk_time,
            agent.calls_handled,
            agent.tier,
            agent.position,
            fields.now,
        )
        return _RoutingDecision((agent.id,), self.name, reason)

    def reason(
        self,
        idle_since: float,
        talk_time: float,
        calls_handled: int,
        tier: int,
        position: int,
        now: float,
    ) -> str:
        """The decision's reason, from the chosen agent's figures, as its order reads them:
        ``idle 42 s, tier 1``, ``talk time 310 s, tier 1``, ``4 calls, tier 1``, ``tier 1
        position 3`` (seconds whole, rounded half up)."""
        order = self.order
        if order is _LONGEST_IDLE:
            return f"idle {_seconds(now - idle_since)} s, tier {tier}"
        if order is _LEAST_TALK_TIME:
            return f"talk time {_seconds(talk_time)} s, tier {tier}"
        if order is _FEWEST_CALLS:
            return f"{calls_handled} calls, tier {tier}"
        return f"tier {tier} position {position}"


class LongestIdleAgent(IndexedStrategy):
    """longest-idle-agent: the agent idle the longest (lowest tier first)."""

    name = "longest-idle-agent"
    order = _LONGEST_IDLE


class AgentWithLeastTalkTime(IndexedStrategy):
    """agent-with-least-talk-time: the agent who talked the least since login."""

    name = "agent-with-least-talk-time"
    order = _LEAST_TALK_TIME


class AgentWithFewestCalls(IndexedStrategy):
    """agent-with-fewest-calls: the agent who handled the fewest contacts since login."""

    name = "agent-with-fewest-calls"
    order = _FEWEST_CALLS


class SequentiallyByAgentOrder(IndexedStrategy):
    """sequentially-by-agent-order: always the first free agent by tier, then position."""

    name = "sequentially-by-agent-order"
    order = _TIER_POSITION


class TopDown:
    """top-down: start at the top for each new contact, go down the list on re-offers.

    A contact's first offer goes to the first free agent by tier and position. When it
    comes back (no answer, rejected), the next offer goes to the next agent *after* the one
    it was last offered to, in the same tier or a later one; past the end it restarts at
    the top (mod_callcenter keeps that cursor on the caller's channel).
    """

    name = "top-down"

    def choose(self, request: RoutingRequest) -> RoutingDecision | None:
        """The first candidate after the contact's last position, else the first one."""
        cursor = request.contact.last_position
        if cursor is not None:
            for nxt in request.candidates.ordered(CandidateOrder.TIER_POSITION):
                if (nxt.tier, nxt.position) > cursor:
                    return _one(
                        self.name,
                        nxt,
                        f"next after {cursor}: tier {nxt.tier} position {nxt.position}",
                    )
        agent = request.candidates.first(CandidateOrder.TIER_POSITION)
        if agent is None:
            return None
        return _one(self.name, agent, f"from the top: tier {agent.tier} position {agent.position}")


class RoundRobin:
    """round-robin: the next agent after the one this queue offered to last.

    The queue remembers the (tier, position) of its last offer. The next offer goes to the
    first free agent of that tier with a higher position; if there is none, it starts over
    from the first free agent by tier and position.
    """

    name = "round-robin"

    def choose(self, request: RoutingRequest) -> RoutingDecision | None:
        """The next candidate after the queue's cursor in its tier, else the first one."""
        cursor = request.candidates.last_position
        if cursor is not None:
            for nxt in request.candidates.ordered(CandidateOrder.TIER_POSITION):
                if nxt.tier == cursor[0] and nxt.position > cursor[1]:
                    return _one(self.name, nxt, f"next after position {cursor[1]}")
        agent = request.candidates.first(CandidateOrder.TIER_POSITION)
        if agent is None:
            return None
        return _one(self.name, agent, f"wrapped to tier {agent.tier} position {agent.position}")


class RandomAgent:
    """random: a uniformly random free agent of the lowest eligible tier that has one.

    Draws from ``request.rng``, the router's seeded generator.
    """

    name = "random"

    def choose(self, request: RoutingRequest) -> RoutingDecision | None:
        """A random candidate among those of the first tier that has any."""
        pool: list[AgentView] = []
        for agent in request.candidates.ordered(CandidateOrder.TIER_POSITION):
            if pool and agent.tier != pool[0].tier:
                break
            pool.append(agent)
        if not pool:
            return None
        agent = pool[request.rng.randrange(len(pool))]
        return _one(self.name, agent, f"random among {len(pool)} in tier {agent.tier}")


class RingAll:
    """ring-all: ring every candidate at once; the first to accept gets the contact."""

    name = "ring-all"

    def choose(self, request: RoutingRequest) -> RoutingDecision | None:
        """Every candidate, by tier and position."""
        ids = tuple(a.id for a in request.candidates.ordered(CandidateOrder.TIER_POSITION))
        if not ids:
            return None
        return _RoutingDecision(ids, self.name, f"ring all {len(ids)} free agents")


def _delay_param(params: Mapping[str, object]) -> float:
    value = params.get("delay", params.get("ringProgressivelySeconds", 10.0))
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"ring-progressively param 'delay' is {value!r}: use seconds > 0")
    if value <= 0:
        raise ValueError(f"ring-progressively param 'delay' is {value!r}: use seconds > 0")
    return float(value)


class RingProgressively:
    """ring-progressively: ring the first agent, add the next one every ``delay`` seconds.

    Agents are taken by tier and position; the ones already ringing keep ringing (param
    ``delay``, alias ``ringProgressivelySeconds`` as in the Queue resource, default 10 s,
    mod_callcenter's ``ring-progressively-delay``).
    """

    name = "ring-progressively"

    def choose(self, request: RoutingRequest) -> RoutingDecision | None:
        """Every candidate by tier and position, rung one more every ``delay`` seconds."""
        delay = _delay_param(request.params)
        ids = tuple(a.id for a in request.candidates.ordered(CandidateOrder.TIER_POSITION))
        if not ids:
            return None
        return _RoutingDecision(
            ids, self.name, f"ring {len(ids)} agents, one more every {delay:g} s", delay
        )


class SkillsBestMatch:
    """skills-best-match: the highest level in the contact's key skill, then longest idle.

    The key skill is the ``skill`` param if set, else the contact's required skill with the
    highest minimum level (ties: alphabetical). With no required skill and no param, it is
    longest-idle-agent. Lower tiers are served first, as everywhere.
    """

    name = "skills-best-match"

    def choose(self, request: RoutingRequest) -> RoutingDecision | None:
        """The first candidate in SKILL_LEVEL order for the key skill."""
        params = request.params
        skill = params.get("skill") if params else None
        if skill is not None and not isinstance(skill, str):
            raise ValueError(f"skills-best-match param 'skill' is {skill!r}: use a skill name")
        if skill is None:
            required = request.contact.skills
            if len(required) == 1:
                (skill,) = required
            elif required:
                skill = min(required, key=lambda s: (-required[s], s))
        candidates = request.candidates
        if skill is None:
            agent = candidates.first(_LONGEST_IDLE)
            if agent is None:
                return None
            return _RoutingDecision((agent.id,), self.name, "no skill required: longest idle")
        agent = candidates.first(_SKILL_LEVEL, skill)
        if agent is None:
            return None
        return _RoutingDecision((agent.id,), self.name, f"{skill} level {agent.skills[skill]}")


BUILTIN_STRATEGIES: Final[Mapping[str, RoutingStrategy]] = MappingProxyType(
    {
        s.name: s
        for s in (
            RingAll(),
            LongestIdleAgent(),
            RoundRobin(),
            TopDown(),
            AgentWithLeastTalkTime(),
            AgentWithFewestCalls(),
            SequentiallyByAgentOrder(),
            RandomAgent(),
            RingProgressively(),
            SkillsBestMatch(),
        )
    }
)
"""Every built-in strategy by name; the instances are stateless and may be shared."""


def check_params(strategy: str, params: Mapping[str, object]) -> None:
    """Validate a built-in strategy's params (unknown strategies are left to plugins).

    Raises:
        ValueError: naming the parameter and the fix.
    """
    # Plain names, not ``RingProgressively.name``: compiled (mypyc, see docs/design.md)
    # a strategy's name is an instance attribute with no class-level value to read.
    if strategy == "ring-progressively":
        _delay_param(params)
    elif strategy == "skills-best-match":
        skill = params.get("skill")
        if skill is not None and (not isinstance(skill, str) or not skill):
            raise ValueError(f"skills-best-match param 'skill' is {skill!r}: use a skill name")


class BuiltinRoutingPolicy:
    """A :class:`~callmesh.acd.strategy.RoutingPolicy` that maps a queue's strategy name to
    a built-in (or given) strategy; used when no plugin manager is given.

    An unknown strategy name yields None, so the engine falls back (and says so in the
    trace). ``observe`` keeps the outcomes' counts, which tests and simple embeddings read.
    """

    def __init__(self, strategies: Mapping[str, RoutingStrategy] = BUILTIN_STRATEGIES) -> None:
        """Route with ``strategies`` (name -> strategy), the built-ins by default."""
        self._strategies = dict(strategies)
        self.direct_strategies: Mapping[str, RoutingStrategy] = self._strategies
        """Every strategy: :meth:`route` only calls them (see ``RoutingPolicy``)."""
        self.outcomes: dict[str, int] = {}

    def route(self, request: RoutingRequest) -> RoutingDecision | None:
        """Ask the queue's strategy, or None when no strategy has that name."""
        strategy = self._strategies.get(request.strategy)
        if strategy is None:
            return None
        return strategy.choose(request)

    def observe(self, outcome: RoutingOutcome) -> None:
        """Count outcomes by result."""
        self.outcomes[outcome.result] = self.outcomes.get(outcome.result, 0) + 1
