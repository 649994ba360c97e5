"""Fan events out to async handlers and async iterators, in arrival order.

The connection's reader never waits for a consumer: events go to an unbounded-by-design
internal queue drained by one dispatcher task (so a handler may itself await a command on the
same connection), and each :class:`Subscription` has its own bounded queue. A subscriber that
falls ``maxsize`` events behind is closed with :class:`EslError` rather than letting memory
grow without bound.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

from callmesh.workers.esl.errors import EslConnectionLost, EslError
from callmesh.workers.esl.events import Event

log = logging.getLogger(__name__)

Handler = Callable[[Event], Awaitable[None]]
"""An event handler: ``async def on_event(event: Event) -> None``."""

ANY: Final = "*"
"""Register a handler or subscription for every event name."""


class Subscription:
    """An async iterator over events (optionally only some names); close it when done.

    ``async for event in subscription`` ends when the connection closes.
    """

    def __init__(self, names: frozenset[str], maxsize: int) -> None:
        self.names = names
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize)
        self._error: EslError | None = None
        self.closed = False

    def wants(self, event: Event) -> bool:
        """True if this subscription receives ``event``."""
        return (
            not self.names
            or event.name in self.names
            or (event.name == "CUSTOM" and event.subclass in self.names)
        )

    def _put(self, event: Event) -> None:
        if self.closed:
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self._finish(
                EslError(f"event subscriber fell {self._queue.maxsize} events behind; closed")
            )

    def _finish(self, error: EslError | None) -> None:
        if self.closed:
            return
        self.closed = True
        self._error = error
        while True:  # make room for the end marker
            try:
                self._queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                self._queue.get_nowait()

    async def get(self) -> Event:
        """The next event; raises :class:`EslError` once closed (connection gone, overflow)."""
        if self.closed and self._queue.empty():
            raise self._error or EslConnectionLost("event subscription closed")
        item = await self._queue.get()
        if item is None:
            raise self._error or EslConnectionLost("event subscription closed")
        return item

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            try:
                event = await self.get()
            except EslConnectionLost:
                return
            yield event


class EventDispatcher:
    """Routes each event to the handlers and subscriptions that asked for its name."""

    def __init__(self, *, subscription_maxsize: int = 10_000) -> None:
        self._handlers: dict[str, list[Handler]] = {}
        self._subscriptions: list[Subscription] = []
        self._queue: asyncio.Queue[Event | None] | None = None  # made with the first handler
        self._task: asyncio.Task[None] | None = None
        self.subscription_maxsize = subscription_maxsize
        self.handler_failures = 0

    def on(self, name: str, handler: Handler) -> None:
        """Call ``handler`` for events named ``name`` (or a CUSTOM subclass; ``*`` for all)."""
        self._handlers.setdefault(name, []).append(handler)

    def off(self, name: str, handler: Handler) -> None:
        """Stop calling ``handler`` for ``name``."""
        handlers = self._handlers.get(name, [])
        if handler in handlers:
            handlers.remove(handler)

    def subscribe(self, *names: str, maxsize: int | None = None) -> Subscription:
        """A new :class:`Subscription` to ``names`` (all events when none given)."""
        sub = Subscription(frozenset(names), maxsize or self.subscription_maxsize)
        self._subscriptions.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Close and forget ``sub``."""
        sub._finish(None)
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)

    def publish(self, event: Event) -> None:
        """Queue ``event`` for delivery (called by the connection's reader; never blocks)."""
        if self._subscriptions:
            for sub in self._subscriptions:
                if sub.wants(event):
                    sub._put(event)
            self._subscriptions = [s for s in self._subscriptions if not s.closed]
        if self._handlers:
            if self._queue is None:
                self._queue = asyncio.Queue()
            self._queue.put_nowait(event)
            if self._task is None:
                self._task = asyncio.get_running_loop().create_task(self._run())

    def close(self) -> None:
        """End every subscription (their iterators stop) and stop the dispatcher task."""
        for sub in self._subscriptions:
            sub._finish(None)
        self._subscriptions.clear()
        if self._task is not None and self._queue is not None:
            self._queue.put_nowait(None)

    async def wait_closed(self) -> None:
        """Wait until handlers have seen every event queued before :meth:`close`."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _run(self) -> None:
        queue = self._queue
        assert queue is not None  # publish() made it before starting this task
        while True:
            event = await queue.get()
            if event is None:
                self._task = None
                return
            handlers = self._handlers.get(event.name, []) + self._handlers.get(ANY, [])
            if event.name == "CUSTOM" and event.subclass:
                handlers += self._handlers.get(event.subclass, [])
            for handler in handlers:
                try:
                    await handler(event)
                except Exception:
                    self.handler_failures += 1
                    log.exception("ESL event handler %r failed on %s", handler, event.name)
