"""The one module of the ESL layer that touches sockets.

* :class:`EslConnection`: one ESL byte stream (either direction of the protocol), an
  :class:`asyncio.Protocol`: each chunk the socket delivers goes straight into the pure
  :class:`~callmesh.workers.esl.parser.FrameParser` (no reader task, no StreamReader
  buffer in between: less CPU and memory per call); replies resolve the
  single in-flight command (commands are serialised by a lock, so a reply can never be matched
  to the wrong command); ``BACKGROUND_JOB`` events resolve ``bgapi`` futures by the Job-UUID we
  chose; other events go to the :class:`~callmesh.workers.esl.dispatch.EventDispatcher`.
  When the stream ends, every waiting command, job and execution fails with
  :class:`~callmesh.workers.esl.errors.EslConnectionLost`.
* :class:`InboundClient`: connects to FreeSWITCH's event socket (``auth``), keeps the event
  subscriptions and filters, and reconnects with backoff.
* :class:`OutboundServer` / :class:`CallSession`: FreeSWITCH's ``socket`` dialplan application
  connects here, one TCP connection per call; the server sends ``connect`` and hands the call's
  :class:`CallSession` to a handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid as uuidlib
from collections.abc import Awaitable, Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any

from callmesh.workers.esl import commands, quoting
from callmesh.workers.esl.backoff import Backoff
from callmesh.workers.esl.dispatch import EventDispatcher, Handler, Subscription
from callmesh.workers.esl.errors import (
    EslAuthError,
    EslCommandError,
    EslConnectionLost,
    EslError,
    EslProtocolError,
    EslTimeout,
)
from callmesh.workers.esl.events import Event
from callmesh.workers.esl.frames import (
    ApiResponse,
    AuthRequest,
    BadEventFrame,
    CommandReply,
    DisconnectNotice,
    EventFrame,
    Frame,
    LogData,
)
from callmesh.workers.esl.parser import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_HEADER_BYTES,
    FrameParser,
)

log = logging.getLogger(__name__)

EventHook = Callable[[Event], None]


@dataclass(frozen=True)
class EslOptions:
    """Limits and timeouts shared by inbound and outbound connections."""

    command_timeout: float = 60.0
    """Seconds to wait for a command's reply before closing the connection (EslTimeout)."""
    connect_timeout: float = 5.0
    """Seconds for the TCP connect plus greeting/auth, or for the outbound ``connect`` reply."""
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    subscription_maxsize: int = 10_000
    """Events an async-iterator subscriber may fall behind before it is closed."""

    def __post_init__(self) -> None:
        for name in ("command_timeout", "connect_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)}: use a positive number of seconds")


def checked_reply(frame: Frame, what: str, *, check: bool = True) -> CommandReply:
    """``frame`` as the reply to the command ``what``. Raises EslProtocolError when it is
    not a ``command/reply`` and, with ``check``, EslCommandError when it says ``-ERR``."""
    if not isinstance(frame, CommandReply):
        raise EslProtocolError(f"{what!r} got {frame.content_type!r}, expected command/reply")
    if check and not frame.ok:
        raise EslCommandError(what, frame.reply_text.removeprefix("-ERR").strip())
    return frame


