"""The outbound-socket server: the test FreeSWITCH delivers calls, one connection per call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from callmesh.workers.esl.connection import CallHangup, CallSession, EslConnection, OutboundServer
from callmesh.workers.esl.errors import EslCommandError
from esl_peer.channel import Channel
from esl_peer.peer import Endpoint, FakeFreeSwitch


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll a condition on the event loop (returns as soon as it holds)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.001)


@pytest.fixture
async def media_peer() -> AsyncIterator[FakeFreeSwitch]:
    """A peer whose prompts and digit timeouts take (1/100 of) real time."""
    async with FakeFreeSwitch(time_scale=0.01) as peer:
        yield peer


async def serve(handler: Callable[[CallSession], Awaitable[None]]) -> OutboundServer:
    server = OutboundServer(handler, "127.0.0.1", 0)
    await server.start()
    return server


def press_after_prompt(*answers: str) -> Callable[[Channel], None]:
    """A caller who answers the n-th digit prompt with ``answers[n]`` (then stays silent)."""

    def setup(channel: Channel) -> None:
        pending = list(answers)

        async def press(ch: Channel, arg: str) -> None:
            if not pending:
                return
            digits = pending.pop(0)
            await ch.wait_event("PLAYBACK_STOP")
            ch.caller_dtmf(digits)

        channel.when_app("play_and_get_digits", press)

    return setup


@pytest.mark.parametrize("mode", ["async", "sync"])
async def test_ivr_call_walkthrough(media_peer: FakeFreeSwitch, mode: str) -> None:
    seen: dict[str, object] = {}

    async def handler(call: CallSession) -> None:
        seen["mode"] = call.socket_mode
        seen["caller"] = call.channel["Caller-Caller-ID-Number"]
        seen["marker"] = call.channel.variable("callmesh_tenant")
        await call.myevents()
        await call.linger()
        await call.answer()
        seen["played"] = await call.playback("tone_stream://%(100,0,440)")
        seen["digits"] = await call.play_and_get_digits(
            "tone_stream://%(300,0,800)", max_digits=4, timeout_ms=3000, variable="pagd_digits"
        )
        await call.set_variable("esl_capture_var", "hello world")  # two words: `set` app
        seen["var"] = await call.getvar("esl_capture_var")
        await call.set_variable("esl_word", "q|1.5|eyJ9=")  # one word: api uuid_setvar
        seen["word"] = await call.getvar("esl_word")
        seen["missing"] = await call.getvar("no_such_var")
        with pytest.raises(CallHangup):
            await call.playback("silence_stream://20000")  # the caller hangs up during it
        seen["cause"] = call.hangup_cause
        await call.wait_hangup()
        seen["linger"] = call.linger_notice is not None
        with pytest.raises(EslCommandError, match="No such channel"):
            await call.getvar("esl_capture_var")
        with pytest.raises(CallHangup):
            await call.set_variable("esl_word", "late")
        await call.exit()

    def caller(channel: Channel) -> None:
        press_after_prompt("12#")(channel)

        async def bye(ch: Channel, arg: str) -> None:
            if arg.startswith("silence_stream://"):
                ch.hangup("NORMAL_CLEARING")

        channel.when_app("playback", bye)

    server = await serve(handler)
    call = await media_peer.call(
        "127.0.0.1", server.port, mode=mode, caller_id_number="5551234",
        variables={"callmesh_tenant": "acme"}, setup=caller,
    )  # fmt: skip
    await asyncio.wait_for(call.ended.wait(), 5)
    await wait_until(lambda: not server.sessions)
    await server.stop()
    assert seen == {
        "mode": "async" if mode == "async" else "static",
        "caller": "5551234",
        "marker": "acme",
        "played": "FILE PLAYED",
        "digits": "12",
        "var": "hello world",
        "word": "q|1.5|eyJ9=",
        "missing": None,
        "cause": "NORMAL_CLEARING",
        "linger": True,
    }
    assert server.calls_failed == 0
    setvars = [c for c in media_peer.commands if c.startswith("api uuid_setvar")]
    assert setvars == [f"api uuid_setvar {call.channel.uuid} esl_word q|1.5|eyJ9="]
    names = [e.name for e in call.channel.events]
    assert names.count("DTMF") == 3 and "CHANNEL_HANGUP_COMPLETE" in names


async def test_invalid_then_timeout_digits(media_peer: FakeFreeSwitch) -> None:
    results: list[str] = []

    async def handler(call: CallSession) -> None:
        await call.myevents()
        await call.answer()
        results.append(await call.play_and_get_digits("silence_stream://10", max_digits=2,
                                                      regexp="[12]", timeout_ms=100))  # fmt: skip
        results.append(await call.play_and_get_digits("silence_stream://10", timeout_ms=100))
        await call.hangup("NORMAL_CLEARING")
        await call.wait_hangup()

    server = await serve(handler)
    call = await media_peer.call("127.0.0.1", server.port, setup=press_after_prompt("9#"))
    await asyncio.wait_for(call.ended.wait(), 5)
    await server.stop()
    assert results == ["", ""]  # 9 fails the regexp; then nobody presses anything
    assert call.channel.variables["read_result"] == "timeout"
    assert call.channel.hangup_cause == "NORMAL_CLEARING"


async def test_handler_crash_closes_the_socket_and_the_call(esl_peer: FakeFreeSwitch) -> None:
    async def handler(call: CallSession) -> None:
        await call.myevents()
        raise RuntimeError("bug in the IVR")

    server = await serve(handler)
    call = await esl_peer.call("127.0.0.1", server.port)
    await asyncio.wait_for(call.ended.wait(), 5)
    await wait_until(lambda: call.channel.hungup.is_set())
    await server.stop()
    assert server.calls_failed == 1 and not server.sessions


async def test_caller_hangs_up_before_anything_happens(esl_peer: FakeFreeSwitch) -> None:
    gone = asyncio.Event()

    async def handler(call: CallSession) -> None:
        await call.myevents()
        call.conn.notice_hooks.append(lambda notice: gone.set())
        esl_peer.channels[call.uuid].hangup("ORIGINATOR_CANCEL")
        await call.wait_hangup()
        with pytest.raises(CallHangup):
            await call.answer()

    server = await serve(handler)
    call = await esl_peer.call("127.0.0.1", server.port)
    await asyncio.wait_for(call.ended.wait(), 5)
    await server.stop()
    assert gone.is_set() and server.calls_failed == 0


async def test_answer_falls_back_to_the_application_when_uuid_answer_fails(
    esl_peer: FakeFreeSwitch, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(args: str) -> str:
        return "-ERROR\n"  # what mod_commands says when switch_channel_answer fails

    monkeypatch.setattr(esl_peer, "api_uuid_answer", refuse)
    answered: list[str] = []

    async def handler(call: CallSession) -> None:
        await call.myevents()
        await call.answer()
        answered.append(esl_peer.channels[call.uuid].answer_state)
        await call.hangup("NORMAL_CLEARING")
        await call.wait_hangup()

    server = await serve(handler)
    call = await esl_peer.call("127.0.0.1", server.port)
    await asyncio.wait_for(call.ended.wait(), 5)
    await server.stop()
    assert answered == ["answered"] and server.calls_failed == 0
    uuid = call.channel.uuid
    assert f"api uuid_answer {uuid}" in esl_peer.commands
    executed = [e.get("Application") for e in call.channel.events if e.name == "CHANNEL_EXECUTE"]
    assert executed.count("answer") == 1


async def test_fifty_concurrent_calls(media_peer: FakeFreeSwitch) -> None:
    digits: list[str] = []

    async def handler(call: CallSession) -> None:
        await call.myevents()
        await call.answer()
        digits.append(await call.play_and_get_digits("tone_stream://%(50,0,800)", max_digits=3))
        await call.hangup()
        await call.wait_hangup()

    server = await serve(handler)
    calls = await asyncio.gather(
        *(media_peer.call("127.0.0.1", server.port, setup=press_after_prompt(f"{i % 10}#"))
          for i in range(50))
    )  # fmt: skip
    await asyncio.wait_for(asyncio.gather(*(c.ended.wait() for c in calls)), 10)
    await wait_until(lambda: not server.sessions)
    await server.stop()
    assert sorted(digits) == sorted(str(i % 10) for i in range(50))
    assert server.calls_accepted == 50 and server.calls_failed == 0


async def test_stop_cancels_calls_after_the_grace_period(esl_peer: FakeFreeSwitch) -> None:
    started = asyncio.Event()

    async def handler(call: CallSession) -> None:
        started.set()
        await asyncio.Event().wait()  # a call that never ends by itself

    server = await serve(handler)
    call = await esl_peer.call("127.0.0.1", server.port)
    await asyncio.wait_for(started.wait(), 5)
    await server.stop(grace=0.05)
    await asyncio.wait_for(call.ended.wait(), 5)
    assert not server.sessions


async def test_something_that_is_not_freeswitch_is_refused() -> None:
    server = await serve(lambda call: asyncio.sleep(0))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    assert await reader.readuntil(b"\n\n") == b"connect\n\n"
    writer.write(b"Content-Type: command/reply\nReply-Text: +OK\n\n")  # no channel data
    assert await reader.read() == b""  # the server hangs up
    writer.close()
    await server.stop()
    assert server.calls_failed == 1 and not server.sessions


async def test_bridge_to_an_agent_and_back(media_peer: FakeFreeSwitch) -> None:
    agents: list[Channel] = []
    media_peer.endpoints["user/1001"] = Endpoint(ring_seconds=1, on_channel=agents.append)
    media_peer.endpoints["user/1002"] = Endpoint(outcome="no_answer", ring_seconds=2)
    outcome: dict[str, object] = {}

    async def handler(call: CallSession) -> None:
        await call.myevents()
        await call.answer()
        bridges = call.events("CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE")
        await call.execute("bridge", "user/1002")  # rings out: RONA
        outcome["first"] = await call.getvar("originate_disposition")
        await call.execute("bridge", "{callmesh_queue=sales}user/1001")  # returns at agent hangup
        outcome["second"] = await call.getvar("bridge_hangup_cause")
        outcome["events"] = [(await bridges.get()).name for _ in range(2)]
        await call.hangup()
        await call.wait_hangup()

    def agent_hangs_up_after_a_while(channel: Channel) -> None:
        async def bye(ch: Channel, arg: str) -> None:
            await ch.wait_event("CHANNEL_BRIDGE")
            agents[0].hangup("NORMAL_CLEARING")

        channel.when_app("bridge", bye)

    server = await serve(handler)
    call = await media_peer.call("127.0.0.1", server.port, setup=agent_hangs_up_after_a_while)
    await asyncio.wait_for(call.ended.wait(), 5)
    await server.stop()
    assert outcome == {
        "first": "NO_ANSWER",
        "second": "NORMAL_CLEARING",
        "events": ["CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE"],
    }
    (agent,) = agents
    assert agent.variables["callmesh_queue"] == "sales"
    assert agent.profile["Caller-ID-Number"] == "1000"  # the caller's number is presented
    assert agent.destroyed and server.calls_failed == 0


async def test_caller_hangs_up_while_bridged(media_peer: FakeFreeSwitch) -> None:
    agents: list[Channel] = []
    media_peer.endpoints["user/1001"] = Endpoint(on_channel=agents.append)

    async def handler(call: CallSession) -> None:
        await call.myevents()
        await call.answer()
        with pytest.raises(CallHangup):
            await call.execute("bridge", "user/1001")

    def caller_gives_up(channel: Channel) -> None:
        async def bye(ch: Channel, arg: str) -> None:
            await ch.wait_event("CHANNEL_BRIDGE")
            ch.hangup("NORMAL_CLEARING")

        channel.when_app("bridge", bye)

    server = await serve(handler)
    call = await media_peer.call("127.0.0.1", server.port, setup=caller_gives_up)
    await asyncio.wait_for(call.ended.wait(), 5)
    await server.stop()
    assert agents[0].hangup_cause == "NORMAL_CLEARING" and agents[0].destroyed
    assert server.calls_failed == 0


async def test_hold_music_broken_for_an_announcement_and_recording(
    media_peer: FakeFreeSwitch,
) -> None:
    stops: list[str] = []

    async def handler(call: CallSession) -> None:
        await call.myevents()
        await call.subscribe("RECORD_START", "RECORD_STOP", "PLAYBACK_START", "PLAYBACK_STOP")
        records = call.events("RECORD_START")
        await call.answer()
        await call.execute("record_session", "/recordings/call.wav")
        assert (await records.get())["Record-File-Path"] == "/recordings/call.wav"
        playbacks = call.events("PLAYBACK_START", "PLAYBACK_STOP")
        hold = asyncio.ensure_future(call.playback("local_stream://moh"))  # plays until broken
        assert (await playbacks.get()).name == "PLAYBACK_START"
        await call.api(f"uuid_break {call.uuid} all")
        assert await hold == "FILE PLAYED"
        stops.append((await playbacks.get())["Playback-Status"] or "")
        assert await call.playback("ivr/you-are-caller-number-3.wav") == "FILE PLAYED"
        await call.hangup()
        await call.wait_hangup()

    server = await serve(handler)
    call = await media_peer.call("127.0.0.1", server.port)
    await asyncio.wait_for(call.ended.wait(), 5)
    await server.stop()
    assert stops == ["break"] and server.calls_failed == 0
    assert "RECORD_STOP" in [e.name for e in call.channel.events]


async def test_execute_without_waiting_for_its_reply_keeps_replies_in_order() -> None:
    """``execute`` does not wait for sendmsg's ``+OK`` on its own (FreeSWITCH only says the
    message was queued), but a ``-ERR`` still ends the execution with EslCommandError, the
    next command is only sent once the reply came (one command in flight), and a socket lost
    before the reply ends it with CallHangup."""
    received: list[str] = []
    replies: asyncio.Queue[bytes] = asyncio.Queue()

    async def freeswitch(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                block = (await reader.readuntil(b"\n\n")).decode()
            except asyncio.IncompleteReadError:
                return
            received.append(block.partition("\n")[0])
            answer = await replies.get()
            if not answer:
                writer.close()
                return
            app_uuid = next(
                (line[12:] for line in block.split("\n") if line.startswith("Event-UUID: ")), ""
            )
            writer.write(answer.replace(b"@" * 36, app_uuid.encode()))  # same length

    server = await asyncio.start_server(freeswitch, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    conn = await EslConnection.open("127.0.0.1", port)
    session = CallSession(conn)
    ok = b"Content-Type: command/reply\nReply-Text: +OK\n\n"
    body = (
        b"Event-Name: CHANNEL_EXECUTE_COMPLETE\nApplication: set\n"
        b"Application-UUID: " + b"@" * 36 + b"\nApplication-Response: _none_\n\n"
    )
    complete = b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(body) + body
    try:
        # the reply and the completion: the completion is what execute returns
        replies.put_nowait(ok + complete)
        done = await session.execute("set", "a=b")
        assert done is not None and done.name == "CHANNEL_EXECUTE_COMPLETE"
        # -ERR ends the execution as before; a second command waits for that reply
        first = asyncio.ensure_future(session.execute("playback", "x.wav"))
        await wait_until(lambda: len(received) == 2)
        second = asyncio.ensure_future(conn.api("status"))
        await asyncio.sleep(0.05)
        assert len(received) == 2 and not first.done()  # status is not sent before the reply
        replies.put_nowait(b"Content-Type: command/reply\nReply-Text: -ERR memory error\n\n")
        with pytest.raises(EslCommandError, match="memory error"):
            await first
        replies.put_nowait(b"Content-Type: api/response\nContent-Length: 2\n\nUP")
        assert await second == "UP"
        assert received == ["sendmsg", "sendmsg", "api status"]
        assert conn.unexpected_frames == 0
        # the socket closes before the reply: the call's step ends
        lost = asyncio.ensure_future(session.execute("playback", "y.wav"))
        await wait_until(lambda: len(received) == 4)
        replies.put_nowait(b"")
        with pytest.raises(CallHangup):
            await lost
    finally:
        await conn.close()
        server.close()
        await server.wait_closed()
