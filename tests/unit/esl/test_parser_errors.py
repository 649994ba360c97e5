"""Bad input gives typed protocol errors (never a crash) and memory stays bounded."""

from __future__ import annotations

import pytest
from callmesh.workers.esl.errors import EslProtocolError
from callmesh.workers.esl.frames import (
    BadEventFrame,
    CommandReply,
    EventFrame,
    LogData,
    UnknownFrame,
)
from callmesh.workers.esl.parser import FrameParser, State, _parse, _two_lines
from hypothesis import given
from hypothesis import strategies as st


def test_hostile_content_length_fails_before_buffering() -> None:
    parser = FrameParser(max_body_bytes=1024)
    with pytest.raises(EslProtocolError, match="exceeds max_body_bytes=1024"):
        parser.feed(b"Content-Type: api/response\nContent-Length: 999999999999\n\n")
    assert parser.state is State.FAILED and parser.buffered == 0


def test_endless_header_block_fails_at_the_limit() -> None:
    parser = FrameParser(max_header_bytes=4096)
    line = b"X-Header: " + b"a" * 90 + b"\n"
    with pytest.raises(EslProtocolError, match="max_header_bytes=4096"):
        for _ in range(100):
            parser.feed(line)
    assert parser.buffered == 0
    with pytest.raises(EslProtocolError, match="already failed"):
        parser.feed(b"Content-Type: auth/request\n\n")


def test_header_block_over_limit_in_one_chunk() -> None:
    parser = FrameParser(max_header_bytes=64)
    with pytest.raises(EslProtocolError, match="exceeds max_header_bytes"):
        parser.feed(b"Content-Type: command/reply\nReply-Text: " + b"x" * 100 + b"\n\n")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"Content-Type: api/response\nContent-Length: abc\n\n", "not a byte count"),
        (b"Content-Type: api/response\nContent-Length: -5\n\n", "not a byte count"),
        (b"just some words\n\n", "is not 'Name: value'"),
        (b": value\n\n", "is not 'Name: value'"),
        (b"Content-Type: \xff\xfe\n\n", "not UTF-8"),
    ],
)
def test_malformed_header_blocks(data: bytes, message: str) -> None:
    with pytest.raises(EslProtocolError, match=message):
        FrameParser().feed(data)


def test_undecodable_event_body_keeps_the_stream_in_sync() -> None:
    parser = FrameParser()
    frames = parser.feed(
        b"Content-Length: 5\nContent-Type: text/event-json\n\n{oops"
        b"Content-Type: command/reply\nReply-Text: +OK\n\n"
    )
    assert isinstance(frames[0], BadEventFrame) and "not JSON" in frames[0].error
    assert isinstance(frames[1], CommandReply) and frames[1].ok


@pytest.mark.parametrize(
    "body",
    [
        b'{"Event-Name": 5}',
        b"[1, 2]",
        b'{"Event-Name": {"nested": "x"}}',
    ],
)
def test_json_events_must_be_objects_of_strings(body: bytes) -> None:
    head = b"Content-Length: %d\nContent-Type: text/event-json\n\n" % len(body)
    (frame,) = FrameParser().feed(head + body)
    assert isinstance(frame, BadEventFrame)


def test_plain_event_with_short_inner_body_is_bad_not_fatal() -> None:
    body = b"Event-Name: BACKGROUND_JOB\nContent-Length: 50\n\nshort"
    head = b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(body)
    (frame,) = FrameParser().feed(head + body)
    assert isinstance(frame, BadEventFrame) and "Content-Length says 50" in frame.error


def test_json_array_header_keeps_freeswitch_array_form() -> None:
    body = b'{"Event-Name":"CUSTOM","multi":["a","b"]}'
    head = b"Content-Length: %d\nContent-Type: text/event-json\n\n" % len(body)
    (frame,) = FrameParser().feed(head + body)
    assert isinstance(frame, EventFrame) and frame.event["multi"] == "ARRAY::a|:b"


def test_log_data_and_unknown_frames_are_typed() -> None:
    frames = FrameParser().feed(
        b"Content-Type: log/data\nContent-Length: 3\nLog-Level: 7\n\nhi\n"
        b"Content-Type: text/rude-rejection\nContent-Length: 2\n\nno"
    )
    assert isinstance(frames[0], LogData) and frames[0].body == b"hi\n"
    assert isinstance(frames[1], UnknownFrame) and frames[1].content_type == "text/rude-rejection"


