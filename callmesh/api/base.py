"""Building blocks shared by every resource: the model base, metadata, status, common types.

Field names are snake_case in Python and camelCase on the wire (``alias_generator``), so a
manifest reads like every other Kubernetes object. Every string and list is bounded
(``max_length``) so that the CEL rules generated into the CRDs stay inside the API server's
cost budget.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints
from pydantic.alias_generators import to_camel

GROUP = "callmesh.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# --- bounded scalar types -------------------------------------------------------------------

#: A Kubernetes object name (RFC 1123 subdomain), the way resources refer to each other.
ObjectName = Annotated[
    str,
    StringConstraints(
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
    ),
]
#: A short identifier: agent ids, IVR node ids, skill names, plugin names.
Identifier = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=63, pattern=r"^[a-zA-Z0-9]([-_.a-zA-Z0-9]*[a-zA-Z0-9])?$"
    ),
]
#: A telephone number in E.164 form, e.g. +14155550100.
E164 = Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$", max_length=16)]
#: An IPv4 network in CIDR notation, e.g. 203.0.113.0/28.
Cidr = Annotated[
    str,
    StringConstraints(
        max_length=18,
        pattern=r"^((25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])/([0-9]|[12][0-9]|3[0-2])$",
    ),
]
#: A time of day, 24-hour ``HH:MM``.
TimeOfDay = Annotated[
    str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", max_length=5)
]
#: A calendar date, ``YYYY-MM-DD``.
DateString = Annotated[
    str,
    StringConstraints(
        pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$", max_length=10
    ),
]
#: An IANA time zone name, e.g. Europe/Berlin (checked against the tz database by `callmesh validate`).
TimeZoneName = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*$"
    ),
]
#: Free text shown to people (descriptions, prompts).
Text = Annotated[str, StringConstraints(max_length=1024)]
ShortText = Annotated[str, StringConstraints(max_length=256)]
#: A Kubernetes resource quantity, e.g. 500m or 1Gi.
Quantity = Annotated[
    str,
    StringConstraints(
        max_length=32,
        pattern=r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(([KMGTPE]i)|[numkMGTPE]|[eE][+-]?[0-9]+)?$",
    ),
]
Seconds = Annotated[int, Field(ge=0, le=86_400)]
Percent = Annotated[float, Field(ge=0, le=100)]
SkillLevel = Annotated[int, Field(ge=1, le=10)]


class Weekday(StrEnum):
    """A day of the week, three lowercase letters."""

    mon = "mon"
    tue = "tue"
    wed = "wed"
    thu = "thu"
    fri = "fri"
    sat = "sat"
    sun = "sun"


class Channel(StrEnum):
    """The media of a contact: a phone call, a chat conversation or an email."""

    voice = "voice"
    chat = "chat"
    email = "email"


def list_map(*keys: str) -> dict[str, JsonValue]:
    """Schema extra for a list of objects keyed by ``keys`` (``x-kubernetes-list-type: map``).

    The API server then rejects two items with the same key (a "Duplicate value" error)
    natively, at no CEL cost, and server-side apply merges such lists item by item.
    Each key must be a required field (or have a default).
    """
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


# --- the model base ------------------------------------------------------------------------


class Model(BaseModel):
    """Base of every manifest model: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=False,
        validate_default=True,
    )

    def to_manifest(self) -> dict[str, Any]:
        """The object as it appears in YAML: camelCase keys, enums as strings, unset optionals left out."""
        return self.model_dump(by_alias=True, mode="json", exclude_none=True)


class SecretKeyRef(Model):
    """A key inside a Kubernetes Secret of the same namespace; the value is never copied into a ConfigMap."""

    name: ObjectName = Field(description="Name of the Secret in the resource's namespace.")
    key: Annotated[str, StringConstraints(min_length=1, max_length=253)] = Field(
        description="Key within the Secret's data whose value is used."
    )


