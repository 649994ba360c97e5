"""docs/resources.md: every yaml example loads, validates, and every spec field is documented.

Each ```yaml block of the page is a complete manifest (fragments go in ```text blocks). The
blocks together form one small tenant, so they are also run through `callmesh validate` as a
whole, the way a reader would apply them. Each kind's section must name, in backticks, every
field of its spec, so a field added to a model without documentation fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

from callmesh.api import KIND_BY_NAME, KINDS, Resource

DOC = Path(__file__).resolve().parents[2] / "docs" / "resources.md"
TEXT = DOC.read_text()
YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks() -> list[tuple[int, str]]:
    """Every ```yaml block with the line its body starts on."""
    return [(TEXT.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in YAML_BLOCK.finditer(TEXT)]


def sections() -> dict[str, str]:
    """The text of each `## ` section, by title (a kind's section is titled with the kind)."""
    parts = re.split(r"^## ", TEXT, flags=re.MULTILINE)
    found = {}
    for part in parts[1:]:
        title, _, body = part.partition("\n")
        found[title.strip()] = body
    return found


def load(body: dict[str, Any], where: str) -> Resource:
    kind = body.get("kind")
    assert kind in KIND_BY_NAME, f"{where}: kind {kind!r} is not a callmesh kind"
    return KIND_BY_NAME[kind].model_validate(body)


BLOCKS = blocks()
SHARED = "Shared types"


def test_the_page_has_an_example_and_a_section_per_kind() -> None:
    found = {t: body for t, body in sections().items() if t in KIND_BY_NAME}
    assert sorted(found) == sorted(KIND_BY_NAME), "want a `## Kind` section per kind"
    for kind, body in found.items():
        kinds_here = {
            doc.get("kind")
            for m in YAML_BLOCK.finditer(body)
            for doc in yaml.safe_load_all(m.group(1))
            if doc
        }
        assert kind in kinds_here, f"section {kind} has no ```yaml example of kind {kind}"


@pytest.mark.parametrize(("line", "source"), BLOCKS, ids=[f"line{n}" for n, _ in BLOCKS])
def test_yaml_block_loads_into_the_models(line: int, source: str) -> None:
    docs = [d for d in yaml.safe_load_all(source) if d is not None]
    assert docs, f"docs/resources.md:{line}: empty yaml block"
    for doc in docs:
        obj = load(doc, f"docs/resources.md:{line}")
        assert obj.namespace == "northwind", "the page's examples form the tenant northwind"


def _aliases(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    """camelCase names of every field of a model and of the models inside it."""
    names: set[str] = set()
    for name, field in model.model_fields.items():
        names.add(field.alias or name)
        stack: list[Any] = [field.annotation]
        while stack:
            ann = stack.pop()
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                if ann not in seen:
                    seen.add(ann)
                    names |= _aliases(ann, seen)
            else:
                stack.extend(getattr(ann, "__args__", ()))
    return names


@pytest.mark.parametrize("kind", KINDS, ids=[k.kind_name for k in KINDS])
def test_every_spec_field_is_documented_in_its_section(kind: type[Resource]) -> None:
    spec = kind.model_fields["spec"].annotation
    assert isinstance(spec, type) and issubclass(spec, BaseModel)
    # Prompts, skill requirements and Secret/ConfigMap keys are explained once, under
    # "Shared types"; everything else in the kind's own section.
    section = sections()[kind.kind_name] + sections()[SHARED]
    missing = sorted(f for f in _aliases(spec, set()) if f"`{f}`" not in section)
    assert missing == [], (
        f"docs/resources.md section {kind.kind_name} does not explain the fields {missing}; "
        "describe each one (in backticks) in that section"
    )


def test_examples_are_one_consistent_tenant(tmp_path: Path) -> None:
    """Every reference between the page's examples resolves (checked here even before the
    validator exists, so the page never shows a queue of a team it does not define)."""
    objs = [load(d, "docs") for _, s in BLOCKS for d in yaml.safe_load_all(s) if d]
    by_kind: dict[str, dict[str, Any]] = {}
    for obj in objs:
        by_kind.setdefault(obj.kind_name, {})[obj.name] = obj
    (center,) = by_kind["ContactCenter"].values()
    for route in center.spec.numbers:
        assert route.flow in by_kind["IVRFlow"]
    for queue in by_kind["Queue"].values():
        for tier in queue.spec.tiers:
            assert set(tier.teams) <= set(by_kind["AgentTeam"]), tier.teams
    for flow in by_kind["IVRFlow"].values():
        for node in flow.spec.nodes:
            if node.queue:
                assert node.queue.queue in by_kind["Queue"]
            if node.callback:
                assert node.callback.queue in by_kind["Queue"]
            if node.condition and node.condition.schedule:
                assert node.condition.schedule in {s.name for s in center.spec.schedules}
    for campaign in by_kind["DialerCampaign"].values():
        assert campaign.spec.queue in by_kind["Queue"]


def test_examples_pass_callmesh_validate(tmp_path: Path) -> None:
    from callmesh.cli import app

    target = tmp_path / "resources.yaml"
    target.write_text("---\n".join(source for _, source in BLOCKS))
    result = CliRunner().invoke(app, ["validate", "--output", "json", str(target)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, f"docs/resources.md examples fail validation:\n{result.output}"
    output = result.stdout.strip()
    assert (json.loads(output) if output.startswith("[") else []) == [], output


def test_every_problem_code_of_validate_json_is_documented() -> None:
    from callmesh.api.problems import DUPLICATE, INVALID_SPEC, INVALID_YAML, NOT_FOUND

    text = DOC.read_text()
    missing = [
        code
        for code in (INVALID_SPEC, INVALID_YAML, DUPLICATE, *NOT_FOUND.values())
        if f"`{code}`" not in text
    ]
    assert missing == [], f"docs/resources.md does not name the problem codes {missing}"
