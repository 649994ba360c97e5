"""The Router's transitions, timers and errors, with its invariants checked after each step."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

import callmesh
from callmesh.acd import (
    AgentConfig,
    AgentState,
    AgentStateChanged,
    CandidateOrder,
    Channel,
    Connected,
    ContactEnded,
    ContactMoved,
    ContactSpec,
    Effect,
    EndReason,
    Offer,
    OfferResult,
    OfferWithdrawn,
    OverflowAction,
    OverflowConfig,
    QueueConfig,
    Router,
    RoutingDecision,
    RoutingOutcome,
    RoutingRequest,
    TeamConfig,
    TierConfig,
)
from callmesh.acd.errors import (
    AcdError,
    AgentNotInTeamError,
    AgentStateError,
    ClockError,
    ConfigError,
    ContactStateError,
    DuplicateContactError,
    OfferWithdrawnError,
    UnknownAgentError,
    UnknownContactError,
    UnknownQueueError,
)
from callmesh.acd.strategies import BuiltinRoutingPolicy, LongestIdleAgent


class Checked:
    """A Router whose invariants are verified after every call, even a failed one."""

    def __init__(self, router: Router) -> None:
        self.router = router

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.router, name)
        if not callable(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            finally:
                self.router.check_invariants()

        return call


def offered(effects: Sequence[Effect]) -> list[str]:
    return [a for e in effects if isinstance(e, Offer) for a in e.agent_ids]


def of_type(effects: Sequence[Effect], kind: type[Any]) -> list[Any]:
    return [e for e in effects if isinstance(e, kind)]


def make(
    agents: Sequence[str | AgentConfig] = ("ann", "bob"),
    *,
    second: Sequence[str] = (),
    delay: float = 30.0,
    login: bool = True,
    **queue_kw: Any,
) -> Any:
    team1 = TeamConfig("t1", tuple(AgentConfig(a) if isinstance(a, str) else a for a in agents))
    teams = [team1]
    tiers = [TierConfig(("t1",))]
    if second:
        teams.append(TeamConfig("t2", tuple(AgentConfig(a) for a in second)))
        tiers.append(TierConfig(("t2",), delay))
    queues = [QueueConfig("q", tuple(tiers), **queue_kw)]
    overflow = queue_kw.get("overflow")
    if overflow is not None and overflow.target:
        queues.append(QueueConfig(overflow.target, (TierConfig(("t1",)),)))
    router = Checked(Router(queues, teams))
    if login:
        for a in agents:
            router.login(a if isinstance(a, str) else a.id, 0.0)
        for a in second:
            router.login(a, 0.0)
    return router


def test_offer_accept_complete_wrap_up_and_history() -> None:
    r = make(wrap_up_time=10.0)
    effects = r.enqueue(ContactSpec("c1", "q"), 1.0)
    assert offered(effects) == ["ann"]
    assert r.agent_state("ann") is AgentState.RESERVED
    effects = r.accept("ann", "c1", 3.0)
    assert of_type(effects, Connected) == [Connected("c1", "ann", "q")]
    (ended,) = of_type(effects, ContactEnded)
    assert ended.reason is EndReason.ANSWERED and ended.waited == 2.0 and ended.agent_id == "ann"
    assert ended.trace[0].decided_by == "longest-idle-agent"
    effects = r.complete("c1", 63.0)
    assert r.agent_state("ann") is AgentState.WRAP_UP
    assert r.next_deadline() == 73.0
    effects = r.tick(73.0)
    assert of_type(effects, AgentStateChanged) == [
        AgentStateChanged("ann", AgentState.AVAILABLE, "wrap-up ended", 73.0)
    ]
    states = [h.state for h in r.agent_history("ann")]
    assert states == ["Available", "Reserved", "Busy", "WrapUp", "Available"]


def test_team_wrap_up_overrides_the_queues() -> None:
    team = TeamConfig("t1", (AgentConfig("ann"),), wrap_up_time=5.0)
    r = Checked(Router([QueueConfig("q", (TierConfig(("t1",)),), wrap_up_time=30.0)], [team]))
    r.login("ann", 0.0)
    r.enqueue(ContactSpec("c1", "q"), 0.0)
    r.accept("ann", "c1", 0.0)
    r.complete("c1", 10.0)
    assert r.agent_state("ann") is AgentState.WRAP_UP and r.next_deadline() == 15.0


def test_rona_makes_the_agent_not_ready_and_reoffers_keeping_the_place() -> None:
    r = make(("ann", "bob"), offer_timeout=15.0)
    r.enqueue(ContactSpec("c1", "q"), 0.0)
    r.enqueue(ContactSpec("c2", "q"), 1.0)
    r.accept("bob", "c2", 1.0)
    r.enqueue(ContactSpec("c3", "q"), 2.0)
    assert r.waiting("q") == ["c3"]
    effects = r.tick(15.0)
    assert of_type(effects, OfferWithdrawn) == [OfferWithdrawn("c1", ("ann",), "no answer")]
    assert r.agent_state("ann") is AgentState.NOT_READY
    assert r.agent_history("ann")[-1].reason == "no-answer"
    assert r.waiting("q") == ["c1", "c3"]  # c1 first: it entered first
    assert r.position("c1") == 1 and r.position("c3") == 2


def test_rona_reoffer_goes_to_the_first_in_line() -> None:
    r = make(("ann", "bob"), offer_timeout=15.0)
    r.enqueue(ContactSpec("c1", "q"), 0.0)
    r.enqueue(ContactSpec("c2", "q"), 1.0)
    r.accept("bob", "c2", 1.0)
    r.enqueue(ContactSpec("c3", "q"), 2.0)
    r.tick(15.0)
    effects = r.set_ready("ann", 20.0)
    assert [(e.contact_id, e.agent_ids) for e in of_type(effects, Offer)] == [("c1", ("ann",))]
    assert r.waiting("q") == ["c3"]


def test_reject_keeps_the_agent_available_and_never_reoffers_to_it() -> None:
    r = make(("ann", "bob"))
    r.enqueue(ContactSpec("c1", "q"), 0.0)
    effects = r.reject("ann", "c1", 1.0)
    assert offered(effects) == ["bob"]
    assert r.agent_state("ann") is AgentState.AVAILABLE
    effects = r.reject("bob", "c1", 2.0)
    assert offered(effects) == [] and r.waiting("q") == ["c1"]
    effects = r.enqueue(ContactSpec("c2", "q"), 3.0)
    assert offered(effects) == ["ann"]  # c1 waits, but ann and bob declined it


def test_priority_then_age() -> None:
    r = make(("ann",))
    r.enqueue(ContactSpec("busy", "q"), 0.0)
    r.accept("ann", "busy", 0.0)
    for cid, prio, t in [("old", 0, 1.0), ("vip", 5, 2.0), ("new", 0, 3.0), ("vip2", 5, 4.0)]:
        r.enqueue(ContactSpec(cid, "q", priority=prio), t)
    assert r.waiting("q") == ["vip", "vip2", "old", "new"]
    effects = r.complete("busy", 10.0)
    assert [e.contact_id for e in of_type(effects, Offer)] == ["vip"]


def test_escalation_never_before_the_delay() -> None:
    r = make(("ann",), second=("dan",), delay=30.0)
    r.enqueue(ContactSpec("c0", "q"), 0.0)
    r.accept("ann", "c0", 0.0)
    assert offered(r.enqueue(ContactSpec("c1", "q"), 10.0)) == []
    assert r.next_deadline() == 40.0
    assert r.tick(39.999) == []
    assert offered(r.tick(40.0)) == ["dan"]


def test_a_free_tier2_agent_takes_an_escalated_contact_when_it_logs_in() -> None:
    r = make(("ann",), second=("dan",), delay=30.0, login=False)
    r.login("ann", 0.0)
    r.enqueue(ContactSpec("c0", "q"), 0.0)
    r.accept("ann", "c0", 0.0)
    r.enqueue(ContactSpec("c1", "q"), 1.0)
    assert r.tick(31.0) == []  # escalated, but dan is logged out
    assert offered(r.login("dan", 50.0)) == ["dan"]


def test_max_wait_overflows_to_another_queue_keeping_the_enqueue_time() -> None:
    r = make(
        ("ann",),
        max_wait=60.0,
        overflow=OverflowConfig(OverflowAction.QUEUE, "backup"),
    )
    r.enqueue(ContactSpec("c0", "q"), 0.0)
    r.accept("ann", "c0", 0.0)
    r.enqueue(ContactSpec("c1", "q"), 5.0)
    effects = r.tick(65.0)
    assert of_type(effects, ContactMoved) == [
        ContactMoved("c1", "q", "backup", "overflow: waited max 60 s in q", 65.0)
    ]
    assert r.waiting("backup") == ["c1"]
    effects = r.complete("c0", 70.0)
    assert offered(effects) == ["ann"]
    (ended,) = of_type(r.accept("ann", "c1", 71.0), ContactEnded)
    assert ended.queue == "backup" and ended.waited == 66.0


@pytest.mark.parametrize("action", [OverflowAction.VOICEMAIL, OverflowAction.CALLBACK])
def test_max_wait_overflows_to_voicemail_or_callback(action: OverflowAction) -> None:
    r = make(("ann",), max_wait=60.0, overflow=OverflowConfig(action))
    r.enqueue(ContactSpec("c0", "q"), 0.0)
    r.accept("ann", "c0", 0.0)
    r.enqueue(ContactSpec("c1", "q"), 5.0)
    (ended,) = of_type(r.tick(100.0), ContactEnded)
    assert ended.reason is EndReason.OVERFLOWED and ended.action == action and ended.at == 65.0
    assert r.contacts() == ["c0"]


def test_max_wait_without_overflow_times_out_even_while_ringing() -> None:
    r = make(("ann",), max_wait=10.0, offer_timeout=30.0)
    r.enqueue(ContactSpec("c1", "q"), 0.0)
    effects = r.tick(10.0)
    assert of_type(effects, OfferWithdrawn)[0].agent_ids == ("ann",)
    assert of_type(effects, ContactEnded)[0].reason is EndReason.TIMED_OUT
    assert r.agent_state("ann") is AgentState.AVAILABLE


def test_abandon_removes_the_contact_everywhere() -> None:
    r = make(("ann",), max_wait=100.0)
    r.enqueue(ContactSpec("c1", "q"), 0.0)
    effects = r.abandon("c1", 2.0)
    assert of_type(effects, OfferWithdrawn) == [OfferWithdrawn("c1", ("ann",), "abandoned")]
    assert of_type(effects, ContactEnded)[0].reason is EndReason.ABANDONED
    assert r.contacts() == [] and r.next_deadline() is None
    with pytest.raises(UnknownContactError):
        r.accept("ann", "c1", 3.0)


def test_supervisor_moves_a_contact_and_forces_states() -> None:
    teams = [TeamConfig("t1", (AgentConfig("ann"),)), TeamConfig("t2", (AgentConfig("bob"),))]
    queues = [QueueConfig("a", (TierConfig(("t1",)),)), QueueConfig("b", (TierConfig(("t2",)),))]
    r = Checked(Router(queues, teams))
    r.login("ann", 0.0)
    r.enqueue(ContactSpec("c0", "a"), 0.0)
    r.accept("ann", "c0", 0.0)
    r.enqueue(ContactSpec("c1", "a"), 1.0)
    r.login("bob", 2.0, ready=False)
    effects = r.move("c1", "b", 3.0)
    assert of_type(effects, ContactMoved) == [ContactMoved("c1", "a", "b", "supervisor", 3.0)]
    assert offered(r.force_state("bob", AgentState.AVAILABLE, 4.0)) == ["bob"]
    effects = r.force_state("bob", AgentState.NOT_READY, 5.0, reason="coaching")
    assert of_type(effects, OfferWithdrawn)[0].agent_ids == ("bob",)
    assert r.agent_history("bob")[-1].reason == "coaching"
    effects = r.force_state("ann", AgentState.LOGGED_OUT, 6.0)  # busy: the call carries on
    assert r.agent_state("ann") is AgentState.LOGGED_OUT
    r.complete("c0", 7.0)
    with pytest.raises(AgentStateError, match="force LoggedOut, Available or NotReady"):
        r.force_state("ann", AgentState.BUSY, 8.0)


def test_a_contact_keeps_the_priority_it_entered_with_when_moved() -> None:
    team = TeamConfig("t1", (AgentConfig("ann"),))
    queues = [
        QueueConfig("a", (TierConfig(("t1",)),), priority=20),
        QueueConfig("b", (TierConfig(("t1",)),), priority=5),
    ]
    r = Checked(Router(queues, teams=[team]))
    r.enqueue(ContactSpec("own", "a", priority=7), 0.0)
    r.enqueue(ContactSpec("queue-default", "a"), 0.0)
    assert (r.priority("own"), r.priority("queue-default")) == (7, 20)
    r.move("queue-default", "b", 1.0)  # keeps its place in line, and its priority
    assert r.priority("queue-default") == 20


def test_multi_chat_capacity_and_one_channel_at_a_time() -> None:
    chat_agent = AgentConfig("ann", capacity={Channel.CHAT: 2, Channel.VOICE: 1})
    team = TeamConfig("t1", (chat_agent,))
    queues = [
        QueueConfig("chat", (TierConfig(("t1",)),), channel=Channel.CHAT),
        QueueConfig("voice", (TierConfig(("t1",)),)),
    ]
    r = Checked(Router(queues, [team]))
    r.login("ann", 0.0)
    assert offered(r.enqueue(ContactSpec("x1", "chat"), 1.0)) == ["ann"]
    r.accept("ann", "x1", 1.0)
    assert offered(r.enqueue(ContactSpec("v1", "voice"), 2.0)) == []  # chatting: no voice
    assert offered(r.enqueue(ContactSpec("x2", "chat"), 3.0)) == ["ann"]  # second chat
    assert r.agent_state("ann") is AgentState.BUSY
    r.accept("ann", "x2", 3.0)
    assert offered(r.enqueue(ContactSpec("x3", "chat"), 4.0)) == []  # full
    effects = r.complete("x1", 5.0)
    assert [e.contact_id for e in of_type(effects, Offer)] == ["x3"]  # chat keeps the channel
    r.accept("ann", "x3", 5.0)
    r.complete("x2", 6.0)
    effects = r.complete("x3", 7.0)
    assert [e.contact_id for e in of_type(effects, Offer)] == ["v1"]


def test_skills_and_levels_gate_candidates() -> None:
    agents = (AgentConfig("ann", {"billing": 2}), AgentConfig("bob", {"billing": 5, "fr": 3}))
    r = make(agents, skills={"billing": 2})
    assert offered(r.enqueue(ContactSpec("c1", "q", skills={"fr": 1}), 1.0)) == ["bob"]
    assert offered(r.enqueue(ContactSpec("c2", "q", skills={"billing": 3}), 2.0)) == []
    assert offered(r.enqueue(ContactSpec("c3", "q"), 3.0)) == ["ann"]
    assert r.waiting("q") == ["c2"]


class Recorder:
    """A policy that proposes fixed agents, records requests and outcomes."""

    def __init__(self, *agent_ids: str, fail: bool = False) -> None:
        self.agent_ids = agent_ids
        self.fail = fail
        self.requests: list[RoutingRequest] = []
        self.outcomes: list[RoutingOutcome] = []

    def route(self, request: RoutingRequest) -> RoutingDecision | None:
        self.requests.append(request)
        if self.fail:
            raise RuntimeError("plugin crashed")
        return RoutingDecision(self.agent_ids, "vendor", "because")

    def observe(self, outcome: RoutingOutcome) -> None:
        self.outcomes.append(outcome)


def _with_policy(policy: Any, strategy: str = "vendor-x") -> Any:
    team = TeamConfig("t1", (AgentConfig("ann"), AgentConfig("bob")))
    router = Router(
        [QueueConfig("q", (TierConfig(("t1",)),), strategy=strategy)], [team], policy=policy
    )
    r = Checked(router)
    r.login("ann", 0.0)
    r.login("bob", 1.0)
    return r


class _Direct:
    """A strategy the policy lists in ``direct_strategies``; it may raise."""

    name = "vendor-x"

    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.calls = 0

    def choose(self, request: RoutingRequest) -> RoutingDecision | None:
        self.calls += 1
        if self.fail:
            raise RuntimeError("direct crashed")
        return RoutingDecision(("bob",), "direct", "chosen directly")


@pytest.mark.parametrize("fail", [False, True], ids=["answers", "raises"])
def test_a_direct_strategy_is_called_without_route_which_handles_its_failure(fail: bool) -> None:
    policy = Recorder("ann")
    direct = _Direct(fail)
    policy.direct_strategies = {"vendor-x": direct}  # type: ignore[attr-defined]
    r = _with_policy(policy)
    (offer,) = of_type(r.enqueue(ContactSpec("c1", "q"), 2.0), Offer)
    assert direct.calls == 1
    if fail:  # route decides after all (it is the policy's guards that count failures)
        assert len(policy.requests) == 1
        assert offer.agent_ids == ("ann",) and offer.decision.decided_by == "vendor"
    else:
        assert policy.requests == []
        assert offer.agent_ids == ("bob",) and offer.decision.reason == "chosen directly"
    assert not offer.decision.fallback


@pytest.mark.skipif(
    callmesh.core_build() != "pure Python",
    reason="compiled, IndexedStrategy is a native class: Python code cannot subclass it",
)
@pytest.mark.parametrize("pick", ["raises", "answers-another"])
def test_an_indexed_strategy_is_picked_without_a_request_and_route_handles_its_failure(
    pick: str,
) -> None:
    class Picky(LongestIdleAgent):
        name = "vendor-x"

        def pick(self, candidates: Any, now: float) -> tuple[str, str]:
            if pick == "raises":
                raise RuntimeError("pick crashed")
            return "bob", "not the longest idle"  # a candidate, but not the probe's agent

    policy = Recorder("ann")
    policy.direct_strategies = {"vendor-x": Picky()}  # type: ignore[attr-defined]
    r = _with_policy(policy)
    (offer,) = of_type(r.enqueue(ContactSpec("c1", "q"), 2.0), Offer)
    if pick == "raises":  # route decides (the policy's guards count the failure)
        assert len(policy.requests) == 1
        assert offer.agent_ids == ("ann",) and offer.decision.decided_by == "vendor"
    else:  # no request built, and the answer is checked like any other
        assert policy.requests == []
        assert offer.agent_ids == ("bob",) and offer.decision.decided_by == "vendor-x"
        assert offer.decision.reason == "not the longest idle"
    assert not offer.decision.fallback


@pytest.mark.skipif(
    callmesh.core_build() != "pure Python",
    reason="compiled, IndexedStrategy is a native class: Python code cannot subclass it",
)
def test_an_indexed_strategy_with_its_own_choose_is_asked_through_it() -> None:
    class Custom(LongestIdleAgent):
        def choose(self, request: RoutingRequest) -> RoutingDecision | None:
            return RoutingDecision(("ann",), "custom", "always ann")

    policy = BuiltinRoutingPolicy({"longest-idle-agent": Custom()})
    r = _with_policy(policy, strategy="longest-idle-agent")  # bob has been idle less long
    (offer,) = of_type(r.enqueue(ContactSpec("c1", "q"), 2.0), Offer)
    assert offer.agent_ids == ("ann",) and offer.decision.decided_by == "custom"


def test_the_engine_never_trusts_a_decision() -> None:
    policy = Recorder("ghost", "bob", "bob")
    r = _with_policy(policy)
    (offer,) = of_type(r.enqueue(ContactSpec("c1", "q"), 2.0), Offer)
    assert offer.agent_ids == ("bob",)
    assert offer.decision.discarded == ("ghost", "bob") and not offer.decision.fallback
    candidates = policy.requests[0].candidates
    assert "ann" in candidates and "ghost" not in candidates
    r.accept("bob", "c1", 3.0)
    assert [(o.agent_id, o.result) for o in policy.outcomes] == [("bob", OfferResult.ACCEPTED)]
    policy.agent_ids = ("bob",)  # bob is busy now: not a candidate
    (offer,) = of_type(r.enqueue(ContactSpec("c2", "q"), 4.0), Offer)
    assert offer.agent_ids == ("ann",) and offer.decision.fallback
    assert offer.decision.decided_by == "engine:longest-idle-agent"
    assert "vendor chose no candidate (bob)" in offer.decision.reason


def test_a_policy_that_edits_a_view_cannot_trick_the_engine() -> None:
    # Views are named tuples: renaming the candidate a strategy was shown raises, the
    # engine treats that as the policy failing, and its fallback decides.
    class Forger:
        def __init__(self) -> None:
            self.outcomes: list[RoutingOutcome] = []

        def route(self, request: RoutingRequest) -> RoutingDecision | None:
            view = request.candidates.first(CandidateOrder.LONGEST_IDLE)
            assert view is not None
            view.id = "bob"  # type: ignore[misc]
            return RoutingDecision(("bob",), "forger", "renamed ann")

        def observe(self, outcome: RoutingOutcome) -> None:
            self.outcomes.append(outcome)

    r = _with_policy(Forger())
    (offer,) = of_type(r.enqueue(ContactSpec("c1", "q"), 2.0), Offer)
    assert offer.agent_ids == ("ann",) and offer.decision.fallback  # ann is idle longest
    assert offer.decision.reason.startswith("policy raised AttributeError")
    assert offer.decision.decided_by == "engine:longest-idle-agent"


def test_views_hand_out_read_only_mappings() -> None:
    # The request and views are named tuples and their mappings read-only proxies: a
    # strategy cannot change an agent's skills or a contact's needs in the engine.
    seen: list[RoutingRequest] = []

    class Peek:
        def route(self, request: RoutingRequest) -> RoutingDecision | None:
            seen.append(request)
            return None

        def observe(self, outcome: RoutingOutcome) -> None:
            return None

    team = TeamConfig("t1", (AgentConfig("ann", {"fr": 3}),))
    queue = QueueConfig("q", (TierConfig(("t1",)),), skills={"fr": 2})
    r = Checked(Router([queue], [team], policy=Peek()))
    r.login("ann", 0.0)
    r.enqueue(ContactSpec("c1", "q", attributes={"tier": "vip"}, skills={"fr": 3}), 1.0)
    (request,) = seen
    view = request.candidates.first(CandidateOrder.LONGEST_IDLE)
    assert view is not None and view.skills == {"fr": 3}
    contact = request.contact
    assert contact.skills == {"fr": 3} and contact.attributes == {"tier": "vip"}
    for mapping in (view.skills, contact.skills, contact.attributes):
        with pytest.raises(TypeError):
            mapping["fr"] = 10  # type: ignore[index]
    for obj, name in ((view, "id"), (contact, "priority"), (request, "queue")):
        with pytest.raises(AttributeError):
            setattr(obj, name, 1)
    r.enqueue(ContactSpec("c2", "q", skills={"fr": 4}), 2.0)  # ann has level 3 only
    assert r.waiting("q") == ["c2"]


def test_a_policy_without_outcome_observers_is_not_told_outcomes() -> None:
    class Quiet(Recorder):
        wants_outcomes = False

    quiet, loud = Quiet("ann"), Recorder("ann")
    for policy in (quiet, loud):
        r = _with_policy(policy)
        r.enqueue(ContactSpec("c1", "q"), 2.0)
        r.reject("ann", "c1", 3.0)  # then offered to bob, who accepts
        r.accept("bob", "c1", 4.0)
    assert quiet.outcomes == [] and len(quiet.requests) == 2
    assert [o.result for o in loud.outcomes] == [OfferResult.REJECTED, OfferResult.ACCEPTED]


def test_history_lists_the_very_state_changes_returned() -> None:
    r = make(("ann",))
    effects = r.enqueue(ContactSpec("c1", "q"), 1.0)
    effects += r.accept("ann", "c1", 2.0)
    effects += r.complete("c1", 3.0)
    changes = [(e.at, e.state, e.reason) for e in of_type(effects, AgentStateChanged)]
    assert changes == [
        (1.0, AgentState.RESERVED, "offered c1"),
        (2.0, AgentState.BUSY, "answered c1"),
        (3.0, AgentState.AVAILABLE, "completed c1"),
    ]
    assert [tuple(h) for h in r.agent_history("ann")][-3:] == changes


def test_history_limit_zero_keeps_none_and_changes_nothing_else() -> None:
    team = TeamConfig("t1", (AgentConfig("ann"),))
    queues = [QueueConfig("q", (TierConfig(("t1",)),))]
    runs = []
    for limit in (1000, 0):
        r = Router(queues, [team], history_limit=limit)
        effects = r.login("ann", 0.0)
        effects += r.enqueue(ContactSpec("c1", "q"), 1.0)
        effects += r.accept("ann", "c1", 2.0)
        effects += r.complete("c1", 3.0)
        runs.append((effects, r.agent_history("ann")))
    (kept, history), (same, none) = runs
    assert same == kept and len(history) == 4 and none == []


def test_a_negative_history_limit_is_rejected() -> None:
    team = TeamConfig("t1", (AgentConfig("ann"),))
    with pytest.raises(ConfigError, match="history_limit is -1: pass the entries to keep"):
        Router([QueueConfig("q", (TierConfig(("t1",)),))], [team], history_limit=-1)


def test_a_crashing_policy_never_loses_a_contact() -> None:
    r = _with_policy(Recorder(fail=True), strategy="ring-all")
    (offer,) = of_type(r.enqueue(ContactSpec("c1", "q"), 2.0), Offer)
    assert offer.agent_ids == ("ann", "bob")  # the built-in of the same name decided
    assert offer.decision.reason.startswith("policy raised RuntimeError: plugin crashed")
    assert r.trace("c1") == (offer.decision,)


def test_ring_progressively_skips_an_agent_that_is_no_longer_free() -> None:
    r = make(("ann", "bob", "cid"), strategy="ring-progressively", params={"delay": 5})
    assert offered(r.enqueue(ContactSpec("c1", "q"), 0.0)) == ["ann"]
    r.set_not_ready("bob", "lunch", 1.0)
    assert offered(r.tick(5.0)) == ["cid"]
    effects = r.reject("ann", "c1", 6.0)
    assert offered(effects) == []
    effects = r.tick(25.0)  # cid does not answer: nobody left, the contact waits
    assert r.waiting("q") == ["c1"]
    assert offered(r.set_ready("bob", 30.0)) == ["bob"]


def test_ring_all_rona_of_every_agent_requeues() -> None:
    r = make(("ann", "bob"), strategy="ring-all", offer_timeout=10.0)
    assert offered(r.enqueue(ContactSpec("c1", "q"), 0.0)) == ["ann", "bob"]
    effects = r.tick(10.0)
    assert len(of_type(effects, OfferWithdrawn)) == 2 and r.waiting("q") == ["c1"]


def test_estimated_wait_and_stats() -> None:
    r = make(("ann", "bob"), expected_handle_time=120.0)
    for n in range(4):
        r.enqueue(ContactSpec(f"c{n}", "q"), float(n))
    r.accept("ann", "c0", 4.0)
    assert r.position("c2") == 1 and r.estimated_wait("c2") == 60.0
    assert r.estimated_wait("c3") == 120.0 and r.estimated_wait("c1") == 0.0
    r.complete("c0", 64.0)  # handle time 60 s now known
    r.accept("ann", "c2", 64.0)
    assert r.estimated_wait("c3") == 30.0
    stats = r.queue_stats("q", 70.0)
    assert stats.waiting == 1 and stats.offering == 1 and stats.longest_wait == 67.0
    assert stats.agents == {AgentState.BUSY: 1, AgentState.RESERVED: 1}


def test_preview_changes_nothing() -> None:
    r = make(("ann", "bob"))
    record = r.preview(ContactSpec("c1", "q"), 1.0)
    assert record is not None and record.agent_ids == ("ann",)
    assert r.contacts() == [] and r.agent_state("ann") is AgentState.AVAILABLE


def _errors() -> Iterator[tuple[str, Any, type[AcdError], str]]:
    yield (
        "unknown queue",
        lambda r: r.enqueue(ContactSpec("x", "nope"), 1.0),
        UnknownQueueError,
        "unknown queue 'nope'",
    )
    yield (
        "duplicate",
        lambda r: r.enqueue(ContactSpec("c1", "q"), 1.0),
        DuplicateContactError,
        "already in the router",
    )
    yield (
        "unknown agent",
        lambda r: r.login("zed", 1.0),
        UnknownAgentError,
        "add the agent to an AgentTeam",
    )
    yield "not in team", lambda r: r.login("loner", 1.0), AgentNotInTeamError, "not in any team"
    yield (
        "withdrawn",
        lambda r: r.accept("bob", "c1", 1.0),
        OfferWithdrawnError,
        "not being offered to agent 'bob'",
    )
    yield "not ringing", lambda r: r.reject("ann", "c2", 1.0), OfferWithdrawnError, "withdrawn"
    yield "unknown contact", lambda r: r.abandon("zz", 1.0), UnknownContactError, "unknown contact"
    yield "answered", lambda r: r.abandon("c0", 1.0), ContactStateError, "complete()"
    yield "not answered", lambda r: r.complete("c2", 1.0), ContactStateError, "abandon()"
    yield "time", lambda r: r.tick(0.5), ClockError, "time only moves forward"
    yield "nan", lambda r: r.tick(float("nan")), ClockError, "finite"
    yield (
        "channel",
        lambda r: r.enqueue(ContactSpec("x", "q", channel=Channel.CHAT), 1.0),
        ContactStateError,
        "serves voice",
    )
    yield (
        "level",
        lambda r: r.enqueue(ContactSpec("x", "q", skills={"a": 0}), 1.0),
        ContactStateError,
        "ints >= 1",
    )
    yield (
        "future",
        lambda r: r.enqueue(ContactSpec("x", "q", enqueued_at=9.0), 1.0),
        ContactStateError,
        "<= now",
    )
    yield (
        "queued before enqueued",
        lambda r: r.enqueue(ContactSpec("x", "q", enqueued_at=0.5, queued_at=0.2), 1.0),
        ContactStateError,
        "between",
    )
    yield "logout busy", lambda r: r.logout("bob", 1.0), AgentStateError, "contacts in progress"
    yield "login twice", lambda r: r.login("ann", 1.0), AgentStateError, "already logged in"
    yield "move same", lambda r: r.move("c2", "q", 1.0), ContactStateError, "already in queue"
    yield "move answered", lambda r: r.move("c0", "q", 1.0), ContactStateError, "transfer it"
    yield (
        "empty id",
        lambda r: r.enqueue(ContactSpec("", "q"), 1.0),
        ContactStateError,
        "non-empty string id",
    )
    yield (
        "id not a string",
        lambda r: r.enqueue(ContactSpec(7, "q"), 1.0),  # type: ignore[arg-type]
        ContactStateError,
        "contact id is 7",
    )
    yield (
        "id not hashable",
        lambda r: r.enqueue(ContactSpec(["x"], "q"), 1.0),  # type: ignore[arg-type]
        ContactStateError,
        "non-empty string id",
    )
    yield (
        "preview, id not a string",
        lambda r: r.preview(ContactSpec(7, "q"), 1.0),  # type: ignore[arg-type]
        ContactStateError,
        "contact id is 7",
    )
    yield (
        "skill level not an int",
        lambda r: r.enqueue(ContactSpec("x", "q", skills={"en": 1.5}), 1.0),  # type: ignore[dict-item]
        ContactStateError,
        "is 1.5: levels are ints",
    )


@pytest.mark.parametrize(
    ("what", "call", "error", "message"), list(_errors()), ids=[e[0] for e in _errors()]
)
def test_bad_input_raises_a_typed_error_and_changes_nothing(
    what: str, call: Any, error: type[AcdError], message: str
) -> None:
    team = TeamConfig("t1", (AgentConfig("ann"), AgentConfig("bob")))
    router = Router(
        [QueueConfig("q", (TierConfig(("t1",)),))], [team], roster=[AgentConfig("loner")]
    )
    r = Checked(router)
    r.login("ann", 0.0)
    r.login("bob", 0.0)
    r.enqueue(ContactSpec("c0", "q"), 0.0)
    r.accept("ann", "c0", 1.0)
    r.enqueue(ContactSpec("c1", "q"), 1.0)
    r.accept("bob", "c1", 1.0)
    r.enqueue(ContactSpec("c2", "q"), 1.0)  # waits: both agents busy
    before = (
        r.contacts(),
        r.waiting("q"),
        r.agent_history("ann"),
        r.agent_history("bob"),
        r.next_deadline(),
    )
    with pytest.raises(error, match=message):
        call(r)
    after = (
        r.contacts(),
        r.waiting("q"),
        r.agent_history("ann"),
        r.agent_history("bob"),
        r.next_deadline(),
    )
    assert after == before
    assert issubclass(error, AcdError)


@pytest.mark.parametrize(
    ("queues", "teams", "message"),
    [
        ([QueueConfig("q", ())], [], "tiers is empty"),
        ([QueueConfig("q", (TierConfig(("ghost",)),))], [], "unknown team 'ghost'"),
        (
            [QueueConfig("q", (TierConfig(("t",), 10), TierConfig(("u",), 5)))],
            [TeamConfig("t", ()), TeamConfig("u", ())],
            "must not decrease",
        ),
        ([QueueConfig("q", (TierConfig(("t",)),), max_wait=0)], [TeamConfig("t", ())], "max_wait"),
        (
            [
                QueueConfig(
                    "q", (TierConfig(("t",)),), overflow=OverflowConfig(OverflowAction.VOICEMAIL)
                )
            ],
            [TeamConfig("t", ())],
            "set max_wait",
        ),
        (
            [
                QueueConfig(
                    "q",
                    (TierConfig(("t",)),),
                    max_wait=5,
                    overflow=OverflowConfig(OverflowAction.QUEUE, "nope"),
                )
            ],
            [TeamConfig("t", ())],
            "name an existing queue",
        ),
        (
            [QueueConfig("q", (TierConfig(("t",)),)), QueueConfig("q", (TierConfig(("t",)),))],
            [TeamConfig("t", ())],
            "defined twice",
        ),
        (
            [QueueConfig("q", (TierConfig(("t",)),))],
            [TeamConfig("t", (AgentConfig("a", {"x": 1}),)), TeamConfig("u", (AgentConfig("a"),))],
            "one configuration",
        ),
        (
            [QueueConfig("q", (TierConfig(("t",)),), skills={"x": 0})],
            [TeamConfig("t", ())],
            "levels are integers",
        ),
        (
            [
                QueueConfig(
                    "q", (TierConfig(("t",)),), strategy="ring-progressively", params={"delay": -1}
                )
            ],
            [TeamConfig("t", ())],
            "'delay'",
        ),
        (
            [QueueConfig("q", (TierConfig(("t",)),), priority=1.5)],  # type: ignore[arg-type]
            [TeamConfig("t", ())],
            "'q'.priority is 1.5: use an integer",
        ),
    ],
)
def test_bad_config_is_rejected_naming_the_field(
    queues: list[QueueConfig], teams: list[TeamConfig], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Router(queues, teams)


def test_rona_of_one_chat_sends_the_agents_other_ringing_chats_back() -> None:
    """Found by the state machine: a NotReady agent must not keep ringing."""
    chat_agent = AgentConfig("ann", capacity={Channel.CHAT: 2})
    queue = QueueConfig("chat", (TierConfig(("t1",)),), channel=Channel.CHAT, offer_timeout=10.0)
    r = Checked(Router([queue], [TeamConfig("t1", (chat_agent,))]))
    r.login("ann", 0.0)
    assert offered(r.enqueue(ContactSpec("x1", "chat"), 0.0)) == ["ann"]
    assert offered(r.enqueue(ContactSpec("x2", "chat"), 5.0)) == ["ann"]
    effects = r.tick(10.0)
    assert {e.contact_id for e in of_type(effects, OfferWithdrawn)} == {"x1", "x2"}
    assert r.agent_state("ann") is AgentState.NOT_READY
    assert r.waiting("chat") == ["x1", "x2"]


def test_a_reenqueue_after_restart_keeps_place_escalation_and_max_wait() -> None:
    r = make(("ann",), second=("dan",), delay=30.0, max_wait=100.0, login=False)
    r.login("ann", 0.0)
    r.enqueue(ContactSpec("busy", "q"), 0.0)
    r.accept("ann", "busy", 0.0)
    r.enqueue(ContactSpec("new", "q"), 50.0)
    r.enqueue(ContactSpec("old", "q", enqueued_at=10.0, queued_at=20.0), 50.0)
    assert r.waiting("q") == ["old", "new"]  # its original time keeps its place
    assert r.next_deadline() == 80.0  # only "new" has a tier still to reach (50 + 30 s)
    effects = r.login("dan", 51.0)
    assert [e.contact_id for e in of_type(effects, Offer)] == ["old"]
    r.reject("dan", "old", 52.0)
    (ended,) = of_type(r.tick(120.0), ContactEnded)  # max wait counts from queued_at 20
    assert ended.contact_id == "old" and ended.reason is EndReason.TIMED_OUT and ended.at == 120.0
