"""Staffing searches, targets and input validation."""

from __future__ import annotations

import math

import pytest

from callmesh.wfm.erlang import QueueLoad, erlang_a, erlang_b, erlang_c, performance
from callmesh.wfm.staffing import (
    Interval,
    StaffingInfeasibleError,
    StaffingTarget,
    agents_needed,
    required_staffing,
    staff,
)

TEN_ERLANGS = QueueLoad(100 / 1800, 180.0)


def test_occupancy_cap_adds_agents() -> None:
    # 14 agents meet 80/20 at 71.4 % occupancy; a 70 % cap needs ceil(10 / 0.7) = 15.
    assert agents_needed(TEN_ERLANGS, StaffingTarget()) == 14
    assert agents_needed(TEN_ERLANGS, StaffingTarget(max_occupancy=0.7)) == 15


def test_asa_target_alone() -> None:
    target = StaffingTarget(service_level=0.0, max_asa=5.0)
    n = agents_needed(TEN_ERLANGS, target)
    assert erlang_c(TEN_ERLANGS, n).asa <= 5.0 < erlang_c(TEN_ERLANGS, n - 1).asa


def test_no_target_still_needs_a_stable_erlang_c_queue() -> None:
    assert agents_needed(TEN_ERLANGS, StaffingTarget(service_level=0.0)) == 11


def test_zero_traffic_needs_no_agents() -> None:
    perf = required_staffing(QueueLoad(0.0, 180.0, 60.0), StaffingTarget())
    assert perf.agents == 0 and perf.service_level == 1.0 and perf.occupancy == 0.0


def test_abandon_target_with_erlang_a() -> None:
    load = QueueLoad(100 / 1800, 180.0, 60.0)
    target = StaffingTarget(service_level=0.0, max_abandon=0.02)
    n = agents_needed(load, target)
    assert erlang_a(load, n).p_abandon <= 0.02 < erlang_a(load, n - 1).p_abandon


def test_service_level_bases_order() -> None:
    """Excluding abandons from the denominator can only make the service level easier."""
    load = QueueLoad(300 / 1800, 180.0, 45.0)
    needs = {
        basis: agents_needed(load, StaffingTarget(service_level=0.9, sl_basis=basis))
        for basis in ("offered", "excl-short-abandons", "answered")
    }
    assert needs["answered"] <= needs["excl-short-abandons"] <= needs["offered"]
    perf = erlang_a(load, needs["offered"] - 3)
    assert (
        perf.service_level <= perf.service_level_excl_short_abandons <= perf.service_level_answered
    )


def test_erlang_a_needs_fewer_agents_than_erlang_c_for_the_same_asa() -> None:
    target = StaffingTarget(service_level=0.0, max_asa=10.0)
    with_abandon = QueueLoad(TEN_ERLANGS.arrival_rate, TEN_ERLANGS.aht, 120.0)
    assert agents_needed(with_abandon, target) <= agents_needed(TEN_ERLANGS, target)


def test_infeasible_target_is_a_clear_error() -> None:
    load = QueueLoad(1.0, 180.0, 30.0)  # 180 Erlangs
    with pytest.raises(StaffingInfeasibleError, match=r"max_agents=100 .*abandon"):
        required_staffing(load, StaffingTarget(max_abandon=0.01), max_agents=100)
    with pytest.raises(StaffingInfeasibleError, match="unstable"):
        required_staffing(QueueLoad(1.0, 180.0), StaffingTarget(), max_agents=100)


def test_staff_returns_one_row_per_interval() -> None:
    rates = [120.0, 600.0, 1500.0, 0.0]
    intervals = [
        Interval(f"{8 + i}:00", QueueLoad.per_hour(r, 240.0, 90.0), length=3600.0)
        for i, r in enumerate(rates)
    ]
    rows = staff(intervals, StaffingTarget())
    assert [row.interval.start for row in rows] == ["8:00", "9:00", "10:00", "11:00"]
    assert rows[-1].agents == 0
    assert rows[0].agents < rows[1].agents < rows[2].agents
    assert rows[1].interval.offered == pytest.approx(600.0)
    for row in rows:
        assert StaffingTarget().is_met(row.performance)


def test_scan_reuses_blocking_consistently() -> None:
    """The O(1) Erlang B update in the scan gives the same KPIs as a fresh computation."""
    load = QueueLoad(2000 / 3600 * 10, 180.0)  # 1000 Erlangs
    perf = required_staffing(load, StaffingTarget(service_level=0.9, answer_time=10.0))
    fresh = erlang_c(load, perf.agents, 10.0, blocking=erlang_b(perf.agents, load.traffic))
    assert perf == fresh


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"arrival_rate": -1.0, "aht": 180.0}, "arrival_rate"),
        ({"arrival_rate": math.nan, "aht": 180.0}, "arrival_rate"),
        ({"arrival_rate": 1.0, "aht": 0.0}, "aht"),
        ({"arrival_rate": 1.0, "aht": 180.0, "patience": 0.0}, "patience"),
        ({"arrival_rate": 1.0, "aht": 180.0, "patience": math.inf}, "patience"),
    ],
)
def test_bad_load_names_the_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field} must be"):
        QueueLoad(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"service_level": 1.0}, "service_level"),
        ({"service_level": -0.1}, "service_level"),
        ({"answer_time": -1.0}, "answer_time"),
        ({"max_asa": 0.0}, "max_asa"),
        ({"max_occupancy": 1.5}, "max_occupancy"),
        ({"max_abandon": 0.0}, "max_abandon"),
        ({"sl_basis": "all"}, "sl_basis"),
        ({"short_abandon_time": -5.0}, "short_abandon_time"),
    ],
)
def test_bad_target_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field} must be"):
        StaffingTarget(**kwargs)  # type: ignore[arg-type]


def test_bad_agents_and_times() -> None:
    with pytest.raises(ValueError, match="agents must be a whole number"):
        performance(TEN_ERLANGS, -1)
    with pytest.raises(ValueError, match="answer_time must be"):
        performance(TEN_ERLANGS, 12, answer_time=-3.0)
    with pytest.raises(ValueError, match=r"needs load\.patience"):
        erlang_a(TEN_ERLANGS, 12)


def test_json_dict_has_no_infinities() -> None:
    unstable = erlang_c(TEN_ERLANGS, 10)
    assert unstable.as_dict()["asa"] is None
    assert erlang_c(TEN_ERLANGS, 14).as_dict()["asa"] == pytest.approx(7.8359, abs=1e-4)
