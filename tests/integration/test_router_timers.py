"""The router worker drives the engine's timers with the event loop clock (loopback).

Max wait ends a contact on time (1 s), and an unanswered offer (RONA, the API's minimum
5 s ring) makes the agent NotReady("no-answer") and re-offers the contact, which keeps its
place ahead of a later one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc.aio
import pytest
import yaml
from callmesh.v1 import router_pb2, router_pb2_grpc
from callmesh.workers.router.server import RouterServer
from callmesh.workers.telemetry import setup_telemetry
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

NS = "acme"


@pytest.fixture
async def started(tmp_path: Path) -> AsyncIterator[tuple[RouterServer, Any, InMemoryMetricReader]]:
    def queue(name: str, **spec: Any) -> dict[str, Any]:
        return {
            "apiVersion": "callmesh.io/v1alpha1",
            "kind": "Queue",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"tiers": [{"level": 1, "teams": ["desk"]}], "wrapUpSeconds": 0, **spec},
        }

    path = tmp_path / "tenant.yaml"
    path.write_text(
        yaml.safe_dump_all(
            [
                queue("brief", maxWaitSeconds=1),
                queue("ring", offerTimeoutSeconds=5),
                {
                    "apiVersion": "callmesh.io/v1alpha1",
                    "kind": "AgentTeam",
                    "metadata": {"name": "desk", "namespace": NS},
                    "spec": {
                        "agents": [
                            {"id": "ann", "name": "Ann", "extension": "100"},
                            {"id": "bob", "name": "Bob", "extension": "101"},
                        ]
                    },
                },
            ]
        )
    )
    reader = InMemoryMetricReader()
    server = RouterServer(
        path,
        address="127.0.0.1:0",
        reload_interval=0,
        telemetry=setup_telemetry("router", tenant=NS, metric_readers=[reader]),
    )
    port = await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield server, router_pb2_grpc.RouterServiceStub(channel), reader
    finally:
        await channel.close()
        await server.stop(0)


async def next_event(call: Any, kind: str, timeout: float = 10.0) -> Any:
    async def go() -> Any:
        while True:
            event = await call.read()
            assert event is not grpc.aio.EOF, f"stream ended waiting for {kind}"
            if event.WhichOneof("event") == kind:
                return getattr(event, kind)

    return await asyncio.wait_for(go(), timeout)


async def test_max_wait_fires_on_the_loop_clock(started: Any) -> None:
    server, stub, _ = started
    start = time.monotonic()
    await stub.Enqueue(router_pb2.EnqueueRequest(contact_id="c1", queue="brief"))
    watch = stub.WatchContact(router_pb2.WatchContactRequest(contact_id="c1"))
    ended = await next_event(watch, "ended")
    waited = time.monotonic() - start
    assert ended.reason == router_pb2.END_REASON_TIMED_OUT
    assert 1.0 <= ended.waited_seconds < 3.0 and waited >= 0.95
    assert server.core.kpis(["brief"])[0].overflowed == 1  # type: ignore[union-attr]
    server.core.check_invariants()  # type: ignore[union-attr]


async def test_rona_makes_agent_not_ready_and_reoffers_keeping_place(started: Any) -> None:
    server, stub, reader = started
    core = server.core
    assert core is not None
    ann = stub.AgentSession()
    await ann.write(
        router_pb2.AgentSessionRequest(login=router_pb2.AgentLogin(agent_id="ann", ready=True))
    )
    await next_event(ann, "state")
    await stub.Enqueue(router_pb2.EnqueueRequest(contact_id="first", queue="ring"))
    assert (await next_event(ann, "offer")).contact_id == "first"
    await stub.Enqueue(router_pb2.EnqueueRequest(contact_id="second", queue="ring"))
    withdrawn = await next_event(ann, "withdrawn")  # nobody answers for 5 s
    assert (withdrawn.contact_id, withdrawn.reason) == ("first", "no answer")
    state = await next_event(ann, "state")
    while state.state != router_pb2.AGENT_STATE_NOT_READY:
        state = await next_event(ann, "state")
    assert state.reason == "no-answer"
    core.check_invariants()
    assert core.router.waiting("ring") == ["first", "second"]
    bob = stub.AgentSession()
    await bob.write(
        router_pb2.AgentSessionRequest(login=router_pb2.AgentLogin(agent_id="bob", ready=True))
    )
    offer = await next_event(bob, "offer")
    assert offer.contact_id == "first"
    assert [t.agent_ids[0] for t in offer.trace] == ["ann", "bob"]  # both decisions traced
    core.check_invariants()
    # The metrics: decisions by strategy and queue depth.
    data = reader.get_metrics_data()
    assert data is not None
    points: dict[str, list[Any]] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    decided = {
        (p.attributes["queue"], p.attributes["decided_by"]): p.value
        for p in points["callmesh.router.decisions"]
    }
    assert decided[("ring", "longest-idle-agent")] == 2
    depth = {p.attributes["queue"]: p.value for p in points["callmesh.router.queue.depth"]}
    assert depth["ring"] == 1
    assert points["callmesh.router.routing.duration"]
    assert any(p.attributes.get("rpc.method") == "Enqueue" for p in points["rpc.server.duration"])


async def test_queue_time_resumes_max_wait_after_a_restart(started: Any) -> None:
    server, stub, _ = started
    now = time.time()
    request = router_pb2.EnqueueRequest(contact_id="back", queue="brief")
    request.enqueue_time.FromNanoseconds(int((now - 30) * 1e9))
    request.queue_time.FromNanoseconds(int((now - 0.5) * 1e9))
    start = time.monotonic()
    await stub.Enqueue(request)
    watch = stub.WatchContact(router_pb2.WatchContactRequest(contact_id="back"))
    ended = await next_event(watch, "ended")
    # Max wait (1 s) counted from queue_time, not from enqueue_time (30 s ago, which would
    # end it at once): it ends about 0.5 s after the re-enqueue.
    assert ended.reason == router_pb2.END_REASON_TIMED_OUT
    assert 0.4 <= time.monotonic() - start < 5
    assert ended.waited_seconds >= 30
    bad = router_pb2.EnqueueRequest(contact_id="bad", queue="brief")
    bad.enqueue_time.FromNanoseconds(int((now - 5) * 1e9))
    bad.queue_time.FromNanoseconds(int((now - 50) * 1e9))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Enqueue(bad)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "queue_time" in (err.value.details() or "")
    server.core.check_invariants()  # type: ignore[union-attr]
