"""Confidence intervals and samplers: the numbers every KPI is built from."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from statistics import fmean, pstdev

import pytest

from callmesh.sim.distributions import Constant, Empirical, Exponential, Lognormal, Uniform
from callmesh.sim.stats import estimate, t_quantile


@pytest.mark.parametrize(
    ("df", "expected"),
    [(1, 12.7062047), (4, 2.7764451), (30, 2.0422725), (31, 2.0395134), (60, 2.0002978),
     (120, 1.9799304), (1000, 1.9623391)],
)  # fmt: skip
def test_t_quantiles_match_published_values(df: int, expected: float) -> None:
    assert t_quantile(df) == pytest.approx(expected, abs=2e-5)


def test_t_quantile_rejects_zero_df() -> None:
    with pytest.raises(ValueError, match="df must be >= 1"):
        t_quantile(0)


def test_estimate_of_known_values() -> None:
    e = estimate([1.0, 2.0, 3.0, None])
    assert e.n == 3
    assert e.mean == 2.0
    assert e.half_width == pytest.approx(t_quantile(2) * 1.0 / math.sqrt(3))
    assert e.contains(2.0) and not e.contains(10.0)
    assert estimate([]).mean is None and estimate([None]).n == 0
    one = estimate([5.0])
    assert one.mean == 5.0 and one.half_width is None and not one.contains(5.0)
    assert one.as_dict() == {"mean": 5.0, "halfWidth": None, "low": None, "high": None, "n": 1}


def test_interval_covers_the_true_mean_about_95_percent_of_the_time() -> None:
    rng = random.Random(7)
    trials = 4000
    covered = sum(
        estimate([rng.gauss(10.0, 3.0) for _ in range(5)]).contains(10.0) for _ in range(trials)
    )
    # Binomial(4000, 0.95) has sd 13.8: 5 sd either side.
    assert abs(covered - 0.95 * trials) < 70


@pytest.mark.parametrize(
    ("dist", "mean", "sd"),
    [
        (Exponential(type="exponential", mean=180.0), 180.0, 180.0),
        (Lognormal(type="lognormal", mean=300.0, sd=120.0), 300.0, 120.0),
        (Uniform(type="uniform", low=2.0, high=8.0), 5.0, 6.0 / math.sqrt(12)),
        (Constant(type="constant", value=3.0), 3.0, 0.0),
        (Empirical(type="empirical", values=[10.0, 20.0, 60.0]), 30.0, pstdev([10, 20, 60])),
    ],
)
def test_samplers_have_the_declared_mean_and_spread(dist: object, mean: float, sd: float) -> None:
    assert dist.mean_value == pytest.approx(mean)  # type: ignore[attr-defined]
    draw = dist.sampler()  # type: ignore[attr-defined]
    rng = random.Random(11)
    n = 40_000
    xs = [draw(rng) for _ in range(n)]
    assert min(xs) >= 0
    # The sample mean is within 5 standard errors (plus rounding for the constant).
    assert abs(fmean(xs) - mean) <= 5 * sd / math.sqrt(n) + 1e-9
    if sd:
        assert pstdev(xs) == pytest.approx(sd, rel=0.05)


def test_weighted_empirical_follows_the_weights() -> None:
    dist = Empirical(type="empirical", values=[1.0, 2.0], weights=[3.0, 1.0])
    assert dist.mean_value == pytest.approx(1.25)
    draw = dist.sampler()
    rng = random.Random(3)
    share = sum(draw(rng) == 1.0 for _ in range(20_000)) / 20_000
    assert share == pytest.approx(0.75, abs=0.02)


def test_samplers_use_only_the_generator_they_are_given() -> None:
    draw = Lognormal(type="lognormal", mean=60.0, sd=30.0).sampler()
    a = [draw(random.Random(5)) for _ in range(3)]
    random.seed(999)  # the global generator must not matter
    b = [draw(random.Random(5)) for _ in range(3)]
    assert a == b


@pytest.mark.parametrize(
    ("dist", "method"),
    [
        (Exponential(type="exponential", mean=180.0), lambda r: r.expovariate(1 / 180.0)),
        (Lognormal(type="lognormal", mean=300.0, sd=120.0), None),
        (Uniform(type="uniform", low=2.0, high=8.0), lambda r: r.uniform(2.0, 8.0)),
        (Constant(type="constant", value=3.0), lambda r: 3.0),
        (Empirical(type="empirical", values=[10.0, 20.0]), lambda r: r.choice((10.0, 20.0))),
        (
            Empirical(type="empirical", values=[1.0, 2.0], weights=[3.0, 1.0]),
            lambda r: r.choices((1.0, 2.0), cum_weights=(3.0, 4.0))[0],
        ),
    ],
)
def test_samplers_draw_what_the_random_method_draws(
    dist: object, method: Callable[[random.Random], float] | None
) -> None:
    """Each sampler is its random.Random method's formula (compiled, the same numbers)."""
    if method is None:  # lognormal: mu and sigma from the mean and sd
        sigma2 = math.log1p((120.0 / 300.0) ** 2)
        mu, sigma = math.log(300.0) - sigma2 / 2, math.sqrt(sigma2)
        method = lambda r: r.lognormvariate(mu, sigma)  # noqa: E731
    draw = dist.sampler()  # type: ignore[attr-defined]
    ours, theirs = random.Random(21), random.Random(21)
    assert [draw(ours) for _ in range(200)] == [method(theirs) for _ in range(200)]
