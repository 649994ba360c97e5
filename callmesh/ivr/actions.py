"""Actions: what the IVR engine asks its driver (callcontrol worker or simulator) to do.

:class:`~callmesh.ivr.session.IvrSession` returns a list of these from ``start`` and
``handle``. They are flat, frozen records. The driver carries out one list **in order**; at
most the last action of a list is one the engine waits on:

- :class:`Play` / :class:`Say` with ``wait=True``: send :class:`~callmesh.ivr.events.PromptFinished`
  when it has been heard (prompts with ``wait=False`` just precede the next action);
- :class:`CollectDigits`: send :class:`~callmesh.ivr.events.Digits` or
  :class:`~callmesh.ivr.events.Timeout`;
- :class:`CrmLookup`: send :class:`~callmesh.ivr.events.LookupResult` (or ``Timeout``).

A list that ends the IVR ends with exactly one :class:`Outcome`. :class:`Error` and
:class:`Notice` are diagnostics for the log and the trace; the driver does nothing else with
them. The callcontrol worker maps each to ESL (``answer``, ``playback``/``speak``, ``say``,
``play_and_get_digits``, ``transfer``/``bridge``, ``hangup``), the simulator to delays.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "Action",
    "Answer",
    "CallbackRequest",
    "CollectDigits",
    "CrmLookup",
    "EnqueueContact",
    "Error",
    "ErrorCode",
    "Hangup",
    "Notice",
    "NoticeCode",
    "Outcome",
    "OutcomeKind",
    "Play",
    "PromptRef",
    "Say",
    "SkillNeed",
    "Transfer",
    "Voicemail",
]


@dataclass(frozen=True, slots=True)
class PromptRef:
    """Something played: a sound file / playback URI, or text for text-to-speech.

    Exactly one of ``file`` and ``text`` is set. ``text`` has its ``{{attribute}}``
    templates already filled in.
    """

    file: str | None = None
    text: str | None = None
    voice: str | None = None
    language: str = "en"


@dataclass(frozen=True, slots=True)
class SkillNeed:
    """A skill the contact needs, with the lowest acceptable agent level."""

    name: str
    min_level: int = 1


# --- media and control -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """Answer the call (ESL ``answer``); always the first action of a session."""


@dataclass(frozen=True, slots=True)
class Play:
    """Play a prompt (ESL ``playback`` for a file, ``speak`` for text).

    Attributes:
        prompt: what is played.
        wait: True when the engine waits for ``PromptFinished`` before going on.
    """

    prompt: PromptRef
    wait: bool = True


@dataclass(frozen=True, slots=True)
class Say:
    """Speak a value with the switch's say module (ESL ``say``, e.g. ``en number pronounced 42``).

    Attributes:
        value: what is said (templates filled in).
        kind: number, digits, date, time or currency.
        language: language of the say module.
        wait: True when the engine waits for ``PromptFinished``.
    """

    value: str
    kind: str
    language: str
    wait: bool = True


@dataclass(frozen=True, slots=True)
class CollectDigits:
    """Play a prompt and collect DTMF digits (ESL ``play_and_get_digits``).

    The engine runs the retries itself (so every invalid entry and timeout is seen, counted
    and reported): the worker calls ``play_and_get_digits`` with ``max_tries`` 1 and answers
    with ``Digits`` (what was entered, terminator included or not) or ``Timeout`` (nothing).

    Attributes:
        prompt: the question.
        min_digits: fewest digits accepted.
        max_digits: most digits accepted.
        terminators: keys that end input early ("" for none), e.g. "#".
        timeout: seconds to wait for input.
        regex: what valid input matches (the engine checks it again).
        attempt: this attempt, from 1.
        max_attempts: attempts before the node gives up.
        node: the menu or collect node asking.
    """

    prompt: PromptRef
    min_digits: int
    max_digits: int
    terminators: str
    timeout: float
    regex: str
    attempt: int
    max_attempts: int
    node: str


@dataclass(frozen=True, slots=True)
class CrmLookup:
    """Look the caller up through the CRM hook; answer with ``LookupResult``.

    Attributes:
        key: what is looked up (templates filled in), the caller's number by default.
        timeout: seconds the lookup may take; past it, send ``Timeout`` or an error result.
        node: the crmLookup node asking.
    """

    key: str
    timeout: float
    node: str


# --- where the call goes when it leaves the IVR ------------------------------------------


@dataclass(frozen=True, slots=True)
class EnqueueContact:
    """Queue the call at the router.

    Attributes:
        queue: Queue name.
        priority: 0-100, higher is served first.
        skills: skills needed on top of the queue's.
        attributes: the call's attributes (screen pop, routing plugins).
    """

    queue: str
    priority: int
    skills: tuple[SkillNeed, ...]
    attributes: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Voicemail:
    """Let the caller leave a message (ESL ``voicemail``), then the call ends."""

    mailbox: str
    greeting: PromptRef | None


@dataclass(frozen=True, slots=True)
class CallbackRequest:
    """Place a callback to ``number`` in ``queue`` at the router."""

    queue: str
    number: str
    attributes: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Transfer:
    """Transfer the call to an E.164 number or a SIP URI (ESL ``transfer`` / ``bridge``)."""

    destination: str
    caller_id_number: str | None = None


@dataclass(frozen=True, slots=True)
class Hangup:
    """Hang the call up with a Q.850 cause name (ESL ``hangup``)."""

    cause: str = "NORMAL_CLEARING"


# --- diagnostics ---------------------------------------------------------------------------


class ErrorCode(StrEnum):
    """Why a step failed; the call then takes the flow's onError node (or hangs up)."""

    EXPRESSION = "expression-error"
    TEMPLATE = "missing-attribute"
    MENU_INVALID = "menu-invalid"
    MENU_TIMEOUT = "menu-timeout"
    COLLECT_FAILED = "collect-failed"
    LOOKUP_FAILED = "lookup-failed"
    BAD_VALUE = "bad-value"
    STEP_LIMIT = "step-limit"
    ERROR_LOOP = "error-loop"