def test_blank_lines_between_frames_and_crlf_are_tolerated() -> None:
    frames = FrameParser().feed(b"\n\nContent-Type: command/reply\r\nReply-Text: +OK\r\n\n")
    assert isinstance(frames[0], CommandReply) and frames[0].reply_text == "+OK"


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_header_bytes"):
        FrameParser(max_header_bytes=1)
    with pytest.raises(ValueError, match="max_body_bytes"):
        FrameParser(max_body_bytes=-1)


@given(st.lists(st.binary(max_size=300), max_size=12))
def test_arbitrary_bytes_give_frames_or_protocol_errors(chunks: list[bytes]) -> None:
    parser = FrameParser(max_header_bytes=512, max_body_bytes=512)
    for chunk in chunks:
        try:
            parser.feed(chunk)
        except EslProtocolError:
            assert parser.state is State.FAILED and parser.buffered == 0
            return
        assert parser.buffered <= 512 + len(chunk)


_header_name = st.sampled_from(
    ["Content-Type", "Content-Length", "Reply-Text", "Job-UUID", "Event-Name", "X"]
)
_content_type = st.sampled_from(
    [
        "auth/request", "command/reply", "api/response", "text/event-plain",
        "text/event-json", "text/event-xml", "log/data", "text/disconnect-notice", "x/y",
    ]
)  # fmt: skip


@given(
    st.lists(
        st.tuples(_content_type, st.lists(st.tuples(_header_name, st.text(max_size=20))),
                  st.binary(max_size=200)),
        max_size=6,
    ),
    st.integers(1, 50),
)  # fmt: skip
def test_structured_garbage_never_crashes(
    frames: list[tuple[str, list[tuple[str, str]], bytes]], step: int
) -> None:
    """Well-framed but nonsensical content: only typed frames or EslProtocolError."""
    data = b""
    for content_type, headers, body in frames:
        lines = [f"Content-Type: {content_type}"] + [f"{k}: {v}" for k, v in headers]
        lines.append(f"Content-Length: {len(body)}")
        data += ("\n".join(lines) + "\n\n").encode() + body
    parser = FrameParser()
    try:
        for i in range(0, len(data), step):
            parser.feed(data[i : i + step])
    except EslProtocolError:
        assert parser.state is State.FAILED


@given(
    st.lists(
        st.sampled_from(["a", "B", ":", " ", ": ", "\r", "\n", "-", "%20", "Content-Length"]),
        max_size=14,
    )
)
def test_two_line_blocks_split_as_the_general_parser_does(parts: list[str]) -> None:
    """The outer block's two-line fast path gives exactly what the general parser gives,
    or leaves the block to it."""
    block = "".join(parts)
    fast = _two_lines(block)
    if fast is not None:
        assert list(fast.items()) == list(_parse(block).items())


def test_long_outer_blocks_are_read_lazily_first_occurrence_wins() -> None:
    # a connect reply is a whole CHANNEL_DATA event: read as FreeSWITCH's ESL client reads it
    block = (
        b"Event-Name: CHANNEL_DATA\nUnique-ID: u1\nvariable_x: %2Bfirst\nvariable_x: second\n"
        b"no colon here\nContent-Type: command/reply\nReply-Text: %2BOK%0A\n"
        b"Socket-Mode: async\nControl: full\n\n"
    )
    (reply,) = FrameParser().feed(block)
    assert isinstance(reply, CommandReply) and reply.reply_text == "+OK"
    assert reply.headers["variable_x"] == "+first"  # decoded when read; the first one
    channel = reply.channel_data
    assert channel is not None and channel.unique_id == "u1"
    assert channel.variable("x") == "+first" and channel.get("Socket-Mode") is None
    with pytest.raises(EslProtocolError, match="no colon here"):
        _ = channel.items  # a bad line costs no lookup; the full list names it
    # the reply headers elsewhere than at the bottom: channel data still leaves them out
    moved = b"Content-Type: command/reply\nEvent-Name: CHANNEL_DATA\nReply-Text: %2BOK\nUnique-ID: u2\n\n"
    (reply,) = FrameParser().feed(moved)
    assert isinstance(reply, CommandReply)
    channel = reply.channel_data
    assert channel is not None and [k for k, _ in channel.items] == ["Event-Name", "Unique-ID"]
