"""The router publishes its live KPIs into Queue and AgentTeam status (loopback gRPC + HTTP).

A :class:`RouterServer` serves over loopback gRPC; its :class:`StatusPublisher` patches the
Kubernetes API stand-in (kmock, loopback HTTP), as ``callmesh worker router`` does in a pod.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc.aio
import kmock
import pytest
import yaml
from callmesh.v1 import router_pb2, router_pb2_grpc
from callmesh.workers.kubestatus import KubeStatusApi, StatusPublisher
from callmesh.workers.router.server import RouterServer

NS = "acme"


def _standin() -> Any:
    name = "callmesh_operator_standin"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("test_operator_standin.py")
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


standin = _standin()

DOCS = [
    {
        "apiVersion": "callmesh.io/v1alpha1",
        "kind": "Queue",
        "metadata": {"name": "support", "namespace": NS},
        "spec": {
            "tiers": [{"level": 1, "teams": ["desk"]}],
            "serviceLevel": {"percent": 80, "seconds": 20},
            "wrapUpSeconds": 0,
        },
    },
    {
        "apiVersion": "callmesh.io/v1alpha1",
        "kind": "AgentTeam",
        "metadata": {"name": "desk", "namespace": NS},
        "spec": {
            "agents": [
                {"id": a, "name": a.title(), "extension": str(100 + i)}
                for i, a in enumerate(("ann", "bob", "cy"))
            ]
        },
    },
]


async def until(check: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
async def router(tmp_path: Path) -> AsyncIterator[tuple[Any, RouterServer, Any]]:
    config = tmp_path / "tenant.yaml"
    config.write_text(yaml.safe_dump_all(DOCS))
    async with standin.ApiServer() as api, kmock.Server(api) as http:
        for doc in DOCS:
            plural = doc["kind"].lower() + "s"
            body = {"metadata": {"name": doc["metadata"]["name"]}, "spec": doc["spec"]}
            url = f"/apis/callmesh.io/v1alpha1/namespaces/{NS}/{plural}"
            async with api.post(url, json=body) as resp:
                assert resp.status == 201
        api.set_status("queues", NS, "support", {"observedGeneration": 1, "conditions": []})
        publisher = StatusPublisher(
            NS, api=KubeStatusApi(str(http.url), verify=False), interval=0.05
        )
        server = RouterServer(config, address="127.0.0.1:0", reload_interval=0, publisher=publisher)
        port = await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        try:
            yield api, server, router_pb2_grpc.RouterServiceStub(channel)
        finally:
            await channel.close()
            await server.stop(0)


async def test_router_publishes_waiting_service_level_and_logged_in(router: Any) -> None:
    api, _server, stub = router

    def status(plural: str, name: str) -> dict[str, Any]:
        return dict(api.find(plural, NS, name).get("status") or {})

    await until(lambda: status("agentteams", "desk").get("loggedIn") == 0, "loggedIn 0")
    session = stub.AgentSession()
    await session.write(
        router_pb2.AgentSessionRequest(login=router_pb2.AgentLogin(agent_id="ann", ready=True))
    )
    await session.read()  # Available
    await until(lambda: status("agentteams", "desk").get("loggedIn") == 1, "loggedIn 1")
    for cid in ("c1", "c2", "c3"):
        await stub.Enqueue(router_pb2.EnqueueRequest(contact_id=cid, queue="support"))
    await until(lambda: status("queues", "support").get("waiting") == 2, "2 waiting")
    assert "serviceLevel" not in status("queues", "support")  # nothing ended yet
    offer = await session.read()
    await session.write(
        router_pb2.AgentSessionRequest(
            answer=router_pb2.AgentOfferAnswer(
                contact_id=offer.offer.contact_id, answer=router_pb2.OFFER_ANSWER_ACCEPT
            )
        )
    )
    await until(lambda: status("queues", "support").get("serviceLevel") == "100.0%", "SL 100%")
    await stub.Cancel(router_pb2.CancelRequest(contact_id="c3"))  # abandoned after < 20 s
    await until(lambda: status("queues", "support").get("serviceLevel") == "50.0%", "SL 50%")
    final = status("queues", "support")
    assert final["waiting"] == 1
    assert final["observedGeneration"] == 1 and final["conditions"] == []  # the operator's
    await session.done_writing()
