"""The ACD's invariants, proved by a hypothesis state machine driving a real Router.

Random sequences of arrivals, logins, breaks, accepts, rejects, no-answers, completions,
abandons, moves, supervisor force-states, clock advances and bad requests run against a
Router. The test keeps its own model of what the effects said (who rings and until when, who
talks, each agent's presence and reason, which contact waits where since when) and checks,
independently of the engine:

* no offer to an agent lacking a required skill, free capacity or the Available state;
* no agent double-booked (capacity per channel, one channel at a time);
* work conservation: after every step, no contact waits while an eligible agent is free;
* RONA: an offer that rang its full timeout unanswered is withdrawn ("no answer"), never
  before, and its agent goes NotReady with reason "no-answer" (its presence changes only by
  a request, a RONA or the end of wrap-up, and every agent's reported state is the one the
  model derives);
* wrap-up lasts exactly the queue's wrap-up time, and only after a completed contact;
* escalation never before its delay: an offer to a tier-n agent comes at least that tier's
  delay after the contact entered the queue;
* FIFO within equal priority: no offer to an agent while an older contact of the same queue,
  priority and skills, which that agent could take, waits (three cases it once missed are
  pinned by the regression tests at the end: a RONA releasing several chats, a move of a
  ringing contact, escalations due at the same instant);
* every contact ends exactly once (answered, abandoned, overflowed or timed out);
* bad requests raise an AcdError and leave the state as it was;

and after every step the engine's own ``check_invariants`` (indexes, cross references).

Random runs seldom reach the states where a RONA or a completion can go wrong, so the rules
go there on purpose: some agents log in at the start, contacts arrive in bursts, one rule has
every ringing agent answer, one lets time run to the first ring's timeout (a RONA), one
completes a contact while others wait (preferring one whose agent could take a waiting
contact at once), and rules that need a ringing, connected or waiting contact have
preconditions instead of doing nothing. Checked by injecting bugs in a copy of the engine:
with the settings below, 100 runs of 100 failed when a RONA left the agent Available, and
100 of 100 when ``complete()`` did not offer the freed agent a waiting contact (2 and 13
runs of 30 before these rules).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from callmesh.acd import (
    BUILTIN_STRATEGIES,
    AgentConfig,
    AgentState,
    AgentStateChanged,
    Channel,
    Connected,
    ContactEnded,
    ContactMoved,
    ContactSpec,
    Effect,
    EndReason,
    Offer,
    OfferWithdrawn,
    OverflowAction,
    OverflowConfig,
    QueueConfig,
    Router,
    TeamConfig,
    TierConfig,
)
from callmesh.acd.errors import AcdError

AGENTS = ("a0", "a1", "a2", "a3", "a4")
SKILLS = ("billing", "sales")
QUEUES = ("q1", "q2", "chat")


@dataclass
class ContactModel:
    queue: str
    channel: Channel
    priority: int
    skills: dict[str, int]
    enqueued_at: float
    queued_at: float
    seq: int
    own: dict[str, int] = field(default_factory=dict)
    status: str = "waiting"  # waiting | offered | connected | ended
    # agent -> (earliest, latest) time its ring times out: the ring started between the
    # time the step began and the time it reached (ticks fire timers in between)
    ringing: dict[str, tuple[float, float]] = field(default_factory=dict)
    declined: set[str] = field(default_factory=set)
    decisions: set[int] = field(default_factory=set)
    ended: int = 0


@dataclass
class AgentModel:
    config: AgentConfig
    presence: AgentState = AgentState.LOGGED_OUT
    reason: str = ""  # of a NotReady presence
    wrap_until: float = 0.0  # when a WrapUp presence ends
    items: dict[str, Channel] = field(default_factory=dict)  # ringing or connected


class AcdMachine(RuleBasedStateMachine):
    """Drive a Router and check every effect against an independent model."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.since = 0.0  # effects being applied happened between since and now
        self.seq = 0
        self.timed_out: set[str] = set()  # agents whose offer timed out in this step
        self.wrap_next: tuple[str, float] | None = None  # (agent, end) if it wraps up now
        self.contacts: dict[str, ContactModel] = {}
        self.agents: dict[str, AgentModel] = {}
        self.tier_delay: dict[tuple[str, str], float] = {}  # (queue, agent) -> delay
        self.queue_cfg: dict[str, QueueConfig] = {}
        self.router: Router | None = None

    # ------------------------------------------------------------------ setup

    @initialize(
        strategy=st.sampled_from(sorted(BUILTIN_STRATEGIES)),
        levels=st.lists(
            st.fixed_dictionaries({s: st.integers(0, 3) for s in SKILLS}), min_size=5, max_size=5
        ),
        chat_caps=st.lists(st.integers(0, 2), min_size=5, max_size=5),
        delay=st.sampled_from([0.0, 5.0, 20.0]),
        max_wait=st.sampled_from([None, 30.0, 60.0]),
        overflow=st.sampled_from(["queue", "voicemail", "none"]),
        wrap=st.sampled_from([0.0, 3.0]),
        seed=st.integers(0, 3),
        ready=st.lists(st.booleans(), min_size=5, max_size=5),
        opening=st.lists(st.sampled_from(QUEUES), max_size=6),
        answer=st.booleans(),
    )
    def setup(
        self,
        strategy: str,
        levels: list[dict[str, int]],
        chat_caps: list[int],
        delay: float,
        max_wait: float | None,
        overflow: str,
        wrap: float,
        seed: int,
        ready: list[bool],
        opening: list[str],
        answer: bool,
    ) -> None:
        configs = [
            AgentConfig(
                a,
                {s: lv for s, lv in levels[i].items() if lv > 0},
                {Channel.VOICE: 1, Channel.CHAT: chat_caps[i]},
            )
            for i, a in enumerate(AGENTS)
        ]
        teams = [TeamConfig("t1", tuple(configs[:3])), TeamConfig("t2", tuple(configs[2:]))]
        flow: OverflowConfig | None = None
        if max_wait is not None and overflow == "queue":
            flow = OverflowConfig(OverflowAction.QUEUE, "q2")
        elif max_wait is not None and overflow == "voicemail":
            flow = OverflowConfig(OverflowAction.VOICEMAIL)
        params: dict[str, object] = {"delay": 4} if strategy == "ring-progressively" else {}
        queues = [
            QueueConfig(
                "q1",
                (TierConfig(("t1",)), TierConfig(("t2",), delay)),
                strategy=strategy,
                params=params,
                skills={"billing": 1},
                max_wait=max_wait,
                overflow=flow,
                offer_timeout=10.0,
                wrap_up_time=wrap,
            ),
            QueueConfig(
                "q2",
                (TierConfig(("t2",)), TierConfig(("t1",), 2 * delay)),
                strategy=strategy,
                params=params,
                offer_timeout=7.0,
            ),
            QueueConfig(
                "chat",
                (TierConfig(("t1", "t2")),),
                channel=Channel.CHAT,
                strategy="longest-idle-agent",
                max_wait=max_wait,
            ),
        ]
        self.router = Router(queues, teams, seed=seed)
        self.queue_cfg = {q.name: q for q in queues}
        self.agents = {c.id: AgentModel(c) for c in configs}
        for q in queues:
            for tier in q.tiers:
                for team in tier.teams:
                    for member in next(t for t in teams if t.name == team).agents:
                        self.tier_delay.setdefault((q.name, member.id), tier.delay)
        # Start with some agents Available and some contacts in (answered, if ``answer``), so
        # that runs reach busy states sooner, whichever rules are enabled.
        for agent, on in zip(AGENTS, ready, strict=True):
            if on:
                self.set_presence(
                    agent, AgentState.AVAILABLE, lambda a=agent: self.r.login(a, self.now)
                )
        for queue in opening:
            self.arrive(queue, 0, {})
        if answer:
            self.answer_all()

    @property
    def r(self) -> Router:
        assert self.router is not None
        return self.router

    # ------------------------------------------------------------------ model

    def free(self, agent_id: str, channel: Channel) -> bool:
        agent = self.agents[agent_id]
        if agent.presence is not AgentState.AVAILABLE:
            return False
        if any(ch is not channel for ch in agent.items.values()):
            return False
        return len(agent.items) < agent.config.capacity.get(channel, 0)

    def eligible(self, agent_id: str, contact: ContactModel, at: float) -> bool:
        delay = self.tier_delay.get((contact.queue, agent_id))
        if delay is None or contact.queued_at + delay > at:
            return False
        skills = self.agents[agent_id].config.skills
        return all(skills.get(s, 0) >= lv for s, lv in contact.skills.items())

    def apply(self, effects: list[Effect], now: float) -> None:
        for effect in effects:
            if isinstance(effect, Offer):
                self.on_offer(effect)
            elif isinstance(effect, OfferWithdrawn):
                contact = self.contacts[effect.contact_id]
                for agent_id in effect.agent_ids:
                    assert agent_id in contact.ringing, f"withdrawn {effect} was not ringing"
                    earliest, _ = contact.ringing.pop(agent_id)
                    del self.agents[agent_id].items[effect.contact_id]
                    if effect.reason == "rejected":
                        contact.declined.add(agent_id)
                    elif effect.reason == "no answer":
                        assert earliest <= now, f"RONA of {agent_id} before the offer timeout"
                        # RONA: the agent goes NotReady("no-answer"). The reported state
                        # stays Busy while it still has a chat in progress, so no
                        # AgentStateChanged tells the model: the model itself does.
                        agent = self.agents[agent_id]
                        agent.presence, agent.reason = AgentState.NOT_READY, "no-answer"
                        self.timed_out.add(agent_id)
                if not contact.ringing and contact.status == "offered":
                    contact.status = "waiting"
            elif isinstance(effect, Connected):
                contact = self.contacts[effect.contact_id]
                assert contact.status == "offered" and effect.agent_id in contact.ringing
                assert set(contact.ringing) == {effect.agent_id}, "other rings not withdrawn"
                contact.status = "connected"
                contact.ringing.clear()
            elif isinstance(effect, ContactEnded):
                contact = self.contacts[effect.contact_id]
                contact.ended += 1
                assert contact.ended == 1, f"{effect.contact_id} ended twice"
                if effect.reason is EndReason.ANSWERED:
                    assert contact.status == "connected"
                else:
                    assert not contact.ringing
                    contact.status = "ended"
            elif isinstance(effect, ContactMoved):
                contact = self.contacts[effect.contact_id]
                assert contact.queue == effect.from_queue and not contact.ringing
                contact.queue = effect.to_queue
                contact.queued_at = effect.at
                merged = dict(self.queue_cfg[effect.to_queue].skills)
                for skill, level in contact.own.items():
                    merged[skill] = max(level, merged.get(skill, 0))
                contact.skills = merged
                contact.status = "waiting"
            elif isinstance(effect, AgentStateChanged):
                assert self.since <= effect.at <= now
                self.on_state(effect)

    def on_state(self, change: AgentStateChanged) -> None:
        """Check a reported presence against the model's: a presence changes only by a
        request (the rule sets the model first), a RONA (apply sets it) or a wrap-up."""
        agent = self.agents[change.agent_id]
        if change.state is AgentState.WRAP_UP:
            assert self.wrap_next is not None and self.wrap_next[0] == change.agent_id, (
                f"{change.agent_id} wraps up without completing a contact"
            )
            assert agent.presence is AgentState.AVAILABLE
            agent.presence, agent.wrap_until = AgentState.WRAP_UP, self.wrap_next[1]
        elif change.state is AgentState.AVAILABLE:
            if agent.presence is AgentState.WRAP_UP:  # no request: the wrap-up timer
                assert change.at == agent.wrap_until, f"wrap-up ended at {change.at}"
                agent.presence = AgentState.AVAILABLE
            assert agent.presence is AgentState.AVAILABLE, (
                f"{change.agent_id} Available ({change.reason}) while"
                f" {(agent.presence, agent.reason)}"
            )
        elif change.state is AgentState.NOT_READY:
            model = (agent.presence, agent.reason)
            assert model == (AgentState.NOT_READY, change.reason), (
                f"{change.agent_id} NotReady({change.reason}) while {model}"
            )
        elif change.state is AgentState.LOGGED_OUT:
            assert agent.presence is AgentState.LOGGED_OUT

    def on_offer(self, offer: Offer) -> None:
        contact = self.contacts[offer.contact_id]
        assert contact.status in ("waiting", "offered"), f"offer for a {contact.status} contact"
        assert offer.queue == contact.queue
        at = offer.decision.at
        fresh = id(offer.decision) not in contact.decisions
        contact.decisions.add(id(offer.decision))
        for agent_id in offer.agent_ids:
            agent = self.agents[agent_id]
            # The agent has the skills, the capacity and the Available state.
            assert self.free(agent_id, contact.channel), (
                f"offer of {offer.contact_id} to {agent_id} ({agent.presence}, {agent.items})"
            )
            assert self.eligible(agent_id, contact, at), (
                f"offer of {offer.contact_id} to {agent_id}: skill or tier not eligible at {at}"
            )
            assert agent_id not in contact.declined
            if fresh:
                self.check_fifo(offer.contact_id, contact, agent_id, at)
            agent.items[offer.contact_id] = contact.channel
            contact.ringing[agent_id] = (self.since + offer.timeout, self.now + offer.timeout)
        contact.status = "offered"

    def check_fifo(self, contact_id: str, contact: ContactModel, agent_id: str, at: float) -> None:
        key = (-contact.priority, contact.enqueued_at, contact.seq)
        for other_id, other in self.contacts.items():
            if (
                other_id != contact_id
                and other.status == "waiting"
                and other.queue == contact.queue
                and other.priority == contact.priority
                and other.skills == contact.skills
                and (-other.priority, other.enqueued_at, other.seq) < key
                and other.queued_at <= contact.queued_at
                and agent_id not in other.declined
                and self.eligible(agent_id, other, at)
            ):
                raise AssertionError(
                    f"FIFO: {agent_id} offered {contact_id} while older {other_id} waits"
                )

    def step(self, dt: float) -> None:
        """Let ``dt`` pass: fire the router's timers and check every RONA on the way."""
        self.since, self.now = self.now, self.now + dt
        self.timed_out.clear()
        self.apply(self.r.tick(self.now), self.now)
        self.since = self.now
        for agent_id in sorted(self.timed_out):
            # Nothing in a tick makes a NotReady agent Available again: it still is.
            if any(self.contacts[c].status == "connected" for c in self.agents[agent_id].items):
                assert self.r.agent_state(agent_id) is AgentState.BUSY  # presence hidden
            else:
                last = self.r.agent_history(agent_id)[-1]
                assert (last.state, last.reason) == (AgentState.NOT_READY, "no-answer"), (
                    f"{agent_id} after its offer timed out: {last}"
                )

    def attempt(self, call: Any) -> bool:
        """Run a transition; on AcdError check that nothing changed."""
        before = (self.r.contacts(), {q: self.r.waiting(q) for q in QUEUES})
        try:
            effects = call()
        except AcdError:
            assert (self.r.contacts(), {q: self.r.waiting(q) for q in QUEUES}) == before
            return False
        self.apply(effects, self.now)
        return True

    # ------------------------------------------------------------------ rules

    @rule(
        queue=st.sampled_from(QUEUES),
        priority=st.integers(0, 1),
        extra=st.sampled_from([{}, {"sales": 1}, {"billing": 2}]),
        dt=st.sampled_from([0.0, 1.0, 3.0]),
        burst=st.integers(1, 3),
    )
    def enqueue(
        self, queue: str, priority: int, extra: dict[str, int], dt: float, burst: int
    ) -> None:
        """``burst`` contacts arrive at once (so that some wait while agents are busy)."""
        self.step(dt)
        for _ in range(burst):
            self.arrive(queue, priority, extra)

    def arrive(self, queue: str, priority: int, extra: dict[str, int]) -> None:
        self.seq += 1
        cid = f"c{self.seq}"
        cfg = self.queue_cfg[queue]
        skills = dict(cfg.skills)
        for s, lv in extra.items():
            skills[s] = max(lv, skills.get(s, 0))
        self.contacts[cid] = ContactModel(
            queue, cfg.channel, priority, skills, self.now, self.now, self.seq, dict(extra)
        )
        spec = ContactSpec(cid, queue, priority=priority, skills=extra)
        assert self.attempt(lambda: self.r.enqueue(spec, self.now))

    @rule(agent=st.sampled_from(AGENTS), ready=st.booleans(), dt=st.sampled_from([0.0, 2.0]))
    def login(self, agent: str, ready: bool, dt: float) -> None:
        self.step(dt)
        presence = AgentState.AVAILABLE if ready else AgentState.NOT_READY
        self.set_presence(
            agent, presence, lambda: self.r.login(agent, self.now, ready=ready), "login"
        )

    @rule(agent=st.sampled_from(AGENTS), action=st.sampled_from(["ready", "break", "logout"]))
    def presence(self, agent: str, action: str) -> None:
        if action == "ready":
            self.set_presence(
                agent, AgentState.AVAILABLE, lambda: self.r.set_ready(agent, self.now)
            )
        elif action == "break":
            self.set_presence(
                agent,
                AgentState.NOT_READY,
                lambda: self.r.set_not_ready(agent, "break", self.now),
                "break",
            )
        else:
            self.set_presence(agent, AgentState.LOGGED_OUT, lambda: self.r.logout(agent, self.now))

    def set_presence(
        self, agent: str, presence: AgentState, call: Any, reason: str = "supervisor"
    ) -> None:
        """Run a presence change, the model's presence set first: the reported state
        hides presence while a contact is in progress (e.g. a login or "ready" mid-chat
        reports Busy), and the call's own effects may already offer to the agent."""
        model = self.agents[agent]
        before = model.presence, model.reason
        model.presence = presence
        model.reason = reason if presence is AgentState.NOT_READY else ""
        if not self.attempt(call):
            model.presence, model.reason = before

    @rule(
        agent=st.sampled_from(AGENTS),
        state=st.sampled_from([AgentState.AVAILABLE, AgentState.NOT_READY, AgentState.LOGGED_OUT]),
    )
    def force(self, agent: str, state: AgentState) -> None:
        self.set_presence(agent, state, lambda: self.r.force_state(agent, state, self.now))

    def with_status(self, *statuses: str) -> list[str]:
        return sorted(cid for cid, c in self.contacts.items() if c.status in statuses)

    def ringing(self) -> list[tuple[str, str]]:
        return sorted((cid, a) for cid, c in self.contacts.items() for a in c.ringing)

    @precondition(lambda self: self.ringing())
    @rule(data=st.data(), answer=st.sampled_from([True, True, False]))
    def respond(self, data: st.DataObject, answer: bool) -> None:
        cid, agent = data.draw(st.sampled_from(self.ringing()))
        call = self.r.accept if answer else self.r.reject
        assert self.attempt(lambda: call(agent, cid, self.now))

    @precondition(lambda self: self.ringing())
    @rule()
    def answer_all(self) -> None:
        """Every ringing agent answers, one offer after another."""
        while ringing := self.ringing():
            cid, agent = ringing[0]
            assert self.attempt(lambda c=cid, a=agent: self.r.accept(a, c, self.now))

    @precondition(lambda self: self.ringing())
    @rule(past=st.sampled_from([0.0, 0.5]))
    def ring_out(self, past: float) -> None:
        """Let time run to the first ring's timeout (or just past it): a RONA."""
        due = min(latest for c in self.contacts.values() for _, latest in c.ringing.values())
        self.step(due - self.now + past)

    def finish(self, cid: str) -> None:
        """Complete a connected contact; its agent wraps up if it is free and Available."""
        agent_id = next(a for a, m in self.agents.items() if cid in m.items)
        agent = self.agents[agent_id]
        wrap = self.queue_cfg[self.contacts[cid].queue].wrap_up_time
        wraps = agent.presence is AgentState.AVAILABLE and len(agent.items) == 1 and wrap > 0
        self.wrap_next = (agent_id, self.now + wrap) if wraps else None
        effects = self.r.complete(cid, self.now)
        del agent.items[cid]  # the agent is free before the effects' offers
        self.contacts[cid].status = "ended"
        self.apply(effects, self.now)
        self.wrap_next = None
        if wraps:
            assert agent.presence is AgentState.WRAP_UP, f"{agent_id} did not wrap up"

    @precondition(lambda self: self.with_status("connected"))
    @rule(data=st.data(), dt=st.sampled_from([0.0, 5.0]))
    def complete(self, data: st.DataObject, dt: float) -> None:
        self.step(dt)
        talking = self.with_status("connected")
        if talking:
            self.finish(data.draw(st.sampled_from(talking)))

    def frees_for_waiting(self, cid: str) -> bool:
        """Would completing ``cid`` free its agent, at once, for some waiting contact?"""
        agent_id = next(a for a, m in self.agents.items() if cid in m.items)
        agent = self.agents[agent_id]
        rest = [ch for c, ch in agent.items.items() if c != cid]
        if agent.presence is not AgentState.AVAILABLE or (
            not rest and self.queue_cfg[self.contacts[cid].queue].wrap_up_time > 0
        ):
            return False
        return any(
            agent_id not in other.declined
            and all(ch is other.channel for ch in rest)
            and len(rest) < agent.config.capacity.get(other.channel, 0)
            and self.eligible(agent_id, other, self.now)
            for other in self.contacts.values()
            if other.status == "waiting"
        )

    @precondition(lambda self: self.with_status("connected") and self.with_status("waiting"))
    @rule(data=st.data())
    def complete_while_waiting(self, data: st.DataObject) -> None:
        """Complete a contact while others wait: the freed agent must be offered one."""
        talking = self.with_status("connected")
        freeing = [cid for cid in talking if self.frees_for_waiting(cid)]
        self.finish(data.draw(st.sampled_from(freeing or talking)))

    @precondition(lambda self: self.with_status("waiting", "offered"))
    @rule(data=st.data(), how=st.sampled_from(["abandon", "move"]))
    def leave(self, data: st.DataObject, how: str) -> None:
        cid = data.draw(st.sampled_from(self.with_status("waiting", "offered")))
        if how == "abandon":
            assert self.attempt(lambda: self.r.abandon(cid, self.now))
        else:
            target = "q2" if self.contacts[cid].queue == "q1" else "q1"
            self.attempt(lambda: self.r.move(cid, target, self.now))

    @rule(dt=st.sampled_from([1.0, 4.0, 10.0, 25.0]))
    def advance(self, dt: float) -> None:
        self.step(dt)

    @rule(
        bad=st.sampled_from(
            ["accept-wrong", "unknown-queue", "duplicate", "unknown-agent", "complete-waiting"]
        )
    )
    def bad_request(self, bad: str) -> None:
        r = self.r
        calls = {
            "accept-wrong": lambda: (
                r.accept("a0", next(iter(self.r.contacts()), "zz"), self.now)
                if not any("a0" in c.ringing for c in self.contacts.values())
                else r.accept("a0", "zz", self.now)
            ),
            "unknown-queue": lambda: r.enqueue(ContactSpec("bad", "nope"), self.now),
            "duplicate": lambda: (
                r.enqueue(ContactSpec(next(iter(r.contacts()), "zz"), "q1"), self.now)
                if r.contacts()
                else r.login("ghost", self.now)
            ),
            "unknown-agent": lambda: r.set_ready("ghost", self.now),
            "complete-waiting": lambda: r.complete(
                next((c for c, m in self.contacts.items() if m.status == "waiting"), "zz"),
                self.now,
            ),
        }
        assert not self.attempt(calls[bad])

    # ------------------------------------------------------------------ invariants

    @invariant()
    def engine_invariants(self) -> None:
        if self.router is not None:
            self.r.check_invariants()

    @invariant()
    def work_conserving(self) -> None:
        if self.router is None:
            return
        for queue in QUEUES:
            model_waiting = sorted(
                c for c, m in self.contacts.items() if m.status == "waiting" and m.queue == queue
            )
            assert model_waiting == sorted(self.r.waiting(queue)), f"who waits in {queue}?"
            for cid in self.r.waiting(queue):
                contact = self.contacts[cid]
                for agent_id in self.agents:
                    if (
                        agent_id not in contact.declined
                        and self.free(agent_id, contact.channel)
                        and self.eligible(agent_id, contact, self.now)
                    ):
                        raise AssertionError(f"{cid} waits while {agent_id} is free and eligible")

    @invariant()
    def agents_agree(self) -> None:
        """Every agent's reported state is the one the model derives from its presence."""
        if self.router is None:
            return
        for agent_id, agent in self.agents.items():
            expected = agent.presence
            if agent.items and expected is not AgentState.LOGGED_OUT:
                talking = any(self.contacts[c].status == "connected" for c in agent.items)
                expected = AgentState.BUSY if talking else AgentState.RESERVED
            assert self.r.agent_state(agent_id) is expected, (
                f"{agent_id} is {self.r.agent_state(agent_id)}, the model says {expected}"
                f" ({agent.presence} {agent.reason}, {agent.items})"
            )

    @invariant()
    def timers_on_time(self) -> None:
        """No ring outlives its offer timeout, no wrap-up its wrap-up time."""
        for cid, contact in self.contacts.items():
            for agent_id, (_, latest) in contact.ringing.items():
                assert latest > self.now, f"{cid} still rings at {agent_id} after its timeout"
        for agent_id, agent in self.agents.items():
            if agent.presence is AgentState.WRAP_UP:
                assert agent.wrap_until > self.now, f"{agent_id} still wraps up"

    def teardown(self) -> None:
        if self.router is None:
            return
        # Drain the router: every contact still in it must end exactly once.
        for cid in list(self.r.contacts()):
            if self.contacts[cid].status == "connected":
                self.finish(cid)
            else:
                self.apply(self.r.abandon(cid, self.now), self.now)
        self.r.check_invariants()
        assert self.r.contacts() == []
        not_once = {cid: c.ended for cid, c in self.contacts.items() if c.ended != 1}
        assert not_once == {}, f"contacts not ended exactly once: {not_once}"


AcdMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestAcdStateMachine = AcdMachine.TestCase


def test_rona_requeues_older_chat_first() -> None:
    """Two chats ring at a0 (capacity 2), a2 is free for one: a0 does not answer c1."""
    team = TeamConfig(
        "t1",
        (
            AgentConfig("a0", {}, {Channel.VOICE: 1, Channel.CHAT: 2}),
            AgentConfig("a2", {}, {Channel.VOICE: 1, Channel.CHAT: 1}),
        ),
    )
    chat = QueueConfig("chat", (TierConfig(("t1",)),), channel=Channel.CHAT, offer_timeout=20)
    router = Router([chat], [team])
    router.login("a0", 0.0)
    router.login("a2", 1.0)
    router.enqueue(ContactSpec("c1", "chat"), 2.0)  # both ring at a0, the longest idle
    router.enqueue(ContactSpec("c2", "chat"), 3.0)
    router.tick(22.0)  # c1's offer times out: a0 goes NotReady, both chats come back
    assert router.waiting("chat") == ["c2"], "older c1 waits while c2 rings at a2"


def test_move_serves_older_first() -> None:
    """c1 and c2 wait for billing (only a4 has it); moved to q2 (no skill), each rings at a
    free agent; a3 takes a break, so c1 waits in q2; then c2 is moved to q2 too."""
    team = TeamConfig("t", (AgentConfig("a3", {}), AgentConfig("a4", {"billing": 1})))
    q1 = QueueConfig("q1", (TierConfig(("t",)),), strategy="top-down", skills={"billing": 1})
    q2 = QueueConfig("q2", (TierConfig(("t",)),), strategy="top-down")
    router = Router([q1, q2], [team])
    router.login("a3", 0.0)
    router.login("a4", 0.0)
    router.enqueue(ContactSpec("c1", "q1"), 0.0)  # rings at a4
    router.enqueue(ContactSpec("c2", "q1"), 0.0)  # waits
    router.move("c1", "q2", 1.0)  # c1 rings at a3, a4 (freed) takes c2
    router.set_not_ready("a3", "break", 2.0)  # c1 waits in q2
    assert router.waiting("q2") == ["c1"]
    router.move("c2", "q2", 3.0)  # frees a4, which c1 (older, first in line) should get
    assert router.waiting("q2") == ["c2"], "c2 rings at a4 while older c1 waits"


