"""Effects: what the engine asks its driver (worker or simulator) to carry out.

Every transition of :class:`~callmesh.acd.engine.Router` returns a list of these, in the
order they happened. They are flat, typed records, read-only by convention (build a changed
copy with :func:`dataclasses.replace`), compared and hashed by value: the router worker
turns them into gRPC messages, the simulator into scheduled events, tests into assertions.

They are plain classes with their own ``__init__``, ``@dataclass(init=False)`` adding
equality, hashing and ``repr``, and no ``__slots__`` (compiled, mypyc would take it for a
field). Compiled (setup.py), such a class is a native one, without a ``__dict__``, built in
a quarter of the time of a named tuple (``tuple.__new__`` is a Python-level call with an
argument tuple), and seven are built per contact; in the pure build it costs about the same
as a named tuple. (A frozen dataclass is built through ``object.__setattr__``, four times
slower.) Compiled, they cannot be pickled.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

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


@dataclass(init=False, unsafe_hash=True)
class DecisionRecord:
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
    fallback: bool
    discarded: tuple[str, ...]

    def __init__(
        self,
        at: float,
        queue: str,
        agent_ids: tuple[str, ...],
        decided_by: str,
        reason: str,
        fallback: bool = False,
        discarded: tuple[str, ...] = (),
    ) -> None:
        self.at = at
        self.queue = queue
        self.agent_ids = agent_ids
        self.decided_by = decided_by
        self.reason = reason
        self.fallback = fallback
        self.discarded = discarded


@dataclass(init=False, unsafe_hash=True)
class Offer:
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

    def __init__(
        self,
        contact_id: str,
        queue: str,
        channel: Channel,
        agent_ids: tuple[str, ...],
        timeout: float,
        decision: DecisionRecord,
    ) -> None:
        self.contact_id = contact_id
        self.queue = queue
        self.channel = channel
        self.agent_ids = agent_ids
        self.timeout = timeout
        self.decision = decision


@dataclass(init=False, unsafe_hash=True)
class OfferWithdrawn:
    """Stop ringing these agents for this contact (answered elsewhere, abandoned, ...)."""

    contact_id: str
    agent_ids: tuple[str, ...]
    reason: str

    def __init__(self, contact_id: str, agent_ids: tuple[str, ...], reason: str) -> None:
        self.contact_id = contact_id
        self.agent_ids = agent_ids
        self.reason = reason


@dataclass(init=False, unsafe_hash=True)
class Connected:
    """The agent accepted: bridge the contact to the agent."""

    contact_id: str
    agent_id: str
    queue: str

    def __init__(self, contact_id: str, agent_id: str, queue: str) -> None:
        self.contact_id = contact_id
        self.agent_id = agent_id
        self.queue = queue


@dataclass(init=False, unsafe_hash=True)
class ContactMoved:
    """The contact moved to another queue (overflow or supervisor), keeping its enqueue time.

    ``at`` is when it entered ``to_queue``: escalation and max wait count from there.
    """

    contact_id: str
    from_queue: str
    to_queue: str
    reason: str
    at: float

    def __init__(
        self, contact_id: str, from_queue: str, to_queue: str, reason: str, at: float
    ) -> None:
        self.contact_id = contact_id
        self.from_queue = from_queue
        self.to_queue = to_queue
        self.reason = reason
        self.at = at


@dataclass(init=False, unsafe_hash=True)
class ContactEnded:
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
    agent_id: str | None
    action: str | None
    trace: tuple[DecisionRecord, ...]

    def __init__(
        self,
        contact_id: str,
        queue: str,
        reason: EndReason,
        at: float,
        waited: float,
        agent_id: str | None = None,
        action: str | None = None,
        trace: tuple[DecisionRecord, ...] = (),
    ) -> None:
        self.contact_id = contact_id
        self.queue = queue
        self.reason = reason
        self.at = at
        self.waited = waited
        self.agent_id = agent_id
        self.action = action
        self.trace = trace


@dataclass(init=False, unsafe_hash=True)
class AgentStateChanged:
    """An agent's state changed (also kept in the agent's history)."""

    agent_id: str
    state: AgentState
    reason: str
    at: float

    def __init__(self, agent_id: str, state: AgentState, reason: str, at: float) -> None:
        self.agent_id = agent_id
        self.state = state
        self.reason = reason
        self.at = at


Effect = Offer | OfferWithdrawn | Connected | ContactMoved | ContactEnded | AgentStateChanged
"""Any effect the engine returns."""
