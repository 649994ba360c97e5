"""A tenant: every callmesh object of one namespace, read together."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from callmesh.api.agentteam import AgentTeam
from callmesh.api.base import Resource
from callmesh.api.contactcenter import ContactCenter
from callmesh.api.dialercampaign import DialerCampaign
from callmesh.api.ivrflow import IVRFlow
from callmesh.api.queue import Queue


@dataclass
class Tenant:
    """The objects of one namespace: what the operator reconciles and the simulator runs."""

    namespace: str
    center: ContactCenter | None = None
    queues: dict[str, Queue] = field(default_factory=dict)
    teams: dict[str, AgentTeam] = field(default_factory=dict)
    flows: dict[str, IVRFlow] = field(default_factory=dict)
    campaigns: dict[str, DialerCampaign] = field(default_factory=dict)

    def add(self, obj: Resource) -> None:
        """File an object under its kind (a second ContactCenter replaces nothing: see validate)."""
        if isinstance(obj, ContactCenter):
            if self.center is None:
                self.center = obj
        elif isinstance(obj, Queue):
            self.queues[obj.name] = obj
        elif isinstance(obj, AgentTeam):
            self.teams[obj.name] = obj
        elif isinstance(obj, IVRFlow):
            self.flows[obj.name] = obj
        elif isinstance(obj, DialerCampaign):
            self.campaigns[obj.name] = obj
        else:  # pragma: no cover - every kind is listed above
            raise TypeError(f"not a callmesh resource: {type(obj).__name__}")

    def objects(self) -> list[Resource]:
        """Every object of the tenant, center first."""
        out: list[Resource] = [self.center] if self.center else []
        for group in (self.queues, self.teams, self.flows, self.campaigns):
            out.extend(group[name] for name in sorted(group))
        return out


def group_by_namespace(objects: Iterable[Resource]) -> dict[str, Tenant]:
    """Split objects into tenants by namespace, sorted by namespace name."""
    tenants: dict[str, Tenant] = {}
    for obj in objects:
        tenants.setdefault(obj.namespace, Tenant(obj.namespace)).add(obj)
    return dict(sorted(tenants.items()))
