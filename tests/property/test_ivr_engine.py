"""Properties of the IVR engine over random small flows and random event sequences.

- Whatever the driver sends, the engine never raises, and a started call that is hung up
  has ended in exactly one Outcome, the last action of its list, with only Notices after.
- The path starts at the entry node and only follows edges of the graph.
- A driver that answers what the engine asks for always reaches an Outcome on its own.
- The same inputs give the same actions.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from callmesh.api import IVRFlow
from callmesh.api.contactcenter import Schedule
from callmesh.ivr import (
    Action,
    CallerHangup,
    CallInfo,
    CollectDigits,
    CompiledFlow,
    CrmLookup,
    Digits,
    IvrSession,
    LookupResult,
    Notice,
    Outcome,
    Play,
    PromptFinished,
    Say,
    Timeout,
    compile_flow,
)
from callmesh.ivr.expressions import CelExpression

SCHEDULE = Schedule.model_validate(
    {
        "name": "biz",
        "timeZone": "Europe/Berlin",
        "weekly": [{"days": ["mon", "tue", "wed"], "open": "08:00", "close": "18:00"}],
        "holidays": [
            {"date": "2026-03-30"},
            {"date": "2026-10-26", "open": "09:00", "close": "10:00"},
        ],
    }
)
EXPRESSIONS = [
    'attributes["x"] == "1"',
    'ani.startsWith("+49")',
    '"prio" in attributes && int(attributes["prio"]) > 50',
    'attributes["y"]',
    "size(dnis) > 3",
]
TEMPLATES = ["42", "{{ani}}", "{{x}}", "{{y}}", "abc", "75"]


@st.composite
def flows(draw: st.DrawFn) -> CompiledFlow:
    count = draw(st.integers(1, 6))
    ids = [f"n{i}" for i in range(count)]
    target = st.sampled_from(ids)
    maybe = st.none() | target
    prompt = st.sampled_from([{"file": "a.wav"}, {"text": "Hello {{x}}"}, {"text": "Hi"}])
    nodes: list[dict[str, Any]] = []
    for node_id in ids:
        kind = draw(
            st.sampled_from(
                [
                    "play",
                    "say",
                    "menu",
                    "collect",
                    "condition",
                    "crmLookup",
                    "setAttribute",
                    "queue",
                    "voicemail",
                    "callback",
                    "transfer",
                    "hangup",
                ]
            )
        )
        settings_: dict[str, Any]
        if kind == "play":
            settings_ = {"prompt": draw(prompt), "next": draw(target)}
        elif kind == "say":
            settings_ = {
                "value": draw(st.sampled_from(TEMPLATES)),
                "kind": draw(st.sampled_from(["number", "digits", "date", "currency"])),
                "next": draw(target),
            }
        elif kind == "menu":
            digits = draw(
                st.lists(st.sampled_from("0123456789*#"), min_size=1, max_size=3, unique=True)
            )
            settings_ = {
                "prompt": draw(prompt),
                "options": [{"digit": d, "target": draw(target)} for d in digits],
                "retries": draw(st.integers(1, 3)),
                "invalidTarget": draw(maybe),
                "timeoutTarget": draw(maybe),
                "invalidPrompt": draw(st.none() | prompt),
            }
        elif kind == "collect":
            low = draw(st.integers(1, 3))
            settings_ = {
                "prompt": draw(prompt),
                "attribute": draw(st.sampled_from(["x", "prio"])),
                "minDigits": low,
                "maxDigits": draw(st.integers(low, 5)),
                "terminator": draw(st.sampled_from(["#", "*", ""])),
                "regex": draw(st.sampled_from(["^[0-9]+$", "^1", "[*#]"])),
                "retries": draw(st.integers(1, 3)),
                "next": draw(target),
                "invalidTarget": draw(maybe),
            }
        elif kind == "condition":
            test = draw(
                st.just({"schedule": "biz"})
                | st.sampled_from(EXPRESSIONS).map(lambda e: {"expression": e})
            )
            settings_ = {**test, "ifTrue": draw(target), "ifFalse": draw(target)}
        elif kind == "crmLookup":
            settings_ = {
                "key": draw(st.sampled_from(["{{ani}}", "{{x}}"])),
                "next": draw(target),
                "notFound": draw(maybe),
            }
        elif kind == "setAttribute":
            settings_ = {
                "name": draw(st.sampled_from(["x", "y", "prio"])),
                "value": draw(st.sampled_from(TEMPLATES)),
                "next": draw(target),
            }
        elif kind == "queue":
            settings_ = {
                "queue": "sales",
                "priority": draw(st.integers(0, 100)),
                "priorityAttribute": draw(st.sampled_from([None, "prio", "x"])),
            }
        elif kind == "voicemail":
            settings_ = {"mailbox": "box", "greeting": draw(st.none() | prompt)}
        elif kind == "callback":
            settings_ = {"queue": "callbacks", "prompt": draw(st.none() | prompt)}
        elif kind == "transfer":
            settings_ = {"destination": "sip:desk@example.com"}
        else:
            settings_ = {"prompt": draw(st.none() | prompt)}
        clean = {k: v for k, v in settings_.items() if v is not None}
        nodes.append({"id": node_id, "type": kind, kind: clean})
    spec: dict[str, Any] = {"entry": draw(target), "nodes": nodes}
    on_error = draw(maybe)
    if on_error is not None:
        spec["onError"] = on_error
    flow = IVRFlow.model_validate({"metadata": {"name": "p"}, "spec": spec})
    return compile_flow(flow, [SCHEDULE], "UTC", max_steps=40, max_errors=4)


class Unknown:
    """An event the engine has never heard of."""


digit_strings = st.text(alphabet="0123456789*#AX ", max_size=12) | st.just("1" * 500)
lookup_values = st.dictionaries(
    st.text(alphabet="abcxyz.", min_size=1, max_size=6), st.text(max_size=8), max_size=4
)
events = st.one_of(
    digit_strings.map(Digits),
    st.just(Timeout()),
    st.just(PromptFinished()),
    st.builds(LookupResult, st.none() | lookup_values, st.none() | st.just("down")),
    st.just(CallerHangup()),
    st.builds(Unknown),
)
# Around 2026, plus values zoneinfo cannot place on a calendar.
times = st.floats(1.75e9, 1.82e9) | st.sampled_from([float("nan"), 1e20, -1e20])
calls = st.builds(
    CallInfo,
    st.sampled_from(["+4930123", "+14155550100", ""]),
    st.sampled_from(["+4930999", "100"]),
    st.none()
    | st.dictionaries(st.sampled_from(["x", "y", "prio"]), st.sampled_from(["1", "99", "x"])),
)

WAITS = (CollectDigits, CrmLookup)
CelExpression("true")  # celpy raises the recursion limit once, before hypothesis watches it


def waits(action: Action) -> bool:
    return isinstance(action, WAITS) or (isinstance(action, Play | Say) and action.wait)


def run(
    flow: CompiledFlow, call: CallInfo, sequence: list[object], now: float
) -> list[list[Action]]:
    session = IvrSession(flow)
    batches = [session.start(call, now)]
    for item in sequence:
        batches.append(session.handle(item, now))
    batches.append(session.handle(CallerHangup(), now))
    return batches


def check_path(flow: CompiledFlow, outcome: Outcome) -> None:
    path = outcome.path
    assert path and path[0] == flow.entry
    assert all(node in flow.nodes for node in path)
    for here, there in itertools.pairwise(path):
        assert there in flow.successors(here), (here, there, path)
    assert len(path) <= flow.max_steps
    assert outcome.node == path[-1]


@settings(max_examples=150, deadline=None)
@given(flows(), calls, st.lists(events, max_size=25), times)
def test_any_events_end_in_exactly_one_outcome(
    flow: CompiledFlow, call: CallInfo, sequence: list[object], now: float
) -> None:
    batches = run(flow, call, sequence, now)
    actions = [a for batch in batches for a in batch]
    outcomes = [a for a in actions if isinstance(a, Outcome)]
    assert len(outcomes) == 1
    after = actions[actions.index(outcomes[0]) + 1 :]
    assert all(isinstance(a, Notice) for a in after)
    for batch in batches:
        if outcomes[0] in batch:
            assert batch[-1] is outcomes[0]
        waiting = [i for i, a in enumerate(batch) if waits(a)]
        assert waiting in ([], [len(batch) - 1]), batch
    check_path(flow, outcomes[0])
    event(f"outcome {outcomes[0].kind.value}")
    for code in outcomes[0].errors:
        event(f"error {code.value}")
    assert batches == run(flow, call, sequence, now)  # deterministic


def answer(action: Action, data: st.DataObject) -> object:
    """What a switch / CRM would send back for the action the engine waits on."""
    if isinstance(action, CollectDigits):
        return data.draw(
            st.sampled_from([Timeout(), Digits("1"), Digits("1234#")]) | digit_strings.map(Digits)
        )
    if isinstance(action, CrmLookup):
        return data.draw(
            st.sampled_from(
                [
                    LookupResult(None),
                    LookupResult({"tier": "gold"}),
                    LookupResult(error="x"),
                    Timeout(),
                ]
            )
        )
    return PromptFinished()


@settings(max_examples=150, deadline=None)
@given(flows(), calls, st.data())
def test_a_driver_that_answers_always_reaches_an_outcome(
    flow: CompiledFlow, call: CallInfo, data: st.DataObject
) -> None:
    session = IvrSession(flow)
    actions = session.start(call, 1.79e9)
    for _ in range(flow.max_steps * 12):
        if session.finished:
            break
        assert waits(actions[-1]), actions
        actions = session.handle(answer(actions[-1], data), 1.79e9)
    assert session.finished and session.outcome is not None
    assert actions[-1] is session.outcome
    check_path(flow, session.outcome)
    event(f"outcome {session.outcome.kind.value}")
    for code in session.outcome.errors:
        event(f"error {code.value}")
