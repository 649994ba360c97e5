"""What the pacer needs to know about the target queue's agents, from state counts.

The router reports, per queue, how many agents are in each state. The predictive pacer
also wants to know *when* busy agents become free. Wrap-up has a fixed length per queue,
so agents leave wrap-up in the order they entered it: :class:`WrapUpTracker` timestamps
each rise of the WrapUp count and drops the oldest stamps on each fall, which gives the
seconds left of every wrap-up (exact while every agent of the queue has the same wrap-up
time).
"""

from __future__ import annotations

from collections import deque

from callmesh.dialer.campaign import AgentSnapshot

__all__ = ["WrapUpTracker"]


class WrapUpTracker:
    """Seconds of wrap-up left per agent, from successive WrapUp counts of one queue."""

    def __init__(self, wrap_seconds: float) -> None:
        if wrap_seconds < 0:
            raise ValueError(f"wrap_seconds={wrap_seconds}: use 0 or more")
        self.wrap_seconds = wrap_seconds
        self._started: deque[float] = deque()

    def observe(self, wrapping: int, now: float) -> None:
        """The queue has ``wrapping`` agents in WrapUp at ``now``."""
        if wrapping < 0:
            raise ValueError(f"wrapping={wrapping}: a count of agents is 0 or more")
        while len(self._started) > wrapping:
            self._started.popleft()
        while len(self._started) < wrapping:
            self._started.append(now)

    def remaining(self, now: float) -> tuple[float, ...]:
        """Seconds until each wrapping agent is free (oldest first, never below 0)."""
        return tuple(max(0.0, start + self.wrap_seconds - now) for start in self._started)

    def snapshot(self, free: int, now: float) -> AgentSnapshot:
        """The pacer's view: ``free`` agents now and the wrap-ups about to end."""
        return AgentSnapshot(free=free, freeing=self.remaining(now))
