"""IvrSession: every node type, every edge (retries, invalid, timeout, errors), bad input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from callmesh.ivr import (
    Action,
    Answer,
    CallbackRequest,
    CallerHangup,
    CallInfo,
    CollectDigits,
    CompiledFlow,
    CrmLookup,
    Digits,
    EnqueueContact,
    Error,
    ErrorCode,
    Hangup,
    IvrSession,
    LookupResult,
    Notice,
    NoticeCode,
    Outcome,
    OutcomeKind,
    Play,
    PromptFinished,
    PromptRef,
    Say,
    SkillNeed,
    Timeout,
    Transfer,
    Voicemail,
    Waiting,
)

Node = Callable[..., dict[str, Any]]
CALL = CallInfo(ani="+4930123456", dnis="+4930999000", attributes={"lang": "de"})
T0 = 1_000.0


def outcome(actions: list[Action]) -> Outcome:
    """The outcome that ends ``actions`` (and no other)."""
    found = [a for a in actions if isinstance(a, Outcome)]
    assert len(found) == 1, actions
    assert actions[-1] is found[0]
    return found[0]


def kinds(actions: list[Action]) -> list[type]:
    return [type(a) for a in actions]


def started(flow: CompiledFlow, call: CallInfo = CALL) -> tuple[IvrSession, list[Action]]:
    session = IvrSession(flow)
    return session, session.start(call, T0)


def hangup_node(n: Node, node_id: str = "bye") -> dict[str, Any]:
    return n(node_id, "hangup")


def queue_node(n: Node, node_id: str = "q", queue: str = "sales", **extra: Any) -> dict[str, Any]:
    return n(node_id, "queue", queue=queue, **extra)


# --- play, say, setAttribute -------------------------------------------------------------


def test_play_waits_for_the_prompt_then_goes_on(build: Any, n: Node) -> None:
    flow = build([n("hi", "play", prompt={"file": "ivr/hi.wav"}, next="q"), queue_node(n)])
    session, actions = started(flow)
    assert actions == [Answer(), Play(PromptRef(file="ivr/hi.wav"), wait=True)]
    assert session.waiting is Waiting.PROMPT
    actions = session.handle(PromptFinished(), T0 + 3)
    assert isinstance(actions[0], EnqueueContact)
    result = outcome(actions)
    assert (result.kind, result.path, result.ended_at) == (OutcomeKind.QUEUED, ("hi", "q"), T0 + 3)


def test_tts_prompt_fills_templates_and_uses_flow_language(build: Any, n: Node) -> None:
    flow = build(
        [
            n("hi", "play", prompt={"text": "Hello {{ lang }} caller {{ani}}"}, next="q"),
            queue_node(n),
        ],
        language="de",
    )
    _, actions = started(flow)
    assert actions[1] == Play(PromptRef(text="Hello de caller +4930123456", language="de"))


def test_say_fills_the_value_and_checks_it_fits_the_kind(build: Any, n: Node) -> None:
    flow = build(
        [
            n("set", "setAttribute", name="balance", value="42", next="say"),
            n("say", "say", value="{{balance}}", kind="currency", language="de", next="q"),
            queue_node(n),
        ]
    )
    session, actions = started(flow)
    assert actions[-1] == Say("42", "currency", "de", wait=True)
    assert outcome(session.handle(PromptFinished(), T0)).path == ("set", "say", "q")


def test_say_of_a_value_that_is_not_a_number_takes_on_error(build: Any, n: Node) -> None:
    flow = build(
        [
            n("say", "say", value="{{lang}}", kind="number", next="q"),
            queue_node(n),
            hangup_node(n),
        ],
        on_error="bye",
    )
    _, actions = started(flow)
    error = next(a for a in actions if isinstance(a, Error))
    assert (error.code, error.node, error.recovery) == (ErrorCode.BAD_VALUE, "say", "bye")
    assert outcome(actions).kind is OutcomeKind.HUNG_UP


def test_set_attribute_templates_read_ani_dnis_and_attributes(build: Any, n: Node) -> None:
    flow = build(
        [
            n("a", "setAttribute", name="who", value="{{ani}}->{{dnis}}/{{lang}}", next="q"),
            queue_node(n),
        ]
    )
    _, actions = started(flow)
    assert outcome(actions).attributes["who"] == "+4930123456->+4930999000/de"


def test_missing_template_attribute_takes_on_error(build: Any, n: Node) -> None:
    flow = build(
        [
            n("a", "setAttribute", name="x", value="{{crm.name}}", next="q"),
            queue_node(n),
            hangup_node(n),
        ],
        on_error="bye",
    )
    _, actions = started(flow)
    error = next(a for a in actions if isinstance(a, Error))
    assert error.code is ErrorCode.TEMPLATE and "crm.name" in error.message
    result = outcome(actions)
    assert result.path == ("a", "bye") and result.errors == (ErrorCode.TEMPLATE,)


# --- menu ----------------------------------------------------------------------------------


def menu_flow(build: Any, n: Node, **menu: Any) -> CompiledFlow:
    settings = {
        "prompt": {"file": "menu.wav"},
        "options": [{"digit": "1", "target": "sales"}, {"digit": "#", "target": "support"}],
        "retries": 3,
        **menu,
    }
    return build(
        [
            n("menu", "menu", **settings),
            queue_node(n, "sales", "sales"),
            queue_node(n, "support", "support"),
            n("operator", "transfer", destination="sip:operator@example.com"),
            hangup_node(n),
        ],
        on_error="bye",
    )


def test_menu_asks_for_one_key_and_branches(build: Any, n: Node) -> None:
    session, actions = started(menu_flow(build, n))
    ask = actions[-1]
    assert isinstance(ask, CollectDigits)
    assert (ask.min_digits, ask.max_digits, ask.terminators, ask.timeout) == (1, 1, "", 5.0)
    assert (ask.attempt, ask.max_attempts, ask.node, ask.regex) == (1, 3, "menu", r"^[\#1]$")
    result = outcome(session.handle(Digits("#"), T0))
    assert (result.target, result.path) == ("support", ("menu", "support"))


def test_menu_invalid_key_plays_invalid_prompt_and_asks_again(build: Any, n: Node) -> None:
    flow = menu_flow(build, n, invalidPrompt={"file": "invalid.wav"})
    session, _ = started(flow)
    actions = session.handle(Digits("9"), T0)
    assert actions[0] == Play(PromptRef(file="invalid.wav"), wait=False)
    again = actions[1]
    assert isinstance(again, CollectDigits) and again.attempt == 2
    assert outcome(session.handle(Digits("1"), T0)).target == "sales"


def test_menu_timeout_asks_again_without_invalid_prompt(build: Any, n: Node) -> None:
    session, _ = started(menu_flow(build, n, invalidPrompt={"file": "invalid.wav"}))
    actions = session.handle(Timeout(), T0)
    assert kinds(actions) == [CollectDigits]


def test_menu_last_invalid_goes_to_invalid_target(build: Any, n: Node) -> None:
    session, _ = started(menu_flow(build, n, invalidTarget="operator", timeoutTarget="sales"))
    session.handle(Timeout(), T0)
    session.handle(Digits("7"), T0)
    result = outcome(session.handle(Digits("8"), T0))
    assert (result.kind, result.node) == (OutcomeKind.TRANSFERRED, "operator")


def test_menu_last_timeout_goes_to_timeout_target(build: Any, n: Node) -> None:
    session, _ = started(menu_flow(build, n, invalidTarget="operator", timeoutTarget="sales"))
    session.handle(Digits("7"), T0)
    session.handle(Digits("7"), T0)
    result = outcome(session.handle(Timeout(), T0))
    assert (result.target, result.path) == ("sales", ("menu", "sales"))


def test_menu_exhausted_without_targets_takes_on_error(build: Any, n: Node) -> None:
    session, _ = started(menu_flow(build, n, retries=2))
    session.handle(Digits("5"), T0)
    actions = session.handle(Digits("5"), T0)
    assert actions[0] == Error(ErrorCode.MENU_INVALID, "menu", actions[0].message, "bye")  # type: ignore[union-attr]
    result = outcome(actions)
    assert (result.kind, result.path) == (OutcomeKind.HUNG_UP, ("menu", "bye"))


def test_menu_exhausted_without_on_error_hangs_up_safely(build: Any, n: Node) -> None:
    flow = build(
        [
            n(
                "menu",
                "menu",
                prompt={"file": "m.wav"},
                options=[{"digit": "1", "target": "q"}],
                retries=1,
            ),
            queue_node(n),
        ]
    )
    session, _ = started(flow)
    actions = session.handle(Timeout(), T0)
    assert kinds(actions) == [Error, Hangup, Outcome]
    assert actions[0] == Error(ErrorCode.MENU_TIMEOUT, "menu", actions[0].message, None)  # type: ignore[union-attr]
    result = outcome(actions)
    assert result.kind is OutcomeKind.FAILED and result.errors == (ErrorCode.MENU_TIMEOUT,)


def test_five_hundred_digits_on_a_menu_are_one_invalid_entry(build: Any, n: Node) -> None:
    session, _ = started(menu_flow(build, n))
    actions = session.handle(Digits("1" * 500), T0)
    notice = actions[0]
    assert isinstance(notice, Notice) and notice.code is NoticeCode.INVALID_DIGITS
    assert "500 characters" in notice.message and len(notice.message) < 120
    assert isinstance(actions[-1], CollectDigits) and actions[-1].attempt == 2


# --- collect -------------------------------------------------------------------------------


def collect_flow(build: Any, n: Node, **collect: Any) -> CompiledFlow:
    settings = {
        "prompt": {"text": "Your account number"},
        "attribute": "account",
        "minDigits": 4,
        "maxDigits": 6,
        "regex": "^[1-9][0-9]+$",
        "retries": 2,
        "next": "q",
        **collect,
    }
    return build([n("acct", "collect", **settings), queue_node(n), hangup_node(n)], on_error="bye")


def test_collect_stores_digits_without_terminator(build: Any, n: Node) -> None:
    session, actions = started(collect_flow(build, n))
    ask = actions[-1]
    assert isinstance(ask, CollectDigits)
    assert (ask.min_digits, ask.max_digits, ask.terminators, ask.timeout, ask.regex) == (
        4,
        6,
        "#",
        8.0,
        "^[1-9][0-9]+$",
    )
    result = outcome(session.handle(Digits("12345#"), T0))
    assert result.attributes["account"] == "12345"


@pytest.mark.parametrize(
    "digits",
    ["0123", "12", "1234567", "12a4", "*123"],
    ids=["regex", "short", "long", "letter", "star"],
)
def test_collect_rejects_input_and_retries(build: Any, n: Node, digits: str) -> None:
    session, _ = started(collect_flow(build, n))
    actions = session.handle(Digits(digits), T0)
    assert isinstance(actions[-1], CollectDigits) and actions[-1].attempt == 2
    assert "account" not in session.attributes


def test_collect_failures_then_success(build: Any, n: Node) -> None:
    session, _ = started(collect_flow(build, n, retries=3))
    session.handle(Timeout(), T0)
    session.handle(Digits("#"), T0)  # only the terminator: nothing entered
    result = outcome(session.handle(Digits("9876"), T0))
    assert result.attributes["account"] == "9876"


def test_collect_exhausted_goes_to_invalid_target(build: Any, n: Node) -> None:
    flow = build(
        [
            n(
                "acct",
                "collect",
                prompt={"file": "a.wav"},
                attribute="account",
                retries=1,
                next="q",
                invalidTarget="agent",
            ),
            queue_node(n),
            queue_node(n, "agent", "agents"),
        ]
    )
    session, _ = started(flow)
    assert outcome(session.handle(Digits("x"), T0)).target == "agents"


def test_collect_exhausted_takes_on_error(build: Any, n: Node) -> None:
    session, _ = started(collect_flow(build, n))
    session.handle(Timeout(), T0)
    actions = session.handle(Digits("1" * 500), T0)
    assert kinds(actions)[:2] == [Notice, Error]
    assert outcome(actions).errors == (ErrorCode.COLLECT_FAILED,)


def test_collect_without_terminator_keeps_hash(build: Any, n: Node) -> None:
    session, _ = started(collect_flow(build, n, terminator="", regex="^[0-9#]+$"))
    assert outcome(session.handle(Digits("1234#"), T0)).attributes["account"] == "1234#"


# --- crm lookup ----------------------------------------------------------------------------


def lookup_flow(build: Any, n: Node, **lookup: Any) -> CompiledFlow:
    return build(
        [
            n("crm", "crmLookup", next="known", **lookup),
            queue_node(n, "known", "vip"),
            queue_node(n, "unknown", "general"),
            hangup_node(n),
        ],
        on_error="bye",
    )


def test_lookup_result_becomes_crm_attributes(build: Any, n: Node) -> None:
    session, actions = started(lookup_flow(build, n, timeoutMs=800))
    assert actions[-1] == CrmLookup("+4930123456", 0.8, "crm")
    assert session.waiting is Waiting.LOOKUP
    result = outcome(session.handle(LookupResult({"name": "Ann", "tier": "gold"}), T0))
    assert dict(result.attributes) == {
        "lang": "de",
        "crm.found": "true",
        "crm.name": "Ann",
        "crm.tier": "gold",
    }


def test_lookup_key_template(build: Any, n: Node) -> None:
    _, actions = started(lookup_flow(build, n, key="acct-{{lang}}"))
    assert isinstance(actions[-1], CrmLookup) and actions[-1].key == "acct-de"


def test_unknown_caller_goes_to_not_found(build: Any, n: Node) -> None:
    session, _ = started(lookup_flow(build, n, notFound="unknown"))
    result = outcome(session.handle(LookupResult(None), T0))
    assert (result.target, result.attributes["crm.found"]) == ("general", "false")


def test_unknown_caller_without_not_found_goes_next(build: Any, n: Node) -> None:
    session, _ = started(lookup_flow(build, n))
    assert outcome(session.handle(LookupResult(None), T0)).target == "vip"


@pytest.mark.parametrize(
    "event", [LookupResult(error="crm down"), Timeout()], ids=["error", "timeout"]
)
def test_lookup_failure_takes_on_error(build: Any, n: Node, event: object) -> None:
    session, _ = started(lookup_flow(build, n))
    actions = session.handle(event, T0)
    error = actions[0]
    assert isinstance(error, Error) and error.code is ErrorCode.LOOKUP_FAILED
    assert outcome(actions).node == "bye"


def test_huge_lookup_result_is_trimmed_and_reported(build: Any, n: Node) -> None:
    session, _ = started(lookup_flow(build, n))
    big = {f"k{i:03d}": "v" * 5000 for i in range(100)}
    actions = session.handle(LookupResult(big), T0)
    assert isinstance(actions[0], Notice) and actions[0].code is NoticeCode.LOOKUP_TRIMMED
    attrs = outcome(actions).attributes
    crm = [k for k in attrs if k.startswith("crm.k")]
    assert len(crm) == 64 and all(len(attrs[k]) == 1024 for k in crm)


# --- condition -----------------------------------------------------------------------------


def condition_flow(
    build: Any, n: Node, on_error: str | None = "bye", **condition: Any
) -> CompiledFlow:
    return build(
        [
            n("check", "condition", ifTrue="yes", ifFalse="no", **condition),
            queue_node(n, "yes", "yes"),
            queue_node(n, "no", "no"),
            hangup_node(n),
        ],
        on_error=on_error,
        schedules=[
            {
                "name": "business",
                "timeZone": "Europe/Berlin",
                "weekly": [{"days": ["mon"], "open": "08:00", "close": "18:00"}],
            }
        ],
    )


def test_schedule_condition_open_and_closed(build: Any, n: Node, monday: float) -> None:
    flow = condition_flow(build, n, schedule="business")
    assert outcome(IvrSession(flow).start(CALL, monday)).target == "yes"
    assert outcome(IvrSession(flow).start(CALL, monday + 8 * 3600)).target == "no"


@pytest.mark.parametrize(
    ("expression", "target"),
    [
        ('attributes["lang"] == "de"', "yes"),
        ('ani.startsWith("+49") && dnis.endsWith("000")', "yes"),
        ('"crm.tier" in attributes && attributes["crm.tier"] == "gold"', "no"),
        ("has(attributes.lang) && size(attributes) == 1", "yes"),
    ],
)
def test_expression_condition(build: Any, n: Node, expression: str, target: str) -> None:
    flow = condition_flow(build, n, expression=expression)
    assert outcome(IvrSession(flow).start(CALL, T0)).target == target


@pytest.mark.parametrize(
    "expression",
    [
        'attributes["crm.tier"] == "gold"',
        'int(attributes["lang"]) > 2',
        'attributes["lang"]',
        "1 / 0 == 1",
    ],
    ids=["missing", "type", "not-bool", "divide"],
)
def test_expression_errors_take_on_error(build: Any, n: Node, expression: str) -> None:
    flow = condition_flow(build, n, expression=expression)
    actions = IvrSession(flow).start(CALL, T0)
    error = next(a for a in actions if isinstance(a, Error))
    assert (error.code, error.node, error.recovery) == (ErrorCode.EXPRESSION, "check", "bye")
    assert expression in error.message
    assert outcome(actions).path == ("check", "bye")


def test_expression_error_without_on_error_hangs_up(build: Any, n: Node) -> None:
    flow = condition_flow(build, n, on_error=None, expression='attributes["nope"] == "x"')
    actions = IvrSession(flow).start(CALL, T0)
    assert kinds(actions) == [Answer, Error, Hangup, Outcome]
    assert "nope" in actions[1].message  # type: ignore[union-attr]
    assert outcome(actions).kind is OutcomeKind.FAILED


def test_expression_is_compiled_once_per_flow(build: Any, n: Node) -> None:
    flow = condition_flow(build, n, expression='attributes["lang"] == "de"')
    step = flow.nodes["check"]
    expression = step.expression  # type: ignore[union-attr]
    for _ in range(3):
        IvrSession(flow).start(CALL, T0)
    assert flow.nodes["check"].expression is expression  # type: ignore[union-attr]


# --- queue, voicemail, callback, transfer, hangup ------------------------------------------


def test_queue_priority_and_skills(build: Any, n: Node) -> None:
    flow = build(
        [
            queue_node(
                n,
                priority=10,
                priorityAttribute="prio",
                skills=[{"name": "german", "minLevel": 3}],
            )
        ]
    )
    actions = IvrSession(flow).start(CallInfo("1", "2", {"prio": " 70 "}), T0)
    enqueue = actions[1]
    assert isinstance(enqueue, EnqueueContact)
    assert (enqueue.queue, enqueue.priority, enqueue.skills) == (
        "sales",
        70,
        (SkillNeed("german", 3),),
    )
    assert dict(enqueue.attributes) == {"prio": " 70 "}


@pytest.mark.parametrize(
    ("value", "expected", "noticed"),
    [(None, 10, False), ("abc", 10, True), ("250", 100, True), ("-3", 0, True)],
)
def test_queue_priority_attribute_bad_values(
    build: Any, n: Node, value: str | None, expected: int, noticed: bool
) -> None:
    flow = build([queue_node(n, priority=10, priorityAttribute="prio")])
    attributes = {} if value is None else {"prio": value}
    actions = IvrSession(flow).start(CallInfo("1", "2", attributes), T0)
    enqueue = next(a for a in actions if isinstance(a, EnqueueContact))
    assert enqueue.priority == expected
    assert (
        any(isinstance(a, Notice) and a.code is NoticeCode.BAD_PRIORITY for a in actions) is noticed
    )


def test_voicemail(build: Any, n: Node) -> None:
    flow = build([n("vm", "voicemail", mailbox="sales", greeting={"file": "closed.wav"})])
    actions = IvrSession(flow).start(CALL, T0)
    assert actions[1] == Voicemail("sales", PromptRef(file="closed.wav"))
    assert (outcome(actions).kind, outcome(actions).target) == (OutcomeKind.VOICEMAIL, "sales")


def test_callback_requests_confirms_and_hangs_up(build: Any, n: Node) -> None:
    flow = build([n("cb", "callback", queue="callbacks", prompt={"text": "We call you back"})])
    actions = IvrSession(flow).start(CALL, T0)
    assert kinds(actions) == [Answer, CallbackRequest, Play, Hangup, Outcome]
    request = actions[1]
    assert isinstance(request, CallbackRequest)
    assert (request.queue, request.number) == ("callbacks", "+4930123456")
    assert actions[2] == Play(PromptRef(text="We call you back"), wait=False)
    assert outcome(actions).kind is OutcomeKind.CALLBACK


def test_transfer_uses_flow_caller_id(build: Any, n: Node) -> None:
    flow = build([n("t", "transfer", destination="+14155550100")], callerIdNumber="+4930999000")
    actions = IvrSession(flow).start(CALL, T0)
    assert actions[1] == Transfer("+14155550100", "+4930999000")
    assert outcome(actions).kind is OutcomeKind.TRANSFERRED


def test_hangup_node_plays_then_hangs_up(build: Any, n: Node) -> None:
    flow = build([n("bye", "hangup", prompt={"file": "bye.wav"}, cause="USER_BUSY")])
    actions = IvrSession(flow).start(CALL, T0)
    assert actions[1:3] == [Play(PromptRef(file="bye.wav"), wait=False), Hangup("USER_BUSY")]
    assert outcome(actions).kind is OutcomeKind.HUNG_UP


# --- caller hang-up, stray and late events -------------------------------------------------


def test_caller_hangup_is_abandoned_at_current_node(build: Any, n: Node) -> None:
    session, _ = started(menu_flow(build, n))
    actions = session.handle(CallerHangup(), T0 + 4)
    result = outcome(actions)
    assert kinds(actions) == [Outcome]  # no Hangup action: the caller is gone already
    assert (result.kind, result.node, result.ended_at) == (OutcomeKind.ABANDONED, "menu", T0 + 4)
    assert session.finished and session.outcome is result


@pytest.mark.parametrize(
    "event", [Digits("1"), Timeout(), PromptFinished(), LookupResult(None), CallerHangup()]
)
def test_events_after_the_end_are_reported_not_acted_on(build: Any, n: Node, event: object) -> None:
    session, _ = started(build([queue_node(n)]))
    actions = session.handle(event, T0)
    assert len(actions) == 1 and isinstance(actions[0], Notice)
    assert actions[0].code is NoticeCode.AFTER_END


@pytest.mark.parametrize("event", [Digits("1"), Timeout(), LookupResult(None)])
def test_events_that_do_not_fit_the_state_are_ignored(build: Any, n: Node, event: object) -> None:
    flow = build([n("hi", "play", prompt={"file": "hi.wav"}, next="q"), queue_node(n)])
    session, _ = started(flow)
    actions = session.handle(event, T0)
    assert len(actions) == 1 and isinstance(actions[0], Notice)
    assert actions[0].code is NoticeCode.IGNORED_EVENT
    assert session.waiting is Waiting.PROMPT  # still waiting for the prompt


@pytest.mark.parametrize("event", [object(), "1", None, 42])
def test_unknown_events_are_reported(build: Any, n: Node, event: object) -> None:
    session, _ = started(menu_flow(build, n))
    actions = session.handle(event, T0)
    assert isinstance(actions[0], Notice) and actions[0].code is NoticeCode.UNKNOWN_EVENT


def test_events_before_start_and_double_start(build: Any, n: Node) -> None:
    session = IvrSession(menu_flow(build, n))
    first = session.handle(Digits("1"), T0)
    assert isinstance(first[0], Notice) and first[0].code is NoticeCode.NOT_STARTED
    session.start(CALL, T0)
    again = session.start(CALL, T0)
    assert isinstance(again[0], Notice) and again[0].code is NoticeCode.ALREADY_STARTED


def test_digits_that_are_not_a_string_count_as_no_input(build: Any, n: Node) -> None:
    session, _ = started(menu_flow(build, n))
    actions = session.handle(Digits(None), T0)  # type: ignore[arg-type]
    assert isinstance(actions[-1], CollectDigits) and actions[-1].attempt == 2


# --- loops and error loops ------------------------------------------------------------------


def test_loop_without_waiting_hangs_up(build: Any, n: Node) -> None:
    flow = build(
        [
            n("a", "setAttribute", name="x", value="1", next="b"),
            n("b", "setAttribute", name="y", value="2", next="a"),
        ]
    )
    actions = IvrSession(flow).start(CALL, T0)
    assert kinds(actions)[-3:] == [Error, Hangup, Outcome]
    assert outcome(actions).errors == (ErrorCode.STEP_LIMIT,)


def test_endless_prompt_loop_stops_at_max_steps(build: Any, n: Node) -> None:
    flow = build([n("a", "play", prompt={"file": "a.wav"}, next="a")])
    session = IvrSession(flow)
    session.start(CALL, T0)
    ends = 0
    for _ in range(600):
        ends += sum(isinstance(a, Outcome) for a in session.handle(PromptFinished(), T0))
    assert ends == 1 and session.outcome is not None
    assert len(session.outcome.path) == 500


def test_error_at_the_on_error_node_itself_hangs_up(build: Any, n: Node) -> None:
    flow = build(
        [
            n(
                "menu",
                "menu",
                prompt={"file": "m.wav"},
                options=[{"digit": "1", "target": "q"}],
                retries=1,
            ),
            queue_node(n),
        ],
        on_error="menu",
    )
    session, _ = started(flow)
    actions = session.handle(Timeout(), T0)
    assert outcome(actions).errors == (ErrorCode.MENU_TIMEOUT, ErrorCode.ERROR_LOOP)
    assert outcome(actions).kind is OutcomeKind.FAILED


def test_error_path_that_keeps_failing_ends(build: Any, n: Node) -> None:
    flow = build(
        [
            n("check", "condition", expression='attributes["x"] == "1"', ifTrue="q", ifFalse="q"),
            n("retry", "play", prompt={"file": "again.wav"}, next="check"),
            queue_node(n),
        ],
        on_error="retry",
    )
    session, actions = started(flow)
    ends = [a for a in actions if isinstance(a, Outcome)]
    for _ in range(20):
        ends += [a for a in session.handle(PromptFinished(), T0) if isinstance(a, Outcome)]
    assert len(ends) == 1 and ends[0].kind is OutcomeKind.FAILED
    assert ends[0].errors[-1] is ErrorCode.ERROR_LOOP