@dataclass(frozen=True, slots=True)
class Error:
    """A step failed at ``node``; ``recovery`` is the node taken next, None when hanging up."""

    code: ErrorCode
    node: str
    message: str
    recovery: str | None


class NoticeCode(StrEnum):
    """Input the engine did not act on."""

    IGNORED_EVENT = "ignored-event"
    UNKNOWN_EVENT = "unknown-event"
    AFTER_END = "after-end"
    NOT_STARTED = "not-started"
    ALREADY_STARTED = "already-started"
    INVALID_DIGITS = "invalid-digits"
    BAD_PRIORITY = "bad-priority"
    LOOKUP_TRIMMED = "lookup-trimmed"


@dataclass(frozen=True, slots=True)
class Notice:
    """Input that was ignored or corrected (logged by the driver, counted by the simulator)."""

    code: NoticeCode
    node: str | None
    message: str


# --- the end -------------------------------------------------------------------------------


class OutcomeKind(StrEnum):
    """Where the call left the IVR."""

    QUEUED = "queued"
    VOICEMAIL = "voicemail"
    CALLBACK = "callback"
    TRANSFERRED = "transferred"
    HUNG_UP = "hung-up"
    """The flow hung up (a hangup node)."""
    ABANDONED = "abandoned"
    """The caller hung up inside the IVR."""
    FAILED = "failed"
    """A step failed with no onError node (or the error path failed too): safe hang-up."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """The call left the IVR; exactly one per session, always the last action.

    Attributes:
        kind: how it left.
        node: the node it left from.
        target: the queue, mailbox or destination, where there is one.
        path: node ids in the order they were entered (a node entered twice appears twice).
        attributes: the call's attributes at the end.
        errors: codes of the errors met on the way, in order.
        started_at: ``now`` given to ``start``.
        ended_at: ``now`` of the event that ended it.
    """

    kind: OutcomeKind
    node: str
    target: str | None
    path: tuple[str, ...]
    attributes: Mapping[str, str]
    errors: tuple[ErrorCode, ...]
    started_at: float
    ended_at: float


Action = (
    Answer
    | Play
    | Say
    | CollectDigits
    | CrmLookup
    | EnqueueContact
    | Voicemail
    | CallbackRequest
    | Transfer
    | Hangup
    | Error
    | Notice
    | Outcome
)
"""Any action the engine returns."""
