"""The discrete-event loop: the real ACD engine on a simulated clock.

One :class:`Simulator` holds what every replication shares (the engine configuration, the
shift plan, compiled distributions); :meth:`Simulator.run` plays one replication with its
own ``random.Random`` and its own :class:`~callmesh.acd.engine.Router` and returns a flat
:class:`ReplicationRecord` of counters.

Nothing of the ACD is reimplemented here. The loop only does what the outside world does
to a router:

- a caller arrives (Poisson, piecewise-constant rate per interval) -> ``router.enqueue``;
- an ``Offer`` rings agents -> each picks up after the workload's answer time
  (``router.accept``), or lets it ring out (``noAnswerPercent``: the router's own offer
  timeout makes the RONA, and the agent is set ready again ``readyAfterNoAnswer`` later);
- a ``Connected`` contact talks for a drawn handle time -> ``router.complete`` (the router
  runs wrap-up on its own timers);
- a caller's patience runs out while waiting or ringing -> ``router.abandon``;
- shifts start and end -> ``router.login`` / ``router.logout`` (after the current contact);
- the router's timers (offer timeout, escalation, max wait, wrap-up end) ->
  ``router.tick`` at ``router.next_deadline()``.

Events are ordered by ``(time, priority, sequence)``, as SimPy's ``Environment.schedule``,
so a run is a pure function of its seed. KPIs are read from the router's effects
(``ContactEnded.waited`` for waits, ``AgentStateChanged`` for occupancy), never recomputed
from the simulator's own guesses.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
import random
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.machinery import EXTENSION_SUFFIXES
from itertools import accumulate
from typing import Any, Final

from callmesh.acd.effects import (
    AgentStateChanged,
    Connected,
    ContactEnded,
    ContactMoved,
    EndReason,
    Offer,
    OfferWithdrawn,
)
from callmesh.acd.engine import (
    _ANSWERED,
    _NOT_READY,
    _WRAP_UP,
    ContactSpec,
    Router,
    check_config,
)
from callmesh.acd.errors import AgentStateError, OfferWithdrawnError, UnknownContactError
from callmesh.acd.state import _AVAILABLE, _BUSY, _RESERVED, _new_tuple
from callmesh.acd.strategy import RoutingPolicy
from callmesh.api import Tenant
from callmesh.ivr import (
    CallInfo,
    CollectDigits,
    CompiledFlow,
    CrmLookup,
    Digits,
    EnqueueContact,
    IvrSession,
    LookupResult,
    Outcome,
    OutcomeKind,
    Play,
    PromptFinished,
    Say,
    Timeout,
    compile_flow,
)
from callmesh.sim.build import AcdSetup, Shift, build_acd, shift_plan
from callmesh.sim.distributions import Sampler
from callmesh.sim.draws import ConstantDraw
from callmesh.sim.workload import Workload, check_against, clock

__all__ = [
    "HIST_BINS",
    "HIST_BIN_SECONDS",
    "OUTCOMES",
    "ReplicationRecord",
    "Simulator",
    "replication_seed",
]

#: How calls leave an IVR flow, in the order records count them.
OUTCOMES: Final[tuple[OutcomeKind, ...]] = tuple(OutcomeKind)
_OUTCOME_INDEX: Final = {kind: i for i, kind in enumerate(OUTCOMES)}

#: Width of a bin of the wait histogram, and number of bins (the last one is "and more").
HIST_BIN_SECONDS: Final = 10.0
HIST_BINS: Final = 31

# Event kinds, also their priority at equal times: agents get free before contacts arrive.
_TIMER: Final = 0
_COMPLETE: Final = 1
_ACCEPT: Final = 2
_READY: Final = 3
_LOGOUT: Final = 4
_LOGIN: Final = 5
_ABANDON: Final = 6
_IVR: Final = 7
_ARRIVAL: Final = 8

# Enum members are compared by identity in the loop: ``in`` a set would hash them in Python.
# (The engine's own constants are imported above: compiled, a Final name of another compiled
# module is a C static too.)
_ABANDONED: Final[EndReason] = EndReason.ABANDONED
_OVERFLOWED: Final[EndReason] = EndReason.OVERFLOWED
# The effect classes the loop dispatches on, as Final names: compiled, a Final name is a C
# static, where an imported name is a lookup in the module's dict at every use.
_AgentStateChanged: Final = AgentStateChanged
_Offer: Final = Offer
_ContactEnded: Final = ContactEnded
_Connected: Final = Connected
_OfferWithdrawn: Final = OfferWithdrawn
_ContactMoved: Final = ContactMoved
_ContactSpec: Final = ContactSpec
# ``ContactSpec(cid, queue)`` without the named tuple's own ``__new__``, a Python function
# even when called from compiled code: the same tuple, with the class's defaults.
_SPEC_DEFAULTS: Final = tuple(ContactSpec._field_defaults.values())
#: Whether this module runs compiled (mypyc): the event list is then a heap of native
#: objects (see :class:`_Agenda`), else the C ``heapq`` of tuples (:class:`_TupleAgenda`).
_NATIVE: Final = str(__file__).endswith(tuple(EXTENSION_SUFFIXES))


def replication_seed(seed: int, replication: int) -> str:
    """The seed of one replication's generator: independent streams from one run seed."""
    return f"callmesh-sim:{seed}:{replication}"


