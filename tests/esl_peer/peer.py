"""A test FreeSWITCH that speaks the event-socket wire protocol as FreeSWITCH 1.10.12 does.

``FakeFreeSwitch`` binds 127.0.0.1:0 and is scripted per test:

* **inbound side** (``mod_event_socket``): the ``auth/request`` greeting, ``-ERR invalid`` plus
  the goodbye disconnect notice on a wrong password, ``command/reply`` and ``api/response``
  framing, ``bgapi`` (reply with ``Job-UUID``, then a BACKGROUND_JOB event), ``event`` in
  plain/json/xml (event frames put ``Content-Length`` first), filters, ``nixevent``,
  ``noevents``, ``log``, ``exit``;
* **outbound side** (the ``socket`` dialplan application): :meth:`FakeFreeSwitch.call`
  connects to an application server, sends nothing until ``connect``, answers with the channel
  data, then runs ``sendmsg`` executions through the :class:`~esl_peer.channel.Channel` model,
  sends the linger notice on hangup and the goodbye on ``exit``.

Reply texts, header layouts and event sequences are those of the recorded captures
(``../shared/esl``); ``tests/integration/test_esl_peer_vs_captures.py`` replays the recorded
commands against this peer and compares. Where a case is not recorded the behaviour follows
``mod_event_socket.c``. Fault injection: :attr:`FakeFreeSwitch.stall` (stop answering
commands), :meth:`FakeFreeSwitch.drop_connections` (FreeSWITCH vanishing mid-command).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import uuid as uuidlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from callmesh.workers.esl.events import Event, encode_event, url_encode
from callmesh.workers.esl.quoting import parse_dial_string, parse_originate
from esl_peer.channel import Channel, Core, Execution, Hangup

GOODBYE = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
VERSION = (
    "FreeSWITCH Version 1.10.12-release+git~20240802T210227Z~a88d069d6f~64bit "
    "(git a88d069 2024-08-02 21:02:27Z 64bit)\n"
)
# The events ``myevents`` subscribes to (mod_event_socket.c, parse_command "myevents").
MYEVENTS = frozenset({
    "CHANNEL_ANSWER", "CHANNEL_APPLICATION", "CHANNEL_BRIDGE", "CHANNEL_CREATE", "CHANNEL_DATA",
    "CHANNEL_DESTROY", "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE", "CHANNEL_ORIGINATE", "CHANNEL_UUID", "CHANNEL_OUTGOING",
    "CHANNEL_PARK", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_STATE",
    "CHANNEL_UNBRIDGE", "CHANNEL_UNPARK", "DETECTED_SPEECH", "DTMF", "NOTALK", "TALK",
})  # fmt: skip

ApiFunction = Callable[["FakeFreeSwitch", str], Awaitable[str] | str]


@dataclass
class Endpoint:
    """How a dialled destination (``user/1001``, ``sofia/.../agent@host``) behaves on originate.

    ``outcome``: ``answer``, ``no_answer`` (``-ERR NO_ANSWER``), ``busy`` (``-ERR USER_BUSY``)
    or ``absent`` (``-ERR SUBSCRIBER_ABSENT``); ``ring_seconds`` of (scaled) media time first.
    """

    outcome: str = "answer"
    ring_seconds: float = 0.0
    on_channel: Callable[[Channel], None] | None = None
    """Called with the new leg once it exists (e.g. to hang it up later)."""


@dataclass
class OutboundCall:
    """One call the peer delivered to an outbound-socket server."""

    channel: Channel
    listener: Listener
    mode: str
    task: asyncio.Task[None] | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the socket is closed."""


class Listeners:
    """The peer's ESL connections, indexed for event delivery.

    A connection that ran ``myevents`` (every outbound socket) only hears its channel's
    events, so an event is offered to the connections of its ``Unique-ID`` and to the
    others, not to every socket: with thousands of calls up, a scan of every connection per
    event made the peer, not the client under test, the bottleneck. Iterating, ``len``,
    ``in``, ``add`` and ``discard`` work as on a set.
    """

    def __init__(self) -> None:
        self.general: set[Listener] = set()
        """Connections without ``myevents``: they may hear any channel's events."""
        self.by_uuid: dict[str, set[Listener]] = {}
        """Connections that ran ``myevents``, by the channel UUID they follow."""

    def __iter__(self) -> Iterator[Listener]:
        yield from self.general
        for group in self.by_uuid.values():
            yield from group

    def __len__(self) -> int:
        return len(self.general) + sum(len(group) for group in self.by_uuid.values())

    def __contains__(self, listener: object) -> bool:
        if not isinstance(listener, Listener):
            return False
        uuid = listener.myevents_uuid
        if uuid is None:
            return listener in self.general
        return listener in self.by_uuid.get(uuid, ())

    def add(self, listener: Listener) -> None:
        uuid = listener.myevents_uuid
        if uuid is None:
            self.general.add(listener)
        else:
            self.by_uuid.setdefault(uuid, set()).add(listener)

    def discard(self, listener: Listener) -> None:
        uuid = listener.myevents_uuid
        if uuid is None:
            self.general.discard(listener)
            return
        group = self.by_uuid.get(uuid)
        if group is not None:
            group.discard(listener)
            if not group:
                del self.by_uuid[uuid]

    def follow(self, listener: Listener, uuid: str) -> None:
        """``listener`` ran ``myevents`` for ``uuid``: from now on it hears that channel."""
        present = listener in self
        if present:
            self.discard(listener)
        listener.myevents_uuid = uuid
        if present:
            self.add(listener)

    def targets(self, uuid: str | None) -> list[Listener]:
        """The connections an event about channel ``uuid`` may reach."""
        group = self.by_uuid.get(uuid) if uuid else None
        return [*self.general, *group] if group else list(self.general)


