"""One call, from the socket's ``connect`` to its interaction record.

:class:`Call` runs a caller's whole path on its outbound-socket :class:`CallSession`:

1. **IVR**: ``myevents``, ``linger``, then the flow's :class:`~callmesh.ivr.IvrSession`;
   each action becomes ESL (``answer``, ``playback``, ``speak``, ``say``,
   ``play_and_get_digits`` with max_tries 1, ``hangup``...), each result an engine event.
2. **Queue**: ``Enqueue`` at the router (gRPC) with the first enqueue time, hold music and
   position / estimated-wait announcements at the queue's interval, ``WatchContact`` for
   offers. The router restarting is survived by enqueuing again with the original time.
3. **Agent leg**: ``bgapi originate`` to ``user/<extension>@<domain>`` on the inbound ESL
   connection; answered: ``AnswerOffer(accept)``, then on ``connected`` ``uuid_bridge``
   (after ``record_session`` when the queue's policy records); no answer: ``AnswerOffer(
   reject)`` (RONA). The caller hanging up while waiting or ringing: ``Cancel`` (abandon).
4. **Record**: exactly one :class:`~callmesh.workers.interactions.InteractionRecord`.

Nothing one call does (a bad frame, a disconnect, a plugin failure, the router vanishing)
reaches another call: every failure ends in this call's ``finally``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import re
import time
import uuid as uuidlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import grpc
import grpc.aio
from callmesh.v1 import plugin_pb2, router_pb2
from callmesh.workers.callcontrol.config import QueueMedia
from callmesh.workers.esl.connection import CallHangup, CallSession
from callmesh.workers.esl.errors import EslCommandError, EslError
from callmesh.workers.esl.events import Event
from callmesh.workers.esl.quoting import split_arg, strip_unrepresentable, token, var_block
from callmesh.workers.interactions import Disposition, InteractionRecord
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from callmesh.ivr import (
    Action,
    Answer,
    CallbackRequest,
    CallerHangup,
    CallInfo,
    CollectDigits,
    CrmLookup,
    Digits,
    EnqueueContact,
    Error,
    Hangup,
    IvrSession,
    LookupResult,
    Notice,
    Outcome,
    OutcomeKind,
    Play,
    PromptFinished,
    PromptRef,
    Say,
    Timeout,
    Transfer,
    Voicemail,
)
from callmesh.ivr import Event as IvrEvent

if TYPE_CHECKING:
    from callmesh.workers.callcontrol.worker import CallControl

__all__ = [
    "BRIDGED",
    "MARKER",
    "Call",
    "esl_text",
    "pack_record",
    "should_record",
    "unpack_record",
]

log = logging.getLogger("callmesh.workers.callcontrol")

MARKER = "callmesh_queued"
"""Channel variable set while a call waits in a queue: ``<queue>|<enqueue epoch>|<flow>``.
A restarted callcontrol finds waiting calls by it (``show channels`` + ``uuid_getvar``)."""

BRIDGED = "callmesh_bridged"
"""Channel variable set on a caller leg before ``uuid_bridge``: ``<agent>|<record>``. A
restarted callcontrol completes such calls at the router and writes their records."""

ATTRIBUTES = "callmesh_attributes"
"""Channel variable with attributes a call brings into the IVR (``a=1;b=2``, URL-encoded)."""

DIALER_QUEUE = "callmesh_queue"
"""Channel variable the dialer sets when it hands an answered outbound call over
(``workers/dialer/calls.py`` ``connect_transfer``): no IVR, straight into this queue."""

DIALER_PRIORITY = "callmesh_priority"
"""Optional priority of a dialer hand-off (an integer; the queue's default when absent)."""

DIALER_ATTRIBUTE = "callmesh_attr_"
"""Prefix of the contact attributes the dialer's originate sets (``callmesh_attr_<name>``);
they reach the router (and the agent's screen pop) as ``<name>``."""

DIALER_VARIABLES = {
    "callmesh_campaign": "dialer.campaign",
    "callmesh_attempt": "dialer.attempt",
    "callmesh_contact": "dialer.contact",
}
"""The dialer's own variables and the attributes they become."""

UNUSED_EVENTS = (
    "CHANNEL_EXECUTE", "CHANNEL_STATE", "CHANNEL_PARK", "CHANNEL_UNPARK", "CHANNEL_PROGRESS",
    "CHANNEL_PROGRESS_MEDIA", "CHANNEL_CREATE", "CHANNEL_DESTROY", "CHANNEL_ORIGINATE",
    "CHANNEL_OUTGOING", "CHANNEL_UUID", "CHANNEL_APPLICATION", "CHANNEL_DATA", "DTMF", "TALK",
    "NOTALK", "DETECTED_SPEECH", "CHANNEL_ANSWER", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE",
    "CHANNEL_HANGUP_COMPLETE",
)  # fmt: skip
"""Events of ``myevents`` a call does not use (``nixevent``): only CHANNEL_EXECUTE_COMPLETE
(an execution finished) and CHANNEL_HANGUP stay. Answer and bridge are known from the
replies of ``uuid_answer`` and ``uuid_bridge``; FreeSWITCH fires CHANNEL_HANGUP before
CHANNEL_HANGUP_COMPLETE (``../shared/esl`` capture 04), and the linger notice follows."""

DIGIT_REGEX = "[0-9*#A-D]+"
"""What FreeSWITCH accepts from ``play_and_get_digits``: any DTMF; the engine validates."""

SAY_KINDS = {
    "number": "NUMBER pronounced",
    "digits": "NUMBER iterated",
    "date": "CURRENT_DATE pronounced",
    "time": "CURRENT_TIME pronounced",
    "currency": "CURRENCY pronounced",
}
"""The IVR's say kinds as mod_say type and method."""

RETRYABLE = frozenset({
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.INTERNAL,
})  # fmt: skip
"""gRPC codes that mean "the router is restarting or unreachable": try again."""


_NO_MEDIA = QueueMedia()
"""What a queue without its own settings sounds like (one shared, immutable object)."""


def esl_text(text: str) -> str:
    """Text to speak on one line: whitespace runs (newlines included) become one space.

    The quoting for ``speak`` (its ``|`` separator, quotes, ``${``) is done where the
    argument is built (:func:`~callmesh.workers.esl.quoting.split_arg`)."""
    return " ".join(text.split())


TRANSFER_DESTINATION = re.compile(
    r"\+?[0-9*#]{1,32}|sip:[A-Za-z0-9_.!~+%-]+@[A-Za-z0-9.-]+(:[0-9]{1,5})?"
)
"""What a transfer may dial: digits (E.164 or an extension) or a plain ``sip:user@host``."""


def should_record(policy: str, percent: float, call_id: str) -> bool:
    """Whether the call is recorded: ``all``, ``none``, or ``perQueue`` with ``percent``.

    The perQueue sample is a hash of the call id, so the same call gets the same answer in
    every worker and after a restart (no global random state).
    """
    if policy == "all":
        return True
    if policy != "perQueue" or percent <= 0:
        return False
    bucket = int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:4], "big") % 10_000
    return bucket < percent * 100


