"""The CEL evaluator and the Kubernetes extension functions the rules may use."""

from __future__ import annotations

from decimal import Decimal

import pytest

from callmesh.api.cel import CelSyntaxError, compile_rule, evaluate, parse_quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Decimal("0.5")),
        ("2", Decimal(2)),
        ("1Gi", Decimal(1024**3)),
        ("512Mi", Decimal(512 * 1024**2)),
        ("1.5k", Decimal(1500)),
        ("1e3", Decimal(1000)),
        ("100n", Decimal("0.0000001")),
        ("+.5", Decimal("0.5")),
    ],
)
def test_parse_quantity(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "1.2.3", "1Gb", "ten", "1 Gi"])
def test_parse_quantity_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="not a quantity"):
        parse_quantity(text)


@pytest.mark.parametrize(
    ("rule", "data", "passed"),
    [
        ("quantity(self.a).compareTo(quantity(self.b)) >= 0", {"a": "1Gi", "b": "512Mi"}, True),
        ("quantity(self.a).compareTo(quantity(self.b)) >= 0", {"a": "500m", "b": "1"}, False),
        ("quantity(self.a).compareTo(quantity(self.b)) == 0", {"a": "1000m", "b": "1"}, True),
        ("quantity(self.a).isGreaterThan(quantity(self.b))", {"a": "2", "b": "1"}, True),
        ("quantity(self.a).isLessThan(quantity(self.b))", {"a": "2", "b": "1"}, False),
        ("quantity(self.a).asApproximateFloat() == 0.5", {"a": "500m"}, True),
        ("isQuantity(self.a)", {"a": "1Gi"}, True),
        ("isQuantity(self.a)", {"a": "lots"}, False),
        ("self.l.isSorted()", {"l": [1, 2, 2, 5]}, True),
        ("self.l.isSorted()", {"l": [3, 1]}, False),
        ("self.s.lowerAscii() == 'abc'", {"s": "AbC"}, True),
        ("self.s.upperAscii() == 'ABC'", {"s": "abc"}, True),
        ("self.end > self.start", {"start": "09:00", "end": "17:30"}, True),
        ("self.end > self.start", {"start": "20:00", "end": "09:00"}, False),
        (
            "self.tiers.all(t, self.tiers.exists_one(u, u.level == t.level))",
            {"tiers": [{"level": 1}, {"level": 2}]},
            True,
        ),
        (
            "self.tiers.all(t, self.tiers.exists_one(u, u.level == t.level))",
            {"tiers": [{"level": 1}, {"level": 1}]},
            False,
        ),
    ],
)
def test_rules(rule: str, data: object, passed: bool) -> None:
    outcome = evaluate(rule, data)
    assert outcome.error is None
    assert outcome.passed is passed


def test_missing_field_is_an_evaluation_error_not_an_exception() -> None:
    outcome = evaluate("self.x > 0", {})
    assert not outcome.passed and outcome.error and "x" in outcome.error


def test_bad_quantity_is_an_evaluation_error() -> None:
    outcome = evaluate("quantity(self.a).isGreaterThan(quantity('1'))", {"a": "lots"})
    assert not outcome.passed and outcome.error and "not a quantity" in outcome.error


def test_type_mismatch_is_an_evaluation_error() -> None:
    outcome = evaluate("self.a + 1 == 2", {"a": "x"})
    assert not outcome.passed and outcome.error


def test_non_boolean_result_fails() -> None:
    outcome = evaluate("1 + 1", {})
    assert not outcome.passed and outcome.error and "not a boolean" in outcome.error


def test_syntax_error_names_the_rule() -> None:
    with pytest.raises(CelSyntaxError, match=r"self\.a = = 1"):
        compile_rule("self.a = = 1")