def test_escalation_tie_serves_older_first() -> None:
    """c1 and c2 arrive together; c1 rings at a0 (tier 1) and times out; at t=28 both
    reach tier 2, where a3 is free: c1, first in line, must get it."""
    t1 = TeamConfig("t1", (AgentConfig("a0", {}, {Channel.VOICE: 1}),))
    t2 = TeamConfig("t2", (AgentConfig("a3", {}, {Channel.VOICE: 1}),))
    q1 = QueueConfig("q1", (TierConfig(("t1",)), TierConfig(("t2",), 20.0)), offer_timeout=10)
    router = Router([q1], [t1, t2])
    router.login("a0", 0.0)
    router.login("a3", 0.0)
    router.enqueue(ContactSpec("c1", "q1"), 8.0)  # rings at a0
    router.enqueue(ContactSpec("c2", "q1"), 8.0)  # waits: a3 is eligible from t=28
    router.tick(18.0)  # c1 times out at a0 and lines up again, ahead of c2
    assert router.waiting("q1") == ["c1", "c2"]
    router.tick(28.0)
    assert router.waiting("q1") == ["c2"], "c2 rings at a3 while older c1 waits"


def test_escalation_tie_across_queues_serves_older_first() -> None:
    """A (q2) is older than C (q1); both reach the tier-2 team they share at t=10 (A's timer
    was armed later, after a reject): the shared agent y takes A."""
    teams = [
        TeamConfig("t0", (AgentConfig("z"),)),
        TeamConfig("t1", (AgentConfig("x"),)),
        TeamConfig("t2", (AgentConfig("y"),)),
    ]
    q1 = QueueConfig("q1", (TierConfig(("t0",)), TierConfig(("t2",), 10.0)))
    q2 = QueueConfig("q2", (TierConfig(("t1",)), TierConfig(("t2",), 10.0)))
    router = Router([q1, q2], teams)
    router.login("x", 0.0)
    router.enqueue(ContactSpec("A", "q2"), 0.0)  # rings at x
    router.enqueue(ContactSpec("C", "q1"), 0.0)  # waits: its escalation is armed first
    router.reject("x", "A", 0.0)  # A lines up: its escalation is armed second
    router.login("y", 1.0)
    offers = [e for e in router.tick(10.0) if isinstance(e, Offer)]
    assert [(o.contact_id, o.agent_ids) for o in offers] == [("A", ("y",))]
    assert router.waiting("q1") == ["C"]
    router.check_invariants()
