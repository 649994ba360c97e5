"""The plugin test kit: pytest fixtures and a conformance suite for vendors' plugins.

Installed with callmesh as a pytest plugin (entry point ``pytest11: callmesh``), so in any
project that has callmesh installed::

    # tests/test_conformance.py
    from callmesh.plugins.testkit import PluginConformance

    class TestMyPlugin(PluginConformance):
        plugin_name = "my-plugin"                 # its entry-point name
        plugin_config = {"threshold": 3}          # a valid config for it
        sample_attributes = {"tier": ["vip", "gold", ""]}   # contact attributes worth trying

runs the suite against the installed plugin: found by its entry point, configured through the
same path as ``ContactCenter.spec.plugins``, every hook's answers valid for many generated
requests, within budget, and no failure counted by the manager.

Fixtures (for your own tests): ``callmesh_agents``, ``callmesh_contact``,
``callmesh_routing_request``, ``callmesh_interaction``, ``callmesh_scorecard``,
``callmesh_plugin_manager`` (a factory: ``callmesh_plugin_manager([{"name": ..., "config":
...}])``, closed after the test) and ``callmesh_router`` (a factory giving a
:class:`RouterHarness`: a real ACD Router with agents, deciding through your plugins). :class:`ListCandidates` is a complete
:class:`~callmesh.acd.strategy.CandidateSet` over a list of agents.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import pytest
from callmesh.plugins.catalog import PluginCatalog
from callmesh.plugins.errors import PluginConfigError
from callmesh.plugins.hookspecs import HOOKS
from callmesh.plugins.manager import PluginManager
from callmesh.plugins.types import (
    CallerQuery,
    CallerRecord,
    Criterion,
    CriterionScore,
    Interaction,
    PacingDecision,
    PacingRequest,
    Scorecard,
)

from callmesh.acd.strategy import (
    AgentView,
    CandidateOrder,
    Channel,
    ContactView,
    RoutingDecision,
    RoutingRequest,
)

__all__ = [
    "ListCandidates",
    "PluginConformance",
    "RouterHarness",
    "make_agents",
    "make_request",
    "random_request",
]

_ORDER_KEYS: dict[CandidateOrder, Callable[[AgentView], tuple[Any, ...]]] = {
    CandidateOrder.LONGEST_IDLE: lambda a: (a.tier, a.idle_since, a.id),
    CandidateOrder.TIER_POSITION: lambda a: (a.tier, a.position, a.id),
    CandidateOrder.FEWEST_CALLS: lambda a: (a.tier, a.calls_handled, a.idle_since, a.id),
    CandidateOrder.LEAST_TALK_TIME: lambda a: (a.tier, a.talk_time, a.idle_since, a.id),
}


class ListCandidates:
    """A :class:`~callmesh.acd.strategy.CandidateSet` over a plain list of agents.

    Orders follow the engine's: lowest tier first, then the order's key, then id. It sorts on
    each call, so it is for tests and examples, not for the hot path.
    """

    def __init__(
        self, agents: Sequence[AgentView], last_position: tuple[int, int] | None = None
    ) -> None:
        self._agents = {a.id: a for a in agents}
        self._last_position = last_position

    @property
    def last_position(self) -> tuple[int, int] | None:
        """``(tier, position)`` of the queue's last offer, if any."""
        return self._last_position

    def __iter__(self) -> Iterator[AgentView]:
        return iter(self._agents.values())

    def __len__(self) -> int:
        return len(self._agents)

    def __contains__(self, agent_id: object) -> bool:
        return agent_id in self._agents

    def get(self, agent_id: str) -> AgentView | None:
        """The candidate with this id, or None."""
        return self._agents.get(agent_id)

    def ordered(self, order: CandidateOrder, skill: str | None = None) -> Iterator[AgentView]:
        """Candidates in ``order`` (``skill`` for SKILL_LEVEL)."""
        if order is CandidateOrder.SKILL_LEVEL:
            if skill is None:
                raise ValueError("SKILL_LEVEL order needs a skill")
            return iter(
                sorted(
                    (a for a in self._agents.values() if skill in a.skills),
                    key=lambda a: (a.tier, -a.skills[skill], a.idle_since, a.id),
                )
            )
        return iter(sorted(self._agents.values(), key=_ORDER_KEYS[order]))

    def first(self, order: CandidateOrder, skill: str | None = None) -> AgentView | None:
        """The first candidate in ``order``, or None."""
        return next(self.ordered(order, skill), None)

    def best(self, key: Callable[[AgentView], Any]) -> AgentView | None:
        """The candidate with the smallest ``key`` (ties: smallest id)."""
        return min(self._agents.values(), key=lambda a: (key(a), a.id), default=None)


