"""Each built-in strategy on hand-made candidates (docs/routing.md has them in the engine)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from callmesh.acd.strategies import (
    BUILTIN_STRATEGIES,
    BuiltinRoutingPolicy,
    IndexedStrategy,
    RandomAgent,
    _seconds,
    check_params,
)
from callmesh.acd.strategy import (
    AgentView,
    CandidateOrder,
    Channel,
    ContactView,
    OfferResult,
    RoutingDecision,
    RoutingOutcome,
    RoutingRequest,
)


class Sorted:
    """A CandidateSet over a list, sorting on every call (the engine's orders, by tier)."""

    def __init__(self, agents: Sequence[AgentView], last: tuple[int, int] | None = None) -> None:
        self._agents = list(agents)
        self._last = last

    @property
    def last_position(self) -> tuple[int, int] | None:
        return self._last

    def __iter__(self) -> Iterator[AgentView]:
        return iter(self._agents)

    def __contains__(self, agent_id: object) -> bool:
        return any(a.id == agent_id for a in self._agents)

    def get(self, agent_id: str) -> AgentView | None:
        return next((a for a in self._agents if a.id == agent_id), None)

    def ordered(self, order: CandidateOrder, skill: str | None = None) -> Iterator[AgentView]:
        keys: dict[CandidateOrder, Callable[[AgentView], Any]] = {
            CandidateOrder.LONGEST_IDLE: lambda a: (a.tier, a.idle_since, a.id),
            CandidateOrder.TIER_POSITION: lambda a: (a.tier, a.position),
            CandidateOrder.FEWEST_CALLS: lambda a: (a.tier, a.calls_handled, a.idle_since),
            CandidateOrder.LEAST_TALK_TIME: lambda a: (a.tier, a.talk_time, a.idle_since),
            CandidateOrder.SKILL_LEVEL: lambda a: (a.tier, -a.skills[skill or ""], a.idle_since),
        }
        pool = [
            a for a in self._agents if order is not CandidateOrder.SKILL_LEVEL or skill in a.skills
        ]
        return iter(sorted(pool, key=keys[order]))

    def first(self, order: CandidateOrder, skill: str | None = None) -> AgentView | None:
        return next(self.ordered(order, skill), None)

    def best(self, key: Callable[[AgentView], Any]) -> AgentView | None:
        return min(self._agents, key=lambda a: (key(a), a.id), default=None)


def agent(
    agent_id: str,
    *,
    tier: int = 1,
    position: int = 0,
    idle: float = 0.0,
    calls: int = 0,
    talk: float = 0.0,
    skills: dict[str, int] | None = None,
) -> AgentView:
    return AgentView(agent_id, skills or {}, idle, calls, talk, "team", tier, position)


def request(
    strategy: str,
    agents: Sequence[AgentView],
    *,
    skills: dict[str, int] | None = None,
    params: dict[str, object] | None = None,
    last: tuple[int, int] | None = None,
    contact_last: tuple[int, int] | None = None,
    seed: int = 0,
) -> RoutingRequest:
    contact = ContactView(
        "c1", Channel.VOICE, 0, {}, skills or {}, "q", 0.0, 1 if contact_last else 0, contact_last
    )
    return RoutingRequest(
        contact, "q", strategy, params or {}, Sorted(agents, last), 100.0, random.Random(seed)
    )


def choose(strategy: str, agents: Sequence[AgentView], **kw: Any) -> RoutingDecision | None:
    return BUILTIN_STRATEGIES[strategy].choose(request(strategy, agents, **kw))


TEAM = [
    agent("ann", position=0, idle=30),
    agent("bob", position=1, idle=10),
    agent("cid", position=2, idle=20),
]


def test_all_ten_strategies_are_registered_under_their_mod_callcenter_names() -> None:
    assert set(BUILTIN_STRATEGIES) == {
        "ring-all",
        "longest-idle-agent",
        "round-robin",
        "top-down",
        "agent-with-least-talk-time",
        "agent-with-fewest-calls",
        "sequentially-by-agent-order",
        "random",
        "ring-progressively",
        "skills-best-match",
    }
    for name, strategy in BUILTIN_STRATEGIES.items():
        assert strategy.name == name
        assert strategy.choose(request(name, [])) is None, f"{name} chose from nobody"


def test_longest_idle_prefers_lower_tier_over_idle_time() -> None:
    agents = [agent("old", tier=2, idle=0), agent("new", tier=1, idle=50), agent("mid", idle=40)]
    decision = choose("longest-idle-agent", agents)
    assert decision is not None and decision.agent_ids == ("mid",)
    assert decision.decided_by == "longest-idle-agent"
    assert "idle 60 s" in decision.reason


@pytest.mark.parametrize(("idle", "shown"), [(0.5, 1), (2.5, 3), (59.25, 59), (59.5, 60)])
def test_a_reason_shows_whole_seconds_rounded_half_up(idle: float, shown: int) -> None:
    decision = choose("longest-idle-agent", [agent("a", idle=100.0 - idle)])  # now is 100
    assert decision is not None and decision.reason == f"idle {shown} s, tier 1"
    assert _seconds(0.49999999999999994) == 0  # just under a half: down (x + 0.5 gives 1.0)


def test_least_talk_time_and_fewest_calls() -> None:
    agents = [
        agent("a", talk=90, calls=1),
        agent("b", talk=30, calls=5),
        agent("c", talk=60, calls=2),
    ]
    assert choose("agent-with-least-talk-time", agents) == RoutingDecision(
        ("b",), "agent-with-least-talk-time", "talk time 30 s, tier 1"
    )
    decision = choose("agent-with-fewest-calls", agents)
    assert decision is not None and decision.agent_ids == ("a",)


def test_sequentially_always_takes_the_top() -> None:
    decision = choose("sequentially-by-agent-order", TEAM, contact_last=(1, 0))
    assert decision is not None and decision.agent_ids == ("ann",)


@pytest.mark.parametrize(
    ("contact_last", "expected"),
    [(None, "ann"), ((1, 0), "bob"), ((1, 1), "cid"), ((1, 2), "ann")],
)
def test_top_down_continues_after_the_contacts_last_agent(
    contact_last: tuple[int, int] | None, expected: str
) -> None:
    decision = choose("top-down", TEAM, contact_last=contact_last)
    assert decision is not None and decision.agent_ids == (expected,)


def test_top_down_moves_on_to_the_next_tier() -> None:
    agents = [*TEAM, agent("dan", tier=2, position=0)]
    decision = choose("top-down", agents, contact_last=(1, 2))
    assert decision is not None and decision.agent_ids == ("dan",)


@pytest.mark.parametrize(
    ("last", "expected"),
    [(None, "ann"), ((1, 0), "bob"), ((1, 1), "cid"), ((1, 2), "ann"), ((2, 5), "ann")],
)
def test_round_robin_follows_the_queue_cursor_and_wraps(
    last: tuple[int, int] | None, expected: str
) -> None:
    decision = choose("round-robin", TEAM, last=last)
    assert decision is not None and decision.agent_ids == (expected,)


def test_random_is_seeded_and_stays_in_the_first_tier() -> None:
    agents = [*TEAM, agent("dan", tier=2)]
    picks = {seed: choose("random", agents, seed=seed) for seed in range(30)}
    assert {d.agent_ids[0] for d in picks.values() if d} == {"ann", "bob", "cid"}
    assert picks[3] == choose("random", agents, seed=3)
    strategy = RandomAgent()
    assert strategy.choose(request("random", [agent("only", tier=2)])) == RoutingDecision(
        ("only",), "random", "random among 1 in tier 2"
    )


def test_ring_all_rings_every_candidate_by_tier_and_position() -> None:
    agents = [agent("dan", tier=2), *reversed(TEAM)]
    decision = choose("ring-all", agents)
    assert decision is not None
    assert decision.agent_ids == ("ann", "bob", "cid", "dan")
    assert decision.progressive_delay is None


def test_ring_progressively_carries_its_delay() -> None:
    decision = choose("ring-progressively", TEAM, params={"delay": 4})
    assert decision is not None
    assert decision.agent_ids == ("ann", "bob", "cid") and decision.progressive_delay == 4.0
    default = choose("ring-progressively", TEAM)
    assert default is not None and default.progressive_delay == 10.0


@pytest.mark.parametrize("bad", [0, -1, "5", True, float("nan")])
def test_ring_progressively_rejects_a_bad_delay(bad: object) -> None:
    with pytest.raises(ValueError, match="'delay'"):
        check_params("ring-progressively", {"delay": bad})


def test_skills_best_match_level_then_idle() -> None:
    agents = [
        agent("ann", skills={"billing": 3}, idle=0),
        agent("bob", skills={"billing": 7}, idle=20),
        agent("cid", skills={"billing": 7}, idle=10),
        agent("dan", skills={"sales": 9}),
    ]
    decision = choose("skills-best-match", agents, skills={"billing": 1})
    assert decision == RoutingDecision(("cid",), "skills-best-match", "billing level 7")


def test_skills_best_match_key_skill_is_the_highest_minimum_or_the_param() -> None:
    agents = [
        agent("ann", skills={"billing": 9, "french": 2}),
        agent("bob", skills={"billing": 2, "french": 8}),
    ]
    contact_skills = {"billing": 1, "french": 2}
    decision = choose("skills-best-match", agents, skills=contact_skills)
    assert decision is not None and decision.agent_ids == ("bob",)  # french needs more
    decision = choose(
        "skills-best-match", agents, skills=contact_skills, params={"skill": "billing"}
    )
    assert decision is not None and decision.agent_ids == ("ann",)
    decision = choose("skills-best-match", [agent("x", idle=5), agent("y", idle=1)])
    assert decision is not None and decision.agent_ids == ("y",)
    with pytest.raises(ValueError, match="'skill'"):
        check_params("skills-best-match", {"skill": 3})


def test_builtin_policy_maps_names_and_counts_outcomes() -> None:
    policy = BuiltinRoutingPolicy()
    assert policy.route(request("no-such-strategy", TEAM)) is None
    decision = policy.route(request("longest-idle-agent", TEAM))
    assert decision is not None and decision.agent_ids == ("bob",)
    policy.observe(RoutingOutcome("c1", "q", "bob", OfferResult.ACCEPTED, "x", 1.0))
    assert policy.outcomes == {OfferResult.ACCEPTED: 1}


class _ViaViews:
    """The built-in strategies through the contract only: ``route`` hands them a candidate
    set that is not the engine's (so they read views), and no direct strategies."""

    class Proxy:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    def route(self, request: RoutingRequest) -> RoutingDecision | None:
        proxied = RoutingRequest(*request[:4], self.Proxy(request.candidates), *request[5:])
        return BUILTIN_STRATEGIES[request.strategy].choose(proxied)

    def observe(self, outcome: RoutingOutcome) -> None:
        pass


@pytest.mark.parametrize(
    "strategy",
    [
        "longest-idle-agent",
        "agent-with-least-talk-time",
        "agent-with-fewest-calls",
        "sequentially-by-agent-order",
    ],
)
def test_an_indexed_strategy_decides_in_the_engine_as_it_does_from_views(strategy: str) -> None:
    from callmesh.acd import (
        AgentConfig,
        ContactSpec,
        Offer,
        QueueConfig,
        Router,
        TeamConfig,
        TierConfig,
    )

    assert isinstance(BUILTIN_STRATEGIES[strategy], IndexedStrategy)
    agents = tuple(AgentConfig(a) for a in ("ann", "bob", "cid", "dan"))
    queues = [QueueConfig("q", (TierConfig(("t1",)), TierConfig(("t2",))), strategy=strategy)]
    teams = [TeamConfig("t1", agents[:3]), TeamConfig("t2", agents[3:])]
    decisions = []
    for policy in (BuiltinRoutingPolicy(), _ViaViews()):  # pick(), then choose() on views
        router = Router(queues, teams, policy=policy)  # type: ignore[arg-type]
        for i, a in enumerate(("dan", "cid", "ann", "bob")):
            router.login(a, float(i))
        made = []
        now = 10.0
        for n in range(12):  # two contacts at a time, uneven talk times
            now += 7.0
            effects = router.enqueue(ContactSpec(f"c{n}", "q"), now)
            (offer,) = [e for e in effects if isinstance(e, Offer)]
            router.accept(offer.agent_ids[0], f"c{n}", now)
            made.append(offer.decision)
            if n % 2:
                now += 3.0 * (n % 4) + 1.5
                router.complete(f"c{n - 1}", now)
                router.complete(f"c{n}", now + 2.5)
        decisions.append(made)
    indexed, via_views = decisions
    assert indexed == via_views
    assert len({d.agent_ids for d in indexed}) > 1 and all(not d.fallback for d in indexed)


def test_first_record_refuses_an_order_that_needs_a_skill() -> None:
    from callmesh.acd import AgentConfig, ContactSpec, QueueConfig, Router, TeamConfig, TierConfig

    seen: list[str] = []

    class Asks:
        def route(self, request: RoutingRequest) -> None:
            try:
                request.candidates.first_record(CandidateOrder.SKILL_LEVEL)  # type: ignore[attr-defined]
            except ValueError as exc:
                seen.append(str(exc))
            record = request.candidates.first_record(CandidateOrder.LONGEST_IDLE)  # type: ignore[attr-defined]
            seen.append(record.id)

        def observe(self, outcome: object) -> None:
            pass

    team = TeamConfig("t1", (AgentConfig("ann"),))
    router = Router([QueueConfig("q", (TierConfig(("t1",)),))], [team], policy=Asks())
    router.login("ann", 0.0)
    router.enqueue(ContactSpec("c1", "q"), 1.0)
    assert seen == ["first_record is for orders without a skill: use first()", "ann"]
