"""The router worker's state: one :class:`~callmesh.acd.Router` and what it talks to.

:class:`RouterCore` owns the tenant's engine and runs it on the event loop's clock: every
operation takes ``now`` from the loop, calls the engine, carries out the returned effects
(offers and withdrawals to agent sessions, offers, connections, moves and ends to the
watchers of each contact, KPI counters, metrics) and re-arms one loop timer at the engine's
:meth:`~callmesh.acd.Router.next_deadline`. It runs on the event loop thread only, so no
lock is needed; the gRPC layer (:mod:`~callmesh.workers.router.service`) maps requests onto
it and its errors onto statuses.

A config reload builds a new engine and moves the live state into it (see :meth:`reload`):
waiting and ringing contacts are enqueued again with their original enqueue time (their
place in line), logged-in agents log in again with their presence, and contacts in progress
stay with their agent: each such agent gets a private *hold* team and queue in the new
engine through which its contacts are offered to it alone and accepted at once, so the agent
is Busy exactly as before, wraps up when they complete, and is never double-booked. An
agent in wrap-up is put back in it the same way, for the time it has left.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import grpc
from callmesh.v1 import plugin_pb2, router_pb2
from callmesh.workers.router.config import RouterConfig, RouterConfigError
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry import metrics, trace

from callmesh.acd import (
    AgentConfig,
    AgentState,
    AgentStateChanged,
    Channel,
    Connected,
    ContactEnded,
    ContactMoved,
    ContactSpec,
    DecisionRecord,
    Effect,
    EndReason,
    Offer,
    OfferWithdrawn,
    QueueConfig,
    Router,
    RoutingPolicy,
    TeamConfig,
    TierConfig,
)
from callmesh.acd.errors import AcdError, AgentStateError, ConfigError

__all__ = [
    "DEFAULT_KPI_WINDOW",
    "HOLD_PREFIX",
    "IntervalStats",
    "RequestError",
    "RouterCore",
    "Session",
]

log = logging.getLogger("callmesh.workers.router")

HOLD_PREFIX = "~hold~"
"""Prefix of the private teams and queues that keep contacts in progress across a reload
(``~`` cannot appear in a Kubernetes name, so they never clash with a real queue)."""
DEFAULT_KPI_WINDOW = 900.0
"""Seconds of the sliding interval the live service level and ASA are over (15 minutes)."""
KPI_REUSE = 0.05
"""Seconds a KPI snapshot is shared between WatchQueues streams when nothing changed."""
FUTURE_SKEW = 2.0
"""Seconds an enqueue_time may lie in the future (clock skew between pods) before refused."""

CHANNEL_TO_PB = {
    Channel.VOICE: plugin_pb2.CHANNEL_VOICE,
    Channel.CHAT: plugin_pb2.CHANNEL_CHAT,
    Channel.EMAIL: plugin_pb2.CHANNEL_EMAIL,
}
PB_TO_CHANNEL = {v: k for k, v in CHANNEL_TO_PB.items()}
STATE_TO_PB = {
    AgentState.LOGGED_OUT: router_pb2.AGENT_STATE_LOGGED_OUT,
    AgentState.AVAILABLE: router_pb2.AGENT_STATE_AVAILABLE,
    AgentState.NOT_READY: router_pb2.AGENT_STATE_NOT_READY,
    AgentState.RESERVED: router_pb2.AGENT_STATE_RESERVED,
    AgentState.BUSY: router_pb2.AGENT_STATE_BUSY,
    AgentState.WRAP_UP: router_pb2.AGENT_STATE_WRAP_UP,
}
PB_TO_STATE = {v: k for k, v in STATE_TO_PB.items()}
_PRESENCE = frozenset({AgentState.AVAILABLE, AgentState.NOT_READY, AgentState.LOGGED_OUT})
"""States an agent chooses (kept across a reload), unlike Reserved, Busy and WrapUp."""
END_TO_PB = {
    EndReason.ANSWERED: router_pb2.END_REASON_ANSWERED,
    EndReason.ABANDONED: router_pb2.END_REASON_ABANDONED,
    EndReason.OVERFLOWED: router_pb2.END_REASON_OVERFLOWED,
    EndReason.TIMED_OUT: router_pb2.END_REASON_TIMED_OUT,
}


class RequestError(Exception):
    """A request the worker refuses before it reaches the engine, with its gRPC status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def status_of(exc: Exception) -> grpc.StatusCode:
    """The gRPC status for an error of the engine or the worker."""
    from callmesh.acd import errors as e

    if isinstance(exc, RequestError):
        return exc.code
    if isinstance(exc, e.UnknownQueueError | e.UnknownAgentError | e.UnknownContactError):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(exc, e.DuplicateContactError):
        return grpc.StatusCode.ALREADY_EXISTS
    if isinstance(exc, e.ClockError | e.ConfigError):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(exc, AcdError):
        return grpc.StatusCode.FAILED_PRECONDITION
    return grpc.StatusCode.INTERNAL


@dataclass
class ContactInfo:
    """What the worker keeps about a contact in the router (the engine keeps the rest)."""

    spec: ContactSpec
    """As enqueued; ``queue`` follows moves; ``enqueued_at`` is on the engine clock."""
    wall_enqueued: float
    """The original enqueue time, seconds since the epoch."""
    order: int
    """Arrival order in this worker (ties when re-enqueued at a reload)."""
    entered_queue: str = ""
    """The queue it entered the router in (a move changes ``spec.queue``, not this): the
    engine serves a contact without a priority of its own by this queue's priority."""
    agent_id: str | None = None
    """The agent it is connected to, once answered."""
    ringing: set[str] = field(default_factory=set)
    earlier_trace: list[DecisionRecord] = field(default_factory=list)
    """Decisions made by engines before the last reload."""
    watchers: list[asyncio.Queue[router_pb2.WatchContactResponse | None]] = field(
        default_factory=list
    )
    span_context: trace.SpanContext | None = None
    """The sampled span it was enqueued under (the Enqueue rpc's, a child of the caller's
    ``traceparent``): routing decisions made for it later join that trace."""


@dataclass
class Session:
    """An agent's open AgentSession: events for it are put on ``events``."""

    agent_id: str
    events: asyncio.Queue[router_pb2.AgentSessionResponse | None] = field(
        default_factory=asyncio.Queue
    )
    closed_with: tuple[grpc.StatusCode, str] | None = None
    """Set when the router ends the session (replaced, removed by a reload)."""


@dataclass
class QueueCounters:
    """A queue's cumulative outcomes, for its KPIs."""

    answered: int = 0
    answered_in_target: int = 0
    answer_wait_total: float = 0.0
    abandoned: int = 0
    abandoned_counted: int = 0
    overflowed: int = 0

    @property
    def service_level_base(self) -> int:
        """Contacts the service level is over: offered, minus abandons under the threshold.

        The same definition as the simulator's ``serviceLevelExclShortAbandonsPercent``
        (docs/simulate.md): overflowed contacts count as offered and not answered in time.
        """
        return self.answered + self.abandoned_counted + self.overflowed


