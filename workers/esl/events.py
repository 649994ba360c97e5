"""FreeSWITCH events: the typed :class:`Event` and its three wire encodings.

FreeSWITCH serialises an event as ``text/event-plain`` (``Name: value`` lines, values
URL-encoded, an optional inner ``Content-Length`` and raw body), ``text/event-json`` (one JSON
object, every value a string, the body under ``"_body"``) or ``text/event-xml``. This module
decodes all three into the same :class:`Event` and encodes plain and JSON exactly as
FreeSWITCH 1.10 does (the peer used in tests relies on that; the recorded captures check it).
Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final, TypeVar, overload
from xml.etree import ElementTree

from callmesh.workers.esl.errors import EslProtocolError

_T = TypeVar("_T")

# switch_url_encode() escapes bytes below 0x20, above 0x7e and these (switch_utils.c). The rule
# reproduces every one of the 15,204 plain-event header values in the recorded captures.
_URL_UNSAFE: Final = frozenset(b'\r\n "#%&+:;<=>?@[\\]^`{|}')
_ENCODE_TABLE: Final = tuple(
    f"%{byte:02X}" if byte < 0x20 or byte > 0x7E or byte in _URL_UNSAFE else chr(byte)
    for byte in range(256)
)


def url_encode(value: str) -> str:
    """Encode a header value the way FreeSWITCH's ``switch_url_encode`` does."""
    if value.isascii() and value.isalnum():
        return value
    return "".join(_ENCODE_TABLE[byte] for byte in value.encode("utf-8"))


_HEX: Final = frozenset("0123456789abcdefABCDEF")


def url_decode(value: str) -> str:
    """Decode ``%XX`` escapes (``+`` stays ``+``, invalid escapes stay as they are)."""
    if "%" not in value:
        return value
    parts = value.split("%")
    out = bytearray(parts[0].encode("utf-8"))
    for part in parts[1:]:
        if len(part) >= 2 and part[0] in _HEX and part[1] in _HEX:
            out.append(int(part[:2], 16))
            out += part[2:].encode("utf-8")
        else:
            out += b"%" + part.encode("utf-8")
    return out.decode("utf-8", errors="replace")


class Headers(Mapping[str, str]):
    """Read-only header lookup; the first of repeated names wins (``switch_event_get_header``).

    ``encoded`` values (as parsed from the wire) are URL-decoded when asked for.
    """

    __slots__ = ("_encoded", "_raw")

    def __init__(self, raw: dict[str, str], *, encoded: bool = False) -> None:
        self._raw = raw
        self._encoded = encoded

    def __getitem__(self, name: str) -> str:
        value = self._raw[name]
        return url_decode(value) if self._encoded else value

    @overload
    def get(self, name: str, /) -> str | None: ...
    @overload
    def get(self, name: str, /, default: str | _T) -> str | _T: ...
    def get(self, name: str, /, default: object = None) -> object:
        """``Mapping.get`` without raising and catching KeyError on a miss (hot path)."""
        value = self._raw.get(name)
        if value is None:
            return default
        return url_decode(value) if self._encoded else value

    def __contains__(self, name: object) -> bool:
        return name in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __repr__(self) -> str:
        return f"Headers({dict(self)!r})"


class BlockHeaders(Mapping[str, str]):
    """Header lookup straight from a ``text/event-plain`` header block, parsed on demand.

    A channel event carries ~150 headers and a handler reads a handful, so a lookup is a
    C-speed ``str.find`` of ``"\nName: "`` plus a URL-decode of that one value; the full list
    is only split when someone iterates (then a malformed line raises EslProtocolError).
    """

    __slots__ = ("_block", "_pairs")

    def __init__(self, block: str) -> None:
        self._block = block
        self._pairs: dict[str, str] | None = None

    @property
    def block(self) -> str:
        """The header block as received (values still URL-encoded)."""
        return self._block

    def _find(self, name: str) -> int:
        key = name + ": "
        if self._block.startswith(key):
            return len(key)
        at = self._block.find("\n" + key)
        return -1 if at < 0 else at + 1 + len(key)

    def __getitem__(self, name: str) -> str:
        start = self._find(name) if "\n" not in name else -1
        if start < 0:
            raise KeyError(name)
        end = self._block.find("\n", start)
        return url_decode(self._block[start:] if end < 0 else self._block[start:end])

    @overload
    def get(self, name: str, /) -> str | None: ...
    @overload
    def get(self, name: str, /, default: str | _T) -> str | _T: ...
    def get(self, name: str, /, default: object = None) -> object:
        """``Mapping.get`` without raising and catching KeyError on a miss (hot path)."""
        start = self._find(name) if "\n" not in name else -1
        if start < 0:
            return default
        block = self._block
        end = block.find("\n", start)
        return url_decode(block[start:] if end < 0 else block[start:end])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and "\n" not in name and self._find(name) >= 0

    def pairs(self) -> list[tuple[str, str]]:
        """All ``(name, raw value)`` pairs in order (validated)."""
        return parse_header_lines(self._block, decode=False, what="event")

    def _all(self) -> dict[str, str]:
        if self._pairs is None:
            self._pairs = _first_wins(tuple(self.pairs()))
        return self._pairs

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __repr__(self) -> str:
        return f"BlockHeaders({len(self._block)} bytes)"


