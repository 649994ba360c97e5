"""Run plugin code so that a crash, a hang or a wrong answer never costs a call.

Design (see docs/plugins/isolation.md):

* A synchronous hook cannot be pre-empted in Python. So a **vendor's synchronous hook runs on
  that plugin's own bounded thread pool** (its *lane*) and the caller waits at most the hook's
  budget: on overrun it stops waiting, counts a ``timeout`` and lets the fallback decide. The
  stuck thread is left behind; because the lane is bounded (``lane_size`` threads), a plugin
  that hangs every call can tie up at most its own lane: once the lane is full its calls are
  refused at once (``saturated``) instead of queueing, and other plugins are untouched.
* After ``trip_after`` consecutive failures the plugin's **circuit opens** for ``cooldown``
  seconds: its calls are skipped (``circuit-open``) without running, so a plugin that is
  down costs the hot path nothing. The first call after the cooldown is a trial.
* **Built-in plugins are trusted** not to hang (they are ours, pure and tested): they run
  inline, guarded only against exceptions, which keeps the routing path at direct-call speed.
* **Async hooks** (CRM lookups over HTTP, QA, notifications) run under
  :func:`asyncio.wait_for` with the same budget, trusted or not; a coroutine that blocks the
  event loop with synchronous I/O cannot be interrupted this way, which the test kit's
  conformance suite checks for by timing the hook.

Every failure is logged with the plugin's name (at most once per second per plugin, hook
and reason, with a count of the lines held back), added to the OpenTelemetry counter
``callmesh.plugin.failures`` (attributes ``plugin``, ``hook``, ``reason``) and to an
in-process :class:`PluginFailures` view that tests and ``callmesh plugins`` read.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from enum import StrEnum
from typing import Any, Final

from opentelemetry import metrics

__all__ = ["FAILED", "FailureReason", "Isolation", "PluginFailures"]

log = logging.getLogger("callmesh.plugins")
trace_log = logging.getLogger("callmesh.plugins.trace")


class FailureReason(StrEnum):
    """Why a plugin's answer was not used."""

    RAISED = "raised"
    """The hook raised an exception."""
    TIMEOUT = "timeout"
    """The hook overran its time budget."""
    WRONG_TYPE = "wrong-type"
    """The hook answered a value of the wrong type (or the wrong shape: sync vs async)."""
    INVALID = "invalid"
    """The answer had the right type but broke the contract (e.g. an agent that is not a
    candidate, a score outside 0..1)."""
    SATURATED = "saturated"
    """Every thread of the plugin's lane was still busy with earlier, overrun calls."""
    CIRCUIT_OPEN = "circuit-open"
    """Skipped: the plugin failed too often in a row and is cooling down."""


class _Failed:
    __slots__ = ()

    def __repr__(self) -> str:
        return "FAILED"


FAILED: Final = _Failed()
"""Returned by :meth:`Isolation.call` and :meth:`Isolation.acall` when the plugin failed."""

_meter = metrics.get_meter("callmesh.plugins")
_failure_counter = _meter.create_counter(
    "callmesh.plugin.failures",
    unit="{failure}",
    description="Plugin hook calls whose answer was not used, by plugin, hook and reason.",
)


