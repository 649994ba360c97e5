"""compile_flow: a flow that cannot run is refused with every problem named by field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from callmesh.api import IVRFlow
from callmesh.ivr import FlowError, compile_flow
from callmesh.ivr.expressions import CelExpression, ExpressionError, ExpressionSyntaxError
from callmesh.ivr.flow import CollectStep, MenuStep
from callmesh.ivr.templates import MissingAttribute, Template

Node = Callable[..., dict[str, Any]]


def problems(build: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(FlowError) as info:
        build(*args, **kwargs)
    return str(info.value)


def test_missing_targets_are_all_listed(build: Any, n: Node) -> None:
    message = problems(
        build,
        [
            n(
                "m",
                "menu",
                prompt={"file": "m.wav"},
                options=[{"digit": "1", "target": "nowhere"}],
                timeoutTarget="gone",
            ),
            n("p", "play", prompt={"file": "p.wav"}, next="lost"),
        ],
        on_error="missing",
    )
    assert "spec.nodes[0].menu.options[0].target: no node 'nowhere'" in message
    assert "spec.nodes[0].menu.timeoutTarget: no node 'gone'" in message
    assert "spec.nodes[1].play.next: no node 'lost'" in message
    assert "spec.onError: no node 'missing'" in message
    assert "use one of ['m', 'p']" in message


def test_entry_must_exist(build: Any, n: Node) -> None:
    assert "spec.entry: no node 'start'" in problems(
        build, [n("q", "queue", queue="a")], entry="start"
    )


def test_unknown_schedule_is_named(build: Any, n: Node, business: dict[str, Any]) -> None:
    message = problems(
        build,
        [
            n("c", "condition", schedule="weekend", ifTrue="q", ifFalse="q"),
            n("q", "queue", queue="a"),
        ],
        schedules=[business],
    )
    assert "spec.nodes[0].condition.schedule: no schedule 'weekend'" in message
    assert "has ['business']" in message


def test_bad_regex_and_cel_are_named(build: Any, n: Node) -> None:
    message = problems(
        build,
        [
            n("c", "collect", prompt={"file": "c.wav"}, attribute="pin", regex="([0-9]", next="x"),
            n("x", "condition", expression='attributes["a"] ==', ifTrue="q", ifFalse="q"),
            n("q", "queue", queue="a"),
        ],
    )
    assert "spec.nodes[0].collect.regex: '([0-9]' does not compile" in message
    assert "spec.nodes[1].condition.expression: not valid CEL" in message


def test_reserved_attribute_names(build: Any, n: Node) -> None:
    message = problems(
        build,
        [
            n("s", "setAttribute", name="ani", value="x", next="c"),
            n("c", "collect", prompt={"file": "c.wav"}, attribute="dnis", next="q"),
            n("q", "queue", queue="a"),
        ],
    )
    assert "spec.nodes[0].setAttribute.name: 'ani' is the call's own" in message
    assert "spec.nodes[1].collect.attribute: 'dnis' is the call's own" in message


def test_settings_must_match_the_type(build: Any, n: Node) -> None:
    bad = {"id": "m", "type": "menu", "play": {"prompt": {"file": "a.wav"}, "next": "m"}}
    message = problems(build, [bad])
    assert "spec.nodes[0]: type menu takes only menu: settings, remove ['play']" in message
    assert "spec.nodes[0]: type menu needs its settings under menu:" in message


def test_condition_needs_exactly_one_test(build: Any, n: Node) -> None:
    message = problems(build, [n("c", "condition", ifTrue="c", ifFalse="c")])
    assert "spec.nodes[0].condition: set exactly one of schedule or expression" in message


def test_duplicate_ids_and_prompts(build: Any, n: Node) -> None:
    message = problems(
        build,
        [
            n("q", "queue", queue="a"),
            n("q", "queue", queue="b"),
            n("p", "play", prompt={"file": "a.wav", "text": "both"}, next="q"),
        ],
    )
    assert "spec.nodes[1].id: 'q' is used twice" in message
    assert "spec.nodes[2].play.prompt: set exactly one of file or text" in message


def test_malformed_placeholder(build: Any, n: Node) -> None:
    message = problems(
        build,
        [
            n("s", "setAttribute", name="a", value="{{ not valid! }}", next="q"),
            n("q", "queue", queue="a"),
        ],
    )
    assert "spec.nodes[0].setAttribute.value" in message and "malformed placeholder" in message


def test_schedule_problems_surface_as_flow_errors(build: Any, n: Node) -> None:
    schedule = {
        "name": "s",
        "timeZone": "Atlantis/Capital",
        "weekly": [{"days": ["mon"], "open": "08:00", "close": "09:00"}],
    }
    message = problems(
        build,
        [n("c", "condition", schedule="s", ifTrue="q", ifFalse="q"), n("q", "queue", queue="a")],
        schedules=[schedule],
    )
    assert "schedules[s].timeZone: unknown time zone 'Atlantis/Capital'" in message


def test_compiled_menu_and_collect(build: Any, n: Node) -> None:
    flow = build(
        [
            n(
                "m",
                "menu",
                prompt={"file": "m.wav"},
                options=[{"digit": "*", "target": "c"}, {"digit": "2", "target": "c"}],
                timeoutSeconds=7,
            ),
            n(
                "c",
                "collect",
                prompt={"file": "c.wav"},
                attribute="pin",
                regex="^[0-9]{4}$",
                next="q",
            ),
            n("q", "queue", queue="a"),
        ],
        on_error="q",
    )
    menu = flow.nodes["m"]
    assert isinstance(menu, MenuStep)
    assert (menu.regex, menu.timeout, dict(menu.options)) == (r"^[\*2]$", 7.0, {"*": "c", "2": "c"})
    assert isinstance(flow.nodes["c"], CollectStep)
    assert flow.successors("m") == {"c", "q"}
    assert flow.name == "t/test"


def test_compile_accepts_a_bare_spec(n: Node) -> None:
    flow = IVRFlow.model_validate(
        {"metadata": {"name": "x"}, "spec": {"entry": "q", "nodes": [n("q", "queue", queue="a")]}}
    )
    assert compile_flow(flow.spec).entry == "q"
    with pytest.raises(FlowError, match="max_steps"):
        compile_flow(flow.spec, max_steps=0)


# --- templates and expressions ---------------------------------------------------------------


def test_template_parts_and_render() -> None:
    template = Template.parse("Hi {{ crm.name }}, you called {{dnis}} from {{ani}}.")
    assert template.names == ("crm.name", "dnis", "ani")
    assert template.render("+1", "+2", {"crm.name": "Ann"}) == "Hi Ann, you called +2 from +1."
    with pytest.raises(MissingAttribute) as info:
        template.render("+1", "+2", {})
    assert info.value.name == "crm.name"
    assert Template.parse("plain").render("", "", {}) == "plain"


def test_expression_results_and_errors() -> None:
    vip = CelExpression('attributes["tier"] == "gold" && ani.startsWith("+49")')
    assert vip.evaluate("+4930", "1", {"tier": "gold"}) is True
    assert vip.evaluate("+4930", "1", {"tier": "silver"}) is False
    with pytest.raises(ExpressionError, match="missing attribute or variable 'tier'"):
        vip.evaluate("+4930", "1", {})
    with pytest.raises(ExpressionError, match="not true or false"):
        CelExpression("ani").evaluate("+1", "2", {})
    with pytest.raises(ExpressionSyntaxError):
        CelExpression("ani ==")


def test_expression_cache_keys_only_on_what_it_reads() -> None:
    only_dnis = CelExpression('dnis == "100"')
    assert not only_dnis.uses_ani and not only_dnis.uses_attributes
    for caller in range(50):
        assert only_dnis.evaluate(f"+1{caller}", "100", {"n": str(caller)}) is True
    assert len(only_dnis._cache) == 1
    reads_all = CelExpression('size(attributes) > 0 && ani != ""')
    assert reads_all.evaluate("+1", "2", {"a": "1"}) is True
    assert reads_all.evaluate("+1", "2", {}) is False
    assert reads_all.evaluate("", "2", {"a": "1"}) is False


def test_expression_falls_back_when_the_process_parser_builds_plain_trees(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """celpy keeps one parser per process: another component may have built it first."""
    import celpy
    from celpy.celparser import CELParser

    import callmesh.ivr.expressions as expressions

    monkeypatch.setattr(CELParser, "CEL_PARSER", None)
    monkeypatch.setattr(expressions, "_environments", {})
    celpy.Environment()  # someone else's interpreting environment builds the parser first
    vip = CelExpression('attributes["tier"] == "gold"')
    assert isinstance(vip._runner, celpy.InterpretedRunner)
    assert vip.evaluate("+1", "2", {"tier": "gold"}) is True
    with pytest.raises(ExpressionError, match="missing attribute or variable 'tier'"):
        vip.evaluate("+1", "2", {})