def _first_wins(items: tuple[tuple[str, str], ...]) -> dict[str, str]:
    lookup = dict(items)
    if len(lookup) != len(items):  # repeated names: keep the first, as FreeSWITCH does
        lookup = {}
        for name, value in items:
            lookup.setdefault(name, value)
    return lookup


class Event:
    """One FreeSWITCH event: ordered headers (decoded) and an optional body.

    :attr:`items` keeps every header in FreeSWITCH's order, duplicates included (CODEC repeats
    ``Channel-Write-Codec-Name``, CHANNEL_HANGUP_COMPLETE repeats ``Hangup-Cause``);
    :attr:`headers` looks names up, the first occurrence winning as in
    ``switch_event_get_header``. A body-carrying event (``BACKGROUND_JOB``) also has its
    ``Content-Length`` header, as FreeSWITCH reports it in every encoding.
    """

    __slots__ = ("_block", "_items", "_raw", "body", "headers")

    def __init__(
        self, headers: Mapping[str, str] | Iterable[tuple[str, str]] = (), body: str = ""
    ) -> None:
        items = tuple(headers.items()) if isinstance(headers, Mapping) else tuple(headers)
        self._raw: tuple[tuple[str, str], ...] | None = None
        self._block: BlockHeaders | None = None
        self._items: tuple[tuple[str, str], ...] | None = items
        self.headers: Mapping[str, str] = Headers(_first_wins(items))
        self.body = body

    @classmethod
    def from_wire(cls, raw: list[tuple[str, str]], body: str = "") -> Event:
        """An event whose header values are still URL-encoded (``text/event-xml``, the
        connect reply's CHANNEL_DATA); they are decoded when read."""
        event = cls.__new__(cls)
        event._raw = tuple(raw)
        event._block = None
        event._items = None
        event.headers = Headers(_first_wins(event._raw), encoded=True)
        event.body = body
        return event

    @classmethod
    def from_block(cls, block: str, body: str = "") -> Event:
        """A ``text/event-plain`` event, headers parsed on demand (see :class:`BlockHeaders`)."""
        event = cls.__new__(cls)
        event._raw = None
        event._block = BlockHeaders(block)
        event._items = None
        event.headers = event._block
        event.body = body
        return event

    @property
    def items(self) -> tuple[tuple[str, str], ...]:
        """Every header as decoded ``(name, value)``, in order, repeats included."""
        if self._items is None:
            raw = self._block.pairs() if self._block is not None else self._raw or ()
            self._items = tuple((name, url_decode(value)) for name, value in raw)
        return self._items

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return self.items == other.items and self.body == other.body

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Event({self.name!r}, {len(self.items)} headers, body={len(self.body)} chars)"

    @property
    def name(self) -> str:
        """``Event-Name`` (``CHANNEL_ANSWER``, ``CUSTOM``, ...), or ``""`` when absent."""
        return self.headers.get("Event-Name", "")

    @property
    def subclass(self) -> str | None:
        """``Event-Subclass`` of a ``CUSTOM`` event (``sofia::register``), else None."""
        return self.headers.get("Event-Subclass")

    @property
    def unique_id(self) -> str | None:
        """The channel UUID the event is about (``Unique-ID``), if any."""
        return self.headers.get("Unique-ID")

    @property
    def job_uuid(self) -> str | None:
        """``Job-UUID`` of a ``BACKGROUND_JOB`` event."""
        return self.headers.get("Job-UUID")

    @property
    def application_uuid(self) -> str | None:
        """``Application-UUID`` of ``CHANNEL_EXECUTE(_COMPLETE)``: the sendmsg ``Event-UUID``."""
        return self.headers.get("Application-UUID")

    def get(self, name: str, default: str | None = None) -> str | None:
        """The decoded value of header ``name``, or ``default``."""
        return self.headers.get(name, default)

    def variable(self, name: str) -> str | None:
        """The channel variable ``name`` (the ``variable_<name>`` header), if present."""
        return self.headers.get("variable_" + name)

    def __getitem__(self, name: str) -> str:
        return self.headers[name]

    def __contains__(self, name: object) -> bool:
        return name in self.headers

    def __iter__(self) -> Iterator[str]:
        return iter(self.headers)


