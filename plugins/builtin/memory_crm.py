"""An in-memory CRM: callers listed in the tenant's config, interactions kept in memory.

Good for demos, tests and small centres whose customer list fits in a manifest.
"""

from __future__ import annotations

from callmesh.plugins.hookspecs import hookimpl
from callmesh.plugins.types import CallerQuery, CallerRecord, Interaction
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["MemoryCRM", "MemoryCRMConfig", "MemoryCustomer"]


class MemoryCustomer(BaseModel):
    """One known customer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ani: str = Field(min_length=1, description="The number or address the customer calls from.")
    name: str = Field(min_length=1, description="The name shown to the agent.")
    customer_id: str = Field(default="", description="The customer's id.")
    attributes: dict[str, str] = Field(
        default_factory=dict, description="Extra screen-pop fields, e.g. tier: vip."
    )


class MemoryCRMConfig(BaseModel):
    """Config of ``memory-crm``."""

    model_config = ConfigDict(extra="forbid")

    customers: list[MemoryCustomer] = Field(
        default_factory=list, description="Known customers, matched on their exact ANI."
    )
    history_size: int = Field(
        default=5, ge=0, le=100, description="Recent interactions shown in the screen pop."
    )


class MemoryCRM:
    """Looks callers up in a list from its config; remembers interactions in memory."""

    config_model = MemoryCRMConfig

    def __init__(self, config: MemoryCRMConfig) -> None:
        self.config = config
        self._by_ani = {c.ani: c for c in config.customers}
        self.interactions: list[Interaction] = []

    @hookimpl
    async def callmesh_crm_lookup(self, query: CallerQuery) -> CallerRecord | None:
        """The customer whose ``ani`` equals the caller's, with their recent interactions."""
        customer = self._by_ani.get(query.ani)
        if customer is None:
            return None
        history = tuple(
            f"{i.channel} in {i.queue} with {i.agent_id or 'nobody'}: {i.disposition or '-'}"
            for i in reversed(self.interactions)
            if i.ani == query.ani
        )[: self.config.history_size]
        return CallerRecord(
            found=True,
            display_name=customer.name,
            customer_id=customer.customer_id,
            attributes=dict(customer.attributes),
            history=history,
        )

    @hookimpl
    async def callmesh_crm_record_interaction(self, interaction: Interaction) -> None:
        """Keep the interaction (for later screen pops' history)."""
        self.interactions.append(interaction)
