"""Contacts refused for a reason of the clock (window closed, daily cap) are looked at again
cheaply; what the engine decides and audits is the same as checking every rule each time."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import callmesh.dialer.campaign as campaign_module
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


def run(
    seed: int, *, parking: bool, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[Any], list[Any]]:
    """Four days of ticks with random outcomes: (dials, audit)."""
    with monkeypatch.context() as patch:
        if not parking:  # no contact is ever known to stay refused: every rule checked each time
            patch.setattr(campaign_module, "next_local_time", lambda *_: float("-inf"))
        rng = random.Random(seed)
        rows = "".join(f"c{i},+1212555{i:04d},{ZONES[i % len(ZONES)]}\n" for i in range(40))
        contacts = parse_contact_csv("id,phone,timeZone\n" + rows, "UTC")
        engine = Campaign("camp", spec(), contacts, frozenset(), time_zone="UTC")
        ringing: list[tuple[float, str]] = []
        dials = []
        t = START
        while t < START + 4 * 86400:
            t += rng.choice((60.0, 300.0, 1200.0))
            for at, attempt in sorted(ringing):
                if at <= t:
                    ringing.remove((at, attempt))
                    engine.on_outcome(attempt, rng.choice(list(Outcome)), at)
            for effect in engine.tick(t, AgentSnapshot(free=rng.randint(0, 3))):
                if isinstance(effect, Dial):
                    dials.append((t, effect.attempt_id))
                    ringing.append((t + rng.uniform(3, 25), effect.attempt_id))
        return dials, engine.audit


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_rechecks_decide_and_audit_as_a_full_check(seed: int) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast = run(seed, parking=True, monkeypatch=monkeypatch)
        full = run(seed, parking=False, monkeypatch=monkeypatch)
    assert fast[0] and fast == full
    reasons = {entry.reason.split(" in ")[0] for entry in fast[1] if not entry.dialled}
    assert {"outside the calling window", "frequency cap of 1 attempts a day reached"} <= reasons


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
