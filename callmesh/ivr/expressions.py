"""CEL conditions over the call, compiled once per flow with cel-python (``celpy``).

An expression sees three variables: ``attributes`` (a map of strings), ``ani`` and ``dnis``
(strings), e.g. ``attributes["crm.tier"] == "gold" && ani.startsWith("+49")``. It must yield
true or false. Reading a missing attribute, a type error or a non-boolean result is an
:class:`ExpressionError`, which the session turns into the flow's onError path.

Evaluation is a pure function of the variables the expression names, so results are cached
per expression (keyed by exactly those variables): the simulator's millions of callers mostly
share a few attribute combinations. The cache is bounded and never changes a result.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import celpy
import lark
from celpy import celtypes
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError, Context

__all__ = ["CelExpression", "ExpressionError", "ExpressionSyntaxError"]

_CACHE_LIMIT = 4096
_MISSING = object()


class ExpressionError(Exception):
    """Evaluating an expression failed for this call (missing attribute, type error...)."""


class ExpressionSyntaxError(ValueError):
    """An expression does not compile (the message shows where)."""


_environments: dict[type[celpy.Runner], celpy.Environment] = {}


def _environment(runner: type[celpy.Runner]) -> celpy.Environment:
    env = _environments.get(runner)
    if env is None:
        env = celpy.Environment(runner_class=runner)
        _environments[runner] = env
    return env


def _program(source: str) -> tuple[lark.Tree[lark.Token], celpy.Runner]:
    """Parse and build a runner: transpiled to Python when possible, else interpreted.

    celpy keeps one parser per process, built with the tree class of the first environment
    created; when another part of the process made an interpreting environment first, the
    transpiling runner cannot use its trees, and the interpreting runner (same semantics,
    slower) is used instead.
    """
    for runner in (celpy.CompiledRunner, celpy.InterpretedRunner):
        env = _environment(runner)
        try:
            tree = env.compile(source)
        except CELParseError as exc:
            raise ExpressionSyntaxError(str(exc).strip()) from exc
        try:
            return tree, env.program(tree)
        except Exception:  # the transpiler cannot take this tree: interpret it
            continue
    raise ExpressionSyntaxError(f"cannot build a program for {source!r}")


class CelExpression:
    """A compiled CEL condition; reusable by every session of the flow."""

    __slots__ = ("_cache", "_runner", "source", "uses_ani", "uses_attributes", "uses_dnis")

    def __init__(self, source: str) -> None:
        """Compile ``source``.

        Raises:
            ExpressionSyntaxError: it does not parse.
        """
        tree, runner = _program(source)
        names = {
            token.value
            for token in tree.scan_values(lambda t: isinstance(t, lark.Token) and t.type == "IDENT")
        }
        self.source = source
        self.uses_ani = "ani" in names
        self.uses_dnis = "dnis" in names
        self.uses_attributes = "attributes" in names
        self._runner = runner
        self._cache: dict[tuple[Any, Any, Any], bool | str] = {}

    def evaluate(self, ani: str, dnis: str, attributes: Mapping[str, str]) -> bool:
        """True or false for this call.

        Raises:
            ExpressionError: a missing attribute, a type error, or a result that is not a bool.
        """
        key = (
            ani if self.uses_ani else _MISSING,
            dnis if self.uses_dnis else _MISSING,
            frozenset(attributes.items()) if self.uses_attributes else _MISSING,
        )
        result = self._cache.get(key)
        if result is None:
            result = self._evaluate(ani, dnis, attributes)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = result
        if isinstance(result, str):
            raise ExpressionError(result)
        return result

    def _evaluate(self, ani: str, dnis: str, attributes: Mapping[str, str]) -> bool | str:
        activation: Context = {
            "attributes": celtypes.MapType(
                {celtypes.StringType(k): celtypes.StringType(v) for k, v in attributes.items()}
            ),
            "ani": celtypes.StringType(ani),
            "dnis": celtypes.StringType(dnis),
        }
        try:
            value = self._runner.evaluate(activation)
        except Exception as exc:  # celpy raises CELEvalError, and may leak others
            return _describe(exc)
        if isinstance(value, CELEvalError):
            return _describe(value)
        if isinstance(value, bool | celtypes.BoolType):
            return bool(value)
        return f"the expression gave {value!r}, not true or false"


def _describe(exc: BaseException) -> str:
    """A one-line reason from a celpy error (its args nest the original exception)."""
    args = exc.args
    while len(args) >= 3 and isinstance(args[2], tuple) and args[0] == "evaluation error":
        args = args[2]
    if len(args) >= 3 and args[1] is KeyError and isinstance(args[2], tuple) and args[2]:
        return f"missing attribute or variable {str(args[2][0])!r}"
    if args and isinstance(args[0], str):
        return args[0]
    return type(exc).__name__
