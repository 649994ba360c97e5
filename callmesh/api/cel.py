"""Evaluating the CRDs' CEL ``x-kubernetes-validations`` rules offline, as the API server would.

cel-python (``celpy``) runs the standard CEL language and macros (``all``, ``exists``,
``exists_one``, ``has``, ``map``, ``filter``). Kubernetes adds extension libraries on top; the
ones our rules use (or that a rule author reaches for first) are implemented here with the same
names and meaning:

- quantity library: ``quantity(s)``, ``isQuantity(s)``, ``q.compareTo(r)``,
  ``q.isGreaterThan(r)``, ``q.isLessThan(r)``, ``q.asApproximateFloat()``;
- list library: ``l.isSorted()``;
- string library: ``s.lowerAscii()``, ``s.upperAscii()``.

A rule that fails to evaluate (a missing field without a default, a wrong type) is reported
as a failure with the evaluator's reason, the way the API server rejects the object.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

_QUANTITY = re.compile(
    r"^(?P<num>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
)
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


def parse_quantity(text: str) -> Decimal:
    """The value of a Kubernetes quantity (``500m`` -> 0.5, ``1Gi`` -> 1073741824).

    Raises ValueError for text that is not a quantity.
    """
    match = _QUANTITY.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a quantity (e.g. 500m, 2, 1Gi)")
    try:
        number = Decimal(match["num"])
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only numbers
        raise ValueError(f"{text!r} is not a quantity") from exc
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * (Decimal(1024) ** _BINARY[suffix])
    if suffix in _DECIMAL:
        return number.scaleb(_DECIMAL[suffix])
    if suffix:
        return number.scaleb(int(suffix[1:]))
    return number


@dataclass(frozen=True)
class Quantity:
    """A Kubernetes quantity inside a CEL evaluation (the ``quantity(...)`` result)."""

    text: str
    value: Decimal


def _quantity(text: Any) -> Quantity:
    try:
        return Quantity(str(text), parse_quantity(str(text)))
    except ValueError as exc:
        raise CELEvalError(str(exc)) from exc


def _is_quantity(text: Any) -> celtypes.BoolType:
    return celtypes.BoolType(bool(_QUANTITY.match(str(text))))


def _as_quantity(value: Any) -> Quantity:
    if not isinstance(value, Quantity):
        raise CELEvalError(f"expected a quantity, got {type(value).__name__}")
    return value


def _compare_to(left: Any, right: Any) -> celtypes.IntType:
    a, b = _as_quantity(left).value, _as_quantity(right).value
    return celtypes.IntType((a > b) - (a < b))


def _greater(left: Any, right: Any) -> celtypes.BoolType:
    return celtypes.BoolType(_as_quantity(left).value > _as_quantity(right).value)


def _less(left: Any, right: Any) -> celtypes.BoolType:
    return celtypes.BoolType(_as_quantity(left).value < _as_quantity(right).value)


def _approx(value: Any) -> celtypes.DoubleType:
    return celtypes.DoubleType(float(_as_quantity(value).value))


def _is_sorted(items: Any) -> celtypes.BoolType:
    if not isinstance(items, list):
        raise CELEvalError("isSorted() needs a list")
    try:
        return celtypes.BoolType(all(items[i] <= items[i + 1] for i in range(len(items) - 1)))
    except TypeError as exc:
        raise CELEvalError(f"isSorted(): {exc}") from exc


def _lower_ascii(text: Any) -> celtypes.StringType:
    return celtypes.StringType(
        "".join(c.lower() if c.isascii() else c for c in _as_string(text, "lowerAscii"))
    )


def _upper_ascii(text: Any) -> celtypes.StringType:
    return celtypes.StringType(
        "".join(c.upper() if c.isascii() else c for c in _as_string(text, "upperAscii"))
    )


def _as_string(value: Any, function: str) -> str:
    if not isinstance(value, str):
        raise CELEvalError(f"{function}() needs a string")
    return value


#: The Kubernetes extension functions available to rules, by CEL name.
FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    "quantity": _quantity,
    "isQuantity": _is_quantity,
    "compareTo": _compare_to,
    "isGreaterThan": _greater,
    "isLessThan": _less,
    "asApproximateFloat": _approx,
    "isSorted": _is_sorted,
    "lowerAscii": _lower_ascii,
    "upperAscii": _upper_ascii,
}

_ENV = celpy.Environment()


class CelSyntaxError(ValueError):
    """A rule that does not compile; the message quotes the rule."""


@lru_cache(maxsize=512)
def compile_rule(rule: str) -> Any:
    """Compile a rule once (cached) into a runnable program."""
    try:
        ast = _ENV.compile(rule)
    except CELParseError as exc:
        raise CelSyntaxError(f"CEL rule does not compile: {rule!r}: {exc}") from exc
    return _ENV.program(ast, functions=dict(FUNCTIONS))


@dataclass(frozen=True)
class Outcome:
    """The result of one rule on one value: passed, or why not."""

    passed: bool
    error: str | None = None


def evaluate(rule: str, value: Any) -> Outcome:
    """Run ``rule`` with ``self`` bound to ``value`` (plain JSON-like data).

    Results are memoised on (rule, the value as JSON): evaluation is pure, cel-python is a
    tree-walking interpreter, and a tenant repeats many small values (prompts, tiers).
    """
    try:
        text = json.dumps(value, sort_keys=True)
    except (TypeError, ValueError, RecursionError):
        return _evaluate(rule, value)  # not JSON (a YAML set or binary): evaluate uncached
    return _evaluate_json(rule, text)


@lru_cache(maxsize=8192)
def _evaluate_json(rule: str, text: str) -> Outcome:
    return _evaluate(rule, json.loads(text))


def _evaluate(rule: str, value: Any) -> Outcome:
    program = compile_rule(rule)
    try:
        result = program.evaluate({"self": json_to_cel(value)})
    except CELEvalError as exc:
        return Outcome(False, _reason(exc))
    except (TypeError, ValueError, KeyError, ArithmeticError, RecursionError) as exc:
        return Outcome(False, f"{type(exc).__name__}: {exc}")
    if isinstance(result, CELEvalError):
        return Outcome(False, _reason(result))
    if isinstance(result, celtypes.BoolType | bool):
        return Outcome(bool(result))
    return Outcome(False, f"the rule gave {result!r}, not a boolean")


def _reason(exc: BaseException) -> str:
    args = getattr(exc, "args", ())
    if args and isinstance(args[0], str):
        return args[0]
    return str(exc)