class EslConnection(asyncio.Protocol):
    """One ESL stream: serialised commands, background jobs, events, clean teardown.

    Made by ``loop.create_connection`` / ``loop.create_server`` (see :meth:`open`,
    :class:`OutboundServer`); it reads from the moment the socket is connected.
    """

    __slots__ = (
        "_close_waiters",
        "_closed",
        "_deadline",
        "_dispatcher",
        "_drain_waiters",
        "_greeting",
        "_jobs",
        "_limit",
        "_lock",
        "_lost",
        "_lost_waiters",
        "_owns_dispatcher",
        "_paused",
        "_pending",
        "_queued",
        "_transport",
        "_watchdog",
        "_what",
        "bad_events",
        "close_hooks",
        "close_reason",
        "disconnect_notice",
        "event_hooks",
        "hook_failures",
        "log_hooks",
        "name",
        "notice_hooks",
        "on_made",
        "options",
        "parser",
        "unexpected_frames",
    )  # per-call objects: no __dict__

    def __init__(
        self,
        *,
        options: EslOptions | None = None,
        dispatcher: EventDispatcher | None = None,
        name: str = "esl",
    ) -> None:
        self.options = options or EslOptions()
        self.name = name
        self._transport: asyncio.Transport | None = None
        self._paused = False
        self._drain_waiters: list[asyncio.Future[None]] | None = None
        self._lost = False
        self._lost_waiters: list[asyncio.Future[None]] | None = None
        self.on_made: Callable[[EslConnection], None] | None = None
        """Called once the socket is connected (the outbound server starts the call)."""
        self.parser = FrameParser(
            max_header_bytes=self.options.max_header_bytes,
            max_body_bytes=self.options.max_body_bytes,
        )
        self._owns_dispatcher = dispatcher is None
        # an outbound call's own dispatcher is made when first asked for: callcontrol's
        # calls never subscribe, and a waiting call should cost little memory
        self._dispatcher = dispatcher
        self._lock = asyncio.Lock()
        # the reply awaited next: a future, or a _ReplyCheck when nobody awaits it (post)
        self._pending: asyncio.Future[Frame] | _ReplyCheck | None = None
        self._queued: list[asyncio.Future[Frame]] | None = None  # send_many's later replies
        self._watchdog: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._limit = 0.0
        self._what = ""
        self._jobs: dict[str, asyncio.Future[Event]] = {}
        loop = asyncio.get_running_loop()
        self._greeting: asyncio.Future[AuthRequest] = loop.create_future()
        self._closed = False
        self._close_waiters: list[asyncio.Future[None]] | None = None
        self.event_hooks: list[EventHook] = []
        """Synchronous callbacks run by the reader for every event, before dispatch."""
        self.log_hooks: list[Callable[[LogData], None]] = []
        self.notice_hooks: list[Callable[[DisconnectNotice], None]] = []
        self.close_hooks: list[Callable[[], None]] = []
        """Synchronous callbacks run once when the stream ends (before waiters wake)."""
        self.close_reason: BaseException | None = None
        self.disconnect_notice: DisconnectNotice | None = None
        self.bad_events = 0
        self.unexpected_frames = 0
        self.hook_failures = 0

    # ------------------------------------------------------------ lifecycle

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        options: EslOptions | None = None,
        dispatcher: EventDispatcher | None = None,
        name: str = "esl",
    ) -> EslConnection:
        """Connect to ``host:port``; the connection reads from then on."""
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(
            lambda: cls(options=options, dispatcher=dispatcher, name=name), host, port
        )
        return conn

    @property
    def closed(self) -> bool:
        """True once the stream has ended (for whatever reason)."""
        return self._closed

    @property
    def dispatcher(self) -> EventDispatcher:
        """Where events go after the hooks (handlers and async-iterator subscriptions)."""
        dispatcher = self._dispatcher
        if dispatcher is None:
            dispatcher = EventDispatcher(subscription_maxsize=self.options.subscription_maxsize)
            self._dispatcher = dispatcher
        return dispatcher

    @property
    def transport(self) -> asyncio.Transport | None:
        """The socket's transport (None before it is connected)."""
        return self._transport

    def abort(self) -> None:
        """Drop the socket at once, without flushing (a crash)."""
        if self._transport is not None:
            self._transport.abort()

    async def wait_closed(self) -> None:
        """Wait until the stream has ended and all waiters were failed."""
        if self._closed:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._close_waiters is None:
            self._close_waiters = []
        self._close_waiters.append(fut)
        await asyncio.shield(fut)

    async def close(self) -> None:
        """Close the socket now; pending commands fail with EslConnectionLost."""
        self._teardown(EslConnectionLost(f"{self.name}: closed locally"))
        if self._lost or self._transport is None:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._lost_waiters is None:
            self._lost_waiters = []
        self._lost_waiters.append(fut)
        await asyncio.shield(fut)  # the socket is closed (queued bytes flushed first)

    # ------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        if self.on_made is not None:
            self.on_made(self)

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            for frame in self.parser.feed(data):
                self._on_frame(frame)
        except EslProtocolError as exc:
            log.warning("%s: protocol error, closing: %s", self.name, exc)
            self._teardown(exc)
        except Exception as exc:  # a bug here must not leave the connection half alive
            log.exception("%s: reading failed, closing", self.name)
            self._teardown(EslConnectionLost(f"{self.name}: reading failed: {exc!r}"))

    def eof_received(self) -> bool:
        if self.parser.idle:
            reason = EslConnectionLost(f"{self.name}: FreeSWITCH closed the socket")
        else:
            reason = EslConnectionLost(
                f"{self.name}: socket closed inside a frame ({self.parser.buffered} bytes buffered)"
            )
        self._teardown(reason)
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self._teardown(EslConnectionLost(f"{self.name}: socket error: {exc}"))
        else:
            self._teardown(EslConnectionLost(f"{self.name}: FreeSWITCH closed the socket"))
        self._lost = True
        self._paused = False
        for waiters in (self._lost_waiters, self._drain_waiters):
            for fut in waiters or ():
                if not fut.done():
                    fut.set_result(None)
        self._lost_waiters = self._drain_waiters = None

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        waiters, self._drain_waiters = self._drain_waiters, None
        for fut in waiters or ():
            if not fut.done():
                fut.set_result(None)

    async def _drain(self) -> None:
        """Wait while the transport's write buffer is over its high-water mark."""
        while self._paused and not self._lost:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            if self._drain_waiters is None:
                self._drain_waiters = []
            self._drain_waiters.append(fut)
            await fut

    def _teardown(self, reason: BaseException) -> None:
        if self._closed:
            return
        self.close_reason = reason
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        for waiter in self._close_waiters or ():
            if not waiter.done():
                waiter.set_result(None)
        self._close_waiters = None
        for close_hook in self.close_hooks:
            try:
                close_hook()
            except Exception:
                self.hook_failures += 1
                log.exception("%s: close hook %r failed", self.name, close_hook)
        lost = reason if isinstance(reason, EslError) else EslConnectionLost(str(reason))
        if not isinstance(lost, EslConnectionLost):
            # a protocol error or timeout explains *why* the connection was lost
            wrapped = EslConnectionLost(f"{self.name}: {lost}")
            wrapped.__cause__ = lost
            lost = wrapped
        for fut in [self._pending, *(self._queued or ()), self._greeting, *self._jobs.values()]:
            if fut is not None and not fut.done():
                fut.set_exception(lost)
                fut.exception()  # mark retrieved: nobody may be waiting any more
        self._jobs.clear()
        if self._owns_dispatcher and self._dispatcher is not None:
            self._dispatcher.close()
        if self._transport is not None:
            self._transport.close()

    # ------------------------------------------------------------ frames in

    def _on_frame(self, frame: Frame) -> None:
        if isinstance(frame, EventFrame):
            event = frame.event
            if event.name == "BACKGROUND_JOB" and event.job_uuid:
                fut = self._jobs.pop(event.job_uuid, None)
                if fut is not None and not fut.done():
                    fut.set_result(event)
            for hook in self.event_hooks:
                self._run_hook(hook, event)
            if self._dispatcher is not None:  # nobody asked for one: nobody listens
                self._dispatcher.publish(event)
        elif isinstance(frame, CommandReply | ApiResponse):
            pending = self._pending
            if pending is not None and not pending.done():
                pending.set_result(frame)
                if self._queued:  # send_many: the next reply is for its next command
                    self._pending = self._queued.pop(0)
            else:
                self.unexpected_frames += 1
                log.warning(
                    "%s: %s with no command waiting: %r",
                    self.name,
                    frame.content_type,
                    frame.headers.get("Reply-Text") or frame.body[:80],
                )
        elif isinstance(frame, AuthRequest):
            if not self._greeting.done():
                self._greeting.set_result(frame)
        elif isinstance(frame, DisconnectNotice):
            if not frame.linger:
                self.disconnect_notice = frame
            for notice_hook in self.notice_hooks:
                self._run_hook(notice_hook, frame)
        elif isinstance(frame, LogData):
            for log_hook in self.log_hooks:
                self._run_hook(log_hook, frame)
        elif isinstance(frame, BadEventFrame):
            self.bad_events += 1
            log.warning("%s: undecodable event skipped: %s", self.name, frame.error)
        else:
            self.unexpected_frames += 1
            log.warning("%s: unknown frame %r skipped", self.name, frame.content_type)

    def _run_hook(self, hook: Callable[[Any], None], item: object) -> None:
        """A failing hook is logged; it must not kill the reader (other calls depend on it)."""
        try:
            hook(item)
        except Exception:
            self.hook_failures += 1
            log.exception("%s: hook %r failed", self.name, hook)

    async def wait_greeting(self) -> AuthRequest:
        """Wait for FreeSWITCH's ``auth/request`` greeting (inbound connections)."""
        return await self._greeting

    # ------------------------------------------------------------ commands out

    async def _write(self, data: bytes) -> None:
        """Write ``data`` and wait while the transport's buffer is full; a socket that is
        gone or fails tears the connection down (the command in flight then fails)."""
        transport = self._transport
        if transport is None or transport.is_closing():
            self._teardown(EslConnectionLost(f"{self.name}: send failed: not connected"))
            return
        try:
            transport.write(data)
            if self._paused:
                await self._drain()
        except (ConnectionError, OSError) as exc:
            self._teardown(EslConnectionLost(f"{self.name}: send failed: {exc}"))

    async def send(self, data: bytes, *, what: str, timeout: float | None = None) -> Frame:
        """Send one encoded command and return its reply frame (one command in flight)."""
        async with self._lock:
            if self.closed:
                raise EslConnectionLost(f"{self.name}: not connected ({what})")
            fut: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
            self._pending = fut
            await self._write(data)
            limit = self.options.command_timeout if timeout is None else timeout
            self._arm(what, limit)
            try:
                return await fut  # EslTimeout when the watchdog finds it overdue
            finally:
                self._pending = None

    async def post(self, data: bytes, *, what: str, failed: asyncio.Future[Any]) -> None:
        """Send one encoded command and return once it is written, without waiting for its
        reply: a ``-ERR`` reply (EslCommandError), a reply of the wrong type, a timeout or the
        connection's loss then fail ``failed`` instead (unless it is done already); ``+OK``
        leaves it alone.

        For ``sendmsg execute`` with its CHANNEL_EXECUTE_COMPLETE awaited in ``failed``:
        FreeSWITCH answers ``+OK`` as soon as the message is queued, so the caller waits once
        (for the completion) instead of twice. The connection stays one command in flight:
        the lock is held until the reply arrives, so the next command is sent after it, as
        after :meth:`send`.
        """
        await self._lock.acquire()
        if self.closed:
            self._lock.release()
            raise EslConnectionLost(f"{self.name}: not connected ({what})")
        # from here the reply (or the teardown) releases the lock
        self._pending = _ReplyCheck(self, what, failed)
        await self._write(data)
        self._arm(what, self.options.command_timeout)

    async def send_many(self, data: list[bytes], *, what: str) -> list[Frame]:
        """Send several encoded commands in one write and return their reply frames in
        order: FreeSWITCH answers a socket's commands one after the other, so this is one
        round trip instead of one per command. They count as one command in flight (the
        lock is held throughout, ``command_timeout`` covers them all)."""
        if not data:
            return []
        async with self._lock:
            if self.closed:
                raise EslConnectionLost(f"{self.name}: not connected ({what})")
            loop = asyncio.get_running_loop()
            futures: list[asyncio.Future[Frame]] = [loop.create_future() for _ in data]
            self._pending = futures[0]
            self._queued = futures[1:]
            await self._write(b"".join(data))
            self._arm(what, self.options.command_timeout)
            try:
                return [await fut for fut in futures]
            finally:
                self._pending = None
                self._queued = None

    async def commands(self, lines: list[tuple[str, bool]]) -> list[CommandReply]:
        """Plain commands ``(line, check)`` sent at once (see :meth:`send_many`); their
        replies in order. Every command is sent; the first checked one answered with
        ``-ERR`` then raises EslCommandError, as :meth:`command` would."""
        frames = await self.send_many(
            [commands.encode_command(line) for line, _ in lines],
            what=" + ".join(line.partition(" ")[0] for line, _ in lines),
        )
        return [
            checked_reply(frame, line, check=check)
            for (line, check), frame in zip(lines, frames, strict=True)
        ]

    def _arm(self, what: str, limit: float) -> None:
        """Give the command in flight ``limit`` seconds. One timer per connection, re-armed
        only when it fires early: no TimerHandle per command (each would stay in the
        loop's heap, cancelled, for ``command_timeout`` seconds)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        self._deadline, self._limit, self._what = deadline, limit, what
        watchdog = self._watchdog
        if watchdog is not None:
            if watchdog.when() <= deadline:
                return  # it fires first and re-arms for this deadline
            watchdog.cancel()
        self._watchdog = loop.call_at(deadline, self._watch)

    def _watch(self) -> None:
        self._watchdog = None
        fut = self._pending
        if fut is None or fut.done() or self.closed:
            return
        loop = asyncio.get_running_loop()
        if (
            loop.time() + 0.001 < self._deadline
        ):  # a later command's time (timers fire up to ~1 ms early)
            self._watchdog = loop.call_at(self._deadline, self._watch)
            return
        error = EslTimeout(f"{self.name}: no reply to {self._what!r} within {self._limit} s")
        fut.set_exception(error)
        self._teardown(error)

    async def command(
        self, line: str, headers: dict[str, str] | None = None, *, check: bool = True
    ) -> CommandReply:
        """Send a plain command (``event ...``, ``filter ...``, ``linger``...); its reply."""
        return await self._command(commands.encode_command(line, headers), line, check=check)

    async def _command(self, data: bytes, what: str, *, check: bool) -> CommandReply:
        return checked_reply(await self.send(data, what=what), what, check=check)

    async def api(self, command: str, *, check: bool = True, timeout: float | None = None) -> str:
        """``api <command>``: the function's output. ``-ERR`` output raises EslCommandError."""
        frame = await self.send(commands.api(command), what=f"api {command}", timeout=timeout)
        if isinstance(frame, CommandReply):  # e.g. a bare "api": "-ERR command not found"
            if check:
                raise EslCommandError(f"api {command}", frame.reply_text.removeprefix("-ERR "))
            return frame.reply_text
        if not isinstance(frame, ApiResponse):
            raise EslProtocolError(f"api {command!r} got {frame.content_type!r}")
        if check and not frame.ok:
            raise EslCommandError(f"api {command}", frame.text.strip().removeprefix("-ERR "))
        return frame.text

    async def bgapi(self, command: str, *, job_uuid: str | None = None) -> BackgroundJob:
        """``bgapi <command>``: returns at once; await the job for the output.

        The Job-UUID is chosen here and registered before sending, so the BACKGROUND_JOB event
        can never outrun its future. The connection must be subscribed to BACKGROUND_JOB.
        """
        job_id = job_uuid or str(uuidlib.uuid4())
        fut: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._jobs[job_id] = fut
        try:
            reply = await self._command(
                commands.bgapi(command, job_id), f"bgapi {command}", check=True
            )
        except BaseException:
            self._jobs.pop(job_id, None)
            fut.cancel()
            raise
        if reply.job_uuid and reply.job_uuid != job_id:  # FreeSWITCH ignored our Job-UUID
            self._jobs[reply.job_uuid] = self._jobs.pop(job_id)
            job_id = reply.job_uuid
        return BackgroundJob(job_id, command, fut)

    async def subscribe_events(self, fmt: str, names: Iterable[str]) -> CommandReply:
        """``event <fmt> <names...>``."""
        names = list(names)
        return await self._command(commands.event(fmt, names), f"event {fmt}", check=True)

    async def exit(self) -> None:
        """``exit``: FreeSWITCH answers ``+OK bye``, sends a disconnect notice and closes."""
        with contextlib.suppress(EslConnectionLost):
            await self.command("exit")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.options.connect_timeout):
                await self.wait_closed()
        await self.close()


