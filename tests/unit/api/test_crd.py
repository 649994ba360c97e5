"""The schema post-processor: pydantic JSON schema in, structural OpenAPI v3 out."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import pytest
from pydantic import ConfigDict, Field

from callmesh.api.base import Model, Resource, Status
from callmesh.api.crd import CRDBuildError, crd_for, openapi_schema
from callmesh.api.validate import apply_defaults


class Inner(Model):
    """An inner object."""

    size: int = Field(default=3, ge=1, description="A size.")


class WidgetSpec(Model):
    """Desired state of a widget."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [{"rule": "self.ratio > 0.0", "message": "bad — fix"}]
        }
    )

    ratio: float = Field(default=1.0, gt=0, le=10, description="A ratio.")
    label: Annotated[str, Field(max_length=10)] | None = Field(
        default=None, description="Optional label."
    )
    inner: Inner = Field(default_factory=Inner, description="Nested, defaulted.")
    items: Annotated[list[Inner], Field(max_length=4)] = Field(
        default_factory=list, description="Items."
    )
    free: dict[str, Any] = Field(
        default_factory=dict,
        description="Free-form.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


class Widget(Resource):
    """A test widget."""

    kind_name: ClassVar[str] = "Widget"
    plural: ClassVar[str] = "widgets"
    short_names: ClassVar[tuple[str, ...]] = ("w",)
    printer_columns: ClassVar[tuple[dict[str, str], ...]] = (
        {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio"},
    )

    kind: Literal["Widget"] = Field(default="Widget", description="Widget.")
    spec: WidgetSpec = Field(description="Desired state.")
    status: Status | None = Field(default=None, description="Observed state.")


SCHEMA = openapi_schema(Widget)
SPEC = SCHEMA["properties"]["spec"]


def test_optional_field_loses_its_null_variant() -> None:
    label = SPEC["properties"]["label"]
    assert label == {"description": "Optional label.", "type": "string", "maxLength": 10}


def test_exclusive_minimum_is_written_the_openapi_v3_0_way() -> None:
    ratio = SPEC["properties"]["ratio"]
    assert (ratio["minimum"], ratio["exclusiveMinimum"], ratio["maximum"]) == (0, True, 10)


def test_refs_are_inlined_with_the_field_description_winning() -> None:
    inner = SPEC["properties"]["inner"]
    assert inner["description"] == "Nested, defaulted."
    assert inner["properties"]["size"]["default"] == 3
    assert SPEC["properties"]["items"]["items"]["description"] == "An inner object."


def test_factory_defaults_are_written_so_the_api_server_applies_them() -> None:
    assert SPEC["properties"]["inner"]["default"] == {}
    assert SPEC["properties"]["items"]["default"] == []
    assert apply_defaults({"spec": {}}, SCHEMA)["spec"] == {
        "ratio": 1.0,
        "inner": {"size": 3},
        "items": [],
        "free": {},
    }


def test_forbid_extra_does_not_leak_additional_properties_false() -> None:
    assert "additionalProperties" not in SPEC
    assert SPEC["properties"]["free"]["x-kubernetes-preserve-unknown-fields"] is True
    assert "additionalProperties" not in SPEC["properties"]["free"]


def test_rules_and_columns_are_carried() -> None:
    assert SPEC["x-kubernetes-validations"][0]["rule"] == "self.ratio > 0.0"
    crd = crd_for(Widget)
    columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    assert columns[0] == {
        "name": "Ratio",
        "type": "number",
        "jsonPath": ".spec.ratio",
        "description": "A ratio.",
    }
    assert columns[-1]["name"] == "Age"


def test_undeclared_free_form_field_is_a_build_error() -> None:
    class LooseSpec(Model):
        blob: dict[str, Any] = Field(default_factory=dict, description="Anything.")

    class Loose(Resource):
        kind_name: ClassVar[str] = "Loose"
        plural: ClassVar[str] = "looses"
        short_names: ClassVar[tuple[str, ...]] = ()
        spec: LooseSpec = Field(description="Spec.")

    with pytest.raises(CRDBuildError, match=r"Loose\.spec\.blob"):
        openapi_schema(Loose)


def test_union_of_two_types_is_a_build_error() -> None:
    class UnionSpec(Model):
        value: int | str = Field(description="Either.")

    class Uni(Resource):
        kind_name: ClassVar[str] = "Uni"
        plural: ClassVar[str] = "unis"
        short_names: ClassVar[tuple[str, ...]] = ()
        spec: UnionSpec = Field(description="Spec.")

    with pytest.raises(CRDBuildError, match=r"Uni\.spec\.value: a union"):
        openapi_schema(Uni)