@dataclass
class ReplicationRecord:
    """Counters of one replication, flat, indexed ``queue * intervals + interval``.

    Contacts are counted in the interval in which they first entered the ACD (also in the
    queues they overflow to); contacts that entered before the warm-up ended are simulated
    but not counted. Agent times are seconds inside the measured window
    ``[warm-up, end of day)``, indexed ``agent * intervals + interval``.
    """

    seed: str
    queues: tuple[str, ...]
    agents: tuple[str, ...]
    intervals: int
    offered: list[int]
    answered: list[int]
    answered_in_sl: list[int]
    immediate: list[int]
    abandoned: list[int]
    abandoned_short: list[int]
    overflowed: list[int]
    timed_out: list[int]
    unfinished: list[int]
    rona: list[int]
    completed: list[int]
    wait_answered: list[float]
    talk: list[float]
    wrap: list[float]
    longest_wait: list[float]
    wait_hist: list[int]
    agent_work: list[float]
    agent_idle: list[float]
    agent_handled: list[int]
    flow_calls: list[int]
    flow_outcomes: list[int]
    flow_seconds: list[float]
    contacts: int = 0
    events: int = 0
    end_time: float = 0.0
    waiting_area: float = 0.0
    wait_total: float = 0.0
    entered: int = 0
    engine_ended: int = 0
    max_waiting: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    fallbacks: int = 0