SKILLS = ("billing", "sales", "support", "french", "spanish")


def make_agents(n: int = 6, *, rng: random.Random | None = None) -> list[AgentView]:
    """``n`` agents with varied skills, idle times, tiers and counters (deterministic)."""
    rng = rng or random.Random(7)
    agents = []
    for i in range(n):
        skills = {s: rng.randint(1, 10) for s in rng.sample(SKILLS, rng.randint(1, 3))}
        agents.append(
            AgentView(
                id=f"agent-{i}",
                skills=skills,
                idle_since=float(rng.randint(0, 600)),
                calls_handled=rng.randint(0, 40),
                talk_time=float(rng.randint(0, 7200)),
                team="team-a" if i % 2 == 0 else "team-b",
                tier=1 + (i % 3 == 2),
                position=i,
            )
        )
    return agents


def make_request(
    agents: Sequence[AgentView],
    *,
    contact: ContactView | None = None,
    strategy: str = "longest-idle-agent",
    params: Mapping[str, object] | None = None,
    now: float = 1000.0,
    seed: int = 0,
) -> RoutingRequest:
    """A routing request over ``agents`` for ``contact`` (a plain voice contact by default)."""
    contact = contact or ContactView(
        id="contact-1",
        channel=Channel.VOICE,
        priority=0,
        attributes={},
        skills={},
        queue="support",
        enqueued_at=now - 30.0,
    )
    return RoutingRequest(
        contact=contact,
        queue=contact.queue,
        strategy=strategy,
        params=dict(params or {}),
        candidates=ListCandidates(agents),
        now=now,
        rng=random.Random(seed),
    )


def random_request(
    rng: random.Random,
    *,
    strategies: Sequence[str] = ("longest-idle-agent",),
    sample_attributes: Mapping[str, Sequence[str]] | None = None,
) -> RoutingRequest:
    """A varied request: 1..12 agents, optional skills, attributes drawn from the samples."""
    agents = make_agents(rng.randint(1, 12), rng=rng)
    attributes = {k: rng.choice(list(v)) for k, v in (sample_attributes or {}).items() if v}
    attributes = {k: v for k, v in attributes.items() if v}
    skills: dict[str, int] = {}
    if rng.random() < 0.5:
        pool = sorted({s for a in agents for s in a.skills})
        skill = rng.choice(pool)
        skills[skill] = min(a.skills.get(skill, 99) for a in agents)
        agents = [a for a in agents if a.skills.get(skill, 0) >= skills[skill]]
    contact = ContactView(
        id=f"contact-{rng.randint(1, 10**9)}",
        channel=Channel.VOICE,
        priority=rng.randint(0, 5),
        attributes=attributes,
        skills=skills,
        queue="support",
        enqueued_at=rng.uniform(0, 900),
        attempts=rng.randint(0, 2),
    )
    return make_request(
        agents, contact=contact, strategy=rng.choice(list(strategies)), seed=rng.randint(0, 99)
    )


def _interaction() -> Interaction:
    return Interaction(
        id="contact-1",
        channel="voice",
        queue="support",
        agent_id="agent-0",
        ani="+15555550100",
        started_at=1_700_000_000.0,
        ended_at=1_700_000_300.0,
        wait_seconds=25.0,
        talk_seconds=240.0,
        hold_seconds=35.0,
        transcript=(
            "agent: Thank you for calling, my name is Ana. How can I help?\n"
            "customer: My invoice is wrong.\n"
            "agent: I have fixed the invoice. Is there anything else?\n"
            "customer: No, thanks."
        ),
        disposition="resolved",
    )


def _scorecard() -> Scorecard:
    return Scorecard(
        name="standard",
        criteria=(
            Criterion(
                "greeting",
                "Agent thanks the caller",
                2.0,
                "keywords-any",
                {"words": ["thank you", "thanks for calling"], "speaker": "agent"},
            ),
            Criterion(
                "no-rudeness",
                "No rude words",
                3.0,
                "keywords-none",
                {"words": ["stupid", "shut up"]},
            ),
            Criterion("hold", "Hold under a minute", 1.0, "max-hold-seconds", {"seconds": 60}),
        ),
        pass_mark=80.0,
    )