class PluginFailures:
    """Counts failures per (plugin, hook, reason), logs them, and feeds the OTel counter."""

    def __init__(
        self, *, log_interval: float = 1.0, counter: metrics.Counter | None = None
    ) -> None:
        """Count failures; ``counter`` is the OTel counter to add to (default: the
        ``callmesh.plugin.failures`` counter of the global meter provider)."""
        self._counter = counter if counter is not None else _failure_counter
        self._counts: Counter[tuple[str, str, str]] = Counter()
        self._lock = threading.Lock()
        self._log_interval = log_interval
        self._last_logged: dict[tuple[str, str, str], float] = {}
        self._held_back: Counter[tuple[str, str, str]] = Counter()
        self._last: dict[tuple[str, str], tuple[FailureReason, str]] = {}

    def record(self, plugin: str, hook: str, reason: FailureReason, detail: str) -> None:
        """Count one failure and log it (rate-limited) with the plugin's name."""
        key = (plugin, hook, reason.value)
        now = time.monotonic()
        with self._lock:
            self._counts[key] += 1
            self._last[(plugin, hook)] = (reason, detail)
            last = self._last_logged.get(key)
            if last is not None and now - last < self._log_interval:
                self._held_back[key] += 1
                emit = False
            else:
                self._last_logged[key] = now
                held = self._held_back.pop(key, 0)
                emit = True
        self._counter.add(1, {"plugin": plugin, "hook": hook, "reason": reason.value})
        if emit:
            more = f" ({held} similar failures not logged)" if held else ""
            log.warning(
                "plugin %r failed in %s (%s): %s; the fallback decides%s",
                plugin,
                hook,
                reason.value,
                detail,
                more,
            )

    def last(self, plugin: str, hook: str) -> tuple[FailureReason, str] | None:
        """The reason and detail of the plugin's latest failure in ``hook``, if any: what a
        caller that just got FAILED tells its trace (calls of one hook come from one thread
        at a time: the router's)."""
        with self._lock:
            return self._last.get((plugin, hook))

    def count(
        self, plugin: str | None = None, hook: str | None = None, reason: str | None = None
    ) -> int:
        """How many failures match the given plugin, hook and reason (None matches any)."""
        with self._lock:
            return sum(
                n
                for (p, h, r), n in self._counts.items()
                if (plugin is None or p == plugin)
                and (hook is None or h == hook)
                and (reason is None or r == reason)
            )

    def snapshot(self) -> dict[tuple[str, str, str], int]:
        """A copy of every counter: (plugin, hook, reason) -> count."""
        with self._lock:
            return dict(self._counts)


_Work = tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]