class ConfigMapKeyRef(Model):
    """A key inside a Kubernetes ConfigMap of the same namespace."""

    name: ObjectName = Field(description="Name of the ConfigMap in the resource's namespace.")
    key: Annotated[str, StringConstraints(min_length=1, max_length=253)] = Field(
        description="Key within the ConfigMap's data."
    )


class Prompt(Model):
    """Something played to a caller: a recorded file, or text spoken by text-to-speech."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.file) != has(self.text)",
                    "message": "a prompt needs exactly one of file or text — keep one of them",
                    "fieldPath": ".file",
                    "reason": "FieldValueInvalid",
                }
            ]
        }
    )

    file: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = Field(
        default=None,
        description=(
            "Sound file or FreeSWITCH playback URI, e.g. ivr/welcome.wav, "
            "tone_stream://%(300,0,800) or local_stream://moh."
        ),
    )
    text: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = Field(
        default=None, description="Text spoken with text-to-speech when no file is given."
    )
    voice: ShortText | None = Field(
        default=None, description="Text-to-speech voice name; the switch default if unset."
    )


class SkillRequirement(Model):
    """A skill a contact needs, with the lowest acceptable level."""

    name: Identifier = Field(description="Skill name, e.g. spanish or claims-auto.")
    min_level: SkillLevel = Field(
        default=1, description="Lowest agent level (1-10) that may take the contact."
    )


# --- metadata and status -------------------------------------------------------------------


class ObjectMeta(BaseModel):
    """The standard Kubernetes object metadata (only the fields callmesh reads are typed)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    name: ObjectName = Field(description="Name of the object, unique per kind in its namespace.")
    namespace: ObjectName = Field(
        default="default",
        description="The tenant: every callmesh object of one namespace forms one contact center.",
    )
    labels: dict[str, str] = Field(default_factory=dict, description="Labels of the object.")
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations of the object."
    )
    generation: int | None = Field(
        default=None, description="Set by the API server on every spec change."
    )
    uid: str | None = Field(default=None, description="Set by the API server.")


class ConditionStatus(StrEnum):
    """Whether a condition holds."""

    true = "True"
    false = "False"
    unknown = "Unknown"


class Condition(Model):
    """One aspect of an object's state, as in Kubernetes' metav1.Condition."""

    type: Annotated[str, StringConstraints(min_length=1, max_length=316)] = Field(
        description="Condition type: Ready, Progressing or Degraded."
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: Annotated[
        str,
        StringConstraints(
            min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
        ),
    ] = Field(description="A CamelCase machine-readable reason, e.g. TeamNotFound.")
    message: Annotated[str, StringConstraints(max_length=32768)] = Field(
        default="", description="A human-readable explanation naming the field and the fix."
    )
    last_transition_time: dt.datetime = Field(
        description="When status last changed (not when the condition was last written)."
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation this condition was computed from."
    )


class Status(Model):
    """Status every callmesh resource reports: conditions from the operator, live figures from the workers."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation the operator last reconciled."
    )
    conditions: Annotated[list[Condition], Field(max_length=16)] = Field(
        default_factory=list,
        description="Ready, Progressing and Degraded, each with reason and message.",
    )


#: The printer column every kind ends with: its Ready condition's status.
READY_COLUMN: dict[str, str] = {
    "name": "Ready",
    "type": "string",
    "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
}


class Resource(Model):
    """Base of the five top-level kinds."""

    #: Kubernetes names of the kind, filled in by each subclass.
    kind_name: ClassVar[str]
    plural: ClassVar[str]
    short_names: ClassVar[tuple[str, ...]]
    printer_columns: ClassVar[tuple[dict[str, str], ...]] = ()

    api_version: Literal["callmesh.io/v1alpha1"] = Field(
        default="callmesh.io/v1alpha1", description="callmesh.io/v1alpha1.", alias="apiVersion"
    )
    metadata: ObjectMeta = Field(description="Standard object metadata.")

    @property
    def name(self) -> str:
        """The object's metadata.name."""
        return self.metadata.name

    @property
    def namespace(self) -> str:
        """The object's namespace, that is its tenant."""
        return self.metadata.namespace
