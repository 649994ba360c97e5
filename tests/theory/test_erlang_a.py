"""Erlang A (M/M/n+M) against an independent high-precision computation and published output.

The reference here shares no formula with callmesh.wfm.erlang: it builds the birth-death
chain of Palm's model state by state in 50-digit mpmath, and for a caller who finds k
others waiting it writes the virtual wait V_k (time to reach an agent if the caller never
hung up) as a sum of independent exponentials with rates d_i = nμ + iθ, i = 0..k (the
queue ahead shrinks by a service completion or an abandon ahead). Its density is the
partial-fraction mixture Σ_i w_i d_i e^{-d_i v}, w_i = Π_{j≠i} d_j / (d_j - d_i); the
caller (patience τ ~ Exp(θ), independent of V_k) is answered when τ > V_k. Every KPI is
then a finite sum of exponential integrals.
"""

from __future__ import annotations

import math

import mpmath
import pytest

from callmesh.wfm.erlang import QueueLoad, erlang_a, erlang_c

_DPS = 60


def _reference(
    lam: float, aht: float, patience: float, n: int, t: float, u: float
) -> dict[str, float]:
    with mpmath.workdps(_DPS):
        lam_m = mpmath.mpf(lam)
        mu = 1 / mpmath.mpf(aht)
        theta = 1 / mpmath.mpf(patience)
        # Unnormalised stationary distribution of the number in system.
        probs = [mpmath.mpf(1)]
        j = 0
        while True:
            j += 1
            death = min(j, n) * mu + max(j - n, 0) * theta
            probs.append(probs[-1] * lam_m / death)
            if j > n and probs[-1] < mpmath.mpf(10) ** -40 * sum(probs):
                break
        norm = sum(probs)
        pi = [p / norm for p in probs]
        p_wait = sum(pi[n:])
        answered = sum(pi[:n])  # answered at once, with zero wait
        answered_within_t = sum(pi[:n])
        abandon = mpmath.mpf(0)
        abandon_within_u = mpmath.mpf(0)
        answered_wait = mpmath.mpf(0)  # E[W; answered]
        d: list[mpmath.mpf] = []
        w: list[mpmath.mpf] = []  # w_i = Π_{j≠i} d_j / (d_j - d_i), updated as k grows
        for k in range(len(pi) - n):
            new = n * mu + k * theta
            w = [wi * new / (new - di) for wi, di in zip(w, d, strict=True)]
            last = mpmath.mpf(1)
            for dj in d:
                last *= dj / (dj - new)
            d.append(new)
            w.append(last)
            p = pi[n + k]
            # P(τ > V) = E e^{-θV};  P(τ > V, V <= t);  E[V e^{-θV}];  P(τ <= u, τ < V).
            served = sum(w[i] * d[i] / (d[i] + theta) for i in range(k + 1))
            served_t = sum(
                w[i] * d[i] / (d[i] + theta) * (1 - mpmath.exp(-(d[i] + theta) * t))
                for i in range(k + 1)
            )
            wait_served = sum(w[i] * d[i] / (d[i] + theta) ** 2 for i in range(k + 1))
            ab_u = sum(
                w[i] * theta / (d[i] + theta) * (1 - mpmath.exp(-(d[i] + theta) * u))
                for i in range(k + 1)
            )
            answered += p * served
            answered_within_t += p * served_t
            abandon += p * (1 - served)
            abandon_within_u += p * ab_u
            answered_wait += p * wait_served
        return {
            "p_wait": float(p_wait),
            "p_abandon": float(abandon),
            "asa": float(answered_wait / answered),
            "service_level": float(answered_within_t),
            "service_level_answered": float(answered_within_t / answered),
            "service_level_excl_short_abandons": float(answered_within_t / (1 - abandon_within_u)),
            "occupancy": float(lam_m * answered / (n * mu)),
            "queue_length": float(sum((j - n) * pi[j] for j in range(n, len(pi)))),
        }


