"""The callcontrol worker against the FreeSWITCH test peer and a real router, over loopback.

One call's ESL commands in order; bad input (500 digits, an expression on a missing
attribute, a flow that does not exist, a malformed frame, FreeSWITCH vanishing mid-command)
each ending that call safely while others are served; a callcontrol restart that leaves
bridged calls up and re-adopts waiting ones with their original enqueue time.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc.aio
import pytest
import yaml
from callmesh.v1 import router_pb2, router_pb2_grpc
from callmesh.workers.callcontrol.call import BRIDGED, MARKER
from callmesh.workers.callcontrol.config import CallControlConfig, load_config
from callmesh.workers.callcontrol.worker import CallControl
from callmesh.workers.interactions import Disposition, MemorySink
from callmesh.workers.router.server import RouterServer

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.append(_TESTS)

import esl_peer.peer as peer_module  # noqa: E402
from esl_peer.channel import Channel  # noqa: E402
from esl_peer.peer import Endpoint, FakeFreeSwitch, OutboundCall  # noqa: E402

NS = "acme"
DOMAIN = "acme.voice.example.net"


def docs() -> list[dict[str, Any]]:
    meta = {"namespace": NS}
    center = {
        "apiVersion": "callmesh.io/v1alpha1",
        "kind": "ContactCenter",
        "metadata": {"name": "acme", **meta},
        "spec": {
            "sipDomain": DOMAIN,
            "timeZone": "UTC",
            "numbers": [{"did": "+12125550100", "flow": "main"}],
            "recording": {"policy": "all", "format": "wav"},
        },
    }
    queues = [
        {
            "apiVersion": "callmesh.io/v1alpha1",
            "kind": "Queue",
            "metadata": {"name": name, **meta},
            "spec": {
                "channel": "voice",
                "strategy": {"name": "longest-idle-agent"},
                "tiers": [{"level": 1, "teams": ["desk"]}],
                "wrapUpSeconds": 0,
                "offerTimeoutSeconds": 5,
                "announcements": {"greeting": {"text": f"Welcome to {name}."}},
            },
        }
        for name in ("general", "sales")
    ]
    team = {
        "apiVersion": "callmesh.io/v1alpha1",
        "kind": "AgentTeam",
        "metadata": {"name": "desk", **meta},
        "spec": {
            "agents": [
                {"id": "ann", "name": "Ann", "extension": "1001"},
                {"id": "bob", "name": "Bob", "extension": "1002"},
            ]
        },
    }
    main = {
        "apiVersion": "callmesh.io/v1alpha1",
        "kind": "IVRFlow",
        "metadata": {"name": "main", **meta},
        "spec": {
            "entry": "menu",
            "onError": "to-general",
            "nodes": [
                {
                    "id": "menu",
                    "type": "menu",
                    "menu": {
                        "prompt": {"file": "ivr/menu.wav"},
                        "options": [
                            {"digit": "1", "target": "account"},
                            {"digit": "2", "target": "to-sales"},
                        ],
                        "retries": 2,
                        "timeoutTarget": "to-general",
                        "invalidTarget": "to-general",
                    },
                },
                {
                    "id": "account",
                    "type": "collect",
                    "collect": {
                        "prompt": {"text": "Enter your account number."},
                        "attribute": "account",
                        "minDigits": 4,
                        "maxDigits": 8,
                        "retries": 1,
                        "next": "check",
                        "invalidTarget": "to-general",
                    },
                },
                {
                    "id": "check",
                    "type": "condition",
                    "condition": {
                        # "tier" is never set: an expression error, so onError runs
                        "expression": 'attributes["tier"] == "gold"',
                        "ifTrue": "to-sales",
                        "ifFalse": "to-sales",
                    },
                },
                {"id": "to-sales", "type": "queue", "queue": {"queue": "sales"}},
                {"id": "to-general", "type": "queue", "queue": {"queue": "general"}},
            ],
        },
    }
    return [center, *queues, team, main]


@dataclass
class Stack:
    peer: FakeFreeSwitch
    router: RouterServer
    worker: CallControl
    sink: MemorySink
    config: CallControlConfig
    config_path: Path
    address: str

    async def call(
        self, keys: list[str] | None = None, *, caller: str = "1000", **kwargs: Any
    ) -> OutboundCall:
        pressed = iter(keys or [])

        def setup(channel: Channel) -> None:
            def press(ch: Channel, arg: str) -> None:
                digits = next(pressed, "")
                if digits:
                    ch.caller_dtmf(digits)

            channel.when_app("play_and_get_digits", press)
            if kwargs.get("setup"):
                kwargs["setup"](channel)

        variables = {"callmesh_managed": "true", "callmesh_tenant": NS, "callmesh_flow": "main"}
        variables.update(kwargs.get("variables", {}))
        return await self.peer.call(
            "127.0.0.1",
            self.worker.server.port,
            destination="+12125550100",
            caller_id_number=caller,
            variables=variables,
            setup=setup,
        )

    def record(self, uuid: str) -> Any:
        found = [r for r in self.sink.records if r.call_id == uuid]
        assert len(found) <= 1, f"{len(found)} records for {uuid}"
        return found[0] if found else None


async def until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


class Desk:
    """One agent desktop (AgentSession logged in ready)."""

    def __init__(self, address: str, agent_id: str) -> None:
        self.channel = grpc.aio.insecure_channel(address)
        stub = router_pb2_grpc.RouterServiceStub(self.channel)
        self.stream = stub.AgentSession()
        self.agent_id = agent_id
        self.ready = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        login = router_pb2.AgentLogin(agent_id=self.agent_id, ready=True)
        await self.stream.write(router_pb2.AgentSessionRequest(request_id="l", login=login))
        async for _ in self.stream:
            self.ready.set()

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.channel.close(None)


def make_worker(stack_config: CallControlConfig, peer: FakeFreeSwitch, address: str,
                sink: MemorySink, port: int = 0) -> CallControl:  # fmt: skip
    return CallControl(
        stack_config,
        router=address,
        freeswitch=("127.0.0.1", peer.port),
        password="ClueCon",
        sink=sink,
        host="127.0.0.1",
        port=port,
        recordings="/recordings",
    )


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    path = tmp_path / "tenant.yaml"
    path.write_text(yaml.safe_dump_all(docs(), sort_keys=False))
    config = load_config(path)
    peer = FakeFreeSwitch()
    await peer.start()
    router = RouterServer(path, address="127.0.0.1:0", reload_interval=0)
    address = f"127.0.0.1:{await router.start()}"
    sink = MemorySink()
    worker = make_worker(config, peer, address, sink)
    await worker.start()
    s = Stack(peer, router, worker, sink, config, path, address)
    try:
        yield s
    finally:
        await s.worker.stop(0.5)
        await s.router.stop(0)
        await s.peer.stop()


def apps(channel: Channel) -> list[tuple[str, str]]:
    return [
        (e.get("Application") or "", e.get("Application-Data") or "")
        for e in channel.events
        if e.name == "CHANNEL_EXECUTE"
    ]


async def test_one_call_esl_commands_in_order_and_its_record(stack: Stack) -> None:
    desk = Desk(stack.address, "ann")
    await desk.ready.wait()
    agent_legs: list[Channel] = []
    stack.peer.default_endpoint = Endpoint(on_channel=agent_legs.append)
    call = await stack.call(["1", "12345678"])
    uuid = call.channel.uuid
    await until(lambda: call.channel.other is not None, "bridged")
    leg = agent_legs[0]
    assert leg.name == f"user/1001@{DOMAIN}"
    stack.peer._hangup_leg(leg, "NORMAL_CLEARING")  # the agent hangs up
    await until(lambda: stack.record(uuid) is not None, "the record")
    run = apps(call.channel)
    names = [a for a, _ in run]
    # answered with api uuid_answer (no application): the IVR's first prompt runs first
    assert names[0] == "play_and_get_digits" and run[0][1].split(" ")[:3] == ["1", "1", "1"]
    assert run[1] == ("speak", "flite|kal|Enter your account number.")
    assert names[2] == "play_and_get_digits" and run[2][1].split(" ")[1] == "8"
    assert run[3] == ("speak", "flite|kal|Welcome to general.")
    assert "answer" not in names
    assert names[-1] == "record_session"
    path = f"/recordings/{NS}/"
    assert any(a == "record_session" and d.startswith(path) for a, d in run)
    # the markers are one-word values: set at once with uuid_setvar, no `set` application
    assert "set" not in names
    commands = stack.peer.commands

    def at(prefix: str) -> int:
        return next(i for i, c in enumerate(commands) if c.startswith(prefix))

    assert at(f"api uuid_answer {uuid}") < commands.index("sendmsg")
    marked = at(f"api uuid_setvar {uuid} {MARKER} general|")  # waiting: before the enqueue
    bridged = at(f"api uuid_setvar {uuid} {BRIDGED} ann|")  # bridged: before uuid_bridge
    assert marked < at("bgapi originate") < bridged < at(f"api uuid_bridge {uuid} ")
    assert call.channel.variables[BRIDGED].startswith("ann|")
    # the agent hung up, and that hang-up stands: the worker kills the agent's leg at the
    # caller's hang-up only if it has not yet seen the leg's CHANNEL_HANGUP (the two come on
    # different connections, in either order), and such a late uuid_kill finds no channel
    assert leg.hangup_cause == "NORMAL_CLEARING"
    originate = next(c for c in commands if c.startswith("bgapi originate"))
    assert f"callmesh_contact={uuid}" in originate and "originate_timeout=5" in originate
    assert any(c == f"api uuid_bridge {uuid} {leg.uuid}" for c in commands)
    record = stack.record(uuid)
    assert record.disposition == Disposition.ANSWERED and record.agent_id == "ann"
    assert record.queue == "general" and record.attributes["account"] == "12345678"
    assert record.ivr_errors == ["expression-error"]  # "tier" is missing: onError
    assert record.recording_path.startswith(path) and record.recording_path.endswith(".wav")
    assert record.started_at <= record.answered_at <= record.enqueued_at <= record.connected_at
    assert record.connected_at <= record.ended_at
    await until(lambda: "ann" in stack.router.core.presence, "presence")  # type: ignore[union-attr]
    await desk.close()


async def test_hostile_caller_id_reaches_the_agent_leg_as_one_value(stack: Stack) -> None:
    """The caller's number is the SIP From user: whatever it holds, the originate for the
    agent leg carries it as one variable and nothing else (the peer parses the command
    with FreeSWITCH's own rules, tests/esl_peer + workers/esl/quoting.py)."""
    desk = Desk(stack.address, "ann")
    await desk.ready.wait()
    agent_legs: list[Channel] = []
    stack.peer.default_endpoint = Endpoint(on_channel=agent_legs.append)
    hostile = "1,callmesh_agent=mallory,x='a b'}user/666 &bridge(x)\\"
    call = await stack.call(["1", "12345678"], caller=hostile)
    await until(lambda: call.channel.other is not None, "bridged")
    leg = agent_legs[0]
    assert leg.name == f"user/1001@{DOMAIN}"  # the dial string did not move
    assert leg.profile["Caller-ID-Number"] == hostile.replace("}", "")  # braces cannot travel
    assert leg.variables["callmesh_agent"] == "ann"
    assert "x" not in leg.variables
    originate = next(c for c in stack.peer.commands if c.startswith("bgapi originate"))
    assert "\n" not in originate
    stack.peer._hangup_leg(leg, "NORMAL_CLEARING")
    await until(lambda: stack.record(call.channel.uuid) is not None, "the record")
    assert stack.record(call.channel.uuid).ani == hostile
    await desk.close()


async def test_bad_input_takes_safe_paths_while_others_are_served(stack: Stack) -> None:
    desk = Desk(stack.address, "ann")
    await desk.ready.wait()
    stack.peer.default_endpoint = Endpoint(
        on_channel=lambda leg: asyncio.get_running_loop().call_soon(lambda: None)
    )
    # 500 digits at the menu, then 500 at the account prompt; the missing attribute;
    # a flow that does not exist; a normal caller at the same time.
    flood = await stack.call(["5" * 500, "9" * 500])
    missing_attr = await stack.call(["1", "4321#"])
    no_flow = await stack.call([], variables={"callmesh_flow": "no-such-flow"})
    normal = await stack.call(["2"])
    calls = [flood, missing_attr, no_flow, normal]
    await until(
        lambda: all((stack.router.core and c.channel.uuid in stack.router.core.contacts)  # type: ignore[union-attr]
                    or stack.record(c.channel.uuid) for c in calls),
        "every call queued",
    )  # fmt: skip
    core = stack.router.core
    assert core is not None
    queue_of = {c.channel.uuid: core.contacts[c.channel.uuid].spec.queue for c in calls
                if c.channel.uuid in core.contacts}  # fmt: skip
    for c in calls:
        c.channel.hangup("NORMAL_CLEARING")
    await until(lambda: len(stack.sink.records) == 4, "four records")
    flood_rec = stack.record(flood.channel.uuid)
    assert flood_rec.ivr_path[-1] == "to-general"  # invalid keys -> the invalid target
    missing = stack.record(missing_attr.channel.uuid)
    assert "expression-error" in missing.ivr_errors and missing.ivr_path[-1] == "to-general"
    assert missing.attributes["account"] == "4321"
    nf = stack.record(no_flow.channel.uuid)
    assert nf.ivr_outcome == "no-flow" and nf.queue == stack.config.default_queue == "general"
    assert stack.record(normal.channel.uuid).queue == "sales"
    assert queue_of.get(normal.channel.uuid, "sales") == "sales"
    # the 500 keys were never passed on: every collect asked for at most 8
    for a, d in apps(flood.channel):
        if a == "play_and_get_digits":
            assert int(d.split(" ")[1]) <= 8
    await desk.close()


async def test_malformed_frame_and_lost_socket_end_one_call_only(stack: Stack) -> None:
    port = stack.worker.server.port
    # a "FreeSWITCH" that answers connect, then sends a frame with a bad Content-Length
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await reader.readuntil(b"\n\n") == b"connect\n\n"
    writer.write(
        b"Event-Name: CHANNEL_DATA\nUnique-ID: bad-frame-call\nvariable_callmesh_flow: main\n"
        b"Content-Type: command/reply\nReply-Text: %2BOK%0A\nSocket-Mode: async\n"
        b"Control: full\n\n"
    )
    assert (await reader.readuntil(b"\n\n")).startswith(b"myevents")
    writer.write(b"Content-Type: command/reply\nContent-Length: lots\n\n")
    await writer.drain()
    # the worker closed this socket; nothing came after the setup commands it sent with
    # myevents in one write
    rest = await reader.read()
    assert [c.split(b" ")[0] for c in rest.split(b"\n\n") if c] == [b"nixevent", b"linger",
                                                                      b"resume"]  # fmt: skip
    writer.close()
    # FreeSWITCH vanishing in the middle of a call
    hold = await stack.call(["1", "12345678"])
    await until(
        lambda: any(a == "playback" and "local_stream" in d for a, d in apps(hold.channel)),
        "hold music",
    )
    hold.listener.abort()
    normal = await stack.call(["2"])
    await until(lambda: stack.record(normal.channel.uuid) is not None or
                normal.channel.uuid in stack.router.core.contacts,  # type: ignore[union-attr]
                "another call is served")  # fmt: skip
    await until(lambda: stack.record("bad-frame-call") is not None, "bad call's record")
    await until(lambda: stack.record(hold.channel.uuid) is not None, "lost call's record")
    assert stack.record("bad-frame-call").disposition == Disposition.FAILED
    assert stack.record(hold.channel.uuid).disposition == Disposition.FAILED
    normal.channel.hangup()
    await until(lambda: stack.record(normal.channel.uuid) is not None, "normal record")
    assert stack.record(normal.channel.uuid).disposition == Disposition.ABANDONED_QUEUE


class ResumingListener(peer_module.Listener):
    """mod_event_socket's ``resume`` command (the call goes on in the dialplan when the
    socket closes), which the shared peer answers with ``-ERR command not found``."""

    resume = False

    async def cmd_resume(self, args: str, headers: dict[str, str], body: bytes) -> None:
        self.resume = True
        self.reply("+OK")


class ResumingFreeSwitch(FakeFreeSwitch):
    """The peer plus what a callcontrol restart needs from FreeSWITCH: ``resume``, the
    dialplan's ``park`` after ``socket`` (the operator renders it), ``uuid_transfer ...
    'socket:host:port async full' inline`` connecting a parked call to a socket again."""

    def __init__(self) -> None:
        super().__init__()
        self.api_functions["uuid_transfer"] = self._transfer
        self.core.apps["park"] = self._park
        self._unpark: dict[str, asyncio.Event] = {}

    async def _park(self, ch: Channel, arg: str) -> str:
        ch.fire("CHANNEL_PARK")
        unpark = self._unpark.setdefault(ch.uuid, asyncio.Event())
        hung = asyncio.ensure_future(ch.hungup.wait())
        moved = asyncio.ensure_future(unpark.wait())
        await asyncio.wait({hung, moved}, return_when=asyncio.FIRST_COMPLETED)
        hung.cancel()
        moved.cancel()
        unpark.clear()
        return "_none_"

    def _socket_gone(self, call: OutboundCall) -> None:
        channel = call.channel
        if getattr(call.listener, "resume", False) and not channel.hungup.is_set():
            if channel.other is None:  # waiting: the dialplan goes on to park
                channel.break_media.set()
                channel.enqueue("park", "")
            return  # bridged: stays bridged
        super()._socket_gone(call)

    async def _transfer(self, peer: FakeFreeSwitch, args: str) -> str:
        uuid, _, rest = args.partition(" ")
        channel = self._channel(uuid)
        target = rest.strip().removesuffix("inline").strip().strip("'")
        if channel is None or not target.startswith("socket:"):
            return "-ERR No such channel!\n"
        host, _, port = target.removeprefix("socket:").split(" ")[0].rpartition(":")
        self._unpark.setdefault(uuid, asyncio.Event()).set()
        reader, writer = await asyncio.open_connection(host, int(port))
        call = OutboundCall(channel, None, "async")  # type: ignore[arg-type]
        listener = peer_module.Listener(self, reader, writer, call=call)
        call.listener = listener
        self.listeners.add(listener)
        self.calls.append(call)
        call.task = self._spawn(listener.serve())
        self._spawn(self._call_lifecycle(call, f"{host}:{port} async full"))
        return "+OK\n"


async def test_callcontrol_restart_keeps_bridged_and_readopts_waiting_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(peer_module, "Listener", ResumingListener)
    path = tmp_path / "tenant.yaml"
    path.write_text(yaml.safe_dump_all(docs(), sort_keys=False))
    config = load_config(path)
    peer = ResumingFreeSwitch()
    await peer.start()
    router = RouterServer(path, address="127.0.0.1:0", reload_interval=0)
    address = f"127.0.0.1:{await router.start()}"
    sink = MemorySink()
    worker = make_worker(config, peer, address, sink)
    await worker.start()
    stack = Stack(peer, router, worker, sink, config, path, address)
    desk = Desk(address, "ann")
    try:
        await desk.ready.wait()
        bridged = await stack.call(["1", "12345678"])
        await until(lambda: bridged.channel.other is not None, "first call bridged")
        waiting = [await stack.call(["1", "12345678"]) for _ in range(3)]
        core = router.core
        assert core is not None
        await until(lambda: all(w.channel.uuid in core.contacts for w in waiting), "3 waiting")
        times = {w.channel.uuid: core.contacts[w.channel.uuid].wall_enqueued for w in waiting}
        # the process stops (a rolling update): nothing is hung up
        await worker.stop(0.2)
        assert not bridged.channel.hungup.is_set() and bridged.channel.other is not None
        for w in waiting:
            assert not w.channel.hungup.is_set()
        await until(lambda: all(w.channel.current and w.channel.current.app == "park"
                                for w in waiting), "waiting calls parked")  # fmt: skip
        assert not sink.records, "no record while the calls live on"
        # a new process finds them and takes them back, original times kept
        worker2 = make_worker(config, peer, address, sink)
        await worker2.start()
        stack.worker = worker2
        await until(lambda: worker2.recovered == 3, "three calls re-adopted")
        assert bridged.channel.uuid not in worker2.calls
        assert bridged.channel.uuid in worker2.orphans  # finished here when it hangs up
        for w in waiting:
            assert core.contacts[w.channel.uuid].wall_enqueued == pytest.approx(
                times[w.channel.uuid], abs=1e-3
            )
        # the bridged call ends; Ann takes the next one (the re-adopted calls get bridged)
        peer._hangup_leg(bridged.channel.other, "NORMAL_CLEARING")  # type: ignore[arg-type]
        await until(lambda: waiting[0].channel.other is not None, "oldest waiting bridged")
        for w in waiting:
            w.channel.hangup()
        await until(lambda: len(sink.records) == 4, "four records")
        by_id = {r.call_id: r for r in sink.records}
        assert len(by_id) == 4
        done = by_id[bridged.channel.uuid]
        assert done.recovered and done.disposition == Disposition.ANSWERED
        assert done.agent_id == "ann" and done.ended_at is not None
        first = by_id[waiting[0].channel.uuid]
        assert first.recovered and first.disposition == Disposition.ANSWERED
        assert first.ivr_path[-1] == "to-general" or first.ivr_path  # the record carried over
        assert first.attributes.get("account") == "12345678"
        assert all(by_id[w.channel.uuid].recovered for w in waiting)
        await worker2.stop(0.5)
    finally:
        await desk.close()
        await router.stop(0)
        await peer.stop()


async def test_router_restart_after_overflow_requeues_in_the_new_queue(tmp_path: Path) -> None:
    objects = docs()
    sales = next(d for d in objects if d["kind"] == "Queue" and d["metadata"]["name"] == "sales")
    sales["spec"]["maxWaitSeconds"] = 1
    sales["spec"]["overflow"] = {"action": "queue", "queue": "general"}
    path = tmp_path / "tenant.yaml"
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    config = load_config(path)
    peer = FakeFreeSwitch()
    await peer.start()
    router = RouterServer(path, address="127.0.0.1:0", reload_interval=0)
    port = await router.start()
    address = f"127.0.0.1:{port}"
    sink = MemorySink()
    worker = make_worker(config, peer, address, sink)
    await worker.start()
    stack = Stack(peer, router, worker, sink, config, path, address)
    try:
        call = await stack.call(["2"])  # straight to sales; nobody is logged in
        uuid = call.channel.uuid
        core = router.core
        assert core is not None
        await until(lambda: uuid in core.contacts, "queued in sales")
        first = core.contacts[uuid].wall_enqueued
        await until(lambda: core.contacts[uuid].spec.queue == "general", "overflowed")
        await until(lambda: worker.calls[uuid].record.queue == "general", "callcontrol saw it")
        await router.stop(0)
        router = RouterServer(path, address=address, reload_interval=0)
        await router.start()
        core2 = router.core
        assert core2 is not None
        await until(lambda: uuid in core2.contacts, "enqueued again")
        again = core2.contacts[uuid]
        assert again.spec.queue == "general"
        assert again.wall_enqueued == pytest.approx(first, abs=1e-3)
        # the router holds the contact before its answer reaches callcontrol: hanging up in
        # between would race the requeue count
        await until(lambda: worker.calls[uuid].record.requeues == 1, "callcontrol requeued")
        call.channel.hangup()
        await until(lambda: stack.record(uuid) is not None, "the record")
        record = stack.record(uuid)
        assert record.queue == "general" and record.requeues == 1
        assert record.disposition == Disposition.ABANDONED_QUEUE
    finally:
        await worker.stop(0.5)
        await router.stop(0)
        await peer.stop()