class Listener:
    """One ESL TCP connection, on FreeSWITCH's side of the protocol."""

    def __init__(
        self,
        peer: FakeFreeSwitch,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        call: OutboundCall | None = None,
    ) -> None:
        self.peer = peer
        self.reader = reader
        self.writer = writer
        self.call = call
        self.authed = call is not None
        self.format = "plain"
        self.events_on = False
        self.all_events = False
        self.names: set[str] = set()
        self.subclasses: set[str] = set()
        self.filters: list[tuple[str, str]] = []
        self.myevents_uuid: str | None = None
        self.linger: int | None = None
        self.session_gone = False
        self.closed = False
        self.sent: list[bytes] = []
        self.received: list[str] = []
        self.parked = False

    # ------------------------------------------------------------ writing

    def write(self, data: bytes) -> None:
        """Send raw bytes (recorded in :attr:`sent`)."""
        if self.closed:
            return
        if self.peer.record:
            self.sent.append(data)
        self.writer.write(data)

    def reply(self, text: str, extra: list[tuple[str, str]] | None = None) -> None:
        """``command/reply`` with ``Reply-Text`` (and extra headers, as bgapi's Job-UUID)."""
        lines = ["Content-Type: command/reply", f"Reply-Text: {text}"]
        lines += [f"{k}: {v}" for k, v in extra or []]
        self.write(("\n".join(lines) + "\n\n").encode())

    def api_response(self, body: str) -> None:
        """``api/response``: Content-Type first, then Content-Length."""
        raw = body.encode()
        self.write(b"Content-Type: api/response\nContent-Length: %d\n\n" % len(raw) + raw)

    def wants(self, event: Event) -> bool:
        """FreeSWITCH's delivery rules: subscription, myevents' UUID match, then filters."""
        if self.closed or self.session_gone or not self.events_on:
            return False
        subscribed = self.all_events or event.name in self.names
        if not subscribed and not (event.name == "CUSTOM" and event.subclass in self.subclasses):
            return False
        if self.myevents_uuid is not None and event.unique_id != self.myevents_uuid:
            return False
        if self.filters:
            return any(event.headers.get(h) == v for h, v in self.filters)
        return True

    def may_want(self, name: str) -> bool:
        """Whether an event ``name`` could reach this listener (filters not applied): lets
        the peer skip building events nobody hears."""
        if self.closed or self.session_gone or not self.events_on:
            return False
        return self.all_events or name in self.names or (name == "CUSTOM" and bool(self.subclasses))

    def deliver(self, event: Event) -> None:
        """Send ``event`` if this listener wants it, in its format."""
        if self.wants(event):
            self.write(encode_event(event, self.format))

    def disconnect_notice(self, *, disposition: str | None = None, linger: bool = False) -> None:
        """``text/disconnect-notice``: the goodbye, or (``linger``) the hangup notice."""
        lines = ["Content-Type: text/disconnect-notice"]
        call = self.call
        if call is not None:
            lines.append(f"Controlled-Session-UUID: {call.channel.uuid}")
        if disposition:
            lines.append(f"Content-Disposition: {disposition}")
        if linger and call is not None:
            lines += [f"Channel-Name: {call.channel.name}", f"Linger-Time: {self.linger}"]
            lines.append("Content-Length: 0")
            self.write(("\n".join(lines) + "\n\n").encode())
            return
        lines.append(f"Content-Length: {len(GOODBYE)}")
        self.write(("\n".join(lines) + "\n\n").encode() + GOODBYE)

    async def close(self) -> None:
        """Close the TCP connection (after flushing)."""
        if self.closed:
            return
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.drain()
        self.closed = True
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()

    def abort(self) -> None:
        """Drop the connection without a word (FreeSWITCH crashing)."""
        self.closed = True
        self.writer.transport.abort()

    # ------------------------------------------------------------ reading

    async def read_command(self) -> tuple[str, dict[str, str], bytes] | None:
        """One command: its line, headers and body; None at EOF."""
        try:
            block = await self.reader.readuntil(b"\n\n")
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            return None
        lines = block.decode("utf-8", errors="replace").rstrip("\n").split("\n")
        line = lines[0].rstrip("\r")
        headers: dict[str, str] = {}
        for raw in lines[1:]:
            name, _, value = raw.rstrip("\r").partition(":")
            headers[name.strip()] = value.strip()
        body = b""
        length = headers.get("Content-Length", "")
        if length.isdigit():
            try:
                body = await self.reader.readexactly(int(length))
            except (asyncio.IncompleteReadError, ConnectionError):
                return None
        return line, headers, body

    async def serve(self) -> None:
        """Run the connection until it closes."""
        try:
            if self.call is None:
                self.write(b"Content-Type: auth/request\n\n")
            while not self.closed:
                command = await self.read_command()
                if command is None:
                    break
                line, headers, body = command
                if self.peer.record:
                    self.received.append(line)
                    self.peer.commands.append(line)
                if self.peer.stall:
                    continue
                await self.handle(line, headers, body)
                with contextlib.suppress(ConnectionError, OSError):
                    await self.writer.drain()
        finally:
            self.closed = True
            self.writer.close()
            self.peer.listeners.discard(self)
            if self.call is not None:
                self.call.ended.set()
                self.peer._socket_gone(self.call)

    # ------------------------------------------------------------ commands

    async def handle(self, line: str, headers: dict[str, str], body: bytes) -> None:
        """Answer one command as mod_event_socket does."""
        cmd, _, args = line.partition(" ")
        cmd = cmd.lower()
        if not self.authed:
            if cmd == "auth":
                if args == self.peer.password:
                    self.authed = True
                    self.reply("+OK accepted")
                else:
                    self.reply("-ERR invalid")
                    self.disconnect_notice()
                    await self.close()
            else:
                self.reply("-ERR command not found")
            return
        call = self.call
        if call is not None and cmd == "connect":
            self.connect_reply(call)
            return
        handler = getattr(self, f"cmd_{cmd}", None)
        if handler is None:
            self.reply("-ERR command not found")
            return
        await handler(args, headers, body)

    def connect_reply(self, call: OutboundCall) -> None:
        """CHANNEL_DATA headers, then command/reply, all in one block without Content-Length."""
        pairs = call.channel.channel_data()
        lines = [f"{k}: {url_encode(v)}" for k, v in pairs]
        lines += [
            "Content-Type: command/reply",
            "Reply-Text: %2BOK%0A",
            f"Socket-Mode: {'async' if call.mode == 'async' else 'static'}",
            "Control: full",
        ]
        self.write(("\n".join(lines) + "\n\n").encode())

    async def cmd_api(self, args: str, headers: dict[str, str], body: bytes) -> None:
        if not args:
            self.reply("-ERR command not found")
            return
        self.api_response(await self.peer.run_api(args))

    async def cmd_bgapi(self, args: str, headers: dict[str, str], body: bytes) -> None:
        job = headers.get("Job-UUID") or str(uuidlib.uuid4())
        self.reply(f"+OK Job-UUID: {job}", [("Job-UUID", job)])
        asyncio.get_running_loop().create_task(self.peer.background_job(job, args))

    async def cmd_event(self, args: str, headers: dict[str, str], body: bytes) -> None:
        words = args.split()
        fmt = "plain"
        if words and words[0].lower() in ("plain", "json", "xml"):
            fmt = words.pop(0).lower()
        self.format = fmt
        self.events_on = True
        custom = False
        for word in words:
            if word == "ALL":
                self.all_events = True
            elif word == "CUSTOM":
                custom = True
                self.names.add("CUSTOM")
            elif custom and "::" in word:
                self.subclasses.add(word)
            else:
                self.names.add(word)
        self.reply(f"+OK event listener enabled {fmt}")
        self._maybe_park()

    async def cmd_myevents(self, args: str, headers: dict[str, str], body: bytes) -> None:
        words = args.split()
        fmt = "plain"
        if words and words[-1].lower() in ("plain", "json", "xml"):
            fmt = words.pop().lower()
        uuid = self.call.channel.uuid if self.call is not None else (words[0] if words else None)
        if uuid is None:
            self.reply("-ERR invalid uuid")
            return
        self.peer.listeners.follow(self, uuid)
        self.names |= MYEVENTS
        self.format = fmt
        self.events_on = True
        self.reply("+OK Events Enabled")
        self._maybe_park()

    def _maybe_park(self) -> None:
        call = self.call
        if call is not None and call.mode == "async" and not self.parked:
            self.parked = True  # the async socket app parks the channel and runs messages
            call.channel.fire("CHANNEL_PARK")

    async def cmd_nixevent(self, args: str, headers: dict[str, str], body: bytes) -> None:
        self.names -= set(args.split())
        self.reply("+OK events nixed")

    async def cmd_noevents(self, args: str, headers: dict[str, str], body: bytes) -> None:
        if not self.events_on:
            self.reply("-ERR not listening for events")
            return
        self.events_on = False
        self.all_events = False
        self.names.clear()
        self.subclasses.clear()
        self.reply("+OK no longer listening for events")

    async def cmd_filter(self, args: str, headers: dict[str, str], body: bytes) -> None:
        words = args.split(" ", 2)
        if words[0] == "delete" and len(words) >= 2:
            header = words[1]
            value = words[2] if len(words) > 2 else ""
            self.filters = [
                (h, v) for h, v in self.filters if not (h == header and value in ("", v))
            ]
            self.reply(f"+OK filter deleted. [{header}][{value}]")
        elif len(words) >= 2:
            header, value = words[0], " ".join(words[1:])
            self.filters.append((header, value))
            self.reply(f"+OK filter added. [{header}]=[{value}]")
        else:
            self.reply("-ERR invalid syntax")

    async def cmd_log(self, args: str, headers: dict[str, str], body: bytes) -> None:
        level = args.strip() or "7"
        self.reply(f"+OK log level {level} [{level}]")

    async def cmd_nolog(self, args: str, headers: dict[str, str], body: bytes) -> None:
        self.reply("+OK no longer logging")

    async def cmd_linger(self, args: str, headers: dict[str, str], body: bytes) -> None:
        self.linger = int(args) if args.strip().lstrip("-").isdigit() else -1
        self.reply("+OK will linger")

    async def cmd_nolinger(self, args: str, headers: dict[str, str], body: bytes) -> None:
        self.linger = None
        self.reply("+OK will not linger")

    async def cmd_getvar(self, args: str, headers: dict[str, str], body: bytes) -> None:
        channel = self.call.channel if self.call is not None else None
        value = channel.variables.get(args.strip(), "") if channel is not None else ""
        self.reply(value)

    async def cmd_sendmsg(self, args: str, headers: dict[str, str], body: bytes) -> None:
        uuid = args.strip() or (self.call.channel.uuid if self.call is not None else "")
        if self.peer.record:
            self.peer.messages.append((uuid, headers, body))
        channel = self.peer.channels.get(uuid)
        if channel is None or channel.hungup.is_set():
            self.reply(f"-ERR invalid session id [{uuid}]")
            return
        command = headers.get("call-command", "")
        if command == "execute":
            app = headers.get("execute-app-name", "")
            arg = headers.get("execute-app-arg")
            if arg is None and headers.get("content-type") == "text/plain":
                arg = body.decode()
            self.reply("+OK")
            channel.enqueue(app, arg or "", headers.get("Event-UUID"))
        elif command == "hangup":
            self.reply("+OK")
            channel.hangup(headers.get("hangup-cause", "NORMAL_CLEARING"))
        else:
            self.reply("+OK")  # nomedia, unicast, xferext ... accepted and ignored

    async def cmd_exit(self, args: str, headers: dict[str, str], body: bytes) -> None:
        self.reply("+OK bye")
        self.disconnect_notice(disposition="disconnect" if self.call is not None else None)
        await self.close()


