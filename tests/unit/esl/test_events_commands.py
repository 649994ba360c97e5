"""Event encodings, URL coding, command encoding and backoff: the pure helpers."""

from __future__ import annotations

import random
import urllib.parse

import pytest
from callmesh.workers.esl import commands
from callmesh.workers.esl.backoff import Backoff
from callmesh.workers.esl.errors import EslProtocolError
from callmesh.workers.esl.events import (
    Event,
    decode_event,
    encode_event,
    encode_json,
    encode_plain,
    encode_xml,
    url_decode,
    url_encode,
)
from callmesh.workers.esl.frames import BadEventFrame, EventFrame
from callmesh.workers.esl.parser import FrameParser
from esl_peer import captures as esl_captures
from hypothesis import given
from hypothesis import strategies as st


def test_url_encoding_matches_every_captured_header_value() -> None:
    checked = 0
    for stream in esl_captures.s2c_streams():
        for frame in FrameParser().feed(stream.data):
            if isinstance(frame, EventFrame) and frame.content_type == "text/event-plain":
                head = frame.body.partition(b"\n\n")[0].decode()
                for line in head.split("\n"):
                    raw = line.partition(": ")[2]
                    assert url_encode(url_decode(raw)) == raw
                    checked += 1
    assert checked > 15_000


@given(st.text())
def test_url_coding_round_trips(value: str) -> None:
    assert url_decode(url_encode(value)) == value
    assert "\n" not in url_encode(value) and " " not in url_encode(value)


def test_url_decode_keeps_plus_and_bad_escapes() -> None:
    assert url_decode("%2BOK%0A") == "+OK\n"
    assert url_decode("a+b %zz 100%") == "a+b %zz 100%"
    assert url_decode("%(1500,0,440)") == "%(1500,0,440)"
    assert urllib.parse.unquote("a+b") == url_decode("a+b")


_names = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=":<>&/"),
    min_size=1,
    max_size=20,
).filter(lambda n: n[0].isalpha() and n not in ("Content-Length", "_body"))


@given(
    st.lists(st.tuples(_names, st.text(max_size=40)), max_size=10),
    st.text(max_size=100),
)
def test_plain_and_json_round_trip(items: list[tuple[str, str]], body: str) -> None:
    event = Event([("Event-Name", "CUSTOM"), *items], body)
    for fmt in ("plain", "json"):
        frame = FrameParser().feed(encode_event(event, fmt))[0]
        assert isinstance(frame, EventFrame)
        decoded = frame.event
        expected = [("Event-Name", "CUSTOM"), *items]
        if body:
            expected.append(("Content-Length", str(len(body.encode()))))
        assert list(decoded.items) == expected
        assert decoded.body == body


def test_xml_round_trip_and_escaping() -> None:
    event = Event({"Event-Name": "CUSTOM", "Note": "a<b & c>d"}, "body <x> & y\n")
    decoded = decode_event("text/event-xml", encode_xml(event))
    assert decoded["Note"] == "a<b & c>d" and decoded.body == "body <x> & y\n"


def test_event_accessors() -> None:
    event = Event(
        [("Event-Name", "CUSTOM"), ("Event-Subclass", "sofia::register"), ("Hangup-Cause", "A"),
         ("Hangup-Cause", "B"), ("variable_x", "1"), ("Unique-ID", "u")]
    )  # fmt: skip
    assert event.name == "CUSTOM" and event.subclass == "sofia::register"
    assert event["Hangup-Cause"] == "A"  # first wins, as switch_event_get_header
    assert event.variable("x") == "1" and event.variable("y") is None
    assert event.unique_id == "u" and "Unique-ID" in event and next(iter(event)) == "Event-Name"
    assert event == Event(list(event.items)) and event != Event({})
    assert b"Hangup-Cause: A\nHangup-Cause: B\n" in encode_plain(event)
    assert b'"Hangup-Cause":"A","Hangup-Cause":"B"' in encode_json(event)


def test_unknown_event_format_is_refused() -> None:
    with pytest.raises(ValueError, match="use one of plain, json, xml"):
        encode_event(Event({}), "yaml")


