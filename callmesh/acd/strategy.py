"""The routing contract: what a routing strategy sees, and what it may answer.

The engine (:class:`callmesh.acd.engine.Router`) builds a :class:`RoutingRequest` each time a
contact can be matched, hands it to a :class:`RoutingPolicy` (the plugin manager in
``callmesh.plugins``, or :class:`callmesh.acd.strategies.BuiltinRoutingPolicy` when none is
given), and checks the :class:`RoutingDecision` it gets back. The engine never trusts a
decision: an agent id that is not among the request's candidates (unknown, not Available, no
free capacity, lacking a skill, tier not yet eligible) is discarded, and when nothing valid
remains the engine decides with its built-in strategy and records that in the trace.

What the engine hands a strategy is immutable and cheap to build: the views
(:class:`ContactView`, :class:`AgentView`), the :class:`RoutingRequest` and the
:class:`RoutingOutcome` are named tuples, which the engine builds in one C call each (no
``__init__`` frame: several are built per decision). Assigning to a field raises
``AttributeError``; derive a changed copy with ``_replace`` (e.g.
``contact._replace(priority=9)``). The :class:`RoutingDecision` a strategy returns stays a
slotted dataclass, read-only by convention: build a new one, e.g. with
:func:`dataclasses.replace`. The engine does not rely on any of it for correctness: it checks
every decision against its own records, never against a view's fields.
:class:`CandidateSet` is lazy. A strategy should ask the candidate set for an ordered
iteration (:meth:`CandidateSet.ordered`, :meth:`CandidateSet.first`) rather than scan every
agent: the engine answers those from per-team, per-skill sorted indexes of the free agents,
so a decision costs about the same at 10,000 agents as at 1,000 (figures in
``docs/performance.md``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple, Protocol, runtime_checkable

__all__ = [
    "AgentView",
    "CandidateOrder",
    "CandidateSet",
    "Channel",
    "ContactView",
    "OfferResult",
    "RoutingDecision",
    "RoutingOutcome",
    "RoutingPolicy",
    "RoutingRequest",
    "RoutingStrategy",
]


class Channel(StrEnum):
    """The media of a contact; an agent's capacity is counted per channel."""

    VOICE = "voice"
    CHAT = "chat"
    EMAIL = "email"


class ContactView(NamedTuple):
    """A waiting contact, as a strategy sees it.

    Attributes:
        id: the contact's id, unique in the router (e.g. the call's UUID).
        channel: voice, chat or email.
        priority: higher is served first; equal priorities are served oldest first.
        attributes: free-form data gathered by the IVR or a CRM lookup (e.g. ``language``).
        skills: required skills, name -> minimum level (the queue's and the contact's own).
        queue: the name of the queue the contact waits in now.
        enqueued_at: when the contact first entered the ACD (kept across overflow and moves).
        attempts: how many offers this contact has had so far (0 on the first decision).
        last_position: ``(tier, position)`` of the agent this contact was last offered to
            in this queue, or None; top-down continues after it on a re-offer.
    """

    id: str
    channel: Channel
    priority: int
    attributes: Mapping[str, str]
    skills: Mapping[str, int]
    queue: str
    enqueued_at: float
    attempts: int = 0
    last_position: tuple[int, int] | None = None


class AgentView(NamedTuple):
    """An agent, as a strategy sees it in the context of one queue.

    Attributes:
        id: the agent's id.
        skills: skill name -> level (higher is better, 1..100 by convention).
        idle_since: when the agent last became free for this channel (Available after
            login, after wrap-up, or after a NotReady period); smaller means idle longer.
        calls_handled: contacts the agent accepted since login.
        talk_time: seconds the agent spent Busy since login.
        team: the team through which the agent serves this queue.
        tier: the tier level of that team for this queue (1 is served first).
        position: the agent's order within its tier of this queue (0 first: the tier's
            teams in their declared order, each in its member order), used by top-down,
            round-robin, sequentially-by-agent-order and the ring strategies.
        free_capacity: how many more contacts of this channel the agent can take now.
    """

    id: str
    skills: Mapping[str, int]
    idle_since: float
    calls_handled: int
    talk_time: float
    team: str
    tier: int
    position: int
    free_capacity: int = 1


