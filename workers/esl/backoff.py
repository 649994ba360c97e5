"""Reconnect delays: capped exponential backoff with full jitter. Pure: no clock, no I/O.

``delay = rng.uniform(0, min(cap, base * 2**attempt))`` (the "full jitter" of the AWS
architecture blog), with the caller's own :class:`random.Random` so tests are repeatable and
nothing touches the global random state.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays between reconnect attempts; :meth:`reset` after a successful connection."""

    base: float = 0.1
    cap: float = 10.0
    rng: random.Random = field(default_factory=random.Random)
    """Own generator (never the global one). Unseeded by default so replicas reconnecting
    after the same FreeSWITCH restart spread out; pass a seeded one for repeatable tests."""
    attempt: int = 0

    def __post_init__(self) -> None:
        if self.base <= 0:
            raise ValueError(f"backoff base={self.base}: use a positive number of seconds")
        if self.cap < self.base:
            raise ValueError(f"backoff cap={self.cap} must be >= base={self.base}")

    def next_delay(self) -> float:
        """The delay before the next attempt (and count the attempt)."""
        ceiling = min(self.cap, self.base * 2 ** min(self.attempt, 62))
        self.attempt += 1
        return self.rng.uniform(0.0, ceiling)

    def reset(self) -> None:
        """Start again from ``base`` (call it once connected)."""
        self.attempt = 0