def test_command_encoding() -> None:
    assert commands.api("status") == b"api status\n\n"
    assert commands.bgapi("version", "j-1") == b"bgapi version\nJob-UUID: j-1\n\n"
    assert commands.auth("ClueCon") == b"auth ClueCon\n\n"
    assert commands.event("plain", ["CHANNEL_ANSWER", "DTMF"]) == (
        b"event plain CHANNEL_ANSWER DTMF\n\n"
    )
    assert commands.filter_delete("Event-Name") == b"filter delete Event-Name\n\n"
    # exactly the bytes the recorder sent in 03a
    assert (
        commands.execute(
            "playback",
            "tone_stream://%(1500,0,440)",
            event_lock=True,
            event_uuid="aaaaaaaa-0000-4000-8000-000000000001",
        )
        == esl_captures.load("03a-outbound-socket-async").commands()[5]
    )
    assert (
        commands.execute("answer")
        == b"sendmsg\ncall-command: execute\nexecute-app-name: answer\n\n"
    )
    assert commands.hangup("USER_BUSY", uuid="u") == (
        b"sendmsg u\ncall-command: hangup\nhangup-cause: USER_BUSY\n\n"
    )


def test_event_names_put_subclasses_after_custom() -> None:
    assert commands.event_names({"Acme::zap", "DTMF", "BACKGROUND_JOB", "sofia::register"}) == [
        "BACKGROUND_JOB", "DTMF", "CUSTOM", "Acme::zap", "sofia::register"
    ]  # fmt: skip
    assert commands.event_names(["CUSTOM", "DTMF"]) == ["DTMF", "CUSTOM"]
    assert commands.event_names(["DTMF", "ALL"]) == ["ALL", "DTMF"]


def test_long_or_multiline_app_args_go_in_the_body() -> None:
    data = commands.execute("speak", "line one\nline two")
    head, _, body = data.partition(b"\n\n")
    assert b"content-type: text/plain" in head and b"Content-Length: 17" in head
    assert body == b"line one\nline two"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: commands.api("status\n\nexit"), "contains a newline"),
        (lambda: commands.encode_command("   "), "command is empty"),
        (lambda: commands.execute("play back"), "must be one word"),
        (lambda: commands.event("yaml", ["ALL"]), "use one of plain"),
        (lambda: commands.event("plain", []), "at least one event"),
        (lambda: commands.encode_command("x", {"a:b": "c"}), "without ':'"),
        (lambda: commands.sendmsg("execute", headers={"h": "v\r\n"}), "header h"),
    ],
)
def test_bad_commands_are_refused_with_the_field_named(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


def test_backoff_is_capped_jittered_and_repeatable() -> None:
    a = Backoff(base=0.1, cap=2.0, rng=random.Random(7))
    b = Backoff(base=0.1, cap=2.0, rng=random.Random(7))
    delays = [a.next_delay() for _ in range(20)]
    assert delays == [b.next_delay() for _ in range(20)]
    assert all(0 <= d <= min(2.0, 0.1 * 2**i) for i, d in enumerate(delays))
    a.reset()
    assert a.attempt == 0 and a.next_delay() <= 0.1
    with pytest.raises(ValueError, match="positive"):
        Backoff(base=0)
    with pytest.raises(ValueError, match="must be >= base"):
        Backoff(base=1, cap=0.5)


def test_lazy_plain_headers_agree_with_the_full_parse() -> None:
    """BlockHeaders' find-based lookup equals a full split, on every captured plain event."""
    checked = 0
    for stream in esl_captures.s2c_streams():
        for frame in FrameParser().feed(stream.data):
            if isinstance(frame, EventFrame) and frame.content_type == "text/event-plain":
                event = frame.event
                first: dict[str, str] = {}
                for name, value in event.items:
                    first.setdefault(name, value)
                assert {name: event.headers[name] for name in first} == first
                assert list(event.headers) == list(first) and len(event.headers) == len(first)
                assert "No-Such-Header" not in event.headers
                assert event.get("No-Such-Header") is None
                assert "Event-Name\nX" not in event.headers
                checked += 1
    assert checked > 100


def test_malformed_plain_event_lines() -> None:
    # a first line that is not "Name: value" makes the frame a BadEventFrame...
    body = b"no colon here\nEvent-Name: CUSTOM\n\n"
    head = b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(body)
    (frame,) = FrameParser().feed(head + body)
    assert isinstance(frame, BadEventFrame) and "no colon here" in frame.error
    # ...a later one costs nothing to a lookup (the event still arrives), and reading the
    # full list names it
    for body in (
        b"Event-Name: CUSTOM\nno colon here\nUnique-ID: u1\n\n",
        b"Event-Name: CUSTOM\nA: b: c\nno colon here\nUnique-ID: u1\n\n",
    ):
        head = b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(body)
        (frame,) = FrameParser().feed(head + body)
        assert isinstance(frame, EventFrame) and frame.event.name == "CUSTOM"
        assert frame.event.unique_id == "u1" and frame.event.get("no colon here") is None
        with pytest.raises(EslProtocolError, match="no colon here"):
            _ = frame.event.items
