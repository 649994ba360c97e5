"""VIP routing for callmesh: VIP contacts go to the longest-idle senior agent."""

from __future__ import annotations

from callmesh.plugins import hookimpl
from pydantic import BaseModel, ConfigDict, Field

from callmesh.acd.strategy import CandidateOrder, RoutingDecision, RoutingRequest

__all__ = ["VipRouting", "VipRoutingConfig"]
__version__ = "1.0.0"


class VipRoutingConfig(BaseModel):
    """The plugin's config, validated by callmesh from ContactCenter.spec.plugins[].config."""

    model_config = ConfigDict(extra="forbid")

    attribute: str = Field(default="tier", min_length=1, description="Contact attribute to read.")
    values: list[str] = Field(default=["vip"], min_length=1, description="Values that mean VIP.")
    senior_skill: str = Field(default="seniority", min_length=1, description="Seniority skill.")
    min_level: int = Field(default=7, ge=1, le=100, description="Minimum level of a senior.")


class VipRouting:
    """Routes VIP contacts to senior agents, and leaves everyone else to the queue."""

    config_model = VipRoutingConfig

    def __init__(self, config: VipRoutingConfig) -> None:
        self.config = config
        self._vip = frozenset(config.values)

    @hookimpl
    def callmesh_route_contact(self, request: RoutingRequest) -> RoutingDecision | None:
        """The longest-idle senior candidate for a VIP contact; None for anyone else."""
        value = request.contact.attributes.get(self.config.attribute)
        if value not in self._vip:
            return None
        skill, level = self.config.senior_skill, self.config.min_level
        for agent in request.candidates.ordered(CandidateOrder.LONGEST_IDLE):
            if agent.skills.get(skill, 0) >= level:
                return RoutingDecision(
                    (agent.id,),
                    "vip-routing",
                    f"{value} contact to senior agent ({skill} {level}+)",
                )
        return None
