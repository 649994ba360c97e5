"""The remote-plugin adapter against a real Python grpc.aio PluginService on loopback."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import grpc.aio
import pytest
from callmesh.plugins.catalog import PluginCatalog
from callmesh.plugins.errors import PluginConfigError
from callmesh.plugins.manager import PluginManager
from callmesh.plugins.testkit import make_agents, make_request
from callmesh.plugins.types import (
    CallerQuery,
    ContactEvent,
    ContactEventKind,
    Criterion,
    PacingRequest,
    Scorecard,
)
from callmesh.v1 import plugin_pb2 as pb
from callmesh.v1 import plugin_pb2_grpc as pb_grpc

from callmesh.acd.strategy import ContactView, OfferResult, RoutingOutcome

AGENTS = make_agents(8)


class AcmeService(pb_grpc.PluginServiceServicer):
    """A vendor's plugin written against the proto alone."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.fail = False
        self.ghost = False
        self.events: list[Any] = []
        self.outcomes: list[Any] = []
        self.seen = threading.Event()

    async def _maybe_misbehave(self, context: grpc.aio.ServicerContext) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            await context.abort(grpc.StatusCode.INTERNAL, "acme is down")

    async def GetIdentity(self, request: Any, context: Any) -> Any:
        return pb.GetIdentityResponse(
            name="acme", version="2.0", vendor="Acme", contract_version="1.0"
        )

    async def GetCapabilities(self, request: Any, context: Any) -> Any:
        return pb.GetCapabilitiesResponse(
            hooks=[
                pb.HOOK_ROUTING_STRATEGIES,
                pb.HOOK_ROUTE_CONTACT,
                pb.HOOK_ROUTING_OUTCOME,
                pb.HOOK_CRM_LOOKUP,
                pb.HOOK_QA_SCORE,
                pb.HOOK_CONTACT_EVENT,
                pb.HOOK_DIALER_PACE,
            ],
            routing_strategies=["acme-most-calls"],
        )

    async def RouteContact(self, request: Any, context: Any) -> Any:
        await self._maybe_misbehave(context)
        if self.ghost:
            return pb.RouteContactResponse(decision=pb.RoutingDecision(agent_ids=["ghost"]))
        if request.strategy == "acme-most-calls":
            best = max(request.candidates, key=lambda a: (a.calls_handled, a.id))
            return pb.RouteContactResponse(
                decision=pb.RoutingDecision(agent_ids=[best.id], decided_by="acme-most-calls")
            )
        if request.contact.attributes.get("tier") != "vip":
            return pb.RouteContactResponse()
        best = max(request.candidates, key=lambda a: (sum(a.skills.values()), a.id))
        return pb.RouteContactResponse(
            decision=pb.RoutingDecision(agent_ids=[best.id], decided_by="acme-vip", reason="vip")
        )

    async def ObserveRoutingOutcome(self, request: Any, context: Any) -> Any:
        self.outcomes.append(request)
        self.seen.set()
        return pb.ObserveRoutingOutcomeResponse()

    async def LookupCaller(self, request: Any, context: Any) -> Any:
        await self._maybe_misbehave(context)
        if request.ani != "+15555550100":
            return pb.LookupCallerResponse()
        return pb.LookupCallerResponse(
            record=pb.CallerRecord(
                display_name="Ada", customer_id="c-1", attributes={"tier": "vip"}
            )
        )

    async def ScoreInteraction(self, request: Any, context: Any) -> Any:
        scores = []
        for c in request.criteria:
            if c.rule == "acme-sentiment":
                params = json.loads(c.params_json)
                scores.append(pb.CriterionScore(criterion_id=c.id, score=params["fixed"]))
        return pb.ScoreInteractionResponse(scores=scores)

    async def NotifyContactEvent(self, request: Any, context: Any) -> Any:
        self.events.append(request)
        return pb.NotifyContactEventResponse()

    async def PaceDialer(self, request: Any, context: Any) -> Any:
        return pb.PaceDialerResponse(decision=pb.PacingDecision(calls=request.available_agents * 2))


@pytest.fixture(scope="module")
def acme() -> Iterator[tuple[AcmeService, int]]:
    """The service on a loopback port the OS picks, served by its own thread and event loop
    (the adapter's routing calls block, as the router's do, so they cannot share a loop)."""
    service = AcmeService()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def serve() -> None:
        stop = asyncio.Event()
        holder["stop"] = stop
        server = grpc.aio.server()
        pb_grpc.add_PluginServiceServicer_to_server(service, server)
        holder["port"] = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        ready.set()
        await stop.wait()
        await server.stop(None)

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield service, holder["port"]
    loop.call_soon_threadsafe(holder["stop"].set)
    thread.join(10)
    assert not thread.is_alive(), "the gRPC test server did not stop"


@pytest.fixture
def service(acme: tuple[AcmeService, int]) -> Iterator[AcmeService]:
    svc = acme[0]
    yield svc
    svc.delay, svc.fail, svc.ghost = 0.0, False, False


_open: list[PluginManager] = []


def manager_for(port: int, **extra: Any) -> PluginManager:
    config = {"name": "acme", "target": f"127.0.0.1:{port}", "retry_seconds": 0, **extra}
    manager = PluginManager(
        [{"name": "remote", "config": config}],
        catalog=PluginCatalog(environ={}, entry_points=[]),
    )
    _open.append(manager)
    return manager


@pytest.fixture(autouse=True)
def close_managers() -> Iterator[None]:
    yield
    while _open:
        manager = _open.pop()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(manager.aclose())