class _Lane:
    """A plugin's bounded set of daemon threads for synchronous hooks.

    Daemon threads, not a ``ThreadPoolExecutor``: the executor joins its threads at exit, so
    one hung plugin would keep the worker from shutting down.
    """

    def __init__(self, plugin: str, size: int) -> None:
        self.plugin = plugin
        self.size = size
        self.in_flight = 0
        self.consecutive_failures = 0
        self.open_until = 0.0
        self._work: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def submit(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Future[Any]:
        """Queue ``fn(*args)``; the caller has reserved a slot (``in_flight``) for it."""
        if len(self._threads) < min(self.in_flight, self.size):
            thread = threading.Thread(
                target=self._run,
                name=f"callmesh-plugin-{self.plugin}-{len(self._threads)}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()
        future: Future[Any] = Future()
        self._work.put((future, fn, args))
        return future

    def _run(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

    def shutdown(self) -> None:
        """Let idle threads end; threads stuck in the plugin are abandoned (daemons)."""
        for _ in self._threads:
            self._work.put(None)


class Isolation:
    """Calls plugin code under a time budget, with per-plugin lanes and circuit breakers.

    Args:
        failures: where failures are counted.
        lane_size: threads per vendor plugin for synchronous hooks.
        trip_after: consecutive failures that open a plugin's circuit (0 disables it).
        cooldown: seconds a circuit stays open.
        trace: log every call (plugin, hook, duration, result) at DEBUG on
            ``callmesh.plugins.trace``; set by ``CALLMESH_TRACE_PLUGINS``.
        clock: monotonic seconds, for the circuit breaker.
    """

    def __init__(
        self,
        failures: PluginFailures,
        *,
        lane_size: int = 4,
        trip_after: int = 5,
        cooldown: float = 30.0,
        trace: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if lane_size < 1:
            raise ValueError(f"lane_size must be at least 1, got {lane_size}")
        self.failures = failures
        self.trace = trace
        self._lane_size = lane_size
        self._trip_after = trip_after
        self._cooldown = cooldown
        self._clock = clock
        self._lanes: dict[str, _Lane] = {}
        self._lock = threading.Lock()

    # -- bookkeeping -----------------------------------------------------------------------
    def _lane(self, plugin: str) -> _Lane:
        lane = self._lanes.get(plugin)
        if lane is None:
            with self._lock:
                lane = self._lanes.get(plugin)
                if lane is None:
                    lane = self._lanes[plugin] = _Lane(plugin, self._lane_size)
        return lane

    def is_open(self, plugin: str) -> bool:
        """Whether the plugin's circuit is open (its calls are being skipped)."""
        lane = self._lanes.get(plugin)
        return lane is not None and lane.open_until > self._clock()

    def _gate(self, plugin: str, hook: str) -> bool:
        lane = self._lanes.get(plugin)
        if lane is not None and lane.open_until and lane.open_until > self._clock():
            self.failures.record(plugin, hook, FailureReason.CIRCUIT_OPEN, "circuit open")
            return False
        return True

    def failed(self, plugin: str, hook: str, reason: FailureReason, detail: str) -> None:
        """Record a failure found by the caller (e.g. an invalid answer) and feed the breaker."""
        self.failures.record(plugin, hook, reason, detail)
        if reason is FailureReason.CIRCUIT_OPEN or not self._trip_after:
            return
        lane = self._lane(plugin)
        lane.consecutive_failures += 1
        if lane.consecutive_failures >= self._trip_after:
            lane.open_until = self._clock() + self._cooldown
            lane.consecutive_failures = 0
            log.error(
                "plugin %r failed %d times in a row; skipping it for %.0f s",
                plugin,
                self._trip_after,
                self._cooldown,
            )

    def succeeded(self, plugin: str) -> None:
        """Reset the plugin's run of consecutive failures."""
        lane = self._lanes.get(plugin)
        if lane is not None and lane.consecutive_failures:
            lane.consecutive_failures = 0

    def _trace(self, plugin: str, hook: str, started: float, result: object) -> None:
        took = (time.perf_counter() - started) * 1e6
        trace_log.debug("%s %s -> %r (%.1f us)", plugin, hook, result, took)

    # -- synchronous hooks -----------------------------------------------------------------
    def call(
        self,
        plugin: str,
        hook: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        budget: float,
        *,
        trusted: bool,
        inline: bool = False,
    ) -> Any:
        """Call ``fn(*args)``; its result, or :data:`FAILED` (already logged and counted).

        Trusted (built-in) code runs inline; anything else runs on the plugin's lane and is
        abandoned after ``budget`` seconds, unless ``inline`` (the platform listed the plugin
        in ``CALLMESH_INLINE_PLUGINS``): then it runs in the caller's thread, an answer that
        took longer than ``budget`` is discarded and counted as a timeout, but a hang is not
        cut short.
        """
        if not self._gate(plugin, hook):
            return FAILED
        started = time.perf_counter() if self.trace else 0.0
        if inline and not trusted:
            t0 = time.perf_counter()
            try:
                result = fn(*args)
            except Exception as exc:
                self.failed(plugin, hook, FailureReason.RAISED, f"{type(exc).__name__}: {exc}")
                return FAILED
            took = time.perf_counter() - t0
            if took > budget:
                if inspect.iscoroutine(result):
                    result.close()
                self.failed(
                    plugin,
                    hook,
                    FailureReason.TIMEOUT,
                    f"took {took * 1e3:.1f} ms inline (budget {budget * 1e3:g} ms)",
                )
                return FAILED
        elif trusted:
            try:
                result = fn(*args)
            except TimeoutError as exc:  # e.g. a gRPC deadline in the remote adapter
                self.failed(plugin, hook, FailureReason.TIMEOUT, str(exc) or "timed out")
                return FAILED
            except Exception as exc:
                self.failed(plugin, hook, FailureReason.RAISED, f"{type(exc).__name__}: {exc}")
                return FAILED
        else:
            result = self._call_on_lane(plugin, hook, fn, args, budget)
            if result is FAILED:
                return FAILED
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            self.failed(plugin, hook, FailureReason.WRONG_TYPE, "returned an awaitable")
            return FAILED
        if self.trace:
            self._trace(plugin, hook, started, result)
        return result

    def _call_on_lane(
        self,
        plugin: str,
        hook: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        budget: float,
    ) -> Any:
        lane = self._lane(plugin)
        with self._lock:
            if lane.in_flight >= lane.size:
                saturated = True
            else:
                saturated = False
                lane.in_flight += 1
        if saturated:
            self.failed(plugin, hook, FailureReason.SATURATED, f"all {lane.size} lane threads busy")
            return FAILED
        future = lane.submit(fn, args)
        future.add_done_callback(lambda _f: self._release(lane))
        try:
            return future.result(timeout=budget)
        except TimeoutError as exc:
            if future.done():  # the plugin itself raised TimeoutError
                self.failed(plugin, hook, FailureReason.RAISED, f"TimeoutError: {exc}")
            else:
                future.cancel()
                self.failed(plugin, hook, FailureReason.TIMEOUT, f"overran {budget * 1e3:g} ms")
            return FAILED
        except Exception as exc:
            self.failed(plugin, hook, FailureReason.RAISED, f"{type(exc).__name__}: {exc}")
            return FAILED

    def _release(self, lane: _Lane) -> None:
        with self._lock:
            lane.in_flight -= 1

    def fire(
        self,
        plugin: str,
        hook: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        *,
        trusted: bool,
    ) -> None:
        """Call ``fn(*args)`` without waiting for it (observers); failures are still counted."""
        if not self._gate(plugin, hook):
            return
        if trusted:
            try:
                fn(*args)
            except Exception as exc:
                self.failed(plugin, hook, FailureReason.RAISED, f"{type(exc).__name__}: {exc}")
            return
        lane = self._lane(plugin)
        with self._lock:
            if lane.in_flight >= lane.size:
                full = True
            else:
                full = False
                lane.in_flight += 1
        if full:
            self.failed(plugin, hook, FailureReason.SATURATED, f"all {lane.size} threads busy")
            return
        future = lane.submit(fn, args)

        def done(f: Future[Any]) -> None:
            self._release(lane)
            exc = f.exception()
            if exc is not None:
                self.failed(plugin, hook, FailureReason.RAISED, f"{type(exc).__name__}: {exc}")

        future.add_done_callback(done)

    # -- asynchronous hooks ----------------------------------------------------------------
    async def acall(
        self,
        plugin: str,
        hook: str,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        budget: float,
    ) -> Any:
        """Await ``fn(*args)`` for at most ``budget`` seconds; its result, or :data:`FAILED`."""
        if not self._gate(plugin, hook):
            return FAILED
        started = time.perf_counter() if self.trace else 0.0
        try:
            awaitable = fn(*args)
            if not inspect.isawaitable(awaitable):
                self.failed(
                    plugin, hook, FailureReason.WRONG_TYPE, "a sync function for an async hook"
                )
                return FAILED
            result = await asyncio.wait_for(awaitable, budget)
        except TimeoutError:
            self.failed(plugin, hook, FailureReason.TIMEOUT, f"overran {budget:g} s")
            return FAILED
        except Exception as exc:
            self.failed(plugin, hook, FailureReason.RAISED, f"{type(exc).__name__}: {exc}")
            return FAILED
        if self.trace:
            self._trace(plugin, hook, started, result)
        return result

    def close(self) -> None:
        """Stop accepting work; threads stuck in a hung plugin are abandoned, not joined."""
        with self._lock:
            lanes = list(self._lanes.values())
            self._lanes.clear()
        for lane in lanes:
            lane.shutdown()
