"""CustomResourceDefinitions generated from the resource models: the models are the one source.

:func:`crd_for` turns a :class:`~callmesh.api.base.Resource` subclass into an
``apiextensions.k8s.io/v1`` CustomResourceDefinition whose ``openAPIV3Schema`` is
*structural* in the Kubernetes sense (every node typed, no ``$ref``/``anyOf``/``oneOf``/``allOf``
/``not``/``const``, no ``additionalProperties`` next to ``properties``, no ``nullable``, metadata
left to the API server) and carries descriptions, defaults, bounds and the CEL
``x-kubernetes-validations`` declared on the models.

The post-processing starts from pydantic's ``model_json_schema(by_alias=True)``:

- ``$ref`` into ``$defs`` is inlined; a field's own description wins over its class docstring.
- ``anyOf: [X, {type: null}]`` (an optional field) becomes ``X``: absence is how Kubernetes
  spells "unset", so no ``nullable`` leaks into the schema.
- ``exclusiveMinimum: n`` (JSON Schema 2020-12) becomes ``minimum: n, exclusiveMinimum: true``
  (OpenAPI v3.0, which the API server speaks).
- ``additionalProperties: false`` (pydantic's ``extra="forbid"``) is dropped: the API server
  prunes unknown fields, and ``callmesh validate`` rejects them.
- a ``dict[str, Any]`` field becomes ``x-kubernetes-preserve-unknown-fields: true`` only where a
  model declared it; anywhere else such a field is a build error.
- defaults from ``default_factory`` are written too (``[]``, ``{}``, lists of enum values), so
  the API server fills them in before CEL rules run, exactly as ``callmesh validate`` does.
- enum strings get ``maxLength`` of their longest value, so CEL cost estimation sees a bound.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any, cast

import yaml
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, NoDefault
from pydantic_core import core_schema

from callmesh.api.base import GROUP, VERSION, Resource

#: The category every callmesh CRD joins, so ``kubectl get callmesh`` lists them all.
CATEGORY = "callmesh"

#: Schema keywords the API server accepts in a structural schema (plus ``x-kubernetes-*``).
ALLOWED_KEYWORDS = frozenset(
    {
        "type",
        "format",
        "description",
        "default",
        "enum",
        "pattern",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minProperties",
        "maxProperties",
        "multipleOf",
        "required",
        "properties",
        "items",
        "additionalProperties",
        "example",
    }
)

_DROPPED = frozenset({"title", "examples", "readOnly", "writeOnly", "discriminator"})


class CRDBuildError(ValueError):
    """A model cannot be expressed as a structural schema; the message names the field."""


class _WithFactoryDefaults(GenerateJsonSchema):
    """Writes defaults coming from ``default_factory`` too (pydantic leaves them out)."""

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        if "default" in schema:
            return schema["default"]
        factory = schema.get("default_factory")
        if factory is None or schema.get("default_factory_takes_data"):
            return NoDefault
        value = cast(Any, factory)()
        if isinstance(value, BaseModel):
            # An empty object: the API server then applies the nested defaults itself.
            return {}
        return value

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        out = super().default_schema(schema)
        if out.get("default", 0) is None:
            # None means "unset": absence, never a null default.
            out = {k: v for k, v in out.items() if k != "default"}
        return out


def _inline(node: Any, defs: Mapping[str, Any], where: str) -> Any:
    """Resolve every ``$ref`` by copying the definition in (the models have no recursion)."""
    if isinstance(node, list):
        return [_inline(v, defs, where) for v in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        target = copy.deepcopy(defs[name])
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _inline(merged, defs, where)
    return {k: _inline(v, defs, f"{where}.{k}") for k, v in node.items()}


def _collapse_optional(node: dict[str, Any], path: str) -> dict[str, Any]:
    """``anyOf: [X, null]`` -> ``X`` with the outer description/default kept."""
    variants = node.get("anyOf")
    if variants is None:
        return node
    rest = [v for v in variants if v != {"type": "null"}]
    if len(rest) != 1:
        raise CRDBuildError(
            f"{path}: a union of several types cannot be a structural schema; "
            "use one type (or a settings object per variant, as IVRFlow nodes do)"
        )
    outer = {k: v for k, v in node.items() if k != "anyOf"}
    return {**rest[0], **outer}


def _structural(node: Any, path: str) -> dict[str, Any]:
    """Turn one (inlined) pydantic schema node into a structural OpenAPI v3 node."""
    if not isinstance(node, dict):
        raise CRDBuildError(f"{path}: expected a schema object, got {node!r}")
    node = _collapse_optional(node, path)
    if "allOf" in node and len(node["allOf"]) == 1:
        node = {**node["allOf"][0], **{k: v for k, v in node.items() if k != "allOf"}}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "const":
            # Literal fields (kind, apiVersion): an enum of one value.
            out["enum"] = [value]
            out.setdefault("type", "string")
            continue
        if key.startswith("x-kubernetes-"):
            out[key] = value
            continue
        if key not in ALLOWED_KEYWORDS:
            raise CRDBuildError(f"{path}: schema keyword {key!r} is not allowed in a CRD")
        out[key] = value

    if isinstance(out.get("exclusiveMinimum"), int | float) and not isinstance(
        out["exclusiveMinimum"], bool
    ):
        out["minimum"] = out["exclusiveMinimum"]
        out["exclusiveMinimum"] = True
    if isinstance(out.get("exclusiveMaximum"), int | float) and not isinstance(
        out["exclusiveMaximum"], bool
    ):
        out["maximum"] = out["exclusiveMaximum"]
        out["exclusiveMaximum"] = True

    kind = out.get("type")
    if kind is None:
        if out.get("x-kubernetes-preserve-unknown-fields"):
            out["type"] = "object"
        else:
            raise CRDBuildError(
                f"{path}: no type (an untyped field is only allowed with "
                "x-kubernetes-preserve-unknown-fields)"
            )
        kind = "object"
    if isinstance(kind, list):
        raise CRDBuildError(f"{path}: a list of types {kind} is not structural")

    if kind == "object":
        props = out.get("properties")
        extra = out.pop("additionalProperties", None)
        if props is not None:
            out["properties"] = {
                name: _structural(sub, f"{path}.{name}") for name, sub in props.items()
            }
            if not out["properties"]:
                del out["properties"]
        if isinstance(extra, dict) and extra and not props:
            out["additionalProperties"] = _structural(extra, f"{path}[*]")
        elif (
            extra is True or (isinstance(extra, dict) and not extra and not props)
        ) and not out.get("x-kubernetes-preserve-unknown-fields"):
            raise CRDBuildError(
                f"{path}: a free-form object must declare "
                "json_schema_extra={'x-kubernetes-preserve-unknown-fields': True}"
            )
    elif kind == "array":
        if "items" not in out:
            raise CRDBuildError(f"{path}: an array needs an item type")
        out["items"] = _structural(out["items"], f"{path}[*]")
    elif kind == "string" and "enum" in out and "maxLength" not in out:
        out["maxLength"] = max(len(str(v)) for v in out["enum"])
    return _ordered(out)


_ORDER = ("description", "type", "format", "enum", "default")


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    """Keys in a reading order: what it is first, then bounds, then children, then rules."""

    def rank(key: str) -> tuple[int, str]:
        if key in _ORDER:
            return (_ORDER.index(key), key)
        if key in ("properties", "items", "additionalProperties", "required"):
            return (20, key)
        if key.startswith("x-kubernetes-"):
            return (30, key)
        return (10, key)

    return {key: node[key] for key in sorted(node, key=rank)}


def _describe_items(node: dict[str, Any], description: str) -> None:
    """Give a description to nodes pydantic leaves bare (items of scalar lists, map values)."""
    node.setdefault("description", description)
    for name, sub in node.get("properties", {}).items():
        _describe_items(sub, f"{name}.")
    if "items" in node:
        _describe_items(node["items"], f"One entry of {node['description'].rstrip('.')}.")
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        _describe_items(extra, f"A value of {node['description'].rstrip('.')}.")


def openapi_schema(model: type[Resource]) -> dict[str, Any]:
    """The structural ``openAPIV3Schema`` of one resource kind."""
    raw = model.model_json_schema(
        by_alias=True, mode="validation", schema_generator=_WithFactoryDefaults
    )
    defs = raw.pop("$defs", {})
    # The API server owns metadata (only `type: object` is allowed there): leave ObjectMeta out.
    raw["properties"].pop("metadata", None)
    schema = _structural(_inline(raw, defs, model.kind_name), model.kind_name)
    props = schema["properties"]
    props["metadata"] = {"type": "object", "description": "Standard object metadata."}
    props["apiVersion"] = {
        "type": "string",
        "description": "APIVersion of this object: callmesh.io/v1alpha1.",
    }
    props["kind"] = {"type": "string", "description": f"Kind of this object: {model.kind_name}."}
    for name in ("apiVersion", "kind", "metadata"):
        props[name].pop("default", None)
    schema["required"] = [r for r in schema.get("required", []) if r not in ("metadata",)]
    if not schema["required"]:
        del schema["required"]
    schema["description"] = (model.__doc__ or model.kind_name).strip().splitlines()[0]
    _describe_items(schema, schema["description"])
    return schema


def crd_for(model: type[Resource]) -> dict[str, Any]:
    """The CustomResourceDefinition of one resource kind, as a plain dict ready for YAML."""
    plural = model.plural
    schema = openapi_schema(model)
    columns = [
        {**col, "description": col.get("description") or _column_description(schema, col)}
        for col in model.printer_columns
    ]
    columns.append(
        {
            "name": "Age",
            "type": "date",
            "jsonPath": ".metadata.creationTimestamp",
            "description": "Time since the object was created.",
        }
    )
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{GROUP}",
            "labels": {
                "app.kubernetes.io/name": "callmesh",
                "app.kubernetes.io/part-of": "callmesh",
            },
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": model.kind_name,
                "listKind": f"{model.kind_name}List",
                "plural": plural,
                "singular": model.kind_name.lower(),
                "shortNames": list(model.short_names),
                "categories": [CATEGORY],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def _column_description(schema: Mapping[str, Any], column: Mapping[str, str]) -> str:
    """A printer column's description: the field's own, or the condition it shows."""
    path = column["jsonPath"]
    if path.startswith(".status.conditions[?(@.type=="):
        kind = path.split('"')[1]
        return f"Status of the {kind} condition: True, False or Unknown."
    node: Mapping[str, Any] = schema
    for part in path.strip(".").split("."):
        props = node.get("properties", {})
        if part not in props:
            raise CRDBuildError(f"printer column {column['name']}: {path} is not a field")
        node = props[part]
    return str(node.get("description", column["name"]))


def all_crds() -> dict[str, dict[str, Any]]:
    """Every callmesh CRD keyed by the file name it is written to (``callmesh.io_<plural>.yaml``)."""
    from callmesh.api import KINDS

    return {f"{GROUP}_{kind.plural}.yaml": crd_for(kind) for kind in KINDS}


class _Dumper(yaml.SafeDumper):
    """Block-style YAML with long descriptions kept on one line (stable diffs)."""


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_representer)


def to_yaml(crd: Mapping[str, Any]) -> str:
    """Serialise a CRD the way crds/ stores it (deterministic: same models, same bytes)."""
    header = "# Generated by `callmesh crds` from callmesh/api; do not edit by hand.\n"
    body = yaml.dump(
        dict(crd), Dumper=_Dumper, sort_keys=False, width=1 << 16, default_flow_style=False
    )
    return header + "---\n" + body


def crd_files() -> dict[str, str]:
    """Every CRD as the text of its file, by file name (``callmesh.io_<plural>.yaml``)."""
    return {name: to_yaml(crd) for name, crd in all_crds().items()}


def stale_files(existing: Mapping[str, str]) -> list[str]:
    """File names that differ from :func:`crd_files`, given a folder's ``callmesh.io_*.yaml``
    files by name: changed or missing ones, then leftovers of kinds that no longer exist."""
    wanted = crd_files()
    out = [name for name, text in wanted.items() if existing.get(name) != text]
    out += sorted(name for name in existing if name not in wanted)
    return out


def iter_schema_nodes(
    schema: Mapping[str, Any], path: str = ""
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every node of a structural schema with its path (``.spec.tiers[*].teams``)."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from iter_schema_nodes(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), Mapping):
        yield from iter_schema_nodes(schema["items"], f"{path}[*]")
    if isinstance(schema.get("additionalProperties"), Mapping):
        yield from iter_schema_nodes(schema["additionalProperties"], f"{path}[*]")
