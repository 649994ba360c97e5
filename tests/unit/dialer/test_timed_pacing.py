"""The time-aware predictive pacer, the wrap-up tracker and the campaign's status problems."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callmesh.api.dialercampaign import DialerCampaignSpec
from callmesh.dialer.agents import WrapUpTracker
from callmesh.dialer.campaign import AgentSnapshot, Campaign, Dial, Outcome
from callmesh.dialer.contacts import parse_contact_csv
from callmesh.dialer.pacing import (
    TimedPacingInput,
    VicidialPacer,
    abandon_price,
    poisson_excess,
    progressive_calls,
    timed_predictive_calls,
)

MONDAY_10_UTC = 1795428000.0  # 2026-11-23 10:00 UTC


def spec(**overrides: Any) -> DialerCampaignSpec:
    base: dict[str, Any] = {
        "mode": "predictive",
        "state": "running",
        "queue": "sales",
        "contactList": {"configMap": {"name": "list", "key": "contacts.csv"}},
        "callerId": {"number": "+12125550100"},
        "callingWindow": {"days": ["mon"], "start": "00:00", "end": "23:59"},
    }
    base.update(overrides)
    return DialerCampaignSpec.model_validate(base)


@pytest.mark.parametrize(("mean", "level"), [(0.5, 0), (2.0, 1), (3.3, 2.5), (12.0, 10), (0, 3)])
def test_poisson_excess_matches_a_direct_sum(mean: float, level: float) -> None:
    direct = sum(
        max(0.0, n - level) * math.exp(-mean) * mean**n / math.factorial(n) for n in range(80)
    )
    assert poisson_excess(mean, level) == pytest.approx(direct, abs=1e-12)


def timed(**overrides: Any) -> TimedPacingInput:
    base: dict[str, Any] = {
        "supply": (4.0,),
        "ringing": (0.0,),
        "fresh": (0.3,),
        "ringing_total": 0.0,
        "human_rate": 0.3,
        "free_agents": 4,
        "in_flight": 0,
        "answered": 500,
        "abandoned": 5,
        "cap": 0.03,
        "max_calls": 12,
    }
    base.update(overrides)
    return TimedPacingInput(**base)


def test_agents_about_to_be_free_are_dialled_for_ahead_of_time() -> None:
    alone = timed_predictive_calls(timed())
    ahead = timed_predictive_calls(
        timed(supply=(4.0, 7.0), ringing=(0.0, 0.0), fresh=(0.1, 0.3))
    )  # three wrap-ups end before most people answer
    assert alone >= progressive_calls(4, 0) and ahead > alone


def test_over_the_cap_only_calls_that_add_almost_no_risk_go() -> None:
    on_target, over, far_over = (timed_predictive_calls(timed(abandoned=a)) for a in (15, 20, 30))
    assert on_target >= over >= far_over >= 4  # never below one call per free agent
    assert timed_predictive_calls(timed(abandoned=0)) > on_target  # budget left: bolder
    for k in range(5, far_over + 1):  # each extra call lowers the rate: under half the cap
        assert poisson_excess(0.3 * k, 4) - poisson_excess(0.3 * (k - 1), 4) <= 0.5 * 0.03 * 0.3


def test_the_first_burst_of_a_day_keeps_a_margin_for_chance() -> None:
    opening = timed(supply=(20.0,), free_agents=20, answered=0, abandoned=0, max_calls=60)
    bold = timed_predictive_calls(opening, caution=0.0)
    careful = timed_predictive_calls(opening)
    assert 20 <= careful < bold <= 60


def test_the_price_of_an_abandon_steers_to_the_target() -> None:
    on_target = abandon_price(980, int(0.03 * 1000), 0.03)
    assert on_target == pytest.approx(0.03, rel=0.05)
    assert abandon_price(1000, 0, 0.03) > on_target > abandon_price(1000, 60, 0.03)


@settings(max_examples=60, deadline=None)
@given(
    free=st.integers(0, 20),
    in_flight=st.integers(0, 30),
    steps=st.lists(st.tuples(st.floats(0, 5), st.floats(0, 3), st.floats(0, 0.3)), max_size=5),
    answered=st.integers(0, 3000),
    abandoned=st.integers(0, 120),
    max_calls=st.integers(0, 60),
)
def test_timed_pacer_bounds(
    free: int,
    in_flight: int,
    steps: list[tuple[float, float, float]],
    answered: int,
    abandoned: int,
    max_calls: int,
) -> None:
    supply = (*(free + s for s, _, _ in steps), free + 5.0)
    ringing = (*(r for _, r, _ in steps), 3.0)
    fresh = (*(f for _, _, f in steps), 0.3)
    state = timed(
        supply=supply,
        ringing=ringing,
        fresh=fresh,
        ringing_total=3.0,
        free_agents=free,
        in_flight=in_flight,
        answered=answered,
        abandoned=abandoned,
        max_calls=max_calls,
    )
    calls = timed_predictive_calls(state)
    floor = progressive_calls(free, in_flight)
    assert calls >= floor
    if calls > floor:
        assert in_flight + calls <= max_calls

    def deficit(k: int) -> float:
        return max(
            poisson_excess(r + k * f, s) for s, r, f in zip(supply, ringing, fresh, strict=True)
        )

    price = abandon_price(answered, abandoned, 0.95 * 0.03) * 0.3
    for k in range(floor + 1, calls + 1):  # every extra call passed both tests
        marginal = deficit(k) - deficit(k - 1)
        assert marginal <= price + 1e-12
        within = abandoned + deficit(k) + math.sqrt(deficit(k)) <= 0.03 * (answered + 3.0 + k * 0.3)
        assert within or marginal <= 0.5 * 0.03 * 0.3 + 1e-12


def test_wrap_up_tracker_ends_wrap_ups_in_the_order_they_began() -> None:
    tracker = WrapUpTracker(30.0)
    tracker.observe(1, 100.0)
    tracker.observe(3, 110.0)
    assert tracker.remaining(115.0) == (15.0, 25.0, 25.0)
    tracker.observe(2, 131.0)  # the oldest ended
    assert tracker.snapshot(4, 131.0) == AgentSnapshot(free=4, freeing=(9.0, 9.0))
    with pytest.raises(ValueError, match="wrapping=-1"):
        tracker.observe(-1, 140.0)


def test_vicidial_pacer_updates_once_a_minute() -> None:
    pacer = VicidialPacer(next_update=60.0)
    for t in range(0, 60):
        pacer.observe(float(t), 5, 0, 10, 0.0, 0.03)
    assert pacer.level == 1.0  # the minute is not over yet
    pacer.observe(60.0, 5, 0, 10, 0.0, 0.03)
    assert pacer.level == pytest.approx(1.5)
    assert pacer.calls(ready=4, in_flight=2) == 4


def test_campaign_measures_answer_times_and_what_a_long_ringing_call_is_worth() -> None:
    rows = "\n".join(f"c{i},+1212555{i:04d}" for i in range(40))
    campaign = Campaign("c", spec(), parse_contact_csv("id,phone\n" + rows, "UTC"), frozenset())
    now = MONDAY_10_UTC
    dials = [e for e in campaign.tick(now, AgentSnapshot(free=40)) if isinstance(e, Dial)]
    assert len(dials) >= 40 or campaign.remaining() == 0
    for i, d in enumerate(dials):
        if i % 3 == 0:
            campaign.on_outcome(d.attempt_id, Outcome.HUMAN, now + 8 + i % 5)
        else:
            campaign.on_outcome(d.attempt_id, Outcome.NO_ANSWER, now + 25)
    assert 8 <= campaign.answer_horizon() <= 12
    assert campaign.answer_survival(0) == 1.0 and campaign.answer_survival(13) == 0.0
    assert campaign.still_human(15) < campaign.still_human(0)  # people answer early


def test_status_problems_name_rows_and_a_window_that_never_opens() -> None:
    contacts = parse_contact_csv("id,phone\nc1,+12125550001\nc2,bogus\n", "UTC")
    never = spec(callingWindow={"days": ["mon"], "start": "20:00", "end": "09:00"})
    campaign = Campaign("c", never, contacts, frozenset())
    problems = campaign.problems()
    assert "never opens" in problems[0] and "set end after start" in problems[0]
    assert "row 3: phone 'bogus'" in problems[1]
    assert campaign.tick(MONDAY_10_UTC, AgentSnapshot(free=5)) == []
    assert not campaign.stats(MONDAY_10_UTC).window_opens
    empty = Campaign("e", spec(), parse_contact_csv("id,phone\n", "UTC"), frozenset())
    assert any("no valid contact" in p for p in empty.problems())


def test_the_contact_rate_counts_only_calls_placed_a_ring_timeout_ago() -> None:
    rows = "\n".join(f"c{i},+1212555{i:04d}" for i in range(10))
    campaign = Campaign("c", spec(), parse_contact_csv("id,phone\n" + rows, "UTC"), frozenset())
    now = MONDAY_10_UTC
    dials = [e for e in campaign.tick(now, AgentSnapshot(free=10)) if isinstance(e, Dial)]
    assert len(dials) >= 10
    for d in dials[:3]:  # busy lines are known within seconds, no-answers only at 25 s
        campaign.on_outcome(d.attempt_id, Outcome.BUSY, now + 3)
    assert campaign.human_rate == pytest.approx(0.3)  # still the prior: nothing settled
    for d in dials[3:8]:
        campaign.on_outcome(d.attempt_id, Outcome.HUMAN, now + 12)
    for d in dials[8:10]:
        campaign.on_outcome(d.attempt_id, Outcome.NO_ANSWER, now + 25)
    campaign.tick(now + 26, AgentSnapshot(free=0))
    assert campaign.human_rate == pytest.approx((5 + 0.3 * 10) / (10 + 10))
