"""The parser reads every recorded FreeSWITCH 1.10.12 stream into complete typed frames."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from callmesh.workers.esl.events import encode_event
from callmesh.workers.esl.frames import (
    ApiResponse,
    AuthRequest,
    CommandReply,
    DisconnectNotice,
    EventFrame,
    Frame,
)
from callmesh.workers.esl.parser import FrameParser
from esl_peer import captures as esl_captures
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

STREAMS = esl_captures.s2c_streams()
IDS = [s.label for s in STREAMS]

# Frame counts per s2c stream, read off the .txt renderings of the captures.
EXPECTED = {
    "01-inbound-basic[bad]/s2c": {"AuthRequest": 1, "CommandReply": 1, "DisconnectNotice": 1},
    "01-inbound-basic[main]/s2c": {
        "AuthRequest": 1, "CommandReply": 23, "ApiResponse": 5, "EventFrame": 5,
        "DisconnectNotice": 1,
    },
    "02a-inbound-call-events-plain[main]/s2c": {
        "AuthRequest": 1, "CommandReply": 3, "EventFrame": 47, "ApiResponse": 1,
        "DisconnectNotice": 1,
    },
    "02b-inbound-call-events-json[main]/s2c": {
        "AuthRequest": 1, "CommandReply": 3, "EventFrame": 47, "DisconnectNotice": 1,
    },
    "03a-outbound-socket-async[main]/s2c": {
        "CommandReply": 10, "EventFrame": 28, "ApiResponse": 4, "DisconnectNotice": 2,
    },
    "03b-outbound-socket-sync[main]/s2c": {
        "CommandReply": 10, "EventFrame": 22, "ApiResponse": 4, "DisconnectNotice": 2,
    },
    "04-originate-bridge-kill[main]/s2c": {
        "AuthRequest": 1, "CommandReply": 6, "EventFrame": 26, "ApiResponse": 7,
        "DisconnectNotice": 1,
    },
}  # fmt: skip


def parse_chunks(chunks: list[bytes] | tuple[bytes, ...]) -> tuple[list[Frame], FrameParser]:
    parser = FrameParser()
    frames: list[Frame] = []
    for chunk in chunks:
        frames += parser.feed(chunk)
    return frames, parser


def signature(frames: list[Frame]) -> list[tuple[str, tuple[tuple[str, str], ...], bytes]]:
    return [(type(f).__name__, tuple(f.headers.items()), f.body) for f in frames]


def test_every_capture_stream_is_known() -> None:
    assert sorted(IDS) == sorted(EXPECTED)


@pytest.mark.parametrize("stream", STREAMS, ids=IDS)
def test_recorded_chunking_parses_completely(stream: esl_captures.Stream) -> None:
    frames, parser = parse_chunks(stream.chunks)
    assert parser.idle, f"{parser.buffered} bytes left over"
    assert dict(Counter(type(f).__name__ for f in frames)) == EXPECTED[stream.label]
    # Nothing dropped: each frame re-serialises to exactly the bytes it came from.
    assert sum(len(f.body) for f in frames) < len(stream.data)
    assert parser.bytes_fed == len(stream.data)
    assert parser.frames_parsed == len(frames)


@pytest.mark.parametrize("stream", STREAMS, ids=IDS)
def test_every_event_reencodes_byte_for_byte(stream: esl_captures.Stream) -> None:
    """Decoding is lossless: FreeSWITCH's own encoding is reproduced exactly."""
    frames, _ = parse_chunks(stream.chunks)
    for frame in frames:
        if isinstance(frame, EventFrame):
            fmt = frame.content_type.removeprefix("text/event-")
            head = f"Content-Length: {len(frame.body)}\nContent-Type: {frame.content_type}\n\n"
            assert encode_event(frame.event, fmt) == head.encode() + frame.body