def pack_record(record: InteractionRecord) -> str:
    """A record as one channel-variable-safe token (URL-safe base64 of its JSON)."""
    return base64.urlsafe_b64encode(record.to_json().encode()).decode()


def unpack_record(packed: str) -> InteractionRecord | None:
    """The record packed by :func:`pack_record`; None when unreadable."""
    try:
        return InteractionRecord.from_json(base64.urlsafe_b64decode(packed.encode()).decode())
    except (ValueError, TypeError):
        return None


def dialer_attributes(channel: Event) -> dict[str, str]:
    """The attributes a dialer hand-off brings: each ``callmesh_attr_<name>`` as ``<name>``,
    the campaign, attempt and contact as ``dialer.*`` (and ``dialer.priority``)."""
    found: dict[str, str] = {}
    prefix = "variable_" + DIALER_ATTRIBUTE
    for header in channel:
        if header.startswith(prefix) and len(found) < 64:
            value = channel.get(header) or ""
            if value and len(value) <= 1024:
                found[header.removeprefix(prefix)] = value
    for variable, attribute in DIALER_VARIABLES.items():
        own = channel.variable(variable)
        if own:
            found[attribute] = own
    priority = channel.variable(DIALER_PRIORITY)
    if priority:
        found["dialer.priority"] = priority
    return found


def _digits_event(entered: str) -> IvrEvent:
    return Digits(entered) if entered else Timeout()


class _CurrentSpan:
    """``with tracer.start_as_current_span(...)`` without the three generator context
    managers OpenTelemetry's version keeps alive per span (a waiting call keeps "call" and
    "queue" open): start the span, make it current, and at the end record an escaping
    exception (as ``use_span`` does; ``errors=Exception`` records only what it records),
    end it and restore the context.

    A span without a valid context (no tracer configured: the no-op tracer) is not made
    current: the current span is then an invalid one already, so nothing could tell the
    difference, and a call saves a context and a token per span."""

    __slots__ = ("_errors", "_token", "span")

    def __init__(
        self,
        tracer: trace.Tracer,
        name: str,
        *,
        errors: type[BaseException] = BaseException,
        **kwargs: Any,
    ) -> None:
        self.span = tracer.start_span(name, **kwargs)
        self._errors = errors
        self._token: object = None

    def __enter__(self) -> trace.Span:
        span = self.span
        if span.get_span_context().is_valid:
            self._token = otel_context.attach(trace.set_span_in_context(span))
        return span

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        try:
            if exc is not None and isinstance(exc, self._errors) and self.span.is_recording():
                self.span.record_exception(exc)
                self.span.set_status(
                    Status(StatusCode.ERROR, f"{kind.__name__ if kind else ''}: {exc}")
                )
        finally:
            self.span.end()
            if self._token is not None:
                otel_context.detach(self._token)  # type: ignore[arg-type]


