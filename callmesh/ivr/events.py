"""Events: what the driver tells the IVR engine happened on the call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "CallInfo",
    "CallerHangup",
    "Digits",
    "Event",
    "LookupResult",
    "PromptFinished",
    "Timeout",
]


@dataclass(frozen=True, slots=True)
class CallInfo:
    """The call entering the IVR.

    Attributes:
        ani: the caller's number (``Caller-Caller-ID-Number``).
        dnis: the number dialled (``Caller-Destination-Number``).
        attributes: attributes known before the IVR (e.g. from SIP headers or the dialer).
    """

    ani: str
    dnis: str
    attributes: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Digits:
    """DTMF the caller entered in answer to ``CollectDigits`` (may include the terminator)."""

    digits: str


@dataclass(frozen=True, slots=True)
class Timeout:
    """``CollectDigits`` got no input in time, or a ``CrmLookup`` overran its budget."""


@dataclass(frozen=True, slots=True)
class PromptFinished:
    """A ``Play`` / ``Say`` with ``wait=True`` has been heard to its end."""


@dataclass(frozen=True, slots=True)
class LookupResult:
    """The answer to ``CrmLookup``.

    Attributes:
        attributes: what the CRM knows about the caller (stored as ``crm.<key>``), None when
            the caller is unknown.
        error: why the lookup failed (plugin error, timeout); the flow's onError is taken.
    """

    attributes: Mapping[str, str] | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class CallerHangup:
    """The caller hung up (named apart from the ``Hangup`` action the engine sends)."""

    cause: str = "NORMAL_CLEARING"


Event = Digits | Timeout | PromptFinished | LookupResult | CallerHangup
"""Any event the engine handles."""
