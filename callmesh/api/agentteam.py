"""AgentTeam: people who take contacts, their skills, capacity and shifts."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field, StringConstraints

from callmesh.api.base import (
    READY_COLUMN,
    Identifier,
    Model,
    Resource,
    Seconds,
    ShortText,
    SkillLevel,
    Status,
    TimeOfDay,
    Weekday,
    list_map,
)


class Skill(Model):
    """A skill an agent holds, with a level from 1 (basic) to 10 (expert)."""

    name: Identifier = Field(description="Skill name, e.g. claims-auto.")
    level: SkillLevel = Field(
        default=5, description="Proficiency 1-10; skills-best-match prefers higher."
    )


class Capacity(Model):
    """How many contacts of each channel an agent handles at once."""

    voice: int = Field(
        default=1, ge=0, le=1, description="Concurrent calls: 1, or 0 for a chat/email-only agent."
    )
    chat: int = Field(default=0, ge=0, le=10, description="Concurrent chat conversations.")
    email: int = Field(default=0, ge=0, le=20, description="Concurrent emails.")


class Agent(Model):
    """One agent: identity, phone extension, skills and capacity."""

    id: Identifier = Field(description="Agent id, unique in the namespace.")
    name: ShortText = Field(description="Display name.")
    extension: Annotated[str, StringConstraints(pattern=r"^[0-9]{2,8}$", max_length=8)] = Field(
        description="SIP extension (2-8 digits), unique in the namespace; the agent registers as <extension>@<sipDomain>."
    )
    skills: Annotated[list[Skill], Field(max_length=32)] = Field(
        default_factory=list, description="Skills with levels."
    )
    capacity: Capacity = Field(
        default_factory=Capacity, description="Concurrent contacts per channel."
    )


class Shift(Model):
    """When (some of) the team's agents are logged in."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.end > self.start",
                    "message": "the shift ends before it starts — set end after start (shifts cannot cross midnight: split them)",
                    "fieldPath": ".end",
                }
            ]
        }
    )

    name: Identifier = Field(description="Shift name, e.g. early.")
    days: Annotated[list[Weekday], Field(min_length=1, max_length=7)] = Field(
        description="Days the shift runs."
    )
    start: TimeOfDay = Field(description="Start, HH:MM in the center's time zone.")
    end: TimeOfDay = Field(description="End, HH:MM (after start).")
    agents: Annotated[list[Identifier], Field(max_length=500)] = Field(
        default_factory=list,
        description="Agent ids on this shift; every agent of the team if empty.",
    )


class AgentTeamSpec(Model):
    """Desired state of a team."""

    display_name: ShortText = Field(default="", description="Human name of the team.")
    agents: Annotated[list[Agent], Field(min_length=1, max_length=500)] = Field(
        description="The team's agents; ids and extensions are unique in the namespace.",
        json_schema_extra=list_map("id"),
    )
    shifts: Annotated[list[Shift], Field(max_length=32)] = Field(
        default_factory=list,
        description="Shifts; agents are assumed always logged in when there are none.",
    )
    wrap_up_seconds: Seconds | None = Field(
        default=None, description="After-contact work time for this team, overriding the queue's."
    )


class AgentTeamStatus(Status):
    """Observed state of a team."""

    agents: int | None = Field(default=None, ge=0, description="Agents in the team.")
    logged_in: int | None = Field(default=None, ge=0, description="Agents logged in now.")


class AgentTeam(Resource):
    """A team of agents; Queues refer to teams in their tiers."""

    kind_name: ClassVar[str] = "AgentTeam"
    plural: ClassVar[str] = "agentteams"
    short_names: ClassVar[tuple[str, ...]] = ("team",)
    printer_columns: ClassVar[tuple[dict[str, str], ...]] = (
        {"name": "Agents", "type": "integer", "jsonPath": ".status.agents"},
        {"name": "LoggedIn", "type": "integer", "jsonPath": ".status.loggedIn"},
        READY_COLUMN,
    )

    kind: Literal["AgentTeam"] = Field(default="AgentTeam", description="AgentTeam.")
    spec: AgentTeamSpec = Field(description="Desired state.")
    status: AgentTeamStatus | None = Field(
        default=None,
        description="Observed state: conditions from the operator, loggedIn from the router.",
    )
