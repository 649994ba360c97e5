"""Special functions for the Erlang formulas, computed in log space so nothing overflows.

Only the standard library is used (``math.lgamma``, ``math.log1p``): the regularized lower
incomplete gamma function ``P(a, x) = γ(a, x) / Γ(a)`` by its power series when
``x < a + 1`` and by the Legendre continued fraction for ``Q = 1 - P`` otherwise (the split
of Numerical Recipes §6.2, with Lentz's algorithm), and the digamma function by recurrence
plus its asymptotic series.

The series is written in the *Kummer-scaled* form ``g(a, x) = γ(a, x) e^x x^-a``
``= Σ_k x^k / (a (a+1) ... (a+k))``, a sum of positive terms; ratios of two ``P`` values with
the same ``a`` (what the Erlang A waiting-time distribution needs) are then formed without
``lgamma``, so they keep full precision even when ``a`` is in the millions.
"""

from __future__ import annotations

import math

__all__ = ["digamma", "log_gamma_p", "log_gamma_p_ratio", "log_kummer_g"]

_EPS = 1e-17
_TINY = 1e-300
_MAX_ITERATIONS = 50_000_000


def _check(a: float, x: float) -> None:
    if not (a > 0.0 and math.isfinite(a)):
        raise ValueError(f"incomplete gamma: shape a must be a finite number > 0, got {a!r}")
    if not (x >= 0.0 and math.isfinite(x)):
        raise ValueError(f"incomplete gamma: x must be a finite number >= 0, got {x!r}")


def log_kummer_g(a: float, x: float) -> float:
    """``log g(a, x)`` where ``g(a, x) = Σ_{k>=0} x^k / (a (a+1) ... (a+k)) = γ(a,x) e^x x^-a``.

    Summed term by term (all terms positive); meant for ``x < a + 1``, where the terms fall
    at least as fast as ``x / (a + 1)`` per step.
    """
    _check(a, x)
    term = 1.0 / a
    total = term
    k = 0
    while True:
        k += 1
        term *= x / (a + k)
        total += term
        if term <= total * _EPS:
            return math.log(total)
        if k > _MAX_ITERATIONS:  # pragma: no cover - the ratio x/(a+k) -> 0 guarantees an end
            raise ArithmeticError(f"incomplete gamma series did not converge (a={a}, x={x})")


def _log_gamma_q_cf(a: float, x: float) -> float:
    """``log Q(a, x)`` by the continued fraction (modified Lentz), for ``x >= a + 1``."""
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    i = 0
    while True:
        i += 1
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < _TINY:
            d = _TINY
        c = b + an / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) <= 1e-16:
            break
        if i > _MAX_ITERATIONS:  # pragma: no cover - converges in O(sqrt(a)) steps
            raise ArithmeticError(f"incomplete gamma fraction did not converge (a={a}, x={x})")
    return -x + a * math.log(x) - math.lgamma(a) + math.log(h)


def log_gamma_p(a: float, x: float) -> float:
    """``log P(a, x)``, the log of the regularized lower incomplete gamma function.

    ``P(a, x) = γ(a, x) / Γ(a)`` is the probability that a Gamma(a, 1) variable is at most
    ``x``. Returns ``-inf`` for ``x == 0``. Accurate both where ``P`` is tiny (series) and
    where it is close to one (``log1p(-Q)`` with ``Q`` from the continued fraction).
    """
    _check(a, x)
    if x == 0.0:
        return -math.inf
    if x < a + 1.0:
        return log_kummer_g(a, x) - x + a * math.log(x) - math.lgamma(a)
    q = math.exp(_log_gamma_q_cf(a, x))
    return math.log1p(-q) if q < 1.0 else -math.inf  # pragma: no branch


def log_gamma_p_ratio(a: float, x_num: float, x_den: float) -> float:
    """``log(P(a, x_num) / P(a, x_den))`` for ``0 <= x_num``, ``0 < x_den``.

    When both points lie in the series region the ``Γ(a)`` normalisations cancel exactly,
    so the ratio stays accurate for very large ``a`` (long patience, many agents).
    """
    _check(a, x_num)
    _check(a, x_den)
    if x_den == 0.0:
        raise ValueError("incomplete gamma ratio: the denominator point must be > 0")
    if x_num == 0.0:
        return -math.inf
    if x_num < a + 1.0 and x_den < a + 1.0:
        return (
            log_kummer_g(a, x_num)
            - log_kummer_g(a, x_den)
            + (x_den - x_num)
            + a * math.log(x_num / x_den)
        )
    return log_gamma_p(a, x_num) - log_gamma_p(a, x_den)


def digamma(x: float) -> float:
    """The digamma function ``ψ(x) = d/dx log Γ(x)`` for ``x > 0``."""
    if not (x > 0.0 and math.isfinite(x)):
        raise ValueError(f"digamma: x must be a finite number > 0, got {x!r}")
    result = 0.0
    while x < 10.0:
        result -= 1.0 / x
        x += 1.0
    inv = 1.0 / x
    inv2 = inv * inv
    # Asymptotic series (Abramowitz & Stegun 6.3.18).
    series = inv2 * (
        1.0 / 12 - inv2 * (1.0 / 120 - inv2 * (1.0 / 252 - inv2 * (1.0 / 240 - inv2 / 132)))
    )
    return result + math.log(x) - 0.5 * inv - series
