"""The ACD engine: a pure, deterministic router of contacts to agents.

:class:`Router` holds waiting contacts, agents and offers. Every transition takes the time
as an argument and returns the :mod:`effects <callmesh.acd.effects>` to carry out; nothing
here sleeps, reads a clock, starts a thread or does I/O. Timers (offer timeouts,
ring-progressively steps, tier escalation, max wait, end of wrap-up) fire in :meth:`tick`;
:meth:`next_deadline` tells the driver when to call it.

Matching is work-conserving: whenever an agent becomes free, or a contact arrives, comes
back from an offer, moves or escalates to a new tier, the router matches at once, so no
contact waits while an eligible agent idles (given ``tick`` is called on time). Waiting
contacts are served by priority, then by the time they first entered the ACD.

Bad input raises a subclass of :class:`~callmesh.acd.errors.AcdError` before any state
changes; :meth:`Router.check_invariants` verifies the whole state and is used by the tests
after every step, including failed ones.
"""

from __future__ import annotations

import heapq
import math
import random
from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import Any, Final, NamedTuple, NoReturn

from callmesh.acd.config import (
    AgentConfig,
    OverflowAction,
    QueueConfig,
    TeamConfig,
    validate,
)
from callmesh.acd.effects import (
    AgentState,
    AgentStateChanged,
    Connected,
    ContactEnded,
    ContactMoved,
    DecisionRecord,
    Effect,
    EndReason,
    Offer,
    OfferWithdrawn,
)
from callmesh.acd.errors import (
    AgentNotInTeamError,
    AgentStateError,
    ClockError,
    ConfigError,
    ContactStateError,
    DuplicateContactError,
    InvariantViolation,
    OfferWithdrawnError,
    UnknownAgentError,
    UnknownContactError,
    UnknownQueueError,
)
from callmesh.acd.state import (
    _AVAILABLE,
    _BUSY,
    _LOGGED_OUT,
    _RESERVED,
    _TIER_POSITION,
    _WAITING,
    AgentRecord,
    Candidates,
    ContactRecord,
    ContactState,
    Indexes,
    Needs,
    OfferRecord,
    QueueRecord,
    StateRecord,
    _new_tuple,
    needs,
)
from callmesh.acd.strategies import (
    BUILTIN_STRATEGIES,
    BuiltinRoutingPolicy,
    IndexedStrategy,
    LongestIdleAgent,
    check_params,
)
from callmesh.acd.strategy import (
    CandidateSet,
    Channel,
    OfferResult,
    RoutingDecision,
    RoutingOutcome,
    RoutingPolicy,
    RoutingRequest,
    RoutingStrategy,
)

__all__ = ["ContactSpec", "QueueStats", "Router", "check_config"]

_OFFERED: Final[ContactState] = ContactState.OFFERED
_CONNECTED: Final[ContactState] = ContactState.CONNECTED
_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})
# Enum members read through their class cost a few hundred ns each in Python 3.11: the
# hot paths read module constants instead (those shared with state.py are imported from it;
# compiled, a Final name of another compiled module is a C static too).
_NOT_READY: Final[AgentState] = AgentState.NOT_READY
_WRAP_UP: Final[AgentState] = AgentState.WRAP_UP
_FORCEABLE: Final = (_LOGGED_OUT, _AVAILABLE, _NOT_READY)
_ACCEPTED: Final[OfferResult] = OfferResult.ACCEPTED
_REJECTED: Final[OfferResult] = OfferResult.REJECTED
_TIMED_OUT: Final[OfferResult] = OfferResult.TIMED_OUT
_WITHDRAWN: Final[OfferResult] = OfferResult.WITHDRAWN
_ANSWERED: Final[EndReason] = EndReason.ANSWERED
_heappush: Final = heapq.heappush
_heappop: Final = heapq.heappop
_INF: Final = math.inf
# Compiled, a class of a non-compiled module is looked up in the globals dict at each use in
# a function: the one built on every decision is read from this C static instead.
_RoutingRequest: Final[type[RoutingRequest]] = RoutingRequest


class _Timer(IntEnum):
    OFFER_TIMEOUT = 0
    PROGRESS = 1
    ESCALATE = 2
    MAX_WAIT = 3
    WRAP_END = 4


_T_OFFER_TIMEOUT: Final = _Timer.OFFER_TIMEOUT
_T_PROGRESS: Final = _Timer.PROGRESS
_T_ESCALATE: Final = _Timer.ESCALATE
_T_MAX_WAIT: Final = _Timer.MAX_WAIT
_T_WRAP_END: Final = _Timer.WRAP_END


def _line_order(contact: ContactRecord) -> tuple[int, float, int, str]:
    """The order of a queue's line: priority, then age (a contact's ``key``)."""
    return contact.key


class ContactSpec(NamedTuple):
    """A contact to enqueue.

    Attributes:
        id: unique id (the call's UUID, a chat id).
        queue: the queue to wait in.
        priority: higher is served first; None takes the queue's priority.
        skills: skills this contact needs beyond the queue's, name -> minimum level.
        attributes: free-form data for strategies and screen pops.
        channel: None takes the queue's channel; otherwise it must match it.
        enqueued_at: when it first entered the ACD (a re-enqueue after a router restart
            passes the original time to keep its place); None means now.
        queued_at: when it entered this queue (a re-enqueue after a restart passes it, so
            escalation and max wait go on counting from there); None means ``enqueued_at``
            when that is given, else now.
    """

    id: str
    queue: str
    priority: int | None = None
    skills: Mapping[str, int] = _EMPTY
    attributes: Mapping[str, str] = _EMPTY
    channel: Channel | None = None
    enqueued_at: float | None = None
    queued_at: float | None = None


def _checked_id(spec: ContactSpec) -> str:
    """``spec.id``, or ContactStateError if it is not a non-empty string.

    Read as a plain tuple item: compiled (mypyc, see docs/design.md), reading
    ``spec.id`` checks its declared type first and raises a bare TypeError instead.
    """
    items: tuple[object, ...] = spec
    contact_id = items[0]
    if not contact_id or type(contact_id) is not str:
        raise ContactStateError(
            f"contact id is {contact_id!r}: give every contact a unique, non-empty string id"
        )
    return contact_id


@dataclass(frozen=True, slots=True)
class QueueStats:
    """A queue's live figures (for WatchQueues and announcements)."""

    queue: str
    waiting: int
    offering: int
    longest_wait: float
    agents: Mapping[AgentState, int]


def check_config(
    queues: Iterable[QueueConfig],
    teams: Iterable[TeamConfig],
    roster: Iterable[AgentConfig] = (),
) -> tuple[dict[str, QueueConfig], dict[str, TeamConfig], dict[str, AgentConfig]]:
    """What :class:`Router` checks of its configuration, without building one (its agents'
    records and indexes): :func:`~callmesh.acd.config.validate`, then the built-in
    strategies' params. Returns the queues, teams and agents by name / id.

    Raises:
        ConfigError: naming the field at fault and the fix.
    """
    queue_map, team_map, agent_map = validate(queues, teams, roster)
    for q in queue_map.values():
        if q.strategy in BUILTIN_STRATEGIES:
            try:
                check_params(q.strategy, q.params)
            except ValueError as exc:
                raise ConfigError(f"queue {q.name!r}.params: {exc}") from None
    return queue_map, team_map, agent_map


