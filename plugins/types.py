"""The values that cross the plugin contract, other than routing's (see ``callmesh.acd.strategy``).

Every hook argument and result is a frozen, slotted dataclass declared here (or, for routing,
in the pure core), so a change to the contract is a visible diff of this file and of
:data:`CONTRACT_VERSION`. Plugins must treat arguments as read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "CONTRACT_VERSION",
    "UNKNOWN_CALLER",
    "CallerQuery",
    "CallerRecord",
    "ContactEvent",
    "ContactEventKind",
    "Criterion",
    "CriterionScore",
    "Interaction",
    "PacingDecision",
    "PacingRequest",
    "QAResult",
    "Scorecard",
]

CONTRACT_VERSION = "1.0"
"""The version of the hook contract: the major part changes when a hook or a field is removed
or changes meaning, the minor part when one is added."""

_EMPTY: Mapping[str, str] = MappingProxyType({})


# ---------------------------------------------------------------------------------------------
# CRM
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CallerQuery:
    """Who is calling? Asked when a contact arrives, for the agent's screen pop.

    Attributes:
        contact_id: the contact's id (the call's UUID, a chat or email id).
        channel: ``voice``, ``chat`` or ``email``.
        ani: the caller's number (E.164 when the trunk gives it), chat handle or email address.
        dnis: the number or address the customer contacted.
        attributes: data gathered so far (IVR answers such as an account number).
    """

    contact_id: str
    channel: str
    ani: str
    dnis: str = ""
    attributes: Mapping[str, str] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class CallerRecord:
    """What the agent sees about the caller.

    Attributes:
        found: whether a CRM knew the caller; False gives the "unknown caller" screen pop.
        display_name: the name to show (``"unknown caller"`` when not found).
        customer_id: the CRM's id for the customer, empty when not found.
        attributes: extra fields for the screen pop and for routing (e.g. ``tier=vip``).
        history: short lines about recent interactions, newest first.
        source: the plugin that answered (filled in by the manager).
    """

    found: bool
    display_name: str
    customer_id: str = ""
    attributes: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    history: tuple[str, ...] = ()
    source: str = ""


UNKNOWN_CALLER = CallerRecord(found=False, display_name="unknown caller", source="fallback")
"""The screen pop when no CRM answers, or every CRM failed: the call goes on regardless."""


@dataclass(frozen=True, slots=True)
class Interaction:
    """A finished contact, recorded to a CRM and scored by QA scorers.

    Attributes:
        id: the contact's id.
        channel: ``voice``, ``chat`` or ``email``.
        queue: the queue that handled it.
        agent_id: the agent who handled it, empty when nobody did.
        ani: the customer's number or address.
        started_at: when the contact arrived (seconds, wall clock, UNIX epoch).
        ended_at: when it ended.
        wait_seconds: time in queue before an agent answered.
        talk_seconds: time connected to the agent, hold excluded.
        hold_seconds: total time the customer was on hold.
        transcript: the speech transcript or chat/email text, one utterance per line
            (``"agent: ..."``, ``"customer: ..."``); empty when there is none.
        disposition: the agent's wrap-up code.
        attributes: anything else known about the contact.
    """

    id: str
    channel: str
    queue: str
    agent_id: str
    ani: str
    started_at: float
    ended_at: float
    wait_seconds: float = 0.0
    talk_seconds: float = 0.0
    hold_seconds: float = 0.0
    transcript: str = ""
    disposition: str = ""
    attributes: Mapping[str, str] = field(default_factory=lambda: _EMPTY)


# ---------------------------------------------------------------------------------------------
# QA
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Criterion:
    """One line of a scorecard.

    Attributes:
        id: a short id, unique in the scorecard (e.g. ``greeting``).
        description: what a reviewer checks, in words.
        weight: the criterion's share of the total (any positive number; weights are
            normalised over the criteria that were scored).
        rule: which check answers it, e.g. ``keywords-any`` or ``max-hold-seconds`` for the
            built-in keyword scorer, or a vendor's rule name; a scorer skips rules it does
            not know.
        params: the rule's parameters (e.g. ``{"words": ["thank you"]}``).
    """

    id: str
    description: str
    weight: float
    rule: str
    params: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Scorecard:
    """The criteria an interaction is scored against.

    Attributes:
        name: the scorecard's name.
        criteria: its criteria.
        pass_mark: the total score (0..100) at or above which the interaction passes.
    """

    name: str
    criteria: tuple[Criterion, ...]
    pass_mark: float = 80.0


@dataclass(frozen=True, slots=True)
class CriterionScore:
    """One scorer's answer for one criterion.

    Attributes:
        criterion_id: the criterion's id.
        score: 0.0 (failed) .. 1.0 (fully met).
        evidence: why, in a few words (a matched phrase, a measured hold time).
        scorer: the plugin that scored it (filled in by the manager).
    """

    criterion_id: str
    score: float
    evidence: str = ""
    scorer: str = ""


@dataclass(frozen=True, slots=True)
class QAResult:
    """An interaction's score against a scorecard, combined from every scorer.

    Attributes:
        interaction_id: the interaction scored.
        scorecard: the scorecard's name.
        score: 0..100, the weighted mean over the criteria that were scored.
        passed: ``score >= pass_mark`` and at least one criterion was scored.
        criteria: every valid score received, in scorecard order then plugin order.
        unscored: ids of criteria no scorer answered.
    """

    interaction_id: str
    scorecard: str
    score: float
    passed: bool
    criteria: tuple[CriterionScore, ...]
    unscored: tuple[str, ...]


# ---------------------------------------------------------------------------------------------
# Notifications
# ---------------------------------------------------------------------------------------------
class ContactEventKind(StrEnum):
    """Contact events that notifiers may react to."""

    MISSED = "missed"
    """Offered to an agent who did not answer."""
    ABANDONED = "abandoned"
    """The customer hung up while waiting."""
    VOICEMAIL = "voicemail"
    """The customer left a voicemail."""
    CALLBACK_REQUESTED = "callback-requested"
    """The customer asked to be called back."""


@dataclass(frozen=True, slots=True)
class ContactEvent:
    """Something happened to a contact that a person may need to know about.

    Attributes:
        kind: what happened.
        contact_id: the contact's id.
        queue: the queue involved.
        ani: the customer's number or address.
        at: when it happened (seconds, UNIX epoch).
        agent_id: the agent involved (for ``missed``), else empty.
        attributes: anything else (e.g. ``voicemail_url``, wait time).
    """

    kind: ContactEventKind
    contact_id: str
    queue: str
    ani: str
    at: float
    agent_id: str = ""
    attributes: Mapping[str, str] = field(default_factory=lambda: _EMPTY)


# ---------------------------------------------------------------------------------------------
# Dialer pacing
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PacingRequest:
    """How many calls should a campaign place now?

    Attributes:
        campaign: the DialerCampaign's name.
        mode: ``preview``, ``progressive``, ``predictive`` or ``agentless``.
        now: the dialer's clock, in seconds.
        available_agents: agents Available for the campaign's queue.
        dialing: calls placed and not yet answered or failed.
        pending_contacts: contacts left to call now (inside their calling window).
        answer_rate: recent share of placed calls answered by a person (0..1).
        abandon_rate: recent share of answered calls abandoned for lack of an agent (0..1).
        max_abandon_rate: the campaign's ceiling for ``abandon_rate`` (e.g. 0.03).
        average_handle_seconds: recent mean handle time, for predictive models.
    """

    campaign: str
    mode: str
    now: float
    available_agents: int
    dialing: int
    pending_contacts: int
    answer_rate: float = 1.0
    abandon_rate: float = 0.0
    max_abandon_rate: float = 0.03
    average_handle_seconds: float = 180.0


@dataclass(frozen=True, slots=True)
class PacingDecision:
    """The number of calls to place now.

    Attributes:
        calls: how many to originate now (0 or more; capped at ``pending_contacts``).
        decided_by: the plugin or model that decided (filled in by the manager).
        reason: a short explanation for the dialer's trace.
    """

    calls: int
    decided_by: str = ""
    reason: str = ""
