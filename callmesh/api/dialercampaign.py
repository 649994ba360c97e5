"""DialerCampaign: outbound calling of a contact list, within the law."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field, StringConstraints

from callmesh.api.base import (
    E164,
    READY_COLUMN,
    ConfigMapKeyRef,
    Identifier,
    Model,
    ObjectName,
    Prompt,
    Resource,
    Seconds,
    SecretKeyRef,
    ShortText,
    Status,
    TimeOfDay,
    TimeZoneName,
    Weekday,
    list_map,
)


class DialerMode(StrEnum):
    """How calls are paced."""

    preview = "preview"
    progressive = "progressive"
    predictive = "predictive"
    agentless = "agentless"


class CampaignState(StrEnum):
    """Whether the campaign dials."""

    running = "running"
    paused = "paused"


class ContactList(Model):
    """Where the numbers to call come from: a CSV in a ConfigMap or Secret, or a CRM plugin."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "(has(self.configMap) ? 1 : 0) + (has(self.secret) ? 1 : 0) + (has(self.crmPlugin) ? 1 : 0) == 1",
                    "message": "the contact list needs exactly one source — set one of configMap, secret or crmPlugin",
                }
            ]
        }
    )

    config_map: ConfigMapKeyRef | None = Field(
        default=None,
        description="CSV in a ConfigMap (columns: id, phone, timeZone, then any attributes).",
    )
    secret: SecretKeyRef | None = Field(
        default=None, description="CSV in a Secret, same columns, for personal data."
    )
    crm_plugin: Identifier | None = Field(
        default=None, description="A CRM plugin that supplies the list."
    )


class AbandonPeriod(StrEnum):
    """Over what period the abandonment rate is measured."""

    day = "day"
    rolling30_days = "rolling30Days"


class Pacing(Model):
    """Predictive pacing limits."""

    max_abandon_percent: float = Field(
        default=3.0,
        ge=0,
        le=100,
        description="Cap on abandoned calls as a percent of calls answered by a person.",
    )
    compliance_window_seconds: float = Field(
        default=2.0,
        gt=0,
        le=15,
        description="An answered call with no agent within this many seconds counts as abandoned.",
    )
    period: AbandonPeriod = Field(default=AbandonPeriod.day, description="day or rolling30Days.")
    max_dial_ratio: float = Field(
        default=3.0, ge=1, le=10, description="Most lines dialled per available agent."
    )
    ring_timeout_seconds: int = Field(
        default=25, ge=5, le=120, description="How long a call rings before no answer."
    )


class CallingWindow(Model):
    """When contacts may be called, in each contact's own time zone."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.end > self.start",
                    "message": "the calling window ends before it starts — set end after start",
                    "fieldPath": ".end",
                }
            ]
        }
    )

    days: Annotated[list[Weekday], Field(min_length=1, max_length=7)] = Field(
        default_factory=lambda: [Weekday.mon, Weekday.tue, Weekday.wed, Weekday.thu, Weekday.fri],
        description="Days calls may be placed.",
    )
    start: TimeOfDay = Field(default="09:00", description="Earliest local time, HH:MM.")
    end: TimeOfDay = Field(default="20:00", description="Latest local time, HH:MM (after start).")
    default_time_zone: TimeZoneName = Field(
        default="UTC", description="Time zone for contacts whose row gives none."
    )


class Disposition(StrEnum):
    """Outcome of an attempt that may be retried."""

    busy = "busy"
    no_answer = "noAnswer"
    machine = "machine"
    failed = "failed"


class RetryRule(Model):
    """How an outcome is retried."""

    disposition: Disposition = Field(description="busy, noAnswer, machine or failed.")
    max_attempts: int = Field(
        default=3, ge=0, le=20, description="Most attempts for a contact with this outcome."
    )
    delay_seconds: Seconds = Field(default=3600, description="Wait before the next attempt.")


class MachineAction(StrEnum):
    """What to do when an answering machine picks up."""

    hangup = "hangup"
    leave_message = "leaveMessage"


class AnsweringMachine(Model):
    """Answering-machine handling."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.action != 'leaveMessage' || has(self.message)",
                    "message": "action leaveMessage has no message to leave — add message or use action hangup",
                    "fieldPath": ".message",
                }
            ]
        }
    )

    detect: bool = Field(
        default=True, description="Run answering-machine detection on answered calls."
    )
    action: MachineAction = Field(
        default=MachineAction.hangup, description="hangup or leaveMessage."
    )
    message: Prompt | None = Field(default=None, description="Message left on the machine.")