class Simulator:
    """A tenant and a workload, ready to play replications.

    Args:
        tenant: the manifests of one namespace.
        workload: the traffic (already validated with
            :func:`~callmesh.sim.workload.parse_workload`); checked against the tenant here.
        policy_factory: builds the routing policy of one replication (the plugin manager
            configured from ``ContactCenter.spec.plugins``); None uses the engine's
            built-in strategies.
        source: name of the workload for error messages.

    Raises:
        WorkloadError: the workload names something the tenant lacks.
        ConfigError: the manifests do not form a valid ACD configuration.
    """

    def __init__(
        self,
        tenant: Tenant,
        workload: Workload,
        *,
        policy_factory: Callable[[], RoutingPolicy] | None = None,
        source: str = "workload",
    ) -> None:
        check_against(tenant, workload, source)
        spec = workload.spec
        self.tenant = tenant
        self.workload = workload
        self.policy_factory = policy_factory
        self.source = source
        self.setup: AcdSetup = build_acd(tenant, workload)
        # Validate the engine configuration once, now, so errors come before any run (each
        # run builds its own Router from it).
        check_config(self.setup.queues, self.setup.teams)
        self.queue_names = tuple(q.name for q in self.setup.queues)
        self.queue_index = {name: i for i, name in enumerate(self.queue_names)}
        agent_ids: dict[str, None] = {}
        for team in self.setup.teams:
            for agent in team.agents:
                agent_ids.setdefault(agent.id, None)
        self.agent_names = tuple(agent_ids)
        self.agent_index = {a: i for i, a in enumerate(self.agent_names)}
        self.intervals = spec.intervals
        self.interval_seconds = spec.interval_seconds
        self.day_seconds = spec.day_seconds
        self.warmup_seconds = spec.warmup_minutes * 60.0
        self.horizon = self.day_seconds + spec.drain_minutes * 60.0
        self.shifts: list[Shift] = shift_plan(tenant, workload, self.horizon)
        center = tenant.center
        time_zone = center.spec.time_zone if center is not None else "UTC"
        schedules = list(center.spec.schedules) if center is not None else []
        self.flow_names = tuple(sorted({a.flow for a in spec.arrivals if a.flow is not None}))
        self.flow_index = {name: i for i, name in enumerate(self.flow_names)}
        self.flows: list[CompiledFlow] = [
            compile_flow(tenant.flows[name], schedules, time_zone) for name in self.flow_names
        ]
        start = dt.datetime.combine(
            spec.calendar_date(), dt.time(), tzinfo=zoneinfo.ZoneInfo(time_zone)
        ) + dt.timedelta(minutes=clock(spec.start))
        #: POSIX time of the simulated clock's 0 (IVR business-hours conditions read it).
        self.epoch = start.timestamp()
        choices = {fc.flow: fc for fc in spec.ivr}
        self.prompt_seconds: list[Sampler] = []
        self.menus: list[dict[str, tuple[tuple[str, ...], tuple[float, ...], Sampler]]] = []
        for name in self.flow_names:
            fc = choices.get(name)
            self.prompt_seconds.append(
                fc.prompt_seconds.sampler() if fc is not None else ConstantDraw(4.0)
            )
            menus: dict[str, tuple[tuple[str, ...], tuple[float, ...], Sampler]] = {}
            for menu in fc.menus if fc is not None else []:
                digits = tuple(menu.choices)
                cum = tuple(accumulate(menu.choices[d] for d in digits))
                menus[menu.node] = (digits, cum, menu.seconds.sampler())
            self.menus.append(menus)
        # (is a flow, queue or flow index, rates per interval)
        self.streams = [
            (
                a.flow is not None,
                self.flow_index[a.flow] if a.flow is not None else self.queue_index[a.queue or ""],
                workload.rates_per_second(i),
            )
            for i, a in enumerate(spec.arrivals)
        ]
        self.handle: list[Sampler] = []
        self.patience: list[Sampler | None] = []
        self.sl_seconds: list[float] = []
        self.short_abandon: list[float] = []
        for name in self.queue_names:
            traffic = spec.queues.get(name)
            q = tenant.queues[name].spec
            self.sl_seconds.append(float(q.service_level.seconds))
            self.short_abandon.append(float(q.service_level.exclude_abandoned_under_seconds))
            if traffic is None:
                self.handle.append(_unused)
                self.patience.append(None)
            else:
                self.handle.append(traffic.handle_time.sampler())
                self.patience.append(
                    traffic.patience.sampler() if traffic.patience is not None else None
                )
        self.answer = spec.agents.answer.sampler()
        self.answer_is_zero = spec.agents.answer.type == "constant" and (
            spec.agents.answer.mean_value == 0.0
        )
        self.no_answer = spec.agents.no_answer_percent / 100.0
        self.ready_after = spec.agents.ready_after_no_answer.sampler()

    # ------------------------------------------------------------------------------------
    def run(
        self,
        seed: int,
        replication: int = 0,
        progress: Callable[[float], None] | None = None,
    ) -> ReplicationRecord:
        """Play one replication; ``progress`` gets the simulated fraction of the day done."""
        key = replication_seed(seed, replication)
        rng = random.Random(key)
        router = Router(
            self.setup.queues,
            self.setup.teams,
            policy=self.policy_factory() if self.policy_factory is not None else None,
            seed=rng.getrandbits(63),
            history_limit=0,
        )
        nq, ni, na = len(self.queue_names), self.intervals, len(self.agent_names)
        size = nq * ni
        rec = ReplicationRecord(
            seed=key,
            queues=self.queue_names,
            agents=self.agent_names,
            intervals=ni,
            offered=[0] * size,
            answered=[0] * size,
            answered_in_sl=[0] * size,
            immediate=[0] * size,
            abandoned=[0] * size,
            abandoned_short=[0] * size,
            overflowed=[0] * size,
            timed_out=[0] * size,
            unfinished=[0] * size,
            rona=[0] * size,
            completed=[0] * size,
            wait_answered=[0.0] * size,
            talk=[0.0] * size,
            wrap=[0.0] * size,
            longest_wait=[0.0] * size,
            wait_hist=[0] * (nq * HIST_BINS),
            agent_work=[0.0] * (na * ni),
            agent_idle=[0.0] * (na * ni),
            agent_handled=[0] * na,
            flow_calls=[0] * len(self.flow_names),
            flow_outcomes=[0] * (len(self.flow_names) * len(OUTCOMES)),
            flow_seconds=[0.0] * len(self.flow_names),
        )
        # Bound locals: this loop is the hot path. Its counters are list items updated as
        # ``x[k] = x[k] + 1``: compiled, ``x[k] += 1`` is a generic Python add of boxed
        # values, the spelled-out form a native one.
        uniform01 = rng.random
        events: _Agenda = _Agenda(_ARRIVAL) if _NATIVE else _TupleAgenda()
        L = self.interval_seconds
        day = self.day_seconds
        horizon = self.horizon
        w0 = self.warmup_seconds
        qidx = self.queue_index
        handle, patience = self.handle, self.patience
        sl_seconds, short_abandon = self.sl_seconds, self.short_abandon
        answer, answer_is_zero = self.answer, self.answer_is_zero
        no_answer, ready_after = self.no_answer, self.ready_after
        offered, answered, answered_in_sl = rec.offered, rec.answered, rec.answered_in_sl
        immediate, abandoned, abandoned_short = rec.immediate, rec.abandoned, rec.abandoned_short
        overflowed, timed_out, rona = rec.overflowed, rec.timed_out, rec.rona
        wait_answered, talk_sum, wrap_sum = rec.wait_answered, rec.talk, rec.wrap
        completed, longest_wait, wait_hist = rec.completed, rec.longest_wait, rec.wait_hist
        agent_work, agent_idle, agent_handled = rec.agent_work, rec.agent_idle, rec.agent_handled
        hist_last = HIST_BINS - 1
        decisions = rec.decisions
        # The router's methods are called on ``router`` itself, never bound to locals:
        # compiled, ``router.enqueue(...)`` on a Router is a direct C call, where a bound
        # method is a Python-level call that boxes and parses its arguments.

        # in the ACD, not yet answered (until their ContactEnded); a dict: the books are
        # closed in the order contacts entered, the same in every process (a set of strings
        # iterates in an order that PYTHONHASHSEED changes, and float sums with it)
        contacts: dict[str, _Contact] = {}
        agents = {agent_id: _Agent(a) for a, agent_id in enumerate(self.agent_names)}
        completing_k = -1  # the slot of the contact being completed, for its wrap-up
        # (contact, when its caller hangs up) of contacts that entered in this step: their
        # abandonment is scheduled after the step only if they still wait (most contacts
        # answered at once never need one)
        patient: list[tuple[str, float]] = []

        n_waiting = 0
        area = 0.0
        last_change = 0.0
        timer_at = math.inf
        counter = 0

        def accrue(arr: list[float], base: int, t0: float, t1: float) -> None:
            if t0 < w0:
                t0 = w0
            if t1 > day:
                t1 = day
            if t1 <= t0:
                return
            i = int(t0 // L)
            end = (i + 1) * L
            while t1 > end:
                j = base + i
                arr[j] = arr[j] + (end - t0)
                t0 = end
                i += 1
                end += L
            j = base + i
            arr[j] = arr[j] + (t1 - t0)

        now = 0.0
        in_system = 0
        arrivals_open = len(self.streams)
        next_id = 0
        queue_names = self.queue_names
        epoch = self.epoch
        prompt_seconds, menus = self.prompt_seconds, self.menus
        flow_outcomes, flow_seconds = rec.flow_outcomes, rec.flow_seconds
        n_outcomes = len(OUTCOMES)

        def enter(cid: str, qi: int, contact: ContactSpec, now: float) -> list[Any]:
            """A contact enters the ACD: bookkeeping, patience, then ``router.enqueue``."""
            nonlocal in_system, area, last_change, n_waiting
            interval = int(now // L) if now >= w0 else -1
            if interval >= ni:  # reached the ACD from the IVR just after the day ended
                interval = ni - 1
            contacts[cid] = _Contact(interval, qi, now)
            in_system += 1
            area += n_waiting * (now - last_change)
            last_change = now
            n_waiting += 1
            if n_waiting > rec.max_waiting:
                rec.max_waiting = n_waiting
            rec.entered += 1
            j = qi * ni + interval
            if interval >= 0:
                offered[j] = offered[j] + 1
                rec.contacts += 1
            draw = patience[qi]
            if draw is not None:
                patient.append((cid, now + draw(rng)))  # drawn now: the same random stream
            effects = router.enqueue(contact, now)
            if interval >= 0:
                for e in effects:  # offered at once: it found a free agent (not Erlang's wait)
                    if type(e) is _Offer and e.contact_id == cid:
                        immediate[j] = immediate[j] + 1
                        break
            return effects

        def logout_now(ag: _Agent, agent_id: str, now: float) -> list[Any]:
            """The end of the agent's shift, deferred until it was free: log it out now."""
            try:
                effects = router.logout(agent_id, now)
            except AgentStateError:
                return []  # busy again (a later effect of the same step): try when free
            ag.logout_due = False
            return effects

        def run_ivr(call: _Call, actions: list[Any], now: float) -> list[Any]:
            """Carry out IVR actions: prompts and key presses become timed events."""
            nonlocal in_system
            effects: list[Any] = []
            f = call.flow
            for action in actions:
                cls = type(action)
                if cls is Play or cls is Say:
                    if action.wait:
                        at = now + prompt_seconds[f](rng)
                        events.push(at, _IVR, call, PromptFinished())
                elif cls is CollectDigits:
                    menu = menus[f].get(action.node)
                    if menu is None:  # a collect node: enter the shortest valid input
                        reply: object = Digits("1" * max(1, action.min_digits))
                        at = now + 5.0
                    else:
                        digits, cum, secs = menu
                        u = uniform01()
                        reply = Timeout()
                        at = now + action.timeout
                        for d, c in zip(digits, cum, strict=True):
                            if u < c:
                                reply = Digits(d)
                                at = now + secs(rng)
                                break
                    events.push(at, _IVR, call, reply)
                elif cls is CrmLookup:
                    # callers are unknown to the CRM in a simulation
                    events.push(now, _IVR, call, LookupResult(None))
                elif cls is EnqueueContact:
                    qi = qidx[action.queue]
                    skills = {n.name: n.min_level for n in action.skills}
                    contact = _ContactSpec(
                        call.cid,
                        action.queue,
                        priority=action.priority,
                        skills=skills,
                        attributes=dict(action.attributes),
                    )
                    effects = enter(call.cid, qi, contact, now)
                elif cls is Outcome:
                    in_system -= 1
                    if call.arrived >= w0:
                        j = f * n_outcomes + _OUTCOME_INDEX[action.kind]
                        flow_outcomes[j] = flow_outcomes[j] + 1
                        flow_seconds[f] = flow_seconds[f] + (now - call.arrived)
            return effects

        for is_flow, qi, rates in self.streams:
            t = _next_arrival(0.0, rates, L, uniform01)
            if t is not None:
                events.push(t, _ARRIVAL, (is_flow, qi), rates)
            else:
                arrivals_open -= 1  # a stream with no traffic all day
        for shift in self.shifts:
            events.push(shift.login, _LOGIN, shift.agent_id, None)
            if shift.logout is not None:
                events.push(shift.logout, _LOGOUT, shift.agent_id, None)

        while not events.empty():
            now, kind, _, a_, b_ = events.pop()
            if now > horizon:
                now = horizon
                break
            counter += 1
            if kind == _TIMER:
                if now != timer_at:
                    continue
                timer_at = math.inf
                effects = router.tick(now)
            elif kind == _COMPLETE:
                # (typed before unpacking: compiled, unpacking an Any goes through an iterator)
                slot: tuple[int, float] = b_
                completing_k, t_talk = slot
                if completing_k >= 0:
                    talk_sum[completing_k] = talk_sum[completing_k] + t_talk
                effects = router.complete(a_, now)
                in_system -= 1
            elif kind == _ARRIVAL:
                stream: tuple[bool, int] = a_
                is_flow, qi = stream
                rates = b_
                nxt = _next_arrival(now, rates, L, uniform01)
                if nxt is not None:
                    events.push(nxt, _ARRIVAL, a_, rates)
                else:
                    arrivals_open -= 1
                next_id += 1
                cid = f"c{next_id}"
                if is_flow:
                    call = _Call(cid, qi, IvrSession(self.flows[qi]), now)
                    in_system += 1
                    if now >= w0:
                        rec.flow_calls[qi] += 1
                    actions = call.session.start(
                        CallInfo(f"+1555{next_id:07d}", ""), self.epoch + now
                    )
                    effects = run_ivr(call, actions, now)
                else:
                    # a concatenation: compiled, * in a tuple display builds a list first
                    head = (cid, queue_names[qi])
                    spec = _new_tuple(_ContactSpec, head + _SPEC_DEFAULTS)
                    effects = enter(cid, qi, spec, now)
            elif kind == _IVR:
                call = a_
                effects = run_ivr(call, call.session.handle(b_, epoch + now), now)

            elif kind == _ACCEPT:
                try:
                    effects = router.accept(a_, b_, now)
                except (OfferWithdrawnError, UnknownContactError):
                    continue  # answered elsewhere, abandoned, or the offer timed out first
            elif kind == _ABANDON:
                cid = a_
                if cid not in contacts:
                    continue
                effects = router.abandon(cid, now)
            elif kind == _READY:
                agent_id = a_
                if router.agent_state(agent_id) is not _NOT_READY:
                    continue
                effects = router.set_ready(agent_id, now)
            elif kind == _LOGIN:
                agent_id = a_
                ag = agents[agent_id]
                if ag.logout_due:
                    ag.logout_due = False  # back-to-back shifts: stays on
                    continue
                effects = router.login(agent_id, now)
            else:  # _LOGOUT
                agent_id = a_
                try:
                    effects = router.logout(agent_id, now)
                except AgentStateError:
                    agents[agent_id].logout_due = True  # after its current contact
                    continue

            # -- carry out the router's effects ------------------------------------------------
            # (a list iterator also yields what the branches below append while it runs)
            # Each branch names ``e`` with its type: compiled, a field of a named tuple so
            # typed is read as a tuple item, where a field of an Any is a Python attribute.
            e: Any
            for e in effects:
                cls = type(e)  # dispatched on its exact type
                if cls is _AgentStateChanged:
                    change: AgentStateChanged = e
                    ag = agents[change.agent_id]
                    state = change.state
                    cat = ag.cat
                    if cat == 2 and ag.wrap_k < 0 and (state is _BUSY or state is _RESERVED):
                        continue  # still working (e.g. Reserved -> Busy): accrues when it ends
                    at = change.at
                    since = ag.since
                    if cat and at > since:
                        i = int(since // L)
                        if since >= w0 and at <= day and at < (i + 1) * L:
                            arr = agent_work if cat == 2 else agent_idle
                            j = ag.index * ni + i
                            arr[j] = arr[j] + (at - since)
                        else:
                            accrue(agent_work if cat == 2 else agent_idle, ag.index * ni, since, at)
                    ag.since = at
                    if ag.wrap_k >= 0:
                        k = ag.wrap_k
                        wrap_sum[k] = wrap_sum[k] + (at - ag.wrap_at)
                        ag.wrap_k = -1
                    if state is _BUSY or state is _RESERVED or state is _WRAP_UP:
                        ag.cat = 2
                        if state is _WRAP_UP:
                            if ag.logout_due:
                                effects.extend(logout_now(ag, change.agent_id, now))
                            elif completing_k >= 0:
                                ag.wrap_k = completing_k
                                ag.wrap_at = at
                    elif state is _AVAILABLE:
                        ag.cat = 1
                        if ag.logout_due:
                            effects.extend(logout_now(ag, change.agent_id, now))
                    else:
                        ag.cat = 0
                        if state is _NOT_READY and change.reason == "no-answer":
                            events.push(now + ready_after(rng), _READY, change.agent_id, None)
                        elif state is _NOT_READY and ag.logout_due:
                            effects.extend(logout_now(ag, change.agent_id, now))
                elif cls is _Offer:
                    offer: Offer = e
                    for agent_id in offer.agent_ids:
                        if no_answer and uniform01() < no_answer:
                            continue  # lets it ring out: the router's timeout makes the RONA
                        if answer_is_zero:
                            # (it may have been withdrawn by an effect carried out before: a logout)
                            try:  # noqa: SIM105 (suppress() costs 3 calls; try costs none)
                                effects.extend(router.accept(agent_id, offer.contact_id, now))
                            except (OfferWithdrawnError, UnknownContactError):
                                pass
                            break
                        delay = answer(rng)
                        if delay < offer.timeout:
                            events.push(now + delay, _ACCEPT, agent_id, offer.contact_id)
                elif cls is _ContactEnded:
                    ended: ContactEnded = e
                    cid = ended.contact_id
                    c = contacts[cid]
                    del contacts[cid]
                    interval = c.interval
                    waited = ended.waited
                    rec.wait_total += waited
                    rec.engine_ended += 1
                    area += n_waiting * (now - last_change)
                    last_change = now
                    n_waiting -= 1
                    qi = c.queue  # (the queue it ended in: ContactMoved keeps it current)
                    reason = ended.reason
                    if reason is not _ANSWERED:
                        in_system -= 1
                    if interval < 0:
                        continue
                    for d in ended.trace:  # who decided each offer: strategy, plugin, fallback
                        decisions[d.decided_by] = decisions.get(d.decided_by, 0) + 1
                        if d.fallback:
                            rec.fallbacks += 1
                    k = qi * ni + interval
                    if waited > longest_wait[k]:
                        longest_wait[k] = waited
                    if reason is _ANSWERED:
                        answered[k] = answered[k] + 1
                        wait_answered[k] = wait_answered[k] + waited
                        if waited <= sl_seconds[qi]:
                            answered_in_sl[k] = answered_in_sl[k] + 1
                        b = int(waited / HIST_BIN_SECONDS)
                        j = qi * HIST_BINS + (b if b < hist_last else hist_last)
                        wait_hist[j] = wait_hist[j] + 1
                    elif reason is _ABANDONED:
                        abandoned[k] = abandoned[k] + 1
                        if waited < short_abandon[qi]:
                            abandoned_short[k] = abandoned_short[k] + 1
                    elif reason is _OVERFLOWED:
                        overflowed[k] = overflowed[k] + 1
                    else:
                        timed_out[k] = timed_out[k] + 1
                elif cls is _Connected:
                    connected: Connected = e
                    cid = connected.contact_id
                    c = contacts[cid]
                    interval = c.interval
                    qi = c.queue
                    t_talk = handle[qi](rng)
                    k = qi * ni + interval if interval >= 0 else -1
                    if k >= 0:
                        j = agents[connected.agent_id].index
                        agent_handled[j] = agent_handled[j] + 1
                    events.push(now + t_talk, _COMPLETE, cid, (k, t_talk))
                elif cls is _OfferWithdrawn:
                    withdrawn: OfferWithdrawn = e
                    if withdrawn.reason == "no answer":
                        rung = contacts.get(withdrawn.contact_id)
                        if rung is not None and rung.interval >= 0:
                            j = rung.queue * ni + rung.interval
                            rona[j] = rona[j] + 1
                elif cls is _ContactMoved:
                    moved: ContactMoved = e
                    c = contacts[moved.contact_id]
                    interval = c.interval
                    to_q = qidx[moved.to_queue]
                    c.queue = to_q
                    if interval >= 0:
                        j = qidx[moved.from_queue] * ni + interval
                        overflowed[j] = overflowed[j] + 1
                        j = to_q * ni + interval
                        offered[j] = offered[j] + 1
            if kind == _COMPLETE:
                k = completing_k
                if k >= 0:
                    completed[k] = completed[k] + 1
                completing_k = -1
            if patient:
                for cid, gives_up in patient:
                    if cid in contacts:
                        events.push(gives_up, _ABANDON, cid, None)
                patient.clear()

            deadline = router.next_deadline()
            if deadline is not None and deadline < timer_at:
                timer_at = deadline if deadline > now else now
                events.push(timer_at, _TIMER, None, None)
            if in_system == 0 and arrivals_open == 0 and now >= day:
                break
            if progress is not None and not counter & 0x3FFF:
                progress(min(1.0, now / day))

        # -- close the books at the end of the run -------------------------------------------
        end = now
        rec.end_time = end
        rec.events = counter
        area += n_waiting * (end - last_change)
        rec.waiting_area = area
        for c in contacts.values():
            rec.wait_total += end - c.entered
            if c.interval >= 0:
                rec.unfinished[c.queue * ni + c.interval] += 1
        for ag in agents.values():
            cat = ag.cat
            if cat:
                # Nothing happened after the last event: states held at least to the day's end.
                arr = agent_work if cat == 2 else agent_idle
                accrue(arr, ag.index * ni, ag.since, max(end, day))
        if progress is not None:
            progress(1.0)
        return rec


class _Call:
    """A call in an IVR flow."""

    __slots__ = ("arrived", "cid", "flow", "session")

    def __init__(self, cid: str, flow: int, session: IvrSession, arrived: float) -> None:
        self.cid = cid
        self.flow = flow
        self.session = session
        self.arrived = arrived


class _Event:
    """One scheduled event of a compiled build's :class:`_Agenda` (a native object)."""

    __slots__ = ("a", "b", "kind", "seq", "time")

    def __init__(self, time: float, kind: int, seq: int, a: Any, b: Any) -> None:
        self.time = time
        self.kind = kind  # also the priority at equal times
        self.seq = seq
        self.a = a
        self.b = b


def _before(x: _Event, y: _Event) -> bool:
    """``x`` comes first: ordered by (time, kind, sequence), as SimPy orders its events."""
    if x.time != y.time:
        return x.time < y.time
    if x.kind != y.kind:
        return x.kind < y.kind
    return x.seq < y.seq


def _settle(heap: list[_Event], item: _Event, pos: int) -> None:
    """Put ``item`` at ``pos`` of ``heap`` (a free slot) or above it, where it belongs."""
    while pos > 0:
        parent_pos = (pos - 1) >> 1
        parent = heap[parent_pos]
        if not _before(item, parent):
            break
        heap[pos] = parent
        pos = parent_pos
    heap[pos] = item


def _take(heap: list[_Event]) -> _Event:
    """Remove and return the first event of the (non-empty) ``heap``."""
    last = heap.pop()
    if not heap:
        return last
    top = heap[0]
    # The hole at the root goes down to a leaf along the smaller children, then the last
    # item sifts up from there (fewer comparisons than sifting it down).
    n = len(heap)
    pos = 0
    child = 1
    while child < n:
        right = child + 1
        if right < n and not _before(heap[child], heap[right]):
            child = right
        heap[pos] = heap[child]
        pos = child
        child = 2 * pos + 1
    _settle(heap, last, pos)
    return top


class _Agenda:
    """The event list of a run: binary heaps ordered by (time, kind, sequence).

    ``heapq`` compares its items with Python's rich comparison: on tuples of (float, int,
    int, ...) that is two float comparisons through ``PyObject_RichCompare`` per step of a
    sift, a third of the loop's heap time. Compiled, this heap compares the C fields of
    native objects instead; its sifts are ``heapq``'s (``_siftdown``/``_siftup`` of
    Lib/heapq.py). The pure build uses :class:`_TupleAgenda` (the C ``heapq``), which is
    faster there. Both give the same order: the keys are unique (the sequence number).

    Events of ``side_kind`` (the run's arrivals) wait in a second heap: a stream has one
    pending arrival at a time, so that heap holds a few events where the other holds one
    per contact in service, and an arrival's push and pop cost next to nothing. ``pop``
    takes the earlier of the two heaps' first events: the order is the same as with one.
    """

    def __init__(self, side_kind: int = -1) -> None:
        self.heap: list[_Event] = []
        self.side: list[_Event] = []
        self.side_kind = side_kind
        self.seq = 0

    def empty(self) -> bool:
        return not self.heap and not self.side

    def push(self, time: float, kind: int, a: Any, b: Any) -> None:
        """Schedule ``(a, b)`` of ``kind`` at ``time``."""
        self.seq += 1
        item = _Event(time, kind, self.seq, a, b)
        heap = self.side if kind == self.side_kind else self.heap
        heap.append(item)
        _settle(heap, item, len(heap) - 1)

    def pop(self) -> tuple[float, int, int, Any, Any]:
        """The first event, removed: (time, kind, sequence, a, b)."""
        heap = self.heap
        side = self.side
        if side and (not heap or _before(side[0], heap[0])):
            heap = side
        top = _take(heap)
        return top.time, top.kind, top.seq, top.a, top.b


class _TupleAgenda(_Agenda):
    """The pure build's event list: ``heapq`` of ``(time, kind, sequence, a, b)`` tuples."""

    def __init__(self, side_kind: int = -1) -> None:
        super().__init__(side_kind)  # (one heap: heapq's own sifts are C code here)
        self.tuples: list[tuple[float, int, int, Any, Any]] = []

    def empty(self) -> bool:
        return not self.tuples

    def push(self, time: float, kind: int, a: Any, b: Any) -> None:
        self.seq += 1
        heapq.heappush(self.tuples, (time, kind, self.seq, a, b))

    def pop(self) -> tuple[float, int, int, Any, Any]:
        return heapq.heappop(self.tuples)


class _Agent:
    """What the loop keeps of an agent, to account for its time (a native object: its
    fields are C values, where lists of them hold boxed ones)."""

    __slots__ = ("cat", "index", "logout_due", "since", "wrap_at", "wrap_k")

    def __init__(self, index: int) -> None:
        self.index = index  # in the record's per-agent arrays
        self.cat = 0  # state category: 0 off, 1 idle, 2 working
        self.since = 0.0  # when it entered that category
        self.wrap_k = -1  # the slot (queue, interval) its current wrap-up counts for
        self.wrap_at = 0.0  # when that wrap-up started
        self.logout_due = False  # its shift ended while it was busy: log out when free


class _Contact:
    """What the loop remembers of a contact in the ACD."""

    __slots__ = ("entered", "interval", "queue")

    def __init__(self, interval: int, queue: int, entered: float) -> None:
        self.interval = interval  # -1 during the warm-up: simulated, not counted
        self.queue = queue
        self.entered = entered


def _unused(rng: random.Random) -> float:  # pragma: no cover - guarded by check_against
    raise AssertionError("a queue without handle time received a contact")


def _next_arrival(
    t: float, rates: list[float], length: float, random01: Callable[[], float]
) -> float | None:
    """Next arrival after ``t`` of a Poisson process with a constant rate per interval.

    Memorylessness makes restarting at an interval boundary exact. The draw is
    ``random.Random.expovariate``'s formula on ``random01`` (same numbers, one call less).
    """
    n = len(rates)
    while True:
        i = int(t // length)
        if i >= n:
            return None
        rate = rates[i]
        end = (i + 1) * length
        if rate > 0.0:
            # random.expovariate, inlined; compiled, math.log is C's log() (the same numbers)
            nxt = t - math.log(1.0 - random01()) / rate
            if nxt < end:
                return nxt
        t = end
