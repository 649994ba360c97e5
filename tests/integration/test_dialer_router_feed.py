"""The dialer's agent feed against the real router over loopback gRPC (WatchQueues)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc.aio
import pytest
import yaml
from callmesh.v1 import router_pb2, router_pb2_grpc
from callmesh.workers.dialer.feed import RouterAgentFeed
from callmesh.workers.router.server import RouterServer
from callmesh.workers.telemetry import setup_telemetry

NS = "outbound"
TENANT = [
    {
        "apiVersion": "callmesh.io/v1alpha1",
        "kind": "Queue",
        "metadata": {"name": "sales", "namespace": NS},
        "spec": {"tiers": [{"level": 1, "teams": ["sellers"]}], "wrapUpSeconds": 30},
    },
    {
        "apiVersion": "callmesh.io/v1alpha1",
        "kind": "AgentTeam",
        "metadata": {"name": "sellers", "namespace": NS},
        "spec": {
            "agents": [
                {"id": "ann", "name": "Ann", "extension": "1001"},
                {"id": "bob", "name": "Bob", "extension": "1002"},
            ]
        },
    },
]


@pytest.fixture
async def router(tmp_path: Path) -> AsyncIterator[tuple[str, router_pb2_grpc.RouterServiceStub]]:
    config = tmp_path / "tenant.yaml"
    config.write_text(yaml.safe_dump_all(TENANT, sort_keys=False))
    server = RouterServer(
        config,
        address="127.0.0.1:0",
        reload_interval=0,
        grace=0.2,
        telemetry=setup_telemetry("router", tenant=NS),
    )
    port = await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield f"127.0.0.1:{port}", router_pb2_grpc.RouterServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(0)


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.01)


async def test_free_agents_and_wrap_ups_come_from_the_router(
    router: tuple[str, router_pb2_grpc.RouterServiceStub],
) -> None:
    address, stub = router
    clock = [1000.0]
    feed = RouterAgentFeed(address, {"sales": 30.0}, interval=0.05, clock=lambda: clock[0])
    await feed.start()
    session = stub.AgentSession()
    try:
        await until(lambda: feed.connected)
        assert feed.snapshot("sales", 1000.0).free == 0
        await session.write(
            router_pb2.AgentSessionRequest(
                request_id="1", login=router_pb2.AgentLogin(agent_id="ann", ready=True)
            )
        )
        await until(lambda: feed.snapshot("sales", clock[0]).free == 1)
        await stub.Enqueue(router_pb2.EnqueueRequest(contact_id="call-1", queue="sales"))
        await session.write(
            router_pb2.AgentSessionRequest(
                request_id="2",
                answer=router_pb2.AgentOfferAnswer(
                    contact_id="call-1", answer=router_pb2.OFFER_ANSWER_ACCEPT
                ),
            )
        )
        await until(lambda: feed.snapshot("sales", clock[0]).free == 0)
        await stub.Complete(router_pb2.CompleteRequest(contact_id="call-1"))
        await until(lambda: feed.snapshot("sales", clock[0]).freeing != ())
        clock[0] = 1010.0
        assert feed.snapshot("sales", 1010.0).freeing == (20.0,)  # 30 s wrap-up, 10 s gone
        assert feed.snapshot("support", 1010.0).free == 0  # a queue it does not follow
    finally:
        session.cancel()
        await feed.stop()