class Mailbox:
    """A call's inbox: a deque and at most one waiting reader (cheaper than asyncio.Queue,
    which brings three deques and an asyncio.Event to every waiting call)."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[tuple[str, Any]] = []  # a few items at most: lighter than a deque
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: tuple[str, Any]) -> None:
        """Add ``item``; wakes the reader."""
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> tuple[str, Any]:
        """The oldest item, waiting for one (one reader at a time)."""
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)

    def qsize(self) -> int:
        """Items waiting."""
        return len(self._items)


@dataclass(slots=True)
class _Ring:
    agent_id: str
    leg: str
    task: asyncio.Task[None]
    answered: bool = False


class Call:
    """One caller's path through IVR, queue and agent; see the module docstring."""

    __slots__ = (
        "_attributes_raw",
        "_cancelled",
        "_dialer",
        "_enqueued",
        "_handed_over",
        "_in_queue",
        "_request",
        "_stop_hold",
        "ani",
        "attributes",
        "bridged_leg",
        "dialer_queue",
        "did",
        "enqueued_at",
        "ewt",
        "flow_name",
        "inbox",
        "language",
        "marker",
        "media",
        "position",
        "record",
        "rings",
        "session",
        "uuid",
        "worker",
    )  # per-call objects: no __dict__

    def __init__(self, worker: CallControl, session: CallSession) -> None:
        self.worker = worker
        self.session = session
        self._in_queue = True
        self.uuid = session.uuid
        channel = session.channel
        variable = channel.variable
        self.flow_name = variable("callmesh_flow") or ""
        self.did = variable("callmesh_did") or channel.get("Caller-Destination-Number") or ""
        self.ani = channel.get("Caller-Caller-ID-Number") or variable("sip_from_user") or ""
        if not self.flow_name:
            self.flow_name = worker.config.numbers.get(self.did, "")
        self._attributes_raw = variable(ATTRIBUTES) or ""
        self.marker = variable(MARKER) or ""
        self.dialer_queue = variable(DIALER_QUEUE) or ""
        self._dialer: dict[str, str] | None = None
        if self.dialer_queue:
            self._dialer = dialer_attributes(channel)
        # drop CHANNEL_DATA (~150 headers) for the rest of the call: everything the call
        # needs was read above, and the session keeps the UUID it had from connect
        session.drop_channel_data()
        self.record = InteractionRecord(
            call_id=self.uuid,
            tenant=variable("callmesh_tenant") or worker.config.namespace,
            flow=self.flow_name,
            did=self.did,
            ani=self.ani,
            started_at=time.time(),
        )
        self.attributes: dict[str, str] = {}
        self.language = worker.config.languages.get(self.flow_name, "en")
        self.inbox = Mailbox()
        self.rings: dict[str, _Ring] = {}
        self.enqueued_at: float | None = None
        self.position = 0
        self.ewt = 0.0
        self.bridged_leg: str | None = None
        self._stop_hold = False
        self._enqueued: asyncio.Future[None] | None = None  # made by the queue phase
        self._handed_over = False
        self._cancelled = False
        self.media = _NO_MEDIA
        self._request = router_pb2.EnqueueRequest()

    @property
    def waiting(self) -> bool:
        """True once the router answered the call's Enqueue (it waits in a queue)."""
        return self._enqueued is not None and self._enqueued.done()

    # ================================================================== the whole call

    async def run(self, *, recovered: Mapping[str, str] | None = None) -> None:
        """Run the call to its end and write its record (exactly once, whatever happens)."""
        tracer = self.worker.tracer
        with _CurrentSpan(
            tracer,
            "call",
            kind=SpanKind.SERVER,
            attributes={
                "callmesh.call_id": self.uuid,
                "callmesh.tenant": self.record.tenant,
                "callmesh.flow": self.flow_name,
                "callmesh.did": self.did,
            },
        ) as span:
            ctx = span.get_span_context()
            if ctx.is_valid:
                self.record.trace_id = format(ctx.trace_id, "032x")
            try:
                # in one write, replies read in order (one round trip, not four):
                # myevents; only completions and hang-ups drive a call, the other events
                # stay in FreeSWITCH; linger; and resume keeps the call when this socket
                # goes (a restart): the dialplan parks it
                await self.session.conn.commands(
                    [
                        ("myevents", True),
                        ("nixevent " + " ".join(UNUSED_EVENTS), True),
                        ("linger", True),
                        ("resume", False),
                    ]
                )
                if recovered is not None:
                    self._restore(recovered)
                    span.add_event("recovered after a callcontrol restart")
                    await self._queue_phase(
                        self.record.queue,
                        None,
                        (),
                        dict(self.attributes),
                        enqueued_at=self.record.enqueued_at,
                    )
                elif self._dialer is not None:
                    await self._dialer_handoff(self._dialer)
                else:
                    await self._ivr_then_route()
            except (CallHangup, EslCommandError) as exc:
                if not isinstance(exc, CallHangup) and not self.session.hungup:
                    raise  # a refused command on a live call: handled below as a failure
                self._mark_hangup()
                lost = self.session.hangup_event is None and self.session.linger_notice is None
                if lost and not self.record.disposition:
                    log.warning("call %s: FreeSWITCH's socket was lost: %s", self.uuid, exc)
                    self.record.disposition = Disposition.FAILED
                if not self.record.disposition:
                    self.record.disposition = (
                        Disposition.ABANDONED_QUEUE
                        if self.enqueued_at is not None
                        else Disposition.ABANDONED_IVR
                    )
            except asyncio.CancelledError:
                # this process is stopping: a waiting call is left parked for the next one,
                # a bridged call stays bridged and the next one writes its record at hang-up
                if self.enqueued_at is not None:
                    self._handed_over = not self.session.hungup
                raise
            except Exception as exc:
                log.exception("call %s failed; hanging it up", self.uuid)
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
                self.record.disposition = self.record.disposition or Disposition.FAILED
                with contextlib.suppress(EslError, OSError):
                    await self.session.hangup("NORMAL_TEMPORARY_FAILURE")
            finally:
                await self._finish(span)

    async def _finish(self, span: trace.Span) -> None:
        for ring in list(self.rings.values()):
            ring.task.cancel()
            await self._kill_leg(ring.leg)
        self.rings.clear()
        self.worker.finished(self)
        if self.worker.crashed:
            return
        if self._handed_over:
            span.add_event("left waiting for the next callcontrol process")
            log.info("call %s left waiting for the next process", self.uuid)
            return
        self._mark_hangup()
        record = self.record
        record.attributes = dict(self.attributes)
        span.set_attribute("callmesh.disposition", record.disposition or "unknown")
        if record.agent_id:
            span.set_attribute("callmesh.agent_id", record.agent_id)
        try:
            await self.worker.sink.write(record)
        except Exception:
            log.exception("interaction record of %s not written", self.uuid)

    def _mark_hangup(self) -> None:
        if self.record.ended_at is None and self.session.hungup:
            self.record.ended_at = time.time()
            self.record.hangup_cause = self.session.hangup_cause or ""
        if self.record.ended_at is None:
            self.record.ended_at = time.time()

    # ================================================================== IVR

    async def _ivr_then_route(self) -> None:
        config = self.worker.config
        flow = config.flows.get(self.flow_name)
        span = trace.get_current_span()
        if flow is None:
            log.warning(
                "call %s: no IVRFlow %r (DID %s); sending it to the default queue %r",
                self.uuid,
                self.flow_name,
                self.did,
                config.default_queue,
            )
            span.add_event("no flow: default queue", {"callmesh.flow": self.flow_name})
            await self.session.answer()
            self.record.answered_at = time.time()
            self.record.ivr_outcome = "no-flow"
            await self._default_queue()
            return
        ivr = IvrSession(flow)
        with _CurrentSpan(self.worker.tracer, "ivr", errors=Exception) as ivr_span:
            outcome, enqueue = await self._run_ivr(ivr)
            ivr_span.set_attribute("callmesh.ivr.outcome", outcome.kind.value)
            ivr_span.set_attribute("callmesh.ivr.path", list(outcome.path))
        record = self.record
        record.ivr_ended_at = outcome.ended_at
        record.ivr_outcome = outcome.kind.value
        record.ivr_path = list(outcome.path)
        record.ivr_errors = [e.value for e in outcome.errors]
        self.attributes.update(outcome.attributes)
        kind = outcome.kind
        if kind is OutcomeKind.QUEUED and enqueue is not None:
            await self._queue_phase(
                enqueue.queue, enqueue.priority, enqueue.skills, dict(enqueue.attributes)
            )
        elif kind is OutcomeKind.FAILED and not self.session.hungup:
            await self._default_queue()
        else:
            record.disposition = {
                OutcomeKind.ABANDONED: Disposition.ABANDONED_IVR,
                OutcomeKind.VOICEMAIL: Disposition.VOICEMAIL,
                OutcomeKind.CALLBACK: Disposition.CALLBACK,
                OutcomeKind.TRANSFERRED: Disposition.TRANSFERRED,
                OutcomeKind.HUNG_UP: Disposition.HUNG_UP,
            }.get(kind, Disposition.FAILED)
            if self.session.hungup:
                self._mark_hangup()
            else:
                with contextlib.suppress(CallHangup):
                    await self.session.wait_hangup()

    async def _dialer_handoff(self, attributes: dict[str, str]) -> None:
        """An answered outbound call from the dialer: no IVR, straight into its queue with
        the campaign's attributes (an unknown queue is refused by the router and the call
        goes to the default queue, as for a flow's queue)."""
        record = self.record
        record.answered_at = time.time()  # the contact answered before the hand-off
        record.ivr_outcome = "dialer"
        record.campaign = attributes.get("dialer.campaign", "")
        priority: int | None = None
        raw_priority = attributes.pop("dialer.priority", "")
        if raw_priority.lstrip("-").isdigit():
            priority = int(raw_priority)
        elif raw_priority:
            log.warning("call %s: %s=%r is not an integer; ignored", self.uuid,
                        DIALER_PRIORITY, raw_priority)  # fmt: skip
        trace.get_current_span().add_event(
            "dialer hand-off",
            {"callmesh.queue": self.dialer_queue, "callmesh.campaign": record.campaign},
        )
        await self._queue_phase(self.dialer_queue, priority, (), attributes)

    async def _default_queue(self) -> None:
        queue = self.worker.config.default_queue
        if queue is None:
            self.record.disposition = Disposition.FAILED
            await self.session.hangup("NORMAL_TEMPORARY_FAILURE")
            return
        attributes = {"ani": self.ani, "dnis": self.did, **self.attributes}
        await self._queue_phase(queue, None, (), attributes)

    async def _run_ivr(self, ivr: IvrSession) -> tuple[Outcome, EnqueueContact | None]:
        actions = ivr.start(CallInfo(self.ani, self.did, self._initial_attributes()), time.time())
        enqueue: EnqueueContact | None = None
        while True:
            event: IvrEvent | None = None
            outcome: Outcome | None = None
            failed = any(isinstance(a, Outcome) and a.kind is OutcomeKind.FAILED for a in actions)
            try:
                for action in actions:
                    if isinstance(action, Outcome):
                        outcome = action
                    elif isinstance(action, EnqueueContact):
                        enqueue = action
                    elif isinstance(action, Hangup) and failed and self.worker.config.default_queue:
                        continue  # a failed flow goes to the safe default queue instead
                    else:
                        result = await self._carry(action)
                        if result is not None:
                            event = result
            except CallHangup:
                cause = self.session.hangup_cause or "NORMAL_CLEARING"
                actions = ivr.handle(CallerHangup(cause), time.time())
                if self.record.answered_at is None and ivr.finished:
                    pass
                continue
            if outcome is not None:
                return outcome, enqueue
            if event is None:  # the engine waits on nothing and has not ended: cannot happen
                event = Timeout()
            actions = ivr.handle(event, time.time())

    def _initial_attributes(self) -> dict[str, str]:
        """Attributes the call brings: the ``callmesh_attributes`` channel variable,
        ``name=value;name=value`` URL-encoded (set by the dialer or a SIP header map)."""
        raw = self._attributes_raw
        if not raw:
            return {}
        return dict(parse_qsl(raw, separator=";")[:64])

    async def _carry(self, action: Action) -> IvrEvent | None:
        """Do one action; the event the engine waits for, if it waits."""
        span = trace.get_current_span()
        if isinstance(action, Answer):
            await self.session.answer()
            self.record.answered_at = time.time()
            return None
        if isinstance(action, Play):
            await self._play(action.prompt)
            return PromptFinished() if action.wait else None
        if isinstance(action, Say):
            kind = SAY_KINDS.get(action.kind, "NUMBER pronounced")
            value = split_arg(esl_text(action.value) or "0", " ", field="say value")
            language = split_arg(action.language, " ", field="say language")
            await self.session.execute("say", f"{language} {kind} {value}")
            return PromptFinished() if action.wait else None
        if isinstance(action, CollectDigits):
            return await self._collect(action)
        if isinstance(action, CrmLookup):
            return await self._lookup(action)
        if isinstance(action, Voicemail):
            if action.greeting is not None:
                await self._play(action.greeting)
            await self._voicemail(action.mailbox)
            await self.session.hangup("NORMAL_CLEARING")
            return None
        if isinstance(action, CallbackRequest):
            self.attributes["callback.queue"] = action.queue
            self.attributes["callback.number"] = action.number
            span.add_event("callback requested", {"callmesh.queue": action.queue})
            return None
        if isinstance(action, Transfer):
            await self.session.execute("bridge", self._transfer_target(action))
            await self.session.hangup("NORMAL_CLEARING")
            return None
        if isinstance(action, Hangup):
            await self.session.hangup(action.cause)
            return None
        if isinstance(action, Error):
            log.warning(
                "call %s: IVR %s at %s: %s (next: %s)",
                self.uuid,
                action.code.value,
                action.node,
                action.message,
                action.recovery or "hang up",
            )
            span.add_event(
                "ivr error",
                {"callmesh.code": action.code.value, "callmesh.node": action.node},
            )
            return None
        if isinstance(action, Notice):
            log.info("call %s: IVR notice %s: %s", self.uuid, action.code.value, action.message)
            return None
        return None  # pragma: no cover - every Action type is handled above

    def _transfer_target(self, action: Transfer) -> str:
        """``bridge``'s dial string; raises ValueError for a destination that is not digits
        or a plain SIP URI (it may come from attributes, i.e. from the caller or a CRM)."""
        dest = action.destination
        if not TRANSFER_DESTINATION.fullmatch(dest):
            raise ValueError(
                f"transfer destination {dest[:60]!r}: use digits (+E.164 or an extension)"
                " or sip:user@host"
            )
        prefix = ""
        if action.caller_id_number:
            cid = strip_unrepresentable(action.caller_id_number)
            prefix = var_block({"origination_caller_id_number": cid}, api=False)
        if dest.startswith("sip:"):
            return f"{prefix}sofia/external/{dest.removeprefix('sip:')}"
        trunks = self.worker.config.trunks
        gateway = token(trunks[0], "trunk") if trunks else "default"
        return f"{prefix}sofia/gateway/{gateway}/{dest}"

    async def _voicemail(self, mailbox: str) -> None:
        domain = self.worker.config.sip_domain
        words = (split_arg(w, " ", field="voicemail") for w in ("default", domain, mailbox))
        await self.session.execute("voicemail", " ".join(words))

    async def _play(self, prompt: PromptRef) -> None:
        if prompt.file is not None:
            await self.session.playback(prompt.file)
        elif prompt.text is not None:
            worker = self.worker
            voice = prompt.voice or worker.tts_voice
            text = esl_text(prompt.text)
            if text:
                engine = split_arg(worker.tts_engine, "|", field="tts engine")
                voice = split_arg(voice, "|", field="tts voice")
                text = split_arg(text, "|", field="speech")
                await self.session.execute("speak", f"{engine}|{voice}|{text}")

    async def _collect(self, action: CollectDigits) -> IvrEvent:
        prompt = "silence_stream://250"
        if action.prompt.file is not None:
            prompt = action.prompt.file
        else:
            await self._play(action.prompt)  # TTS first; the digits are collected after it
        entered = await self.session.play_and_get_digits(
            prompt,
            min_digits=1,
            max_digits=max(1, min(action.max_digits, 128)),
            tries=1,
            timeout_ms=max(1, round(action.timeout * 1000)),
            terminators=action.terminators,
            invalid_prompt="silence_stream://0",
            regexp=DIGIT_REGEX,
        )
        return _digits_event(entered)

    async def _lookup(self, action: CrmLookup) -> IvrEvent:
        crm = self.worker.crm
        if crm is None:
            return LookupResult(None)
        from callmesh.plugins.types import CallerQuery

        query = CallerQuery(
            contact_id=self.uuid,
            channel="voice",
            ani=action.key,
            dnis=self.did,
            attributes=dict(self.attributes),
        )
        with _CurrentSpan(self.worker.tracer, "crm lookup", errors=Exception) as span:
            try:
                async with asyncio.timeout(action.timeout):
                    found = await crm.lookup_caller(query)
            except TimeoutError:
                span.set_attribute("callmesh.crm.result", "timeout")
                return Timeout()
            span.set_attribute("callmesh.crm.found", found.found)
        if not found.found:
            return LookupResult(None)
        attrs = {"name": found.display_name, "customer_id": found.customer_id}
        attrs.update(found.attributes)
        return LookupResult(attrs)

    # ================================================================== queue

    async def _queue_phase(
        self,
        queue: str,
        priority: int | None,
        skills: tuple[Any, ...],
        attributes: dict[str, str],
        *,
        enqueued_at: float | None = None,
    ) -> None:
        worker = self.worker
        media = worker.config.queues.get(queue, _NO_MEDIA)
        self.enqueued_at = enqueued_at if enqueued_at is not None else time.time()
        self.record.queue = queue
        self.record.enqueued_at = self.enqueued_at
        self.media = media
        self.attributes.update(attributes)
        await self.session.set_variable(MARKER, self._marker())
        request = router_pb2.EnqueueRequest(
            contact_id=self.uuid,
            queue=queue,
            channel=plugin_pb2.CHANNEL_VOICE,
            skills=[
                router_pb2.SkillRequirement(name=s.name, min_level=s.min_level) for s in skills
            ],
            attributes={k: v for k, v in self.attributes.items() if len(v) <= 1024},
        )
        if priority is not None:
            request.priority = priority
        request.enqueue_time.FromNanoseconds(round(self.enqueued_at * 1e9))
        self._request = request
        with _CurrentSpan(worker.tracer, "queue", attributes={"callmesh.queue": queue}) as span:
            self._enqueued = asyncio.get_running_loop().create_future()
            router_task = asyncio.create_task(self._router_loop(request))
            hold_task = asyncio.create_task(self._hold(media))
            self.session.on_hangup(self._hung_up_waiting)  # a callback, not a task per call
            try:
                # one message at a time from the inbox: router events, ring results, the
                # hang-up (in this frame, not a helper's: one frame less per waiting call)
                while True:
                    kind, value = await self.inbox.get()
                    if kind == "hangup":
                        await self._abandon(span)
                        break
                    if kind == "lost":
                        span.add_event("router lost: enqueuing again with the original time")
                        for ring in list(self.rings.values()):
                            await self._stop_ring(ring)
                    elif kind == "requeued":
                        self.record.requeues += 1
                    elif kind == "ring-result":
                        await self._ring_result(*value)
                    elif kind == "router" and await self._router_event(value, hold_task, span):
                        break
            finally:
                self._in_queue = False
                router_task.cancel()
                hold_task.cancel()
                await asyncio.gather(router_task, hold_task, return_exceptions=True)

    def _pack(self) -> str:
        self.record.attributes = dict(self.attributes)
        return pack_record(self.record)

    def _marker(self) -> str:
        """The waiting call's state, for the next process: queue, time, the record so far."""
        return f"{self.record.queue}|{self.enqueued_at:.6f}|{self._pack()}"

    def _restore(self, recovered: Mapping[str, str]) -> None:
        """Take over the record a previous process left in the marker."""
        queue, enqueued_at, packed = (
            recovered["queue"],
            recovered["enqueued_at"],
            recovered["record"],
        )
        old = unpack_record(packed)
        if old is None:
            log.warning("call %s: unreadable record in the marker; starting anew", self.uuid)
        if old is not None and old.call_id == self.uuid:
            old.trace_id = self.record.trace_id or old.trace_id
            self.record = old
            self.attributes = dict(old.attributes)
            self.flow_name = old.flow
        self.record.recovered = True
        self.record.queue = queue
        try:
            self.record.enqueued_at = float(enqueued_at)
        except ValueError:
            self.record.enqueued_at = time.time()

    def _hung_up_waiting(self) -> None:
        if self._in_queue:
            self.inbox.put_nowait(("hangup", None))

    async def _router_event(
        self, msg: router_pb2.WatchContactResponse, hold: asyncio.Task[None], span: trace.Span
    ) -> bool:
        which = msg.WhichOneof("event")
        if which == "status":
            status = msg.status
            self.position = status.position
            if status.agent_id:
                return await self._connected(status.agent_id, hold, span)
            for agent_id in status.ringing_agent_ids:
                self._ring(agent_id, self.media.offer_timeout)
        elif which == "offered":
            offered = msg.offered
            decision = offered.decision
            span.add_event(
                "routing decision",
                {
                    "callmesh.agent_ids": list(offered.agent_ids),
                    "callmesh.decided_by": decision.decided_by,
                    "callmesh.reason": decision.reason,
                    "callmesh.fallback": decision.fallback,
                },
            )
            self.record.routed_by = decision.decided_by
            for agent_id in offered.agent_ids:
                self._ring(agent_id, offered.timeout_seconds or self.media.offer_timeout)
        elif which == "withdrawn":
            for agent_id in msg.withdrawn.agent_ids:
                ring = self.rings.get(agent_id)
                if ring is not None:
                    await self._stop_ring(ring)
        elif which == "connected":
            return await self._connected(msg.connected.agent_id, hold, span)
        elif which == "moved":
            # overflow or transfer: a re-enqueue after a router restart goes to the new queue
            # with the time it entered it, so escalation and max wait resume
            self.record.queue = msg.moved.to_queue
            self._request.queue = msg.moved.to_queue
            moved_at = msg.at.ToNanoseconds() if msg.HasField("at") else time.time_ns()
            self._request.queue_time.FromNanoseconds(moved_at)
            span.add_event("moved", {"callmesh.queue": msg.moved.to_queue})
        elif which == "ended":
            return await self._ended(msg.ended)
        return False

    async def _ended(self, ended: router_pb2.ContactEndedEvent) -> bool:
        reason = ended.reason
        self.record.queue = ended.queue or self.record.queue
        if reason == router_pb2.END_REASON_ANSWERED:
            return False  # the connected event does the work
        self._stop_hold = True
        with contextlib.suppress(EslError):
            await self.session.api(f"uuid_break {self.uuid} all", check=False)
        if reason == router_pb2.END_REASON_OVERFLOWED:
            if ended.action == "voicemail":
                self.record.disposition = Disposition.VOICEMAIL
                await self._voicemail(ended.queue)
            else:
                self.record.disposition = Disposition.CALLBACK
                self.attributes["callback.queue"] = ended.queue
                self.attributes["callback.number"] = self.ani
            await self.session.hangup("NORMAL_CLEARING")
        elif reason == router_pb2.END_REASON_TIMED_OUT:
            self.record.disposition = Disposition.TIMED_OUT
            await self.session.hangup("NORMAL_CLEARING")
        else:  # abandoned (a Cancel from elsewhere)
            self.record.disposition = Disposition.ABANDONED_QUEUE
            await self.session.hangup("NORMAL_CLEARING")
        return True

    async def _abandon(self, span: trace.Span) -> None:
        """The caller hung up while waiting or ringing: stop ringing, tell the router."""
        self._mark_hangup()
        if self.session.hangup_event is None and self.session.linger_notice is None:
            log.warning("call %s: FreeSWITCH's socket was lost while it waited", self.uuid)
            self.record.disposition = Disposition.FAILED  # no hang-up seen: not an abandon
        else:
            self.record.disposition = Disposition.ABANDONED_QUEUE
        span.add_event("abandoned")
        for ring in list(self.rings.values()):
            await self._stop_ring(ring)
        for _ in range(3):
            try:
                await self.worker.router.Cancel(
                    router_pb2.CancelRequest(contact_id=self.uuid),
                    timeout=5.0,
                    metadata=self._metadata(),
                )
                self._cancelled = True
                return
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RETRYABLE:
                    return  # already ended (timed out, answered elsewhere): nothing to cancel
                await asyncio.sleep(0.2)
        log.warning("call %s abandoned but the router could not be told", self.uuid)

    # ------------------------------------------------------------------ router stream

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        return tuple(carrier.items())

    async def _router_loop(self, request: router_pb2.EnqueueRequest) -> None:
        """Enqueue, then follow the contact; on a lost router enqueue again (original time)."""
        stub = self.worker.router
        backoff = 0.05
        first = True
        while True:
            try:
                try:
                    response = await stub.Enqueue(
                        request, timeout=10.0, wait_for_ready=True, metadata=self._metadata()
                    )
                    if not first:
                        self.inbox.put_nowait(("requeued", None))
                        log.info("call %s enqueued again after a router restart", self.uuid)
                    self.position = response.position
                    self.ewt = response.estimated_wait_seconds
                    if self._enqueued is not None and not self._enqueued.done():
                        self._enqueued.set_result(None)
                except grpc.aio.AioRpcError as exc:
                    code = exc.code()
                    if code in RETRYABLE:
                        raise
                    if code != grpc.StatusCode.ALREADY_EXISTS:
                        if not self._refused(request, exc):
                            return
                        continue
                first = False
                stream = stub.WatchContact(
                    router_pb2.WatchContactRequest(contact_id=self.uuid),
                    wait_for_ready=True,
                    metadata=self._metadata(),
                )
                # read() rather than ``async for``: no async generator per waiting call
                while (msg := await stream.read()) is not grpc.aio.EOF:
                    backoff = 0.05
                    self.inbox.put_nowait(("router", msg))
                    if msg.WhichOneof("event") in ("ended", "connected"):
                        return
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                first = False
                log.warning("call %s: router stream lost (%s); enqueuing again", self.uuid, code)
            self.inbox.put_nowait(("lost", None))
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    def _refused(self, request: router_pb2.EnqueueRequest, exc: grpc.aio.AioRpcError) -> bool:
        """The router refused the enqueue (unknown queue, bad skills): try the default queue
        once; True when there is something left to try."""
        default = self.worker.config.default_queue
        log.error(
            "call %s: the router refused queue %r (%s: %s)",
            self.uuid,
            request.queue,
            exc.code().name,
            exc.details(),
        )
        if default is not None and request.queue != default:
            request.queue = default
            del request.skills[:]
            self.record.queue = default
            return True
        self.inbox.put_nowait(("router", _ended_failed(request.queue)))
        return False

    # ------------------------------------------------------------------ hold and announcements

    async def _hold(self, media: QueueMedia) -> None:
        """Greeting, the first announcement, then hold music broken every interval."""
        loop = asyncio.get_running_loop()
        try:
            if media.greeting:
                if media.greeting_is_text:
                    await self._play(PromptRef(text=media.greeting))
                else:
                    await self.session.playback(media.greeting)
            if self._enqueued is not None:  # the first announcement needs the place
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._enqueued), 2.0)
            await self._announce(media)
            while not self._stop_hold:
                timer = loop.call_later(media.interval, self._break_hold)
                try:
                    # execute, not playback(): one coroutine frame less per waiting call
                    await self.session.execute("playback", media.hold_music)
                finally:
                    timer.cancel()
                if self._stop_hold:
                    return
                await self._refresh_position()
                await self._announce(media)
        except CallHangup:
            return

    async def _refresh_position(self) -> None:
        """The current place in the queue (the first message of a WatchContact)."""
        stream = self.worker.router.WatchContact(
            router_pb2.WatchContactRequest(contact_id=self.uuid), timeout=2.0
        )
        try:
            msg = await stream.read()
            if msg is not grpc.aio.EOF and msg.WhichOneof("event") == "status":
                self.position = msg.status.position
        except grpc.aio.AioRpcError:
            pass  # the router is restarting: announce the last known place
        finally:
            stream.cancel()

    def _break_hold(self) -> None:
        self.worker.spawn(self._uuid_break())

    async def _uuid_break(self) -> None:
        with contextlib.suppress(EslError):
            await self.session.api(f"uuid_break {self.uuid} all", check=False)

    async def _announce(self, media: QueueMedia) -> None:
        if self._stop_hold or not (media.announce_position or media.announce_wait):
            return
        parts: list[str] = []
        if media.announce_position and self.position > 0:
            parts.append(f"You are number {self.position} in the queue.")
        if media.announce_wait and self.ewt > 0 and self.enqueued_at is not None:
            left = self.ewt - (time.time() - self.enqueued_at)
            minutes = max(1, round(left / 60))
            unit = "minute" if minutes == 1 else "minutes"
            parts.append(f"Your estimated wait is about {minutes} {unit}.")
        if parts:
            trace.get_current_span().add_event("announcement", {"callmesh.position": self.position})
            await self._play(PromptRef(text=" ".join(parts)))

    # ------------------------------------------------------------------ agent leg

    def _ring(self, agent_id: str, timeout: float) -> None:
        if agent_id in self.rings or self.bridged_leg is not None:
            return
        leg = str(uuidlib.uuid4())
        if self.record.offered_at is None:
            self.record.offered_at = time.time()
        task = asyncio.create_task(self._originate(agent_id, leg, timeout))
        self.rings[agent_id] = _Ring(agent_id, leg, task)

    async def _originate(self, agent_id: str, leg: str, timeout: float) -> None:
        worker = self.worker
        extension = worker.config.extensions.get(agent_id)
        with _CurrentSpan(
            worker.tracer,
            "agent leg",
            errors=Exception,
            attributes={"callmesh.agent_id": agent_id, "callmesh.leg": leg},
        ) as span:
            if extension is None:
                span.set_attribute("callmesh.ring.result", "unknown-agent")
                self.inbox.put_nowait(("ring-result", (agent_id, leg, "UNALLOCATED_NUMBER")))
                return
            try:
                # the caller's number comes from the SIP From header: quoted, never trusted
                variables = var_block(
                    {
                        "origination_uuid": leg,
                        "originate_timeout": str(max(1, round(timeout))),
                        "callmesh_contact": self.uuid,
                        "callmesh_agent": agent_id,
                        "origination_caller_id_number": strip_unrepresentable(self.ani) or "0",
                        "ignore_early_media": "true",
                    }
                )
                target = (
                    f"user/{token(extension, 'extension')}"
                    f"@{token(worker.config.sip_domain, 'sipDomain')}"
                )
            except ValueError as exc:
                log.error("call %s: cannot ring %s: %s", self.uuid, agent_id, exc)
                span.set_attribute("callmesh.ring.result", "bad-value")
                self.inbox.put_nowait(("ring-result", (agent_id, leg, "INVALID_NUMBER_FORMAT")))
                return
            worker.legs[leg] = self
            try:
                job = await worker.esl.bgapi(f"originate {variables}{target} &park()")
                output = (await job).strip()
            except EslError as exc:
                output = f"-ERR {exc}"
            result = "" if output.startswith("+OK") else output.removeprefix("-ERR").strip()
            span.set_attribute("callmesh.ring.result", result or "answered")
            self.inbox.put_nowait(("ring-result", (agent_id, leg, result)))

    async def _ring_result(self, agent_id: str, leg: str, failure: str) -> None:
        ring = self.rings.get(agent_id)
        if ring is None or ring.leg != leg:
            if not failure:  # answered after the offer was withdrawn: release the phone
                await self._kill_leg(leg)
            return
        if failure:
            self.rings.pop(agent_id, None)
            self.worker.legs.pop(leg, None)
            self.record.rona += 1
            await self._answer_offer(agent_id, accept=False)
            return
        ring.answered = True
        if not await self._answer_offer(agent_id, accept=True):
            self.rings.pop(agent_id, None)
            await self._kill_leg(leg)

    async def _answer_offer(self, agent_id: str, *, accept: bool) -> bool:
        answer = router_pb2.OFFER_ANSWER_ACCEPT if accept else router_pb2.OFFER_ANSWER_REJECT
        try:
            await self.worker.router.AnswerOffer(
                router_pb2.AnswerOfferRequest(
                    contact_id=self.uuid, agent_id=agent_id, answer=answer
                ),
                timeout=5.0,
                metadata=self._metadata(),
            )
            return True
        except grpc.aio.AioRpcError as exc:
            log.info(
                "call %s: AnswerOffer(%s, %s) refused: %s",
                self.uuid,
                agent_id,
                "accept" if accept else "reject",
                exc.details(),
            )
            return False

    async def _stop_ring(self, ring: _Ring) -> None:
        self.rings.pop(ring.agent_id, None)
        await self._kill_leg(ring.leg)

    async def _kill_leg(self, leg: str) -> None:
        if self.worker.legs.pop(leg, None) is None:
            return  # its CHANNEL_HANGUP was seen, or its originate failed: no channel left
        with contextlib.suppress(EslError):
            await self.worker.esl.api(f"uuid_kill {leg} ORIGINATOR_CANCEL", check=False)

    async def _connected(self, agent_id: str, hold: asyncio.Task[None], span: trace.Span) -> bool:
        """The router connected the call to ``agent_id``: stop hold music, record, bridge."""
        ring = self.rings.pop(agent_id, None)
        for other in list(self.rings.values()):
            await self._stop_ring(other)
        if ring is None or not ring.answered:
            log.warning("call %s connected to %s without an answered leg", self.uuid, agent_id)
            if ring is not None:
                await self._kill_leg(ring.leg)
            await self._complete()
            self.record.disposition = Disposition.FAILED
            await self.session.hangup("NORMAL_TEMPORARY_FAILURE")
            return True
        self._stop_hold = True
        while not hold.done():
            await self._uuid_break()
            await asyncio.wait({hold}, timeout=0.05)
        worker = self.worker
        media = self.media
        if should_record(worker.config.recording_policy, media.recording_percent, self.uuid):
            path = worker.recording_path(self)
            await self.session.execute("record_session", path)
            self.record.recording_path = path
        # bridged: a restarted process completes the contact and writes the record at hang-up
        self.record.agent_id = agent_id
        self.record.connected_at = time.time()
        self.record.disposition = Disposition.ANSWERED
        await self.session.set_variable(BRIDGED, f"{agent_id}|{self._pack()}")
        with _CurrentSpan(
            worker.tracer, "bridge", errors=Exception, attributes={"callmesh.agent_id": agent_id}
        ):
            try:
                await worker.esl.api(f"uuid_bridge {self.uuid} {ring.leg}")
            except EslCommandError as exc:
                log.warning("call %s: uuid_bridge failed: %s", self.uuid, exc.reply)
                self.record.agent_id = ""
                self.record.connected_at = None
                await self._kill_leg(ring.leg)
                await self._complete()
                self.record.disposition = Disposition.FAILED
                await self.session.hangup("NORMAL_TEMPORARY_FAILURE")
                return True
            self.bridged_leg = ring.leg
            await self.session.wait_hangup()
        self._mark_hangup()
        await self._kill_leg(ring.leg)
        await self._complete()
        return True

    async def _complete(self) -> None:
        try:
            await self.worker.router.Complete(
                router_pb2.CompleteRequest(contact_id=self.uuid),
                timeout=5.0,
                metadata=self._metadata(),
            )
        except grpc.aio.AioRpcError as exc:
            log.info("call %s: Complete refused: %s", self.uuid, exc.details())

    async def agent_hung_up(self, leg: str) -> None:
        """The bridged agent leg hung up: end the caller's leg too."""
        if leg == self.bridged_leg and not self.session.hungup:
            with contextlib.suppress(EslError):
                await self.worker.esl.api(f"uuid_kill {self.uuid}", check=False)


def _ended_failed(queue: str) -> router_pb2.WatchContactResponse:
    """A synthetic end for a contact the router refused (unknown queue...): time out."""
    return router_pb2.WatchContactResponse(
        ended=router_pb2.ContactEndedEvent(reason=router_pb2.END_REASON_TIMED_OUT, queue=queue)
    )
