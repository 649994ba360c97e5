"""The I/O-free ESL frame parser: an explicit state machine fed bytes.

``FrameParser.feed(data)`` takes whatever ``recv()`` returned (any split, several frames or a
fraction of one) and returns the frames it completed. States:

``HEADERS``  collecting a header block until the empty line (``\\n\\n``);
``BODY``     collecting exactly ``Content-Length`` bytes;
``FAILED``   a protocol error happened; the stream can no longer be trusted.

Memory is bounded: a header block longer than ``max_header_bytes`` or a ``Content-Length``
above ``max_body_bytes`` raises :class:`EslProtocolError` before anything is buffered past
the limit. Pure: no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

from callmesh.workers.esl.errors import EslProtocolError
from callmesh.workers.esl.events import (
    BlockHeaders,
    Headers,
    check_first_line,
    parse_header_lines,
)
from callmesh.workers.esl.frames import Frame, classify

DEFAULT_MAX_HEADER_BYTES: Final = 256 * 1024
"""A CHANNEL_DATA connect reply is ~5 KB; 256 KB leaves room for many channel variables."""
DEFAULT_MAX_BODY_BYTES: Final = 64 * 1024 * 1024
"""Big enough for ``show channels`` on a busy switch; a hostile Content-Length fails fast."""


class State(enum.Enum):
    """Where the parser is within the current frame."""

    HEADERS = "headers"
    BODY = "body"
    FAILED = "failed"


class FrameParser:
    """Turn an ESL byte stream into typed :class:`~callmesh.workers.esl.frames.Frame` objects.

    >>> parser = FrameParser()
    >>> parser.feed(b"Content-Type: auth/req")
    []
    >>> [type(f).__name__ for f in parser.feed(b"uest\\n\\nContent-Type: command/reply\\n")]
    ['AuthRequest']
    >>> parser.feed(b"Reply-Text: +OK accepted\\n\\n")[0].reply_text
    '+OK accepted'
    """

    __slots__ = (
        "_body_size",
        "_buffer",
        "_headers",
        "_scanned",
        "bytes_fed",
        "frames_parsed",
        "max_body_bytes",
        "max_header_bytes",
        "state",
    )  # per-call objects: no __dict__

    def __init__(
        self,
        *,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        if max_header_bytes < 16:
            raise ValueError(f"max_header_bytes={max_header_bytes}: use at least 16")
        if max_body_bytes < 0:
            raise ValueError(f"max_body_bytes={max_body_bytes}: use 0 or more")
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self.state = State.HEADERS
        self._buffer = bytearray()
        self._scanned = 0  # bytes of the header block already searched for the blank line
        self._headers: Mapping[str, str] = {}
        self._body_size = 0
        self.frames_parsed = 0
        self.bytes_fed = 0

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return len(self._buffer)

    @property
    def idle(self) -> bool:
        """True at a frame boundary with nothing buffered (a clean place for EOF)."""
        return self.state is State.HEADERS and not self._buffer

    def feed(self, data: bytes) -> list[Frame]:
        """Consume ``data``; return every frame it completed, in order.

        Raises :class:`EslProtocolError` on malformed input or exceeded limits; after that the
        parser stays failed and raises again on every call.
        """
        if self.state is State.FAILED:
            raise EslProtocolError("parser already failed; the connection must be closed")
        self.bytes_fed += len(data)
        self._buffer += data
        frames: list[Frame] = []
        try:
            while True:
                if self.state is State.HEADERS:
                    if not self._take_headers():
                        break
                    if self._body_size == 0:
                        frames.append(self._emit(b""))
                        continue
                if len(self._buffer) < self._body_size:
                    break
                body = bytes(self._buffer[: self._body_size])
                del self._buffer[: self._body_size]
                frames.append(self._emit(body))
        except EslProtocolError:
            self.state = State.FAILED
            self._buffer.clear()
            raise
        return frames

    def _take_headers(self) -> bool:
        buffer = self._buffer
        # FreeSWITCH never sends them, but blank lines between frames are harmless.
        skip = 0
        while skip < len(buffer) and buffer[skip] == 0x0A:
            skip += 1
        if skip:
            del buffer[:skip]
            self._scanned = 0
        end = buffer.find(b"\n\n", max(0, self._scanned - 1))
        if end < 0:
            self._scanned = len(buffer)
            if len(buffer) > self.max_header_bytes:
                raise EslProtocolError(
                    f"header block exceeds max_header_bytes={self.max_header_bytes} "
                    "without an empty line"
                )
            return False
        if end > self.max_header_bytes:
            raise EslProtocolError(
                f"header block of {end} bytes exceeds max_header_bytes={self.max_header_bytes}"
            )
        try:
            block = buffer[:end].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EslProtocolError(f"header block is not UTF-8 at byte {exc.start}") from exc
        del buffer[: end + 2]
        self._scanned = 0
        # values are URL-decoded when read. The usual block is two lines; a longer one (the
        # outbound connect reply is a whole CHANNEL_DATA event, ~150 lines of which a call
        # reads a handful) is read lazily like an event-plain block: a lookup finds the
        # first occurrence, as FreeSWITCH's own ESL client does, and the lines are only
        # split if someone iterates. A block with CRs (never FreeSWITCH's) is split now.
        pairs = _two_lines(block)
        headers: Mapping[str, str]
        if pairs is not None:
            headers = Headers(pairs, encoded=True)
        elif "\r" in block:
            headers = Headers(_parse(block), encoded=True)
        else:
            check_first_line(block, "frame")
            headers = BlockHeaders(block)
        length = headers.get("Content-Length")
        size = 0
        if length is not None:
            text = length.strip()
            if not (text.isascii() and text.isdigit()) or len(text) > 12:
                raise EslProtocolError(f"Content-Length {length[:40]!r} is not a byte count")
            size = int(text)
            if size > self.max_body_bytes:
                raise EslProtocolError(
                    f"Content-Length {size} exceeds max_body_bytes={self.max_body_bytes}"
                )
        self._headers = headers
        self._body_size = size
        self.state = State.BODY
        return True

    def _emit(self, body: bytes) -> Frame:
        frame = classify(self._headers, body)
        self._headers = {}
        self._body_size = 0
        self.state = State.HEADERS
        self.frames_parsed += 1
        return frame


def _parse(block: str) -> dict[str, str]:
    return dict(parse_header_lines(block, decode=False, what="frame"))


def _two_lines(block: str) -> dict[str, str] | None:
    """The usual outer block, two ``Name: value`` lines (an event's ``Content-Length`` and
    ``Content-Type``, a reply's ``Content-Type`` and ``Reply-Text``), split without the
    general parser's lists; exactly what it gives. None for any other block."""
    if block.count("\n") != 1 or "\r" in block:
        return None
    first, _, second = block.partition("\n")
    name1, sep1, value1 = first.partition(": ")
    name2, sep2, value2 = second.partition(": ")
    if not (sep1 and name1 and sep2 and name2):
        return None
    return {name1: value1, name2: value2}  # a repeated name: the last wins, as dict() does
