"""Properties every Erlang C / Erlang A result must have, over generated loads."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from callmesh.wfm.erlang import QueueLoad, erlang_a, erlang_c, erlang_c_probability, performance
from callmesh.wfm.staffing import StaffingTarget, required_staffing

traffic = st.floats(min_value=0.05, max_value=400.0, allow_nan=False)
aht = st.floats(min_value=10.0, max_value=1200.0)
patience = st.floats(min_value=5.0, max_value=3600.0)
answer_time = st.floats(min_value=0.0, max_value=120.0)


@st.composite
def loads(draw: st.DrawFn, *, abandon: bool | None = None) -> QueueLoad:
    a = draw(traffic)
    h = draw(aht)
    with_patience = draw(st.booleans()) if abandon is None else abandon
    return QueueLoad(a / h, h, draw(patience) if with_patience else None)


@given(loads(), st.integers(min_value=1, max_value=60), answer_time)
def test_probabilities_are_probabilities(load: QueueLoad, extra: int, t: float) -> None:
    n = max(1, math.ceil(load.traffic * 0.7)) + extra
    perf = performance(load, n, answer_time=t)
    for name in (
        "p_wait",
        "p_abandon",
        "service_level",
        "service_level_answered",
        "service_level_excl_short_abandons",
        "occupancy",
    ):
        assert 0.0 <= getattr(perf, name) <= 1.0, name
    if perf.stable:
        assert perf.asa >= 0.0 and perf.mean_wait >= 0.0
        # Answered within T is at most everything answered.
        assert perf.service_level <= 1.0 - perf.p_abandon + 1e-12


@given(loads(), answer_time)
def test_more_agents_never_hurt(load: QueueLoad, t: float) -> None:
    start = max(1, math.floor(load.traffic * 0.8))
    perfs = [performance(load, n, answer_time=t) for n in range(start, start + 12)]
    for fewer, more in itertools.pairwise(perfs):
        assert more.p_wait <= fewer.p_wait + 1e-12
        assert more.p_abandon <= fewer.p_abandon + 1e-12
        assert more.service_level >= fewer.service_level - 1e-12
        assert more.service_level_answered >= fewer.service_level_answered - 1e-12
        assert (
            more.service_level_excl_short_abandons
            >= fewer.service_level_excl_short_abandons - 1e-12
        )
        assert more.occupancy <= fewer.occupancy + 1e-12
        if fewer.stable:
            assert more.asa <= fewer.asa * (1 + 1e-12) + 1e-12


@given(
    st.integers(min_value=1, max_value=30),
    st.fractions(min_value=Fraction(1, 50), max_value=Fraction(49, 50), max_denominator=200),
)
def test_erlang_c_equals_the_exact_formula(n: int, load: Fraction) -> None:
    a = load * n
    top = a**n / math.factorial(n) * Fraction(n) / (n - a)
    exact = top / (sum(a**k / math.factorial(k) for k in range(n)) + top)
    assert erlang_c_probability(n, float(a)) == float(exact) or math.isclose(
        erlang_c_probability(n, float(a)), float(exact), rel_tol=1e-12
    )


@given(
    st.floats(min_value=0.5, max_value=200.0),
    st.floats(min_value=0.3, max_value=0.95),
    aht,
    answer_time,
)
def test_erlang_a_tends_to_erlang_c_as_patience_grows(
    a: float, rho: float, h: float, t: float
) -> None:
    n = max(1, math.ceil(a / rho))
    c = erlang_c(QueueLoad(a / h, h), n, answer_time=t)
    patient = erlang_a(QueueLoad(a / h, h, h * 1e8), n, answer_time=t)
    assert math.isclose(patient.p_wait, c.p_wait, rel_tol=1e-5, abs_tol=1e-12)
    assert math.isclose(patient.service_level, c.service_level, rel_tol=1e-5, abs_tol=1e-9)
    assert math.isclose(patient.asa, c.asa, rel_tol=1e-5, abs_tol=1e-9)
    assert patient.p_abandon < 1e-5


targets = st.builds(
    StaffingTarget,
    service_level=st.sampled_from([0.0, 0.5, 0.8, 0.9, 0.95]),
    answer_time=st.sampled_from([0.0, 10.0, 20.0, 60.0]),
    max_asa=st.none() | st.floats(min_value=1.0, max_value=120.0),
    max_occupancy=st.none() | st.floats(min_value=0.5, max_value=1.0),
    max_abandon=st.none() | st.floats(min_value=0.01, max_value=0.2),
    sl_basis=st.sampled_from(["offered", "answered", "excl-short-abandons"]),
)


@given(loads(), targets)
def test_agents_needed_is_the_minimal_staffing(load: QueueLoad, target: StaffingTarget) -> None:
    perf = required_staffing(load, target)
    assert target.is_met(perf)
    if perf.agents > 0:
        fewer = performance(load, perf.agents - 1, target.answer_time, target.short_abandon_time)
        assert not target.is_met(fewer), (perf.agents, target.misses(fewer))


@settings(max_examples=15)
@given(
    st.integers(min_value=1000, max_value=5000),
    st.floats(min_value=0.5, max_value=1.2),
    st.booleans(),
)
def test_stable_at_thousands_of_agents(n: int, rho: float, abandon: bool) -> None:
    load = QueueLoad(rho * n / 240.0, 240.0, 90.0 if abandon else None)
    perf = performance(load, n, answer_time=20.0)
    values = (perf.p_wait, perf.p_abandon, perf.service_level, perf.occupancy)
    assert all(0.0 <= v <= 1.0 for v in values)
    if perf.stable:
        assert math.isfinite(perf.asa) and math.isfinite(perf.queue_length)
    else:
        assert rho >= 1.0 and not abandon
    staffed = required_staffing(load, StaffingTarget(service_level=0.8, answer_time=20.0))
    assert StaffingTarget().is_met(staffed)
