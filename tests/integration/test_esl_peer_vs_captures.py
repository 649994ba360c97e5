"""The test peer answers as the recorded FreeSWITCH 1.10.12 did.

Each test replays a capture's client commands (``c2s``) against :class:`FakeFreeSwitch`, with
the same waits the recorder used, and compares every frame that comes back with the recorded
``s2c`` frames: frame types, outer header names and order, event names and their header
layout (channel variables apart), and the values that do not change between runs (UUIDs,
timestamps and sequence numbers normalised away).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from callmesh.workers.esl.frames import (
    ApiResponse,
    CommandReply,
    DisconnectNotice,
    EventFrame,
    Frame,
)
from callmesh.workers.esl.parser import FrameParser
from esl_peer import captures
from esl_peer.channel import Channel
from esl_peer.peer import FakeFreeSwitch
from esl_peer.replay import RawConn, is_event, is_execute_complete, shape


def recorded(name: str, conn: str = "main") -> list[Frame]:
    parser = FrameParser()
    frames: list[Frame] = []
    for chunk in captures.load(name).s2c(conn).chunks:
        frames += parser.feed(chunk)
    assert parser.idle
    return frames


def split(frames: list[Frame]) -> dict[str, list[dict[str, Any]]]:
    """Replies, events and notices as separate ordered lists: their interleaving depends on
    thread timing inside FreeSWITCH, their order within each kind does not."""
    return {
        "replies": [shape(f) for f in frames if isinstance(f, CommandReply | ApiResponse)],
        "events": [shape(f) for f in frames if isinstance(f, EventFrame)],
        "notices": [shape(f) for f in frames if isinstance(f, DisconnectNotice)],
        "first": [type(frames[0]).__name__] if frames else [],
    }


def difference(got: dict[str, Any], want: dict[str, Any]) -> str:
    """A short account of how two shapes differ (header names, then values)."""
    out = []
    for key in sorted(set(got) | set(want)):
        g, w = got.get(key), want.get(key)
        if g == w:
            continue
        if isinstance(g, dict) and isinstance(w, dict):
            out.append(f"{key}: {difference(g, w)}")
        elif isinstance(g, list) and isinstance(w, list):
            extra = [x for x in g if x not in w]
            missing = [x for x in w if x not in g]
            out.append(f"{key}: extra {extra} missing {missing}" if extra or missing
                       else f"{key}: order {g} != {w}")  # fmt: skip
        else:
            out.append(f"{key}: {g!r} != {w!r}")
    return "; ".join(out)


def assert_same(
    got: list[Frame], want: list[Frame], *, skip_bodies: set[int] = frozenset()
) -> None:  # type: ignore[assignment]
    g, w = split(got), split(want)
    for i in skip_bodies:
        g["replies"][i].pop("body", None)
        w["replies"][i].pop("body", None)
    assert g["first"] == w["first"]
    assert [e["event"]["values"]["Event-Name"] for e in g["events"]] == [
        e["event"]["values"]["Event-Name"] for e in w["events"]
    ]
    for kind in ("replies", "notices", "events"):
        assert len(g[kind]) == len(w[kind]), kind
        for i, (a, b) in enumerate(zip(g[kind], w[kind], strict=True)):
            assert a == b, f"{kind}[{i}] differs: {difference(a, b)}"


async def test_01_inbound_basic(esl_peer: FakeFreeSwitch) -> None:
    name = "01-inbound-basic"
    capture = captures.load(name)

    bad = await RawConn.connect("127.0.0.1", esl_peer.port)
    await bad.wait(lambda f: True)
    for command in capture.commands("bad"):
        await bad.cmd(command)
    await bad.wait_closed()
    await bad.close()
    assert_same(bad.frames, recorded(name, "bad"))
    # nothing in a refused login varies between runs: the bytes are FreeSWITCH's exactly
    assert bytes(bad.raw) == capture.s2c("bad").data

    conn = await RawConn.connect("127.0.0.1", esl_peer.port)
    await conn.wait(lambda f: True)
    for command in capture.commands("main"):
        start = len(conn.frames)
        reply = await conn.cmd(command)
        if isinstance(reply, CommandReply) and reply.job_uuid:
            await conn.wait(is_event("BACKGROUND_JOB", Job_UUID=reply.job_uuid), start)
    await conn.wait_closed()
    await conn.close()
    assert_same(conn.frames, recorded(name))
    # replies without per-run values (no Job-UUID) are byte-identical too
    fixed = [
        f"Content-Type: command/reply\nReply-Text: {f.reply_text}\n\n".encode()
        for f in recorded(name)
        if isinstance(f, CommandReply) and list(f.headers) == ["Content-Type", "Reply-Text"]
    ]
    assert len(fixed) == 18
    for reply in fixed:
        assert reply in bytes(conn.raw)


def caller_like_sipp(channel: Channel) -> None:
    """The sipp caller of 03a/03b: RFC 2833 ``1 2 #`` after the prompt, BYE during the
    long silence."""

    async def press(ch: Channel, arg: str) -> None:
        await ch.wait_event("PLAYBACK_STOP")
        ch.caller_dtmf("12#")

    async def bye(ch: Channel, arg: str) -> None:
        if arg.startswith("silence_stream://"):  # hooks run once the app has started
            ch.hangup("NORMAL_CLEARING")

    channel.when_app("play_and_get_digits", press)
    channel.when_app("playback", bye)


@pytest.mark.parametrize(
    ("name", "mode"), [("03a-outbound-socket-async", "async"), ("03b-outbound-socket-sync", "sync")]
)
async def test_03_outbound_socket(name: str, mode: str) -> None:
    want = recorded(name)
    first = want[0]
    assert isinstance(first, CommandReply) and first.channel_data is not None
    recorded_uuid = first.channel_data.unique_id or ""
    accepted: asyncio.Queue[RawConn] = asyncio.Queue()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.put_nowait(RawConn(reader, writer))

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with FakeFreeSwitch(time_scale=0.01) as peer:
        await peer.call("127.0.0.1", port, mode=mode, setup=caller_like_sipp)
        conn = await accepted.get()
        uuid = ""
        for command in captures.load(name).commands():
            assert not conn.eof
            if uuid:
                command = command.replace(recorded_uuid.encode(), uuid.encode())
            start = len(conn.frames)
            reply = await conn.cmd(command)
            if command == b"connect\n\n":
                assert conn.frames.index(reply) == 0, "FreeSWITCH sends nothing before connect"
                assert isinstance(reply, CommandReply) and reply.channel_data is not None
                uuid = reply.channel_data.unique_id or ""
            elif b"silence_stream://20000" in command:
                await conn.wait(lambda f: isinstance(f, DisconnectNotice), start)
            elif command.startswith(b"sendmsg"):
                app = command.split(b"execute-app-name: ")[1].split(b"\n")[0].decode()
                await conn.wait(is_execute_complete(app), start)
        await conn.wait_closed()
        await conn.close()
    server.close()
    await server.wait_closed()
    assert_same(conn.frames, want)


async def test_04_originate_bridge_kill(esl_peer: FakeFreeSwitch) -> None:
    name = "04-originate-bridge-kill"
    want = recorded(name)
    jobs = [f.event for f in want if isinstance(f, EventFrame) and f.event.name == "BACKGROUND_JOB"]
    recorded_a = jobs[0].body.split()[1]
    conn = await RawConn.connect("127.0.0.1", esl_peer.port)
    await conn.wait(lambda f: True)
    a = ""
    for command in captures.load(name).commands():
        if a:
            command = command.replace(recorded_a.encode(), a.encode())
        start = len(conn.frames)
        reply = await conn.cmd(command)
        if isinstance(reply, CommandReply) and reply.job_uuid:
            done = await conn.wait(is_event("BACKGROUND_JOB", Job_UUID=reply.job_uuid), start)
            assert isinstance(done, EventFrame)
            if b"agent@" in command:
                a = done.event.body.split()[1]
                await conn.wait(is_event("CHANNEL_PARK", Unique_ID=a), start)
            elif b"agent2@" in command:
                await conn.wait(is_event("CHANNEL_PARK"), start + 7)
        elif command.startswith(b"api uuid_bridge"):
            await conn.wait(is_event("CHANNEL_BRIDGE"), start)
        elif command.startswith(b"api uuid_kill " + a.encode()):
            await conn.wait(
                is_event("CHANNEL_DESTROY", Unique_ID="bbbbbbbb-0000-4000-8000-00000000000b"), start
            )
    await conn.wait_closed()
    await conn.close()
    # the "show ..." listings hold per-run values; compare framing, and the JSON columns
    assert_same(conn.frames, want, skip_bodies={5, 7})
    got_calls, want_calls = (
        json.loads(next(f.text for f in frames if isinstance(f, ApiResponse)
                        and f.text.startswith('{"row_count":1')))
        for frames in (conn.frames, want)
    )  # fmt: skip
    assert list(got_calls["rows"][0]) == list(want_calls["rows"][0])


# The dialplan of capture 02 (FreeSWITCH's default public context, then extension 9101 of
# capture-tools/00_esl_capture.xml).
DIALPLAN_9101 = [
    ("set", "outside_call=true"),
    ("export", "RFC2822_DATE=${strftime(%a, %d %b %Y %T %z)}"),
    ("ring_ready", ""),
    ("answer", ""),
    ("playback", "tone_stream://%(1000,0,440)"),
    ("play_and_get_digits",
     r"1 4 1 6000 # tone_stream://%(300,0,800) silence_stream://250 esl_digits \d+ 3000"),
    ("playback", "tone_stream://%(500,0,600)"),
    ("hangup", ""),
]  # fmt: skip


async def test_02_dialplan_call_seen_with_event_all_plain_and_json() -> None:
    # 1/10 of real media time: the 1 s tone lasts 100 ms, time enough for the "api show"
    # below to land inside it, where the recording has it
    async with FakeFreeSwitch(time_scale=0.1) as peer:
        conns = {}
        for name in ("02a-inbound-call-events-plain", "02b-inbound-call-events-json"):
            conn = await RawConn.connect("127.0.0.1", peer.port)
            await conn.wait(lambda f: True)
            for command in captures.load(name).commands()[:2]:  # auth, event <fmt> ALL
                await conn.cmd(command)
            conns[name] = conn
        plain = conns["02a-inbound-call-events-plain"]
        start = len(plain.frames)
        call = asyncio.ensure_future(
            peer.dialplan_call(DIALPLAN_9101, setup=caller_like_sipp, caller_id_number="sipp")
        )
        await plain.wait(is_event("PLAYBACK_START"), start)
        await plain.cmd(b"api show channels as json\n\n")  # as the recorder did, mid-call
        await call
        for name, conn in conns.items():
            await conn.wait(is_event("CHANNEL_STATE", Channel_State="CS_DESTROY"))
            await conn.cmd(b"exit\n\n")
            await conn.wait_closed()
            await conn.close()
            # the recorded "show channels" listed nothing mid-call; ours lists the call
            assert_same(conn.frames, recorded(name), skip_bodies={2} if "plain" in name else set())
