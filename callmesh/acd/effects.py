"""Effects: what the engine asks its driver (worker or simulator) to carry out.

Every transition of :class:`~callmesh.acd.engine.Router` returns a list of these, in the
order they happened. They are flat, immutable, typed records (``NamedTuple``: several are
built per routing decision, and a named tuple is built four times faster than a frozen
dataclass): the router worker turns them into gRPC messages, the simulator into scheduled
events, tests into assertions.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from callmesh.acd.strategy import Channel

__all__ = [
    "AgentState",
    "AgentStateChanged",
    "Connected",
    "ContactEnded",
    "ContactMoved",
    "DecisionRecord",
    "Effect",
    "EndReason",
    "Offer",
    "OfferWithdrawn",
]


class AgentState(StrEnum):
    """An agent's state, as reported and recorded in its history."""

    LOGGED_OUT = "LoggedOut"
    AVAILABLE = "Available"
    NOT_READY = "NotReady"
    RESERVED = "Reserved"
    BUSY = "Busy"
    WRAP_UP = "WrapUp"


class EndReason(StrEnum):
    """Why a contact left the ACD (each contact ends exactly once)."""

    ANSWERED = "answered"
    ABANDONED = "abandoned"
    OVERFLOWED = "overflowed"
    TIMED_OUT = "timed-out"


class DecisionRecord(NamedTuple):
    """One routing decision, for the contact's trace.

    Attributes:
        at: when it was made.
        queue: the queue the contact waited in.
        agent_ids: the agents offered (after the engine's checks).
        decided_by: the strategy / plugin whose choice was used.
        reason: why, in words (includes why a fallback happened).
        fallback: True when the engine overrode or replaced the policy's decision, or the
            policy's own fallback decided (:attr:`RoutingDecision.fallback
            <callmesh.acd.strategy.RoutingDecision.fallback>`).
        discarded: agent ids the policy proposed that were not candidates.
    """

    at: float
    queue: str
    agent_ids: tuple[str, ...]
    decided_by: str
    reason: str
    fallback: bool = False
    discarded: tuple[str, ...] = ()


class Offer(NamedTuple):
    """Ring these agents with this contact; the first to accept gets it.

    For ring-progressively, later agents are added by further ``Offer`` effects with the
    same ``contact_id`` (``agent_ids`` then holds only the added agent).
    """

    contact_id: str
    queue: str
    channel: Channel
    agent_ids: tuple[str, ...]
    timeout: float
    decision: DecisionRecord


class OfferWithdrawn(NamedTuple):
    """Stop ringing these agents for this contact (answered elsewhere, abandoned, ...)."""

    contact_id: str
    agent_ids: tuple[str, ...]
    reason: str


class Connected(NamedTuple):
    """The agent accepted: bridge the contact to the agent."""

    contact_id: str
    agent_id: str
    queue: str


class ContactMoved(NamedTuple):
    """The contact moved to another queue (overflow or supervisor), keeping its enqueue time.

    ``at`` is when it entered ``to_queue``: escalation and max wait count from there.
    """

    contact_id: str
    from_queue: str
    to_queue: str
    reason: str
    at: float


class ContactEnded(NamedTuple):
    """The contact left the ACD, for one reason, exactly once.

    Attributes:
        contact_id: the contact.
        queue: the queue it was in at the end.
        reason: answered, abandoned, overflowed (to voicemail or callback) or timed out.
        at: when.
        waited: seconds since it first entered the ACD.
        agent_id: the agent who answered, for ``answered``.
        action: the overflow action (``voicemail`` / ``callback``) for ``overflowed``.
        trace: every routing decision made for it, in order.
    """

    contact_id: str
    queue: str
    reason: EndReason
    at: float
    waited: float
    agent_id: str | None = None
    action: str | None = None
    trace: tuple[DecisionRecord, ...] = ()


class AgentStateChanged(NamedTuple):
    """An agent's state changed (also kept in the agent's history)."""

    agent_id: str
    state: AgentState
    reason: str
    at: float


Effect = Offer | OfferWithdrawn | Connected | ContactMoved | ContactEnded | AgentStateChanged
"""Any effect the engine returns."""