class Agentless(Model):
    """The "press 1" announcement of an agentless campaign."""

    message: Prompt = Field(description="The announcement.")
    transfer_digit: Annotated[str, StringConstraints(pattern=r"^[0-9*#]$", max_length=1)] = Field(
        default="1", description="Key that transfers the listener to the target queue."
    )
    opt_out_digit: Annotated[str, StringConstraints(pattern=r"^[0-9*#]$", max_length=1)] | None = (
        Field(default="9", description="Key that adds the number to the do-not-call list.")
    )
    repeat: int = Field(
        default=2, ge=1, le=5, description="Times the message is played while waiting for a key."
    )


class CallerId(Model):
    """Caller ID presented to the called party."""

    number: E164 = Field(description="Number shown, E.164.")
    name: ShortText = Field(default="", description="Name shown where the network carries it.")


class DialerCampaignSpec(Model):
    """Desired state of a campaign."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.mode != 'agentless' || has(self.agentless)",
                    "message": "mode agentless has no announcement — add spec.agentless with the message",
                    "fieldPath": ".agentless",
                },
            ]
        }
    )

    display_name: ShortText = Field(default="", description="Human name of the campaign.")
    mode: DialerMode = Field(description="preview, progressive, predictive or agentless.")
    state: CampaignState = Field(
        default=CampaignState.paused, description="running or paused; a new campaign starts paused."
    )
    queue: ObjectName = Field(description="Queue that answered calls (or press-1 transfers) go to.")
    contact_list: ContactList = Field(description="The numbers to call.")
    do_not_call: Annotated[list[ConfigMapKeyRef], Field(max_length=8)] = Field(
        default_factory=list,
        description="Lists of numbers never to call (one E.164 number a line).",
    )
    max_attempts_per_day: int = Field(
        default=3, ge=1, le=20, description="Frequency cap per contact per day."
    )
    pacing: Pacing = Field(default_factory=Pacing, description="Pacing and the abandonment cap.")
    calling_window: CallingWindow = Field(
        default_factory=CallingWindow, description="When contacts may be called."
    )
    retries: Annotated[list[RetryRule], Field(max_length=4)] = Field(
        default_factory=list,
        json_schema_extra=list_map("disposition"),
        description="Retry rules per outcome.",
    )
    answering_machine: AnsweringMachine = Field(
        default_factory=AnsweringMachine, description="Answering-machine handling."
    )
    caller_id: CallerId = Field(description="Caller ID presented.")
    safe_harbour_message: Prompt | None = Field(
        default=None,
        description="Played to an answered call that cannot get an agent within the compliance window.",
    )
    agentless: Agentless | None = Field(
        default=None, description="Announcement of an agentless campaign."
    )


class DialerCampaignStatus(Status):
    """Observed state of a campaign."""

    contacts: int | None = Field(default=None, ge=0, description="Valid contacts loaded.")
    rejected_rows: int | None = Field(
        default=None, ge=0, description="Contact rows skipped as invalid."
    )
    abandon_percent: float | None = Field(
        default=None, ge=0, description="Abandonment rate over the pacing period."
    )
    answered: int | None = Field(
        default=None,
        ge=0,
        description="Calls answered by a person over the pacing period (abandonPercent's base).",
    )
    abandoned: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Answered calls with no agent within the compliance window over the pacing period."
        ),
    )
    dialled: int | None = Field(
        default=None, ge=0, description="Calls placed since the campaign started."
    )
    reached: int | None = Field(
        default=None, ge=0, description="Contacts done as reached (a person was connected)."
    )
    remaining: int | None = Field(
        default=None,
        ge=0,
        description="Contacts still to call (not reached, exhausted, opted out or uncallable).",
    )


class DialerCampaign(Resource):
    """An outbound campaign."""

    kind_name: ClassVar[str] = "DialerCampaign"
    plural: ClassVar[str] = "dialercampaigns"
    short_names: ClassVar[tuple[str, ...]] = ("camp",)
    printer_columns: ClassVar[tuple[dict[str, str], ...]] = (
        {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
        {"name": "State", "type": "string", "jsonPath": ".spec.state"},
        {"name": "Remaining", "type": "integer", "jsonPath": ".status.remaining"},
        {"name": "Abandon%", "type": "number", "jsonPath": ".status.abandonPercent"},
        READY_COLUMN,
    )

    kind: Literal["DialerCampaign"] = Field(default="DialerCampaign", description="DialerCampaign.")
    spec: DialerCampaignSpec = Field(description="Desired state.")
    status: DialerCampaignStatus | None = Field(
        default=None,
        description="Observed state: conditions from the operator, live figures (abandonPercent, progress) from the dialer.",
    )
