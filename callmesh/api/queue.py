"""Queue: where contacts wait for an agent, and how the ACD picks one."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field

from callmesh.api.base import (
    READY_COLUMN,
    Channel,
    Identifier,
    Model,
    ObjectName,
    Prompt,
    Resource,
    Seconds,
    ShortText,
    SkillRequirement,
    Status,
    list_map,
)


class Strategy(Model):
    """The routing strategy: a built-in (the mod_callcenter names) or a vendor plugin's."""

    name: Identifier = Field(
        default="longest-idle-agent",
        description=(
            "Strategy name: ring-all, longest-idle-agent, round-robin, top-down, "
            "agent-with-least-talk-time, agent-with-fewest-calls, sequentially-by-agent-order, "
            "random, ring-progressively, skills-best-match, or one a plugin registers."
        ),
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Strategy parameters, e.g. {ringProgressivelySeconds: 10} for ring-progressively.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


class Tier(Model):
    """Teams that may take the queue's contacts, and how long a contact waits before they may."""

    level: int = Field(ge=1, le=9, description="Tier level: 1 is offered first.")
    teams: Annotated[list[ObjectName], Field(min_length=1, max_length=32)] = Field(
        description="Names of AgentTeams in this tier."
    )
    escalate_after_seconds: Seconds = Field(
        default=0, description="A contact becomes eligible for this tier after waiting this long."
    )


class ServiceLevel(Model):
    """The service-level target: percent of contacts answered within a threshold."""

    percent: float = Field(default=80, gt=0, le=100, description="Target percentage, e.g. 80.")
    seconds: int = Field(
        default=20, ge=1, le=86_400, description="Answer threshold in seconds, e.g. 20."
    )
    exclude_abandoned_under_seconds: Seconds = Field(
        default=0,
        description="Abandons quicker than this are left out of the service level (0 counts every abandon).",
    )


class OverflowAction(StrEnum):
    """What happens to a contact that waited maxWaitSeconds."""

    queue = "queue"
    voicemail = "voicemail"
    callback = "callback"
    hangup = "hangup"


class Overflow(Model):
    """The action taken when a contact reaches the queue's maximum wait."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.action != 'queue' || has(self.queue)",
                    "message": "overflow action queue has no target — add overflow.queue or choose another action",
                    "fieldPath": ".queue",
                },
                {
                    "rule": "self.action != 'voicemail' || has(self.mailbox)",
                    "message": "overflow action voicemail has no mailbox — add overflow.mailbox or choose another action",
                    "fieldPath": ".mailbox",
                },
            ]
        }
    )

    action: OverflowAction = Field(
        default=OverflowAction.voicemail, description="queue, voicemail, callback or hangup."
    )
    queue: ObjectName | None = Field(
        default=None,
        description="Queue to move the contact to (action queue); it keeps its original enqueue time.",
    )
    mailbox: Identifier | None = Field(
        default=None, description="Voicemail box (action voicemail)."
    )
    prompt: Prompt | None = Field(default=None, description="Played before the action.")


class Announcements(Model):
    """What a waiting caller hears."""

    hold_music: Annotated[str, Field(min_length=1, max_length=512)] = Field(
        default="local_stream://moh", description="Music on hold URI or file."
    )
    greeting: Prompt | None = Field(default=None, description="Played once on entering the queue.")
    position: bool = Field(default=True, description="Announce the caller's position in the queue.")
    estimated_wait: bool = Field(default=True, description="Announce the estimated wait time.")
    interval_seconds: int = Field(
        default=60, ge=10, le=3600, description="Seconds between announcements."
    )


class QueueSpec(Model):
    """Desired state of a queue."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.tiers.all(t, self.tiers.all(u, u.level <= t.level || "
                    "u.escalateAfterSeconds >= t.escalateAfterSeconds))",
                    "message": "a higher tier escalates before a lower one — make escalateAfterSeconds grow with the level",
                    "fieldPath": ".tiers",
                },
                {
                    "rule": "self.maxWaitSeconds == 0 || "
                    "self.tiers.all(t, t.escalateAfterSeconds < self.maxWaitSeconds)",
                    "message": "a tier escalates at or after maxWaitSeconds and is never offered a contact — lower its escalateAfterSeconds or raise maxWaitSeconds",
                    "fieldPath": ".tiers",
                },
                {
                    "rule": "!has(self.overflow) || self.maxWaitSeconds > 0",
                    "message": "overflow is set but maxWaitSeconds is 0 (wait forever) — set maxWaitSeconds or remove overflow",
                    "fieldPath": ".maxWaitSeconds",
                },
            ]
        }
    )

    display_name: ShortText = Field(default="", description="Human name shown to supervisors.")
    channel: Channel = Field(default=Channel.voice, description="voice, chat or email.")
    strategy: Strategy = Field(default_factory=Strategy, description="How an agent is chosen.")
    required_skills: Annotated[list[SkillRequirement], Field(max_length=16)] = Field(
        default_factory=list,
        description="Skills every contact of this queue needs (the IVR may add more).",
    )
    tiers: Annotated[list[Tier], Field(min_length=1, max_length=9)] = Field(
        description="Teams by tier, with escalation delays; one entry per level.",
        json_schema_extra=list_map("level"),
    )
    priority: int = Field(
        default=0,
        ge=0,
        le=100,
        description="Queue priority: an agent in several queues serves higher first.",
    )
    service_level: ServiceLevel = Field(
        default_factory=ServiceLevel, description="Service-level target."
    )
    max_wait_seconds: Seconds = Field(
        default=0, description="Maximum wait before overflow; 0 means no limit."
    )
    overflow: Overflow | None = Field(default=None, description="What happens at maxWaitSeconds.")
    offer_timeout_seconds: int = Field(
        default=20,
        ge=5,
        le=300,
        description="How long an agent's phone rings before it counts as no answer (RONA).",
    )
    wrap_up_seconds: Seconds = Field(
        default=10, description="After-contact work time before the agent is Available again."
    )
    announcements: Announcements = Field(
        default_factory=Announcements, description="What a waiting caller hears."
    )
    recording_percent: float = Field(
        default=100,
        ge=0,
        le=100,
        description="Share of this queue's calls recorded when the center's policy is perQueue.",
    )


class QueueStatus(Status):
    """Observed state of a queue, including live figures the router reports."""

    waiting: int | None = Field(default=None, ge=0, description="Contacts waiting now.")
    agents_available: int | None = Field(
        default=None, ge=0, description="Agents Available for this queue now."
    )
    service_level: ShortText | None = Field(
        default=None, description="Service level of the current interval, e.g. 82%."
    )


class Queue(Resource):
    """A queue of contacts and the rules that match them to agents."""

    kind_name: ClassVar[str] = "Queue"
    plural: ClassVar[str] = "queues"
    short_names: ClassVar[tuple[str, ...]] = ("q",)
    printer_columns: ClassVar[tuple[dict[str, str], ...]] = (
        {"name": "Channel", "type": "string", "jsonPath": ".spec.channel"},
        {"name": "Strategy", "type": "string", "jsonPath": ".spec.strategy.name"},
        {"name": "Waiting", "type": "integer", "jsonPath": ".status.waiting"},
        {"name": "SL", "type": "string", "jsonPath": ".status.serviceLevel"},
        READY_COLUMN,
    )

    kind: Literal["Queue"] = Field(default="Queue", description="Queue.")
    spec: QueueSpec = Field(description="Desired state.")
    status: QueueStatus | None = Field(
        default=None,
        description="Observed state: conditions from the operator, live figures (waiting, serviceLevel) from the router.",
    )
