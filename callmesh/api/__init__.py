"""Resource models for ``callmesh.io/v1alpha1``: the one source of truth for CRDs and validation.

Five namespaced kinds; a namespace is a tenant:

- :class:`ContactCenter` -- the tenant's switch, numbers, trunks, recording, plugins, workers.
- :class:`Queue` -- where contacts wait, and how an agent is chosen.
- :class:`AgentTeam` -- agents with skills, capacity and shifts.
- :class:`IVRFlow` -- the graph a caller walks.
- :class:`DialerCampaign` -- outbound calling of a contact list.
"""

from __future__ import annotations

from callmesh.api.agentteam import Agent, AgentTeam, AgentTeamSpec, Capacity, Shift, Skill
from callmesh.api.base import (
    API_VERSION,
    GROUP,
    VERSION,
    Channel,
    Condition,
    ObjectMeta,
    Resource,
    Status,
)
from callmesh.api.contactcenter import ContactCenter, ContactCenterSpec
from callmesh.api.dialercampaign import DialerCampaign, DialerCampaignSpec, DialerMode
from callmesh.api.ivrflow import IVRFlow, IVRFlowSpec, Node, NodeType
from callmesh.api.queue import Queue, QueueSpec, Tier
from callmesh.api.tenant import Tenant, group_by_namespace

#: The five kinds, in the order a tenant is usually read (and rendered).
KINDS: tuple[type[Resource], ...] = (ContactCenter, Queue, AgentTeam, IVRFlow, DialerCampaign)
KIND_BY_NAME: dict[str, type[Resource]] = {k.kind_name: k for k in KINDS}

__all__ = [
    "API_VERSION",
    "GROUP",
    "KINDS",
    "KIND_BY_NAME",
    "VERSION",
    "Agent",
    "AgentTeam",
    "AgentTeamSpec",
    "Capacity",
    "Channel",
    "Condition",
    "ContactCenter",
    "ContactCenterSpec",
    "DialerCampaign",
    "DialerCampaignSpec",
    "DialerMode",
    "IVRFlow",
    "IVRFlowSpec",
    "Node",
    "NodeType",
    "ObjectMeta",
    "Queue",
    "QueueSpec",
    "Resource",
    "Shift",
    "Skill",
    "Status",
    "Tenant",
    "Tier",
    "group_by_namespace",
]