@pytest.mark.parametrize("stream", STREAMS, ids=IDS)
def test_one_byte_at_a_time(stream: esl_captures.Stream) -> None:
    data = stream.data
    frames, parser = parse_chunks([data[i : i + 1] for i in range(len(data))])
    assert parser.idle
    assert signature(frames) == signature(parse_chunks(stream.chunks)[0])


@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(index=st.integers(0, len(STREAMS) - 1), seed=st.integers(0, 2**32 - 1))
def test_random_rechunking_gives_the_same_frames(index: int, seed: int) -> None:
    stream = STREAMS[index]
    data = stream.data
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(data)), k=min(len(data) - 1, rng.randint(1, 200))))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    frames, parser = parse_chunks(chunks)
    assert parser.idle
    assert signature(frames) == signature(parse_chunks(stream.chunks)[0])


def test_all_streams_in_one_chunk() -> None:
    for stream in STREAMS:
        frames, parser = parse_chunks([stream.data])
        assert parser.idle
        assert len(frames) == sum(EXPECTED[stream.label].values())


def frames_of(name: str, conn: str = "main") -> list[Frame]:
    return parse_chunks(esl_captures.load(name).s2c(conn).chunks)[0]


def test_01_inbound_basic_details() -> None:
    bad = frames_of("01-inbound-basic", "bad")
    assert isinstance(bad[0], AuthRequest)
    assert isinstance(bad[1], CommandReply) and bad[1].reply_text == "-ERR invalid"
    assert not bad[1].ok
    assert isinstance(bad[2], DisconnectNotice) and bad[2].disposition == ""
    assert bad[2].body == b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"

    main = frames_of("01-inbound-basic")
    replies = [f for f in main if isinstance(f, CommandReply)]
    assert replies[0].reply_text == "+OK accepted"
    jobs = [f for f in replies if f.job_uuid]
    assert [j.reply_text for j in jobs] == [f"+OK Job-UUID: {j.job_uuid}" for j in jobs]
    assert "11111111-2222-3333-4444-555555555555" in [j.job_uuid for j in jobs]  # client chose
    events = [f.event for f in main if isinstance(f, EventFrame)]
    assert [e.name for e in events] == ["BACKGROUND_JOB"] * 5
    assert [e.job_uuid for e in events] == [j.job_uuid for j in jobs]
    by_format = {f.content_type for f in main if isinstance(f, EventFrame)}
    assert by_format == {"text/event-plain", "text/event-json", "text/event-xml"}
    for event in events:  # the inner body is exactly its Content-Length
        assert len(event.body.encode()) == int(event["Content-Length"])
    assert events[0].body.startswith("UP 0 years")
    assert events[1].body == "-ERR nosuchfunction Command not found!\n"
    xml = events[4]
    assert xml["Event-Date-Local"] == "2026-11-23 08:08:32"  # URL-decoded
    assert xml.body.startswith("FreeSWITCH Version 1.10.12") and xml.body.endswith("64bit)\n")
    api = [f for f in main if isinstance(f, ApiResponse)]
    assert api[1].text == '{"row_count": 0}\n'
    assert not api[3].ok and api[3].text.startswith("-ERR nosuchfunction")


def test_02a_plain_and_02b_json_saw_the_same_47_events() -> None:
    plain = [
        f.event for f in frames_of("02a-inbound-call-events-plain") if isinstance(f, EventFrame)
    ]
    json_ = [
        f.event for f in frames_of("02b-inbound-call-events-json") if isinstance(f, EventFrame)
    ]
    assert len(plain) == len(json_) == 47
    # URL-decoding the plain values gives exactly the JSON strings, header for header.
    assert [e.items for e in plain] == [e.items for e in json_]
    names = [e.name for e in plain]
    assert names.count("DTMF") == 3
    assert [e["DTMF-Digit"] for e in plain if e.name == "DTMF"] == ["1", "2", "#"]
    assert names.count("PLAYBACK_START") == names.count("PLAYBACK_STOP") == 3
    assert names[-4:] == [
        "CHANNEL_STATE", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY", "CHANNEL_STATE"
    ]  # fmt: skip
    pagd = next(e for e in plain if e.get("Application") == "play_and_get_digits"
                and e.name == "CHANNEL_EXECUTE_COMPLETE")  # fmt: skip
    assert pagd.variable("esl_digits") == "12"
    hangup_complete = next(e for e in plain if e.name == "CHANNEL_HANGUP_COMPLETE")
    assert [v for k, v in hangup_complete.items if k == "Hangup-Cause"] == ["NORMAL_CLEARING"] * 2


