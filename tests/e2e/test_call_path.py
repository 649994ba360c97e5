"""A call's whole path over loopback: FreeSWITCH peer + callcontrol + router + agents.

50 callers dial ACME's main line at once and walk the example IVR (CRM lookup, menus,
invalid keys, timeouts), queue, hear announcements and are bridged to simulated agents
(one of whom never answers: RONA); some hang up while waiting (abandon). Meanwhile the
dialer hands over answered outbound calls (``callmesh_queue`` and the campaign's
``callmesh_attr_*`` variables, built by the dialer's own ``originate_command`` and
``connect_transfer`` and read with FreeSWITCH's parsing rules): they skip the IVR and queue
directly with the campaign's attributes. The router is killed mid-test and a new one started on the same port: every waiting call is enqueued
again with its original enqueue time. At the end every call has exactly one interaction
record. Every wait is on a condition; the only timed values are the agents' talk times.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
import yaml
from callmesh.v1 import router_pb2, router_pb2_grpc
from callmesh.workers.callcontrol.config import load_config
from callmesh.workers.callcontrol.worker import CallControl
from callmesh.workers.dialer.calls import connect_transfer, originate_command
from callmesh.workers.esl.quoting import parse_originate, separate_string
from callmesh.workers.interactions import Disposition, MemorySink
from callmesh.workers.router.server import RouterServer
from callmesh.workers.telemetry import setup_telemetry
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from callmesh.dialer.campaign import Dial
from callmesh.dialer.contacts import Contact

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.append(_TESTS)

from esl_peer.channel import Channel  # noqa: E402
from esl_peer.peer import Endpoint, FakeFreeSwitch  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "acme-insurance"
NS = "acme-insurance"
DOMAIN = "acme-insurance.voice.example.net"
CALLERS = 50
DIALED = 4
"""Answered outbound calls the dialer hands to callcontrol during the test."""
ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def tenant_yaml(tmp: Path) -> Path:
    """The example tenant as the operator renders it for the workers, made test-friendly:
    open around the clock (the test runs at any hour), no wrap-up, short ring timeouts,
    only the in-memory CRM (no SMTP server here)."""
    docs: list[dict[str, Any]] = []
    for name in ("contactcenter", "queues", "agentteams", "ivrflows"):
        docs += [d for d in yaml.safe_load_all((EXAMPLE / f"{name}.yaml").read_text()) if d]
    for doc in docs:
        spec = doc["spec"]
        if doc["kind"] == "ContactCenter":
            for schedule in spec["schedules"]:
                schedule["weekly"] = [
                    {"days": ALL_DAYS, "open": "00:00", "close": "12:00"},
                    {"days": ALL_DAYS, "open": "12:00", "close": "23:59"},
                ]
                schedule["holidays"] = []
                schedule["timeZone"] = "UTC"
            spec["plugins"] = [p for p in spec["plugins"] if p["name"] == "memory-crm"]
        elif doc["kind"] == "Queue":
            spec["wrapUpSeconds"] = 0
            spec["offerTimeoutSeconds"] = 5
        elif doc["kind"] == "AgentTeam":
            spec.pop("wrapUpSeconds", None)
    path = tmp / "tenant.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


async def until(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Wait for a condition (checked on every loop turn)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


class Agents:
    """Agent desktops: one AgentSession each, logged in ready, reconnecting after a router
    restart once :attr:`allowed` is set (so the test can look at the new router first)."""

    def __init__(self, address: str, agent_ids: list[str]) -> None:
        self.address = address
        self.ids = agent_ids
        self.allowed = asyncio.Event()
        self.allowed.set()
        self.logged_in: set[str] = set()
        self.offers = 0
        self._tasks = [asyncio.create_task(self._desk(a)) for a in agent_ids]

    async def _desk(self, agent_id: str) -> None:
        while True:
            await self.allowed.wait()
            channel = grpc.aio.insecure_channel(self.address)
            try:
                stub = router_pb2_grpc.RouterServiceStub(channel)
                call = stub.AgentSession(wait_for_ready=True)
                await call.write(
                    router_pb2.AgentSessionRequest(
                        request_id=f"{agent_id}-login",
                        login=router_pb2.AgentLogin(agent_id=agent_id, ready=True),
                    )
                )
                async for message in call:
                    self.logged_in.add(agent_id)
                    if message.WhichOneof("event") == "offer":
                        self.offers += 1
            except grpc.aio.AioRpcError:
                pass
            finally:
                self.logged_in.discard(agent_id)
                await channel.close(None)
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def caller_script(kind: str, rng: random.Random) -> Callable[[Channel], None]:
    """How one caller behaves: the keys pressed at each prompt, and maybe hanging up on
    hold music."""
    keys = {
        "sales": ["1"],
        "invalid-then-support": ["7", "3"],
        "timeouts": ["", "", ""],
        "claims-auto": ["2", "1"],
        "spanish": ["9"],
        "abandon": ["1"],
    }[kind]
    pressed = iter(keys)

    def setup(channel: Channel) -> None:
        def press(ch: Channel, arg: str) -> None:
            digits = next(pressed, "")
            if digits:
                ch.caller_dtmf(digits)

        channel.when_app("play_and_get_digits", press)
        if kind == "abandon":

            def give_up(ch: Channel, arg: str) -> None:
                if arg.startswith("local_stream://"):
                    ch.variables["test_abandoned"] = "true"
                    ch.hangup("NORMAL_CLEARING")

            channel.when_app("playback", give_up)

    return setup


def dialer_handoff(i: int, callcontrol: str) -> tuple[str, dict[str, str]]:
    """The caller id and channel variables of an outbound call the dialer answered and
    moved to callcontrol: its originate's ``{...}`` block and the ``set:`` steps of its
    ``uuid_transfer ... inline``, both read as FreeSWITCH reads them."""
    contact = Contact(f"c{i}", f"+1646555{i:04d}", "UTC", {"policy": f"P-{i:03d}", "tier": "gold"})
    attempt = f"policy-renewals.c{i}.1"
    dial = Dial(attempt, contact, "+12125550102", "ACME Insurance", 30,
                {"callmesh_campaign": "policy-renewals", "callmesh_attempt": attempt,
                 "callmesh_contact": contact.id})  # fmt: skip
    leg = f"00000000-0000-4000-8000-{i:012d}"
    parsed = parse_originate(originate_command(dial, "carrier", call_uuid=leg).split(" ", 1)[1])
    assert parsed is not None
    variables = dict(parsed[0])
    # uuid_transfer <uuid> '<app:arg,...>' inline: the API's words, then the inline
    # dialplan's ',' steps, each "app:data"
    words = separate_string(connect_transfer(leg, "sales", callcontrol, attempt), " ")
    assert words[0] == "uuid_transfer" and words[-1] == "inline"
    for step in separate_string(words[2], ","):
        app, _, data = step.partition(":")
        if app == "set":
            name, _, value = data.partition("=")
            variables[name] = value
    assert variables["callmesh_queue"] == "sales"
    caller = variables.pop("origination_caller_id_number")
    for name in ("origination_uuid", "origination_caller_id_name"):
        variables.pop(name)
    return caller, variables


@pytest.mark.slow
async def test_fifty_callers_router_restart_every_call_accounted_once(tmp_path: Path) -> None:
    assert type(asyncio.get_running_loop()).__module__.startswith("uvloop")  # conftest.py
    rng = random.Random(8)
    config_path = tenant_yaml(tmp_path)
    config = load_config(config_path)
    exporter = InMemorySpanExporter()
    telemetry = setup_telemetry("callcontrol", tenant=NS, span_exporters=[exporter])
    peer = FakeFreeSwitch()
    await peer.start()
    router = RouterServer(config_path, address="127.0.0.1:0", reload_interval=0)
    port = await router.start()
    address = f"127.0.0.1:{port}"
    teams: dict[str, list[str]] = {}
    spanish: list[str] = []  # support's Spanish line needs spanish >= 6
    for doc in yaml.safe_load_all(config_path.read_text()):
        if doc["kind"] == "AgentTeam":
            members = doc["spec"]["agents"]
            teams[doc["metadata"]["name"]] = [a["id"] for a in members]
            if doc["metadata"]["name"] == "service-generalists":
                spanish += [
                    a["id"]
                    for a in members
                    if any(s["name"] == "spanish" and s["level"] >= 6 for s in a["skills"])
                ][:1]
    on_duty = [a for members in teams.values() for a in members[:3]]
    on_duty += [a for a in spanish if a not in on_duty]
    lazy = teams["sales-desk"][0]  # never picks up: RONA
    peer.endpoints[f"user/{config.extensions[lazy]}@{DOMAIN}"] = Endpoint(outcome="no_answer")
    talk_tasks: set[asyncio.Task[None]] = set()

    def agent_phone(leg: Channel) -> None:
        async def talk() -> None:
            bridged = asyncio.ensure_future(leg.wait_event("CHANNEL_UNPARK"))
            gone = asyncio.ensure_future(leg.hungup.wait())
            await asyncio.wait({bridged, gone}, return_when=asyncio.FIRST_COMPLETED)
            gone.cancel()
            if not bridged.done():
                bridged.cancel()
                return
            await asyncio.sleep(rng.uniform(0.05, 0.3))  # talk time: the workload
            peer._hangup_leg(leg, "NORMAL_CLEARING")

        task = asyncio.ensure_future(talk())
        talk_tasks.add(task)

    peer.default_endpoint = Endpoint(on_channel=agent_phone)
    sink = MemorySink()
    from callmesh.plugins.manager import PluginManager

    crm = PluginManager(config.plugins)
    worker = CallControl(
        config,
        router=address,
        freeswitch=("127.0.0.1", peer.port),
        password="ClueCon",
        sink=sink,
        host="127.0.0.1",
        port=0,
        crm=crm,
        tracer=telemetry.tracer,
    )
    cc_port = await worker.start()
    enqueues: list[tuple[str, dict[str, str]]] = []
    stub = worker.router

    class Spy:
        """The router stub, noting the metadata each Enqueue carries."""

        def __getattr__(self, name: str) -> Any:
            return getattr(stub, name)

        def Enqueue(self, request: Any, **kwargs: Any) -> Any:
            enqueues.append((request.contact_id, dict(kwargs.get("metadata") or ())))
            return stub.Enqueue(request, **kwargs)

    worker.router = Spy()  # type: ignore[assignment]
    agents = Agents(address, on_duty)
    try:
        await until(lambda: len(agents.logged_in) == len(on_duty), "agents logged in")
        kinds = ["sales", "invalid-then-support", "timeouts", "claims-auto", "spanish"]
        plan = ["abandon" if i % 7 == 3 else kinds[i % len(kinds)] for i in range(CALLERS)]
        calls = await asyncio.gather(
            *(
                peer.call(
                    "127.0.0.1",
                    cc_port,
                    caller_id_number="+12125550142" if i == 0 else f"+1718555{i:04d}",
                    destination="+12125550100",
                    variables={
                        "callmesh_managed": "true",
                        "callmesh_tenant": NS,
                        "callmesh_flow": "acme-main",
                        "callmesh_did": "+12125550100",
                    },
                    setup=caller_script(kind, rng),
                )
                for i, kind in enumerate(plan)
            ),
            *(
                peer.call(
                    "127.0.0.1",
                    cc_port,
                    caller_id_number=caller,
                    destination=f"+1646555{i:04d}",
                    variables={"callmesh_managed": "true", "callmesh_tenant": NS, **variables},
                )
                for i, (caller, variables) in (
                    (i, dialer_handoff(i, f"127.0.0.1:{cc_port}")) for i in range(DIALED)
                )
            ),
        )
        dialed = {c.channel.uuid for c in calls[CALLERS:]}
        calls = calls[:CALLERS]
        uuids = {c.channel.uuid for c in calls}
        assert len(uuids) == CALLERS and len(dialed) == DIALED

        # --- kill the router while calls wait; a new one takes its port ------------------
        core = router.core
        assert core is not None
        # callers who stay on the line (not the ones scripted to give up on hold music),
        # waiting and not ringing when the router dies: each must come back
        gives_up = {
            c.channel.uuid for c, kind in zip(calls, plan, strict=True) if kind == "abandon"
        }

        def held() -> dict[str, float]:
            return {
                cid: info.wall_enqueued
                for cid, info in core.contacts.items()
                if not info.agent_id and not info.ringing and cid not in gives_up
            }

        await until(lambda: len(held()) >= 12, "12 patient calls waiting")
        agents.allowed.clear()
        waiting = held()
        await router.stop(0)
        router = RouterServer(config_path, address=address, reload_interval=0)
        assert await router.start() == port
        core2 = router.core
        assert core2 is not None

        def back(cid: str) -> bool:
            return cid in core2.contacts or peer.channels[cid].hungup.is_set()

        await until(lambda: all(back(c) for c in waiting), "waiting calls enqueued again")
        requeued = [c for c in waiting if c in core2.contacts]
        assert len(requeued) >= 10
        for cid in requeued:  # the ORIGINAL enqueue time, so the same place
            assert core2.contacts[cid].wall_enqueued == pytest.approx(waiting[cid], abs=1e-3)
        # order holds among contacts of the same queue and served priority (a contact
        # without its own priority has its queue's, e.g. a dialer hand-off)
        by_queue: dict[tuple[str, int], list[str]] = {}
        for cid in requeued:
            key = (core2.contacts[cid].spec.queue, core2.router.priority(cid))
            by_queue.setdefault(key, []).append(cid)
        for group in by_queue.values():
            if len({tuple(sorted(core2.contacts[c].spec.skills.items())) for c in group}) > 1:
                continue
            ordered = sorted(group, key=lambda c: waiting[c])
            positions = [core2.position(c)[0] for c in ordered]
            assert positions == sorted(positions), "re-enqueued calls kept their order"
        agents.allowed.set()

        # --- every call ends with exactly one record ----------------------------------
        try:
            await until(
                lambda: len(sink.records) >= CALLERS + DIALED, "54 interaction records", 20.0
            )
        except AssertionError:
            for c in worker.calls.values():
                print(
                    "STUCK",
                    c.uuid,
                    c.record.queue,
                    c.rings,
                    c.bridged_leg,
                    c.inbox.qsize(),
                    peer.channels[c.uuid].current,
                    c.record.requeues,
                    c.uuid in core2.contacts and core2.contacts[c.uuid],
                )
            print("agents", agents.logged_in, {a: core2.presence.get(a) for a in on_duty})
            raise
        await until(lambda: not worker.calls, "no call left")
        assert len(sink.records) == CALLERS + DIALED
        assert {r.call_id for r in sink.records} == uuids | dialed
        # the dialer's calls: no IVR, straight into the campaign's queue, its attributes on
        for uuid in dialed:
            record = next(r for r in sink.records if r.call_id == uuid)
            assert record.ivr_outcome == "dialer" and not record.ivr_path, record
            assert record.queue == "sales" and record.campaign == "policy-renewals"
            assert record.disposition == Disposition.ANSWERED and record.agent_id, record
            assert record.attributes["tier"] == "gold"
            assert record.attributes["policy"].startswith("P-")
            assert record.attributes["dialer.attempt"].startswith("policy-renewals.c")
            assert not [e for e in peer.channels[uuid].events
                        if e.name == "CHANNEL_EXECUTE"
                        and e.get("Application") in ("answer", "play_and_get_digits")]  # fmt: skip
        records = [r for r in sink.records if r.call_id in uuids]
        assert len(records) == CALLERS
        by_id = {r.call_id: r for r in records}
        abandoned = [u for u in uuids if peer.channels[u].variables.get("test_abandoned") == "true"]
        assert abandoned, "some callers gave up on hold"
        for uuid in uuids:
            record = by_id[uuid]
            if uuid in abandoned:
                assert record.disposition == Disposition.ABANDONED_QUEUE, record
                assert record.connected_at is None
            else:
                assert record.disposition == Disposition.ANSWERED, record
                assert record.agent_id and record.agent_id != lazy
                assert record.started_at <= record.answered_at <= record.ivr_ended_at  # type: ignore[operator]
                assert record.ivr_ended_at <= record.enqueued_at <= record.connected_at  # type: ignore[operator]
                assert (
                    record.recording_path.endswith(f"{uuid}.wav")
                    == (record.queue in ("sales", "claims"))
                    or record.queue == "support"
                )
            assert record.ivr_outcome == "queued"
        assert sum(r.requeues for r in records) >= len(requeued)
        assert any(r.rona for r in records), "the lazy agent's calls were RONA'd"

        # menus, invalid keys and timeouts took their paths
        def executed(uuid: str, app: str) -> list[str]:
            return [
                e.get("Application-Data") or ""
                for e in peer.channels[uuid].events
                if e.name == "CHANNEL_EXECUTE" and e.get("Application") == app
            ]

        ends = {"sales": "to-sales", "invalid-then-support": "to-support",
                "timeouts": "to-support", "claims-auto": "to-claims-auto",
                "spanish": "to-support-spanish", "abandon": "to-sales"}  # fmt: skip
        for call, kind in zip(calls, plan, strict=True):
            uuid = call.channel.uuid
            assert by_id[uuid].ivr_path[-1] == ends[kind], (kind, by_id[uuid].ivr_path)
            collects = executed(uuid, "play_and_get_digits")
            assert all(c.split(" ")[2] == "1" for c in collects), "max_tries 1: the engine retries"
            if kind == "timeouts":
                assert len(collects) == 3  # three prompts, then the timeout target
            if kind == "invalid-then-support":
                assert len(collects) == 2
                assert any("not a valid choice" in t for t in executed(uuid, "speak"))
        vip = by_id[calls[0].channel.uuid]
        assert "vip-greeting" in vip.ivr_path and vip.attributes.get("crm.vip") == "true"
        # announcements were heard (position), hold music played
        announced = [
            u
            for u in uuids
            if any(
                e.name == "CHANNEL_EXECUTE"
                and e.get("Application") == "speak"
                and "You are number" in (e.get("Application-Data") or "")
                for e in peer.channels[u].events
            )
        ]
        # How many callers are still waiting when their first announcement is due depends
        # on how fast the machine walks the IVR (41-49 of 50 in most runs here, 12 in a CI
        # run beside the rest of the suite): a caller offered an agent at once hears none.
        assert len(announced) >= 5, announced
        # one trace per call: IVR, queue (with the routing decision), agent leg, bridge
        spans = exporter.get_finished_spans()
        answered = next(r for r in records if r.routed_by)  # offered while waiting
        mine = [s for s in spans if format(s.context.trace_id, "032x") == answered.trace_id]
        names = {s.name for s in mine}
        assert {"call", "ivr", "queue", "agent leg", "bridge"} <= names
        # the Enqueue carries the call's trace to the router (W3C traceparent metadata)
        parents = [m.get("traceparent", "") for cid, m in enqueues if cid == answered.call_id]
        assert parents and all(p.split("-")[1] == answered.trace_id for p in parents)
        queue_span = next(s for s in mine if s.name == "queue")
        assert any(e.name == "routing decision" for e in queue_span.events)
        assert (
            len({format(s.context.trace_id, "032x") for s in spans if s.name == "call"})
            == CALLERS + DIALED
        )
        handed = [s for s in spans if s.name == "call"
                  and any(e.name == "dialer hand-off" for e in s.events)]  # fmt: skip
        assert len(handed) == DIALED
    finally:
        await agents.close()
        for task in talk_tasks:
            task.cancel()
        await worker.stop(1.0)
        await router.stop(0)
        await peer.stop()
        await crm.aclose()
