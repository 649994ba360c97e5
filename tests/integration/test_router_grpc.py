"""The router worker over real loopback sockets: callcontrol's and agents' view of it.

Every test starts a :class:`RouterServer` on 127.0.0.1:0 from a tenant.yaml written the way
the operator renders it, talks to it with the generated stubs, and checks the engine's and
the worker's invariants after each step that could corrupt them (including refused ones).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
import yaml
from callmesh.v1 import plugin_pb2, router_pb2, router_pb2_grpc
from callmesh.workers.router.server import (
    SERVICE_NAME,
    YOUNG_COLLECTION_THRESHOLD,
    RouterServer,
    run_router,
)
from callmesh.workers.telemetry import setup_telemetry
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

NS = "acme"
TIMEOUT = 10.0


def queue(name: str, teams: list[str], **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "channel": "voice",
        "strategy": {"name": "longest-idle-agent"},
        "tiers": [{"level": 1, "teams": teams}],
        "wrapUpSeconds": 0,
    }
    body.update(spec)
    return {
        "apiVersion": "callmesh.io/v1alpha1",
        "kind": "Queue",
        "metadata": {"name": name, "namespace": NS},
        "spec": body,
    }


def team(name: str, agents: list[str], first_ext: int = 100) -> dict[str, Any]:
    return {
        "apiVersion": "callmesh.io/v1alpha1",
        "kind": "AgentTeam",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "agents": [
                {"id": a, "name": a.title(), "extension": str(first_ext + i)}
                for i, a in enumerate(agents)
            ]
        },
    }


def write(path: Path, *docs: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump_all(list(docs), sort_keys=False))
    return path


class Agent:
    """An agent desktop: one AgentSession stream."""

    def __init__(self, stub: router_pb2_grpc.RouterServiceStub, agent_id: str) -> None:
        self.id = agent_id
        self.call = stub.AgentSession()
        self.seq = 0

    async def send(self, **action: Any) -> str:
        self.seq += 1
        rid = f"{self.id}-{self.seq}"
        await self.call.write(router_pb2.AgentSessionRequest(request_id=rid, **action))
        return rid

    async def login(self, ready: bool = True) -> router_pb2.AgentSessionResponse:
        await self.send(login=router_pb2.AgentLogin(agent_id=self.id, ready=ready))
        return await self.next("state")

    async def next(self, kind: str) -> Any:
        """The next event of ``kind`` (other events are skipped)."""

        async def read() -> Any:
            while True:
                event = await self.call.read()
                assert event is not grpc.aio.EOF, f"{self.id}: stream ended waiting for {kind}"
                if event.WhichOneof("event") == kind:
                    return getattr(event, kind)

        return await asyncio.wait_for(read(), TIMEOUT)

    async def accept(self, contact_id: str) -> None:
        await self.send(
            answer=router_pb2.AgentOfferAnswer(
                contact_id=contact_id, answer=router_pb2.OFFER_ANSWER_ACCEPT
            )
        )


@pytest.fixture
async def started(tmp_path: Path) -> AsyncIterator[tuple[RouterServer, Any, InMemorySpanExporter]]:
    spans = InMemorySpanExporter()
    config = write(
        tmp_path / "tenant.yaml",
        queue("support", ["first"]),
        queue("sales", ["first"]),
        team("first", [f"a{i:02d}" for i in range(20)]),
    )
    server = RouterServer(
        config,
        address="127.0.0.1:0",
        reload_interval=0,
        grace=0.5,
        telemetry=setup_telemetry("router", tenant=NS, span_exporters=[spans]),
    )
    port = await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield server, router_pb2_grpc.RouterServiceStub(channel), spans
    finally:
        await channel.close()
        await server.stop(0)


def check(server: RouterServer) -> None:
    assert server.core is not None
    server.core.check_invariants()


async def until(predicate: Any, what: str) -> None:
    """Wait for a condition of the server (polled on the loop, no fixed sleep)."""
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


async def test_health_and_reflection(started: Any) -> None:
    server, stub, spans = started
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    health = health_pb2_grpc.HealthStub(channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    refl = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = refl.ServerReflectionInfo()
    await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    answer = await call.read()
    await call.done_writing()
    names = {s.name for s in answer.list_services_response.service}
    assert {SERVICE_NAME, "grpc.health.v1.Health"} <= names
    await channel.close()
    # The health check made no span; an rpc of the router does.
    await stub.Enqueue(router_pb2.EnqueueRequest(contact_id="c1", queue="support"))
    names_seen = [s.name for s in spans.get_finished_spans()]
    assert "callmesh.v1.RouterService/Enqueue" in names_seen
    assert not [n for n in names_seen if "Health" in n or "Reflection" in n]


async def test_many_agents_and_contacts(started: Any) -> None:
    server, stub, _ = started
    total = 120
    watches = []
    for n in range(total):  # they all wait: nobody is logged in yet
        q = "support" if n % 3 else "sales"
        await stub.Enqueue(
            router_pb2.EnqueueRequest(contact_id=f"c{n}", queue=q, attributes={"n": str(n)})
        )
        watch = stub.WatchContact(router_pb2.WatchContactRequest(contact_id=f"c{n}"))
        assert (await watch.read()).status.position > 0
        watches.append(watch)
    check(server)
    agents = [Agent(stub, f"a{i:02d}") for i in range(20)]
    answered: dict[str, str] = {}

    async def desk(agent: Agent) -> None:
        await agent.login()
        while True:
            offer = await agent.next("offer")
            assert offer.attributes["n"] == offer.contact_id[1:]
            await agent.accept(offer.contact_id)
            await agent.next("connected")
            answered[offer.contact_id] = agent.id
            await stub.Complete(router_pb2.CompleteRequest(contact_id=offer.contact_id))

    desks = [asyncio.create_task(desk(a)) for a in agents]
    await until(lambda: len(answered) == total, "every contact answered")
    check(server)
    ended = 0
    for call in watches:
        while (event := await call.read()) is not grpc.aio.EOF:
            if event.WhichOneof("event") == "ended":
                assert event.ended.reason == router_pb2.END_REASON_ANSWERED
                assert event.ended.trace and event.ended.trace[-1].decided_by
                ended += 1
    assert ended == total
    for d in desks:
        d.cancel()
    kpis = {k.queue: k for k in server.core.kpis()}  # type: ignore[union-attr]
    assert kpis["support"].answered + kpis["sales"].answered == total
    assert kpis["support"].waiting == 0
    check(server)


async def test_offer_carries_screen_pop_and_trace(started: Any) -> None:
    _, stub, _ = started
    ann = Agent(stub, "a00")
    await ann.login()
    reply = await stub.Enqueue(
        router_pb2.EnqueueRequest(
            contact_id="c1",
            queue="support",
            channel=plugin_pb2.CHANNEL_VOICE,
            attributes={"caller": "+15550100", "language": "en"},
        )
    )
    assert list(reply.offered_agent_ids) == ["a00"] and reply.position == 0
    offer = await ann.next("offer")
    assert offer.contact_id == "c1" and offer.queue == "support"
    assert dict(offer.attributes) == {"caller": "+15550100", "language": "en"}
    assert offer.trace[-1].decided_by == "longest-idle-agent"
    assert offer.trace[-1].reason and list(offer.trace[-1].agent_ids) == ["a00"]
    assert abs(offer.enqueue_time.ToNanoseconds() / 1e9 - time.time()) < 5
    assert reply.enqueue_time == offer.enqueue_time  # one conversion, to the nanosecond


async def test_disconnect_mid_offer_reoffers_keeping_place(started: Any) -> None:
    server, stub, _ = started
    for cid in ("c1", "c2"):
        await stub.Enqueue(router_pb2.EnqueueRequest(contact_id=cid, queue="support"))
    watch = stub.WatchContact(router_pb2.WatchContactRequest(contact_id="c1"))
    status = await watch.read()
    assert status.status.position == 1
    ann = Agent(stub, "a00")
    await ann.login()
    offer = await ann.next("offer")
    assert offer.contact_id == "c1"
    assert (await watch.read()).offered.agent_ids == ["a00"]
    ann.call.cancel()  # the desktop vanishes while its phone rings
    withdrawn = await asyncio.wait_for(watch.read(), TIMEOUT)
    assert withdrawn.withdrawn.agent_ids == ["a00"]
    await until(lambda: server.core.router.agent_state("a00") == "LoggedOut", "a00 logged out")
    check(server)
    assert server.core.router.waiting("support") == ["c1", "c2"]  # c1 kept its place
    bob = Agent(stub, "a01")
    await bob.login()
    assert (await bob.next("offer")).contact_id == "c1"
    check(server)


async def test_reconnect_keeps_contact_in_progress(started: Any) -> None:
    server, stub, _ = started
    ann = Agent(stub, "a00")
    await ann.login()
    await stub.Enqueue(router_pb2.EnqueueRequest(contact_id="c1", queue="support"))
    await ann.accept((await ann.next("offer")).contact_id)
    await ann.next("connected")
    ann.call.cancel()
    await until(lambda: "a00" not in server.core.sessions, "session closed")
    assert server.core.router.agent_state("a00") == "Busy"
    assert server.core.presence["a00"][1] == "disconnected"
    check(server)
    # No new contact for a disconnected agent, even once its call ends.
    await stub.Enqueue(router_pb2.EnqueueRequest(contact_id="c2", queue="support"))
    await stub.Complete(router_pb2.CompleteRequest(contact_id="c1"))
    assert server.core.router.waiting("support") == ["c2"]
    again = Agent(stub, "a00")
    state = await again.login(ready=True)
    assert state.state in (router_pb2.AGENT_STATE_NOT_READY, router_pb2.AGENT_STATE_AVAILABLE)
    assert (await again.next("offer")).contact_id == "c2"
    check(server)


async def test_second_session_takes_over(started: Any) -> None:
    server, stub, _ = started
    first = Agent(stub, "a00")
    await first.login()
    await stub.Enqueue(router_pb2.EnqueueRequest(contact_id="c1", queue="support"))
    assert (await first.next("offer")).contact_id == "c1"
    second = Agent(stub, "a00")
    await second.login()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await first.next("offer")
    assert err.value.code() == grpc.StatusCode.ABORTED
    # The offer ringing at the agent rings on in the new session, which can take it.
    offer = await second.next("offer")
    assert offer.contact_id == "c1" and offer.attributes == {}
    await second.accept("c1")
    assert (await second.next("connected")).contact_id == "c1"
    await stub.Enqueue(router_pb2.EnqueueRequest(contact_id="c2", queue="support"))
    await stub.Complete(router_pb2.CompleteRequest(contact_id="c1"))
    assert (await second.next("offer")).contact_id == "c2"
    check(server)


async def expect(code: grpc.StatusCode, call: Any, *words: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == code, err.value.details()
    for word in words:
        assert word in (err.value.details() or ""), err.value.details()


async def test_bad_input_gets_clear_statuses_and_changes_nothing(started: Any) -> None:
    server, stub, _ = started
    E = router_pb2.EnqueueRequest
    await expect(
        grpc.StatusCode.NOT_FOUND, stub.Enqueue(E(contact_id="x", queue="nope")), "nope", "support"
    )
    check(server)
    await stub.Enqueue(E(contact_id="c1", queue="support"))
    await expect(
        grpc.StatusCode.ALREADY_EXISTS, stub.Enqueue(E(contact_id="c1", queue="sales")), "c1"
    )
    check(server)
    assert server.core.router.waiting("sales") == []
    await expect(grpc.StatusCode.INVALID_ARGUMENT, stub.Enqueue(E(queue="support")), "contact_id")
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        stub.Enqueue(E(contact_id="c2", queue="support", channel=plugin_pb2.CHANNEL_CHAT)),
        "voice",
    )
    future = E(contact_id="c3", queue="support")
    future.enqueue_time.FromSeconds(int(time.time()) + 3600)
    await expect(grpc.StatusCode.INVALID_ARGUMENT, stub.Enqueue(future), "future")
    await expect(
        grpc.StatusCode.NOT_FOUND, stub.Cancel(router_pb2.CancelRequest(contact_id="zz")), "zz"
    )
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        stub.Complete(router_pb2.CompleteRequest(contact_id="c1")),
        "Cancel",
    )
    await expect(
        grpc.StatusCode.NOT_FOUND,
        stub.Transfer(router_pb2.TransferRequest(contact_id="c1", queue="nope")),
    )
    check(server)
    # An agent in no team: the session is refused.
    ghost = Agent(stub, "ghost")
    await ghost.send(login=router_pb2.AgentLogin(agent_id="ghost", ready=True))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await ghost.next("state")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "AgentTeam" in (err.value.details() or "")
    # A first message that is not a login.
    odd = Agent(stub, "a05")
    await odd.send(ready=router_pb2.AgentReady())
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await odd.next("state")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    check(server)
    # Accept of an offer already withdrawn: an in-session error, the session carries on.
    ann, bob = Agent(stub, "a00"), Agent(stub, "a01")
    await ann.login()
    assert (await ann.next("offer")).contact_id == "c1"
    await ann.send(not_ready=router_pb2.AgentNotReady(reason="lunch"))
    await ann.next("withdrawn")
    rid = await ann.send(
        answer=router_pb2.AgentOfferAnswer(contact_id="c1", answer=router_pb2.OFFER_ANSWER_ACCEPT)
    )
    error = await ann.next("error")
    assert error.request_id == rid
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert "withdrawn" in error.message
    check(server)
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        stub.AnswerOffer(
            router_pb2.AnswerOfferRequest(
                contact_id="c1", agent_id="a00", answer=router_pb2.OFFER_ANSWER_ACCEPT
            )
        ),
        "withdrawn",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        stub.AnswerOffer(router_pb2.AnswerOfferRequest(contact_id="c1", agent_id="a00")),
        "OFFER_ANSWER_ACCEPT",
    )
    await bob.login()
    await bob.accept((await bob.next("offer")).contact_id)
    await bob.next("connected")
    check(server)
    # Logout while busy is refused in-session; the agent stays logged in.
    await bob.send(logout=router_pb2.AgentLogout())
    assert "in progress" in (await bob.next("error")).message
    assert server.core.router.agent_state("a01") == "Busy"
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        stub.Cancel(router_pb2.CancelRequest(contact_id="c1")),
        "Complete",
    )
    check(server)


async def test_original_enqueue_time_keeps_place(started: Any) -> None:
    server, stub, _ = started
    await stub.Enqueue(router_pb2.EnqueueRequest(contact_id="new", queue="support"))
    old = router_pb2.EnqueueRequest(contact_id="old", queue="support")
    old.enqueue_time.FromSeconds(int(time.time()) - 120)
    reply = await stub.Enqueue(old)
    assert reply.enqueue_time.seconds == old.enqueue_time.seconds
    assert reply.position == 1
    assert server.core.router.waiting("support") == ["old", "new"]
    ann = Agent(stub, "a00")
    await ann.login()
    await ann.accept((await ann.next("offer")).contact_id)
    watch = stub.WatchContact(router_pb2.WatchContactRequest(contact_id="old"))
    events = [e async for e in watch]
    assert events[0].status.agent_id == "a00"
    check(server)
    ended = server.core.kpis(["support"])[0]
    assert ended.answered == 1 and ended.asa_seconds >= 119


async def test_transfer_and_cancel(started: Any) -> None:
    server, stub, _ = started
    await stub.Enqueue(router_pb2.EnqueueRequest(contact_id="c1", queue="support"))
    watch = stub.WatchContact(router_pb2.WatchContactRequest(contact_id="c1"))
    await watch.read()
    moved = await stub.Transfer(
        router_pb2.TransferRequest(contact_id="c1", queue="sales", reason="supervisor")
    )
    assert moved.outcome == router_pb2.TRANSFER_OUTCOME_MOVED and moved.position == 1
    event = await watch.read()
    assert (event.moved.from_queue, event.moved.to_queue) == ("support", "sales")
    await stub.Cancel(router_pb2.CancelRequest(contact_id="c1"))
    event = await watch.read()
    assert event.ended.reason == router_pb2.END_REASON_ABANDONED
    assert await watch.read() is grpc.aio.EOF
    kpi = server.core.kpis(["sales"])[0]
    assert kpi.abandoned == 1
    check(server)
    # An answered contact transferred is requeued as a new wait in the target queue.
    ann = Agent(stub, "a00")
    await ann.login()
    await stub.Enqueue(router_pb2.EnqueueRequest(contact_id="c2", queue="support"))
    await ann.accept((await ann.next("offer")).contact_id)
    await ann.next("connected")
    await ann.send(not_ready=router_pb2.AgentNotReady(reason="after-transfer"))
    requeued = await stub.Transfer(router_pb2.TransferRequest(contact_id="c2", queue="sales"))
    assert requeued.outcome == router_pb2.TRANSFER_OUTCOME_REQUEUED
    assert server.core.router.waiting("sales") == ["c2"]
    check(server)


async def test_supervisor_forces_agent_states(started: Any) -> None:
    """ForceAgentState: NotReady takes back a ringing offer (it keeps its place), Available
    ends the break, LoggedOut ends the session; bad requests change nothing."""
    server, stub, _ = started
    F = router_pb2.ForceAgentStateRequest
    ann = Agent(stub, "a00")
    await ann.login()
    for other in range(1, 20):  # only ann is logged in: the contact rings at her
        assert server.core.router.agent_state(f"a{other:02d}").value == "LoggedOut"
    await stub.Enqueue(router_pb2.EnqueueRequest(contact_id="c1", queue="support"))
    assert (await ann.next("offer")).contact_id == "c1"
    forced = await stub.ForceAgentState(
        F(agent_id="a00", state=router_pb2.AGENT_STATE_NOT_READY, reason="coaching")
    )
    assert forced.state == router_pb2.AGENT_STATE_NOT_READY
    assert (await ann.next("withdrawn")).contact_id == "c1"
    state = await ann.next("state")
    assert (state.state, state.reason) == (router_pb2.AGENT_STATE_NOT_READY, "coaching")
    assert server.core.router.waiting("support") == ["c1"]
    watch = stub.WatchContact(router_pb2.WatchContactRequest(contact_id="c1"))
    status = (await watch.read()).status
    assert status.position == 1 and status.estimated_wait_seconds > 0
    watch.cancel()
    check(server)
    forced = await stub.ForceAgentState(F(agent_id="a00", state=router_pb2.AGENT_STATE_AVAILABLE))
    assert forced.state == router_pb2.AGENT_STATE_RESERVED  # c1 rings at her again at once
    assert (await ann.next("offer")).contact_id == "c1"
    await ann.accept("c1")
    await ann.next("connected")
    # Forced out mid-call: the call goes on, the desktop sees LoggedOut, then its stream ends.
    forced = await stub.ForceAgentState(F(agent_id="a00", state=router_pb2.AGENT_STATE_LOGGED_OUT))
    assert forced.state == router_pb2.AGENT_STATE_LOGGED_OUT
    state = await ann.next("state")
    assert (state.state, state.reason) == (router_pb2.AGENT_STATE_LOGGED_OUT, "supervisor")
    assert await asyncio.wait_for(ann.call.read(), TIMEOUT) is grpc.aio.EOF
    assert "a00" not in server.core.sessions
    check(server)
    await stub.Complete(router_pb2.CompleteRequest(contact_id="c1"))
    check(server)
    # Bad requests: a clear status, nothing changed.
    await expect(
        grpc.StatusCode.NOT_FOUND,
        stub.ForceAgentState(F(agent_id="zed", state=router_pb2.AGENT_STATE_AVAILABLE)),
        "zed",
        "AgentTeam",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        stub.ForceAgentState(F(agent_id="a01", state=router_pb2.AGENT_STATE_BUSY)),
        "AGENT_STATE_NOT_READY",
    )
    await expect(grpc.StatusCode.INVALID_ARGUMENT, stub.ForceAgentState(F(agent_id="a01")), "unset")
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        stub.ForceAgentState(F(agent_id="a01", state=router_pb2.AGENT_STATE_AVAILABLE)),
        "AgentSession",
    )
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        stub.ForceAgentState(F(agent_id="a01", state=router_pb2.AGENT_STATE_NOT_READY)),
        "not logged in",
    )
    assert server.core.router.agent_state("a01").value == "LoggedOut"
    check(server)


async def test_watch_queues_streams_kpis(started: Any) -> None:
    server, stub, _ = started
    for n in range(3):
        await stub.Enqueue(router_pb2.EnqueueRequest(contact_id=f"c{n}", queue="support"))
    ann = Agent(stub, "a00")
    await ann.login(ready=False)
    stream = stub.WatchQueues(
        router_pb2.WatchQueuesRequest(queues=["support"], interval_seconds=0.05)
    )
    first = await stream.read()
    (kpi,) = first.queues
    assert kpi.queue == "support" and kpi.waiting == 3 and kpi.longest_wait_seconds >= 0
    states = {c.state: c.count for c in kpi.agents}
    assert states[router_pb2.AGENT_STATE_NOT_READY] == 1
    assert states[router_pb2.AGENT_STATE_LOGGED_OUT] == 19
    await ann.send(ready=router_pb2.AgentReady())
    await ann.accept((await ann.next("offer")).contact_id)

    async def until_waiting(n: int) -> router_pb2.QueueKpis:
        while True:
            snap = await stream.read()
            if snap.queues[0].waiting == n:
                return snap.queues[0]

    kpi = await asyncio.wait_for(until_waiting(2), TIMEOUT)
    assert kpi.answered == 1 and kpi.service_level == 1.0
    stream.cancel()
    await expect(
        grpc.StatusCode.NOT_FOUND,
        stub.WatchQueues(router_pb2.WatchQueuesRequest(queues=["nope"])).read(),
        "nope",
    )
    check(server)


async def test_graceful_stop_ends_streams_and_health(tmp_path: Path) -> None:
    config = write(tmp_path / "tenant.yaml", queue("support", ["first"]), team("first", ["a00"]))
    server = RouterServer(config, address="127.0.0.1:0", reload_interval=0, grace=0.5)
    port = await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = router_pb2_grpc.RouterServiceStub(channel)
    ann = Agent(stub, "a00")
    await ann.login()
    await stub.Enqueue(router_pb2.EnqueueRequest(contact_id="c1", queue="support"))
    await ann.next("offer")
    await stub.Enqueue(router_pb2.EnqueueRequest(contact_id="c2", queue="support"))
    watch = stub.WatchContact(router_pb2.WatchContactRequest(contact_id="c2"))
    await watch.read()
    kpis = stub.WatchQueues(router_pb2.WatchQueuesRequest(interval_seconds=0.05))
    await kpis.read()
    start = time.monotonic()
    await server.stop()
    assert time.monotonic() - start < 5
    # Sessions and watches end cleanly (EOF), the periodic KPI stream is cut at the grace.
    while (event := await ann.call.read()) is not grpc.aio.EOF:
        assert event.WhichOneof("event") in ("state", "withdrawn")
    assert await watch.read() is grpc.aio.EOF

    async def kpis_end() -> grpc.StatusCode:
        try:
            while await kpis.read() is not grpc.aio.EOF:
                pass
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    assert await asyncio.wait_for(kpis_end(), TIMEOUT) in (
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNAVAILABLE,
    )
    await channel.close()


async def test_agent_completes_a_chat_on_its_stream(tmp_path: Path) -> None:
    chat_team = team("desk", ["a00", "a01"])
    for agent in chat_team["spec"]["agents"]:
        agent["capacity"] = {"voice": 0, "chat": 2}
    config = write(tmp_path / "tenant.yaml", queue("chat", ["desk"], channel="chat"), chat_team)
    server = RouterServer(config, address="127.0.0.1:0", reload_interval=0, grace=0)
    port = await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = router_pb2_grpc.RouterServiceStub(channel)
    try:
        ann, bob = Agent(stub, "a00"), Agent(stub, "a01")
        await ann.login()
        for cid in ("chat-1", "chat-2"):  # two chats at once: capacity 2
            await stub.Enqueue(router_pb2.EnqueueRequest(contact_id=cid, queue="chat"))
            await ann.accept((await ann.next("offer")).contact_id)
            await ann.next("connected")
        await bob.login(ready=False)
        # Only the contact's agent may complete it.
        rid = await bob.send(complete=router_pb2.AgentComplete(contact_id="chat-1"))
        error = await bob.next("error")
        assert error.request_id == rid
        assert error.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
        await ann.send(complete=router_pb2.AgentComplete(contact_id="chat-1"))
        await until(lambda: "chat-1" not in server.core.contacts, "chat-1 completed")
        await ann.send(complete=router_pb2.AgentComplete(contact_id="chat-1"))
        assert "never enqueued or has ended" in (await ann.next("error")).message
        assert server.core.contacts["chat-2"].agent_id == "a00"
        check(server)
    finally:
        await channel.close()
        await server.stop(0)


async def test_run_router_sets_the_garbage_collector_up_for_serving(tmp_path: Path) -> None:
    """What ``callmesh worker router`` runs leaves the start-up heap out of later garbage
    collections (a full collection walking it stalled every rpc for 30-110 ms) and collects
    the young generation less often."""
    config = write(tmp_path / "tenant.yaml", queue("support", ["first"]), team("first", ["a00"]))
    server = RouterServer(config, address="127.0.0.1:0", reload_interval=0, grace=0)
    thresholds = gc.get_threshold()
    gc.unfreeze()
    running = asyncio.create_task(run_router(server))
    try:
        await until(lambda: server.port != 0 and gc.get_freeze_count() > 0, "a frozen heap")
        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, *thresholds[1:])
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        stub = router_pb2_grpc.RouterServiceStub(channel)
        reply = await stub.Enqueue(router_pb2.EnqueueRequest(contact_id="c1", queue="support"))
        assert reply.position == 1  # nobody logged in: it waits, served as usual
        await channel.close()
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        gc.unfreeze()
        gc.set_threshold(*thresholds)
