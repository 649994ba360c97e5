"""The manager as the ACD's RoutingPolicy: overrides, named strategies, isolation, fallback."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from callmesh.plugins import hookimpl
from callmesh.plugins.catalog import PluginCatalog
from callmesh.plugins.errors import PluginContractError
from callmesh.plugins.isolation import Isolation, PluginFailures
from callmesh.plugins.manager import FALLBACK_DECIDED_BY, PluginManager
from callmesh.plugins.testkit import make_agents, make_request

from callmesh.acd.strategy import (
    ContactView,
    OfferResult,
    RoutingDecision,
    RoutingOutcome,
    RoutingPolicy,
    RoutingRequest,
)

AGENTS = make_agents(6)
LONGEST_IDLE = min(AGENTS, key=lambda a: (a.tier, a.idle_since, a.id)).id


class Override:
    """Answers with whatever ``answer(request)`` returns."""

    answer: Callable[[RoutingRequest], object] = staticmethod(lambda request: None)

    @hookimpl
    def callmesh_route_contact(self, request: RoutingRequest) -> object:
        """Answer from the class attribute."""
        return type(self).answer(request)


def manager_with(
    answer: Callable[[RoutingRequest], object], **isolation: Any
) -> tuple[PluginManager, PluginFailures]:
    catalog = PluginCatalog(environ={}, entry_points=[])
    plugin = type("VendorOverride", (Override,), {"answer": staticmethod(answer)})
    catalog.add("vendor", plugin, source="tests")
    failures = PluginFailures()
    iso = Isolation(failures, **isolation)
    # a budget no busy test machine overruns (the default 20 ms did, once, under load);
    # the tests about budgets set their own
    manager = PluginManager(
        [{"name": "vendor"}],
        catalog=catalog,
        isolation=iso,
        budgets={"callmesh_route_contact": 5.0},
    )
    return manager, failures


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # let hung plugin threads finish


def test_manager_is_a_routing_policy() -> None:
    manager, _ = manager_with(lambda r: None)
    policy: RoutingPolicy = manager
    assert policy.route(make_request(AGENTS)) is not None


def test_override_answer_wins_and_is_attributed() -> None:
    manager, failures = manager_with(lambda r: RoutingDecision(("agent-3",), "vip", "gold"))
    decision = manager.route(make_request(AGENTS))
    assert decision is not None
    assert decision.agent_ids == ("agent-3",)
    assert decision.decided_by == "vendor:vip"
    assert failures.snapshot() == {}


def test_override_none_goes_to_the_queue_strategy() -> None:
    manager, failures = manager_with(lambda r: None)
    decision = manager.route(make_request(AGENTS, strategy="longest-idle-agent"))
    assert decision is not None and decision.agent_ids == (LONGEST_IDLE,)
    assert decision.decided_by == "longest-idle-agent"
    assert failures.snapshot() == {}


def _raise(request: RoutingRequest) -> object:
    raise RuntimeError("vendor bug")


def _hang(event: threading.Event) -> Callable[[RoutingRequest], object]:
    def hang(request: RoutingRequest) -> object:
        event.wait(10)
        return RoutingDecision(("agent-0",), "late", "too late")

    return hang


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (_raise, "raised"),
        (lambda r: "agent-1", "wrong-type"),
        (lambda r: RoutingDecision((), "x", "empty"), "invalid"),
        (lambda r: RoutingDecision(("ghost",), "x", "unknown agent"), "invalid"),
        (lambda r: RoutingDecision(["agent-1"], "x", "a list"), "invalid"),  # type: ignore[arg-type]
    ],
    ids=["raises", "wrong-type", "empty", "unknown-agent", "not-a-tuple"],
)
def test_bad_override_is_rejected_counted_and_the_contact_still_routed(
    answer: Callable[[RoutingRequest], object], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    manager, failures = manager_with(answer)
    decision = manager.route(make_request(AGENTS))
    assert decision is not None and decision.agent_ids == (LONGEST_IDLE,)
    assert failures.count("vendor", "callmesh_route_contact", reason) == 1
    assert "'vendor'" in caplog.text and reason in caplog.text


def test_agent_not_available_is_rejected(callmesh_agents: list[Any]) -> None:
    # agent-5 exists in the team but is not a candidate now (e.g. Busy): not in the set.
    available = [a for a in AGENTS if a.id != "agent-5"]
    manager, failures = manager_with(lambda r: RoutingDecision(("agent-5",), "x", "busy one"))
    decision = manager.route(make_request(available))
    assert decision is not None and decision.agent_ids != ("agent-5",)
    assert failures.count("vendor", reason="invalid") == 1


def test_hung_override_times_out_and_the_fallback_decides(release: threading.Event) -> None:
    manager, failures = manager_with(_hang(release))
    manager.budgets["callmesh_route_contact"] = 0.02
    manager._route_budget = 0.02
    decision = manager.route(make_request(AGENTS))
    assert decision is not None and decision.agent_ids == (LONGEST_IDLE,)
    assert failures.count("vendor", reason="timeout") == 1


def test_a_plugin_hanging_every_call_saturates_its_lane_then_its_circuit_opens(
    release: threading.Event,
) -> None:
    manager, failures = manager_with(_hang(release), lane_size=2, trip_after=4, cooldown=60)
    # Long enough for a loaded machine to start each hung call on its lane thread: a call
    # that overran its budget before it even started is cancelled and frees its thread.
    manager._route_budget = 0.25
    for _ in range(10):
        assert manager.route(make_request(AGENTS)) is not None
    assert failures.count("vendor", reason="timeout") == 2  # one per lane thread
    assert failures.count("vendor", reason="saturated") == 2  # then refused at once
    assert manager.isolation.is_open("vendor")
    assert failures.count("vendor", reason="circuit-open") == 6


def test_circuit_closes_after_the_cooldown() -> None:
    now = [0.0]
    calls = []

    def flaky(request: RoutingRequest) -> object:
        calls.append(1)
        if len(calls) <= 3:
            raise RuntimeError("down")
        return RoutingDecision(("agent-2",), "x", "back")

    manager, failures = manager_with(flaky, trip_after=3, cooldown=5, clock=lambda: now[0])
    for _ in range(5):
        manager.route(make_request(AGENTS))
    assert len(calls) == 3 and failures.count(reason="circuit-open") == 2
    now[0] = 6.0
    decision = manager.route(make_request(AGENTS))
    assert decision is not None and decision.agent_ids == ("agent-2",)


def test_unknown_strategy_name_uses_the_fallback(caplog: pytest.LogCaptureFixture) -> None:
    manager = PluginManager(catalog=PluginCatalog(environ={}, entry_points=[]))
    decision = manager.route(make_request(AGENTS, strategy="no-such-strategy"))
    assert decision is not None and decision.agent_ids == (LONGEST_IDLE,)
    assert "no-such-strategy" in caplog.text
    # The trace says it was the fallback, and why: the name, and the names that exist.
    assert decision.decided_by == "routing:fallback:longest-idle-agent"
    why, fell_back = decision.reason.split("; fell back: ")
    assert why.startswith("no enabled plugin registers strategy 'no-such-strategy' (registered: ")
    assert "longest-idle-agent, random, ring-all" in why
    assert fell_back.startswith("idle ")  # longest-idle-agent's own reason
    caplog.clear()
    again = manager.route(make_request(AGENTS, strategy="no-such-strategy"))
    assert again == decision and not caplog.text  # warned once; every decision still says why


def test_fallback_is_skills_best_match_when_skills_are_required() -> None:
    manager = PluginManager(catalog=PluginCatalog(environ={}, entry_points=[]))
    contact = ContactView("c", "voice", 0, {}, {"sales": 1}, "q", 0.0)  # type: ignore[arg-type]
    agents = [a for a in AGENTS if "sales" in a.skills]
    decision = manager.route(make_request(agents, contact=contact, strategy="nope"))
    best = min(agents, key=lambda a: (a.tier, -a.skills["sales"], a.idle_since, a.id))
    assert decision is not None and decision.agent_ids == (best.id,)
    assert decision.decided_by == "routing:fallback:skills-best-match"
    assert decision.reason.endswith(f"; fell back: sales level {best.skills['sales']}")


class VendorStrategy:
    """Registers a strategy that picks whatever ``pick`` says."""

    pick: Callable[[RoutingRequest], object] = staticmethod(lambda r: None)

    @hookimpl
    def callmesh_routing_strategies(self, register: Callable[[object], None]) -> None:
        """Register ``most-calls``."""
        owner = type(self)

        class MostCalls:
            name = "most-calls"

            def choose(self, request: RoutingRequest) -> object:
                return owner.pick(request)

        register(MostCalls())


def strategy_manager(
    pick: Callable[[RoutingRequest], object], **isolation: Any
) -> tuple[PluginManager, PluginFailures]:
    catalog = PluginCatalog(environ={}, entry_points=[])
    catalog.add("most", type("Most", (VendorStrategy,), {"pick": staticmethod(pick)}), source="t")
    manager = PluginManager(
        [{"name": "most"}],
        catalog=catalog,
        isolation=Isolation(PluginFailures(), **isolation),
        budgets={"callmesh_route_contact": 5.0},  # as in manager_with
    )
    return manager, manager.failures


def test_vendor_strategy_named_by_the_queue_decides() -> None:
    def most_calls(request: RoutingRequest) -> RoutingDecision:
        agent = max(request.candidates, key=lambda a: (a.calls_handled, a.id))
        return RoutingDecision((agent.id,), "most-calls", "busiest")

    manager, failures = strategy_manager(most_calls)
    decision = manager.route(make_request(AGENTS, strategy="most-calls"))
    expected = max(AGENTS, key=lambda a: (a.calls_handled, a.id)).id
    assert decision is not None and decision.agent_ids == (expected,)
    assert decision.decided_by == "most:most-calls"
    assert failures.snapshot() == {}


def test_vendor_strategy_answering_a_ghost_falls_back() -> None:
    manager, failures = strategy_manager(lambda r: RoutingDecision(("ghost",), "x", "?"))
    decision = manager.route(make_request(AGENTS, strategy="most-calls"))
    assert decision is not None and decision.agent_ids == (LONGEST_IDLE,)
    assert failures.count("most", reason="invalid") == 1
    assert decision.decided_by == "routing:fallback:longest-idle-agent"
    assert decision.reason.startswith(
        "strategy 'most-calls' of plugin 'most' was rejected: agent 'ghost' is not a candidate "
        "for contact 'contact-1' (unknown, not Available, no capacity or lacking a skill); "
        "fell back: idle "
    )


# -- the fallback's decisions say so, and why (for the call's trace) -------------------------
def _fell_back(decision: RoutingDecision | None) -> tuple[str, str]:
    """The cause in a fallback decision's reason, and the fallback strategy's own reason."""
    assert decision is not None and decision.agent_ids == (LONGEST_IDLE,)
    assert decision.decided_by == FALLBACK_DECIDED_BY + "longest-idle-agent"
    assert decision.fallback
    cause, own = decision.reason.split("; fell back: ")
    return cause, own


def test_vendor_strategy_that_raises_falls_back_saying_which_plugin_raised_what() -> None:
    manager, failures = strategy_manager(_raise)
    cause, own = _fell_back(manager.route(make_request(AGENTS, strategy="most-calls")))
    assert cause == "strategy 'most-calls' of plugin 'most' raised RuntimeError: vendor bug"
    assert own.startswith("idle ")
    assert failures.count("most", "callmesh_route_contact", "raised") == 1


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (lambda r: "agent-1", "answered str, not RoutingDecision"),
        (lambda r: RoutingDecision((), "x", "empty"), "agent_ids must be a non-empty tuple"),
    ],
    ids=["wrong-type", "empty"],
)
def test_vendor_strategy_answering_nonsense_falls_back_saying_what_was_wrong(
    answer: Callable[[RoutingRequest], object], problem: str
) -> None:
    manager, _ = strategy_manager(answer)
    cause, _ = _fell_back(manager.route(make_request(AGENTS, strategy="most-calls")))
    assert cause == f"strategy 'most-calls' of plugin 'most' was rejected: {problem}"


def test_vendor_strategy_that_hangs_falls_back_saying_it_overran(
    release: threading.Event,
) -> None:
    manager, failures = strategy_manager(_hang(release))
    manager._route_budget = 0.02
    cause, _ = _fell_back(manager.route(make_request(AGENTS, strategy="most-calls")))
    assert cause == (
        "strategy 'most-calls' of plugin 'most' gave no usable answer within its budget"
        " (overran 20 ms)"
    )
    assert failures.count("most", reason="timeout") == 1


def test_vendor_strategy_skipped_or_refused_falls_back_saying_so(
    release: threading.Event,
) -> None:
    manager, failures = strategy_manager(_raise, trip_after=2, cooldown=60)
    request = make_request(AGENTS, strategy="most-calls")
    for _ in range(2):
        manager.route(request)
    cause, _ = _fell_back(manager.route(request))
    assert cause.startswith("strategy 'most-calls' of plugin 'most' was skipped: ")
    assert cause.endswith("(circuit open)")
    assert failures.count("most", reason="circuit-open") == 1
    hung, failures = strategy_manager(_hang(release), lane_size=1, trip_after=0)
    hung._route_budget = 0.01
    hung.route(request)  # times out; its thread stays stuck
    cause, _ = _fell_back(hung.route(request))
    assert cause.startswith("strategy 'most-calls' of plugin 'most' was refused: ")
    assert cause.endswith("(saturated)")
    assert failures.count("most", reason="saturated") == 1


def test_vendor_strategy_without_an_opinion_lets_the_fallback_decide_and_is_no_failure() -> None:
    manager, failures = strategy_manager(lambda r: None)
    cause, _ = _fell_back(manager.route(make_request(AGENTS, strategy="most-calls")))
    assert cause == "strategy 'most-calls' of plugin 'most' made no decision"
    assert failures.snapshot() == {}


def test_builtin_strategy_that_raises_falls_back_saying_so() -> None:
    manager = PluginManager(catalog=PluginCatalog(environ={}, entry_points=[]))
    request = make_request(AGENTS, strategy="skills-best-match", params={"skill": 5})
    cause, _ = _fell_back(manager.route(request))
    assert cause == (
        "strategy 'skills-best-match' of plugin 'routing' raised ValueError: "
        "skills-best-match param 'skill' is 5: use a skill name"
    )
    assert manager.failures.count("routing", reason="raised") == 1


@pytest.mark.parametrize("trace", [False, True], ids=["hot-path", "traced"])
def test_builtin_decisions_are_the_strategys_own(
    trace: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if trace:
        monkeypatch.setenv("CALLMESH_TRACE_PLUGINS", "1")
    manager = PluginManager(catalog=PluginCatalog(environ={}, entry_points=[]))
    assert manager.isolation.trace is trace
    for name in ("longest-idle-agent", "round-robin", "ring-all"):
        request = make_request(AGENTS, strategy=name)
        expected = manager.strategies[name].strategy.choose(make_request(AGENTS, strategy=name))
        assert expected is not None and expected.decided_by == name
        assert manager.route(request) == expected  # not marked, nothing added to the reason
    # No candidate: the built-in answers None and the engine is told so; that is no failure.
    assert manager.route(make_request([])) is None
    assert manager.failures.snapshot() == {}


def test_direct_strategies_are_the_builtins_only_when_route_would_only_call_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The engine calls these itself, skipping route(): so never past an override, a
    vendor's strategy (re-validated, isolated) or the tracing of plugin calls."""
    manager = PluginManager(catalog=PluginCatalog(environ={}, entry_points=[]))
    builtin = {n for n, e in manager.strategies.items() if e.plugin == "routing"}
    assert "longest-idle-agent" in builtin and set(manager.direct_strategies) == builtin
    for name, strategy in manager.direct_strategies.items():
        assert strategy is manager.strategies[name].strategy
    vendor, _ = strategy_manager(lambda r: None)
    assert "most-calls" not in vendor.direct_strategies
    assert "longest-idle-agent" in vendor.direct_strategies
    overridden, _ = manager_with(lambda r: None)
    assert overridden.direct_strategies == {}
    monkeypatch.setenv("CALLMESH_TRACE_PLUGINS", "1")
    traced = PluginManager(catalog=PluginCatalog(environ={}, entry_points=[]))
    assert traced.direct_strategies == {}