class CandidateOrder(StrEnum):
    """Orders a :class:`CandidateSet` can iterate in, each backed by an engine index.

    Like mod_callcenter, every order groups candidates by tier level first (tier 1 before
    tier 2), and applies the named order inside each tier.
    """

    LONGEST_IDLE = "longest-idle"
    """Smallest ``idle_since`` first (ties: position in team, then id)."""
    SKILL_LEVEL = "skill-level"
    """Highest level in the given skill first, then longest idle; agents without the
    skill are left out."""
    TIER_POSITION = "tier-position"
    """Lowest position first."""
    FEWEST_CALLS = "fewest-calls"
    """Fewest ``calls_handled`` first (ties: position in team, then id)."""
    LEAST_TALK_TIME = "least-talk-time"
    """Least ``talk_time`` first (ties: position in team, then id)."""


@runtime_checkable
class CandidateSet(Protocol):
    """The agents that may take one contact right now.

    Every member is logged in and Available, has free capacity on the contact's channel,
    meets every required skill at its minimum level, and belongs to a team whose tier is
    eligible at ``request.now`` (its escalation delay has passed). Nothing is computed until
    asked: iteration is lazy and the ordered helpers read the engine's indexes, so a strategy
    that only needs the best agent costs about as much as finding it.
    """

    @property
    def last_position(self) -> tuple[int, int] | None:
        """``(tier, position)`` of the agent this queue last offered a contact to, if any.

        Round-robin starts after it; None before the queue's first offer.
        """
        ...

    def __iter__(self) -> Iterator[AgentView]:
        """Every candidate, lazily, in no promised order."""
        ...

    def __contains__(self, agent_id: object) -> bool:
        """Whether ``agent_id`` is a candidate."""
        ...

    def get(self, agent_id: str) -> AgentView | None:
        """The candidate with this id, or None if it is not one."""
        ...

    def ordered(self, order: CandidateOrder, skill: str | None = None) -> Iterator[AgentView]:
        """Candidates in ``order``, lazily; ``skill`` names the skill for SKILL_LEVEL.

        Raises:
            ValueError: SKILL_LEVEL without a ``skill``.
        """
        ...

    def first(self, order: CandidateOrder, skill: str | None = None) -> AgentView | None:
        """The first candidate in ``order``, or None when there is no candidate."""
        ...

    def best(self, key: Callable[[AgentView], Any]) -> AgentView | None:
        """The candidate with the smallest ``key`` (ties: smallest id); a full scan.

        Use it for orders the engine does not index; prefer :meth:`first` otherwise.
        """
        ...


class _RequestFields(NamedTuple):
    contact: ContactView
    queue: str
    strategy: str
    params: Mapping[str, object]
    candidates: CandidateSet
    now: float
    rng: random.Random


class RoutingRequest(_RequestFields):
    """One routing question: which agent(s) should be offered this contact now?

    Attributes:
        contact: the contact to place.
        queue: the queue it waits in.
        strategy: the strategy name configured on the queue (e.g. ``skills-best-match``).
        params: the strategy's parameters from the queue's configuration.
        candidates: the agents that may take it now (never empty when the engine asks).
        now: the engine's clock, in seconds.
        rng: the engine's seeded random generator; strategies that need chance draw from
            it, never from global state, so a run is reproducible from its seed. Left out
            (tests, examples), it is a new ``random.Random(0)``.
    """

    __slots__ = ()

    def __new__(
        cls,
        contact: ContactView,
        queue: str,
        strategy: str,
        params: Mapping[str, object],
        candidates: CandidateSet,
        now: float,
        rng: random.Random | None = None,
    ) -> RoutingRequest:
        """A request; the engine builds its own with ``tuple.__new__`` (no frame)."""
        if rng is None:
            rng = random.Random(0)
        return tuple.__new__(cls, (contact, queue, strategy, params, candidates, now, rng))