def vip_request(strategy: str = "longest-idle-agent") -> Any:
    contact = ContactView("c1", "voice", 0, {"tier": "vip"}, {}, "support", 0.0)  # type: ignore[arg-type]
    return make_request(AGENTS, contact=contact, strategy=strategy)


def test_remote_override_and_strategy_route(
    acme: tuple[AcmeService, int], service: AcmeService
) -> None:
    manager = manager_for(acme[1])
    assert "acme-most-calls" in manager.strategies
    decision = manager.route(vip_request())
    best = max(AGENTS, key=lambda a: (sum(a.skills.values()), a.id))
    assert decision is not None and decision.agent_ids == (best.id,)
    assert decision.decided_by == "remote:acme:acme-vip"
    plain = manager.route(make_request(AGENTS, strategy="acme-most-calls"))
    assert plain is not None
    assert plain.agent_ids == (max(AGENTS, key=lambda a: (a.calls_handled, a.id)).id,)
    assert manager.failures.snapshot() == {}
    manager.observe(RoutingOutcome("c1", "support", best.id, OfferResult.ACCEPTED, "x", 1.0))
    assert service.seen.wait(5)
    assert service.outcomes[-1].result == pb.OFFER_RESULT_ACCEPTED


def test_slow_remote_is_cut_at_the_budget_and_the_fallback_routes(
    acme: tuple[AcmeService, int], service: AcmeService
) -> None:
    manager = manager_for(acme[1])
    service.delay = 0.5
    decision = manager.route(vip_request())
    assert decision is not None
    assert decision.decided_by == "longest-idle-agent"
    assert manager.failures.count("remote:acme", reason="timeout") == 1


def test_failing_and_lying_remotes_are_counted(
    acme: tuple[AcmeService, int], service: AcmeService
) -> None:
    manager = manager_for(acme[1])
    service.fail = True
    assert manager.route(vip_request()) is not None
    assert manager.failures.count("remote:acme", reason="raised") == 1
    service.fail, service.ghost = False, True
    assert manager.route(vip_request()) is not None
    assert manager.failures.count("remote:acme", reason="invalid") == 1


async def test_remote_crm_qa_notify_and_pacing(
    acme: tuple[AcmeService, int], service: AcmeService
) -> None:
    manager = manager_for(acme[1])
    try:
        record = await manager.lookup_caller(CallerQuery("c1", "voice", "+15555550100"))
        assert record.found and record.display_name == "Ada" and record.source == "remote:acme"
        unknown = await manager.lookup_caller(CallerQuery("c2", "voice", "+15555550199"))
        assert not unknown.found
        card = Scorecard(
            "s",
            (
                Criterion("mood", "", 1.0, "acme-sentiment", {"fixed": 0.5}),
                Criterion("hold", "", 1.0, "max-hold-seconds", {"seconds": 60}),
            ),
        )
        from callmesh.plugins.testkit import _interaction

        result = await manager.score_interaction(_interaction(), card)
        assert {s.scorer for s in result.criteria} == {"remote:acme", "keyword-qa"}
        assert result.score == 75.0
        event = ContactEvent(ContactEventKind.ABANDONED, "c1", "support", "+1555", 1.0)
        assert await manager.notify(event) == 1
        assert service.events[-1].kind == pb.CONTACT_EVENT_KIND_ABANDONED
        pace = manager.pace(PacingRequest("camp", "predictive", 0.0, 3, 0, 100))
        assert pace.calls == 6 and pace.decided_by == "remote:acme"
        service.delay = 3.0
        manager.budgets["callmesh_crm_lookup"] = 0.2
        slow = await manager.lookup_caller(CallerQuery("c1", "voice", "+15555550100"))
        assert not slow.found and slow.display_name == "unknown caller"
        assert manager.failures.count("remote:acme", "callmesh_crm_lookup", "timeout") == 1
    finally:
        await manager.aclose()


def test_unreachable_remote_never_blocks_routing() -> None:
    # Nothing listens on the port: setup and routing degrade to the built-ins, counted.
    manager = manager_for(1, connect_timeout_seconds=0.2)
    assert "acme-most-calls" not in manager.strategies
    decision = manager.route(vip_request())
    assert decision is not None and decision.decided_by == "longest-idle-agent"
    assert manager.failures.count("remote:acme") >= 2


def test_remote_config_errors_name_the_field() -> None:
    with pytest.raises(PluginConfigError) as err:
        PluginManager(
            [
                {"name": "remote", "config": {"name": "a", "target": "nowhere"}},
                {"name": "remote", "config": {"target": "h:1"}},
            ],
            catalog=PluginCatalog(environ={}, entry_points=[]),
        )
    text = str(err.value)
    assert "spec.plugins[0].config.target: Value error, 'nowhere' is not host:port" in text
    assert "spec.plugins[1].config.name: Field required" in text


def test_remote_strategy_answering_a_ghost_is_rejected(
    acme: tuple[AcmeService, int], service: AcmeService
) -> None:
    manager = manager_for(acme[1])
    service.ghost = True
    decision = manager.route(make_request(AGENTS, strategy="acme-most-calls"))
    assert decision is not None and decision.fallback
    assert decision.decided_by == "routing:fallback:longest-idle-agent"
    assert "'acme-most-calls' of plugin 'remote:acme' was rejected: agent" in decision.reason
    # Both the override and the named strategy answered the ghost: each is rejected.
    assert manager.failures.count("remote:acme", reason="invalid") == 2
