"""Rebuilding a campaign's compliance state from the audit journal (a restart)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callmesh.api.dialercampaign import DialerCampaignSpec
from callmesh.dialer.campaign import AgentSnapshot, Campaign, Connect, Dial, Outcome, SafeHarbour
from callmesh.dialer.contacts import parse_contact_csv
from callmesh.dialer.journal import (
    CallOutcome,
    DialDecision,
    decision_record,
    outcome_record,
    parse_record,
)

MONDAY_10_UTC = 1795428000.0  # 2026-11-23 10:00 UTC


def spec(**overrides: Any) -> DialerCampaignSpec:
    base: dict[str, Any] = {
        "mode": "progressive",
        "state": "running",
        "queue": "sales",
        "contactList": {"configMap": {"name": "list", "key": "contacts.csv"}},
        "callerId": {"number": "+12125550100"},
        "callingWindow": {"days": ["mon", "tue"], "start": "00:00", "end": "23:59"},
        "maxAttemptsPerDay": 2,
        "retries": [
            {"disposition": "busy", "maxAttempts": 4, "delaySeconds": 60},
            {"disposition": "noAnswer", "maxAttempts": 3, "delaySeconds": 120},
        ],
    }
    base.update(overrides)
    return DialerCampaignSpec.model_validate(base)


def contacts(n: int) -> Any:
    rows = "".join(f"c{i},+1212555{i:04d}\n" for i in range(n))
    return parse_contact_csv("id,phone\n" + rows, "UTC")


class Worker:
    """Drives an engine and writes the journal the way ``workers/dialer`` does."""

    def __init__(self, engine: Campaign) -> None:
        self.engine = engine
        self.journal: list[dict[str, object]] = []
        self.flushed = 0
        self.live: dict[str, float] = {}  # attempt -> answered at (calls waiting for an agent)

    def flush(self) -> None:
        for entry in self.engine.audit[self.flushed :]:
            self.journal.append(decision_record(self.engine.name, entry))
        self.flushed = len(self.engine.audit)

    def outcome(self, attempt: str, what: str, at: float) -> None:
        self.journal.append(outcome_record(self.engine.name, attempt, "u-" + attempt, what, "", at))

    def tick(self, now: float, free: int) -> list[Dial]:
        effects = self.engine.tick(now, AgentSnapshot(free=free))
        self.flush()
        for effect in effects:
            if isinstance(effect, SafeHarbour):
                self.outcome(effect.attempt_id, "abandoned", now)
                self.live.pop(effect.attempt_id, None)
        return [e for e in effects if isinstance(e, Dial)]

    def resolve(self, attempt: str, outcome: Outcome, at: float) -> None:
        self.outcome(attempt, outcome.value, at)
        effects = self.engine.on_outcome(attempt, outcome, at)
        self.flush()
        if any(isinstance(e, Connect) for e in effects):
            self.live[attempt] = at

    def connect(self, attempt: str, at: float) -> None:
        self.outcome(attempt, "connected", at)
        self.engine.on_agent_connected(attempt, at)
        self.live.pop(attempt, None)


def restarted(journal: list[dict[str, object]], now: float, **kw: Any) -> Campaign:
    engine = Campaign("camp", kw.pop("spec", spec()), kw.pop("contacts", contacts(3)), frozenset())
    engine.replay([parse_record(r) for r in journal], now, **kw)
    return engine


def test_the_frequency_cap_and_the_retry_delay_survive_a_restart() -> None:
    worker = Worker(Campaign("camp", spec(), contacts(1), frozenset()))
    t = MONDAY_10_UTC
    for _ in range(2):  # two busy attempts: the day's cap of 2 is reached
        (dial,) = worker.tick(t, free=1)
        worker.resolve(dial.attempt_id, Outcome.BUSY, t + 3)
        t += 64
    engine = restarted(worker.journal, t, contacts=contacts(1))
    assert engine.tick(t, AgentSnapshot(free=5)) == []
    assert engine.audit[-1].reason == "frequency cap of 2 attempts a day reached"
    assert engine.stats(t).dialled == 2
    tuesday = t + 86400  # a new local day: dialled again, attempt 3 (the ids go on)
    (dial,) = [e for e in engine.tick(tuesday, AgentSnapshot(free=1)) if isinstance(e, Dial)]
    assert dial.attempt_id == "camp.c0.3"


def test_the_abandon_meter_survives_a_restart_and_unknown_fates_count_against_us() -> None:
    worker = Worker(Campaign("camp", spec(), contacts(3), frozenset()))
    t = MONDAY_10_UTC
    dials = worker.tick(t, free=3)
    worker.resolve(dials[0].attempt_id, Outcome.HUMAN, t + 5)
    worker.connect(dials[0].attempt_id, t + 5.5)  # in time
    worker.resolve(dials[1].attempt_id, Outcome.HUMAN, t + 6)
    worker.tick(t + 9, free=0)  # the window is over: safe harbour, counted
    worker.resolve(dials[2].attempt_id, Outcome.HUMAN, t + 10)  # the pod dies here
    before = worker.engine.stats(t + 10)
    assert (before.answered, before.abandoned) == (3, 1)

    engine = restarted(worker.journal, t + 60)
    after = engine.stats(t + 60)
    # the third person's fate is unknown: counted abandoned rather than risk the cap
    assert (after.answered, after.abandoned, after.reached) == (3, 2, 1)
    assert engine.remaining() == 2 and engine.tick(t + 60, AgentSnapshot(free=3)) == []

    pending = restarted(worker.journal, t + 11)  # its window is still open at the restart
    assert pending.stats(t + 11).abandoned == 1 and pending.next_deadline() == t + 12
    effects = pending.tick(t + 12, AgentSnapshot(free=0))
    assert [type(e) for e in effects] == [SafeHarbour] and pending.stats(t + 12).abandoned == 2


def test_a_call_that_rang_when_the_pod_died_holds_its_contact_back() -> None:
    worker = Worker(Campaign("camp", spec(), contacts(1), frozenset()))
    t = MONDAY_10_UTC
    (dial,) = worker.tick(t, free=1)  # no outcome recorded
    engine = restarted(worker.journal, t + 30, contacts=contacts(1))
    assert engine.tick(t + 30, AgentSnapshot(free=1)) == []  # noAnswer's 120 s delay
    assert engine.in_flight == 0
    (again,) = [e for e in engine.tick(t + 121, AgentSnapshot(free=1)) if isinstance(e, Dial)]
    assert again.attempt_id == "camp.c0.2"
    followed = restarted(worker.journal, t + 30, contacts=contacts(1), in_flight=[dial.attempt_id])
    assert followed.in_flight == 1  # a list change in the same process: the call goes on
    assert followed.on_outcome(dial.attempt_id, Outcome.BUSY, t + 31) == []


def test_an_opt_out_survives_a_restart() -> None:
    agentless = spec(
        mode="agentless", agentless={"message": {"file": "offer.wav"}, "optOutDigit": "9"}
    )
    worker = Worker(Campaign("camp", agentless, contacts(2), frozenset()))
    t = MONDAY_10_UTC
    dials = worker.tick(t, free=0)
    worker.resolve(dials[0].attempt_id, Outcome.HUMAN, t + 5)
    worker.engine.on_digit(dials[0].attempt_id, "9", t + 20)
    worker.flush()
    worker.resolve(dials[1].attempt_id, Outcome.BUSY, t + 3)
    engine = restarted(worker.journal, t + 30, spec=agentless, contacts=contacts(2))
    assert engine.stats(t + 30).answered == 1 and engine.remaining() == 1
    assert engine.dial_preview("c0", t + 200) is None  # opted out: never again


def test_records_name_the_bad_field() -> None:
    good = outcome_record("camp", "camp.c0.1", "u", "busy", "", 1.0)
    assert parse_record(good) == CallOutcome(1.0, "camp", "camp.c0.1", "busy", "", "u")
    decision = {"at": 2, "campaign": "camp", "contact": "c0", "phone": "+1", "dialled": True}
    assert parse_record({**decision, "reason": "attempt 7"}) == DialDecision(
        2.0, "camp", "c0", "+1", True, "attempt 7"
    )
    with pytest.raises(ValueError, match="'at'"):
        parse_record({**good, "at": "yesterday"})
    with pytest.raises(ValueError, match="'dialled'"):
        parse_record({**decision, "reason": "x", "dialled": "yes"})
    with pytest.raises(ValueError, match="'reason'"):
        parse_record(decision)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.floats(0.1, 0.95))
def test_a_restart_anywhere_rebuilds_what_the_rules_depend_on(seed: int, cut: float) -> None:
    """Run a campaign with random outcomes, stop at a random point, rebuild from the journal:
    the counters and every later decision match the engine that never stopped (calls
    resolved before the restart; the ones ringing at the cut are the held-back ones)."""
    rng = random.Random(seed)
    worker = Worker(Campaign("camp", spec(), contacts(8), frozenset()))
    t = MONDAY_10_UTC
    ringing: dict[str, float] = {}
    steps = 200
    stop = int(steps * cut)
    for step in range(steps):
        t += 7
        for attempt, at in sorted(ringing.items(), key=lambda x: x[1]):
            if at <= t:
                del ringing[attempt]
                outcome = rng.choice(list(Outcome))
                worker.resolve(attempt, outcome, at)
        for attempt in list(worker.live):
            if rng.random() < 0.5:
                worker.connect(attempt, t - 6.5 if rng.random() < 0.8 else t)
        free = rng.randint(0, 2)
        for dial in worker.tick(t, free):
            ringing[dial.attempt_id] = t + rng.uniform(1, 20)
        if step >= stop and not ringing and not worker.live:
            break
    if ringing or worker.live:
        return  # the cut fell mid-call: covered by the other tests
    engine = restarted(worker.journal, t, contacts=contacts(8))
    a, b = worker.engine.stats(t), engine.stats(t)
    assert (a.dialled, a.answered, a.abandoned, a.reached, a.exhausted, a.in_flight) == (
        b.dialled,
        b.answered,
        b.abandoned,
        b.reached,
        b.exhausted,
        b.in_flight,
    )
    assert worker.engine.remaining() == engine.remaining()
    for later in (t + 1, t + 200, t + 86400):
        mine = [d.attempt_id for d in worker.engine.tick(later, AgentSnapshot(free=8))]
        theirs = [d.attempt_id for d in engine.tick(later, AgentSnapshot(free=8))]
        assert mine == theirs


def test_a_contact_refused_before_a_restart_is_judged_again_under_the_new_spec() -> None:
    """A restart is how a changed DialerCampaign reaches the worker: a contact refused by
    the old calling window, or the old daily cap, is dialled at once if the new spec allows
    it, not at the old window's next opening or the next midnight."""
    evening = MONDAY_10_UTC + 7.5 * 3600  # 17:30 UTC
    narrow = spec(callingWindow={"days": ["mon"], "start": "09:00", "end": "17:00"})
    worker = Worker(Campaign("camp", narrow, contacts(1), frozenset()))
    assert worker.tick(evening, free=1) == []  # outside the window: refused, parked
    wide = spec(callingWindow={"days": ["mon"], "start": "09:00", "end": "21:00"})
    engine = restarted(worker.journal, evening + 60, spec=wide, contacts=contacts(1))
    dials = engine.tick(evening + 60, AgentSnapshot(free=1))
    assert [d.attempt_id for d in dials if isinstance(d, Dial)] == ["camp.c0.1"]

    capped = Worker(Campaign("camp", spec(maxAttemptsPerDay=1), contacts(1), frozenset()))
    (dial,) = capped.tick(MONDAY_10_UTC, free=1)
    capped.resolve(dial.attempt_id, Outcome.NO_ANSWER, MONDAY_10_UTC + 20)
    assert capped.tick(MONDAY_10_UTC + 200, free=1) == []  # the day's cap of 1: refused
    later = MONDAY_10_UTC + 300
    engine = restarted(capped.journal, later, spec=spec(maxAttemptsPerDay=3), contacts=contacts(1))
    dials = engine.tick(later, AgentSnapshot(free=1))
    assert [d.attempt_id for d in dials if isinstance(d, Dial)] == ["camp.c0.2"]