@pytest.mark.parametrize(
    ("name", "mode"),
    [("03a-outbound-socket-async", "async"), ("03b-outbound-socket-sync", "static")],
)
def test_03_outbound_connect_reply_and_notices(name: str, mode: str) -> None:
    frames = frames_of(name)
    connect = frames[0]
    assert isinstance(connect, CommandReply)
    assert connect.reply_text == "+OK"  # sent URL-encoded as %2BOK%0A
    assert connect.headers["Socket-Mode"] == mode and connect.headers["Control"] == "full"
    channel = connect.channel_data
    assert channel is not None and channel.name == "CHANNEL_DATA"
    # the recorder addressed the call by the UUID the connect reply gave it
    sendmsg_uuid = next(
        c.split(b"\n")[0].split(b" ")[1].decode()
        for c in esl_captures.load(name).commands()
        if c.startswith(b"sendmsg ")
    )
    assert channel.unique_id == sendmsg_uuid
    assert channel["Channel-Name"].startswith("sofia/external/sipp@127.0.0.1:")
    assert channel.variable("current_application") == "socket"
    # the four reply headers mod_event_socket adds at the bottom are not channel data
    names = [k for k, _ in channel.items]
    assert names[0] == "Event-Name" and len(names) == len(set(names)) > 100
    assert not {"Content-Type", "Reply-Text", "Socket-Mode", "Control"} & set(names)
    assert channel.get("Socket-Mode") is None
    events = [f.event for f in frames if isinstance(f, EventFrame)]
    assert ("CHANNEL_PARK" in [e.name for e in events]) is (mode == "async")
    assert ("CHANNEL_HANGUP_COMPLETE" in [e.name for e in events]) is (mode == "async")
    locked = next(e for e in events if e.application_uuid == "aaaaaaaa-0000-4000-8000-000000000001"
                  and e.name == "CHANNEL_EXECUTE_COMPLETE")  # fmt: skip
    assert locked["Application-Response"] == "FILE PLAYED"
    notices = [f for f in frames if isinstance(f, DisconnectNotice)]
    assert [n.disposition for n in notices] == ["linger", "disconnect"]
    assert notices[0].linger and notices[0].body == b""
    assert notices[0].headers["Linger-Time"] == "-1"
    assert notices[1].headers["Controlled-Session-UUID"] == channel.unique_id
    apis = [f.text for f in frames if isinstance(f, ApiResponse)]
    assert apis == ["hello world", "12", "_undef_", "-ERR No such channel!\n"]


def test_04_originate_bridge_kill_details() -> None:
    frames = frames_of("04-originate-bridge-kill")
    events = [f.event for f in frames if isinstance(f, EventFrame)]
    jobs = [e for e in events if e.name == "BACKGROUND_JOB"]
    assert [j.body.split(" ")[0].strip() for j in jobs] == ["+OK", "+OK", "-ERR"]
    assert jobs[2].body.strip() == "-ERR INVALID_PROFILE"
    assert [e.name for e in events].count("CHANNEL_HANGUP_COMPLETE") == 2
    bridged = next(e for e in events if e.name == "CHANNEL_BRIDGE")
    assert bridged["Other-Leg-Unique-ID"] == "bbbbbbbb-0000-4000-8000-00000000000b"
