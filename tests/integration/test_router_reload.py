"""Config reload of the router worker over loopback: nobody waiting or logged in is dropped.

The file is rewritten as a ConfigMap update would; the server's poller (every 20 ms) picks
it up. Waiting contacts keep their order, a busy agent keeps its call (and wraps up after
it), a NotReady agent stays NotReady, sessions stay open; a reload that would lose a contact
is refused and the old config stays in force.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
import yaml
from callmesh.v1 import router_pb2, router_pb2_grpc
from callmesh.workers.router.server import RouterServer

NS = "acme"
TIMEOUT = 10.0


def manifests(*, extra_agent: bool = False, drop_sales: bool = False, wrap: int = 0) -> list[Any]:
    def queue(name: str) -> dict[str, Any]:
        return {
            "apiVersion": "callmesh.io/v1alpha1",
            "kind": "Queue",
            "metadata": {"name": name, "namespace": NS},
            "spec": {
                "strategy": {"name": "longest-idle-agent"},
                "tiers": [{"level": 1, "teams": ["desk"]}],
                "wrapUpSeconds": wrap,
            },
        }

    agents = [{"id": a, "name": a, "extension": f"10{i}"} for i, a in enumerate(["ann", "bob"])]
    if extra_agent:
        agents.append({"id": "cid", "name": "cid", "extension": "109"})
    docs = [queue("support")] + ([] if drop_sales else [queue("sales")])
    docs.append(
        {
            "apiVersion": "callmesh.io/v1alpha1",
            "kind": "AgentTeam",
            "metadata": {"name": "desk", "namespace": NS},
            "spec": {"agents": agents},
        }
    )
    return docs


def write(path: Path, docs: list[Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    tmp.replace(path)  # atomic, as the kubelet swaps a ConfigMap volume


@pytest.fixture
async def started(tmp_path: Path) -> AsyncIterator[tuple[RouterServer, Any, Path]]:
    path = tmp_path / "tenant.yaml"
    write(path, manifests())
    server = RouterServer(path, address="127.0.0.1:0", reload_interval=0.02, grace=0.5)
    port = await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield server, router_pb2_grpc.RouterServiceStub(channel), path
    finally:
        await channel.close()
        await server.stop(0)


async def until(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


async def read(call: Any, kind: str) -> Any:
    async def go() -> Any:
        while True:
            event = await call.read()
            assert event is not grpc.aio.EOF, f"stream ended waiting for {kind}"
            if event.WhichOneof("event") == kind:
                return getattr(event, kind)

    return await asyncio.wait_for(go(), TIMEOUT)


async def session(stub: Any, agent_id: str, ready: bool = True) -> Any:
    call = stub.AgentSession()
    await call.write(
        router_pb2.AgentSessionRequest(login=router_pb2.AgentLogin(agent_id=agent_id, ready=ready))
    )
    await read(call, "state")
    return call


async def accept(call: Any, contact_id: str) -> None:
    await call.write(
        router_pb2.AgentSessionRequest(
            answer=router_pb2.AgentOfferAnswer(
                contact_id=contact_id, answer=router_pb2.OFFER_ANSWER_ACCEPT
            )
        )
    )


async def test_reload_keeps_waiting_contacts_busy_and_idle_agents(started: Any) -> None:
    server, stub, path = started
    core = server.core
    assert core is not None
    ann = await session(stub, "ann")
    await stub.Enqueue(router_pb2.EnqueueRequest(contact_id="talking", queue="support"))
    await accept(ann, (await read(ann, "offer")).contact_id)
    await read(ann, "connected")
    bob = await session(stub, "bob", ready=False)
    await bob.write(
        router_pb2.AgentSessionRequest(not_ready=router_pb2.AgentNotReady(reason="training"))
    )
    await until(lambda: core.presence["bob"][1] == "training", "bob in training")
    old = router_pb2.EnqueueRequest(contact_id="w-old", queue="sales")
    old.enqueue_time.FromSeconds(int(time.time()) - 60)
    for request in (
        router_pb2.EnqueueRequest(contact_id="w1", queue="support"),
        router_pb2.EnqueueRequest(contact_id="w2", queue="support"),
        old,
    ):
        await stub.Enqueue(request)
    watch = stub.WatchContact(router_pb2.WatchContactRequest(contact_id="w1"))
    await read(watch, "status")
    core.check_invariants()
    before = core.router

    write(path, manifests(extra_agent=True, wrap=30))
    await until(lambda: core.router is not before, "the reload")
    assert core.reloads == 1 and server.last_reload_error is None
    core.check_invariants()
    assert core.router.waiting("support") == ["w1", "w2"]
    assert core.router.waiting("sales") == ["w-old"]
    assert core.router.agent_state("ann") == "Busy"
    assert core.router.agent_state("bob") == "NotReady"
    assert core.presence["bob"] == ("NotReady", "training")
    assert set(core.sessions) == {"ann", "bob"}
    # The new agent serves at once; the oldest contact (across queues) goes first.
    cid = await session(stub, "cid")
    assert (await read(cid, "offer")).contact_id == "w-old"
    # ann's call survives the reload: complete it, ann wraps up for the NEW 30 s.
    done = await stub.Complete(router_pb2.CompleteRequest(contact_id="talking"))
    assert done.agent_id == "ann"
    assert core.router.agent_state("ann") == "WrapUp"
    core.check_invariants()
    # ann's session still works: ready ends wrap-up early and takes the next contact.
    await ann.write(router_pb2.AgentSessionRequest(ready=router_pb2.AgentReady()))
    assert (await read(ann, "offer")).contact_id == "w1"
    assert (await read(watch, "offered")).agent_ids == ["ann"]
    core.check_invariants()


async def test_reload_that_would_lose_a_contact_is_refused(started: Any) -> None:
    server, stub, path = started
    core = server.core
    assert core is not None
    await stub.Enqueue(router_pb2.EnqueueRequest(contact_id="s1", queue="sales"))
    before = core.router
    write(path, manifests(drop_sales=True))
    await until(lambda: server.last_reload_error is not None, "the refusal")
    assert "sales" in server.last_reload_error and "s1" in server.last_reload_error
    assert core.router is before and [q.name for q in core.config.queues] == ["sales", "support"]
    core.check_invariants()
    # Once the contact is gone, the same file is accepted on the next poll.
    await stub.Cancel(router_pb2.CancelRequest(contact_id="s1"))
    await until(lambda: core.router is not before, "the reload")
    assert [q.name for q in core.config.queues] == ["support"]
    assert server.last_reload_error is None
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Enqueue(router_pb2.EnqueueRequest(contact_id="s2", queue="sales"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    core.check_invariants()


async def test_broken_file_keeps_the_old_config(started: Any) -> None:
    server, stub, path = started
    core = server.core
    assert core is not None
    path.write_text("apiVersion: callmesh.io/v1alpha1\nkind: Queue\nmetadata: {name: x}\n")
    await until(lambda: server.last_reload_error is not None, "the error")
    assert "tenant.yaml" in server.last_reload_error
    reply = await stub.Enqueue(router_pb2.EnqueueRequest(contact_id="c1", queue="support"))
    assert reply.position == 1
    core.check_invariants()
