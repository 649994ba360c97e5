"""The ACD: queues, agents, offers, tiers and escalation, as a pure engine.

Start with :class:`Router` (the engine), the configuration dataclasses in
:mod:`callmesh.acd.config`, the routing contract in :mod:`callmesh.acd.strategy` and the
built-in strategies in :mod:`callmesh.acd.strategies`.
"""

from callmesh.acd.config import (
    AgentConfig,
    OverflowAction,
    OverflowConfig,
    QueueConfig,
    TeamConfig,
    TierConfig,
)
from callmesh.acd.effects import (
    AgentState,
    AgentStateChanged,
    Connected,
    ContactEnded,
    ContactMoved,
    DecisionRecord,
    Effect,
    EndReason,
    Offer,
    OfferWithdrawn,
)
from callmesh.acd.engine import ContactSpec, QueueStats, Router
from callmesh.acd.errors import AcdError
from callmesh.acd.strategies import BUILTIN_STRATEGIES, BuiltinRoutingPolicy
from callmesh.acd.strategy import (
    AgentView,
    CandidateOrder,
    CandidateSet,
    Channel,
    ContactView,
    OfferResult,
    RoutingDecision,
    RoutingOutcome,
    RoutingPolicy,
    RoutingRequest,
    RoutingStrategy,
)

__all__ = [
    "BUILTIN_STRATEGIES",
    "AcdError",
    "AgentConfig",
    "AgentState",
    "AgentStateChanged",
    "AgentView",
    "BuiltinRoutingPolicy",
    "CandidateOrder",
    "CandidateSet",
    "Channel",
    "Connected",
    "ContactEnded",
    "ContactMoved",
    "ContactSpec",
    "ContactView",
    "DecisionRecord",
    "Effect",
    "EndReason",
    "Offer",
    "OfferResult",
    "OfferWithdrawn",
    "OverflowAction",
    "OverflowConfig",
    "QueueConfig",
    "QueueStats",
    "Router",
    "RoutingDecision",
    "RoutingOutcome",
    "RoutingPolicy",
    "RoutingRequest",
    "RoutingStrategy",
    "TeamConfig",
    "TierConfig",
]
