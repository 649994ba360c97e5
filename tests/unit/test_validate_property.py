"""Nothing crashes the validator: any YAML text, any object, any mutation of a valid tenant.

Each run must end in a clean list of problems (or none), never an exception.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callmesh.api.loader import parse_yaml
from callmesh.api.problems import Problem
from callmesh.api.validate import validate_objects

OK = Path(__file__).resolve().parents[1] / "corpus" / "ok" / "tenant.yaml"
BASE = [json.loads(json.dumps(d.data)) for d in parse_yaml(OK.read_text())[0]]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(
        ["callmesh.io/v1alpha1", "Queue", "IVRFlow", "voice", "09:00", "+14155550100", "a"]
    ),
)
json_like = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(
                st.text(max_size=12),
                st.sampled_from(["spec", "metadata", "kind", "apiVersion", "tiers", "nodes"]),
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=25,
)
yaml_text = st.one_of(
    st.text(max_size=200),
    st.lists(
        st.sampled_from(
            [
                "---",
                "a: 1",
                "- x",
                "  b: [1, 2",
                "kind: Queue",
                "apiVersion: callmesh.io/v1alpha1",
                "? [a]",
                ": b",
                "&x [*x]",
                "*y",
                "spec: {tiers: []}",
                "metadata: {name: q}",
                "\t",
                "'",
                "|",
                "!!python/object:os.system",
                "%YAML 1.1",
            ]
        ),
        max_size=12,
    ).map("\n".join),
)


def _clean(problems: list[Problem]) -> None:
    assert isinstance(problems, list)
    for p in problems:
        assert isinstance(p, Problem)
        assert isinstance(p.format(), str) and isinstance(p.line, int)
        json.dumps(p.to_dict())


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(yaml_text)
def test_any_yaml_text_gives_problems_or_nothing(text: str) -> None:
    docs, problems = parse_yaml(text, "fuzz.yaml")
    _clean(problems)
    _clean(validate_objects(docs))


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(json_like, max_size=3))
def test_any_objects_give_problems_or_nothing(objects: list[Any]) -> None:
    _clean(validate_objects(objects))


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*path, i))
    return out


@st.composite
def mutated_tenant(draw: st.DrawFn) -> list[Any]:
    objects = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        i = draw(st.integers(min_value=0, max_value=len(objects) - 1))
        paths = _paths(objects[i])
        path = draw(st.sampled_from(paths))
        if not path:
            objects[i] = draw(json_like)
            continue
        parent = objects[i]
        for part in path[:-1]:
            parent = parent[part]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_like)
    return objects


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(mutated_tenant())
def test_any_mutation_of_a_valid_tenant_gives_problems_or_nothing(objects: list[Any]) -> None:
    _clean(validate_objects(objects))


def test_the_unmutated_tenant_is_valid() -> None:
    assert validate_objects(copy.deepcopy(BASE)) == []
