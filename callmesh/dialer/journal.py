"""The dialer's audit journal as data: one record per dial decision and per call outcome.

The worker appends these records (JSON lines, ``--audit``) and, at start, reads them back
and hands them to :meth:`~callmesh.dialer.campaign.Campaign.replay`, so the frequency cap,
the retries, the do-not-call opt-outs and the abandonment meter survive a restart. This
module only converts between the record dictionaries and typed records; it reads no file.

Two shapes, told apart by their keys:

* a **decision** ``{"at", "campaign", "contact", "phone", "dialled", "reason"}``: a number
  dialled (``reason`` ``"attempt N"``) or refused (the reason, e.g. ``"on the do-not-call
  list"``, ``"opted out: added to the do-not-call list"``);
* an **outcome** ``{"at", "campaign", "attempt", "uuid", "outcome", "detail"}``: what became
  of attempt ``attempt`` (``human``, ``machine``, ``busy``, ``noAnswer``, ``failed``,
  ``hangup``, ``queued``, ``connected``, ``abandoned``, ``message-left``, ``announced``,
  ``ended``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from callmesh.dialer.compliance import AuditEntry

__all__ = [
    "OPT_OUT_REASON",
    "CallOutcome",
    "DialDecision",
    "JournalRecord",
    "decision_record",
    "outcome_record",
    "parse_record",
]

OPT_OUT_REASON = "opted out: added to the do-not-call list"
"""The reason of the decision record written when a listener presses the opt-out key."""


@dataclass(frozen=True, slots=True)
class DialDecision:
    """A number was dialled (``attempt`` > 0) or refused (``reason`` says why)."""

    at: float
    campaign: str
    contact: str
    phone: str
    dialled: bool
    reason: str

    @property
    def attempt(self) -> int:
        """The attempt number of a dialled decision (``"attempt 3"`` -> 3), else 0."""
        if not self.dialled:
            return 0
        head, _, number = self.reason.partition(" ")
        return int(number) if head == "attempt" and number.isdigit() else 0


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """What became of attempt ``attempt`` (see the module docstring for the values)."""

    at: float
    campaign: str
    attempt: str
    outcome: str
    detail: str = ""
    uuid: str = ""


JournalRecord = DialDecision | CallOutcome


def decision_record(campaign: str, entry: AuditEntry) -> dict[str, object]:
    """The journal record of one audit entry of ``campaign``'s engine."""
    return {
        "at": entry.at,
        "campaign": campaign,
        "contact": entry.contact_id,
        "phone": entry.phone,
        "dialled": entry.dialled,
        "reason": entry.reason,
    }


def outcome_record(
    campaign: str, attempt: str, uuid: str, outcome: str, detail: str, at: float
) -> dict[str, object]:
    """The journal record of one call outcome."""
    return {
        "at": at,
        "campaign": campaign,
        "attempt": attempt,
        "uuid": uuid,
        "outcome": outcome,
        "detail": detail,
    }


def _text(data: Mapping[str, object], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ValueError(f"field {key!r} must be a string, got {value!r}")
    return value


def parse_record(data: Mapping[str, object]) -> JournalRecord:
    """A typed record from one decoded journal line.

    Raises:
        ValueError: naming the field that is missing or of the wrong type.
    """
    at = data.get("at")
    if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
        raise ValueError(f"field 'at' must be a POSIX time in seconds, got {at!r}")
    campaign = _text(data, "campaign")
    if "attempt" in data:
        detail = data.get("detail", "")
        uuid = data.get("uuid", "")
        return CallOutcome(
            float(at),
            campaign,
            _text(data, "attempt"),
            _text(data, "outcome"),
            detail if isinstance(detail, str) else "",
            uuid if isinstance(uuid, str) else "",
        )
    dialled = data.get("dialled")
    if not isinstance(dialled, bool):
        raise ValueError(f"field 'dialled' must be true or false, got {dialled!r}")
    return DialDecision(
        float(at), campaign, _text(data, "contact"), _text(data, "phone"), dialled,
        _text(data, "reason"),
    )  # fmt: skip
