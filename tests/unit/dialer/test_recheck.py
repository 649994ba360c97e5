"""Contacts refused for a reason of the clock (window closed, daily cap) wait until that
reason can end, and are audited once for it; the dials are what checking every rule at
every tick would allow."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from callmesh.api.dialercampaign import DialerCampaignSpec
from callmesh.dialer.campaign import AgentSnapshot, Campaign, Dial, Outcome
from callmesh.dialer.compliance import next_local_time
from callmesh.dialer.contacts import parse_contact_csv

ZONES = ("America/New_York", "America/Los_Angeles", "Europe/London", "Asia/Kolkata", "UTC")
# Friday 2026-03-06 12:00 UTC: the run crosses the US DST change (Sunday 2026-03-08).
START = dt.datetime(2026, 3, 6, 12, 0, tzinfo=dt.UTC).timestamp()


def spec(**overrides: Any) -> DialerCampaignSpec:
    base: dict[str, Any] = {
        "mode": "predictive",
        "state": "running",
        "queue": "sales",
        "maxAttemptsPerDay": 1,
        "contactList": {"configMap": {"name": "list", "key": "contacts.csv"}},
        "callerId": {"number": "+12125550100"},
        "callingWindow": {
            "days": ["mon", "tue", "wed", "thu", "fri", "sun"],
            "start": "09:00",
            "end": "17:30",
        },
        "retries": [
            {"disposition": "busy", "maxAttempts": 4, "delaySeconds": 600},
            {"disposition": "noAnswer", "maxAttempts": 5, "delaySeconds": 1800},
        ],
    }
    base.update(overrides)
    return DialerCampaignSpec.model_validate(base)


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WINDOW_DAYS = ("mon", "tue", "wed", "thu", "fri", "sun")  # as in spec()


def dialable(engine: Campaign, contact_id: str, zone: str, t: float, dialled_on: set[Any]) -> bool:
    """Every rule, checked from scratch: window open in the contact's zone, no attempt yet
    on its local date (the cap is 1), retry delay over, not finished."""
    state = engine._states[contact_id]
    local = dt.datetime.fromtimestamp(t, tz=ZoneInfo(zone))
    return (
        state.done is None
        and state.next_at <= t
        and WEEKDAYS[local.weekday()] in WINDOW_DAYS
        and "09:00" <= local.strftime("%H:%M") < "17:30"
        and (contact_id, local.date()) not in dialled_on
    )


def run(seed: int) -> tuple[list[tuple[float, str]], list[Any], dict[str, str]]:
    """Four days of ticks with random outcomes and random dial counts; every tick is checked
    against every rule evaluated from scratch. Returns (dials, audit, zone per contact)."""
    rng = random.Random(seed)
    zones = {f"c{i}": ZONES[i % len(ZONES)] for i in range(40)}
    rows = "".join(f"{c},+1212555{i:04d},{z}\n" for i, (c, z) in enumerate(zones.items()))
    contacts = parse_contact_csv("id,phone,timeZone\n" + rows, "UTC")
    engine = Campaign("camp", spec(), contacts, frozenset(), time_zone="UTC")
    ringing: list[tuple[float, str]] = []
    dials: list[tuple[float, str]] = []
    dialled_on: set[Any] = set()
    answered: set[str] = set()
    t = START
    while t < START + 4 * 86400:
        t += rng.choice((60.0, 300.0, 1200.0))
        for at, attempt in sorted(ringing):
            if at <= t:
                ringing.remove((at, attempt))
                outcome = rng.choice(list(Outcome))
                engine.on_outcome(attempt, outcome, at)
                if outcome is Outcome.HUMAN:  # with the pacer from then on, never redialled
                    answered.add(attempt.split(".")[1])
        in_flight = {attempt.split(".")[1] for _, attempt in ringing}
        eligible = {
            c
            for c, z in zones.items()
            if c not in in_flight and c not in answered and dialable(engine, c, z, t, dialled_on)
        }
        wanted = rng.randint(0, 3)
        placed = [
            e.contact.id
            for e in engine.tick(t, AgentSnapshot(free=0), wanted=wanted)
            if isinstance(e, Dial)
        ]
        assert set(placed) <= eligible, "dialled a contact some rule refuses"
        assert len(placed) == min(wanted, len(eligible)), "left a dialable contact in line"
        for contact_id in placed:
            attempt = f"camp.{contact_id}.{engine._states[contact_id].attempts}"
            dials.append((t, attempt))
            ringing.append((t + rng.uniform(3, 25), attempt))
            local = dt.datetime.fromtimestamp(t, tz=ZoneInfo(zones[contact_id]))
            dialled_on.add((contact_id, local.date()))
    return dials, engine.audit, zones


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_refused_contacts_wait_for_their_reason_to_end(seed: int) -> None:
    """A contact refused for a reason of the clock is not looked at (or audited) again
    before that reason can end: the window's next opening, the next local midnight. Dials
    still follow every rule and leave no dialable contact in line (checked in ``run``)."""
    dials, audit, zones = run(seed)
    assert dials
    reasons = {entry.reason.split(" in ")[0] for entry in audit if not entry.dialled}
    assert {"outside the calling window", "frequency cap of 1 attempts a day reached"} <= reasons
    last: dict[str, Any] = {}
    for entry in audit:
        before = last.get(entry.contact_id)
        last[entry.contact_id] = entry
        if before is None or before.dialled:
            continue
        zone = zones[entry.contact_id]
        if before.reason.startswith("outside the calling window"):
            end = next_local_time(before.at, zone, "09:00")
        elif before.reason.startswith("frequency cap"):
            end = next_local_time(before.at, zone, "00:00")
        else:
            continue
        if end != float("-inf"):  # a day with a DST change: looked at every 15 minutes
            assert entry.at >= end + 1.0, (before, entry)


def test_a_new_spec_puts_refused_contacts_back_in_line_at_once() -> None:
    contacts = parse_contact_csv("id,phone,timeZone\nc1,+12125550001,UTC\n", "UTC")
    engine = Campaign("camp", spec(), contacts, frozenset(), time_zone="UTC")
    evening = dt.datetime(2026, 3, 5, 19, 0, tzinfo=dt.UTC).timestamp()  # Thursday 19:00
    assert engine.tick(evening, AgentSnapshot(free=1)) == []
    assert engine.tick(evening + 60, AgentSnapshot(free=1)) == []  # parked until 09:00
    assert [e.reason for e in engine.audit] == ["outside the calling window in UTC"]
    window = {"days": ["thu"], "start": "08:00", "end": "22:00"}
    engine.spec = spec(callingWindow=window)
    placed = engine.tick(evening + 120, AgentSnapshot(free=1))
    assert [e.attempt_id for e in placed if isinstance(e, Dial)] == ["camp.c1.1"]


@settings(max_examples=200, deadline=None)
@given(
    now=st.floats(START - 400 * 86400, START + 400 * 86400),
    zone=st.sampled_from((*ZONES, "Australia/Lord_Howe", "Antarctica/Troll")),
    hhmm=st.sampled_from(("00:00", "01:30", "02:30", "09:00", "23:59")),
)
def test_next_local_time_is_never_late(now: float, zone: str, hhmm: str) -> None:
    """Never after the first minute at which the wall clock reads ``hhmm`` after ``now``
    (and, with no DST change in between, that minute itself less a second)."""
    bound = next_local_time(now, zone, hhmm)
    tz = ZoneInfo(zone)
    t = float(int(now) // 60 * 60 + 60)
    while dt.datetime.fromtimestamp(t, tz=tz).strftime("%H:%M") != hhmm:
        t += 60.0
    assert bound <= t
    if bound != float("-inf"):
        assert bound == t - 1.0