def test_the_engine_trace_shows_the_fallback_and_why() -> None:
    from callmesh.plugins.testkit import RouterHarness

    manager, _ = strategy_manager(_raise)
    harness = RouterHarness(manager, AGENTS, strategy="most-calls")
    assert harness.offer() == ("agent-0",)  # all idle since login (t=0): lowest id
    (record,) = harness.router.trace("contact-1")
    assert record.decided_by == "routing:fallback:longest-idle-agent"
    assert record.reason.startswith("strategy 'most-calls' of plugin 'most' raised RuntimeError")
    assert record.fallback  # the policy's fallback decided: flagged in the trace (and KPIs)


def test_duplicate_strategy_names_are_refused() -> None:
    class Clash:
        @hookimpl
        def callmesh_routing_strategies(self, register: Callable[[object], None]) -> None:
            """Register a strategy whose name a built-in already uses."""
            register(type("S", (), {"name": "round-robin", "choose": lambda s, r: None})())

    catalog = PluginCatalog(environ={}, entry_points=[])
    catalog.add("clash", Clash, source="t")
    with pytest.raises(PluginContractError, match="'round-robin' is registered by both"):
        PluginManager([{"name": "clash"}], catalog=catalog)


def test_observers_hear_outcomes_off_the_routing_path() -> None:
    heard: list[RoutingOutcome] = []
    done = threading.Event()

    class Observer:
        @hookimpl
        def callmesh_routing_outcome(self, outcome: RoutingOutcome) -> None:
            """Remember it."""
            heard.append(outcome)
            done.set()

    catalog = PluginCatalog(environ={}, entry_points=[])
    catalog.add("observer", Observer, source="t")
    manager = PluginManager([{"name": "observer"}], catalog=catalog)
    outcome = RoutingOutcome("c", "q", "agent-1", OfferResult.ACCEPTED, "x", 1.0)
    manager.observe(outcome)
    assert done.wait(5)
    assert heard == [outcome]
    assert manager.wants_outcomes  # the engine builds outcomes for it
    assert not PluginManager(catalog=catalog).wants_outcomes  # nobody listens: none built


