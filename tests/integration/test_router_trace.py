"""One trace per call across callcontrol and the router (real loopback gRPC, in-memory spans).

Callcontrol sends the W3C ``traceparent`` of its "queue" span as request metadata with every
router rpc (``Call._metadata``, used here as is). The router's server span for the rpc must
be its child, and the routing decision, even one made later on another rpc (an agent logging
in), must be a span in the same trace, under the contact's Enqueue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import grpc.aio
import pytest
import yaml
from callmesh.v1 import router_pb2, router_pb2_grpc
from callmesh.workers.callcontrol.call import Call
from callmesh.workers.router.server import RouterServer
from callmesh.workers.telemetry import setup_telemetry
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

NS = "acme"
DOCS = [
    {
        "apiVersion": "callmesh.io/v1alpha1",
        "kind": "Queue",
        "metadata": {"name": "support", "namespace": NS},
        "spec": {"tiers": [{"level": 1, "teams": ["desk"]}], "wrapUpSeconds": 0},
    },
    {
        "apiVersion": "callmesh.io/v1alpha1",
        "kind": "AgentTeam",
        "metadata": {"name": "desk", "namespace": NS},
        "spec": {"agents": [{"id": "ann", "name": "Ann", "extension": "100"}]},
    },
]


@pytest.fixture
async def router(tmp_path: Path) -> AsyncIterator[tuple[Any, InMemorySpanExporter]]:
    config = tmp_path / "tenant.yaml"
    config.write_text(yaml.safe_dump_all(DOCS))
    spans = InMemorySpanExporter()
    server = RouterServer(
        config,
        address="127.0.0.1:0",
        reload_interval=0,
        telemetry=setup_telemetry("router", tenant=NS, span_exporters=[spans]),
    )
    port = await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield router_pb2_grpc.RouterServiceStub(channel), spans
    finally:
        await channel.close()
        await server.stop(0)


def callcontrol_metadata() -> tuple[tuple[str, str], ...]:
    """What callcontrol sends with its router rpcs (its own code, called as is)."""
    return Call._metadata(cast(Any, None))


async def login(stub: Any, agent_id: str) -> Any:
    session = stub.AgentSession()
    await session.write(
        router_pb2.AgentSessionRequest(login=router_pb2.AgentLogin(agent_id=agent_id, ready=True))
    )
    await session.read()  # Available
    return session


async def test_enqueue_and_a_later_routing_decision_join_callcontrols_trace(router: Any) -> None:
    stub, spans = router
    cc_spans = InMemorySpanExporter()
    cc_provider = TracerProvider()
    cc_provider.add_span_processor(SimpleSpanProcessor(cc_spans))
    with cc_provider.get_tracer("callcontrol").start_as_current_span("queue") as queue_span:
        metadata = callcontrol_metadata()
        assert int(dict(metadata)["traceparent"][-2:], 16) & 1 == 1  # sampled
        # Nobody is logged in: the contact waits; the decision comes with the agent.
        await stub.Enqueue(
            router_pb2.EnqueueRequest(contact_id="c1", queue="support"), metadata=metadata
        )
        watch = stub.WatchContact(
            router_pb2.WatchContactRequest(contact_id="c1"), metadata=metadata
        )
        await watch.read()  # its status
    caller = queue_span.get_span_context()
    session = await login(stub, "ann")  # an rpc with no trace context makes the decision
    assert (await session.read()).offer.contact_id == "c1"
    await session.done_writing()
    watch.cancel()

    by_name = {s.name: s for s in spans.get_finished_spans()}
    enqueue = by_name["callmesh.v1.RouterService/Enqueue"]
    assert enqueue.context.trace_id == caller.trace_id
    assert enqueue.parent is not None and enqueue.parent.span_id == caller.span_id
    assert enqueue.kind is trace.SpanKind.SERVER
    decision = by_name["routing decision"]
    assert decision.context.trace_id == caller.trace_id  # one trace per call
    assert decision.parent is not None and decision.parent.span_id == enqueue.context.span_id
    assert decision.attributes is not None
    assert decision.attributes["callmesh.contact_id"] == "c1"
    assert decision.attributes["callmesh.decided_by"] == "longest-idle-agent"
    assert list(decision.attributes["callmesh.agent_ids"]) == ["ann"]


async def test_watch_contact_joins_the_trace_too(router: Any) -> None:
    stub, spans = router
    provider = TracerProvider()
    with provider.get_tracer("callcontrol").start_as_current_span("queue") as queue_span:
        metadata = callcontrol_metadata()
        await stub.Enqueue(
            router_pb2.EnqueueRequest(contact_id="c1", queue="support"), metadata=metadata
        )
        watch = stub.WatchContact(
            router_pb2.WatchContactRequest(contact_id="c1"), metadata=metadata
        )
        await watch.read()
    await stub.Cancel(router_pb2.CancelRequest(contact_id="c1"), metadata=metadata)
    while await watch.read() is not grpc.aio.EOF:  # ended, then the stream closes
        pass
    caller = queue_span.get_span_context()
    finished = {s.name: s for s in spans.get_finished_spans()}
    for name in ("WatchContact", "Cancel"):
        span = finished[f"callmesh.v1.RouterService/{name}"]
        assert span.context.trace_id == caller.trace_id
        assert span.parent is not None and span.parent.span_id == caller.span_id


async def test_without_traceparent_each_contact_starts_its_own_trace(router: Any) -> None:
    stub, spans = router
    session = await login(stub, "ann")
    await stub.Enqueue(router_pb2.EnqueueRequest(contact_id="c1", queue="support"))
    assert (await session.read()).offer.contact_id == "c1"
    await session.done_writing()
    by_name = {s.name: s for s in spans.get_finished_spans()}
    enqueue = by_name["callmesh.v1.RouterService/Enqueue"]
    assert enqueue.parent is None
    decision = by_name["routing decision"]
    assert decision.context.trace_id == enqueue.context.trace_id


async def test_an_unsampled_caller_is_not_recorded(router: Any) -> None:
    stub, spans = router
    provider = TracerProvider(sampler=ALWAYS_OFF)  # callcontrol exporting nothing
    with provider.get_tracer("callcontrol").start_as_current_span("queue"):
        metadata = callcontrol_metadata()
    assert int(dict(metadata)["traceparent"][-2:], 16) & 1 == 0  # not sampled
    session = await login(stub, "ann")
    await stub.Enqueue(
        router_pb2.EnqueueRequest(contact_id="c1", queue="support"), metadata=metadata
    )
    assert (await session.read()).offer.contact_id == "c1"
    await session.done_writing()
    names = [s.name for s in spans.get_finished_spans()]
    assert "callmesh.v1.RouterService/Enqueue" not in names  # the caller's decision holds
    assert "routing decision" not in names