class IntervalStats:
    """A queue's outcomes over a sliding interval, for its service level and ASA.

    A wallboard shows how the queue does *now*: the service level and the average speed of
    answer over the last ``window`` seconds (15 minutes by default), not since the router
    started. Outcomes are summed per ``resolution``-second bucket (so memory stays bounded
    by ``window / resolution`` buckets, whatever the contact rate); a bucket leaves once
    all of it is older than the window, so an outcome counts for at least ``window`` and at
    most ``window + resolution`` seconds. Running sums make a reading cost O(buckets that
    left). ``window`` 0 keeps everything (figures since the router started).
    """

    __slots__ = (
        "_buckets",
        "answered",
        "answered_in_target",
        "counted",
        "resolution",
        "wait_total",
        "window",
    )

    def __init__(self, window: float, resolution: float = 1.0) -> None:
        self.window = window
        self.resolution = resolution
        # [bucket index, answered, answered in target, counted, total wait of answered]
        self._buckets: collections.deque[list[float]] = collections.deque()
        self.answered = 0
        self.answered_in_target = 0
        self.counted = 0
        self.wait_total = 0.0

    def add(self, at: float, answered: bool, waited: float, in_target: bool, counted: bool) -> None:
        """One contact ended at ``at``: ``counted`` in the service level's base or not."""
        wait = waited if answered else 0.0
        if self.window > 0:
            index = math.floor(at / self.resolution)
            buckets = self._buckets
            if buckets and buckets[-1][0] == index:
                bucket = buckets[-1]
                bucket[1] += answered
                bucket[2] += in_target
                bucket[3] += counted
                bucket[4] += wait
            else:
                buckets.append([index, answered, in_target, counted, wait])
        self.answered += answered
        self.answered_in_target += in_target
        self.counted += counted
        self.wait_total += wait

    def prune(self, now: float) -> None:
        """Forget the buckets wholly older than the window."""
        if self.window <= 0:
            return
        buckets = self._buckets
        while buckets and (buckets[0][0] + 1) * self.resolution <= now - self.window:
            _, answered, in_target, counted, wait = buckets.popleft()
            self.answered -= int(answered)
            self.answered_in_target -= int(in_target)
            self.counted -= int(counted)
            self.wait_total -= wait
        if not buckets:  # no float drift across an idle spell
            self.answered = self.answered_in_target = self.counted = 0
            self.wait_total = 0.0

    @property
    def service_level(self) -> float:
        """Share answered within the target; NaN when nothing counted in the window."""
        return self.answered_in_target / self.counted if self.counted else math.nan

    @property
    def asa(self) -> float:
        """Mean wait of the answered contacts, seconds; 0 when none."""
        return self.wait_total / self.answered if self.answered else 0.0


def _wrap_for(agent_id: str, queue_name: str, config: RouterConfig) -> float:
    """Seconds of wrap-up after a contact of ``queue_name``, as the engine counts them: the
    queue's, unless the team through which the agent serves the queue overrides it."""
    queue = next((q for q in config.queues if q.name == queue_name), None)
    if queue is None:
        return 0.0
    teams = {t.name: t for t in config.teams}
    for tier in queue.tiers:
        for name in tier.teams:
            if any(a.id == agent_id for a in teams[name].agents):
                override = teams[name].wrap_up_time
                return queue.wrap_up_time if override is None else override
    return queue.wrap_up_time


def _ts(wall: float) -> Timestamp:
    seconds = math.floor(wall)
    return Timestamp(seconds=seconds, nanos=min(999_999_999, int((wall - seconds) * 1e9)))