class _ReplyCheck:
    """Stands in ``EslConnection._pending`` for the reply of a :meth:`EslConnection.post`ed
    command: checks it as :meth:`EslConnection._command` would, fails the poster's future on
    an error, and releases the connection's lock (the command is no longer in flight)."""

    __slots__ = ("_conn", "_done", "_failed", "_what")

    def __init__(self, conn: EslConnection, what: str, failed: asyncio.Future[Any]) -> None:
        self._conn = conn
        self._what = what
        self._failed = failed
        self._done = False

    def done(self) -> bool:
        return self._done

    def _finish(self) -> None:
        self._done = True
        conn = self._conn
        if conn._pending is self:
            conn._pending = None
        conn._lock.release()

    def set_result(self, frame: Frame) -> None:
        self._finish()
        try:
            checked_reply(frame, self._what)
        except EslError as exc:
            if not self._failed.done():
                self._failed.set_exception(exc)

    def set_exception(self, exc: BaseException) -> None:
        self._finish()
        if not self._failed.done():
            self._failed.set_exception(exc)

    def exception(self) -> BaseException | None:
        return None


class BackgroundJob:
    """A ``bgapi`` job: ``await job`` (or :meth:`result`) gives the command's output."""

    def __init__(self, job_uuid: str, command: str, future: asyncio.Future[Event]) -> None:
        self.job_uuid = job_uuid
        self.command = command
        self.future = future

    async def event(self) -> Event:
        """The BACKGROUND_JOB event (EslConnectionLost if the connection dies first)."""
        return await self.future

    async def result(self, *, check: bool = True) -> str:
        """The job's output; ``-ERR ...`` raises EslCommandError unless ``check=False``."""
        body = (await self.future).body
        if check and body.startswith(("-ERR", "-USAGE")):
            raise EslCommandError(f"bgapi {self.command}", body.strip().removeprefix("-ERR "))
        return body

    def __await__(self) -> Generator[Any, None, str]:
        return self.result().__await__()


