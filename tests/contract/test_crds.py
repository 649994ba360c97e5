"""The CRDs in crds/ are what the models generate, and a real API server would accept them.

Structural-schema rules checked here come from the Kubernetes docs ("Specifying a structural
schema"): every node has a type; no $ref, anyOf/oneOf/allOf/not, nullable or const; no
additionalProperties next to properties; metadata restricted to ``type: object``;
x-kubernetes-preserve-unknown-fields only where a model declares a free-form field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from callmesh.api import KINDS
from callmesh.api.cel import compile_rule
from callmesh.api.commands import drift
from callmesh.api.crd import ALLOWED_KEYWORDS, all_crds, iter_schema_nodes, to_yaml
from callmesh.cli import app

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"
GENERATED = all_crds()
FORBIDDEN = {"$ref", "$defs", "anyOf", "oneOf", "allOf", "not", "nullable", "const", "title"}
#: The only free-form fields (their content is validated by the strategy / plugin itself).
PRESERVE_UNKNOWN = {
    ("Queue", ".spec.strategy.params"),
    ("ContactCenter", ".spec.plugins[*].config"),
}


def _schema(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _nodes() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (crd["spec"]["names"]["kind"], path, dict(node))
        for crd in GENERATED.values()
        for path, node in iter_schema_nodes(_schema(crd))
    ]


def test_crds_folder_equals_what_the_models_generate() -> None:
    assert drift(CRDS) == [], "crds/ is stale: run `callmesh crds` and commit the result"
    assert sorted(p.name for p in CRDS.glob("*.yaml")) == sorted(GENERATED)


def test_crds_command_writes_and_checks(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["crds", "--check", "--output-dir", str(tmp_path)])
    assert result.exit_code == 1
    result = runner.invoke(app, ["crds", "--output-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(GENERATED)
    assert runner.invoke(app, ["crds", "--check", "-d", str(tmp_path)]).exit_code == 0
    (tmp_path / "callmesh.io_queues.yaml").write_text("edited by hand\n")
    result = runner.invoke(app, ["crds", "--check", "-d", str(tmp_path)])
    assert result.exit_code == 1
    assert "callmesh.io_queues.yaml" in result.output


def test_output_is_deterministic() -> None:
    again = all_crds()
    assert {k: to_yaml(v) for k, v in again.items()} == {
        k: to_yaml(v) for k, v in GENERATED.items()
    }


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_crd_is_accepted_by_the_kubernetes_openapi_schema(name: str) -> None:
    crd = yaml.safe_load((CRDS / name).read_text())
    kubernetes_validate.validate(crd, "1.30", strict=True)


@pytest.mark.parametrize("model", KINDS, ids=lambda k: k.kind_name)
def test_names_scope_versions_and_subresources(model: Any) -> None:
    crd = GENERATED[f"callmesh.io_{model.plural}.yaml"]
    spec = crd["spec"]
    assert crd["metadata"]["name"] == f"{model.plural}.callmesh.io"
    assert spec["group"] == "callmesh.io"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == model.kind_name
    assert spec["names"]["shortNames"] == list(model.short_names)
    assert spec["names"]["categories"] == ["callmesh"]
    [version] = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    columns = version["additionalPrinterColumns"]
    assert [c["name"] for c in columns] == [c["name"] for c in model.printer_columns] + ["Age"]
    assert all(c.get("description") for c in columns)
    schema = _schema(crd)
    assert schema["properties"]["metadata"] == {
        "type": "object",
        "description": "Standard object metadata.",
    }
    assert {"observedGeneration", "conditions"} <= set(schema["properties"]["status"]["properties"])


def test_short_names_are_the_documented_ones() -> None:
    short = {
        crd["spec"]["names"]["kind"]: crd["spec"]["names"]["shortNames"]
        for crd in GENERATED.values()
    }
    assert short == {
        "ContactCenter": ["cc"],
        "Queue": ["q"],
        "AgentTeam": ["team"],
        "IVRFlow": ["ivr"],
        "DialerCampaign": ["camp"],
    }


def test_queue_printer_columns() -> None:
    columns = GENERATED["callmesh.io_queues.yaml"]["spec"]["versions"][0][
        "additionalPrinterColumns"
    ]
    assert [c["name"] for c in columns] == ["Channel", "Strategy", "Waiting", "SL", "Ready", "Age"]


def test_schemas_are_structural() -> None:
    offences = []
    for kind, path, node in _nodes():
        bad = FORBIDDEN & set(node)
        if bad:
            offences.append(f"{kind}{path}: {sorted(bad)}")
        unknown = {
            k for k in node if k not in ALLOWED_KEYWORDS and not k.startswith("x-kubernetes-")
        }
        if unknown:
            offences.append(f"{kind}{path}: keywords {sorted(unknown)}")
        if node.get("type") not in {"object", "array", "string", "integer", "number", "boolean"}:
            offences.append(f"{kind}{path}: type {node.get('type')!r}")
        if "properties" in node and "additionalProperties" in node:
            offences.append(f"{kind}{path}: additionalProperties next to properties")
        if node.get("additionalProperties") is False or node.get("additionalProperties") is True:
            offences.append(f"{kind}{path}: boolean additionalProperties")
        for key in ("exclusiveMinimum", "exclusiveMaximum"):
            if key in node and not isinstance(node[key], bool):
                offences.append(f"{kind}{path}: {key} must be a boolean in OpenAPI v3.0")
        if "default" in node and node["default"] is None:
            offences.append(f"{kind}{path}: null default")
    assert offences == []


def test_no_null_anywhere_in_the_files() -> None:
    for name in GENERATED:
        text = (CRDS / name).read_text()
        assert "$ref" not in text and "anyOf" not in text and "nullable" not in text, name
        assert ": null" not in text and "type: 'null'" not in text, name


def test_preserve_unknown_fields_only_where_declared() -> None:
    found = {
        (kind, path)
        for kind, path, node in _nodes()
        if node.get("x-kubernetes-preserve-unknown-fields")
    }
    assert found == PRESERVE_UNKNOWN


def test_every_node_is_described() -> None:
    missing = [f"{kind}{path}" for kind, path, node in _nodes() if not node.get("description")]
    assert missing == []


def test_every_string_list_and_map_is_bounded_for_cel_cost() -> None:
    unbounded = []
    for kind, path, node in _nodes():
        if path in (".apiVersion", ".kind"):
            continue
        kind_ = node["type"]
        if kind_ == "string" and "maxLength" not in node and node.get("format") != "date-time":
            unbounded.append(f"{kind}{path}: string without maxLength")
        if kind_ == "array" and "maxItems" not in node:
            unbounded.append(f"{kind}{path}: array without maxItems")
        if isinstance(node.get("additionalProperties"), dict) and "maxProperties" not in node:
            unbounded.append(f"{kind}{path}: map without maxProperties")
    assert unbounded == []


def test_defaults_validate_against_their_own_schema() -> None:
    """The API server rejects a CRD whose default does not match its field's schema."""
    for _kind, _path, node in _nodes():
        if "default" in node:
            jsonschema.Draft4Validator(node).validate(node["default"])


