"""Replay a capture's commands against the test peer and compare what comes back.

A :class:`RawConn` is a deliberately dumb ESL endpoint (asyncio streams + the frame parser,
no client logic) so the comparison sees the peer's bytes, not the client's interpretation.
:func:`shape` reduces a frame to what must match FreeSWITCH (types, header names and order,
and the values that do not change between runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from typing import Any

from callmesh.workers.esl.events import Event
from callmesh.workers.esl.frames import (
    ApiResponse,
    CommandReply,
    DisconnectNotice,
    EventFrame,
    Frame,
)
from callmesh.workers.esl.parser import FrameParser

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Event headers whose values are the same in every run of the same exchange.
STABLE = (
    "Event-Name", "Event-Calling-File", "Event-Calling-Function", "Event-Calling-Line-Number",
    "Channel-State", "Channel-Call-State", "Channel-State-Number", "Answer-State",
    "Call-Direction", "Hangup-Cause", "Application", "Application-Data", "Application-Response",
    "Playback-File-Type", "Playback-File-Path", "Playback-Status", "DTMF-Digit", "DTMF-Source",
    "Job-Command", "Other-Type", "Channel-Read-Codec-Name", "Channel-Write-Codec-Name",
)  # fmt: skip
VARIABLES = ("read_result", "pagd_digits", "read_terminator_used", "esl_capture_var",
             "current_application")  # fmt: skip


_RFC822_DAY = re.compile(
    r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d+) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b"
)
_UNITS = re.compile(r"# (year|day|hour|minute|second|millisecond|microsecond)s\b")


def normalise(text: str) -> str:
    """Replace UUIDs, digits, the day and month of RFC 822 dates, and the plural of the
    uptime's units ("1 second", "2 seconds") so per-run values compare equal."""
    text = _RFC822_DAY.sub("<day>, # <month>", UUID.sub("<uuid>", text))
    return _UNITS.sub(r"# \1", re.sub(r"\d+", "#", text))


def event_shape(event: Event) -> dict[str, Any]:
    """Header names in order (variables apart) and the stable values."""
    names = [k for k, _ in event.items if not k.startswith("variable_")]
    values = {k: normalise(event[k]) for k in STABLE if k in event}
    variables = {k: event.variable(k) for k in VARIABLES if event.variable(k) is not None}
    return {"names": names, "values": values, "variables": variables,
            "body": normalise(event.body)}  # fmt: skip


def shape(frame: Frame) -> dict[str, Any]:
    """What of ``frame`` must match the recording."""
    out: dict[str, Any] = {"type": type(frame).__name__, "content_type": frame.content_type}
    if isinstance(frame, EventFrame):
        out["outer"] = list(frame.headers)
        out["event"] = event_shape(frame.event)
    elif isinstance(frame, CommandReply):
        channel = frame.channel_data
        out["outer"] = [k for k in frame.headers if not k.startswith("variable_")]
        out["reply"] = normalise(frame.reply_text)
        out["mode"] = frame.headers.get("Socket-Mode")
        if channel is not None:
            out["outer"] = [k for k in out["outer"] if k not in channel.headers] + ["<channel>"]
            out["channel"] = event_shape(channel)
    elif isinstance(frame, ApiResponse):
        out["outer"] = list(frame.headers)
        out["body"] = normalise(frame.text)
    elif isinstance(frame, DisconnectNotice):
        out["outer"] = list(frame.headers)
        out["disposition"] = frame.disposition
        out["linger"] = frame.headers.get("Linger-Time")
        out["body"] = frame.body
    return out


class RawConn:
    """Commands out, frames in: nothing else."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = FrameParser()
        self.frames: list[Frame] = []
        self.raw = bytearray()
        """Every byte received, for byte-for-byte comparisons."""
        self._changed = asyncio.Condition()
        self.eof = False
        self._task = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(cls, host: str, port: int) -> RawConn:
        """Open a connection to an ESL server."""
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def _read(self) -> None:
        while True:
            data = await self.reader.read(65536)
            async with self._changed:
                if not data:
                    self.eof = True
                else:
                    self.raw += data
                    self.frames += self.parser.feed(data)
                self._changed.notify_all()
            if not data:
                return

    async def wait(
        self, pred: Callable[[Frame], bool], start: int = 0, timeout: float = 5.0
    ) -> Frame:
        """The first frame from index ``start`` on that satisfies ``pred``."""
        async with asyncio.timeout(timeout), self._changed:
            while True:
                for frame in self.frames[start:]:
                    if pred(frame):
                        return frame
                if self.eof:
                    raise EOFError("connection closed before the frame arrived")
                await self._changed.wait()

    async def cmd(self, data: bytes) -> Frame:
        """Send one command; its reply (or the disconnect notice)."""
        start = len(self.frames)
        self.writer.write(data)
        await self.writer.drain()
        return await self.wait(
            lambda f: isinstance(f, CommandReply | ApiResponse | DisconnectNotice), start
        )

    async def wait_closed(self, timeout: float = 5.0) -> None:
        """Wait for EOF from the other side."""
        async with asyncio.timeout(timeout), self._changed:
            while not self.eof:
                await self._changed.wait()

    async def close(self) -> None:
        """Close our side and stop reading."""
        self.writer.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await self._task


def is_execute_complete(app: str) -> Callable[[Frame], bool]:
    """Predicate: CHANNEL_EXECUTE_COMPLETE of ``app``."""
    return lambda f: (
        isinstance(f, EventFrame)
        and f.event.name == "CHANNEL_EXECUTE_COMPLETE"
        and f.event.get("Application") == app
    )


def is_event(name: str, **headers: str) -> Callable[[Frame], bool]:
    """Predicate: event ``name`` with the given header values."""
    return lambda f: (
        isinstance(f, EventFrame)
        and f.event.name == name
        and all(f.event.get(k.replace("_", "-")) == v for k, v in headers.items())
    )