class RouterHarness:
    """A real ACD :class:`~callmesh.acd.Router` whose policy is a :class:`PluginManager`.

    One team (``team-a``) of ``agents`` (all logged in and Available at t=0) serves one
    queue, ``support``, with ``strategy``. :meth:`offer` enqueues a contact and answers who
    the router offered it to, so a vendor can check their plugin inside the real engine.
    """

    def __init__(
        self,
        manager: PluginManager,
        agents: Sequence[AgentView],
        strategy: str = "longest-idle-agent",
        params: Mapping[str, object] | None = None,
    ) -> None:
        from callmesh.acd import AgentConfig, QueueConfig, Router, TeamConfig, TierConfig

        self.manager = manager
        team = TeamConfig("team-a", tuple(AgentConfig(a.id, dict(a.skills)) for a in agents))
        queue = QueueConfig(
            "support", (TierConfig(("team-a",)),), strategy=strategy, params=dict(params or {})
        )
        self.router = Router([queue], [team], policy=manager, seed=0)
        self.now = 0.0
        for agent in agents:
            self.router.login(agent.id, self.now)
        self._seq = 0

    def offer(
        self,
        attributes: Mapping[str, str] | None = None,
        skills: Mapping[str, int] | None = None,
        priority: int | None = None,
    ) -> tuple[str, ...]:
        """Enqueue a contact now (1 s after the previous one); the agent ids it was offered
        to, or ``()`` when it waits. The offer is left ringing."""
        from callmesh.acd import ContactSpec, Offer

        self._seq += 1
        self.now += 1.0
        spec = ContactSpec(
            f"contact-{self._seq}",
            "support",
            priority=priority,
            skills=dict(skills or {}),
            attributes=dict(attributes or {}),
        )
        for effect in self.router.enqueue(spec, self.now):
            if isinstance(effect, Offer):
                return effect.agent_ids
        return ()


# -- fixtures ------------------------------------------------------------------------------
@pytest.fixture
def callmesh_agents() -> list[AgentView]:
    """Six agents with varied skills, idle times, tiers and counters."""
    return make_agents(6)


@pytest.fixture
def callmesh_contact() -> ContactView:
    """A voice contact in queue ``support`` needing ``billing`` at level 3 or more."""
    return ContactView(
        id="contact-1",
        channel=Channel.VOICE,
        priority=0,
        attributes={"language": "en"},
        skills={"billing": 3},
        queue="support",
        enqueued_at=970.0,
    )


@pytest.fixture
def callmesh_routing_request(
    callmesh_agents: list[AgentView], callmesh_contact: ContactView
) -> RoutingRequest:
    """A request for ``callmesh_contact`` over the agents who have its skill."""
    agents = [a for a in callmesh_agents if a.skills.get("billing", 0) >= 3] or callmesh_agents
    contact = callmesh_contact if len(agents) < len(callmesh_agents) else None
    return make_request(agents, contact=contact, strategy="skills-best-match")


@pytest.fixture
def callmesh_interaction() -> Interaction:
    """A finished voice interaction with a transcript, 35 s of hold and 240 s of talk."""
    return _interaction()


@pytest.fixture
def callmesh_scorecard() -> Scorecard:
    """A three-criterion scorecard the built-in keyword scorer understands."""
    return _scorecard()


@pytest.fixture
def callmesh_plugin_manager() -> Iterator[Callable[..., PluginManager]]:
    """A factory: ``callmesh_plugin_manager(specs, **kwargs)``; managers closed afterwards."""
    made: list[PluginManager] = []

    def factory(specs: Sequence[object] = (), **kwargs: Any) -> PluginManager:
        manager = PluginManager(specs, **kwargs)
        made.append(manager)
        return manager

    yield factory
    for manager in made:
        asyncio.run(manager.aclose())


@pytest.fixture
def callmesh_router(
    callmesh_agents: list[AgentView],
) -> Iterator[Callable[..., RouterHarness]]:
    """A factory: ``callmesh_router(specs, strategy=..., params=..., agents=...)`` gives a
    :class:`RouterHarness` (a real Router deciding through a PluginManager of ``specs``)."""
    made: list[PluginManager] = []

    def factory(
        specs: Sequence[object] = (),
        *,
        strategy: str = "longest-idle-agent",
        params: Mapping[str, object] | None = None,
        agents: Sequence[AgentView] | None = None,
        **kwargs: Any,
    ) -> RouterHarness:
        manager = PluginManager(specs, **kwargs)
        made.append(manager)
        return RouterHarness(manager, agents or callmesh_agents, strategy, params)

    yield factory
    for manager in made:
        asyncio.run(manager.aclose())


