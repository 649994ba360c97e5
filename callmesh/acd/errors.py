"""Typed errors of the ACD engine.

Every error the :class:`~callmesh.acd.engine.Router` raises on bad input is a subclass of
:class:`AcdError`, is raised before any state changes, and says what was wrong and how to
fix it, so an adapter (the gRPC router worker) can map it to a status with a clear message.
"""

from __future__ import annotations

__all__ = [
    "AcdError",
    "AgentNotInTeamError",
    "AgentStateError",
    "ClockError",
    "ConfigError",
    "ContactStateError",
    "DuplicateContactError",
    "InvariantViolation",
    "OfferWithdrawnError",
    "UnknownAgentError",
    "UnknownContactError",
    "UnknownQueueError",
]


class AcdError(Exception):
    """Base class of every error the ACD engine raises on bad input."""


class ConfigError(AcdError, ValueError):
    """Queue, team or agent configuration is inconsistent (names the field and the fix)."""


class UnknownQueueError(AcdError, LookupError):
    """A queue name that the router was not configured with."""

    def __init__(self, queue: str) -> None:
        super().__init__(f"unknown queue {queue!r}: configure it in the router's queues first")
        self.queue = queue


class UnknownAgentError(AcdError, LookupError):
    """An agent id that no team and no roster of the router knows."""

    def __init__(self, agent_id: str) -> None:
        super().__init__(
            f"unknown agent {agent_id!r}: add the agent to an AgentTeam before it logs in"
        )
        self.agent_id = agent_id


class AgentNotInTeamError(AcdError):
    """An agent that is known (on the roster) but belongs to no team, so cannot serve."""

    def __init__(self, agent_id: str) -> None:
        super().__init__(f"agent {agent_id!r} is not in any team: add it to an AgentTeam's agents")
        self.agent_id = agent_id


class UnknownContactError(AcdError, LookupError):
    """A contact id that is not (or no longer) in the router."""

    def __init__(self, contact_id: str) -> None:
        super().__init__(f"unknown contact {contact_id!r}: it was never enqueued or has ended")
        self.contact_id = contact_id


class DuplicateContactError(AcdError):
    """A contact id that is already in the router."""

    def __init__(self, contact_id: str) -> None:
        super().__init__(
            f"contact {contact_id!r} is already in the router: contact ids must be unique"
            " (re-enqueue only after it has ended)"
        )
        self.contact_id = contact_id


class OfferWithdrawnError(AcdError):
    """Accept or reject of an offer that is not (or no longer) ringing at this agent."""

    def __init__(self, contact_id: str, agent_id: str) -> None:
        super().__init__(
            f"contact {contact_id!r} is not being offered to agent {agent_id!r}:"
            " the offer was withdrawn, timed out or answered elsewhere"
        )
        self.contact_id = contact_id
        self.agent_id = agent_id


class AgentStateError(AcdError):
    """An agent operation that its current state does not allow (e.g. logout while busy)."""


class ContactStateError(AcdError):
    """A contact operation that its current state does not allow."""


class ClockError(AcdError, ValueError):
    """A time that is not a finite number, or earlier than one the router already saw."""


class InvariantViolation(AcdError, AssertionError):
    """An engine invariant does not hold: a bug, reported by ``Router.check_invariants``."""