# ==================================================================== inbound


class InboundClient:
    """A resilient inbound ESL client: auth, api, bgapi, events, filters, reconnect.

    ``await client.start()`` connects (retrying with backoff) and keeps a supervisor task that
    reconnects whenever the connection drops, then re-sends the event subscription and filters.
    While disconnected, commands raise :class:`EslConnectionLost` at once.
    """

    def __init__(
        self,
        host: str,
        port: int,
        password: str,
        *,
        event_format: str = "plain",
        options: EslOptions | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        if event_format not in ("plain", "json", "xml"):
            raise ValueError(f"event_format {event_format!r}: use plain, json or xml")
        self.host = host
        self.port = port
        self._password = password
        self.event_format = event_format
        self.options = options or EslOptions()
        self.backoff = backoff or Backoff()
        self.dispatcher = EventDispatcher(subscription_maxsize=self.options.subscription_maxsize)
        self._events: set[str] = {"BACKGROUND_JOB"}
        self._filters: list[tuple[str, str]] = []
        self.on_connected: list[Callable[[EslConnection], Awaitable[None]]] = []
        """Coroutines run after every (re)connection, e.g. to resynchronise call state."""
        self._conn: EslConnection | None = None
        self._connected = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self.connections = 0
        self.last_error: BaseException | None = None

    @property
    def connection(self) -> EslConnection:
        """The live connection; EslConnectionLost while reconnecting."""
        conn = self._conn
        if conn is None or conn.closed:
            raise EslConnectionLost(f"not connected to FreeSWITCH at {self.host}:{self.port}")
        return conn

    @property
    def connected(self) -> bool:
        """True while a live, authenticated connection exists."""
        return self._conn is not None and not self._conn.closed

    async def connect_once(self) -> EslConnection:
        """Open one connection, authenticate, restore subscriptions; raise on any failure."""
        opts = self.options
        async with asyncio.timeout(opts.connect_timeout):
            conn = await EslConnection.open(
                self.host, self.port, options=opts, dispatcher=self.dispatcher, name="esl-inbound"
            )
        try:
            async with asyncio.timeout(opts.connect_timeout):
                await conn.wait_greeting()
            reply = await conn.send(commands.auth(self._password), what="auth")
            if not isinstance(reply, CommandReply) or not reply.ok:
                text = reply.headers.get("Reply-Text", reply.content_type)
                raise EslAuthError("auth", f"{text} (check the event_socket password)")
            await conn.subscribe_events(self.event_format, commands.event_names(self._events))
            for header, value in self._filters:
                await conn._command(commands.filter_add(header, value), "filter", check=True)
        except BaseException:
            await conn.close()
            raise
        return conn

    async def start(self, *, wait: bool = True) -> None:
        """Start the supervisor; with ``wait`` return once the first connection is up."""
        if self._supervisor is None:
            self._stopping = False
            self._supervisor = asyncio.get_running_loop().create_task(
                self._supervise(), name="esl-inbound-supervisor"
            )
        if wait:
            await self.wait_connected()

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until connected (TimeoutError after ``timeout`` seconds)."""
        async with asyncio.timeout(timeout):
            await self._connected.wait()

    async def _supervise(self) -> None:
        while not self._stopping:
            try:
                conn = await self.connect_once()
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, EslError) as exc:
                self.last_error = exc
                delay = self.backoff.next_delay()
                log.warning(
                    "ESL connect to %s:%s failed (%s); retry in %.2f s",
                    self.host,
                    self.port,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            self.backoff.reset()
            self._conn = conn
            self.connections += 1
            self._connected.set()
            for callback in self.on_connected:
                try:
                    await callback(conn)
                except Exception:
                    log.exception("ESL on_connected callback %r failed", callback)
            await conn.wait_closed()
            self._connected.clear()
            self.last_error = conn.close_reason
            if not self._stopping:
                log.warning("ESL connection lost (%s); reconnecting", conn.close_reason)
                await asyncio.sleep(self.backoff.next_delay())

    async def close(self) -> None:
        """Stop reconnecting, say ``exit`` if connected, and end every subscription."""
        self._stopping = True
        conn = self._conn
        if conn is not None and not conn.closed:
            with contextlib.suppress(EslError):
                await conn.exit()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        if conn is not None:
            await conn.close()
        self.dispatcher.close()
        await self.dispatcher.wait_closed()

    # ------------------------------------------------------------ commands

    async def api(self, command: str, *, check: bool = True, timeout: float | None = None) -> str:
        """``api <command>`` on the live connection (see :meth:`EslConnection.api`)."""
        return await self.connection.api(command, check=check, timeout=timeout)

    async def bgapi(self, command: str, *, job_uuid: str | None = None) -> BackgroundJob:
        """``bgapi <command>``; ``await`` the returned job for its output."""
        return await self.connection.bgapi(command, job_uuid=job_uuid)

    async def command(self, line: str, *, check: bool = True) -> CommandReply:
        """Any other command line (``sendmsg`` needs :meth:`sendmsg`)."""
        return await self.connection.command(line, check=check)

    async def sendmsg(
        self, uuid: str, call_command: str, headers: dict[str, str] | None = None
    ) -> CommandReply:
        """``sendmsg <uuid>`` with ``call-command`` (execute, hangup, ...)."""
        conn = self.connection
        return await conn._command(
            commands.sendmsg(call_command, uuid, headers), f"sendmsg {uuid}", check=True
        )

    async def execute(
        self,
        uuid: str,
        app: str,
        arg: str | None = None,
        *,
        event_lock: bool = False,
        expand: bool = False,
    ) -> CommandReply:
        """Queue dialplan application ``app`` on channel ``uuid`` (does not wait for it).

        ``arg`` reaches the application as given (:func:`~.quoting.app_arg`); ``expand=True``
        lets FreeSWITCH expand ``${...}`` in it instead (never with untrusted text)."""
        if arg is not None and not expand:
            arg = quoting.app_arg(arg, field=f"{app} argument")
        data = commands.execute(app, arg, uuid=quoting.token(uuid, "uuid"), event_lock=event_lock)
        return await self.connection._command(data, f"execute {app}", check=True)

    async def subscribe(self, *names: str) -> None:
        """Add event names to the subscription (kept across reconnects)."""
        new = set(names) - self._events
        self._events |= set(names)
        if new and self.connected:
            await self.connection.subscribe_events(self.event_format, commands.event_names(new))

    async def add_filter(self, header: str, value: str) -> None:
        """``filter <header> <value>`` (kept across reconnects)."""
        self._filters.append((header, value))
        if self.connected:
            await self.connection._command(commands.filter_add(header, value), "filter", check=True)

    async def delete_filter(self, header: str, value: str | None = None) -> None:
        """``filter delete <header> [value]``."""
        self._filters = [
            (h, v) for h, v in self._filters if not (h == header and value in (None, v))
        ]
        if self.connected:
            await self.connection._command(
                commands.filter_delete(header, value), "filter delete", check=True
            )

    def on(self, name: str, handler: Handler) -> None:
        """Call ``async handler(event)`` for each event ``name`` (``*`` for all)."""
        self.dispatcher.on(name, handler)

    def events(self, *names: str) -> Subscription:
        """An async iterator over events (the names must also be subscribed)."""
        return self.dispatcher.subscribe(*names)


# ==================================================================== outbound


class CallHangup(EslConnectionLost):
    """The call hung up before or while the action ran (CHANNEL_HANGUP, the linger notice or
    the socket closing). :attr:`event` is the CHANNEL_EXECUTE_COMPLETE when one arrived."""

    event: Event | None = None


_NO_CHANNEL_DATA = Event()
"""What a session's :attr:`CallSession.channel` holds once dropped (shared, empty)."""


class CallSession:
    """One call delivered by FreeSWITCH's ``socket`` application (one TCP connection).

    :meth:`connect` has already run when a handler gets the session: :attr:`channel` holds the
    CHANNEL_DATA headers and :attr:`uuid` the channel's UUID.
    """

    __slots__ = (
        "_executions",
        "_hangup_callbacks",
        "_hangup_waiters",
        "_hung",
        "_uuid",
        "channel",
        "conn",
        "control",
        "hangup_event",
        "linger_notice",
        "socket_mode",
    )  # per-call objects: no __dict__

    def __init__(self, conn: EslConnection) -> None:
        self.conn = conn
        self.channel: Event = Event({})
        self._uuid = ""  # from connect: the channel data may be dropped, the UUID stays
        self.socket_mode = ""
        self.control = ""
        self._executions: dict[str, asyncio.Future[Event]] = {}
        self.hangup_event: Event | None = None
        self._hung = False
        # futures of wait_hangup() and callbacks of on_hangup(): no task, no asyncio.Event
        # per call (a waiting call should cost little memory)
        self._hangup_waiters: list[asyncio.Future[None]] | None = None
        self._hangup_callbacks: list[Callable[[], None]] | None = None
        self.linger_notice: DisconnectNotice | None = None
        conn.event_hooks.append(self._on_event)
        conn.notice_hooks.append(self._on_notice)
        conn.close_hooks.append(self._ended)

    @property
    def uuid(self) -> str:
        """The controlled channel's UUID."""
        return self._uuid or self.channel.unique_id or ""

    def drop_channel_data(self) -> None:
        """Forget :attr:`channel` (CHANNEL_DATA, ~150 headers) once the handler has read
        what it needs; :attr:`uuid` stays. A long-lived call then costs less memory."""
        uuid = self.uuid
        if uuid:
            self._uuid = uuid
            self.channel = _NO_CHANNEL_DATA

    @property
    def hungup(self) -> bool:
        """True once the channel hung up (CHANNEL_HANGUP, linger notice or socket end)."""
        return self._hung or self.conn.closed

    @property
    def hangup_cause(self) -> str | None:
        """``Hangup-Cause`` of the CHANNEL_HANGUP event, when one was seen."""
        return self.hangup_event.get("Hangup-Cause") if self.hangup_event else None

    async def wait_hangup(self) -> None:
        """Wait until the caller (or FreeSWITCH) hangs up or the socket closes."""
        if self.hungup:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._hangup_waiters is None:
            self._hangup_waiters = []
        self._hangup_waiters.append(fut)
        try:
            await fut
        finally:
            if self._hangup_waiters is not None and fut in self._hangup_waiters:
                self._hangup_waiters.remove(fut)

    def on_hangup(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once when the call hangs up or the socket closes (at once if
        it already has)."""
        if self.hungup:
            callback()
            return
        if self._hangup_callbacks is None:
            self._hangup_callbacks = []
        self._hangup_callbacks.append(callback)

    def _ended(self) -> None:
        """Hang-up or socket end: wake wait_hangup() and run on_hangup() callbacks, once."""
        waiters, self._hangup_waiters = self._hangup_waiters, None
        callbacks, self._hangup_callbacks = self._hangup_callbacks, None
        for fut in waiters or ():
            if not fut.done():
                fut.set_result(None)
        for callback in callbacks or ():
            try:
                callback()
            except Exception:
                log.exception("hang-up callback %r failed", callback)

    def _on_event(self, event: Event) -> None:
        uid = event.unique_id
        if uid:
            own = self.uuid
            if own and uid != own:
                return
        name = event.name
        if name == "CHANNEL_EXECUTE_COMPLETE":
            app_uuid = event.application_uuid
            fut = self._executions.pop(app_uuid, None) if app_uuid else None
            if fut is not None and not fut.done():
                fut.set_result(event)
        elif name in ("CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"):
            if self.hangup_event is None:
                self.hangup_event = event
            self._hung = True
            self._ended()

    def _on_notice(self, notice: DisconnectNotice) -> None:
        if notice.linger:
            self.linger_notice = notice
        self._hung = True
        # nothing can complete on a channel that is gone
        for fut in self._executions.values():
            if not fut.done():
                fut.set_exception(CallHangup(f"call {self.uuid} ended"))
                fut.exception()
        self._executions.clear()
        self._ended()

    async def connect(self) -> Event:
        """Send ``connect``; store and return the CHANNEL_DATA it answers with."""
        reply = await self.conn.send(
            commands.encode_command("connect"),
            what="connect",
            timeout=self.conn.options.connect_timeout,
        )
        channel = reply.channel_data if isinstance(reply, CommandReply) else None
        if channel is None:
            raise EslProtocolError(
                f"connect got {reply.content_type!r} without channel data; "
                "is this FreeSWITCH's socket application?"
            )
        self.channel = channel
        self._uuid = channel.unique_id or ""
        self.socket_mode = reply.headers.get("Socket-Mode", "")
        self.control = reply.headers.get("Control", "")
        return channel

    async def myevents(self, fmt: str = "plain") -> None:
        """``myevents [fmt]``: receive every event of this channel."""
        await self.conn.command("myevents" if fmt == "plain" else f"myevents {fmt}")

    async def linger(self, seconds: int | None = None) -> None:
        """``linger [seconds]``: keep the socket open after hangup to get the final events."""
        await self.conn.command("linger" if seconds is None else f"linger {seconds}")

    async def subscribe(self, *names: str, fmt: str = "plain") -> None:
        """``event <fmt> <names...>``."""
        await self.conn.subscribe_events(fmt, names)

    async def execute(
        self,
        app: str,
        arg: str | None = None,
        *,
        event_lock: bool = False,
        wait: bool = True,
        timeout: float | None = None,
        expand: bool = False,
    ) -> Event | None:
        """Run dialplan application ``app`` on this call.

        With ``wait`` (the default) return its CHANNEL_EXECUTE_COMPLETE event, matched by the
        ``Event-UUID`` we send (needs ``myevents`` or an event subscription). Raises
        :class:`CallHangup` if the call ends first or hung up while it ran (FreeSWITCH still
        completes an interrupted playback, with ``PLAYBACK ERROR``).

        ``arg`` reaches the application exactly as given: FreeSWITCH's variable expansion is
        escaped (:func:`~.quoting.app_arg`), so text from a caller or a CRM cannot run
        ``${api(...)}``; ``expand=True`` asks for the expansion (trusted text only).
        """
        if arg is not None and not expand:
            arg = quoting.app_arg(arg, field=f"{app} argument")
        if self.hungup:
            raise CallHangup(f"call {self.uuid} already ended; cannot execute {app}")
        event_uuid = str(uuidlib.uuid4())
        fut: asyncio.Future[Event] | None = None
        if wait:
            fut = asyncio.get_running_loop().create_future()
            self._executions[event_uuid] = fut
        try:
            # the encoded command is not kept in this frame while the application runs
            data = commands.execute(app, arg, event_lock=event_lock, event_uuid=event_uuid)
            if fut is None:
                await self.conn._command(data, f"execute {app}", check=True)
                return None
            # FreeSWITCH's reply only says the message was queued: not awaited on its own,
            # a -ERR (or the connection's loss) fails ``fut`` and ends the wait just the same
            await self.conn.post(data, what=f"execute {app}", failed=fut)
            del data
            if timeout is None:
                done = await fut
            else:
                async with asyncio.timeout(timeout):
                    done = await fut
            if self._hung and app != "hangup":
                error = CallHangup(f"call {self.uuid} hung up during {app}")
                error.event = done
                raise error
            return done
        except EslConnectionLost as exc:
            if isinstance(exc, CallHangup):
                raise
            raise CallHangup(f"call {self.uuid}: {exc}") from exc
        finally:
            self._executions.pop(event_uuid, None)
            if fut is not None and not fut.done():
                fut.cancel()  # a reply that comes after this ends is not an error to report

    async def answer(self) -> None:
        """Answer the call: ``api uuid_answer`` on this call's socket, answered when it
        returns, and no ~5 KB CHANNEL_EXECUTE_COMPLETE as the ``answer`` application costs.

        FreeSWITCH answers ``-ERROR`` both when the channel is gone and when the answer
        failed; then the ``answer`` application runs instead, which tells the two apart
        (CallHangup for a call that ended). Unlike the application, ``uuid_answer`` does not
        wait behind applications sent with ``wait=False``.
        """
        try:
            await self._call_api(f"uuid_answer {self.uuid}", "answer")
        except EslCommandError:
            await self.execute("answer")

    async def _call_api(self, command: str, what: str) -> None:
        """``api <command>`` about this call, over its socket; CallHangup when the call has
        ended or the socket is gone, EslCommandError when FreeSWITCH refuses."""
        if self.hungup:
            raise CallHangup(f"call {self.uuid} already ended; cannot {what}")
        try:
            await self.conn.api(command)
        except EslConnectionLost as exc:
            raise CallHangup(f"call {self.uuid}: {exc}") from exc

    async def playback(self, path: str) -> str:
        """Play ``path``; the Application-Response (``FILE PLAYED``, ``PLAYBACK ERROR``...)."""
        done = await self.execute("playback", path)
        return (done.get("Application-Response") or "") if done else ""

    async def play_and_get_digits(
        self,
        prompt: str,
        *,
        min_digits: int = 1,
        max_digits: int = 1,
        tries: int = 1,
        timeout_ms: int = 5000,
        terminators: str = "#",
        invalid_prompt: str = "silence_stream://250",
        variable: str = "callmesh_digits",
        regexp: str = r"\d+",
        digit_timeout_ms: int | None = None,
    ) -> str:
        """Prompt and collect digits; ``""`` when nothing valid was entered."""
        if not 1 <= min_digits <= max_digits:
            raise ValueError(f"min_digits={min_digits}, max_digits={max_digits}: need 1<=min<=max")
        if not variable.replace("_", "").isalnum():
            raise ValueError(f"variable {variable!r}: use letters, digits and '_'")
        args = [
            min_digits,
            max_digits,
            tries,
            timeout_ms,
            terminators or "none",
            prompt,
            invalid_prompt,
            variable,
            regexp,
        ]
        if digit_timeout_ms is not None:
            args.append(digit_timeout_ms)
        # the application splits its data at spaces (switch_separate_string): one word each
        line = " ".join(quoting.split_arg(str(a), " ", field="play_and_get_digits") for a in args)
        done = await self.execute("play_and_get_digits", line)
        return (done.variable(variable) or "") if done else ""

    async def set_variable(self, name: str, value: str) -> None:
        """Set channel variable ``name`` to ``value`` (kept as is, never expanded).

        A one-word value (no whitespace, ``'`` or ``\\``: what FreeSWITCH's argument
        splitter leaves alone) is set at once with ``api uuid_setvar`` on this call's socket:
        its reply is a few bytes, where the ``set`` application costs a ~5 KB
        CHANNEL_EXECUTE_COMPLETE event. Any other value goes through ``set``, queued behind
        the applications already sent. Raises CallHangup once the call has ended.
        """
        if not name or not name.replace("_", "").isalnum():
            raise ValueError(f"channel variable name {name!r}: use letters, digits and '_'")
        if not quoting.is_api_word(value):
            await self.execute("set", f"{name}={value}")
            return
        try:
            await self._call_api(f"uuid_setvar {self.uuid} {name} {value}", f"set {name}")
        except EslCommandError as exc:
            if "No such channel" in exc.reply:  # gone before its hang-up event was read
                raise CallHangup(f"call {self.uuid} ended; cannot set {name}") from exc
            raise

    async def getvar(self, name: str) -> str | None:
        """``api uuid_getvar``; None when unset (FreeSWITCH answers ``_undef_``)."""
        value = await self.conn.api(
            f"uuid_getvar {quoting.token(self.uuid, 'uuid')} {quoting.token(name, 'variable')}"
        )
        return None if value == "_undef_" else value

    async def api(self, command: str, *, check: bool = True) -> str:
        """``api <command>`` over this call's socket."""
        return await self.conn.api(command, check=check)

    async def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        """``sendmsg`` hangup with ``cause``."""
        await self.conn._command(commands.hangup(cause), "hangup", check=True)

    def events(self, *names: str) -> Subscription:
        """An async iterator over this call's events."""
        return self.conn.dispatcher.subscribe(*names)

    def on(self, name: str, handler: Handler) -> None:
        """Call ``async handler(event)`` for each event ``name`` of this call."""
        self.conn.dispatcher.on(name, handler)

    async def exit(self) -> None:
        """``exit``: release the socket (FreeSWITCH continues the dialplan if not hung up)."""
        await self.conn.exit()


CallHandler = Callable[[CallSession], Awaitable[None]]
"""Runs one call: ``async def handle(session: CallSession) -> None``."""


class OutboundServer:
    """Accepts FreeSWITCH ``socket`` connections; one :class:`CallSession` per call.

    Each connection gets ``connect`` sent, then ``handler(session)`` runs; whatever happens in
    the handler, the socket is closed afterwards and the session forgotten.
    """

    def __init__(
        self,
        handler: CallHandler,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        options: EslOptions | None = None,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.options = options or EslOptions()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.sessions: set[CallSession] = set()
        self.calls_accepted = 0
        self.calls_failed = 0

    async def start(self) -> tuple[str, int]:
        """Listen; returns the bound ``(host, port)`` (useful with port 0)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._connection, self.host, self.port)
        host, port = self._server.sockets[0].getsockname()[:2]
        self.port = port
        return host, port

    def _connection(self) -> EslConnection:
        conn = EslConnection(options=self.options, name="esl-outbound")
        conn.on_made = self._accepted
        return conn

    def _accepted(self, conn: EslConnection) -> None:
        task = asyncio.get_running_loop().create_task(self._accept(conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept(self, conn: EslConnection) -> None:
        session = CallSession(conn)
        self.calls_accepted += 1
        try:
            await session.connect()
            conn.name = f"esl-outbound[{session.uuid}]"
            self.sessions.add(session)
            await self.handler(session)
        except asyncio.CancelledError:
            pass
        except (EslConnectionLost, CallHangup) as exc:
            log.info("call %s ended while handled: %s", session.uuid or "?", exc)
        except Exception:
            self.calls_failed += 1
            log.exception("call handler failed for %s", session.uuid or "?")
        finally:
            self.sessions.discard(session)
            await conn.close()

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, give running calls ``grace`` seconds, then cancel them."""
        if self._server is not None:
            self._server.close()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
