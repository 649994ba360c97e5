"""Interaction records: one flat record per call, written to a sink when the call ends.

The callcontrol worker writes an :class:`InteractionRecord` for **every** call it handled,
whatever happened (answered, abandoned in the IVR or in the queue, voicemail, callback,
transfer, failure). A sink receives it; :class:`JsonLinesSink` appends one JSON object per
line to a file (the history store of a later issue reads the same records). A record is
written exactly once per call leg that callcontrol controlled; a call re-adopted after a
callcontrol restart says so in ``recovered``.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

__all__ = ["Disposition", "InteractionRecord", "InteractionSink", "JsonLinesSink", "MemorySink"]


class Disposition:
    """How a call ended (the ``disposition`` field); plain strings in the JSON."""

    ANSWERED = "answered"
    """Bridged to an agent."""
    ABANDONED_IVR = "abandoned-ivr"
    """The caller hung up inside the IVR."""
    ABANDONED_QUEUE = "abandoned-queue"
    """The caller hung up while waiting or ringing (the router was told: Cancel)."""
    VOICEMAIL = "voicemail"
    CALLBACK = "callback"
    TRANSFERRED = "transferred"
    HUNG_UP = "hung-up"
    """The flow hung up (a hangup node)."""
    TIMED_OUT = "timed-out"
    """The queue's max wait passed with no overflow."""
    FAILED = "failed"
    """Something failed with no recovery (the call was hung up safely)."""


@dataclass(slots=True)
class InteractionRecord:
    """One call, flat. Times are POSIX seconds (None: the phase never happened).

    Attributes:
        call_id: the caller channel's UUID (also the router's contact id).
        tenant: the namespace.
        flow: the IVRFlow run (empty when none).
        did: the number dialled.
        ani: the caller's number.
        started_at: the socket connected (the call reached callcontrol).
        answered_at: ``answer`` completed.
        ivr_ended_at: the IVR's outcome.
        ivr_outcome: the outcome kind (queued, abandoned, voicemail, ...).
        ivr_path: nodes entered, in order.
        ivr_errors: error codes met in the IVR.
        queue: the queue at the end (after overflow or transfer moves).
        enqueued_at: first enqueue time (kept across router restarts).
        offered_at: first time an agent's phone rang.
        agent_id: the agent who answered.
        connected_at: the bridge.
        ended_at: the caller hung up (or was hung up).
        disposition: see :class:`Disposition`.
        hangup_cause: FreeSWITCH's Hangup-Cause of the caller leg.
        recording_path: the recording file, if recorded.
        rona: offers that rang out or failed at the agent's phone.
        requeues: re-enqueues after a router restart.
        recovered: True when a restarted callcontrol re-adopted the call.
        routed_by: the plugin / strategy whose decision chose the agent.
        trace_id: the call's OpenTelemetry trace id (hex), when traced.
        attributes: the call's attributes at the end (IVR answers, CRM data).
        campaign: the DialerCampaign of an outbound call the dialer handed over (its
            ``ivr_outcome`` is ``dialer``: no IVR ran).
    """

    call_id: str
    tenant: str = ""
    flow: str = ""
    did: str = ""
    ani: str = ""
    started_at: float = 0.0
    answered_at: float | None = None
    ivr_ended_at: float | None = None
    ivr_outcome: str = ""
    ivr_path: list[str] = field(default_factory=list)
    ivr_errors: list[str] = field(default_factory=list)
    queue: str = ""
    enqueued_at: float | None = None
    offered_at: float | None = None
    agent_id: str = ""
    connected_at: float | None = None
    ended_at: float | None = None
    disposition: str = ""
    hangup_cause: str = ""
    recording_path: str = ""
    rona: int = 0
    requeues: int = 0
    recovered: bool = False
    routed_by: str = ""
    trace_id: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    campaign: str = ""

    def to_json(self) -> str:
        """One line of JSON (keys in field order)."""
        # a flat record: a dict of the fields is what asdict() makes, without its deep copy
        data = {name: getattr(self, name) for name in _FIELDS}
        return _dumps(data)

    @classmethod
    def from_json(cls, line: str) -> InteractionRecord:
        """Parse a line written by :meth:`to_json` (unknown keys are refused)."""
        data: dict[str, Any] = json.loads(line)
        return cls(**data)


_FIELDS = tuple(f.name for f in fields(InteractionRecord))
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class InteractionSink(Protocol):
    """Where interaction records go. ``write`` must not raise for one bad record."""

    async def write(self, record: InteractionRecord) -> None:
        """Store one record."""

    async def close(self) -> None:
        """Flush and release resources."""


class JsonLinesSink:
    """Append records to a JSON-lines file (created with its folder if missing).

    Each record is one ``write`` of one line followed by ``flush`` and, with ``fsync``,
    ``os.fsync``: a crash loses at most the record being written, never half a line of an
    earlier one.
    """

    def __init__(self, path: str | Path, *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        self._fsync = fsync
        self._lock = asyncio.Lock()
        self.written = 0

    async def write(self, record: InteractionRecord) -> None:
        """Append ``record`` as one line."""
        line = record.to_json() + "\n"
        async with self._lock:
            self._file.write(line)
            self._file.flush()
            if self._fsync:
                os.fsync(self._file.fileno())
            self.written += 1

    async def close(self) -> None:
        """Close the file."""
        async with self._lock:
            self._file.close()

    def read(self) -> list[InteractionRecord]:
        """Every record in the file (for tests and tools)."""
        with self.path.open(encoding="utf-8") as handle:
            return [InteractionRecord.from_json(line) for line in handle if line.strip()]


class MemorySink:
    """Keep records in a list (embedding and tests)."""

    def __init__(self) -> None:
        self.records: list[InteractionRecord] = []

    async def write(self, record: InteractionRecord) -> None:
        """Append ``record`` to :attr:`records`."""
        self.records.append(record)

    async def close(self) -> None:
        """Nothing to release."""