CASES = [
    # (arrival rate /s, AHT s, patience s, agents): 10 Erlangs under- and over-staffed,
    # impatient and patient callers, and a tiny system.
    (1 / 18, 180.0, 60.0, 8),
    (1 / 18, 180.0, 60.0, 12),
    (1 / 18, 180.0, 300.0, 10),
    (1 / 18, 180.0, 300.0, 14),
    (1 / 18, 180.0, 30.0, 5),
    (2 / 60, 60.0, 45.0, 1),
    (2 / 60, 60.0, 45.0, 3),
]


@pytest.mark.parametrize(("lam", "aht", "patience", "n"), CASES)
def test_erlang_a_matches_the_independent_reference(
    lam: float, aht: float, patience: float, n: int
) -> None:
    t, u = 20.0, 5.0
    ref = _reference(lam, aht, patience, n, t, u)
    perf = erlang_a(QueueLoad(lam, aht, patience), n, answer_time=t, short_abandon_time=u)
    for name, expected in ref.items():
        assert getattr(perf, name) == pytest.approx(expected, rel=1e-9, abs=1e-13), name


def test_pyworkforce_exact_ctmc_snapshot() -> None:
    """Published values of another exact implementation.

    pyworkforce (rodrigo-arenas/pyworkforce) pyworkforce/queuing/tests/test_abandonment.py,
    test_erlanga_regression_metrics: 100 transactions per 30 min, AHT 3 min, patience 5 min,
    14 positions -> waiting_probability 0.14526, abandonment_probability 0.013984,
    occupancy 0.704297, service_level (20 s) 0.916792, average_speed_of_answer 0.069919 min.

    pyworkforce's "average_speed_of_answer" is Lq / λ, the mean wait over *all* contacts,
    abandoners included; that is our ``mean_wait``. Our ``asa`` (answered only) is smaller.
    """
    perf = erlang_a(QueueLoad(100 / 1800, 180.0, 300.0), 14, answer_time=20.0)
    assert round(perf.p_wait, 5) == 0.14526
    assert round(perf.p_abandon, 6) == 0.013984
    assert round(perf.occupancy, 6) == 0.704297
    assert round(perf.service_level, 6) == 0.916792
    assert round(perf.mean_wait / 60, 6) == 0.069919
    assert perf.asa < perf.mean_wait


@pytest.mark.parametrize("n", [1000, 2000, 5000])
@pytest.mark.parametrize("rho", [0.7, 0.95, 1.0, 1.1])
def test_erlang_a_is_stable_at_thousands_of_agents(n: int, rho: float) -> None:
    """Finite, in-range results and internal consistency at scale, also overloaded."""
    aht = 300.0
    load = QueueLoad(rho * n / aht, aht, 120.0)
    perf = erlang_a(load, n, answer_time=20.0)
    for value in (perf.p_wait, perf.p_abandon, perf.service_level, perf.occupancy):
        assert 0.0 <= value <= 1.0
    assert math.isfinite(perf.asa) and perf.asa >= 0
    # Flow balance: carried load = offered load minus abandons.
    assert perf.occupancy * n == pytest.approx(load.traffic * (1 - perf.p_abandon), rel=1e-9)
    # Answered within T can never exceed answered.
    assert perf.service_level <= 1 - perf.p_abandon + 1e-12


def test_erlang_a_approaches_erlang_c_for_very_patient_callers() -> None:
    load_c = QueueLoad(100 / 1800, 180.0)
    c = erlang_c(load_c, 12, answer_time=20.0)
    for patience, tol in ((1e5, 5e-2), (1e7, 5e-4), (1e9, 5e-6)):
        a = erlang_a(QueueLoad(100 / 1800, 180.0, patience), 12, answer_time=20.0)
        assert a.p_wait == pytest.approx(c.p_wait, rel=tol)
        assert a.asa == pytest.approx(c.asa, rel=tol)
        assert a.service_level == pytest.approx(c.service_level, rel=tol)
        assert a.p_abandon < tol
