"""Typed ESL frames: what one header block plus its optional body means.

A frame is classified by its ``Content-Type``: ``auth/request``, ``command/reply``,
``api/response``, ``text/event-{plain,json,xml}``, ``log/data``, ``text/disconnect-notice``.
The outbound ``connect`` reply is a :class:`CommandReply` whose header block also carries the
channel's CHANNEL_DATA headers (see :attr:`CommandReply.channel_data`). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from callmesh.workers.esl.errors import EslProtocolError
from callmesh.workers.esl.events import (
    BlockHeaders,
    Event,
    Headers,
    decode_event,
    parse_header_lines,
)

AUTH_REQUEST = "auth/request"
COMMAND_REPLY = "command/reply"
API_RESPONSE = "api/response"
LOG_DATA = "log/data"
DISCONNECT_NOTICE = "text/disconnect-notice"
EVENT_TYPES = frozenset({"text/event-plain", "text/event-json", "text/event-xml"})
_CONNECT_REPLY = frozenset({"Content-Type", "Reply-Text", "Socket-Mode", "Control"})
"""The headers mod_event_socket adds to the CHANNEL_DATA event of its ``connect`` reply."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One ESL frame: decoded outer headers in wire order, and the raw body bytes."""

    headers: Mapping[str, str]
    body: bytes = b""

    @property
    def content_type(self) -> str:
        """The frame's ``Content-Type`` (``""`` when the header is missing)."""
        return self.headers.get("Content-Type", "")


@dataclass(frozen=True, slots=True)
class AuthRequest(Frame):
    """``auth/request``: FreeSWITCH greets an inbound connection and waits for ``auth``."""


@dataclass(frozen=True, slots=True)
class CommandReply(Frame):
    """``command/reply``: the answer to a command; its result is in ``Reply-Text``."""

    @property
    def reply_text(self) -> str:
        """``Reply-Text`` with the trailing newline FreeSWITCH sometimes adds removed."""
        return self.headers.get("Reply-Text", "").rstrip("\n")

    @property
    def ok(self) -> bool:
        """True when the reply starts with ``+OK``."""
        return self.reply_text.startswith("+OK")

    @property
    def job_uuid(self) -> str | None:
        """The ``Job-UUID`` header of a ``bgapi`` reply."""
        return self.headers.get("Job-UUID")

    @property
    def channel_data(self) -> Event | None:
        """For the outbound ``connect`` reply: the CHANNEL_DATA event it carries, else None."""
        headers = self.headers
        if "Event-Name" not in headers:
            return None
        if isinstance(headers, BlockHeaders):  # as parsed: read lazily, decoded when read
            # mod_event_socket adds the four reply headers at the bottom of the event
            block = headers.block
            cut = block.rfind("\nContent-Type: ")
            if cut >= 0 and all(
                line.partition(": ")[0] in _CONNECT_REPLY for line in block[cut + 1 :].split("\n")
            ):
                return Event.from_block(block[:cut])
            pairs = parse_header_lines(block, decode=False, what="connect reply")
            return Event.from_wire([(k, v) for k, v in pairs if k not in _CONNECT_REPLY])
        if isinstance(headers, Headers) and headers._encoded:
            raw = headers._raw.items()
            return Event.from_wire([(k, v) for k, v in raw if k not in _CONNECT_REPLY])
        return Event({k: v for k, v in headers.items() if k not in _CONNECT_REPLY})


@dataclass(frozen=True, slots=True)
class ApiResponse(Frame):
    """``api/response``: the body is the API function's output (``-ERR ...`` on failure)."""

    @property
    def text(self) -> str:
        """The body as text (UTF-8, undecodable bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")

    @property
    def ok(self) -> bool:
        """False when the output starts with ``-ERR`` or ``-USAGE``, as FreeSWITCH signals."""
        return not self.body.startswith((b"-ERR", b"-USAGE"))


@dataclass(frozen=True, slots=True)
class EventFrame(Frame):
    """``text/event-*``: one subscribed event, decoded into :attr:`event`."""

    event: Event = field(default_factory=lambda: Event({}))


@dataclass(frozen=True, slots=True)
class BadEventFrame(Frame):
    """An event frame that framed correctly but whose body could not be decoded.

    The stream stays in sync (the outer ``Content-Length`` was honoured), so the connection
    keeps going; :attr:`error` says what was wrong.
    """

    error: str = ""


@dataclass(frozen=True, slots=True)
class LogData(Frame):
    """``log/data``: a log line (``Log-Level``, ``Log-File`` ... headers, text body)."""


@dataclass(frozen=True, slots=True)
class DisconnectNotice(Frame):
    """``text/disconnect-notice``: FreeSWITCH is closing the socket, or (``linger``) the
    controlled channel hung up and the socket stays open for the linger time."""

    @property
    def disposition(self) -> str:
        """``Content-Disposition``: ``linger``, ``disconnect`` or ``""`` (inbound goodbye)."""
        return self.headers.get("Content-Disposition", "")

    @property
    def linger(self) -> bool:
        """True for the outbound linger notice: the call ended but the socket stays open."""
        return self.disposition == "linger"


@dataclass(frozen=True, slots=True)
class UnknownFrame(Frame):
    """A well-formed frame with a ``Content-Type`` this library does not know."""


_KINDS: dict[str, type[Frame]] = {
    AUTH_REQUEST: AuthRequest,
    COMMAND_REPLY: CommandReply,
    API_RESPONSE: ApiResponse,
    LOG_DATA: LogData,
    DISCONNECT_NOTICE: DisconnectNotice,
}


def classify(headers: Mapping[str, str], body: bytes) -> Frame:
    """Build the typed frame for a parsed header block and body."""
    content_type = headers.get("Content-Type", "")
    if content_type in EVENT_TYPES:
        try:
            return EventFrame(headers, body, decode_event(content_type, body))
        except EslProtocolError as exc:
            return BadEventFrame(headers, body, str(exc))
    return _KINDS.get(content_type, UnknownFrame)(headers, body)
