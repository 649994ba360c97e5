"""The inbound ESL client against the test FreeSWITCH over loopback."""

from __future__ import annotations

import asyncio
import random

import pytest
from callmesh.workers.esl.backoff import Backoff
from callmesh.workers.esl.connection import EslOptions, InboundClient
from callmesh.workers.esl.errors import (
    EslAuthError,
    EslCommandError,
    EslConnectionLost,
    EslTimeout,
)
from callmesh.workers.esl.events import Event
from esl_peer.peer import Endpoint, FakeFreeSwitch


def client_for(peer: FakeFreeSwitch, **kwargs: object) -> InboundClient:
    options = kwargs.pop("options", EslOptions(command_timeout=5, connect_timeout=2))
    return InboundClient(
        "127.0.0.1",
        peer.port,
        "ClueCon",
        options=options,  # type: ignore[arg-type]
        backoff=Backoff(base=0.01, cap=0.05, rng=random.Random(1)),
        **kwargs,  # type: ignore[arg-type]
    )


async def wait_until(predicate: object, timeout: float = 5.0) -> None:
    """Poll a condition on the event loop (no fixed sleeps: returns as soon as it holds)."""
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.001)


async def test_auth_api_and_errors(esl_peer: FakeFreeSwitch) -> None:
    client = client_for(esl_peer)
    await client.start()
    try:
        assert (await client.api("version")).startswith("FreeSWITCH Version 1.10.12")
        assert (await client.api("echo hello")) == "hello"
        with pytest.raises(EslCommandError, match="nosuchfunction Command not found"):
            await client.api("nosuchfunction arg1")
        assert (await client.api("nosuchfunction", check=False)).startswith("-ERR")
        with pytest.raises(EslCommandError, match="command not found"):
            await client.command("foobar baz")
        assert esl_peer.commands[:2] == ["auth ClueCon", "event plain BACKGROUND_JOB"]
    finally:
        await client.close()
    assert esl_peer.commands[-1] == "exit"
    await wait_until(lambda: not esl_peer.listeners)


async def test_wrong_password_is_a_typed_error_and_leaks_nothing(
    esl_peer: FakeFreeSwitch,
) -> None:
    client = InboundClient("127.0.0.1", esl_peer.port, "WrongPassword")
    with pytest.raises(EslAuthError, match="-ERR invalid"):
        await client.connect_once()
    await wait_until(lambda: not esl_peer.listeners)
    assert not client.connected


async def test_bgapi_job_resolved_by_background_job_event(esl_peer: FakeFreeSwitch) -> None:
    client = client_for(esl_peer)
    await client.start()
    try:
        job = await client.bgapi("version")
        assert (await job).startswith("FreeSWITCH Version")
        event = await job.event()
        assert event.name == "BACKGROUND_JOB" and event.job_uuid == job.job_uuid
        # the Job-UUID is ours, sent as a header (FreeSWITCH honours it, capture 01)
        chosen = await client.bgapi("version", job_uuid="11111111-2222-3333-4444-555555555555")
        assert chosen.job_uuid == "11111111-2222-3333-4444-555555555555"
        await chosen
        failing = await client.bgapi("nosuchfunction")
        with pytest.raises(EslCommandError, match="nosuchfunction"):
            await failing.result()
        many = [await client.bgapi(f"echo {i}") for i in range(20)]
        assert [await job for job in many] == [str(i) for i in range(20)]
    finally:
        await client.close()


async def test_originate_events_reach_handlers_and_iterators(esl_peer: FakeFreeSwitch) -> None:
    client = client_for(esl_peer, event_format="json")
    answered: list[Event] = []

    async def on_answer(event: Event) -> None:
        answered.append(event)

    client.on("CHANNEL_ANSWER", on_answer)
    await client.start()
    try:
        await client.subscribe("CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_PARK")
        stream = client.events("CHANNEL_PARK")
        job = await client.bgapi("originate {origination_uuid=aaaa}user/1001 &park()")
        assert await job == "+OK aaaa\n"
        parked = await asyncio.wait_for(stream.get(), 5)
        assert parked.unique_id == "aaaa" and parked["Channel-State"] == "CS_EXECUTE"
        await wait_until(lambda: len(answered) == 1)
        assert answered[0]["Answer-State"] == "answered"
        assert "event json" in esl_peer.commands[1]
    finally:
        await client.close()


