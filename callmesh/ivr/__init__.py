"""The IVRFlow engine: graph in, events in, actions out.

Compile a flow once with :func:`compile_flow` (it checks the graph and prepares templates,
regular expressions, CEL conditions and schedules), then run one :class:`IvrSession` per
call: ``start(CallInfo, now)`` and ``handle(event, now)`` return the actions the callcontrol
worker turns into ESL commands and the simulator into delays. See ``docs/ivr.md``.
"""

from __future__ import annotations

from callmesh.ivr.actions import (
    Action,
    Answer,
    CallbackRequest,
    CollectDigits,
    CrmLookup,
    EnqueueContact,
    Error,
    ErrorCode,
    Hangup,
    Notice,
    NoticeCode,
    Outcome,
    OutcomeKind,
    Play,
    PromptRef,
    Say,
    SkillNeed,
    Transfer,
    Voicemail,
)
from callmesh.ivr.events import (
    CallerHangup,
    CallInfo,
    Digits,
    Event,
    LookupResult,
    PromptFinished,
    Timeout,
)
from callmesh.ivr.flow import CompiledFlow, FlowError, compile_flow
from callmesh.ivr.session import IvrSession, Waiting

__all__ = [
    "Action",
    "Answer",
    "CallInfo",
    "CallbackRequest",
    "CallerHangup",
    "CollectDigits",
    "CompiledFlow",
    "CrmLookup",
    "Digits",
    "EnqueueContact",
    "Error",
    "ErrorCode",
    "Event",
    "FlowError",
    "Hangup",
    "IvrSession",
    "LookupResult",
    "Notice",
    "NoticeCode",
    "Outcome",
    "OutcomeKind",
    "Play",
    "PromptFinished",
    "PromptRef",
    "Say",
    "SkillNeed",
    "Timeout",
    "Transfer",
    "Voicemail",
    "Waiting",
    "compile_flow",
]
