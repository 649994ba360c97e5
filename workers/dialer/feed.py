"""The target queues' agents, followed through the router's ``WatchQueues`` stream.

Each snapshot gives a queue's agents by state: Available agents are the pacer's free
agents, and the WrapUp count feeds a :class:`~callmesh.dialer.agents.WrapUpTracker` (wrap-up
has the queue's fixed length, so the order agents entered it is the order they leave). A
broken stream is reopened with backoff; while the router is unreachable the feed reports
no free agent, so nothing is dialled for agents that may not be there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable

import grpc
import grpc.aio
from callmesh.v1 import router_pb2, router_pb2_grpc
from callmesh.workers.esl.backoff import Backoff

from callmesh.dialer.agents import WrapUpTracker
from callmesh.dialer.campaign import AgentSnapshot

__all__ = ["RouterAgentFeed"]

log = logging.getLogger("callmesh.workers.dialer.feed")


class RouterAgentFeed:
    """An :class:`~callmesh.workers.dialer.worker.AgentFeed` fed by ``WatchQueues``."""

    def __init__(
        self,
        address: str,
        wrap_seconds: dict[str, float],
        *,
        interval: float = 0.25,
        clock: Callable[[], float] = time.time,
        on_update: Callable[[], None] | None = None,
    ) -> None:
        self.address = address
        self.interval = interval
        self.clock = clock
        self.on_update = on_update
        self._trackers = {q: WrapUpTracker(w) for q, w in wrap_seconds.items()}
        self._free: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self.connected = False
        self.snapshots = 0

    def queues(self) -> Iterable[str]:
        """The queues followed."""
        return self._trackers.keys()

    def snapshot(self, queue: str, now: float) -> AgentSnapshot:
        """Free agents now and the wrap-ups about to end (nobody while disconnected)."""
        tracker = self._trackers.get(queue)
        if tracker is None or not self.connected:
            return AgentSnapshot(free=0)
        return tracker.snapshot(self._free.get(queue, 0), now)

    def apply(self, message: router_pb2.WatchQueuesResponse) -> None:
        """Take one ``WatchQueues`` snapshot."""
        now = self.clock()
        for kpi in message.queues:
            tracker = self._trackers.get(kpi.queue)
            if tracker is None:
                continue
            states = {c.state: c.count for c in kpi.agents}
            self._free[kpi.queue] = states.get(router_pb2.AGENT_STATE_AVAILABLE, 0)
            tracker.observe(states.get(router_pb2.AGENT_STATE_WRAP_UP, 0), now)
        self.snapshots += 1
        if self.on_update is not None:
            self.on_update()

    async def start(self) -> None:
        """Follow the stream in the background (reconnecting)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="dialer-agent-feed")

    async def stop(self) -> None:
        """Stop following."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        backoff = Backoff()
        while True:
            try:
                async with grpc.aio.insecure_channel(self.address) as channel:
                    stub = router_pb2_grpc.RouterServiceStub(channel)
                    request = router_pb2.WatchQueuesRequest(
                        queues=sorted(self._trackers), interval_seconds=self.interval
                    )
                    async for message in stub.WatchQueues(request):
                        self.connected = True
                        backoff.reset()
                        self.apply(message)
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                log.warning("router WatchQueues at %s: %s", self.address, exc.code().name)
            self.connected = False
            await asyncio.sleep(backoff.next_delay())
