"""Random durations of a workload: handle times, caller patience, how fast agents answer.

Each distribution is a small pydantic model, chosen in YAML by its ``type``::

    handleTime: {type: lognormal, mean: 300, sd: 120}
    patience:   {type: exponential, mean: 90}
    answer:     {type: constant, value: 2}
    handleTime: {type: empirical, values: [120, 180, 240, 900], weights: [4, 3, 2, 1]}

Parameters are given in seconds, as a mean and a standard deviation where that makes sense
(what a contact-center report shows), and checked when the workload is read: an impossible
distribution (a negative mean, a lognormal with ``sd <= 0``, empirical weights that do not
match the values) is rejected with the field named, before any simulation starts.

:meth:`Distribution.sampler` compiles a distribution into a function of a
``random.Random`` (the replication's own generator: never the global one), bound once so
drawing a value costs one call: a callable of :mod:`callmesh.sim.draws`, a module the
production build compiles.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from itertools import accumulate
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from callmesh.sim.draws import ChoiceDraw, ConstantDraw, ExponentialDraw, LognormalDraw, UniformDraw

__all__ = [
    "Constant",
    "Distribution",
    "Empirical",
    "Exponential",
    "Lognormal",
    "Sampler",
    "Uniform",
]

#: Draws one value (seconds) from the replication's generator.
Sampler = Callable[[random.Random], float]

_Seconds = Annotated[float, Field(allow_inf_nan=False)]


class _Base(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    @property
    def mean_value(self) -> float:
        """The distribution's mean in seconds (used for Erlang comparisons)."""
        raise NotImplementedError

    def sampler(self) -> Sampler:
        """A function drawing one value from a ``random.Random``."""
        raise NotImplementedError


class Exponential(_Base):
    """Exponential with the given mean (memoryless: the M in M/M/c and M/M/c+M)."""

    type: Literal["exponential"] = Field(description="exponential.")
    mean: _Seconds = Field(gt=0, description="Mean in seconds (> 0).")

    @property
    def mean_value(self) -> float:
        """The mean."""
        return self.mean

    def sampler(self) -> Sampler:
        """``rng.expovariate(1 / mean)``, its formula inlined (the same numbers, one call less)."""
        return ExponentialDraw(self.mean)


class Lognormal(_Base):
    """Lognormal with the given mean and standard deviation (typical of talk times)."""

    type: Literal["lognormal"] = Field(description="lognormal.")
    mean: _Seconds = Field(gt=0, description="Mean in seconds (> 0).")
    sd: _Seconds = Field(gt=0, description="Standard deviation in seconds (> 0).")

    @property
    def mean_value(self) -> float:
        """The mean."""
        return self.mean

    def sampler(self) -> Sampler:
        """``rng.lognormvariate(mu, sigma)`` with mu, sigma matching the mean and sd."""
        sigma2 = math.log1p((self.sd / self.mean) ** 2)
        mu = math.log(self.mean) - sigma2 / 2.0
        return LognormalDraw(mu, math.sqrt(sigma2))


class Constant(_Base):
    """Always the same value (e.g. a fixed ring time before an agent answers)."""

    type: Literal["constant"] = Field(description="constant.")
    value: _Seconds = Field(ge=0, description="The value in seconds (>= 0).")

    @property
    def mean_value(self) -> float:
        """The value."""
        return self.value

    def sampler(self) -> Sampler:
        """Returns the value without drawing."""
        return ConstantDraw(self.value)


class Uniform(_Base):
    """Uniform between ``low`` and ``high``."""

    type: Literal["uniform"] = Field(description="uniform.")
    low: _Seconds = Field(ge=0, description="Smallest value in seconds (>= 0).")
    high: _Seconds = Field(description="Largest value in seconds (> low).")

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.high <= self.low:
            raise ValueError(f"high ({self.high}) must be greater than low ({self.low})")
        return self

    @property
    def mean_value(self) -> float:
        """The midpoint."""
        return (self.low + self.high) / 2.0

    def sampler(self) -> Sampler:
        """``rng.uniform(low, high)``."""
        return UniformDraw(self.low, self.high)


class Empirical(_Base):
    """Values observed in the field (e.g. last month's talk times), drawn with replacement."""

    type: Literal["empirical"] = Field(description="empirical.")
    values: Annotated[list[Annotated[_Seconds, Field(ge=0)]], Field(min_length=1)] = Field(
        max_length=100_000, description="Observed values in seconds (>= 0)."
    )
    weights: list[Annotated[float, Field(gt=0, allow_inf_nan=False)]] | None = Field(
        default=None,
        max_length=100_000,
        description="Relative weight of each value (> 0), same length as values; equal if unset.",
    )

    @model_validator(mode="after")
    def _same_length(self) -> Empirical:
        if self.weights is not None and len(self.weights) != len(self.values):
            raise ValueError(
                f"weights has {len(self.weights)} entries but values has {len(self.values)}:"
                " give one weight per value, or none"
            )
        return self

    @property
    def mean_value(self) -> float:
        """The (weighted) mean of the values."""
        if self.weights is None:
            return sum(self.values) / len(self.values)
        return sum(v * w for v, w in zip(self.values, self.weights, strict=True)) / sum(
            self.weights
        )

    def sampler(self) -> Sampler:
        """``rng.choice`` over the values, or ``rng.choices`` with cumulative weights."""
        cum = None if self.weights is None else tuple(accumulate(self.weights))
        return ChoiceDraw(tuple(self.values), cum)


Distribution = Annotated[
    Exponential | Lognormal | Constant | Uniform | Empirical, Field(discriminator="type")
]
"""Any distribution, chosen by its ``type``."""