class Router:
    """Routes contacts to agents for one tenant; see the module docstring.

    Args:
        queues: the queues.
        teams: the teams, with their agents.
        roster: agents known outside any team (they cannot log in: AgentNotInTeamError).
        policy: decides who gets a contact; defaults to the built-in strategies.
        seed: seed of the router's random generator (random strategy, plugins).
        history_limit: state-history entries kept per agent (:meth:`agent_history`); 0 keeps
            none (a simulation reads none, and a deque's append is a Python-level call).
    """

    def __init__(
        self,
        queues: Iterable[QueueConfig],
        teams: Iterable[TeamConfig],
        *,
        roster: Iterable[AgentConfig] = (),
        policy: RoutingPolicy | None = None,
        seed: int = 0,
        history_limit: int = 1000,
    ) -> None:
        if history_limit < 0:
            raise ConfigError(
                f"history_limit is {history_limit}: pass the entries to keep per agent, 0 for none"
            )
        queue_map, team_map, agent_map = check_config(queues, teams, roster)
        self._policy: RoutingPolicy = policy if policy is not None else BuiltinRoutingPolicy()
        # A policy may say it ignores outcomes (see RoutingPolicy): then none is built.
        self._observes = bool(getattr(self._policy, "wants_outcomes", True))
        # Strategies the engine may call without the policy's route (see RoutingPolicy).
        self._direct: dict[str, RoutingStrategy] = dict(
            getattr(self._policy, "direct_strategies", None) or {}
        )
        # ... and those of them it may ask without a request (see IndexedStrategy): not a
        # subclass with its own ``choose``, which must be asked through it.
        self._indexed: dict[str, IndexedStrategy] = {
            name: s
            for name, s in self._direct.items()
            if isinstance(s, IndexedStrategy) and type(s).choose is IndexedStrategy.choose
        }
        self._rng = random.Random(seed)
        self._history = history_limit > 0
        self._now = -math.inf
        self._seq = 0
        self._timers: list[tuple[float, int, _Timer, str, int, str]] = []
        self._serve: list[AgentRecord] = []
        self._lined = 0  # contacts in the queues' waiting lines, all queues together
        self._team_cfg = team_map
        team_members = {name: tuple(a.id for a in t.agents) for name, t in team_map.items()}
        positions: dict[str, dict[str, int]] = {}
        for name, members in team_members.items():
            for pos, agent_id in enumerate(members):
                positions.setdefault(agent_id, {})[name] = pos
        self._agents: dict[str, AgentRecord] = {
            agent_id: AgentRecord(cfg, positions.get(agent_id, {}), history_limit)
            for agent_id, cfg in agent_map.items()
        }
        self._queues = {name: QueueRecord(q, team_members) for name, q in queue_map.items()}
        for queue in self._queues.values():
            for agent_id, membership in queue.members.items():
                self._agents[agent_id].queues.append(queue.name)
                team_wrap = team_map[membership.team].wrap_up_time
                if team_wrap is not None:  # the team's wrap-up overrides the queue's
                    queue.wrap_up[agent_id] = team_wrap
        self._indexes = Indexes(self._agents, team_members)
        self._contacts: dict[str, ContactRecord] = {}
        self._fallbacks = {
            name: BUILTIN_STRATEGIES.get(q.strategy, LongestIdleAgent())
            for name, q in queue_map.items()
        }

    # ------------------------------------------------------------------ helpers

    def _clock(self, now: float) -> None:
        try:
            if self._now <= now < _INF:  # False for NaN
                return
        except TypeError:
            pass
        if not isinstance(now, int | float) or not math.isfinite(now):
            raise ClockError(f"now is {now!r}: pass the current time as a finite number")
        raise ClockError(
            f"now is {now}, earlier than {self._now} already seen: time only moves forward"
        )

    def _agent(self, agent_id: str) -> AgentRecord:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise UnknownAgentError(agent_id)
        return agent

    def _contact(self, contact_id: str) -> ContactRecord:
        contact = self._contacts.get(contact_id)
        if contact is None:
            raise UnknownContactError(contact_id)
        return contact

    def _queue(self, name: str) -> QueueRecord:
        queue = self._queues.get(name)
        if queue is None:
            raise UnknownQueueError(name)
        return queue

    def _push(self, at: float, kind: _Timer, ref: str, serial: int, extra: str = "") -> None:
        self._seq = seq = self._seq + 1
        _heappush(self._timers, (at, seq, kind, ref, serial, extra))

    def _touch(self, agent: AgentRecord, now: float, effects: list[Effect], reason: str) -> None:
        """Record a change of ``agent``: state history, effect, indexes, matching."""
        presence = agent.presence
        contacts = agent.contacts
        offers = agent.offers
        # agent.derived_state() and agent.channel, inlined (this runs on every transition)
        if contacts:
            new = presence if presence is _LOGGED_OUT else _BUSY
            agent.channel = next(iter(contacts.values()))
        elif offers:
            new = presence if presence is _LOGGED_OUT else _RESERVED
            agent.channel = next(iter(offers.values()))
        else:
            new = presence
            agent.channel = None
        old = agent.state
        if new is not old:
            if new is _AVAILABLE and old is not _RESERVED:
                agent.idle_since = now
            agent.state = new
            if new is _NOT_READY:
                reason = agent.reason
            change = AgentStateChanged(agent.id, new, reason, now)
            if self._history:  # the effect is the history entry too
                agent.history.append(change)
            effects.append(change)
        # agent.is_free(), inlined
        if presence is not _AVAILABLE:
            free = False
        elif contacts or offers:
            free = len(contacts) + len(offers) < agent.capacity.get(agent.channel, 0)  # type: ignore[arg-type]
        else:
            free = agent.can_work
        if free:
            self._indexes.add(agent)
            self._serve.append(agent)
        elif agent.indexed:
            self._indexes.remove(agent)

    def _observe(
        self, contact: ContactRecord, agent_id: str, result: OfferResult, now: float
    ) -> None:
        if not self._observes:
            return
        offer = contact.offer
        decided_by = offer.decision.decided_by if offer is not None else ""
        self._policy.observe(
            _new_tuple(
                RoutingOutcome, (contact.id, contact.queue, agent_id, result, decided_by, now)
            )
        )

    # ------------------------------------------------------------------ routing

    def _request(
        self, contact: ContactRecord, queue: QueueRecord, cands: Candidates, now: float
    ) -> RoutingRequest:
        """The routing request for ``contact`` in ``queue`` now (a named tuple, one call)."""
        return _new_tuple(
            _RoutingRequest,
            (contact.view(), queue.name, queue.strategy, queue.params, cands, now, self._rng),
        )

    def _ask(
        self, request: RoutingRequest, strategy: RoutingStrategy | None
    ) -> tuple[RoutingDecision | None, str]:
        """The policy's decision (through ``strategy``'s ``choose`` when the policy lists it
        as direct), and the problem to trace when the policy raised."""
        try:
            if strategy is not None:
                try:
                    return strategy.choose(request), ""
                except Exception:  # the policy's guards count, log and fall back
                    pass
            return self._policy.route(request), ""
        except Exception as exc:  # a policy must never lose a contact
            return None, f"policy raised {type(exc).__name__}: {exc}"

    def _decide(
        self, contact: ContactRecord, queue: QueueRecord, now: float
    ) -> tuple[DecisionRecord, float | None] | None:
        """Ask the policy who gets ``contact`` now and check its answer; None: no candidate.

        Returns the decision record (only valid candidates in it) and the progressive delay.
        """
        cands = Candidates(self._agents, self._indexes, contact, queue, now)
        # The probe: is there any candidate at all? In the order skills-best-match (or, with
        # no skill, longest-idle-agent) will ask for, so that strategy's question is answered
        # from the memo; no view is built unless a strategy asks for one.
        probe = cands.probe()
        if probe is None:
            return None
        probe_id = probe.id  # from the engine's record, never from a view
        decision: RoutingDecision | None = None
        problem = ""
        request: RoutingRequest | None = None
        indexed = self._indexed.get(queue.strategy)
        if indexed is not None:
            # A built-in strategy that is one indexed order, asked without a request (see
            # IndexedStrategy); if it raises, the policy's route deals with the failure.
            try:
                agent_id, reason = indexed.pick(cands, now)
            except Exception:
                request = self._request(contact, queue, cands, now)
                decision, problem = self._ask(request, None)
            else:
                if agent_id is probe_id:  # the common answer: the agent the probe found
                    record = DecisionRecord(now, queue.name, (agent_id,), indexed.name, reason)
                    return record, None
                if agent_id:
                    decision = RoutingDecision((agent_id,), indexed.name, reason)
        else:
            request = self._request(contact, queue, cands, now)
            decision, problem = self._ask(request, self._direct.get(queue.strategy))
        if decision is not None:
            ids = decision.agent_ids
            if type(ids) is tuple and len(ids) == 1 and ids[0] is probe_id:
                # The common answer: exactly the agent the engine found first, a candidate.
                delay = decision.progressive_delay
                if delay is not None and (not math.isfinite(delay) or delay <= 0):
                    delay = None
                record = DecisionRecord(
                    now, queue.name, ids, decision.decided_by, decision.reason, decision.fallback
                )
                return record, delay
        valid: list[str] = []
        discarded: list[str] = []
        if decision is not None:
            for agent_id in decision.agent_ids:
                if agent_id in valid or cands.get(agent_id) is None:
                    discarded.append(agent_id)
                else:
                    valid.append(agent_id)
            if not valid:
                problem = f"{decision.decided_by} chose no candidate ({', '.join(discarded)})"
        elif not problem:
            problem = f"policy made no decision for strategy {queue.strategy!r}"
        if not valid:
            if request is None:
                request = self._request(contact, queue, cands, now)
            try:
                decision = self._fallbacks[queue.name].choose(request)
            except ValueError:
                decision = None
            if decision is not None:
                valid = [a for a in dict.fromkeys(decision.agent_ids) if cands.get(a) is not None]
            if not valid:
                decision = RoutingDecision((probe_id,), "engine", "first candidate")
                valid = [probe_id]
            assert decision is not None
            record = DecisionRecord(
                now,
                queue.name,
                tuple(valid),
                f"engine:{decision.decided_by}",
                f"{problem}; fell back: {decision.reason}",
                True,
                tuple(discarded),
            )
        else:
            assert decision is not None
            record = DecisionRecord(
                now,
                queue.name,
                tuple(valid),
                decision.decided_by,
                decision.reason,
                decision.fallback,
                tuple(discarded),
            )
        delay = decision.progressive_delay
        if delay is not None and (not math.isfinite(delay) or delay <= 0):
            delay = None
        return record, delay

    def _route(
        self, contact: ContactRecord, now: float, effects: list[Effect], in_line: bool = True
    ) -> bool:
        """Offer a waiting contact if it has candidates; True when an offer was made.

        ``in_line`` False says the contact is not in its queue's waiting line (yet).
        """
        queue = self._queues[contact.queue]
        decided = self._decide(contact, queue, now)
        if decided is None:
            return False
        record, delay = decided
        valid = record.agent_ids
        contact.trace += (record,)
        self._seq = serial = self._seq + 1
        if delay is None:
            ringing_now = valid
            offer = OfferRecord(record, {}, (), None, serial)
        else:
            ringing_now = valid[:1]
            offer = OfferRecord(record, {}, valid[1:], delay, serial)
        if in_line and contact.state is _WAITING:
            self._unline(contact, queue)
        contact.state = _OFFERED
        contact.offer = offer
        contact.attempts += 1
        queue.last_position = contact.last_position = queue.tier_position[valid[0]]
        self._ring(contact, offer, ringing_now, now, effects, record, queue.offer_timeout)
        if offer.pending:
            assert delay is not None
            self._push(now + delay, _T_PROGRESS, contact.id, serial)
        return True

    def _ring(
        self,
        contact: ContactRecord,
        offer: OfferRecord,
        agent_ids: tuple[str, ...],
        now: float,
        effects: list[Effect],
        record: DecisionRecord,
        timeout: float,
    ) -> None:
        contact_id = contact.id
        channel = contact.channel
        effects.append(Offer(contact_id, contact.queue, channel, agent_ids, timeout, record))
        until = now + timeout
        reason = "offered " + contact_id
        ringing = offer.ringing
        agents = self._agents
        timers = self._timers
        serial = offer.serial
        for agent_id in agent_ids:
            agent = agents[agent_id]
            offers = agent.offers
            ringing[agent_id] = until
            if offers or agent.contacts or agent.state is not _AVAILABLE:
                offers[contact_id] = channel
                self._touch(agent, now, effects, reason)
            else:
                # self._touch(agent, ...), inlined for the common case: an idle agent (a
                # candidate, so Available) starts ringing and becomes Reserved.
                offers[contact_id] = channel
                agent.channel = channel
                agent.state = _RESERVED
                change = AgentStateChanged(agent_id, _RESERVED, reason, now)
                if self._history:
                    agent.history.append(change)
                effects.append(change)
                if agent.capacity.get(channel, 0) > 1:  # room for more (chats)
                    self._indexes.add(agent)
                    self._serve.append(agent)
                elif agent.indexed:
                    self._indexes.remove(agent)
            self._seq = seq = self._seq + 1
            _heappush(timers, (until, seq, _T_OFFER_TIMEOUT, contact_id, serial, agent_id))

    def _wait(self, contact: ContactRecord, now: float, effects: list[Effect]) -> None:
        """Put a contact (back) in its queue's line, at its place, and try to route it."""
        contact.state = _WAITING
        contact.offer = None
        if not self._route(contact, now, effects, in_line=False):
            self._line_up(contact, now)

    def _line_up(self, contact: ContactRecord, now: float) -> None:
        """A waiting contact found no agent: put it in its queue's line, at its place."""
        queue = self._queues[contact.queue]
        waiting = queue.waiting
        key = contact.key
        if not waiting or waiting[-1] < key:
            # The usual place: after everyone (same priority, entered later): one tuple
            # comparison instead of a bisection's.
            waiting.append(key)
        else:
            insort(waiting, key)
        self._lined += 1
        if contact.escalation_serial != contact.queue_serial:
            # First wait in this queue: arm the escalation of the tiers not yet eligible.
            contact.escalation_serial = contact.queue_serial
            for level, delay, _teams in queue.tiers:
                if contact.queued_at + delay > now:
                    self._push(
                        contact.queued_at + delay,
                        _T_ESCALATE,
                        contact.id,
                        contact.queue_serial,
                        str(level),
                    )

    def _unline(self, contact: ContactRecord, queue: QueueRecord) -> None:
        """Take a waiting contact out of its queue's line, if it is in it."""
        waiting = queue.waiting
        key = contact.key
        if waiting and waiting[0] == key:
            # The usual one: the first in line. (Compiled, the key is a C struct and this a
            # comparison of its fields, where the bisection boxes it and compares tuples.)
            del waiting[0]
            self._lined -= 1
            return
        i = bisect_left(waiting, key)
        if i < len(waiting) and waiting[i] == key:
            del waiting[i]
            self._lined -= 1

    def _drain(self, now: float, effects: list[Effect]) -> None:
        """Serve every agent that became free: give it the first waiting contact it fits."""
        if not self._lined:  # no contact waits in any line: nothing to give
            self._serve.clear()
            return
        while self._serve:
            agent = self._serve.pop(0)
            guard = 0
            while agent.indexed and agent.is_free():
                contact = self._best_waiting(agent, now)
                if contact is None or not self._route(contact, now, effects):
                    break
                guard += 1
                if guard > 10_000:  # pragma: no cover - a bug, not an input
                    raise InvariantViolation(f"agent {agent.id} kept matching without end")

    def _best_waiting(self, agent: AgentRecord, now: float) -> ContactRecord | None:
        best: ContactRecord | None = None
        contacts = self._contacts
        for name in agent.queues:
            queue = self._queues[name]
            if not queue.waiting:
                continue
            delay = queue.tier_delay[queue.members[agent.id].tier]
            for key in queue.waiting:
                if best is not None and key >= best.key:
                    break
                contact = contacts[key[-1]]
                if contact.queued_at + delay > now:
                    continue
                cands = Candidates(self._agents, self._indexes, contact, queue, now)
                if cands.admits(agent):
                    best = contact
                    break
        return best

    def _withdraw(
        self,
        contact: ContactRecord,
        now: float,
        effects: list[Effect],
        reason: str,
        keep: str | None = None,
    ) -> None:
        """Stop every ring of the contact's offer (except ``keep``), freeing the agents."""
        offer = contact.offer
        if offer is None:
            return
        released = [a for a in offer.ringing if a != keep]
        offer.pending = ()
        if released:
            effects.append(OfferWithdrawn(contact.id, tuple(released), reason))
        for agent_id in released:
            del offer.ringing[agent_id]
            agent = self._agents[agent_id]
            del agent.offers[contact.id]
            self._observe(contact, agent_id, _WITHDRAWN, now)
            self._touch(agent, now, effects, f"offer of {contact.id} withdrawn")

    def _offer_lost(self, contact: ContactRecord, now: float, effects: list[Effect]) -> None:
        """An agent stopped ringing: add the next progressive agent, or requeue if none."""
        offer = contact.offer
        assert offer is not None
        if offer.ringing:
            return
        if offer.pending:
            self._progress(contact, now, effects)
            if offer.ringing:
                return
        self._wait(contact, now, effects)

    def _progress(self, contact: ContactRecord, now: float, effects: list[Effect]) -> None:
        """ring-progressively: add the next pending agent that is still a candidate."""
        offer = contact.offer
        assert offer is not None and offer.delay is not None
        queue = self._queues[contact.queue]
        cands = Candidates(self._agents, self._indexes, contact, queue, now)
        while offer.pending:
            agent_id = offer.pending[0]
            offer.pending = offer.pending[1:]
            if cands.get(agent_id) is not None:
                timeout = queue.offer_timeout
                self._ring(contact, offer, (agent_id,), now, effects, offer.decision, timeout)
                break
        if offer.pending:
            self._push(now + offer.delay, _T_PROGRESS, contact.id, offer.serial)

    def _end(
        self,
        contact: ContactRecord,
        reason: EndReason,
        now: float,
        effects: list[Effect],
        action: str | None = None,
    ) -> None:
        """Take a waiting or offered contact out of the ACD."""
        self._withdraw(contact, now, effects, str(reason))
        if contact.state is _WAITING:
            self._unline(contact, self._queues[contact.queue])
        contact.offer = None
        del self._contacts[contact.id]
        effects.append(
            ContactEnded(
                contact.id,
                contact.queue,
                reason,
                now,
                now - contact.enqueued_at,
                action=action,
                trace=contact.trace,
            )
        )

    @staticmethod
    def _needs(queue: QueueRecord, own: Mapping[str, int]) -> Needs:
        """What a contact with ``own`` skills needs in ``queue``."""
        if not own:  # the common case: the queue's skills, computed once per queue
            return queue.needs
        merged = dict(queue.config.skills)
        for skill, level in own.items():
            merged[skill] = max(level, merged.get(skill, 0))
        return needs(MappingProxyType(merged))  # strategies see it: read-only

    def _place(self, contact: ContactRecord, queue: QueueRecord, since: float) -> None:
        """Place the contact in ``queue`` since ``since`` (skills, serial); the caller arms
        timers and routes."""
        contact.queue = queue.name
        contact.queued_at = since
        self._seq += 1
        contact.queue_serial = self._seq
        contact.skills, contact.key_skill, contact.key_level, contact.other_skills = self._needs(
            queue, contact.own_skills
        )
        contact.escalation_serial = 0
        contact.last_position = None

    def _move(
        self,
        contact: ContactRecord,
        target: QueueRecord,
        now: float,
        effects: list[Effect],
        why: str,
    ) -> None:
        source = contact.queue
        self._withdraw(contact, now, effects, f"moved to {target.name}")
        if contact.state is _WAITING:
            self._unline(contact, self._queues[source])
        self._place(contact, target, now)
        if target.config.max_wait is not None:
            self._push(now + target.config.max_wait, _T_MAX_WAIT, contact.id, contact.queue_serial)
        effects.append(ContactMoved(contact.id, source, target.name, why, now))
        # In line at its place in the new queue first: the agents its old offer freed are
        # served in line order (an older contact there may fit them), then it is routed.
        contact.state = _WAITING
        contact.offer = None
        self._line_up(contact, now)
        self._drain(now, effects)
        if contact.state is _WAITING:
            self._route(contact, now, effects)

    # ------------------------------------------------------------------ contacts

    def _new_contact(
        self, spec: ContactSpec, contact_id: str, now: float
    ) -> tuple[ContactRecord, QueueRecord]:
        """Check ``spec`` (its id, checked already, is ``contact_id``) and build its record,
        placed in its queue (not yet registered)."""
        self._clock(now)
        _, queue_name, priority, skills, attributes, channel, enqueued_at, queued_at = spec
        queue = self._queues.get(queue_name)
        if queue is None:
            raise UnknownQueueError(queue_name)
        if channel is None:
            channel = queue.channel
        else:
            channel = Channel(channel)
            if channel is not queue.channel:
                raise ContactStateError(
                    f"contact {contact_id!r} is {channel} but queue {queue.name!r} serves"
                    f" {queue.channel}: enqueue it in a {channel} queue"
                )
        if skills:
            given: Mapping[str, object] = skills  # untyped values: see _checked_id
            for skill, level in given.items():
                if isinstance(level, bool) or not isinstance(level, int) or level < 1:
                    raise ContactStateError(
                        f"contact {contact_id!r} skills[{skill!r}] is {level!r}: levels are"
                        " ints >= 1"
                    )
        if enqueued_at is None and queued_at is None:
            enqueued_at = queued_at = now  # checked above
        else:
            enqueued_at = now if enqueued_at is None else enqueued_at
            if not math.isfinite(enqueued_at) or enqueued_at > now:
                raise ContactStateError(
                    f"contact {contact_id!r} enqueued_at is {enqueued_at!r}: pass a time <= now"
                )
            queued_at = enqueued_at if queued_at is None else queued_at
            if not math.isfinite(queued_at) or not enqueued_at <= queued_at <= now:
                raise ContactStateError(
                    f"contact {contact_id!r} queued_at is {queued_at!r}: pass a time between"
                    f" enqueued_at ({enqueued_at}) and now ({now})"
                )
        if priority is None:
            priority = queue.priority
        self._seq = seq = self._seq + 2  # seq - 1 orders its arrival, seq is its queue serial
        contact = ContactRecord(
            contact_id,
            channel,
            priority,
            attributes,
            skills,
            enqueued_at,
            seq - 1,
            queue.name,
            queued_at,
            seq,
            self._needs(queue, skills) if skills else queue.needs,
        )
        return contact, queue

    def enqueue(self, spec: ContactSpec, now: float) -> list[Effect]:
        """A contact arrives in a queue; it is offered at once if an agent is free.

        Raises:
            DuplicateContactError, UnknownQueueError, ContactStateError (bad channel, skill
            level or enqueue time), ClockError.
        """
        contacts = self._contacts
        contact_id = _checked_id(spec)
        if contact_id in contacts:
            raise DuplicateContactError(contact_id)
        contact, queue = self._new_contact(spec, contact_id, now)
        self._now = now
        contacts[contact.id] = contact
        max_wait = queue.max_wait
        if max_wait is not None:  # due at once if it waited that long already
            self._push(contact.queued_at + max_wait, _T_MAX_WAIT, contact.id, contact.queue_serial)
        effects: list[Effect] = []
        if not self._route(contact, now, effects, in_line=False):
            self._line_up(contact, now)
        if self._serve:
            self._drain(now, effects)
        return effects

    def preview(self, spec: ContactSpec, now: float) -> DecisionRecord | None:
        """The decision the router would make if ``spec`` arrived now, changing nothing.

        None means no agent could take it now (it would wait). The policy is asked exactly
        as for a real arrival (so a stateful plugin sees the request); the router's state,
        traces and timers are left as they were. Raises as :meth:`enqueue` does.
        """
        contact, queue = self._new_contact(spec, _checked_id(spec), now)
        decided = self._decide(contact, queue, now)
        return None if decided is None else decided[0]

    def abandon(self, contact_id: str, now: float) -> list[Effect]:
        """The caller hung up (or the chat closed) before being answered.

        Raises:
            UnknownContactError, ContactStateError (already answered: use ``complete``).
        """
        self._clock(now)
        contact = self._contact(contact_id)
        if contact.state is _CONNECTED:
            raise ContactStateError(
                f"contact {contact_id!r} was answered by {contact.agent_id!r}:"
                " call complete() when it ends"
            )
        self._now = now
        effects: list[Effect] = []
        self._end(contact, EndReason.ABANDONED, now, effects)
        self._drain(now, effects)
        return effects

    def move(
        self, contact_id: str, queue: str, now: float, *, reason: str = "supervisor"
    ) -> list[Effect]:
        """Move a waiting (or ringing) contact to another queue, keeping its place in time.

        Raises:
            UnknownContactError, UnknownQueueError, ContactStateError.
        """
        self._clock(now)
        contact = self._contact(contact_id)
        target = self._queue(queue)
        if contact.state is _CONNECTED:
            raise ContactStateError(
                f"contact {contact_id!r} is already answered: transfer it, do not move it"
            )
        if target.config.channel is not contact.channel:
            raise ContactStateError(
                f"queue {queue!r} serves {target.config.channel}, contact {contact_id!r} is"
                f" {contact.channel}: move it to a {contact.channel} queue"
            )
        if target.name == contact.queue:
            raise ContactStateError(f"contact {contact_id!r} is already in queue {queue!r}")
        self._now = now
        effects: list[Effect] = []
        self._move(contact, target, now, effects, reason)
        self._drain(now, effects)
        return effects

    def accept(self, agent_id: str, contact_id: str, now: float) -> list[Effect]:
        """The agent answered the offer: connect them; other rings stop.

        Raises:
            UnknownAgentError, UnknownContactError, OfferWithdrawnError.
        """
        self._clock(now)
        agent = self._agents.get(agent_id)
        if agent is None:
            raise UnknownAgentError(agent_id)
        contact = self._contacts.get(contact_id)
        if contact is None:
            raise UnknownContactError(contact_id)
        offer = contact.offer
        if contact.state is not _OFFERED or offer is None or agent_id not in offer.ringing:
            raise OfferWithdrawnError(contact_id, agent_id)
        self._now = now
        effects: list[Effect] = []
        if len(offer.ringing) > 1:
            self._withdraw(contact, now, effects, f"answered by {agent_id}", keep=agent_id)
        else:
            offer.pending = ()  # what _withdraw does when no other agent rings
        del offer.ringing[agent_id]
        offers = agent.offers
        del offers[contact_id]
        channel = contact.channel
        busy = agent.contacts
        busy[contact_id] = channel
        agent.calls_handled += 1
        if self._observes:
            self._observe(contact, agent_id, _ACCEPTED, now)
        contact.state = _CONNECTED
        contact.agent_id = agent_id
        contact.answered_at = now
        contact.offer = None
        reason = "answered " + contact_id
        if offers or len(busy) > 1 or agent.state is not _RESERVED:
            self._touch(agent, now, effects, reason)
        else:
            # self._touch(agent, ...), inlined for the common case: a Reserved agent (a
            # ringing agent is Available) answers its only offer and becomes Busy.
            agent.channel = channel
            agent.state = _BUSY
            change = AgentStateChanged(agent_id, _BUSY, reason, now)
            if self._history:
                agent.history.append(change)
            effects.append(change)
            if agent.capacity.get(channel, 0) > 1:  # room for more chats
                self._indexes.add(agent)
                self._serve.append(agent)
            elif agent.indexed:
                self._indexes.remove(agent)
        queue = contact.queue
        effects.append(Connected(contact_id, agent_id, queue))
        waited = now - contact.enqueued_at
        trace = contact.trace
        effects.append(
            ContactEnded(contact_id, queue, _ANSWERED, now, waited, agent_id, None, trace)
        )
        contact.trace = ()
        if self._serve:
            self._drain(now, effects)
        return effects

    def reject(self, agent_id: str, contact_id: str, now: float) -> list[Effect]:
        """The agent declined the offer: it stays Available, the contact is re-offered
        (to someone else: an agent is not offered a contact it declined).

        Raises:
            UnknownAgentError, UnknownContactError, OfferWithdrawnError.
        """
        self._clock(now)
        agent = self._agent(agent_id)
        contact = self._contact(contact_id)
        offer = contact.offer
        if contact.state is not _OFFERED or offer is None or agent_id not in offer.ringing:
            raise OfferWithdrawnError(contact_id, agent_id)
        self._now = now
        effects: list[Effect] = []
        del offer.ringing[agent_id]
        del agent.offers[contact_id]
        if contact.declined:
            contact.declined.add(agent_id)  # type: ignore[attr-defined]
        else:
            contact.declined = {agent_id}
        self._observe(contact, agent_id, _REJECTED, now)
        effects.append(OfferWithdrawn(contact_id, (agent_id,), "rejected"))
        self._touch(agent, now, effects, f"rejected {contact_id}")
        self._offer_lost(contact, now, effects)
        self._drain(now, effects)
        return effects

    def complete(self, contact_id: str, now: float) -> list[Effect]:
        """An answered contact ended (hang-up, chat closed): the agent wraps up.

        Raises:
            UnknownContactError, ContactStateError (not answered: use ``abandon``).
        """
        self._clock(now)
        contact = self._contacts.get(contact_id)
        if contact is None:
            raise UnknownContactError(contact_id)
        if contact.state is not _CONNECTED or contact.agent_id is None:
            raise ContactStateError(
                f"contact {contact_id!r} was not answered: call abandon() if the caller left"
            )
        self._now = now
        effects: list[Effect] = []
        agent = self._agents[contact.agent_id]
        queue = self._queues[contact.queue]
        talk = now - contact.answered_at
        del agent.contacts[contact_id]
        del self._contacts[contact_id]
        agent.talk_time += talk
        queue.handled += 1
        queue.handle_total += talk
        wrap = queue.wrap_up.get(agent.id, queue.wrap_up_time)
        reason = "completed " + contact_id
        if agent.offers or agent.contacts or agent.presence is not _AVAILABLE:
            self._touch(agent, now, effects, reason)
        elif wrap > 0:
            agent.presence = _WRAP_UP
            agent.wrap_serial += 1
            self._push(now + wrap, _T_WRAP_END, agent.id, agent.wrap_serial)
            self._touch(agent, now, effects, reason)
        else:
            # self._touch(agent, ...), inlined for the common case: an Available agent ends
            # its only contact, with no wrap-up, and is free again (idle from now).
            agent.channel = None
            if agent.state is not _AVAILABLE:
                agent.idle_since = now
                agent.state = _AVAILABLE
                change = AgentStateChanged(agent.id, _AVAILABLE, reason, now)
                if self._history:
                    agent.history.append(change)
                effects.append(change)
            if agent.can_work:
                self._indexes.add(agent)
                self._serve.append(agent)
            elif agent.indexed:
                self._indexes.remove(agent)
        if self._serve:
            self._drain(now, effects)
        return effects

    # ------------------------------------------------------------------ agents

    def _release_offers(
        self, agent: AgentRecord, now: float, effects: list[Effect], why: str
    ) -> list[ContactRecord]:
        """Stop every ring at ``agent``; returns the contacts, for :meth:`_requeue`."""
        released = []
        for contact_id in list(agent.offers):
            contact = self._contacts[contact_id]
            offer = contact.offer
            assert offer is not None
            del offer.ringing[agent.id]
            del agent.offers[contact_id]
            effects.append(OfferWithdrawn(contact_id, (agent.id,), why))
            self._observe(contact, agent.id, _WITHDRAWN, now)
            released.append(contact)
        return released

    def _requeue(self, contacts: list[ContactRecord], now: float, effects: list[Effect]) -> None:
        """Contacts whose ring stopped go on (next progressive agent, or back in line) in
        line order (priority, then age): the oldest gets a free agent first, not the one
        whose offer happened to be withdrawn first."""
        for contact in sorted(contacts, key=_line_order):
            self._offer_lost(contact, now, effects)

    def _set_presence(
        self, agent: AgentRecord, presence: AgentState, reason: str, now: float
    ) -> list[Effect]:
        self._now = now
        effects: list[Effect] = []
        if agent.presence is _LOGGED_OUT and presence is not _LOGGED_OUT:
            agent.calls_handled = 0
            agent.talk_time = 0.0
            agent.idle_since = now
        agent.presence = presence
        agent.reason = reason if presence is _NOT_READY else ""
        released = []
        if presence is not _AVAILABLE and agent.offers:
            released = self._release_offers(agent, now, effects, f"agent went {presence}")
        self._touch(agent, now, effects, reason)
        if released:
            self._requeue(released, now, effects)
        self._drain(now, effects)
        return effects

    def _serving(self, agent_id: str) -> AgentRecord:
        agent = self._agent(agent_id)
        if not agent.teams:
            raise AgentNotInTeamError(agent_id)
        return agent

    def login(self, agent_id: str, now: float, *, ready: bool = True) -> list[Effect]:
        """The agent logs in, Available (or NotReady("login") when ``ready`` is False).

        Raises:
            UnknownAgentError, AgentNotInTeamError, AgentStateError (already logged in).
        """
        self._clock(now)
        agent = self._serving(agent_id)
        if agent.presence is not _LOGGED_OUT:
            raise AgentStateError(f"agent {agent_id!r} is already logged in ({agent.state})")
        presence = _AVAILABLE if ready else _NOT_READY
        return self._set_presence(agent, presence, "login", now)

    def logout(self, agent_id: str, now: float) -> list[Effect]:
        """The agent logs out; offers ringing at it go back to their queues.

        Raises:
            UnknownAgentError, AgentStateError (not logged in, or contacts in progress).
        """
        self._clock(now)
        agent = self._agent(agent_id)
        if agent.presence is _LOGGED_OUT:
            raise AgentStateError(f"agent {agent_id!r} is not logged in")
        if agent.contacts:
            raise AgentStateError(
                f"agent {agent_id!r} has contacts in progress ({', '.join(agent.contacts)}):"
                " complete them first, or force_state() as a supervisor"
            )
        return self._set_presence(agent, _LOGGED_OUT, "logout", now)

    def set_ready(self, agent_id: str, now: float) -> list[Effect]:
        """The agent is ready for contacts (also ends wrap-up early).

        Raises:
            UnknownAgentError, AgentStateError (not logged in).
        """
        self._clock(now)
        agent = self._agent(agent_id)
        if agent.presence is _LOGGED_OUT:
            raise AgentStateError(f"agent {agent_id!r} is not logged in: call login() first")
        return self._set_presence(agent, _AVAILABLE, "ready", now)

    def set_not_ready(self, agent_id: str, reason: str, now: float) -> list[Effect]:
        """The agent takes a break (reason code, e.g. ``lunch``); ringing offers go back.

        Raises:
            UnknownAgentError, AgentStateError (not logged in).
        """
        self._clock(now)
        agent = self._agent(agent_id)
        if agent.presence is _LOGGED_OUT:
            raise AgentStateError(f"agent {agent_id!r} is not logged in: call login() first")
        return self._set_presence(agent, _NOT_READY, reason or "not-ready", now)

    def force_state(
        self, agent_id: str, state: AgentState, now: float, *, reason: str = "supervisor"
    ) -> list[Effect]:
        """A supervisor sets an agent LoggedOut, Available or NotReady, whatever it does.

        Ringing offers go back to their queues; connected contacts carry on until completed.

        Raises:
            UnknownAgentError, AgentNotInTeamError, AgentStateError (state not forceable).
        """
        self._clock(now)
        agent = self._agent(agent_id)
        state = AgentState(state)
        if state not in _FORCEABLE:
            raise AgentStateError(
                f"cannot force agent {agent_id!r} to {state}: force LoggedOut, Available or"
                " NotReady"
            )
        if state is not _LOGGED_OUT and not agent.teams:
            raise AgentNotInTeamError(agent_id)
        return self._set_presence(agent, state, reason, now)

    # ------------------------------------------------------------------ time

    def next_deadline(self) -> float | None:
        """When :meth:`tick` next has something to do, or None."""
        timers = self._timers
        while timers and not self._live(timers[0]):
            _heappop(timers)
        return timers[0][0] if timers else None

    def _live(self, timer: tuple[float, int, _Timer, str, int, str]) -> bool:
        at, _seq, kind, ref, serial, extra = timer
        if kind is _T_WRAP_END:
            agent = self._agents[ref]
            return agent.presence is _WRAP_UP and agent.wrap_serial == serial
        contact = self._contacts.get(ref)
        if contact is None:
            return False
        if kind is _T_OFFER_TIMEOUT:
            offer = contact.offer
            if offer is None or offer.serial != serial:
                return False
            until = offer.ringing.get(extra)  # (a float compared natively, not as objects)
            return until is not None and until == at
        if kind is _T_PROGRESS:
            offer = contact.offer
            return offer is not None and offer.serial == serial and bool(offer.pending)
        if contact.queue_serial != serial or contact.state is _CONNECTED:
            return False
        if kind is _T_ESCALATE:
            return contact.state is _WAITING
        return True  # MAX_WAIT

    def tick(self, now: float) -> list[Effect]:
        """Fire every timer due at or before ``now``, in time order."""
        self._clock(now)
        self._now = now
        effects: list[Effect] = []
        timers = self._timers
        while timers and timers[0][0] <= now:
            timer = _heappop(timers)
            if not self._live(timer):
                continue
            at, _seq, kind, ref, _serial, extra = timer
            if kind is _T_WRAP_END:
                agent = self._agents[ref]
                agent.presence = _AVAILABLE
                self._touch(agent, at, effects, "wrap-up ended")
            elif kind is _T_OFFER_TIMEOUT:
                contact = self._contacts[ref]
                offer = contact.offer
                assert offer is not None
                agent = self._agents[extra]
                del offer.ringing[extra]
                del agent.offers[contact.id]
                agent.presence = _NOT_READY
                agent.reason = "no-answer"
                effects.append(OfferWithdrawn(contact.id, (extra,), "no answer"))
                self._observe(contact, extra, _TIMED_OUT, at)
                lost = [contact]
                if agent.offers:  # other chats ringing at a NotReady agent go back too
                    why = "agent went NotReady (no answer)"
                    lost += self._release_offers(agent, at, effects, why)
                self._touch(agent, at, effects, "no-answer")
                self._requeue(lost, at, effects)
            elif kind is _T_PROGRESS:
                self._progress(self._contacts[ref], at, effects)
            elif kind is _T_ESCALATE:
                # Escalations due at this instant (their timers adjacent in the heap) are
                # served in line order, across queues too (a shared tier takes the oldest).
                due = [(self._contacts[ref], int(extra))]
                while timers and timers[0][0] == at and timers[0][2] is _T_ESCALATE:
                    other = _heappop(timers)
                    if self._live(other):
                        due.append((self._contacts[other[3]], int(other[5])))
                due.sort(key=lambda d: d[0].key)
                for contact, level in due:
                    self._escalate(contact, level, at, effects)
            else:
                self._max_wait(self._contacts[ref], at, effects)
            self._drain(at, effects)
        return effects

    def _escalate(
        self, contact: ContactRecord, level: int, now: float, effects: list[Effect]
    ) -> None:
        """Tier ``level`` becomes eligible for the waiting ``contact``: route it, after the
        contacts ahead of it in line that reach that tier at this same instant (their timers,
        armed in another order, may not have fired yet), so that the line is served in order."""
        queue = self._queues[contact.queue]
        delay = next(d for lv, d, _teams in queue.tiers if lv == level)
        contacts = self._contacts
        for key in list(queue.waiting):
            ahead = contacts[key[-1]]
            if ahead is contact:
                break
            if ahead.state is _WAITING and ahead.queued_at + delay == now:
                self._route(ahead, now, effects)
        if contact.state is _WAITING:
            self._route(contact, now, effects)

    def _max_wait(self, contact: ContactRecord, now: float, effects: list[Effect]) -> None:
        config = self._queues[contact.queue].config
        overflow = config.overflow
        why = f"waited max {config.max_wait:g} s in {config.name}"
        if overflow is None:
            self._end(contact, EndReason.TIMED_OUT, now, effects)
        elif overflow.action is OverflowAction.QUEUE:
            assert overflow.target is not None
            self._move(contact, self._queues[overflow.target], now, effects, f"overflow: {why}")
        else:
            self._end(contact, EndReason.OVERFLOWED, now, effects, action=str(overflow.action))

    # ------------------------------------------------------------------ queries

    def agent_state(self, agent_id: str) -> AgentState:
        """The agent's current state."""
        return self._agent(agent_id).state

    def agent_history(self, agent_id: str) -> list[StateRecord]:
        """The agent's recent state changes, oldest first."""
        return [StateRecord(c.at, c.state, c.reason) for c in self._agent(agent_id).history]

    def waiting(self, queue: str) -> list[str]:
        """Ids of the contacts waiting (not ringing) in ``queue``, in serving order."""
        return [key[-1] for key in self._queue(queue).waiting]

    def contacts(self) -> list[str]:
        """Ids of every contact in the router (waiting, ringing or connected)."""
        return list(self._contacts)

    def priority(self, contact_id: str) -> int:
        """The priority the contact is served by: its own, else the queue it entered first
        (kept when it moves, with its place)."""
        return self._contact(contact_id).priority

    def position(self, contact_id: str) -> int:
        """1-based place of a waiting contact in its queue; 0 while ringing or connected."""
        contact = self._contact(contact_id)
        if contact.state is not _WAITING:
            return 0
        return bisect_left(self._queues[contact.queue].waiting, contact.key) + 1

    def estimated_wait(self, contact_id: str) -> float:
        """Estimated seconds until an agent answers: place x handle time / agents serving.

        The handle time is the queue's mean so far (its ``expected_handle_time`` before the
        first completed contact); agents serving are those logged in to the queue's teams.
        """
        place = self.position(contact_id)
        if place == 0:
            return 0.0
        queue = self._queues[self._contacts[contact_id].queue]
        aht = (
            queue.handle_total / queue.handled
            if queue.handled
            else queue.config.expected_handle_time
        )
        serving = sum(1 for a in queue.members if self._agents[a].presence is not _LOGGED_OUT)
        return place * aht / max(1, serving)

    def queue_stats(self, queue: str, now: float) -> QueueStats:
        """Waiting and ringing counts, longest wait and agents by state for ``queue``."""
        q = self._queue(queue)
        offering = sum(
            1 for c in self._contacts.values() if c.queue == queue and c.state is _OFFERED
        )
        longest = max((now - self._contacts[k[-1]].enqueued_at for k in q.waiting), default=0.0)
        agents: dict[AgentState, int] = {}
        for agent_id in q.members:
            state = self._agents[agent_id].state
            agents[state] = agents.get(state, 0) + 1
        return QueueStats(queue, len(q.waiting), offering, longest, agents)

    def trace(self, contact_id: str) -> tuple[DecisionRecord, ...]:
        """The routing decisions made so far for a contact in the router."""
        return self._contact(contact_id).trace

    def candidates(self, contact_id: str, now: float) -> CandidateSet:
        """The agents that may take ``contact_id`` at ``now`` (for inspection and tests)."""
        contact = self._contact(contact_id)
        return Candidates(self._agents, self._indexes, contact, self._queues[contact.queue], now)

    # ------------------------------------------------------------------ invariants

    def check_invariants(self) -> None:
        """Verify the whole state; raise :class:`InvariantViolation` on the first breach.

        Work conservation is checked at the last time seen, so call it after ``tick``.
        """
        now = self._now
        agents, contacts = self._agents, self._contacts

        def fail(message: str) -> NoReturn:
            raise InvariantViolation(message)

        for agent in agents.values():
            items = {**agent.offers, **agent.contacts}
            if len(items) != agent.load():
                fail(f"agent {agent.id} rings and talks to the same contact")
            if len(set(items.values())) > 1:
                fail(f"agent {agent.id} mixes channels: {items}")
            for contact_id, channel in items.items():
                if len(items) > agent.capacity.get(channel, 0):
                    fail(f"agent {agent.id} over capacity on {channel}: {sorted(items)}")
                contact = contacts.get(contact_id)
                if contact is None:
                    fail(f"agent {agent.id} holds ended contact {contact_id}")
                if contact_id in agent.offers:
                    if contact.offer is None or agent.id not in contact.offer.ringing:
                        fail(f"agent {agent.id} rings for {contact_id} with no such offer")
                    if agent.presence is not _AVAILABLE:
                        fail(f"agent {agent.id} rings while {agent.presence}")
                    for skill, level in contact.skills.items():
                        if agent.skills.get(skill, 0) < level:
                            fail(f"agent {agent.id} rings for {contact_id} without {skill}")
                elif contact.agent_id != agent.id or contact.state is not _CONNECTED:
                    fail(f"agent {agent.id} talks to {contact_id} not connected to it")
            if agent.state is not agent.derived_state():
                fail(f"agent {agent.id} state {agent.state} != {agent.derived_state()}")
            if agent.indexed != agent.is_free():
                fail(f"agent {agent.id} index flag {agent.indexed} but free={agent.is_free()}")
        for team, index in self._indexes.all():
            expected = []
            for pos, agent_id in enumerate(a.id for a in self._team_cfg[team].agents):
                agent = agents[agent_id]
                if agent.is_free():
                    key = index.key(agent, pos)
                    if key is not None:
                        expected.append(key)
            if sorted(expected) != index.entries:
                fail(f"index {team}/{index.order}/{index.skill} is stale")
        for name, queue in self._queues.items():
            waiting = sorted(
                c.key for c in contacts.values() if c.queue == name and c.state is _WAITING
            )
            if waiting != queue.waiting:
                fail(f"queue {name} line {queue.waiting} != waiting contacts {waiting}")
        lined = sum(len(q.waiting) for q in self._queues.values())
        if lined != self._lined:
            fail(f"{lined} contacts in the lines, the router counts {self._lined}")
        for contact in contacts.values():
            if contact.state is _OFFERED:
                offer = contact.offer
                if offer is None or not (offer.ringing or offer.pending):
                    fail(f"contact {contact.id} offered but nobody rings")
                for agent_id in offer.ringing:
                    if contact.id not in agents[agent_id].offers:
                        fail(f"contact {contact.id} rings {agent_id}, who does not know it")
            elif contact.state is _CONNECTED:
                if contact.agent_id is None or contact.id not in agents[contact.agent_id].contacts:
                    fail(f"contact {contact.id} connected to nobody")
            else:
                queue = self._queues[contact.queue]
                cands = Candidates(agents, self._indexes, contact, queue, now)
                found = cands.first(_TIER_POSITION)
                if found is not None:
                    fail(
                        f"contact {contact.id} waits in {contact.queue} while agent"
                        f" {found.id} is free and eligible (not work-conserving)"
                    )
