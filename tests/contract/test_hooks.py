"""The hook contract: every hook documented, referenced, and tested here by name.

``test_every_hook_has_a_test`` fails when a hook in hookspecs.py has no
``test_hook_<name>`` below (datasette's test_plugin_hooks_have_tests); the reference page in
docs/plugins/ must equal what ``callmesh plugins reference`` generates.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from callmesh.plugins import hookimpl, hookspecs
from callmesh.plugins.catalog import PluginCatalog
from callmesh.plugins.hookspecs import HOOKS
from callmesh.plugins.manager import PluginManager
from callmesh.plugins.reference import render_reference
from callmesh.plugins.testkit import make_agents, make_request
from callmesh.plugins.types import (
    CallerQuery,
    ContactEvent,
    ContactEventKind,
    Criterion,
    CriterionScore,
    Interaction,
    PacingDecision,
    PacingRequest,
    Scorecard,
)

from callmesh.acd.strategy import OfferResult, RoutingDecision, RoutingOutcome, RoutingRequest

ROOT = Path(__file__).resolve().parents[2]
AGENTS = make_agents(6)


def with_plugin(plugin: type, **kwargs: object) -> PluginManager:
    catalog = PluginCatalog(environ={}, entry_points=[])
    catalog.add("p", plugin, source="tests")
    return PluginManager([{"name": "p"}], catalog=catalog, **kwargs)  # type: ignore[arg-type]


# -- the contract is documented and tested --------------------------------------------------
def test_every_hook_is_documented_with_args_returns_budget_and_version() -> None:
    assert HOOKS, "no hooks declared"
    for name, info in HOOKS.items():
        assert name.startswith("callmesh_")
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert doc, f"{name} has no docstring"
        for part in ("Returns:", "Budget:", f"Added in contract {info.since}"):
            assert part in doc, f"{name}'s docstring lacks {part!r}"
        for arg in inspect.signature(getattr(hookspecs, name)).parameters:
            assert f"{arg}:" in doc, f"{name}'s docstring does not describe {arg!r}"
        assert inspect.iscoroutinefunction(getattr(hookspecs, name)) == info.asynchronous


def test_every_hook_has_a_test() -> None:
    names: set[str] = set()
    for path in (ROOT / "tests" / "contract").glob("test_hooks*.py"):
        tree = ast.parse(path.read_text())
        names |= {
            n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        }
    missing = [h for h in HOOKS if f"test_hook_{h}" not in names]
    assert not missing, f"hooks without a test_hook_<name> test: {missing}"


def test_reference_page_is_generated_from_hookspecs() -> None:
    page = ROOT / "docs" / "plugins" / "reference.md"
    assert page.read_text() == render_reference(), (
        "regenerate: callmesh plugins reference -o docs/plugins/reference.md"
    )


# -- one test per hook ----------------------------------------------------------------------
def test_hook_callmesh_routing_strategies() -> None:
    class Strategies:
        @hookimpl
        def callmesh_routing_strategies(self, register: Callable[[object], None]) -> None:
            """Register ``last-agent`` (the highest id)."""

            class LastAgent:
                name = "last-agent"

                def choose(self, request: RoutingRequest) -> RoutingDecision:
                    last = max(a.id for a in request.candidates)
                    return RoutingDecision((last,), self.name, "highest id")

            register(LastAgent())

    manager = with_plugin(Strategies)
    assert manager.strategies["last-agent"].plugin == "p"
    assert {"longest-idle-agent", "skills-best-match", "ring-all"} <= set(manager.strategies)
    decision = manager.route(make_request(AGENTS, strategy="last-agent"))
    assert decision is not None and decision.agent_ids == ("agent-5",)


def test_hook_callmesh_route_contact() -> None:
    class Vip:
        @hookimpl
        def callmesh_route_contact(self, request: RoutingRequest) -> RoutingDecision | None:
            """Agent-1 for priority contacts."""
            if request.contact.priority < 5:
                return None
            return RoutingDecision(("agent-1",), "vip", "priority")

    manager = with_plugin(Vip)
    normal = make_request(AGENTS)
    assert manager.route(normal) == manager._fallback(normal)
    contact = normal.contact
    urgent = make_request(AGENTS, contact=contact._replace(priority=9))  # views are named tuples
    decision = manager.route(urgent)
    assert decision is not None and decision.agent_ids == ("agent-1",)
    assert decision.decided_by == "p:vip"


def test_hook_callmesh_routing_outcome() -> None:
    seen: list[RoutingOutcome] = []
    done = threading.Event()

    class Observer:
        @hookimpl
        def callmesh_routing_outcome(self, outcome: RoutingOutcome) -> None:
            """Keep it; the second one raises (counted, never propagated)."""
            seen.append(outcome)
            done.set()
            if len(seen) > 1:
                raise RuntimeError("observer bug")

    manager = with_plugin(Observer)
    outcome = RoutingOutcome("c", "q", "agent-1", OfferResult.REJECTED, "x", 2.0)
    manager.observe(outcome)
    assert done.wait(5) and seen == [outcome]
    done.clear()
    manager.observe(outcome)
    assert done.wait(5)
    for _ in range(500):
        if manager.failures.count("p", "callmesh_routing_outcome", "raised"):
            break
        threading.Event().wait(0.01)
    assert manager.failures.count("p", "callmesh_routing_outcome", "raised") == 1


async def test_hook_callmesh_crm_lookup() -> None:
    manager = PluginManager(
        [
            {
                "name": "memory-crm",
                "config": {
                    "customers": [{"ani": "+1555", "name": "Ada", "attributes": {"tier": "vip"}}]
                },
            }
        ],
        catalog=PluginCatalog(environ={}, entry_points=[]),
    )
    record = await manager.lookup_caller(CallerQuery("c1", "voice", "+1555"))
    assert record.found and record.display_name == "Ada" and record.source == "memory-crm"
    assert dict(record.attributes) == {"tier": "vip"}
    unknown = await manager.lookup_caller(CallerQuery("c2", "voice", "+1999"))
    assert not unknown.found and unknown.display_name == "unknown caller"

    class WrongType:
        @hookimpl
        async def callmesh_crm_lookup(self, query: CallerQuery) -> object:
            """Answers a dict instead of a CallerRecord."""
            return {"name": "Ada"}

    bad = with_plugin(WrongType)
    assert not (await bad.lookup_caller(CallerQuery("c1", "voice", "+1555"))).found
    assert bad.failures.count("p", "callmesh_crm_lookup", "wrong-type") == 1


async def test_hook_callmesh_crm_record_interaction(callmesh_interaction: Interaction) -> None:
    manager = PluginManager(
        [
            {
                "name": "memory-crm",
                "config": {"customers": [{"ani": callmesh_interaction.ani, "name": "Bo"}]},
            }
        ],
        catalog=PluginCatalog(environ={}, entry_points=[]),
    )
    assert await manager.record_interaction(callmesh_interaction) == 1
    record = await manager.lookup_caller(CallerQuery("c9", "voice", callmesh_interaction.ani))
    assert record.history == ("voice in support with agent-0: resolved",)


async def test_hook_callmesh_qa_score(
    callmesh_interaction: Interaction, callmesh_scorecard: Scorecard
) -> None:
    class Sentiment:
        @hookimpl
        async def callmesh_qa_score(
            self, interaction: Interaction, scorecard: Scorecard
        ) -> list[CriterionScore]:
            """Scores the ``sentiment`` rule: 0.5; and one out-of-range score (rejected)."""
            return [CriterionScore(c.id, 0.5) for c in scorecard.criteria if c.rule == "sentiment"]

    card = Scorecard(
        callmesh_scorecard.name,
        (
            *callmesh_scorecard.criteria,
            Criterion("mood", "Customer is happy", 4.0, "sentiment"),
            Criterion("csat", "Survey", 1.0, "survey"),
        ),
        pass_mark=70.0,
    )
    manager = with_plugin(Sentiment)
    result = await manager.score_interaction(callmesh_interaction, card)
    # greeting 1 (w2), no-rudeness 1 (w3), hold 35 s <= 60 1 (w1), mood 0.5 (w4): 8/10
    assert result.score == 80.0 and result.passed
    assert result.unscored == ("csat",)
    assert {s.scorer for s in result.criteria} == {"keyword-qa", "p"}

    class OutOfRange:
        @hookimpl
        async def callmesh_qa_score(
            self, interaction: Interaction, scorecard: Scorecard
        ) -> list[CriterionScore]:
            """A score of 7 is not in 0..1."""
            return [CriterionScore("mood", 7.0)]

    bad = with_plugin(OutOfRange)
    result = await bad.score_interaction(callmesh_interaction, card)
    assert "mood" in result.unscored
    assert bad.failures.count("p", "callmesh_qa_score", "invalid") == 1


async def test_hook_callmesh_contact_event() -> None:
    got: list[ContactEvent] = []

    class Pager:
        @hookimpl
        async def callmesh_contact_event(self, event: ContactEvent) -> None:
            """Page on voicemail; hang on anything else (cut at the budget)."""
            if event.kind is ContactEventKind.VOICEMAIL:
                got.append(event)
                return
            await asyncio.sleep(30)

    manager = with_plugin(Pager, budgets={"callmesh_contact_event": 0.05})
    voicemail = ContactEvent(ContactEventKind.VOICEMAIL, "c", "q", "+1", 1.0)
    assert await manager.notify(voicemail) == 1 and got == [voicemail]
    assert await manager.notify(ContactEvent(ContactEventKind.MISSED, "c", "q", "+1", 2.0)) == 0
    assert manager.failures.count("p", "callmesh_contact_event", "timeout") == 1


def test_hook_callmesh_dialer_pace() -> None:
    class Aggressive:
        @hookimpl
        def callmesh_dialer_pace(self, request: PacingRequest) -> PacingDecision:
            """Three calls per free agent; negative when told ``campaign == "bad"``."""
            calls = -1 if request.campaign == "bad" else request.available_agents * 3
            return PacingDecision(calls, reason="3:1")

    manager = with_plugin(Aggressive)
    ok = manager.pace(PacingRequest("c", "predictive", 0.0, 4, 0, 100))
    assert (ok.calls, ok.decided_by) == (12, "p")
    capped = manager.pace(PacingRequest("c", "predictive", 0.0, 4, 0, 5))
    assert capped.calls == 5
    hot = manager.pace(PacingRequest("c", "predictive", 0.0, 4, 0, 100, abandon_rate=0.08))
    assert hot.calls == 4 and "capped" in hot.reason
    bad = manager.pace(PacingRequest("bad", "predictive", 0.0, 4, 1, 100))
    assert (bad.calls, bad.decided_by) == (4, "progressive")
    assert manager.failures.count("p", "callmesh_dialer_pace", "invalid") == 1


@pytest.mark.parametrize("hook", list(HOOKS))
def test_pluggy_specs_match_the_table(hook: str) -> None:
    manager = PluginManager(catalog=PluginCatalog(environ={}, entry_points=[]))
    caller = getattr(manager.pm.hook, hook)
    assert caller.spec is not None
    assert bool(caller.spec.opts.get("firstresult")) == HOOKS[hook].firstresult
