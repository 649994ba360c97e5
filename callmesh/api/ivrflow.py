"""IVRFlow: the graph a caller walks before reaching a queue, a mailbox or a number.

Each node has an ``id``, a ``type`` and the settings object named after its type (``menu:``
for a menu node, ``queue:`` for a queue node, ...), the way a Kubernetes volume names its
source. Nodes point at each other by id; ``callmesh validate`` checks the graph as a whole.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field, JsonValue, StringConstraints

from callmesh.api.base import (
    E164,
    READY_COLUMN,
    Identifier,
    Model,
    ObjectName,
    Prompt,
    Resource,
    ShortText,
    SkillRequirement,
    Status,
    list_map,
)

#: Reference to another node of the same flow.
NodeRef = Identifier
#: A template such as ``{{ani}}`` or a literal value, stored in a call attribute.
AttributeValue = Annotated[str, StringConstraints(max_length=1024)]
#: A CEL expression over the call, e.g. ``attributes["crm.tier"] == "gold"``.
Expression = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class NodeType(StrEnum):
    """What a node does."""

    play = "play"
    say = "say"
    menu = "menu"
    collect = "collect"
    condition = "condition"
    crm_lookup = "crmLookup"
    set_attribute = "setAttribute"
    queue = "queue"
    voicemail = "voicemail"
    callback = "callback"
    transfer = "transfer"
    hangup = "hangup"


class PlayNode(Model):
    """Play a prompt, then go on."""

    prompt: Prompt = Field(description="What is played.")
    next: NodeRef = Field(description="Node after the prompt.")


class SayKind(StrEnum):
    """How ``say`` pronounces its value (FreeSWITCH say types)."""

    number = "number"
    digits = "digits"
    date = "date"
    time = "time"
    currency = "currency"


class SayNode(Model):
    """Speak a value (number, digits, date...) from the call's attributes, then go on."""

    value: AttributeValue = Field(
        description="What is said; {{attribute}} templates are filled from the call."
    )
    kind: SayKind = Field(
        default=SayKind.number, description="number, digits, date, time or currency."
    )
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[A-Z]{2})?$", max_length=5)] = (
        Field(default="en", description="Language of the say module, e.g. en.")
    )
    next: NodeRef = Field(description="Node after speaking.")


class MenuOption(Model):
    """One key of a menu."""

    digit: Annotated[str, StringConstraints(pattern=r"^[0-9*#]$", max_length=1)] = Field(
        description="The key: 0-9, * or #."
    )
    target: NodeRef = Field(description="Node the key leads to.")
    label: ShortText = Field(default="", description="What the option is, for reports.")


class MenuNode(Model):
    """Play a prompt and branch on one key press."""

    prompt: Prompt = Field(description="The menu prompt.")
    options: Annotated[list[MenuOption], Field(min_length=1, max_length=12)] = Field(
        description="Keys and targets, one option per digit.",
        json_schema_extra=list_map("digit"),
    )
    timeout_seconds: int = Field(default=5, ge=1, le=60, description="Seconds to wait for a key.")
    retries: int = Field(
        default=3, ge=1, le=10, description="Times the prompt is played before giving up."
    )
    invalid_prompt: Prompt | None = Field(
        default=None, description="Played after a key that is not an option."
    )
    invalid_target: NodeRef | None = Field(
        default=None,
        description="Node after the last invalid key; the flow's onError node if unset.",
    )
    timeout_target: NodeRef | None = Field(
        default=None, description="Node after the last timeout; the flow's onError node if unset."
    )


