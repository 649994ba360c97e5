"""The pure dialer: contact lists, compliance gates, pacing and the campaign engine."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callmesh.api.dialercampaign import AbandonPeriod, CallingWindow, DialerCampaignSpec
from callmesh.dialer.campaign import (
    AgentSnapshot,
    Campaign,
    Connect,
    Dial,
    HangupCall,
    Outcome,
    PlayAnnouncement,
    SafeHarbour,
)
from callmesh.dialer.compliance import AbandonMeter, window_open
from callmesh.dialer.contacts import parse_contact_csv, parse_do_not_call
from callmesh.dialer.pacing import (
    PacingInput,
    binomial_pmf,
    expected_overflow,
    predictive_calls,
    progressive_calls,
    vicidial_dial_level,
)

# Monday 2026-11-23 15:00 UTC = 10:00 in New York.
MONDAY_10_NY = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC).timestamp()


def spec(**overrides: Any) -> DialerCampaignSpec:
    base: dict[str, Any] = {
        "mode": "predictive",
        "state": "running",
        "queue": "sales",
        "contactList": {"configMap": {"name": "list", "key": "contacts.csv"}},
        "callerId": {"number": "+12125550100", "name": "ACME"},
        "retries": [{"disposition": "busy", "maxAttempts": 2, "delaySeconds": 600}],
    }
    base.update(overrides)
    return DialerCampaignSpec.model_validate(base)


CSV = """id,phone,timeZone,name
c1,+12125550001,America/New_York,Ann
c2,+1 (212) 555-0002,America/New_York,Bo
c3,not-a-number,America/New_York,Cy
c4,+12125550004,Mars/Olympus,Di
c1,+12125550005,America/New_York,Dup
c6,+12125550001,America/New_York,SamePhone
,+12125550007,America/New_York,NoId
c8,+4930555008,,Ed
"""


def test_bad_rows_are_reported_with_row_and_reason_and_the_rest_kept() -> None:
    parsed = parse_contact_csv(CSV, "Europe/Berlin")
    assert [c.id for c in parsed.contacts] == ["c1", "c2", "c8"]
    assert parsed.contacts[1].phone == "+12125550002"
    assert parsed.contacts[2].time_zone == "Europe/Berlin"
    reasons = {p.row: p.reason for p in parsed.problems}
    assert set(reasons) == {4, 5, 6, 7, 8}
    assert "E.164" in reasons[4] and "IANA" in reasons[5] and "duplicate id" in reasons[6]
    assert "already listed on row 2" in reasons[7] and "empty id" in reasons[8]


def test_empty_list_and_missing_header_are_reported() -> None:
    assert parse_contact_csv("id,phone\n", "UTC").problems[0].reason == "the list has no contacts"
    problem = parse_contact_csv("name,number\nx,+12125550001\n", "UTC").problems[0]
    assert problem.row == 1 and "id, phone" in problem.reason


def test_calling_window_is_read_in_the_contacts_own_zone() -> None:
    window = CallingWindow(start="09:00", end="20:00")
    assert window_open(window, "America/New_York", MONDAY_10_NY)
    assert not window_open(window, "America/Los_Angeles", MONDAY_10_NY)  # 07:00 there
    saturday = MONDAY_10_NY - 2 * 86400
    assert not window_open(window, "America/New_York", saturday)


def run_until_done(campaign: Campaign, now: float, outcome: Outcome, free: int = 5) -> list[Any]:
    effects: list[Any] = []
    for _ in range(50):
        batch = campaign.tick(now, AgentSnapshot(free=free))
        effects += batch
        for effect in batch:
            if isinstance(effect, Dial):
                effects += campaign.on_outcome(effect.attempt_id, outcome, now + 5)
        now += 3600
    return effects


def test_a_number_on_the_do_not_call_list_is_never_dialled() -> None:
    contacts = parse_contact_csv(CSV, "America/New_York")
    dnc, problems = parse_do_not_call("# opted out\n+1 212 555 0001\nbogus\n")
    assert len(problems) == 1
    campaign = Campaign("c", spec(mode="progressive"), contacts, dnc, time_zone="America/New_York")
    effects = run_until_done(campaign, MONDAY_10_NY, Outcome.BUSY)
    dialled = {e.contact.phone for e in effects if isinstance(e, Dial)}
    assert "+12125550001" not in dialled and "+12125550002" in dialled
    assert any(a.reason == "on the do-not-call list" and not a.dialled for a in campaign.audit)


@given(
    dnc_rows=st.sets(st.integers(0, 19)),
    outcomes=st.lists(st.sampled_from(list(Outcome)), min_size=1, max_size=40),
    mode=st.sampled_from(["progressive", "predictive", "agentless"]),
)
def test_dnc_is_never_dialled_whatever_happens(
    dnc_rows: set[int], outcomes: list[Outcome], mode: str
) -> None:
    rows = "\n".join(f"c{i},+1212555{i:04d},America/New_York" for i in range(20))
    contacts = parse_contact_csv("id,phone,timeZone\n" + rows, "UTC")
    dnc = frozenset(f"+1212555{i:04d}" for i in dnc_rows)
    extra = {"agentless": {"message": {"text": "Offer"}}} if mode == "agentless" else {}
    retries = [
        {"disposition": d, "maxAttempts": 3, "delaySeconds": 60}
        for d in ("busy", "noAnswer", "machine")
    ]
    campaign = Campaign(
        "c", spec(mode=mode, retries=retries, **extra), contacts, dnc, time_zone="UTC"
    )
    now = MONDAY_10_NY
    for outcome in outcomes:
        for effect in campaign.tick(now, AgentSnapshot(free=3)):
            assert isinstance(effect, Dial | SafeHarbour)
            if isinstance(effect, Dial):
                assert effect.contact.phone not in dnc
                campaign.on_outcome(effect.attempt_id, outcome, now + 1)
        now += 120


def test_retries_follow_the_disposition_rule_then_stop() -> None:
    contacts = parse_contact_csv("id,phone\nc1,+12125550001\n", "America/New_York")
    campaign = Campaign(
        "c", spec(mode="progressive"), contacts, frozenset(), time_zone="America/New_York"
    )
    effects = run_until_done(campaign, MONDAY_10_NY, Outcome.BUSY)
    assert sum(isinstance(e, Dial) for e in effects) == 2  # maxAttempts 2 for busy
    assert campaign.stats(MONDAY_10_NY).exhausted == 1


def test_frequency_cap_per_local_day() -> None:
    contacts = parse_contact_csv("id,phone\nc1,+12125550001\n", "America/New_York")
    retries = [{"disposition": "noAnswer", "maxAttempts": 10, "delaySeconds": 60}]
    campaign = Campaign(
        "c", spec(mode="progressive", retries=retries, maxAttemptsPerDay=3), contacts, frozenset()
    )
    now = MONDAY_10_NY
    dials = 0
    for _ in range(20):
        for effect in campaign.tick(now, AgentSnapshot(free=1)):
            if isinstance(effect, Dial):
                dials += 1
                campaign.on_outcome(effect.attempt_id, Outcome.NO_ANSWER, now + 20)
        now += 120
    assert dials == 3
    assert any("frequency cap" in a.reason for a in campaign.audit)


def test_answered_call_without_agent_in_window_is_abandoned_with_safe_harbour() -> None:
    contacts = parse_contact_csv("id,phone\nc1,+12125550001\nc2,+12125550002\n", "America/New_York")
    message = {"text": "This is ACME; we will call you back."}
    campaign = Campaign(
        "c", spec(mode="progressive", safeHarbourMessage=message), contacts, frozenset()
    )
    d1, d2 = campaign.tick(MONDAY_10_NY, AgentSnapshot(free=2))
    assert isinstance(d1, Dial) and isinstance(d2, Dial)
    (connect,) = campaign.on_outcome(d1.attempt_id, Outcome.HUMAN, MONDAY_10_NY + 10)
    assert isinstance(connect, Connect) and connect.queue == "sales"
    campaign.on_outcome(d2.attempt_id, Outcome.HUMAN, MONDAY_10_NY + 10)
    campaign.on_agent_connected(d1.attempt_id, MONDAY_10_NY + 11)
    assert campaign.next_deadline() == MONDAY_10_NY + 12
    (harbour,) = campaign.tick(MONDAY_10_NY + 12.5, AgentSnapshot(free=0))
    assert isinstance(harbour, SafeHarbour) and harbour.attempt_id == d2.attempt_id
    stats = campaign.stats(MONDAY_10_NY + 13)
    assert (stats.answered, stats.abandoned) == (2, 1)


def test_agentless_press_one_transfers_and_opt_out_joins_dnc() -> None:
    contacts = parse_contact_csv("id,phone\nc1,+12125550001\nc2,+12125550002\n", "UTC")
    agentless = {"message": {"text": "Fiber is here. Press 1 for sales, 9 to opt out."}}
    campaign = Campaign(
        "c", spec(mode="agentless", agentless=agentless), contacts, frozenset(), agentless_lines=2
    )
    d1, d2 = campaign.tick(MONDAY_10_NY, AgentSnapshot(free=0))
    assert isinstance(d1, Dial) and isinstance(d2, Dial)
    (play,) = campaign.on_outcome(d1.attempt_id, Outcome.HUMAN, MONDAY_10_NY + 5)
    assert isinstance(play, PlayAnnouncement) and play.transfer_digit == "1"
    (connect,) = campaign.on_digit(d1.attempt_id, "1", MONDAY_10_NY + 20)
    assert isinstance(connect, Connect) and connect.attributes["campaign"] == "c"
    campaign.on_outcome(d2.attempt_id, Outcome.HUMAN, MONDAY_10_NY + 5)
    (hangup,) = campaign.on_digit(d2.attempt_id, "9", MONDAY_10_NY + 20)
    assert isinstance(hangup, HangupCall)
    assert any("opted out" in a.reason for a in campaign.audit)


def test_paused_campaign_places_nothing() -> None:
    contacts = parse_contact_csv("id,phone\nc1,+12125550001\n", "UTC")
    campaign = Campaign("c", spec(state="paused"), contacts, frozenset())
    assert campaign.tick(MONDAY_10_NY, AgentSnapshot(free=10)) == []


@given(n=st.integers(0, 300), p=st.floats(0, 1))
def test_binomial_pmf_sums_to_one(n: int, p: float) -> None:
    assert math.isclose(sum(binomial_pmf(n, p)), 1.0, rel_tol=1e-9, abs_tol=1e-9)


def test_expected_overflow_matches_a_direct_sum() -> None:
    n, p, agents = 12, 0.3, 3
    direct = sum(
        math.comb(n, k) * p**k * (1 - p) ** (n - k) * max(0, k - agents) for k in range(n + 1)
    )
    assert math.isclose(expected_overflow(n, p, agents), direct, rel_tol=1e-12)


@given(
    free=st.integers(0, 40),
    soon=st.floats(0, 10),
    in_flight=st.integers(0, 40),
    rate=st.floats(0.05, 0.9),
    answered=st.integers(0, 5000),
    abandoned_share=st.floats(0, 0.1),
    cap=st.floats(0.005, 0.05),
)
def test_predictive_keeps_expected_abandons_inside_the_cap(
    free: int,
    soon: float,
    in_flight: int,
    rate: float,
    answered: int,
    abandoned_share: float,
    cap: float,
) -> None:
    abandoned = int(answered * abandoned_share)
    state = PacingInput(free, soon, in_flight, rate, answered, abandoned, cap, 3.0)
    calls = predictive_calls(state)
    assert calls >= progressive_calls(free, in_flight)
    total = in_flight + calls
    agents = free + soon
    assert total <= max(
        in_flight + progressive_calls(free, in_flight), math.floor(3.0 * max(agents, 1.0))
    )
    if calls > progressive_calls(free, in_flight):  # over-dialling only within the allowance
        overflow = expected_overflow(total, rate, agents)
        assert abandoned + overflow <= cap * 0.85 * (answered + total * rate) + 1e-9


def test_predictive_dials_ahead_at_low_contact_rates() -> None:
    state = PacingInput(10, 0.0, 0, 0.3, 0, 0, 0.03, 3.0)
    assert predictive_calls(state) > 10


def test_vicidial_rule_raises_with_idle_agents_and_halves_on_drops() -> None:
    assert vicidial_dial_level(1.5, 0, 5, 10, 0.0, 0.03) == pytest.approx(2.25)
    assert vicidial_dial_level(2.0, 0, 0, 10, 0.05, 0.03) == 1.0
    assert vicidial_dial_level(2.5, 0, 20, 10, 0.0, 0.03) == 3.0


def test_abandon_meter_counts_per_day_or_rolling_thirty_days() -> None:
    zone = "America/New_York"
    day = AbandonMeter(AbandonPeriod.day, zone)
    rolling = AbandonMeter(AbandonPeriod.rolling30_days, zone)
    start = dt.datetime(2026, 11, 2, 12, tzinfo=ZoneInfo(zone)).timestamp()
    for meter in (day, rolling):
        meter.abandoned(start)
        for i in range(11):
            meter.answered(start + i * 86400)
    later = start + 10 * 86400
    assert day.totals(later) == (1, 0)
    assert rolling.totals(later) == (11, 1)
    for i in range(11, 40):
        rolling.answered(start + i * 86400)
    assert rolling.totals(start + 39 * 86400) == (30, 0)  # the abandon fell out of the 30 days


def test_abandon_meter_totals_follow_the_day_asked_about() -> None:
    """The pacer asks every second; the answer is kept until a record or the day changes,
    and an answer about one day is never given for another (nor when the clock steps back)."""
    zone = "America/New_York"
    meter = AbandonMeter(AbandonPeriod.day, zone)
    midnight = dt.datetime(2026, 11, 3, tzinfo=ZoneInfo(zone)).timestamp()
    meter.answered(midnight + 30)
    meter.abandoned(midnight + 30)
    assert meter.totals(midnight - 10) == (0, 0)  # the day before: nothing recorded
    assert meter.totals(midnight + 60) == (1, 1)
    assert meter.totals(midnight - 10) == (0, 0)  # the clock stepped back
    meter.answered(midnight - 5)
    assert meter.totals(midnight - 1) == (1, 0)
    assert meter.totals(midnight + 61) == (1, 1)
