"""Confidence intervals over independent replications.

Each replication of a simulation is one independent sample of every KPI (its own seed, its
own generator). A KPI's estimate is the mean over the replications where it is defined (an
interval with no answered contact has no ASA), with a two-sided 95% Student-t interval:
``mean ± t(0.975, n-1) · s / √n``. With a single replication no interval can be given and
``half_width`` is None.

The t quantiles come from a table for small degrees of freedom and from the Cornish-Fisher
expansion of the normal quantile above it (error below 1e-5 from 30 degrees of freedom), so
the core needs nothing beyond the standard library.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import NormalDist

__all__ = ["Estimate", "estimate", "t_quantile"]

# t(0.975, df) for df = 1..30.
_T975 = (
    12.706204736174698,
    4.302652729749464,
    3.182446305284263,
    2.7764451051977987,
    2.570581835636314,
    2.4469118511449692,
    2.3646242515927844,
    2.306004135204166,
    2.2621571628540993,
    2.2281388519649385,
    2.200985160082949,
    2.1788128296634177,
    2.1603686564610127,
    2.1447866879169273,
    2.131449545559323,
    2.1199052992210112,
    2.1098155778331806,
    2.10092204024096,
    2.0930240544083096,
    2.0859634472658364,
    2.079613844727662,
    2.0738730679040147,
    2.0686576104190406,
    2.0638985616280205,
    2.059538552753294,
    2.055529438642871,
    2.0518305164802833,
    2.048407141795244,
    2.045229642132703,
    2.0422724563012373,
)


def t_quantile(df: int, p: float = 0.975) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (``df >= 1``).

    Exact (tabulated) for ``p = 0.975`` and ``df <= 30``; otherwise the Cornish-Fisher
    expansion around the normal quantile (Abramowitz & Stegun 26.7.5).
    """
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    if p == 0.975 and df <= len(_T975):
        return _T975[df - 1]
    z = NormalDist().inv_cdf(p)
    z2 = z * z
    g1 = (z2 + 1) * z / 4
    g2 = ((5 * z2 + 16) * z2 + 3) * z / 96
    g3 = (((3 * z2 + 19) * z2 + 17) * z2 - 15) * z / 384
    g4 = ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) * z / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


@dataclass(frozen=True, slots=True)
class Estimate:
    """A KPI over replications: mean, 95% half-width, and how many replications defined it.

    Attributes:
        mean: the mean over the ``n`` replications where the KPI is defined, or None.
        half_width: half-width of the 95% interval; None when ``n < 2``.
        n: replications that defined the KPI.
    """

    mean: float | None
    half_width: float | None
    n: int

    @property
    def low(self) -> float | None:
        """Lower end of the 95% interval."""
        if self.mean is None or self.half_width is None:
            return None
        return self.mean - self.half_width

    @property
    def high(self) -> float | None:
        """Upper end of the 95% interval."""
        if self.mean is None or self.half_width is None:
            return None
        return self.mean + self.half_width

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the 95% interval (False when there is none)."""
        low, high = self.low, self.high
        return low is not None and high is not None and low <= value <= high

    def as_dict(self, digits: int = 6) -> dict[str, float | int | None]:
        """``{"mean", "halfWidth", "low", "high", "n"}`` for the JSON output (None if unknown)."""

        def r(x: float | None) -> float | None:
            return None if x is None else round(x, digits)

        return {
            "mean": r(self.mean),
            "halfWidth": r(self.half_width),
            "low": r(self.low),
            "high": r(self.high),
            "n": self.n,
        }


def estimate(values: Iterable[float | None]) -> Estimate:
    """Mean and 95% Student-t half-width of the defined (non-None) values."""
    xs = [v for v in values if v is not None]
    n = len(xs)
    if n == 0:
        return Estimate(None, None, 0)
    mean = math.fsum(xs) / n
    if n == 1:
        return Estimate(mean, None, 1)
    var = math.fsum((x - mean) ** 2 for x in xs) / (n - 1)
    return Estimate(mean, t_quantile(n - 1) * math.sqrt(var / n), n)