def test_decision_is_not_restamped_when_already_attributed() -> None:
    decision = RoutingDecision(("a",), "vendor", "r")
    assert PluginManager._stamp(decision, "vendor") is decision
    assert PluginManager._stamp(replace(decision, decided_by="vendor:x"), "vendor").decided_by == (
        "vendor:x"
    )


def test_inline_plugins_run_in_the_callers_thread_and_late_answers_are_discarded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CALLMESH_INLINE_PLUGINS", "vendor")
    threads: list[str] = []
    slow = [False]

    def answer(request: RoutingRequest) -> object:
        threads.append(threading.current_thread().name)
        if slow[0]:
            threading.Event().wait(0.05)
        return RoutingDecision(("agent-4",), "x", "inline")

    manager, failures = manager_with(answer)
    manager._route_budget = 0.02
    decision = manager.route(make_request(AGENTS))
    assert decision is not None and decision.agent_ids == ("agent-4",)
    assert threads == [threading.current_thread().name]
    slow[0] = True
    late = manager.route(make_request(AGENTS))
    assert late is not None and late.agent_ids == (LONGEST_IDLE,)
    assert failures.count("vendor", reason="timeout") == 1


def test_lane_plugins_run_off_the_callers_thread() -> None:
    threads: list[str] = []

    def answer(request: RoutingRequest) -> object:
        threads.append(threading.current_thread().name)
        return None

    manager, _ = manager_with(answer)
    manager.route(make_request(AGENTS))
    assert threads and threads[0].startswith("callmesh-plugin-vendor")