async def test_filters_and_custom_events(esl_peer: FakeFreeSwitch) -> None:
    client = client_for(esl_peer)
    await client.start()
    try:
        await client.subscribe("CUSTOM", "callmesh::probe")
        await client.add_filter("probe", "yes")
        stream = client.events("callmesh::probe")
        esl_peer.fire_custom("callmesh::probe", {"probe": "no"})
        esl_peer.fire_custom("callmesh::probe", {"probe": "yes"}, body="payload")
        event = await asyncio.wait_for(stream.get(), 5)
        assert event["probe"] == "yes" and event.body == "payload"
        assert event.subclass == "callmesh::probe"
        await client.delete_filter("probe")
        assert "filter delete probe" in esl_peer.commands
    finally:
        await client.close()


async def test_freeswitch_vanishing_mid_command_fails_pending_work(
    esl_peer: FakeFreeSwitch,
) -> None:
    client = client_for(esl_peer)
    await client.start()
    esl_peer.stall = True  # FreeSWITCH stops answering...
    pending = asyncio.ensure_future(client.api("status"))
    await wait_until(lambda: esl_peer.commands[-1] == "api status")
    await esl_peer.drop_connections()  # ...and then goes away
    with pytest.raises(EslConnectionLost):
        await pending
    await client.close()


async def test_pending_background_jobs_fail_when_the_connection_drops(
    esl_peer: FakeFreeSwitch,
) -> None:
    slow = asyncio.Event()

    async def never(peer: FakeFreeSwitch, args: str) -> str:
        await slow.wait()
        return "done"

    esl_peer.api_functions["slowjob"] = never
    client = client_for(esl_peer)
    await client.start()
    job = await client.bgapi("slowjob")
    await esl_peer.drop_connections()
    with pytest.raises(EslConnectionLost):
        await job
    slow.set()
    await client.close()


async def test_command_timeout_closes_the_connection(esl_peer: FakeFreeSwitch) -> None:
    client = client_for(esl_peer, options=EslOptions(command_timeout=0.2, connect_timeout=2))
    await client.start()
    conn = client.connection
    esl_peer.stall = True
    with pytest.raises(EslTimeout, match="no reply to 'api status'"):
        await client.api("status")
    # a late reply could be taken for the next command's: the connection is dropped
    assert conn.closed and isinstance(conn.close_reason, EslTimeout)
    esl_peer.stall = False
    await wait_until(lambda: client.connections == 2 and client.connected)
    assert await client.api("echo back") == "back"
    await client.close()


async def test_reconnects_and_restores_subscriptions(esl_peer: FakeFreeSwitch) -> None:
    client = client_for(esl_peer)
    connected = asyncio.Queue[int]()

    async def on_connected(conn: object) -> None:
        connected.put_nowait(client.connections)

    client.on_connected.append(on_connected)
    await client.start()
    assert await connected.get() == 1
    await client.subscribe("CUSTOM", "callmesh::probe")
    await client.add_filter("probe", "yes")
    await esl_peer.drop_connections()
    assert await asyncio.wait_for(connected.get(), 5) == 2
    stream = client.events()
    esl_peer.fire_custom("callmesh::probe", {"probe": "no"})
    esl_peer.fire_custom("callmesh::probe", {"probe": "yes"})
    event = await asyncio.wait_for(stream.get(), 5)
    assert event["probe"] == "yes"
    second = [c for c in esl_peer.commands if c.startswith(("event", "filter"))]
    assert second[-2:] == ["event plain BACKGROUND_JOB CUSTOM callmesh::probe", "filter probe yes"]
    assert await client.api("echo still here") == "still here"
    await client.close()


