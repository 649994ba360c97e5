"""The samplers of :mod:`callmesh.sim.distributions`: callables drawing one value.

A module of its own so that the production build compiles it with the rest of the
per-contact path (setup.py): the simulator draws a handle time for every contact, and a
patience for every caller who may hang up, and a compiled draw is a C call where a Python
closure is an interpreter frame. Each draw is the formula of the ``random.Random`` method
named in its docstring, on the replication's own generator: the same numbers, pure or
compiled.
"""

from __future__ import annotations

import math
import random

__all__ = ["ChoiceDraw", "ConstantDraw", "ExponentialDraw", "LognormalDraw", "UniformDraw"]


class ExponentialDraw:
    """``rng.expovariate(1 / mean)``, its formula inlined (the same numbers, one call less)."""

    def __init__(self, mean: float) -> None:
        self.rate = 1.0 / mean

    def __call__(self, rng: random.Random) -> float:
        return -math.log(1.0 - rng.random()) / self.rate  # compiled: C's log()


class LognormalDraw:
    """``rng.lognormvariate(mu, sigma)``."""

    def __init__(self, mu: float, sigma: float) -> None:
        self.mu = mu
        self.sigma = sigma

    def __call__(self, rng: random.Random) -> float:
        return rng.lognormvariate(self.mu, self.sigma)


class ConstantDraw:
    """Always ``value``, without drawing."""

    def __init__(self, value: float) -> None:
        self.value = value

    def __call__(self, rng: random.Random) -> float:
        return self.value


class UniformDraw:
    """``rng.uniform(low, high)``."""

    def __init__(self, low: float, high: float) -> None:
        self.low = low
        self.high = high

    def __call__(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)


class ChoiceDraw:
    """``rng.choice(values)``, or ``rng.choices(values, cum_weights=cum)[0]`` when weighted."""

    def __init__(self, values: tuple[float, ...], cum: tuple[float, ...] | None) -> None:
        self.values = values
        self.cum = cum

    def __call__(self, rng: random.Random) -> float:
        if self.cum is None:
            return rng.choice(self.values)
        return rng.choices(self.values, cum_weights=self.cum)[0]