class RouterCore:
    """One tenant's ACD on the event loop; see the module docstring.

    Args:
        config: the loaded tenant configuration.
        policy_factory: builds the routing policy (the plugin manager) from a config.
        clock: the engine clock (the event loop's ``time``); must never go back.
        wall_clock: seconds since the epoch (for enqueue times that survive a restart).
        seed: the engine's random seed.
        loop: the loop whose timer drives the engine (default: the running loop).
    """

    def __init__(
        self,
        config: RouterConfig,
        policy_factory: Callable[[RouterConfig], RoutingPolicy | None],
        *,
        clock: Callable[[], float] | None = None,
        wall_clock: Callable[[], float] = time.time,
        seed: int = 0,
        loop: asyncio.AbstractEventLoop | None = None,
        meter: metrics.Meter | None = None,
        tracer: trace.Tracer | None = None,
        kpi_window: float = DEFAULT_KPI_WINDOW,
    ) -> None:
        if not (math.isfinite(kpi_window) and kpi_window >= 0):
            raise ValueError(
                f"kpi_window is {kpi_window}: use seconds >= 0 (0: since the router started)"
            )
        self.kpi_window = kpi_window
        self._loop = loop if loop is not None else asyncio.get_running_loop()
        self._clock = clock if clock is not None else self._loop.time
        self._wall = wall_clock
        self._seed = seed
        self._policy_factory = policy_factory
        self._use(config)
        self.policy = policy_factory(config)
        self.router = self._build_engine(config, self.policy, ())
        self.contacts: dict[str, ContactInfo] = {}
        self.sessions: dict[str, Session] = {}
        self.presence: dict[str, tuple[AgentState, str]] = {}
        self.wrap_started: dict[str, float] = {}
        """Agents in WrapUp -> when it began (engine time), to keep it across a reload."""
        self.last_queue: dict[str, str] = {}
        """Agent -> queue of the contact it completed last (its wrap-up's queue)."""
        self.counters: dict[str, QueueCounters] = {q.name: QueueCounters() for q in config.queues}
        """Cumulative outcomes per queue, since the router started."""
        self.intervals: dict[str, IntervalStats] = {
            q.name: IntervalStats(kpi_window) for q in config.queues
        }
        """Outcomes per queue over the last ``kpi_window`` seconds (service level, ASA)."""
        self.reloads = 0
        self._order = 0
        self._now = -math.inf
        self._timer: asyncio.TimerHandle | None = None
        self._stamped: tuple[float, Timestamp] = (math.nan, Timestamp())
        self._closed = False
        self._tracer = tracer if tracer is not None else trace.get_tracer("callmesh.router")
        meter = meter if meter is not None else metrics.get_meter("callmesh.router")
        self._m_duration = meter.create_histogram(
            "callmesh.router.routing.duration",
            unit="s",
            description="Time the ACD engine took for one operation (enqueue, accept, tick...).",
        )
        # Counted in plain dicts and read by the SDK at collection time: a synchronous
        # counter costs a Measurement (attribute cleaning included) per contact.
        self._op_attrs: dict[str, dict[str, str]] = {}
        self._changes = 0  # operations run so far: a KPI snapshot is reused only if none ran
        self._kpi_cache: dict[tuple[str, ...], tuple[int, float, list[router_pb2.QueueKpis]]] = {}
        self._decided: dict[tuple[str, str, bool], int] = {}
        self._ended: dict[tuple[str, str], int] = {}
        meter.create_observable_counter(
            "callmesh.router.decisions",
            [self._observe_decisions],
            description="Routing decisions, by queue, deciding strategy/plugin and fallback.",
        )
        meter.create_observable_counter(
            "callmesh.router.contacts.ended",
            [self._observe_ended],
            description="Contacts that left the line, by reason.",
        )
        meter.create_observable_gauge(
            "callmesh.router.queue.depth",
            [self._observe_depth],
            description="Contacts waiting (not ringing) per queue.",
        )
        meter.create_observable_gauge(
            "callmesh.router.queue.service_level",
            [self._observe_sl],
            description="Share answered within the queue's target over the KPI window"
            " (--kpi-window, 15 min by default).",
        )
        meter.create_observable_gauge(
            "callmesh.router.agents",
            [self._observe_agents],
            description="Agents of each queue by state.",
        )

    # ------------------------------------------------------------------ engine plumbing

    def _build_engine(
        self,
        config: RouterConfig,
        policy: RoutingPolicy | None,
        holds: Iterable[tuple[list[QueueConfig], TeamConfig]],
    ) -> Router:
        holds = list(holds)
        try:
            return Router(
                list(config.queues) + [q for qs, _ in holds for q in qs],
                list(config.teams) + [t for _, t in holds],
                policy=policy,
                seed=self._seed,
                # The worker never reads an agent's state history: keeping the engine's
                # default 1,000 entries per agent only grows the heap every full garbage
                # collection walks (200 agents at 500 contacts/s: +200,000 objects and
                # full collections of 100-200 ms that stall the loop). None is kept.
                history_limit=0,
            )
        except ConfigError as exc:
            raise RouterConfigError(str(exc)) from None

    def now(self) -> float:
        """The engine time now: the loop clock, never earlier than a time already used."""
        self._now = max(self._now, self._clock())
        return self._now

    def wall_of(self, engine_time: float) -> float:
        """Wall-clock seconds of an engine time."""
        return engine_time + (self._wall() - self._clock())

    def _run(self, op: str, call: Callable[[float], list[Effect]]) -> list[Effect]:
        now = self.now()
        start = time.perf_counter()
        effects = call(now)
        attrs = self._op_attrs.get(op)
        if attrs is None:
            attrs = self._op_attrs[op] = {"op": op}
        self._m_duration.record(time.perf_counter() - start, attrs)
        self._changes += 1
        self._dispatch(effects, now)
        self._arm()
        return effects

    def _arm(self) -> None:
        if self._closed:
            return
        deadline = self.router.next_deadline()
        if self._timer is not None:
            if deadline is not None and self._timer.when() == deadline:
                return
            self._timer.cancel()
            self._timer = None
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._fire, deadline)

    def _fire(self, deadline: float) -> None:
        self._timer = None
        self._now = max(self._now, deadline)  # asyncio may run it a hair early
        try:
            self._run("tick", self.router.tick)
        except Exception:  # pragma: no cover - a bug; keep the timer alive
            log.exception("router tick failed")
            self._arm()

    def close(self) -> None:
        """Stop the timer and end every session and watch (the server is stopping)."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for session in list(self.sessions.values()):
            session.events.put_nowait(None)
        for info in self.contacts.values():
            for q in info.watchers:
                q.put_nowait(None)
            info.watchers.clear()

    # ------------------------------------------------------------------ effects

    def _trace(self, info: ContactInfo, cid: str) -> list[router_pb2.RoutingTraceEntry]:
        decisions = list(info.earlier_trace)
        if cid in self.contacts:  # the worker's contacts are the engine's
            decisions += self.router.trace(cid)
        return [self._trace_entry(d) for d in decisions]

    def _trace_entry(self, d: DecisionRecord) -> router_pb2.RoutingTraceEntry:
        return router_pb2.RoutingTraceEntry(
            decided_at=self._stamp(d.at),
            queue=d.queue,
            agent_ids=list(d.agent_ids),
            decided_by=d.decided_by,
            reason=d.reason,
            fallback=d.fallback,
            discarded=list(d.discarded),
        )

    def _stamp(self, now: float) -> Timestamp:
        """The wall-clock Timestamp of engine time ``now`` (one per batch of effects)."""
        if self._stamped[0] != now:
            self._stamped = (now, _ts(self.wall_of(now)))
        return self._stamped[1]

    def _to_agent(self, agent_id: str, now: float, **event: Any) -> None:
        session = self.sessions.get(agent_id)
        if session is not None:
            session.events.put_nowait(router_pb2.AgentSessionResponse(at=self._stamp(now), **event))

    def _to_watchers(self, info: ContactInfo, now: float, **event: Any) -> None:
        if info.watchers:
            msg = router_pb2.WatchContactResponse(at=self._stamp(now), **event)
            for q in info.watchers:
                q.put_nowait(msg)

    def _dispatch(self, effects: list[Effect], now: float) -> None:
        # An offer tells its agents they are Reserved, and Connected that the agent is Busy:
        # those state changes are not sent again on their own (fewer messages per contact).
        implied: set[tuple[str, AgentState]] = set()
        # ``type(e) is`` rather than isinstance: effects are exact NamedTuple types, and
        # this runs several times per contact.
        for e in effects:
            kind = type(e)
            if kind is Offer:
                implied.update((a, AgentState.RESERVED) for a in cast(Offer, e).agent_ids)
            elif kind is Connected:
                implied.add((cast(Connected, e).agent_id, AgentState.BUSY))
        for e in effects:
            kind = type(e)
            if kind is AgentStateChanged:
                self._on_state(cast(AgentStateChanged, e), now, implied)
            elif kind is Offer:
                self._on_offer(cast(Offer, e), now)
            elif kind is Connected:
                self._on_connected(cast(Connected, e), now)
            elif kind is ContactEnded:
                self._on_ended(cast(ContactEnded, e), now)
            elif kind is OfferWithdrawn:
                self._on_withdrawn(cast(OfferWithdrawn, e), now)
            elif kind is ContactMoved:
                self._on_moved(cast(ContactMoved, e), now)

    def _on_withdrawn(self, effect: OfferWithdrawn, now: float) -> None:
        info = self.contacts.get(effect.contact_id)
        if info is not None:
            info.ringing.difference_update(effect.agent_ids)
            self._to_watchers(
                info,
                now,
                withdrawn=router_pb2.ContactWithdrawn(
                    agent_ids=list(effect.agent_ids), reason=effect.reason
                ),
            )
        for agent_id in effect.agent_ids:
            self._to_agent(
                agent_id,
                now,
                withdrawn=router_pb2.AgentOfferWithdrawn(
                    contact_id=effect.contact_id, reason=effect.reason
                ),
            )

    def _on_connected(self, effect: Connected, now: float) -> None:
        info = self.contacts.get(effect.contact_id)
        if info is not None:
            info.agent_id = effect.agent_id
            info.ringing.clear()
            self._to_watchers(
                info, now, connected=router_pb2.ContactConnected(agent_id=effect.agent_id)
            )
        self._to_agent(
            effect.agent_id,
            now,
            connected=router_pb2.AgentConnected(
                contact_id=effect.contact_id, queue=info.spec.queue if info else ""
            ),
        )

    def _on_moved(self, effect: ContactMoved, now: float) -> None:
        info = self.contacts.get(effect.contact_id)
        if info is not None:
            # It counts escalation and max wait in its new queue from ``at``.
            info.spec = info.spec._replace(queue=effect.to_queue, queued_at=effect.at)
            self._to_watchers(
                info,
                now,
                moved=router_pb2.ContactMovedEvent(
                    from_queue=effect.from_queue,
                    to_queue=effect.to_queue,
                    reason=effect.reason,
                ),
            )

    def _on_state(
        self, effect: AgentStateChanged, now: float, implied: set[tuple[str, AgentState]]
    ) -> None:
        state = effect.state
        if state in _PRESENCE:
            self.presence[effect.agent_id] = (state, effect.reason)
        if state is AgentState.WRAP_UP:
            self.wrap_started[effect.agent_id] = effect.at
        elif self.wrap_started:
            self.wrap_started.pop(effect.agent_id, None)
        if (effect.agent_id, state) in implied:
            return
        self._to_agent(
            effect.agent_id,
            now,
            state=router_pb2.AgentStateChange(state=STATE_TO_PB[state], reason=effect.reason),
        )

    def _on_offer(self, effect: Offer, now: float) -> None:
        d = effect.decision
        key = (d.queue, d.decided_by, d.fallback)
        self._decided[key] = self._decided.get(key, 0) + 1
        info = self.contacts.get(effect.contact_id)
        if info is None:  # pragma: no cover - every engine contact has its info
            return
        if info.span_context is not None:
            self._trace_decision(info.span_context, effect)
        info.ringing.update(effect.agent_ids)
        if info.watchers:
            self._to_watchers(
                info,
                now,
                offered=router_pb2.ContactOffered(
                    agent_ids=list(effect.agent_ids),
                    timeout_seconds=effect.timeout,
                    decision=self._trace_entry(d),
                ),
            )
        offer = self._agent_offer(info, effect.channel, effect.timeout)
        for agent_id in effect.agent_ids:
            self._to_agent(agent_id, now, offer=offer)

    def _trace_decision(self, parent: trace.SpanContext, effect: Offer) -> None:
        """A span for one routing decision, in the trace of the contact's Enqueue (whichever
        rpc or timer made the decision: an agent's ready, a completion, an escalation)."""
        d = effect.decision
        span = self._tracer.start_span(
            "routing decision",
            context=trace.set_span_in_context(trace.NonRecordingSpan(parent)),
            attributes={
                "callmesh.contact_id": effect.contact_id,
                "callmesh.queue": d.queue,
                "callmesh.decided_by": d.decided_by,
                "callmesh.reason": d.reason,
                "callmesh.fallback": d.fallback,
                "callmesh.agent_ids": list(effect.agent_ids),
            },
        )
        span.end()

    def _agent_offer(self, info: ContactInfo, channel: Channel, timeout: float) -> Any:
        spec = info.spec
        return router_pb2.AgentOffer(
            contact_id=spec.id,
            queue=spec.queue,
            channel=CHANNEL_TO_PB[channel],
            timeout_seconds=timeout,
            attributes=dict(spec.attributes),
            enqueue_time=_ts(info.wall_enqueued),
            priority=self.router.priority(spec.id),  # the engine's: its own or its queue's
            trace=self._trace(info, spec.id),
        )

    def _on_ended(self, effect: ContactEnded, now: float) -> None:
        info = self.contacts.get(effect.contact_id)
        queue = info.spec.queue if info is not None else effect.queue
        key = (queue, effect.reason.value)
        self._ended[key] = self._ended.get(key, 0) + 1
        counters = self.counters.get(queue)
        target = self.config.service_levels.get(queue)
        if counters is not None:
            answered = effect.reason is EndReason.ANSWERED
            in_target = counted = False
            if answered:
                counters.answered += 1
                counters.answer_wait_total += effect.waited
                counted = True
                if target is not None and effect.waited <= target.seconds:
                    counters.answered_in_target += 1
                    in_target = True
            elif effect.reason is EndReason.ABANDONED:
                counters.abandoned += 1
                if target is None or effect.waited >= target.exclude_abandoned_under:
                    counters.abandoned_counted += 1
                    counted = True
            else:
                counters.overflowed += 1
                counted = True
            interval = self.intervals.get(queue)
            if interval is not None:
                interval.add(effect.at, answered, effect.waited, in_target, counted)
        if info is None:
            return
        if info.watchers:
            trace_entries = [self._trace_entry(d) for d in [*info.earlier_trace, *effect.trace]]
            self._to_watchers(
                info,
                now,
                ended=router_pb2.ContactEndedEvent(
                    reason=END_TO_PB[effect.reason],
                    queue=queue,
                    waited_seconds=effect.waited,
                    agent_id=effect.agent_id or "",
                    action=effect.action or "",
                    trace=trace_entries,
                ),
            )
            for q in info.watchers:
                q.put_nowait(None)
            info.watchers.clear()
        info.ringing.clear()
        info.earlier_trace = []
        if effect.reason is not EndReason.ANSWERED:
            del self.contacts[effect.contact_id]

    # ------------------------------------------------------------------ contacts

    def _use(self, config: RouterConfig) -> None:
        """Make ``config`` the one in force (with its lookup tables)."""
        self.config = config
        self._queue_map = {q.name: q for q in config.queues}
        self._agent_set = config.agent_ids()

    def _config_queue(self, name: str) -> QueueConfig:
        queue = self._queue_map.get(name)
        if queue is not None:
            return queue
        known = ", ".join(q.name for q in self.config.queues) or "none"
        raise RequestError(
            grpc.StatusCode.NOT_FOUND,
            f"unknown queue {name!r}: use one of the tenant's Queues ({known})",
        )

    def _contact(self, contact_id: str) -> ContactInfo:
        info = self.contacts.get(contact_id)
        if info is None:
            raise RequestError(
                grpc.StatusCode.NOT_FOUND,
                f"unknown contact {contact_id!r}: it was never enqueued or has ended",
            )
        return info

    def enqueue(
        self,
        contact_id: str,
        queue: str,
        *,
        channel: Channel | None = None,
        priority: int | None = None,
        skills: dict[str, int] | None = None,
        attributes: dict[str, str] | None = None,
        wall_enqueued: float | None = None,
        wall_queued: float | None = None,
    ) -> list[Effect]:
        """Enqueue a contact (``wall_enqueued``: its original enqueue time, or None for now;
        ``wall_queued``: when it entered this queue, if later, e.g. after an overflow).

        Raises:
            RequestError, AcdError: with the status to answer; nothing changed then.
        """
        if not contact_id:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT, "contact_id is empty: give the contact an id"
            )
        if contact_id in self.contacts:
            raise RequestError(
                grpc.StatusCode.ALREADY_EXISTS,
                f"contact {contact_id!r} is already in the router: contact ids must be unique"
                " (re-enqueue only after it has ended)",
            )
        config = self._config_queue(queue)
        if channel is not None and channel is not config.channel:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"channel is {channel} but queue {queue!r} serves {config.channel}: enqueue it"
                f" in a {channel} queue",
            )
        for name, level in (skills or {}).items():
            if not name or level < 1:
                raise RequestError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"skills[{name!r}].min_level is {level}: name the skill and use a level >= 1",
                )
        now = self.now()
        wall_now = self._wall()
        if wall_enqueued is None:
            wall_enqueued = wall_now
        elif not math.isfinite(wall_enqueued) or wall_enqueued > wall_now + FUTURE_SKEW:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"enqueue_time is {wall_enqueued - wall_now:.1f} s in the future: pass the time"
                " the contact first entered the ACD, or leave it unset for now",
            )
        wall_enqueued = min(wall_enqueued, wall_now)
        queued_at = None
        if wall_queued is not None:
            if not math.isfinite(wall_queued) or not (
                wall_enqueued <= wall_queued <= wall_now + FUTURE_SKEW
            ):
                raise RequestError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "queue_time must lie between enqueue_time and now: pass when the contact"
                    " entered this queue, or leave it unset (= enqueue_time)",
                )
            queued_at = now - (wall_now - min(wall_queued, wall_now))
        spec = ContactSpec(
            contact_id,
            queue,
            priority=priority,
            skills=dict(skills or {}),
            attributes=dict(attributes or {}),
            channel=channel,
            enqueued_at=now - (wall_now - wall_enqueued),
            queued_at=queued_at,
        )
        return self._enqueue_spec(spec, wall_enqueued, [])

    def _enqueue_spec(
        self, spec: ContactSpec, wall_enqueued: float, earlier: list[DecisionRecord]
    ) -> list[Effect]:
        self._order += 1
        info = ContactInfo(
            spec, wall_enqueued, self._order, entered_queue=spec.queue, earlier_trace=earlier
        )
        caller = trace.get_current_span().get_span_context()
        if caller.trace_flags.sampled:
            info.span_context = caller
        self.contacts[spec.id] = info
        try:
            return self._run("enqueue", lambda now: self.router.enqueue(spec, now))
        except Exception:
            del self.contacts[spec.id]
            raise

    def position(self, contact_id: str) -> tuple[int, float]:
        """1-based place and estimated wait of a waiting contact; (0, 0) otherwise."""
        info = self.contacts.get(contact_id)
        if info is None or info.agent_id is not None or info.ringing:
            return 0, 0.0
        return self.router.position(contact_id), self.router.estimated_wait(contact_id)

    def cancel(self, contact_id: str) -> float:
        """The caller left before being answered; returns the seconds waited."""
        info = self._contact(contact_id)
        if info.agent_id is not None:
            raise RequestError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"contact {contact_id!r} was answered by {info.agent_id!r}: call Complete when"
                " it ends",
            )
        effects = self._run("abandon", lambda now: self.router.abandon(contact_id, now))
        return next((e.waited for e in effects if isinstance(e, ContactEnded)), 0.0)

    def complete(self, contact_id: str) -> str:
        """An answered contact ended; returns its agent."""
        info = self._contact(contact_id)
        if info.agent_id is None:
            raise RequestError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"contact {contact_id!r} was not answered: call Cancel if the caller left",
            )
        agent_id = info.agent_id
        self._run("complete", lambda now: self.router.complete(contact_id, now))
        del self.contacts[contact_id]
        self.last_queue[agent_id] = info.spec.queue
        return agent_id

    def transfer(self, contact_id: str, queue: str, reason: str) -> int:
        """Move a contact to ``queue``; returns a TransferOutcome value."""
        info = self._contact(contact_id)
        target = self._config_queue(queue)
        why = reason or "transfer"
        if info.agent_id is None:
            if target.channel is not self._config_queue(info.spec.queue).channel:
                raise RequestError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"queue {queue!r} serves {target.channel}, contact {contact_id!r} is not:"
                    " transfer it to a queue of its channel",
                )
            self._run("move", lambda now: self.router.move(contact_id, queue, now, reason=why))
            return router_pb2.TRANSFER_OUTCOME_MOVED
        spec = info.spec
        channel = spec.channel or self._config_queue(spec.queue).channel
        if target.channel is not channel:
            raise RequestError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"queue {queue!r} serves {target.channel}, contact {contact_id!r} is {channel}:"
                " transfer it to a queue of its channel",
            )
        # A new wait in the target queue, from now: escalation and max wait count from now
        # too. (A queue time kept from a move or a restart would be before the new enqueue
        # time: the engine would refuse the spec after the call was completed, and lose it.)
        new = spec._replace(queue=queue, enqueued_at=self.now(), queued_at=None)
        self.complete(contact_id)
        self._enqueue_spec(new, self._wall(), [])
        return router_pb2.TRANSFER_OUTCOME_REQUEUED

    def answer(self, contact_id: str, agent_id: str, accept: bool) -> None:
        """A ringing offer was accepted or rejected by ``agent_id``."""
        if accept:
            self._run("accept", lambda now: self.router.accept(agent_id, contact_id, now))
        else:
            self._run("reject", lambda now: self.router.reject(agent_id, contact_id, now))

    def watch(self, contact_id: str) -> asyncio.Queue[router_pb2.WatchContactResponse | None]:
        """Follow a contact: a queue that gets its status, then its events, then None."""
        info = self._contact(contact_id)
        q: asyncio.Queue[router_pb2.WatchContactResponse | None] = asyncio.Queue()
        position, wait = self.position(contact_id)
        status = router_pb2.ContactStatus(
            queue=info.spec.queue,
            position=position,
            estimated_wait_seconds=wait,
            ringing_agent_ids=sorted(info.ringing),
            agent_id=info.agent_id or "",
            enqueue_time=_ts(info.wall_enqueued),
        )
        q.put_nowait(router_pb2.WatchContactResponse(at=_ts(self._wall()), status=status))
        if info.agent_id is None:
            info.watchers.append(q)
        else:
            q.put_nowait(None)  # answered: nothing more will happen to its wait
        return q

    def unwatch(
        self, contact_id: str, q: asyncio.Queue[router_pb2.WatchContactResponse | None]
    ) -> None:
        """Stop following (the watcher went away)."""
        info = self.contacts.get(contact_id)
        if info is not None and q in info.watchers:
            info.watchers.remove(q)

    # ------------------------------------------------------------------ agents

    def _known_agent(self, agent_id: str) -> None:
        """NOT_FOUND unless ``agent_id`` is in one of the tenant's AgentTeams."""
        if agent_id not in self._agent_set:
            raise RequestError(
                grpc.StatusCode.NOT_FOUND,
                f"agent {agent_id!r} is not in any AgentTeam of tenant"
                f" {self.config.namespace or '?'}: add it to a team's spec.agents",
            )

    def open_session(self, agent_id: str, ready: bool) -> Session:
        """Log an agent in (or take over its session after a reconnect).

        Raises:
            RequestError, AcdError: unknown agent, agent in no team.
        """
        self._known_agent(agent_id)
        old = self.sessions.get(agent_id)
        session = Session(agent_id)
        if self.router.agent_state(agent_id) is AgentState.LOGGED_OUT:
            self.sessions[agent_id] = session
            try:
                self._run("login", lambda now: self.router.login(agent_id, now, ready=ready))
            except Exception:
                del self.sessions[agent_id]
                raise
            # Also when the login shows no presence (Busy: a call it was forced out of goes on)
            self.presence[agent_id] = (
                (AgentState.AVAILABLE, "login") if ready else (AgentState.NOT_READY, "login")
            )
            return session
        # Still logged in: a reconnect (or a second desktop) takes the session over.
        if old is not None:
            old.closed_with = (
                grpc.StatusCode.ABORTED,
                f"agent {agent_id!r} opened a new session; this one is closed",
            )
            old.events.put_nowait(None)
        self.sessions[agent_id] = session
        now = self.now()
        state = self.router.agent_state(agent_id)
        session.events.put_nowait(
            router_pb2.AgentSessionResponse(
                at=_ts(self.wall_of(now)),
                state=router_pb2.AgentStateChange(
                    state=STATE_TO_PB[state], reason=self.presence.get(agent_id, (state, ""))[1]
                ),
            )
        )
        ringing = [info for info in self.contacts.values() if agent_id in info.ringing]
        if ready:
            self.set_ready(agent_id)
        else:
            self.set_not_ready(agent_id, "login")  # ringing offers go back to their queue
        # Offers still ringing at the agent ring on in the new session.
        for info in ringing:
            if agent_id in info.ringing:
                queue = self._config_queue(info.spec.queue)
                offer = self._agent_offer(info, queue.channel, queue.offer_timeout)
                self._to_agent(agent_id, now, offer=offer)
        return session

    def _engine_agents(self) -> set[str]:
        return self._agent_set

    def set_ready(self, agent_id: str) -> None:
        """The agent is ready (ends wrap-up early)."""
        self._run("ready", lambda now: self.router.set_ready(agent_id, now))
        self.presence[agent_id] = (AgentState.AVAILABLE, "ready")

    def set_not_ready(self, agent_id: str, reason: str) -> None:
        """The agent takes a break with a reason code."""
        why = reason or "not-ready"
        self._run("not-ready", lambda now: self.router.set_not_ready(agent_id, why, now))
        self.presence[agent_id] = (AgentState.NOT_READY, why)

    def logout(self, agent_id: str) -> None:
        """The agent logs out (refused with contacts in progress); its session ends."""
        self._run("logout", lambda now: self.router.logout(agent_id, now))
        self.presence[agent_id] = (AgentState.LOGGED_OUT, "logout")
        session = self.sessions.pop(agent_id, None)
        if session is not None:
            session.events.put_nowait(None)

    def force_state(self, agent_id: str, state: AgentState | None, reason: str) -> AgentState:
        """A supervisor sets ``agent_id`` LoggedOut, Available or NotReady; returns its state.

        Raises:
            RequestError: unknown agent, a state that cannot be forced, Available without a
                session (nobody could answer its offers), NotReady while logged out.
        """
        self._known_agent(agent_id)
        if state not in _PRESENCE:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"state is {state or 'unset'}: force an agent AGENT_STATE_LOGGED_OUT,"
                " AGENT_STATE_AVAILABLE or AGENT_STATE_NOT_READY",
            )
        why = reason or "supervisor"
        if state is AgentState.AVAILABLE and agent_id not in self.sessions:
            raise RequestError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"agent {agent_id!r} has no open AgentSession, so nobody could answer its"
                " offers: it logs in from its desktop first",
            )
        if (
            state is AgentState.NOT_READY
            and self.router.agent_state(agent_id) is AgentState.LOGGED_OUT
        ):
            raise RequestError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"agent {agent_id!r} is not logged in: it logs in from its desktop first",
            )
        self._run("force", lambda now: self.router.force_state(agent_id, state, now, reason=why))
        self.presence[agent_id] = (state, why)
        if state is AgentState.LOGGED_OUT:
            session = self.sessions.pop(agent_id, None)
            if session is not None:  # it got the state change; now its stream ends
                session.events.put_nowait(None)
        return self.router.agent_state(agent_id)

    def close_session(self, session: Session) -> None:
        """The session's stream ended: log the agent out, or NotReady if it has contacts."""
        agent_id = session.agent_id
        if self.sessions.get(agent_id) is not session:
            return  # replaced by a newer session, or already closed
        del self.sessions[agent_id]
        if agent_id not in self._engine_agents():
            return
        if self.router.agent_state(agent_id) is AgentState.LOGGED_OUT:
            return
        try:
            self.logout(agent_id)
        except AgentStateError:
            self.set_not_ready(agent_id, "disconnected")

    # ------------------------------------------------------------------ KPIs

    def kpis(self, queues: Iterable[str] = ()) -> list[router_pb2.QueueKpis]:
        """KPIs of the named queues (all when empty), by name.

        Many wallboards watching the same queues share one snapshot: it is reused while no
        operation has run since and it is younger than :data:`KPI_REUSE` seconds (the
        longest wait moves on its own). The messages returned must not be modified.
        """
        names = list(queues) or sorted(q.name for q in self.config.queues)
        now = self.now()
        key = tuple(names)
        cached = self._kpi_cache.get(key)
        if cached is not None and cached[0] == self._changes and now - cached[1] < KPI_REUSE:
            return cached[2]
        out = self._compute_kpis(names, now)
        if len(self._kpi_cache) >= 64:
            self._kpi_cache.clear()
        self._kpi_cache[key] = (self._changes, now, out)
        return out

    def _compute_kpis(self, names: list[str], now: float) -> list[router_pb2.QueueKpis]:
        out = []
        for name in names:
            self._config_queue(name)
            stats = self.router.queue_stats(name, now)
            c = self.counters.setdefault(name, QueueCounters())
            interval = self.intervals.setdefault(name, IntervalStats(self.kpi_window))
            interval.prune(now)
            target = self.config.service_levels.get(name)
            out.append(
                router_pb2.QueueKpis(
                    queue=name,
                    waiting=stats.waiting,
                    offering=stats.offering,
                    longest_wait_seconds=stats.longest_wait,
                    service_level=interval.service_level if target else math.nan,
                    service_level_seconds=int(target.seconds) if target else 0,
                    service_level_target=target.target if target else 0.0,
                    asa_seconds=interval.asa,
                    window_seconds=self.kpi_window,
                    answered=c.answered,
                    abandoned=c.abandoned,
                    overflowed=c.overflowed,
                    agents=[
                        router_pb2.AgentStateCount(state=STATE_TO_PB[s], count=n)
                        for s, n in sorted(stats.agents.items(), key=lambda i: STATE_TO_PB[i[0]])
                        if n
                    ],
                )
            )
        return out

    def status_fields(self) -> dict[tuple[str, str], dict[str, object]]:
        """Live figures for the resources' status: per Queue ``waiting`` and ``serviceLevel``
        (over the KPI window, e.g. ``"82.5%"``; None, i.e. removed, when nothing counted or
        the queue has no target), per AgentTeam ``loggedIn``; keyed by (plural, name)."""
        now = self.now()
        out: dict[tuple[str, str], dict[str, object]] = {}
        for q in self.config.queues:
            interval = self.intervals.setdefault(q.name, IntervalStats(self.kpi_window))
            interval.prune(now)
            level = interval.service_level if q.name in self.config.service_levels else math.nan
            out[("queues", q.name)] = {
                "waiting": self.router.queue_stats(q.name, now).waiting,
                "serviceLevel": f"{level * 100:.1f}%" if math.isfinite(level) else None,
            }
        for team in self.config.teams:
            out[("agentteams", team.name)] = {
                "loggedIn": sum(
                    self.router.agent_state(a.id) is not AgentState.LOGGED_OUT for a in team.agents
                )
            }
        return out

    def _observe_decisions(self, _options: Any) -> list[metrics.Observation]:
        return [
            metrics.Observation(n, {"queue": q, "decided_by": by, "fallback": fallback})
            for (q, by, fallback), n in self._decided.items()
        ]

    def _observe_ended(self, _options: Any) -> list[metrics.Observation]:
        return [
            metrics.Observation(n, {"queue": q, "reason": reason})
            for (q, reason), n in self._ended.items()
        ]

    def _observe_depth(self, _options: Any) -> list[metrics.Observation]:
        now = self.now()
        return [
            metrics.Observation(self.router.queue_stats(q.name, now).waiting, {"queue": q.name})
            for q in self.config.queues
        ]

    def _observe_sl(self, _options: Any) -> list[metrics.Observation]:
        now = self.now()
        out = []
        for name, interval in self.intervals.items():
            interval.prune(now)
            if interval.counted and name in self.config.service_levels:
                out.append(metrics.Observation(interval.service_level, {"queue": name}))
        return out

    def _observe_agents(self, _options: Any) -> list[metrics.Observation]:
        now = self.now()
        out = []
        for q in self.config.queues:
            for state, n in self.router.queue_stats(q.name, now).agents.items():
                out.append(metrics.Observation(n, {"queue": q.name, "state": str(state)}))
        return out

    # ------------------------------------------------------------------ reload

    def reload(self, config: RouterConfig) -> bool:
        """Switch to ``config`` keeping every contact and every logged-in agent.

        Returns False when the config is unchanged. A reload that would lose a contact (its
        queue removed or of another channel now, its agent removed or without the capacity
        for it) is refused whole: the old config stays in force.

        Kept: each contact's place in line (original enqueue time) and the time it entered
        its queue (escalation and max wait go on counting). Not kept (the engine takes no
        such state from outside): ringing offers are withdrawn and made again; idle agents
        are all idle since the reload (longest-idle order restarts); routing cursors
        (round-robin) start over. A running wrap-up is kept for the time
        left by the new config's wrap-up of the agent's last queue.

        Raises:
            RouterConfigError: refused, with the reason and what to do.
        """
        if config.digest and config.digest == self.config.digest:
            return False
        new_queues = {q.name: q for q in config.queues}
        new_agents = {a.id: a for t in config.teams for a in t.agents}
        problems: list[str] = []
        in_progress: dict[str, list[ContactInfo]] = {}
        for info in sorted(self.contacts.values(), key=lambda i: i.order):
            queue = new_queues.get(info.spec.queue)
            old_channel = self._config_queue(info.spec.queue).channel
            if info.agent_id is not None:
                in_progress.setdefault(info.agent_id, []).append(info)
            elif queue is None:
                problems.append(
                    f"queue {info.spec.queue!r} is removed but contact {info.spec.id!r} waits"
                    " in it: move its contacts (Transfer) or stop routing to it first"
                )
            elif queue.channel is not old_channel:
                problems.append(
                    f"queue {queue.name!r} changes channel to {queue.channel} while"
                    f" {old_channel} contact {info.spec.id!r} waits in it"
                )
        holds: list[tuple[list[QueueConfig], TeamConfig]] = []
        for agent_id, infos in sorted(in_progress.items()):
            agent = new_agents.get(agent_id)
            if agent is None:
                problems.append(
                    f"agent {agent_id!r} is removed but handles {infos[0].spec.id!r}: remove"
                    " it once its contacts are completed"
                )
                continue
            hold = self._hold(agent, infos, config, problems)
            if hold is not None:
                holds.append(hold)
        wrapping: dict[str, Channel] = {}
        now = self.now()
        for agent_id, started in sorted(self.wrap_started.items()):
            agent = new_agents.get(agent_id)
            if agent is None or agent_id in in_progress:
                continue
            if self.router.agent_state(agent_id) is not AgentState.WRAP_UP:
                continue
            left = _wrap_for(agent_id, self.last_queue.get(agent_id, ""), config) - (now - started)
            hold = self._hold(agent, [], config, problems, wrap_left=left) if left > 0 else None
            if hold is not None:
                holds.append(hold)
                wrapping[agent_id] = hold[0][0].channel
        if problems:
            raise RouterConfigError("config reload refused: " + "; ".join(problems))
        policy = self.policy
        if config.plugin_key() != self.config.plugin_key():
            try:
                policy = self._policy_factory(config)
            except ValueError as exc:
                raise RouterConfigError(f"config reload refused: {exc}") from None
        engine = self._build_engine(config, policy, holds)
        self._migrate(config, engine, policy, in_progress, wrapping)
        return True

    def _hold(
        self,
        agent: AgentConfig,
        infos: list[ContactInfo],
        config: RouterConfig,
        problems: list[str],
        wrap_left: float | None = None,
    ) -> tuple[list[QueueConfig], TeamConfig] | None:
        """The private team and queues (one per channel) that give ``agent`` its contacts
        in progress back in the new engine, wrapping up as the new config says (or, with
        ``wrap_left``, that put it back in the wrap-up it was in, for the time left)."""
        by_channel: dict[Channel, int] = {}
        for info in infos:
            channel = self._config_queue(info.spec.queue).channel
            by_channel[channel] = by_channel.get(channel, 0) + 1
        wrap = max((_wrap_for(agent.id, i.spec.queue, config) for i in infos), default=0.0)
        if wrap_left is not None:  # no contact in progress: the rest of a running wrap-up
            wrap = wrap_left
            able = [c for c in Channel if agent.capacity.get(c, 0) > 0]
            if not able:
                return None  # it takes no contact any more: its wrap-up ends here
            by_channel = {able[0]: 1}
        team_name = f"{HOLD_PREFIX}{agent.id}"
        queues = []
        for channel, count in sorted(by_channel.items()):
            if agent.capacity.get(channel, 0) < count:
                problems.append(
                    f"agent {agent.id!r} handles {count} {channel} contacts but its new"
                    f" capacity is {agent.capacity.get(channel, 0)}: lower it once they end"
                )
                return None
            queues.append(
                QueueConfig(
                    name=f"{HOLD_PREFIX}{agent.id}{HOLD_PREFIX}{channel}",
                    tiers=(TierConfig((team_name,)),),
                    channel=channel,
                    offer_timeout=3600.0,
                    wrap_up_time=wrap,
                )
            )
        return queues, TeamConfig(team_name, (agent,), None)

    def _migrate(
        self,
        config: RouterConfig,
        engine: Router,
        policy: RoutingPolicy | None,
        in_progress: dict[str, list[ContactInfo]],
        wrapping: dict[str, Channel],
    ) -> None:
        old = self.router
        now = self.now()
        # Offers ringing in the old engine stop: the new one offers again.
        for info in self.contacts.values():
            if info.ringing:
                self._dispatch(
                    [OfferWithdrawn(info.spec.id, tuple(sorted(info.ringing)), "config reload")],
                    now,
                )
        for info in self.contacts.values():
            if info.spec.id in old.contacts():
                info.earlier_trace = info.earlier_trace + list(old.trace(info.spec.id))
        logged_in = [
            a for a in self._engine_agents() if old.agent_state(a) is not AgentState.LOGGED_OUT
        ]
        # 1-3: agents with contacts in progress get them back through their hold queue.
        for agent_id, infos in sorted(in_progress.items()):
            engine.login(agent_id, now)
            for info in infos:
                channel = self._config_queue(info.spec.queue).channel
                hold = f"{HOLD_PREFIX}{agent_id}{HOLD_PREFIX}{channel}"
                engine.enqueue(info.spec._replace(queue=hold, channel=channel), now)
                accepted = engine.accept(agent_id, info.spec.id, now)
                if not any(isinstance(e, Connected) for e in accepted):  # pragma: no cover
                    raise RouterConfigError(f"could not restore {info.spec.id!r} to {agent_id!r}")
            state, reason = self.presence.get(agent_id, (AgentState.AVAILABLE, ""))
            if state is AgentState.NOT_READY:
                engine.set_not_ready(agent_id, reason, now)
            elif state is AgentState.LOGGED_OUT and agent_id not in self.sessions:
                engine.force_state(agent_id, state, now, reason=reason)  # forced out mid-call
        # 4: agents in wrap-up get the time left, by a stand-in contact through their hold.
        for agent_id, channel in sorted(wrapping.items()):
            stand_in = f"{HOLD_PREFIX}wrap{HOLD_PREFIX}{agent_id}"
            hold = f"{HOLD_PREFIX}{agent_id}{HOLD_PREFIX}{channel}"
            engine.login(agent_id, now)
            engine.enqueue(ContactSpec(stand_in, hold, channel=channel), now)
            engine.accept(agent_id, stand_in, now)
            engine.complete(stand_in, now)
        # The switch: from here on effects are carried out.
        self.router = engine
        self._use(config)
        old_policy, self.policy = self.policy, policy
        for q in config.queues:
            self.counters.setdefault(q.name, QueueCounters())
            self.intervals.setdefault(q.name, IntervalStats(self.kpi_window))
        self.reloads += 1
        self._changes += 1
        effects: list[Effect] = []
        # Waiting contacts keep their place: their own priority, else that of the queue they
        # entered first in the new config (a moved contact does not take its new queue's),
        # their enqueue time, and their arrival order for ties.
        waiting = [
            (self._served_priority(i), i) for i in self.contacts.values() if i.agent_id is None
        ]
        waiting.sort(key=lambda w: (-(w[0] or 0), w[1].spec.enqueued_at or 0.0, w[1].order))
        for priority, info in waiting:
            effects += engine.enqueue(info.spec._replace(priority=priority), now)
        for agent_id in sorted(logged_in):
            if agent_id in in_progress or agent_id in wrapping:
                continue
            if agent_id not in config.agent_ids():
                session = self.sessions.pop(agent_id, None)
                if session is not None:
                    session.closed_with = (
                        grpc.StatusCode.FAILED_PRECONDITION,
                        f"agent {agent_id!r} was removed from every AgentTeam by a config"
                        " reload: add it back to log in",
                    )
                    session.events.put_nowait(None)
                continue
            state, reason = self.presence.get(agent_id, (AgentState.AVAILABLE, ""))
            ready = state is not AgentState.NOT_READY
            effects += engine.login(agent_id, now, ready=ready)
            if not ready and reason != "login":
                effects += engine.set_not_ready(agent_id, reason, now)
        kept = dict(self.presence)
        self._dispatch(effects, now)
        self.presence.update(kept)  # the re-login's effects say "login", not the reason
        for agent_id in self.sessions:
            state = engine.agent_state(agent_id)
            self._to_agent(
                agent_id,
                now,
                state=router_pb2.AgentStateChange(state=STATE_TO_PB[state], reason="config reload"),
            )
        self._arm()
        if old_policy is not policy:
            closer = getattr(old_policy, "aclose", None)
            if closer is not None:
                self._loop.create_task(closer())
        log.info(
            "router config reloaded: %d queues, %d teams, %d contacts kept, %d agents kept",
            len(config.queues),
            len(config.teams),
            len(self.contacts),
            len(logged_in),
        )

    def _served_priority(self, info: ContactInfo) -> int | None:
        """Its own priority, else its first queue's in the current config (None: that queue
        is gone, the queue it is in decides)."""
        if info.spec.priority is not None:
            return info.spec.priority
        queue = self._queue_map.get(info.entered_queue)
        return None if queue is None else queue.priority

    def check_invariants(self) -> None:
        """The engine's invariants, plus the worker's bookkeeping against the engine."""
        self.router.check_invariants()
        engine = set(self.router.contacts())
        mine = set(self.contacts)
        if engine != mine:
            raise AssertionError(f"worker contacts {sorted(mine)} != engine {sorted(engine)}")
        for agent_id in self.sessions:
            if self.router.agent_state(agent_id) is AgentState.LOGGED_OUT:
                raise AssertionError(f"agent {agent_id} has a session but is logged out")