class CollectNode(Model):
    """Collect digits (an account number, a PIN) into a call attribute."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.maxDigits >= self.minDigits",
                    "message": "maxDigits is below minDigits — raise maxDigits or lower minDigits",
                    "fieldPath": ".maxDigits",
                }
            ]
        }
    )

    prompt: Prompt = Field(description="Asks for the digits.")
    attribute: Identifier = Field(description="Call attribute the digits are stored in.")
    min_digits: int = Field(default=1, ge=1, le=32, description="Fewest digits accepted.")
    max_digits: int = Field(default=16, ge=1, le=32, description="Most digits accepted.")
    terminator: Annotated[str, StringConstraints(pattern=r"^[*#]?$", max_length=1)] = Field(
        default="#", description="Key that ends input early: # or *, empty for none."
    )
    timeout_seconds: int = Field(default=8, ge=1, le=60, description="Seconds to wait for input.")
    retries: int = Field(default=3, ge=1, le=10, description="Attempts before giving up.")
    regex: Annotated[str, StringConstraints(max_length=256)] = Field(
        default=r"^[0-9]+$", description="Regular expression the digits must match."
    )
    next: NodeRef = Field(description="Node after valid input.")
    invalid_target: NodeRef | None = Field(
        default=None,
        description="Node after the last failed attempt; the flow's onError node if unset.",
    )


class ConditionNode(Model):
    """Branch on business hours (a schedule of the ContactCenter) or on an expression."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.schedule) != has(self.expression)",
                    "message": "a condition needs exactly one of schedule or expression — keep one of them",
                    "fieldPath": ".schedule",
                }
            ]
        }
    )

    schedule: Identifier | None = Field(
        default=None,
        description="Name of a ContactCenter schedule; true while it is open (holidays included).",
    )
    expression: Expression | None = Field(
        default=None,
        description='CEL expression over the call, e.g. attributes["crm.vip"] == "true"; a missing attribute takes onError.',
    )
    if_true: NodeRef = Field(description="Node when the condition holds.")
    if_false: NodeRef = Field(description="Node when it does not.")


class CrmLookupNode(Model):
    """Look the caller up through the CRM plugins; the result becomes ``crm.*`` attributes."""

    key: AttributeValue = Field(
        default="{{ani}}", description="What is looked up; the caller's number by default."
    )
    timeout_ms: int = Field(
        default=1500, ge=50, le=10_000, description="Budget for the lookup, in milliseconds."
    )
    next: NodeRef = Field(description="Node after the lookup (found or not).")
    not_found: NodeRef | None = Field(
        default=None, description="Node when the caller is unknown; next if unset."
    )


class SetAttributeNode(Model):
    """Set a call attribute, e.g. a language or a priority, then go on."""

    name: Identifier = Field(description="Attribute name.")
    value: AttributeValue = Field(
        description="Value; {{attribute}} templates are filled from the call."
    )
    next: NodeRef = Field(description="Node after setting it.")


class QueueNode(Model):
    """Queue the call; the flow ends here for the caller."""

    queue: ObjectName = Field(description="Name of the Queue.")
    priority: int = Field(
        default=0, ge=0, le=100, description="Contact priority: higher is served first."
    )
    priority_attribute: Identifier | None = Field(
        default=None,
        description="Call attribute holding the priority (overrides priority when present).",
    )
    skills: Annotated[list[SkillRequirement], Field(max_length=8)] = Field(
        default_factory=list, description="Skills this contact needs on top of the queue's."
    )


class VoicemailNode(Model):
    """Let the caller leave a message."""

    mailbox: Identifier = Field(description="Mailbox the message goes to.")
    greeting: Prompt | None = Field(default=None, description="Greeting before the beep.")


class CallbackNode(Model):
    """Record a callback request in a queue, then hang up."""

    queue: ObjectName = Field(description="Queue the callback is placed in.")
    prompt: Prompt | None = Field(default=None, description="Confirms the callback to the caller.")


class TransferNode(Model):
    """Transfer the call to a number or a SIP address."""

    destination: Annotated[
        str, StringConstraints(pattern=r"^(\+[1-9][0-9]{6,14}|sips?:[^\s]+)$", max_length=256)
    ] = Field(description="An E.164 number (+14155550100) or a SIP URI (sip:desk@example.com).")


class HangupNode(Model):
    """End the call."""

    prompt: Prompt | None = Field(default=None, description="Played before hanging up.")
    cause: Annotated[str, StringConstraints(pattern=r"^[A-Z_]+$", max_length=64)] = Field(
        default="NORMAL_CLEARING", description="Q.850 cause name sent to the caller."
    )


_TYPE_FIELDS = {t.value: t.value for t in NodeType}


