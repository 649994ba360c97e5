"""How fast the pure IVR engine walks callers through a typical flow, and what a call costs.

Prints figures, asserts nothing about time. Run:

    PYTHONSAFEPATH=1 .venv/bin/python bench/ivr_engine.py [--calls 20000]

The flow: business-hours condition -> welcome prompt -> CRM lookup -> CEL condition on the
CRM tier -> menu (one invalid key, then a valid one) -> setAttribute -> queue with the
priority from an attribute. Every caller has a different number; the CRM answers one of
three tiers. Reported: compile time, calls/s and events/s through the whole flow, and the
memory of sessions left waiting at the menu (tracemalloc).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time
import tracemalloc

from callmesh.api import IVRFlow
from callmesh.api.contactcenter import Schedule
from callmesh.ivr import (
    CallInfo,
    CompiledFlow,
    Digits,
    IvrSession,
    LookupResult,
    Outcome,
    PromptFinished,
    compile_flow,
)
from callmesh.ivr.expressions import CelExpression

FLOW = {
    "metadata": {"name": "main", "namespace": "acme"},
    "spec": {
        "entry": "hours",
        "onError": "sorry",
        "nodes": [
            {
                "id": "hours",
                "type": "condition",
                "condition": {"schedule": "business", "ifTrue": "welcome", "ifFalse": "closed"},
            },
            {
                "id": "welcome",
                "type": "play",
                "play": {"prompt": {"file": "ivr/welcome.wav"}, "next": "lookup"},
            },
            {"id": "lookup", "type": "crmLookup", "crmLookup": {"next": "vip", "notFound": "menu"}},
            {
                "id": "vip",
                "type": "condition",
                "condition": {
                    "expression": 'attributes["crm.tier"] == "gold"',
                    "ifTrue": "gold",
                    "ifFalse": "menu",
                },
            },
            {
                "id": "gold",
                "type": "setAttribute",
                "setAttribute": {"name": "priority", "value": "80", "next": "sales"},
            },
            {
                "id": "menu",
                "type": "menu",
                "menu": {
                    "prompt": {"text": "For sales press 1, for support press 2"},
                    "options": [
                        {"digit": "1", "target": "sales"},
                        {"digit": "2", "target": "support"},
                    ],
                    "invalidPrompt": {"file": "ivr/invalid.wav"},
                },
            },
            {
                "id": "sales",
                "type": "queue",
                "queue": {"queue": "sales", "priorityAttribute": "priority"},
            },
            {"id": "support", "type": "queue", "queue": {"queue": "support"}},
            {"id": "closed", "type": "voicemail", "voicemail": {"mailbox": "general"}},
            {"id": "sorry", "type": "hangup", "hangup": {"prompt": {"text": "Sorry."}}},
        ],
    },
}
SCHEDULE = {
    "name": "business",
    "timeZone": "Europe/Berlin",
    "weekly": [{"days": ["mon", "tue", "wed", "thu", "fri"], "open": "08:00", "close": "18:00"}],
    "holidays": [{"date": "2026-12-25"}],
}
NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC).timestamp()
TIERS = ({"tier": "gold"}, {"tier": "silver"}, None)


def compile_it() -> CompiledFlow:
    return compile_flow(
        IVRFlow.model_validate(FLOW), [Schedule.model_validate(SCHEDULE)], "Europe/Berlin"
    )


def one_call(flow: CompiledFlow, caller: int, rng: random.Random) -> int:
    """Walk one caller to the end; the number of events handled."""
    session = IvrSession(flow)
    session.start(CallInfo(f"+4930{caller:07d}", "+4930999000"), NOW)
    session.handle(PromptFinished(), NOW + 4)
    actions = session.handle(LookupResult(rng.choice(TIERS)), NOW + 4.2)
    events = 2
    if not isinstance(actions[-1], Outcome):
        session.handle(Digits("9"), NOW + 9)
        actions = session.handle(Digits(rng.choice("12")), NOW + 14)
        events += 2
    assert isinstance(actions[-1], Outcome), actions
    return events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--waiting", type=int, default=10_000)
    args = parser.parse_args()

    started = time.perf_counter()
    flow = compile_it()
    compile_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    compile_it()
    recompile_ms = (time.perf_counter() - started) * 1000

    rng = random.Random(7)
    started = time.perf_counter()
    events = sum(one_call(flow, caller, rng) for caller in range(args.calls))
    elapsed = time.perf_counter() - started

    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    waiting = []
    for caller in range(args.waiting):
        session = IvrSession(flow)
        session.start(CallInfo(f"+4930{caller:07d}", "+4930999000"), NOW)
        session.handle(PromptFinished(), NOW)
        session.handle(LookupResult(None), NOW)  # now waiting at the menu
        waiting.append(session)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))

    print(f"compile: first {compile_ms:.1f} ms (loads CEL), again {recompile_ms:.1f} ms")
    print(
        f"calls: {args.calls} in {elapsed:.2f} s = {args.calls / elapsed:,.0f} calls/s,"
        f" {(events + args.calls) / elapsed:,.0f} start+events/s,"
        f" {elapsed / (events + args.calls) * 1e6:.1f} us per start/event"
    )
    print(f"memory: {grown / len(waiting):,.0f} bytes per session waiting at the menu")

    expression = CelExpression('attributes["crm.tier"] == "gold" && ani.startsWith("+49")')
    attributes = {"crm.tier": "gold", "crm.name": "Ann"}
    rounds = 2000
    started = time.perf_counter()
    for caller in range(rounds):
        expression._evaluate(f"+49{caller}", "100", attributes)
    uncached = (time.perf_counter() - started) / rounds * 1e6
    started = time.perf_counter()
    for _ in range(rounds):
        expression.evaluate("+4930", "100", attributes)
    cached = (time.perf_counter() - started) / rounds * 1e6
    print(f"CEL condition: {uncached:.0f} us evaluated, {cached:.1f} us from the cache")


if __name__ == "__main__":
    main()
