"""The incomplete gamma and digamma functions against mpmath at high precision."""

from __future__ import annotations

import math

import mpmath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callmesh.wfm.special import digamma, log_gamma_p, log_gamma_p_ratio, log_kummer_g

# mpmath's reference is itself slow or fails to converge for large non-integer shapes, so
# generated shapes stay below 1000 and large ones are checked at fixed integer points below.
shapes = st.floats(min_value=1e-3, max_value=1000.0)
factors = st.floats(min_value=1e-3, max_value=3.0)  # x = factor * a: both regions, and the seam


def _log_p_mp(a: float, x: float) -> float:
    """log P(a, x) in 40 digits; via the upper function Q above the mean (faster there)."""
    with mpmath.workdps(40):
        if x > a:
            q = mpmath.gammainc(a, x, mpmath.inf, regularized=True)
            return float(mpmath.log1p(-q))
        return float(mpmath.log(mpmath.gammainc(a, 0, x, regularized=True)))


@settings(max_examples=40)
@given(shapes, factors)
def test_log_gamma_p_matches_mpmath(a: float, factor: float) -> None:
    x = a * factor
    expected = _log_p_mp(a, x)
    # log P spans [-huge, 0]: compare with an absolute floor near 0 (P close to 1).
    assert log_gamma_p(a, x) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@settings(max_examples=40)
@given(shapes, factors, st.floats(min_value=0.05, max_value=1.0))
def test_ratio_matches_mpmath(a: float, factor: float, shrink: float) -> None:
    x_den = a * factor
    x_num = x_den * shrink
    expected = _log_p_mp(a, x_num) - _log_p_mp(a, x_den)
    assert log_gamma_p_ratio(a, x_num, x_den) == pytest.approx(expected, rel=1e-8, abs=1e-10)


@pytest.mark.parametrize("a", [1e4, 1e5, 1e6])
@pytest.mark.parametrize("factor", [0.5, 0.9, 0.99, 1.0, 1.01, 1.1, 2.0])
def test_large_shapes_match_mpmath(a: float, factor: float) -> None:
    """Thousands of agents times a long patience: s = nμ/θ reaches 1e5..1e6."""
    x = a * factor
    assert log_gamma_p(a, x) == pytest.approx(_log_p_mp(a, x), rel=1e-8, abs=1e-12)
    assert log_gamma_p_ratio(a, 0.97 * x, x) == pytest.approx(
        _log_p_mp(a, 0.97 * x) - _log_p_mp(a, x), rel=1e-7, abs=1e-10
    )


def test_kummer_series_is_the_scaled_lower_gamma() -> None:
    for a, x in ((0.5, 0.2), (3.0, 2.5), (250.0, 240.0)):
        with mpmath.workdps(40):
            expected = mpmath.log(mpmath.gammainc(a, 0, x) * mpmath.exp(x) * mpmath.power(x, -a))
        assert log_kummer_g(a, x) == pytest.approx(float(expected), rel=1e-12)


@pytest.mark.parametrize("x", [1e-3, 0.5, 1.0, 3.7, 10.0, 123.4, 1e6])
def test_digamma_matches_mpmath(x: float) -> None:
    assert digamma(x) == pytest.approx(float(mpmath.digamma(x)), rel=1e-13, abs=1e-13)


def test_edges_and_bad_input() -> None:
    assert log_gamma_p(2.0, 0.0) == -math.inf
    assert log_gamma_p_ratio(2.0, 0.0, 1.0) == -math.inf
    with pytest.raises(ValueError, match="shape a must be"):
        log_gamma_p(0.0, 1.0)
    with pytest.raises(ValueError, match="x must be"):
        log_gamma_p(1.0, -1.0)
    with pytest.raises(ValueError, match="denominator point must be > 0"):
        log_gamma_p_ratio(1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="digamma"):
        digamma(0.0)