def test_a_failing_fallback_returns_none_for_the_engine_to_decide() -> None:
    manager = PluginManager(catalog=PluginCatalog(environ={}, entry_points=[]))
    contact = ContactView("c", "voice", 0, {}, {"sales": 1}, "q", 0.0)  # type: ignore[arg-type]
    request = make_request(AGENTS, contact=contact, strategy="nope", params={"skill": 5})
    assert manager.route(request) is None


def test_failures_reach_the_opentelemetry_counter() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    failures = PluginFailures(counter=meter.create_counter("callmesh.plugin.failures"))
    catalog = PluginCatalog(environ={}, entry_points=[])
    catalog.add("vendor", type("V", (Override,), {"answer": staticmethod(_raise)}), source="t")
    manager = PluginManager([{"name": "vendor"}], catalog=catalog, failures=failures)
    manager.route(make_request(AGENTS))
    manager.route(make_request(AGENTS))
    data = reader.get_metrics_data()
    points = [
        p
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "callmesh.plugin.failures"
        for p in m.data.data_points
    ]
    assert [(dict(p.attributes), p.value) for p in points] == [
        ({"plugin": "vendor", "hook": "callmesh_route_contact", "reason": "raised"}, 2)
    ]


def test_router_harness_routes_through_plugins(callmesh_router: Callable[..., Any]) -> None:
    catalog = PluginCatalog(environ={}, entry_points=[])
    vip = type(
        "Vip",
        (Override,),
        {
            "answer": staticmethod(
                lambda r: (
                    RoutingDecision(("agent-3",), "vip", "vip")
                    if r.contact.attributes.get("tier") == "vip"
                    else None
                )
            )
        },
    )
    catalog.add("vendor", vip, source="t")
    harness = callmesh_router([{"name": "vendor"}], catalog=catalog)
    assert harness.offer({"tier": "vip"}) == ("agent-3",)
    assert harness.offer() == ("agent-0",)  # all idle since login (t=0): lowest id