class FakeFreeSwitch:
    """The scripted FreeSWITCH: channels, API functions, inbound listeners, outbound calls."""

    def __init__(
        self,
        password: str = "ClueCon",
        *,
        time_scale: float = 0.0,
        hostname: str = "callmesh-peer",
        record: bool = True,
    ) -> None:
        self.password = password
        self.record = record
        """Keep every event, command, message and byte sent for assertions (tests); a
        benchmark with thousands of calls turns it off: then an event no connection could
        hear is not even built (its ``Event-Sequence`` number is still used up)."""
        self.core = Core(hostname=hostname, time_scale=time_scale)
        self.core.fire = self.fire
        self.core.record = record
        self.core.wanted = self.wanted
        self.core.expand = self.expand
        self.core.apps["bridge"] = self._app_bridge
        self.channels: dict[str, Channel] = {}
        self.listeners = Listeners()
        self.calls: list[OutboundCall] = []
        self._socket_channels: set[int] = set()  # id() of channels of self.calls[:_indexed]
        self._indexed = 0
        self.commands: list[str] = []
        """Every command line received on any connection, in order."""
        self.messages: list[tuple[str, dict[str, str], bytes]] = []
        """Every ``sendmsg``: target UUID, headers and body."""
        self.stall = False
        """While True, commands are read but never answered (a hung FreeSWITCH)."""
        self.endpoints: dict[str, Endpoint] = {}
        self.default_endpoint = Endpoint()
        self.api_functions: dict[str, ApiFunction] = {}
        """Extra or overriding API functions: ``name -> f(peer, args) -> output``."""
        self.fired: list[Event] = []
        self.host = "127.0.0.1"
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.started_us = self.core.now_us()

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> int:
        """Listen for inbound ESL connections on 127.0.0.1:0; returns the port."""
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        listener = Listener(self, reader, writer)
        self.listeners.add(listener)
        await listener.serve()

    async def stop(self) -> None:
        """Close every connection and the listening socket; stop every channel."""
        if self._server is not None:
            self._server.close()
        for listener in list(self.listeners):
            listener.abort()
        for channel in self.channels.values():
            await channel.stop()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> FakeFreeSwitch:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------ events

    def fire(self, event: Event) -> None:
        """Deliver ``event`` to every listener that wants it."""
        if self.record:
            self.fired.append(event)
        for listener in self.listeners.targets(event.unique_id):
            listener.deliver(event)

    def wanted(self, name: str, uuid: str | None) -> bool:
        """Whether an event ``name`` about channel ``uuid`` must be built: recording is on,
        or some connection may hear it."""
        if self.record:
            return True
        return any(listener.may_want(name) for listener in self.listeners.targets(uuid))

    def fire_custom(self, subclass: str, headers: dict[str, str], body: str = "") -> Event:
        """Fire a CUSTOM event (``Event-Subclass: subclass``)."""
        pairs = self.core.core_headers("CUSTOM")
        pairs.insert(1, ("Event-Subclass", subclass))
        event = Event([*pairs, *headers.items()], body)
        self.fire(event)
        return event

    async def drop_connections(self) -> None:
        """Abort every ESL connection at once (FreeSWITCH crashed or the network broke)."""
        for listener in list(self.listeners):
            listener.abort()
        await asyncio.sleep(0)

    # ------------------------------------------------------------ channels

    def new_channel(self, **kwargs: str) -> Channel:
        """Create a channel (not yet announced); see :class:`Channel` for the arguments."""
        channel = Channel(self.core, **kwargs)
        self.channels[channel.uuid] = channel
        return channel

    async def call(
        self,
        host: str,
        port: int,
        *,
        mode: str = "async",
        caller_id_number: str = "1000",
        caller_id_name: str = "caller",
        destination: str = "9200",
        variables: dict[str, str] | None = None,
        setup: Callable[[Channel], None] | None = None,
    ) -> OutboundCall:
        """An inbound call hits ``socket host:port [async] full``: connect to the app server.

        ``setup`` runs on the new channel before the connection is made (to register
        :meth:`Channel.when_app` reactions such as DTMF or a hangup).
        """
        if mode not in ("async", "sync"):
            raise ValueError(f"mode {mode!r}: use async or sync")
        channel = self.new_channel(
            caller_id_number=caller_id_number, caller_id_name=caller_id_name,
            destination=destination,
            name=f"sofia/external/{caller_id_number}@127.0.0.1:5080",
        )  # fmt: skip
        channel.state = "CS_EXECUTE"
        channel.call_state = "RINGING"
        app_data = f"{host}:{port}{' async' if mode == 'async' else ''} full"
        channel.variables.update(variables or {})
        channel.variables.update(
            current_application_data=app_data, current_application="socket", socket_host=host
        )
        if setup is not None:
            setup(channel)
        reader, writer = await asyncio.open_connection(host, port)
        call = OutboundCall(channel, None, mode)  # type: ignore[arg-type]
        listener = Listener(self, reader, writer, call=call)
        call.listener = listener
        self.listeners.add(listener)
        self.calls.append(call)
        call.task = self._spawn(listener.serve())
        self._spawn(self._call_lifecycle(call, app_data))
        return call

    async def _call_lifecycle(self, call: OutboundCall, app_data: str) -> None:
        """After hangup: finish the running app, the socket app's own events, the notices."""
        channel, listener = call.channel, call.listener
        await channel.hungup.wait()
        if channel.current is not None:
            await channel.current.done
        if call.mode == "async":
            channel.fire("CHANNEL_UNPARK")
            channel.fire(
                "CHANNEL_EXECUTE_COMPLETE",
                suffix=[("Application", "socket"), ("Application-Data", app_data),
                        ("Application-Response", channel.last_response),
                        ("Application-UUID", str(uuidlib.uuid4()))],
            )  # fmt: skip
            channel.report()
        self._end_session(listener)  # later events no longer reach this socket
        channel.finish()
        if listener.linger is not None and listener.linger >= 0 and not listener.closed:
            await asyncio.sleep(listener.linger * self.core.time_scale)
            listener.disconnect_notice(disposition="disconnect")
            await listener.close()

    def _end_session(self, listener: Listener) -> None:
        if listener.closed:
            return
        if listener.linger is not None:
            listener.disconnect_notice(disposition="linger", linger=True)
            listener.session_gone = True
        else:
            listener.disconnect_notice(disposition="disconnect")
            listener.session_gone = True
            self._spawn(listener.close())

    def _socket_gone(self, call: OutboundCall) -> None:
        """The application closed the socket: the dialplan ends, so the call hangs up."""
        if not call.channel.hungup.is_set():
            call.channel.hangup("NORMAL_CLEARING")

    # ------------------------------------------------------------ API

    async def run_api(self, line: str) -> str:
        """Run one API command line (``api``/``bgapi``), fire its API event, return the output."""
        name, _, args = line.partition(" ")
        if self.wanted("API", None):
            api_event = [*self.core.core_headers("API"), ("API-Command", name)]
            if args:
                api_event.append(("API-Command-Argument", args))
            self.fire(Event(api_event))
        else:
            self.core.sequence += 1
        custom = self.api_functions.get(name)
        if custom is not None:
            result = custom(self, args)
            return result if isinstance(result, str) else await result
        builtin = getattr(self, f"api_{name}", None)
        if builtin is None:
            return f"-ERR {name} Command not found!\n"
        output: str = await builtin(args)
        return output

    async def background_job(self, job: str, line: str) -> None:
        """Run a bgapi command and fire its BACKGROUND_JOB event."""
        output = await self.run_api(line)
        if not self.wanted("BACKGROUND_JOB", None):
            self.core.sequence += 1
            return
        name, _, args = line.partition(" ")
        pairs = self.core.core_headers("BACKGROUND_JOB")
        pairs += [("Job-UUID", job), ("Job-Command", name)]
        if args:
            pairs.append(("Job-Command-Arg", args))
        self.fire(Event(pairs, output))

    async def expand(self, text: str) -> str:
        """Expand ``${api(args)}`` (runs the API, as FreeSWITCH's variable expansion does)."""
        out = []
        last = 0
        for match in re.finditer(r"\$\{(\w+)\((.*?)\)\}", text):
            out += [text[last : match.start()], await self.run_api(f"{match[1]} {match[2]}")]
            last = match.end()
        return "".join(out) + text[last:]

    async def api_strftime(self, args: str) -> str:
        return time.strftime(args or "%Y-%m-%d %T", time.gmtime())

    async def dialplan_call(
        self,
        apps: list[tuple[str, str]],
        *,
        caller_id_number: str = "1000",
        destination: str = "9101",
        setup: Callable[[Channel], None] | None = None,
    ) -> Channel:
        """An inbound call whose dialplan runs ``apps`` (no ESL socket), as in capture 02a.

        Returns once the call is over: the channel arrives (CS_NEW ... CS_EXECUTE), runs each
        application, hangs up if still up, and is destroyed.
        """
        channel = self.new_channel(
            caller_id_number=caller_id_number, caller_id_name=caller_id_number,
            destination=destination, name=f"sofia/external/{caller_id_number}@127.0.0.1:5080",
        )  # fmt: skip
        if setup is not None:
            setup(channel)
        channel.arrive()
        for app, arg in apps:
            if channel.hungup.is_set():
                break
            await channel.enqueue(app, arg).done
        if not channel.hungup.is_set():
            channel.hangup("NORMAL_CLEARING")
        channel.finish()
        await channel.stop()
        return channel

    async def api_status(self, args: str) -> str:
        up_us = self.core.now_us() - self.started_us
        parts = []
        for unit, size in (("year", 365 * 86400 * 10**6), ("day", 86400 * 10**6),
                           ("hour", 3600 * 10**6), ("minute", 60 * 10**6), ("second", 10**6),
                           ("millisecond", 1000), ("microsecond", 1)):  # fmt: skip
            count, up_us = divmod(up_us, size)
            parts.append(f"{count} {unit}{'' if count == 1 else 's'}")
        return (
            f"UP {', '.join(parts)}\n"
            "FreeSWITCH (Version 1.10.12-release git a88d069 2024-08-02 21:02:27Z 64bit)"
            " is ready\n"
            f"{len(self.channels)} session(s) since startup\n"
            f"{self.live_count()} session(s) - peak 1, last 5min 1 \n"
            "0 session(s) per Sec out of max 30, peak 1, last 5min 1 \n"
            "1000 session(s) max\nmin idle cpu 0.00/99.00\nCurrent Stack Size/Max 240K/8192K\n"
        )

    async def api_version(self, args: str) -> str:
        return VERSION

    def live(self) -> list[Channel]:
        """Channels not yet destroyed."""
        return [c for c in self.channels.values() if not c.destroyed]

    def live_count(self) -> int:
        """How many channels are up."""
        return len(self.live())

    def _channel_row(self, c: Channel) -> dict[str, str]:
        """A row of FreeSWITCH's ``channels`` table (the columns ``show channels`` prints)."""
        created = c.times["created"] // 10**6
        return {
            "uuid": c.uuid, "direction": c.direction,
            "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created)),
            "created_epoch": str(created), "name": c.name, "state": c.state,
            "cid_name": c.profile.get("Caller-ID-Name", ""),
            "cid_num": c.profile.get("Caller-ID-Number", ""), "ip_addr": "127.0.0.1",
            "dest": c.profile.get("Destination-Number", ""),
            "application": c.current.app if c.current else "",
            "application_data": c.current.arg if c.current else "", "dialplan": "XML",
            "context": c.profile.get("Context", ""), "read_codec": "PCMU" if c.media else "",
            "read_rate": "8000" if c.media else "", "read_bit_rate": "64000" if c.media else "",
            "write_codec": "PCMU" if c.media else "", "write_rate": "8000" if c.media else "",
            "write_bit_rate": "64000" if c.media else "", "secure": "",
            "hostname": self.core.hostname, "presence_id": "", "presence_data": "",
            "accountcode": "", "callstate": c.call_state, "callee_name": "",
            "callee_num": c.profile.get("Callee-ID-Number", ""), "callee_direction": "",
            "call_uuid": c.uuid, "sent_callee_name": "", "sent_callee_num": "",
            "initial_cid_name": c.profile.get("Caller-ID-Name", ""),
            "initial_cid_num": c.profile.get("Caller-ID-Number", ""),
            "initial_ip_addr": "127.0.0.1", "initial_dest": c.profile.get("Destination-Number", ""),
            "initial_dialplan": "XML", "initial_context": c.profile.get("Context", ""),
        }  # fmt: skip

    def _call_row(self, a: Channel, b: Channel) -> dict[str, str]:
        """A row of ``show calls``: leg A's columns, then ``b_``-prefixed leg B (capture 04)."""
        keys = ("uuid", "direction", "created", "created_epoch", "name", "state", "cid_name",
                "cid_num", "ip_addr", "dest", "presence_id", "presence_data", "accountcode",
                "callstate", "callee_name", "callee_num", "callee_direction")  # fmt: skip
        ra, rb = self._channel_row(a), self._channel_row(b)
        row = {k: ra[k] for k in keys}
        row.update(call_uuid=a.uuid, hostname=self.core.hostname, sent_callee_name="",
                   sent_callee_num="")  # fmt: skip
        row.update({f"b_{k}": rb[k] for k in keys})
        row.update(
            b_sent_callee_name="", b_sent_callee_num="", call_created_epoch=ra["created_epoch"]
        )
        return row

    async def api_show(self, args: str) -> str:
        """``show channels|calls [as json]`` in FreeSWITCH's formats (CSV with a header line
        and ``N total.``, or ``{"row_count":N,"rows":[...]}``)."""
        what = args.split()
        if what[:1] == ["channels"]:
            rows = [self._channel_row(c) for c in self.live()]
        elif what[:1] == ["calls"]:
            rows = [self._call_row(c, c.other) for c in self.live()
                    if c.other is not None and c.other_type == "originatee"]  # fmt: skip
        else:
            return "-USAGE: show channels|calls [as json]\n"
        if what[-2:] == ["as", "json"]:
            if not rows:
                return '{"row_count": 0}\n'
            return json.dumps({"row_count": len(rows), "rows": rows}, separators=(",", ":"))
        if not rows:
            return "\n0 total.\n"
        head = ",".join(rows[0])
        body = "\n".join(",".join(r.values()) for r in rows)
        return f"{head}\n{body}\n\n{len(rows)} total.\n"

    async def api_uuid_break(self, args: str) -> str:
        """``uuid_break <uuid> [all]``: stop the prompt that is playing."""
        channel = self._channel(args.split(" ")[0])
        if channel is None:
            return "-ERR No such channel!\n"
        channel.break_media.set()
        return "+OK\n"

    def _channel(self, uuid: str) -> Channel | None:
        channel = self.channels.get(uuid)
        return channel if channel is not None and not channel.destroyed else None

    async def api_uuid_answer(self, args: str) -> str:
        """``uuid_answer <uuid>``: answer now (mod_commands answers ``-ERROR`` for a missing
        channel or a failed answer alike)."""
        channel = self._channel(args.strip())
        if channel is None or channel.hungup.is_set():
            return "-ERROR\n"
        channel.answer()
        return "+OK\n"

    async def api_uuid_getvar(self, args: str) -> str:
        uuid, _, name = args.partition(" ")
        channel = self._channel(uuid)
        if channel is None or channel.hungup.is_set():
            return "-ERR No such channel!\n"
        return channel.variables.get(name.strip(), "_undef_")

    async def api_uuid_setvar(self, args: str) -> str:
        uuid, _, rest = args.partition(" ")
        name, _, value = rest.partition(" ")
        channel = self._channel(uuid)
        if channel is None:
            return "-ERR No such channel!\n"
        if value:
            channel.variables[name] = value
        else:
            channel.variables.pop(name, None)
        return "+OK\n"

    async def api_uuid_exists(self, args: str) -> str:
        return "true" if self._channel(args.strip()) else "false"

    async def api_uuid_kill(self, args: str) -> str:
        uuid, _, cause = args.partition(" ")
        channel = self._channel(uuid)
        if channel is None or channel.hungup.is_set():
            return "-ERR No such channel!\n"
        self._hangup_leg(channel, cause.strip() or "NORMAL_CLEARING")
        return "+OK\n"

    def _hangup_leg(self, channel: Channel, cause: str) -> None:
        """Hang up ``channel``; a bridged partner follows, as FreeSWITCH's bridge does."""
        other = channel.other
        channel.hangup(cause)
        if other is not None and not other.hungup.is_set():
            other.hangup(cause)
            self._spawn(self._unbridge_and_finish(channel, other))
        elif not self._is_socket_channel(channel):
            channel.finish()

    async def _unbridge_and_finish(self, a: Channel, b: Channel) -> None:
        """The order capture 04 shows after ``uuid_kill A``: B's HANGUP_COMPLETE, A's
        UNBRIDGE, B's DESTROY, then A's HANGUP_COMPLETE and DESTROY."""
        socket_a, socket_b = self._is_socket_channel(a), self._is_socket_channel(b)
        if not socket_b:
            b.report()
        a.fire("CHANNEL_UNBRIDGE", prefix=[("Bridge-A-Unique-ID", a.uuid),
                                           ("Bridge-B-Unique-ID", b.uuid)])  # fmt: skip
        if not socket_b:
            b.destroy()
        await asyncio.sleep(0)
        if not socket_a:
            a.finish()

    def _is_socket_channel(self, channel: Channel) -> bool:
        calls = self.calls  # append-only, also for tests that add calls themselves
        if len(calls) < self._indexed:
            self._socket_channels.clear()
            self._indexed = 0
        for call in calls[self._indexed :]:
            self._socket_channels.add(id(call.channel))
        self._indexed = len(calls)
        return id(channel) in self._socket_channels

    async def api_uuid_bridge(self, args: str) -> str:
        a_id, _, b_id = args.partition(" ")
        a, b = self._channel(a_id), self._channel(b_id.strip())
        if a is None or b is None:
            return "-ERR No such channel!\n"
        self.bridge(a, b)
        return f"+OK {b.uuid}\n"

    def bridge(self, a: Channel, b: Channel, *, unpark: bool = True) -> None:
        """Bridge two legs: CHANNEL_UNPARK on each (``uuid_bridge`` of parked legs), then
        CHANNEL_BRIDGE on A."""
        a.other, a.other_type = b, "originatee"
        b.other, b.other_type = a, "originator"
        epoch = self.core.now_us() // 10**6
        for leg, other in ((a, b), (b, a)):
            leg.profile["Transfer-Source"] = f"{epoch}:{uuidlib.uuid4()}:uuid_br:{other.uuid}"
        for leg in (a, b) if unpark else ():
            leg.state_number = 8  # on its way to CS_HIBERNATE, as recorded
            leg.fire("CHANNEL_UNPARK")
            leg.state_number = None
        now = self.core.now_us()
        a.times["bridged"] = b.times["bridged"] = now
        a.state, b.state = "CS_SOFT_EXECUTE", "CS_EXCHANGE_MEDIA"
        a.fire("CHANNEL_BRIDGE", prefix=[("Bridge-A-Unique-ID", a.uuid),
                                         ("Bridge-B-Unique-ID", b.uuid)])  # fmt: skip

    async def api_originate(self, args: str) -> str:
        """``originate [{vars}]endpoint <&app(arg)|extension>``: create, ring, answer, park."""
        parsed = parse_originate(args)  # FreeSWITCH's own splitting and un-quoting
        if parsed is None:
            return "-USAGE: <call url> <exten>|&<application_name>(<app_args>)\n"
        variables, dial, rest = parsed
        leg = await self.originate_leg(dial, variables=dict(variables))
        if isinstance(leg, str):
            return leg
        app = re.match(r"^&(\w+)\((.*)\)$", rest[0])
        if app is not None:
            self._spawn(self._run_after_answer(leg, app.group(1), app.group(2)))
        return f"+OK {leg.uuid}\n"

    async def originate_leg(
        self,
        target: str,
        *,
        caller: Channel | None = None,
        variables: dict[str, str] | None = None,
    ) -> Channel | str:
        """Dial ``[{vars}]dialstring``: the answered leg, or ``-ERR <cause>\n`` as originate
        reports it. Events as in capture 04 (OUTGOING, CREATE, ORIGINATE, PROGRESS, ANSWER).
        The ``{...}`` block is read as ``switch_ivr_originate`` reads it (``quoting``);
        ``variables`` are ones the originate API already took out of it."""
        parsed = parse_dial_string(target)
        if parsed is None or not re.fullmatch(r"\S+", parsed[1]):
            return "-ERR DESTINATION_OUT_OF_ORDER\n"
        found, dialstring = parsed
        variables = {**(variables or {}), **dict(found)}
        kind, _, rest = dialstring.partition("/")
        if kind == "sofia" and not rest.startswith(("external/", "internal/")):
            # FreeSWITCH creates the leg, fails it and destroys it (CHANNEL_DESTROY only)
            failed = self.new_channel(direction="outbound", name=dialstring)
            failed.state, failed.state_number = "CS_NONE", 0
            failed.fire("CHANNEL_DESTROY", caller=False)
            failed.destroyed = failed.reported = True
            failed.hungup.set()
            return "-ERR INVALID_PROFILE\n"
        endpoint = self.endpoints.get(dialstring, self.default_endpoint)
        if endpoint.outcome == "absent":
            return "-ERR SUBSCRIBER_ABSENT\n"
        cid = caller.profile.get("Caller-ID-Number", "0000000000") if caller else "0000000000"
        channel = self.new_channel(
            uuid=variables.pop("origination_uuid", str(uuidlib.uuid4())),
            direction="outbound",
            caller_id_number=variables.pop("origination_caller_id_number", cid),
            destination=rest.split("@")[0].split("/")[-1],
            name=dialstring,
        )
        channel.variables.update(variables)
        channel.state, channel.state_number = "CS_NONE", 1
        channel.fire("CHANNEL_OUTGOING")
        channel.state, channel.state_number = "CS_INIT", None
        channel.fire("CHANNEL_CREATE")
        channel.fire("CHANNEL_ORIGINATE")
        if endpoint.on_channel is not None:
            endpoint.on_channel(channel)
        if endpoint.outcome == "busy":
            channel.hangup("USER_BUSY")
            channel.finish()
            return "-ERR USER_BUSY\n"
        channel.state = "CS_CONSUME_MEDIA"
        channel.profile["Network-Addr"] = "127.0.0.1"
        channel.ring_ready()
        stop = asyncio.ensure_future(channel.hungup.wait())
        watch = [stop]
        if caller is not None:  # the caller giving up cancels the attempt
            watch.append(asyncio.ensure_future(caller.hungup.wait()))
        try:
            await asyncio.wait(watch, timeout=endpoint.ring_seconds * self.core.time_scale,
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        finally:
            for waiter in watch:
                waiter.cancel()
        if caller is not None and caller.hungup.is_set() and not channel.hungup.is_set():
            channel.hangup("ORIGINATOR_CANCEL")
        if endpoint.outcome == "no_answer" or channel.hungup.is_set():
            channel.hangup(channel.hangup_cause or "NO_ANSWER")
            channel.finish()
            return f"-ERR {channel.hangup_cause}\n"
        channel.answer(early_media=False)
        channel.state = "CS_EXECUTE"
        channel.profile["Caller-ID-Name"] = channel.profile.pop("Callee-ID-Name", "")
        channel.profile["Callee-ID-Number"] = channel.profile["Caller-ID-Number"]
        return channel

    async def _app_bridge(self, a: Channel, arg: str) -> str:
        """The ``bridge`` application: dial, bridge on answer, return when either side hangs up
        (the caller's dialplan then continues; ``hangup_after_bridge`` is not modelled)."""
        leg = await self.originate_leg(arg, caller=a)
        if isinstance(leg, str):
            cause = leg.removeprefix("-ERR").strip()
            a.variables.update(originate_disposition=cause, bridge_hangup_cause=cause)
            if a.hungup.is_set():
                raise Hangup
            return "_none_"
        b = leg
        a.variables["originate_disposition"] = "SUCCESS"
        a.variables["bridge_to"] = b.uuid
        self.bridge(a, b, unpark=False)
        ends = [asyncio.ensure_future(a.hungup.wait()), asyncio.ensure_future(b.hungup.wait())]
        try:
            await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in ends:
                waiter.cancel()
        if a.hungup.is_set() and not b.hungup.is_set():
            b.hangup(a.hangup_cause or "NORMAL_CLEARING")
        a.variables["bridge_hangup_cause"] = b.hangup_cause or "NORMAL_CLEARING"
        a.fire("CHANNEL_UNBRIDGE", prefix=[("Bridge-A-Unique-ID", a.uuid),
                                           ("Bridge-B-Unique-ID", b.uuid)])  # fmt: skip
        b.finish()
        a.other = None
        a.state = "CS_EXECUTE"
        if a.hungup.is_set():
            raise Hangup
        return "_none_"

    async def _run_after_answer(self, channel: Channel, app: str, arg: str) -> None:
        await asyncio.sleep(0)  # originate's reply (or BACKGROUND_JOB) goes first, as in 04
        execution: Execution = channel.enqueue(app, arg)
        await execution.done

    async def api_hupall(self, args: str) -> str:
        for channel in self.live():
            self._hangup_leg(channel, args.split(" ")[0] or "MANAGER_REQUEST")
        return "+OK hangup all channels with cause MANAGER_REQUEST\n"

    async def api_echo(self, args: str) -> str:
        return args