@dataclass(slots=True, unsafe_hash=True)
class RoutingDecision:
    """The answer to a :class:`RoutingRequest`.

    Attributes:
        agent_ids: the agents to offer the contact to, best first. One id for most
            strategies; several for ring-all (all ring at once, the first to accept wins)
            and ring-progressively.
        decided_by: who decided: a strategy or plugin name, for the call's trace.
        reason: a short human explanation (e.g. ``"level 9 in billing, idle 42 s"``).
        progressive_delay: when set, the agents are not rung all at once: the first rings,
            and every ``progressive_delay`` seconds the next one is added while the earlier
            ones keep ringing (mod_callcenter's ring-progressively).
        fallback: True when this decision stands in for the one the queue's strategy
            should have made (the plugin manager's fallback, when that strategy is missing,
            failed or answered an invalid decision); the engine records it in the trace's
            :attr:`~callmesh.acd.effects.DecisionRecord.fallback`.
    """

    agent_ids: tuple[str, ...]
    decided_by: str
    reason: str
    progressive_delay: float | None = None
    fallback: bool = False


class OfferResult(StrEnum):
    """What became of one offer."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    TIMED_OUT = "timed-out"
    WITHDRAWN = "withdrawn"
    """The contact was answered by another agent, abandoned, moved or overflowed."""


class RoutingOutcome(NamedTuple):
    """What happened to an offer, reported to :meth:`RoutingPolicy.observe`.

    Attributes:
        contact_id: the contact that was offered.
        queue: the queue it was offered from.
        agent_id: the agent it was offered to.
        result: accepted, rejected, timed out or withdrawn.
        decided_by: the strategy or plugin whose decision made the offer.
        at: the engine's clock when the result was known.
    """

    contact_id: str
    queue: str
    agent_id: str
    result: OfferResult
    decided_by: str
    at: float


class RoutingStrategy(Protocol):
    """A routing algorithm: pure, stateless between calls, fast.

    ``choose`` returns None when it has no opinion (the engine then uses its fallback).
    Per-queue memory a strategy needs (round-robin's cursor) comes from the request.
    """

    name: str

    def choose(self, request: RoutingRequest) -> RoutingDecision | None:
        """Pick the agent(s) for ``request.contact`` among ``request.candidates``."""
        ...


class RoutingPolicy(Protocol):
    """What the engine is handed to make decisions: a strategy registry with its guards.

    The plugin manager implements it with hooks, isolation of failing plugins and a
    fallback; :class:`callmesh.acd.strategies.BuiltinRoutingPolicy` maps a queue's strategy
    name to a built-in strategy.

    A policy may also have a ``wants_outcomes`` attribute: when it is False (the plugin
    manager with no ``callmesh_routing_outcome`` plugin), the engine never calls
    :meth:`observe` and builds no :class:`RoutingOutcome`. Without the attribute, every
    outcome is observed.

    It may also have a ``direct_strategies`` mapping (strategy name -> strategy): for a
    queue whose strategy is in it, :meth:`route` would only call that strategy's ``choose``
    and return its decision unchanged, so the engine calls ``choose`` itself. If ``choose``
    raises, the engine calls :meth:`route` after all, whose guards deal with the failure:
    ``choose`` then runs a second time for the same request, so a strategy listed there
    must not depend on being called once per decision (the built-ins are functions of the
    request: they raise only on params the engine checks before routing anything).
    The plugin manager lists its built-in strategies there when no plugin overrides routing
    and plugin calls are not traced. For a listed
    :class:`~callmesh.acd.strategies.IndexedStrategy` that keeps its ``choose``, the engine
    calls ``pick`` instead, which answers the same without a request being built.
    """

    def route(self, request: RoutingRequest) -> RoutingDecision | None:
        """Decide for ``request``; None lets the engine fall back to its built-in choice."""
        ...

    def observe(self, outcome: RoutingOutcome) -> None:
        """Learn what became of an offer (for adaptive strategies, metrics, traces)."""
        ...