def _one_settings_rule() -> dict[str, JsonValue]:
    checks = " && ".join(f"(self.type == '{t}') == has(self.{f})" for t, f in _TYPE_FIELDS.items())
    return {
        "rule": checks,
        "message": "the node's settings do not match its type — add the settings object named like the type (type: menu needs menu:) and remove any other",
        "reason": "FieldValueInvalid",
    }


class Node(Model):
    """One step of the flow."""

    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-validations": [_one_settings_rule()]}
    )

    id: NodeRef = Field(description="Node id, unique in the flow.")
    type: NodeType = Field(
        description="What the node does; its settings go in the field of the same name."
    )
    play: PlayNode | None = Field(default=None, description="Settings of a play node.")
    say: SayNode | None = Field(default=None, description="Settings of a say node.")
    menu: MenuNode | None = Field(default=None, description="Settings of a menu node.")
    collect: CollectNode | None = Field(default=None, description="Settings of a collect node.")
    condition: ConditionNode | None = Field(
        default=None, description="Settings of a condition node."
    )
    crm_lookup: CrmLookupNode | None = Field(
        default=None, description="Settings of a crmLookup node."
    )
    set_attribute: SetAttributeNode | None = Field(
        default=None, description="Settings of a setAttribute node."
    )
    queue: QueueNode | None = Field(default=None, description="Settings of a queue node.")
    voicemail: VoicemailNode | None = Field(
        default=None, description="Settings of a voicemail node."
    )
    callback: CallbackNode | None = Field(default=None, description="Settings of a callback node.")
    transfer: TransferNode | None = Field(default=None, description="Settings of a transfer node.")
    hangup: HangupNode | None = Field(default=None, description="Settings of a hangup node.")

    def settings(self) -> Model:
        """The settings object of this node's type."""
        value = getattr(self, _FIELD_NAMES[self.type])
        if value is None:  # pragma: no cover - prevented by validation
            raise ValueError(
                f"node {self.id}: type {self.type.value} needs its {self.type.value} settings"
            )
        assert isinstance(value, Model)
        return value


_FIELD_NAMES = {
    NodeType.play: "play",
    NodeType.say: "say",
    NodeType.menu: "menu",
    NodeType.collect: "collect",
    NodeType.condition: "condition",
    NodeType.crm_lookup: "crm_lookup",
    NodeType.set_attribute: "set_attribute",
    NodeType.queue: "queue",
    NodeType.voicemail: "voicemail",
    NodeType.callback: "callback",
    NodeType.transfer: "transfer",
    NodeType.hangup: "hangup",
}


class IVRFlowSpec(Model):
    """Desired state of an IVR flow."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.nodes.exists(n, n.id == self.entry)",
                    "message": "entry names no node of this flow — set it to the id of the first node",
                    "fieldPath": ".entry",
                },
            ]
        }
    )

    display_name: ShortText = Field(default="", description="Human name of the flow.")
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[A-Z]{2})?$", max_length=5)] = (
        Field(default="en", description="Language of prompts and text-to-speech, e.g. en or es-MX.")
    )
    entry: NodeRef = Field(description="Id of the first node.")
    on_error: NodeRef | None = Field(
        default=None,
        description="Node taken when a step fails (menu exhausted, lookup error, bad expression); hang up if unset.",
    )
    nodes: Annotated[list[Node], Field(min_length=1, max_length=200)] = Field(
        description="The flow's nodes, each with its own id.",
        json_schema_extra=list_map("id"),
    )
    caller_id_number: E164 | None = Field(
        default=None, description="Caller ID used for transfers out of the flow."
    )


class IVRFlow(Resource):
    """An IVR flow answering one or more of the center's numbers."""

    kind_name: ClassVar[str] = "IVRFlow"
    plural: ClassVar[str] = "ivrflows"
    short_names: ClassVar[tuple[str, ...]] = ("ivr",)
    printer_columns: ClassVar[tuple[dict[str, str], ...]] = (
        {"name": "Entry", "type": "string", "jsonPath": ".spec.entry"},
        READY_COLUMN,
    )

    kind: Literal["IVRFlow"] = Field(default="IVRFlow", description="IVRFlow.")
    spec: IVRFlowSpec = Field(description="Desired state.")
    status: Status | None = Field(
        default=None, description="Observed state, written by the operator."
    )