# -- conformance ---------------------------------------------------------------------------
class PluginConformance:
    """Subclass as ``TestSomething(PluginConformance)`` and set the class attributes.

    Attributes:
        plugin_name: the plugin's entry-point name.
        plugin_config: a valid config for it (``{}`` if it takes none).
        sample_attributes: contact attribute values worth trying (so that routing overrides
            are exercised for the contacts they answer), name -> values.
        examples: how many generated requests each routing check uses.
    """

    plugin_name: ClassVar[str] = ""
    plugin_config: ClassVar[Mapping[str, object]] = {}
    sample_attributes: ClassVar[Mapping[str, Sequence[str]]] = {}
    examples: ClassVar[int] = 200

    def _manager(self) -> PluginManager:
        assert self.plugin_name, "set plugin_name on your PluginConformance subclass"
        return PluginManager([{"name": self.plugin_name, "config": dict(self.plugin_config)}])

    def _instance(self, manager: PluginManager) -> object:
        for enabled in manager.plugins:
            if enabled.plugin.info.name == self.plugin_name:
                return enabled.instance
        raise AssertionError(f"{self.plugin_name!r} is not enabled")  # pragma: no cover

    def test_discovered_by_entry_point(self) -> None:
        """The plugin is installed under the ``callmesh`` entry-point group and allowed."""
        catalog = PluginCatalog()
        why = catalog.refused.get(self.plugin_name) or catalog.excluded.get(self.plugin_name)
        assert self.plugin_name in catalog, why or (
            f"{self.plugin_name!r} is not installed (entry point group `callmesh`)"
        )
        info = catalog.info(self.plugin_name)
        assert not info.builtin
        assert info.version and info.source != "?"

    def test_configures_and_registers(self) -> None:
        """The config validates and every hook matches the contract (names, args, shapes)."""
        manager = self._manager()
        try:
            hooks = manager.hooks_of(self.plugin_name)
            assert hooks, f"{self.plugin_name!r} implements no callmesh hook"
            assert set(hooks) <= set(HOOKS)
        finally:
            asyncio.run(manager.aclose())

    def test_hooks_are_documented(self) -> None:
        """Every hook implementation has a docstring (it shows in `callmesh plugins list`)."""
        manager = self._manager()
        try:
            instance = self._instance(manager)
            for hook in manager.hooks_of(self.plugin_name):
                assert inspect.getdoc(getattr(instance, hook)), f"{hook} has no docstring"
        finally:
            asyncio.run(manager.aclose())

    def test_config_rejects_unknown_fields(self) -> None:
        """A misspelled config key is an error naming the field, not silently ignored."""
        loaded = PluginCatalog().load(self.plugin_name)
        if loaded.config_model is None:
            with pytest.raises(PluginConfigError, match=r"spec\.plugins\[0\]\.config"):
                PluginManager([{"name": self.plugin_name, "config": {"zz_typo": 1}}])
            return
        bad = {**self.plugin_config, "zz_typo": 1}
        with pytest.raises(PluginConfigError, match=r"spec\.plugins\[0\]\.config\.zz_typo"):
            PluginManager([{"name": self.plugin_name, "config": bad}])

    def test_routing_answers_are_valid_and_fast(self) -> None:
        """Overrides and strategies answer None or a decision among the candidates, in budget."""
        manager = self._manager()
        try:
            instance = self._instance(manager)
            hooks = manager.hooks_of(self.plugin_name)
            mine = [s for s in manager.strategies.values() if s.plugin == self.plugin_name]
            choosers: list[Callable[[RoutingRequest], object]] = [s.strategy.choose for s in mine]
            if "callmesh_route_contact" in hooks:
                choosers.append(instance.callmesh_route_contact)  # type: ignore[attr-defined]
            if not choosers:
                pytest.skip("the plugin has no routing hook")
            budget = HOOKS["callmesh_route_contact"].budget
            rng = random.Random(1234)
            answered = 0
            took: list[float] = []
            for _ in range(self.examples):
                request = random_request(rng, sample_attributes=self.sample_attributes)
                for choose in choosers:
                    # CPU time of this thread: a call descheduled on a busy machine is not
                    # the plugin's cost, while a plugin that computes too much still fails.
                    started = time.thread_time()
                    answer = choose(request)
                    took.append(time.thread_time() - started)
                    if answer is None:
                        continue
                    answered += 1
                    assert isinstance(answer, RoutingDecision), answer
                    assert isinstance(answer.agent_ids, tuple) and answer.agent_ids
                    for agent_id in answer.agent_ids:
                        assert agent_id in request.candidates, (agent_id, request)
                    again = choose(
                        RoutingRequest(
                            request.contact,
                            request.queue,
                            request.strategy,
                            request.params,
                            request.candidates,
                            request.now,
                            random.Random(request.rng.random()),
                        )
                    )
                    assert again is None or isinstance(again, RoutingDecision)
            # The 90th percentile, not the maximum: one call may still pay a page fault or a GC.
            p90 = sorted(took)[int(len(took) * 0.9)]
            assert p90 < budget / 2, (
                f"90% of calls take up to {p90 * 1e3:.1f} ms of CPU (budget {budget} s)"
            )
            assert answered, "no generated request got an answer; set sample_attributes"
        finally:
            asyncio.run(manager.aclose())

    def test_routing_through_manager_counts_no_failure(self) -> None:
        """Through the manager (isolation on), the plugin never fails and every contact routes."""
        manager = self._manager()
        try:
            names = [s for s, e in manager.strategies.items() if e.plugin == self.plugin_name]
            rng = random.Random(99)
            for _ in range(self.examples):
                request = random_request(
                    rng,
                    strategies=names or ("longest-idle-agent",),
                    sample_attributes=self.sample_attributes,
                )
                decision = manager.route(request)
                assert decision is not None
                assert all(a in request.candidates for a in decision.agent_ids)
            assert manager.failures.count(self.plugin_name) == 0, manager.failures.snapshot()
        finally:
            asyncio.run(manager.aclose())

    def test_routes_inside_the_real_router(self) -> None:
        """In the ACD engine itself, every contact is offered and the plugin never fails."""
        manager = self._manager()
        try:
            names = [s for s, e in manager.strategies.items() if e.plugin == self.plugin_name]
            rng = random.Random(3)
            for strategy in names or ["longest-idle-agent"]:
                harness = RouterHarness(manager, make_agents(12, rng=rng), strategy)
                for _ in range(10):
                    attributes = {
                        k: rng.choice(list(v)) for k, v in self.sample_attributes.items() if v
                    }
                    offered = harness.offer({k: v for k, v in attributes.items() if v})
                    assert offered, f"a contact was not offered with strategy {strategy!r}"
            assert manager.failures.count(self.plugin_name) == 0, manager.failures.snapshot()
        finally:
            asyncio.run(manager.aclose())

    def test_async_hooks_answer_the_contract(self) -> None:
        """CRM, QA and notification hooks answer the right types within their budgets."""
        manager = self._manager()

        async def run() -> None:
            instance = self._instance(manager)
            hooks = manager.hooks_of(self.plugin_name)
            if "callmesh_crm_lookup" in hooks:
                query = CallerQuery("contact-1", "voice", "+15555550100")
                fn = instance.callmesh_crm_lookup  # type: ignore[attr-defined]
                record = await asyncio.wait_for(fn(query), HOOKS["callmesh_crm_lookup"].budget)
                assert record is None or isinstance(record, CallerRecord)
            if "callmesh_qa_score" in hooks:
                card = _scorecard()
                fn = instance.callmesh_qa_score  # type: ignore[attr-defined]
                scores = await asyncio.wait_for(
                    fn(_interaction(), card), HOOKS["callmesh_qa_score"].budget
                )
                ids = {c.id for c in card.criteria}
                for score in scores or ():
                    assert isinstance(score, CriterionScore) and score.criterion_id in ids
                    assert 0.0 <= score.score <= 1.0

        try:
            asyncio.run(run())
        finally:
            asyncio.run(manager.aclose())

    def test_pacing_answers_the_contract(self) -> None:
        """Pacing answers None or a non-negative PacingDecision within budget."""
        manager = self._manager()
        try:
            if "callmesh_dialer_pace" not in manager.hooks_of(self.plugin_name):
                pytest.skip("the plugin has no pacing hook")
            instance = self._instance(manager)
            rng = random.Random(5)
            for _ in range(self.examples):
                request = PacingRequest(
                    "campaign",
                    "predictive",
                    0.0,
                    rng.randint(0, 20),
                    rng.randint(0, 10),
                    rng.randint(0, 500),
                    rng.random(),
                    rng.random() * 0.1,
                )
                answer = instance.callmesh_dialer_pace(request)  # type: ignore[attr-defined]
                assert answer is None or (isinstance(answer, PacingDecision) and answer.calls >= 0)
        finally:
            asyncio.run(manager.aclose())