# ---------------------------------------------------------------- decoding


def _text(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EslProtocolError(f"{what} is not UTF-8 at byte {exc.start}") from exc


def parse_header_lines(block: str, *, decode: bool, what: str) -> list[tuple[str, str]]:
    """Parse ``Name: value`` lines (LF separated) into ordered ``(name, value)`` pairs.

    A line without ``":"`` is a protocol error naming the line; ``decode`` URL-decodes values.
    """
    split = [line.partition(": ") for line in block.split("\n")]
    if all(sep and name for name, sep, _ in split) and "\r" not in block:
        pairs = [(name, value) for name, _, value in split]
    else:
        pairs = _parse_header_lines_slowly(block, what)  # blank lines, CR, odd spacing
    if decode:
        return [(name, url_decode(value)) for name, value in pairs]
    return pairs


def _parse_header_lines_slowly(block: str, what: str) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for line in block.split("\n"):
        if line.endswith("\r"):
            line = line[:-1]
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name:
            raise EslProtocolError(f"{what}: header line {line[:80]!r} is not 'Name: value'")
        headers.append((name, value[1:] if value.startswith(" ") else value))
    return headers


def check_first_line(block: str, what: str) -> None:
    """Raise EslProtocolError naming the line unless ``block`` starts with ``Name: value``:
    what a lazily read block (:class:`BlockHeaders`) is checked for up front."""
    end = block.find("\n")
    first = block if end < 0 else block[:end]
    if ": " not in first or first.startswith(":"):
        parse_header_lines(block, decode=False, what=what)  # raises, naming the bad line


def decode_plain(body: bytes) -> Event:
    """Decode a ``text/event-plain`` body: URL-encoded header lines, then an inner body.

    Nothing here reads the whole header block but the UTF-8 decoding: a channel event is
    ~6 KB, and every full scan of it (a search for the blank line, a count of lines) costs
    about as much as the rest of the decoding. The usual event has no inner body: its block
    is the body up to the closing blank line. Only a body that mentions ``Content-Length: ``
    is split at its first blank line (the inner body's length is the block's last header);
    in any other, a blank line inside the block (FreeSWITCH sends none) is read past.
    The first line's shape is checked here; the others when the full list is read
    (:meth:`BlockHeaders.pairs` raises naming the bad line), while a lookup only ever reads
    a ``Name: value`` line, so one malformed line does not cost the event (a CHANNEL_EXECUTE_
    COMPLETE that a call waits for, say).
    """
    if body.endswith(b"\n\n") and b"Content-Length: " not in body:
        head_bytes, rest, declared = body, b"", False
    else:
        head_bytes, _, rest = body.partition(b"\n\n")
        declared = b"Content-Length: " in head_bytes
    head = _text(head_bytes, "event-plain headers").rstrip("\n")
    check_first_line(head, "event")
    inner = ""
    if declared:
        headers = BlockHeaders(head)
        length = headers.get("Content-Length")
        last = head.rpartition("\nContent-Length: ")[2]
        if last and last.isdigit():  # the inner body's length is the last header
            length = last
        if length is not None:
            size = _content_length(length, "event-plain inner Content-Length")
            if len(rest) < size:
                raise EslProtocolError(
                    f"event-plain inner body has {len(rest)} bytes, Content-Length says {size}"
                )
            inner = _text(rest[:size], "event-plain body")
    return Event.from_block(head, inner)


def decode_json(body: bytes) -> Event:
    """Decode a ``text/event-json`` body; ``_body`` becomes :attr:`Event.body`."""
    try:
        data = json.loads(body, object_pairs_hook=_pairs)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EslProtocolError(f"event-json body is not JSON: {exc}") from exc
    if not isinstance(data, _Pairs):
        raise EslProtocolError("event-json body must be a JSON object")
    if all(type(value) is str for _, value in data):  # the usual case: all strings
        body_at = next((i for i, (name, _) in enumerate(data) if name == "_body"), -1)
        if body_at < 0:
            return Event(data)
        inner = data[body_at][1]
        return Event(data[:body_at] + data[body_at + 1 :], inner)
    headers: list[tuple[str, str]] = []
    inner = ""
    for name, value in data:
        if (
            not isinstance(value, _Pairs | str)
            and isinstance(value, list)
            and value
            and all(isinstance(item, str) for item in value)
        ):
            # FreeSWITCH array headers; keep the plain encoding's ARRAY:: form.
            value = "ARRAY::" + "|:".join(value)
        if not isinstance(value, str):
            raise EslProtocolError(
                f"event-json field {name!r} is {type(value).__name__}; FreeSWITCH sends strings"
            )
        if name == "_body":
            inner = value
        else:
            headers.append((name, value))
    return Event(headers, inner)


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as its ordered key/value pairs (keeps repeated keys)."""


def _pairs(pairs: list[tuple[str, Any]]) -> _Pairs:
    return _Pairs(pairs)


def decode_xml(body: bytes) -> Event:
    """Decode a ``text/event-xml`` body (header values stay URL-encoded on the wire)."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise EslProtocolError(f"event-xml body is not XML: {exc}") from exc
    if root.tag != "event":
        raise EslProtocolError(f"event-xml root is <{root.tag}>, expected <event>")
    headers: list[tuple[str, str]] = []
    node = root.find("headers")
    for child in node if node is not None else ():
        headers.append((child.tag, child.text or ""))
    inner = ""
    body_node = root.find("body")
    if body_node is not None and body_node.text:
        raw = body_node.text.encode("utf-8")
        length_node = root.find("Content-Length")
        if length_node is not None and length_node.text is not None:
            raw = raw[: _content_length(length_node.text, "event-xml <Content-Length>")]
        inner = raw.decode("utf-8", errors="replace")
        if length_node is not None and length_node.text is not None:
            headers.append(("Content-Length", length_node.text.strip()))
    return Event.from_wire(headers, inner)


def _content_length(value: str, what: str) -> int:
    value = value.strip()
    if not value.isdigit() or not value.isascii() or len(value) > 12:
        raise EslProtocolError(f"{what} {value[:40]!r} is not a byte count")
    return int(value)


# ---------------------------------------------------------------- encoding


def _body_bytes(event: Event) -> bytes:
    return event.body.encode("utf-8")


def encode_plain(event: Event) -> bytes:
    """The ``text/event-plain`` body FreeSWITCH would send for ``event``."""
    body = _body_bytes(event)
    lines = [
        f"{name}: {url_encode(value)}\n"
        for name, value in event.items
        if not (body and name == "Content-Length")
    ]
    if body:
        lines.append(f"Content-Length: {len(body)}\n\n")
        return "".join(lines).encode("utf-8") + body
    lines.append("\n")
    return "".join(lines).encode("utf-8")


def encode_json(event: Event) -> bytes:
    """The ``text/event-json`` body FreeSWITCH would send (compact, no trailing newline)."""
    pairs = [
        (name, value)
        for name, value in event.items
        if not (event.body and name == "Content-Length")
    ]
    if event.body:
        pairs += [("Content-Length", str(len(_body_bytes(event)))), ("_body", event.body)]
    # json.dumps of a dict would merge repeated names; FreeSWITCH repeats them.
    dump = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    members = ",".join(f"{dump(name)}:{dump(value)}" for name, value in pairs)
    return ("{" + members + "}").encode("utf-8")


def _xml_escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def encode_xml(event: Event) -> bytes:
    """The ``text/event-xml`` body FreeSWITCH would send (values URL-encoded)."""
    parts = ["<event>\n  <headers>\n"]
    for name, value in event.items:
        if event.body and name == "Content-Length":
            continue
        parts.append(f"    <{name}>{url_encode(value)}</{name}>\n")
    parts.append("  </headers>\n")
    if event.body:
        size = len(_body_bytes(event))
        parts.append(f"  <Content-Length>{size}</Content-Length>\n")
        parts.append(f"  <body>{_xml_escape(event.body)}  </body>\n")
    parts.append("</event>\n")
    return "".join(parts).encode("utf-8")


FORMATS: Final = ("plain", "json", "xml")
"""The event encodings ``event <format> ...`` accepts."""

CONTENT_TYPES: Final = {
    "plain": "text/event-plain",
    "json": "text/event-json",
    "xml": "text/event-xml",
}

_DECODERS: Final = {
    "text/event-plain": decode_plain,
    "text/event-json": decode_json,
    "text/event-xml": decode_xml,
}
_ENCODERS: Final = {"plain": encode_plain, "json": encode_json, "xml": encode_xml}


def decode_event(content_type: str, body: bytes) -> Event:
    """Decode an event body of the given ``Content-Type``."""
    try:
        decoder = _DECODERS[content_type]
    except KeyError:
        raise EslProtocolError(f"{content_type!r} is not an event content type") from None
    return decoder(body)


def encode_event(event: Event, fmt: str) -> bytes:
    """A complete event frame (outer headers, ``Content-Length`` first, and body) in ``fmt``."""
    try:
        encoder = _ENCODERS[fmt]
    except KeyError:
        raise ValueError(f"event format {fmt!r}: use one of {', '.join(FORMATS)}") from None
    body = encoder(event)
    head = f"Content-Length: {len(body)}\nContent-Type: {CONTENT_TYPES[fmt]}\n\n"
    return head.encode("ascii") + body