async def test_commands_while_disconnected_fail_fast() -> None:
    client = InboundClient("127.0.0.1", 9, "ClueCon")
    with pytest.raises(EslConnectionLost, match="not connected"):
        await client.api("status")


async def test_connect_refused_retries_with_backoff() -> None:
    async with FakeFreeSwitch() as peer:
        port = peer.port
    # the port is closed now: the supervisor keeps trying, with growing, capped delays
    client = InboundClient(
        "127.0.0.1", port, "ClueCon",
        options=EslOptions(connect_timeout=1),
        backoff=Backoff(base=0.001, cap=0.004, rng=random.Random(3)),
    )  # fmt: skip
    await client.start(wait=False)
    await wait_until(lambda: client.backoff.attempt >= 5)
    assert isinstance(client.last_error, OSError)
    assert not client.connected
    await client.close()


async def test_originate_outcomes(esl_peer: FakeFreeSwitch) -> None:
    esl_peer.endpoints["user/busy"] = Endpoint(outcome="busy")
    esl_peer.endpoints["user/away"] = Endpoint(outcome="absent")
    client = client_for(esl_peer)
    await client.start()
    try:
        with pytest.raises(EslCommandError, match="USER_BUSY"):
            await (await client.bgapi("originate user/busy &park()")).result()
        with pytest.raises(EslCommandError, match="SUBSCRIBER_ABSENT"):
            await client.api("originate user/away &park()")
        with pytest.raises(EslCommandError, match="INVALID_PROFILE"):
            await client.api("originate sofia/nosuchprofile/x &park()")
        uuid = (await client.api("originate user/1001 &park()")).split()[1]
        assert await client.api(f"uuid_exists {uuid}") == "true"
        assert await client.api(f"uuid_kill {uuid}") == "+OK\n"
        with pytest.raises(EslCommandError, match="No such channel"):
            await client.api(f"uuid_kill {uuid}")
    finally:
        await client.close()


async def test_sendmsg_execute_and_hangup_on_a_parked_leg(esl_peer: FakeFreeSwitch) -> None:
    client = client_for(esl_peer)
    await client.start()
    try:
        await client.subscribe("CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HANGUP")
        done = client.events("CHANNEL_EXECUTE_COMPLETE")
        hangups = client.events("CHANNEL_HANGUP")
        uuid = (await client.api("originate user/1001 &park()")).split()[1]
        await client.execute(uuid, "playback", "tone_stream://%(100,0,440)", event_lock=True)
        while (event := await asyncio.wait_for(done.get(), 5)).get("Application") != "playback":
            pass
        assert event["Application-Response"] == "FILE PLAYED" and event.unique_id == uuid
        await client.sendmsg(uuid, "hangup", {"hangup-cause": "USER_BUSY"})
        hangup = await asyncio.wait_for(hangups.get(), 5)
        assert hangup.unique_id == uuid and hangup["Hangup-Cause"] == "USER_BUSY"
        with pytest.raises(EslCommandError, match="invalid session id"):
            await client.execute(uuid, "answer")
        target, headers, _ = esl_peer.messages[0]
        assert target == uuid and headers["event-lock"] == "true"
        assert headers["execute-app-arg"] == "tone_stream://%(100,0,440)"
    finally:
        await client.close()


async def test_a_failing_hook_does_not_stop_the_reader(esl_peer: FakeFreeSwitch) -> None:
    client = client_for(esl_peer)
    await client.start()
    try:

        def broken(event: Event) -> None:
            raise RuntimeError("bug in a hook")

        client.connection.event_hooks.append(broken)
        assert await (await client.bgapi("echo still reading")) == "still reading"
        assert client.connection.hook_failures == 1
    finally:
        await client.close()


def test_options_are_validated_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="command_timeout=0"):
        EslOptions(command_timeout=0)
    with pytest.raises(ValueError, match="connect_timeout=-1"):
        EslOptions(connect_timeout=-1)
    with pytest.raises(ValueError, match="event_format 'yaml'"):
        InboundClient("127.0.0.1", 8021, "ClueCon", event_format="yaml")