def _resolves(schema: dict[str, Any], field_path: str) -> bool:
    node = schema
    for part in field_path.strip(".").split("."):
        props = node.get("properties", {})
        if part not in props:
            return False
        node = props[part]
    return True


def test_cel_rules_compile_and_point_at_real_fields() -> None:
    rules = 0
    for kind, path, node in _nodes():
        for rule in node.get("x-kubernetes-validations", ()):
            rules += 1
            compile_rule(rule["rule"])
            assert rule["message"] and " — " in rule["message"], (
                f"{kind}{path}: message says no fix"
            )
            if "fieldPath" in rule:
                assert _resolves(node, rule["fieldPath"]), f"{kind}{path}: {rule['fieldPath']}"
            assert rule.get("reason", "FieldValueInvalid") in {
                "FieldValueInvalid",
                "FieldValueForbidden",
                "FieldValueRequired",
                "FieldValueDuplicate",
            }
    assert rules >= 25


def test_kubectl_explain_queue_spec_tiers_teaches() -> None:
    schema = _schema(GENERATED["callmesh.io_queues.yaml"])
    tiers = schema["properties"]["spec"]["properties"]["tiers"]
    assert "escalation" in tiers["description"]
    item = tiers["items"]
    assert item["required"] == ["level", "teams"]
    assert set(item["properties"]) == {"level", "teams", "escalateAfterSeconds"}
    assert all(p["description"] for p in item["properties"].values())


def test_optional_fields_are_absent_not_nullable() -> None:
    spec = _schema(GENERATED["callmesh.io_queues.yaml"])["properties"]["spec"]
    overflow = spec["properties"]["overflow"]
    assert overflow["type"] == "object"
    assert "overflow" not in spec.get("required", [])
    assert "default" not in overflow


def test_list_map_keys_are_required_scalars() -> None:
    """The API server refuses a list-type map whose keys may be absent or are not scalars."""
    maps = 0
    for kind, path, node in _nodes():
        if node.get("x-kubernetes-list-type") != "map":
            continue
        maps += 1
        items = node["items"]
        for key in node["x-kubernetes-list-map-keys"]:
            prop = items["properties"][key]
            assert key in items.get("required", []) or "default" in prop, f"{kind}{path}: {key}"
            assert prop["type"] in {"string", "integer", "boolean"}, f"{kind}{path}: {key}"
    assert maps == 8
