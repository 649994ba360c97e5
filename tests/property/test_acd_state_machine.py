"""The ACD's invariants, proved by a hypothesis state machine driving a real Router.

Random sequences of arrivals, logins, breaks, accepts, rejects, no-answers, completions,
abandons, moves, supervisor force-states, clock advances and bad requests run against a
Router. The test keeps its own model of what the effects said (who rings, who talks, who is
Available, which contact waits where since when) and checks, independently of the engine:

* no offer to an agent lacking a required skill, free capacity or the Available state;
* no agent double-booked (capacity per channel, one channel at a time);
* work conservation: after every step, no contact waits while an eligible agent is free;
* escalation never before its delay: an offer to a tier-n agent comes at least that tier's
  delay after the contact entered the queue;
* FIFO within equal priority: no offer to an agent while an older contact of the same queue,
  priority and skills, which that agent could take, waits;
* every contact ends exactly once (answered, abandoned, overflowed or timed out);
* bad requests raise an AcdError and leave the state as it was;

and after every step the engine's own ``check_invariants`` (indexes, cross references).
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
    ringing: set[str] = field(default_factory=set)
    declined: set[str] = field(default_factory=set)
    decisions: set[int] = field(default_factory=set)
    ended: int = 0


@dataclass
class AgentModel:
    config: AgentConfig
    presence: AgentState = AgentState.LOGGED_OUT
    items: dict[str, Channel] = field(default_factory=dict)  # ringing or connected


class AcdMachine(RuleBasedStateMachine):
    """Drive a Router and check every effect against an independent model."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.seq = 0
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
                    contact.ringing.discard(agent_id)
                    del self.agents[agent_id].items[effect.contact_id]
                    if effect.reason == "rejected":
                        contact.declined.add(agent_id)
                    elif effect.reason == "no answer":
                        # RONA: the agent goes NotReady("no-answer"). The reported state
                        # stays Busy while it still has a chat in progress, so no
                        # AgentStateChanged tells the model: the rule itself does.
                        self.agents[agent_id].presence = AgentState.NOT_READY
                if not contact.ringing and contact.status == "offered":
                    contact.status = "waiting"
            elif isinstance(effect, Connected):
                contact = self.contacts[effect.contact_id]
                assert contact.status == "offered" and effect.agent_id in contact.ringing
                assert contact.ringing == {effect.agent_id}, "other rings not withdrawn first"
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
                if effect.state in (
                    AgentState.AVAILABLE,
                    AgentState.NOT_READY,
                    AgentState.WRAP_UP,
                    AgentState.LOGGED_OUT,
                ):
                    self.agents[effect.agent_id].presence = effect.state
                assert effect.at <= now

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
            contact.ringing.add(agent_id)
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
        self.now += dt
        self.apply(self.r.tick(self.now), self.now)

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
    )
    def enqueue(self, queue: str, priority: int, extra: dict[str, int], dt: float) -> None:
        self.step(dt)
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
        self.set_presence(agent, presence, lambda: self.r.login(agent, self.now, ready=ready))

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
            )
        else:
            self.set_presence(agent, AgentState.LOGGED_OUT, lambda: self.r.logout(agent, self.now))

    def set_presence(self, agent: str, presence: AgentState, call: Any) -> None:
        """Run a presence change, the model's presence set first: the reported state
        hides presence while a contact is in progress (e.g. a login or "ready" mid-chat
        reports Busy), and the call's own effects may already offer to the agent."""
        model = self.agents[agent]
        before = model.presence
        model.presence = presence
        if not self.attempt(call):
            model.presence = before

    @rule(
        agent=st.sampled_from(AGENTS),
        state=st.sampled_from([AgentState.AVAILABLE, AgentState.NOT_READY, AgentState.LOGGED_OUT]),
    )
    def force(self, agent: str, state: AgentState) -> None:
        self.set_presence(agent, state, lambda: self.r.force_state(agent, state, self.now))

    @rule(data=st.data(), answer=st.booleans())
    def respond(self, data: st.DataObject, answer: bool) -> None:
        ringing = sorted((cid, a) for cid, c in self.contacts.items() for a in c.ringing)
        if not ringing:
            return
        cid, agent = data.draw(st.sampled_from(ringing))
        call = self.r.accept if answer else self.r.reject
        assert self.attempt(lambda: call(agent, cid, self.now))

    @rule(data=st.data(), dt=st.sampled_from([0.0, 5.0]))
    def complete(self, data: st.DataObject, dt: float) -> None:
        self.step(dt)
        talking = sorted(cid for cid, c in self.contacts.items() if c.status == "connected")
        if not talking:
            return
        cid = data.draw(st.sampled_from(talking))
        agent = next(a for a, m in self.agents.items() if cid in m.items)
        effects = self.r.complete(cid, self.now)
        del self.agents[agent].items[cid]  # the agent is free before the effects' offers
        self.contacts[cid].status = "ended"
        self.apply(effects, self.now)

    @rule(data=st.data(), how=st.sampled_from(["abandon", "move"]))
    def leave(self, data: st.DataObject, how: str) -> None:
        live = sorted(cid for cid, c in self.contacts.items() if c.status in ("waiting", "offered"))
        if not live:
            return
        cid = data.draw(st.sampled_from(live))
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

    def teardown(self) -> None:
        if self.router is None:
            return
        # Drain the router: every contact still in it must end exactly once.
        for cid in list(self.r.contacts()):
            if self.contacts[cid].status == "connected":
                effects = self.r.complete(cid, self.now)
                for agent in self.agents.values():
                    agent.items.pop(cid, None)
                self.contacts[cid].status = "ended"
                self.apply(effects, self.now)
            else:
                self.apply(self.r.abandon(cid, self.now), self.now)
        self.r.check_invariants()
        assert self.r.contacts() == []
        not_once = {cid: c.ended for cid, c in self.contacts.items() if c.ended != 1}
        assert not_once == {}, f"contacts not ended exactly once: {not_once}"


AcdMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestAcdStateMachine = AcdMachine.TestCase
