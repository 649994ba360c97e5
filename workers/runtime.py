"""The workers' event loop: uvloop where it is installed, asyncio's own otherwise.

Every worker is one asyncio process whose CPU goes to many small socket reads and writes
(an ESL connection per call, gRPC streams per contact and agent). uvloop runs the loop and
its transports in C (libuv): measured on callcontrol, 6.0-6.7 ms of worker CPU per call on
asyncio's loop and 5.5 ms on uvloop, same run (docs/performance.md). It is a dependency on
Linux and macOS; ``--event-loop asyncio`` (or ``CALLMESH_EVENT_LOOP=asyncio``) keeps the
standard loop, e.g. to rule the loop out while chasing a problem.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from enum import StrEnum
from typing import Any, TypeVar

__all__ = ["EventLoop", "loop_factory", "run"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")


class EventLoop(StrEnum):
    """Which event loop a worker runs on."""

    AUTO = "auto"
    """uvloop if it can be imported, else asyncio's."""
    UVLOOP = "uvloop"
    """uvloop; an error when it is not installed."""
    ASYNCIO = "asyncio"
    """The standard library's loop."""


def loop_factory(
    choice: EventLoop | str = EventLoop.AUTO,
) -> Callable[[], asyncio.AbstractEventLoop]:
    """The constructor of the loop ``choice`` names.

    Raises:
        ValueError: an unknown name, or ``uvloop`` asked for where it is not installed.
    """
    try:
        choice = EventLoop(choice)
    except ValueError:
        names = ", ".join(e.value for e in EventLoop)
        raise ValueError(f"event loop {choice!r} is not one of {names}") from None
    if choice is EventLoop.ASYNCIO:
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError:
        if choice is EventLoop.UVLOOP:
            raise ValueError(
                "event loop 'uvloop' asked for, but uvloop is not installed:"
                " pip install uvloop, or use --event-loop asyncio"
            ) from None
        return asyncio.new_event_loop
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, _T], factory: Callable[[], asyncio.AbstractEventLoop]) -> _T:
    """Run ``main`` to completion on a new loop from ``factory`` (``asyncio.run``'s
    semantics: the loop's async generators and default executor are shut down after)."""
    with asyncio.Runner(loop_factory=factory) as runner:
        log.info("event loop: %s", type(runner.get_loop()).__module__.partition(".")[0])
        return runner.run(main)
