"""One call walking a compiled IVR flow: events in, actions out, no I/O.

``IvrSession(flow)`` is cheap (a handful of slots); :meth:`IvrSession.start` answers the call
and runs from the entry node until the engine has to wait for the caller, the switch or the
CRM; :meth:`IvrSession.handle` feeds it what happened and returns what to do next. Nothing
the driver sends can make it raise: input that does not fit the state comes back as a
:class:`~callmesh.ivr.actions.Notice`, a failed step as an :class:`~callmesh.ivr.actions.Error`
followed by the flow's onError node (or a safe hang-up). Every session that started ends
with exactly one :class:`~callmesh.ivr.actions.Outcome` once the caller hangs up, at the
latest.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

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
    Say,
    Transfer,
    Voicemail,
)
from callmesh.ivr.events import (
    CallerHangup,
    CallInfo,
    Digits,
    LookupResult,
    PromptFinished,
    Timeout,
)
from callmesh.ivr.expressions import ExpressionError
from callmesh.ivr.flow import (
    CallbackStep,
    CollectStep,
    CompiledFlow,
    ConditionStep,
    HangupStep,
    LookupStep,
    MenuStep,
    PlayStep,
    QueueStep,
    SayStep,
    SetAttributeStep,
    Step,
    TransferStep,
    VoicemailStep,
)
from callmesh.ivr.templates import MissingAttribute

__all__ = ["IvrSession", "Waiting"]

_DTMF = frozenset("0123456789*#")
#: Most CRM attributes kept from one lookup, and the longest value kept.
MAX_LOOKUP_KEYS = 64
MAX_VALUE_LENGTH = 1024


class Waiting(StrEnum):
    """What the session waits for."""

    START = "start"
    PROMPT = "prompt"
    DIGITS = "digits"
    LOOKUP = "lookup"
    ENDED = "ended"


def _clip(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class IvrSession:
    """The IVR state of one call.

    Args:
        flow: the compiled flow (:func:`~callmesh.ivr.flow.compile_flow`), shared by calls.
    """

    __slots__ = (
        "_errors",
        "_path",
        "_started_at",
        "_steps",
        "ani",
        "attempt",
        "attributes",
        "dnis",
        "flow",
        "node",
        "outcome",
        "waiting",
    )

    def __init__(self, flow: CompiledFlow) -> None:
        self.flow = flow
        self.ani = ""
        self.dnis = ""
        self.attributes: dict[str, str] = {}
        self.node: Step | None = None
        self.waiting = Waiting.START
        self.attempt = 0
        self.outcome: Outcome | None = None
        self._path: list[str] = []
        self._errors: list[ErrorCode] = []
        self._steps = 0
        self._started_at = 0.0

    # --- the API -------------------------------------------------------------------------

    @property
    def path(self) -> tuple[str, ...]:
        """Node ids entered so far, in order."""
        return tuple(self._path)

    @property
    def finished(self) -> bool:
        """True once the outcome has been returned."""
        return self.waiting is Waiting.ENDED

    def start(self, call: CallInfo, now: float) -> list[Action]:
        """Answer the call and run the flow from its entry node.

        Args:
            call: the caller's and dialled numbers, and any attributes known already.
            now: the time, POSIX seconds (the simulator passes its simulated epoch time).
        """
        if self.waiting is not Waiting.START:
            return [Notice(NoticeCode.ALREADY_STARTED, self._node_id(), "start called twice")]
        self.ani = call.ani if isinstance(call.ani, str) else ""
        self.dnis = call.dnis if isinstance(call.dnis, str) else ""
        if call.attributes:
            self.attributes = {str(k): str(v) for k, v in call.attributes.items()}
        self._started_at = now
        out: list[Action] = [Answer()]
        self._run(self.flow.entry, out, now)
        return out

    def handle(self, event: object, now: float) -> list[Action]:
        """Feed one event; returns the actions to carry out, in order.

        Args:
            event: a :mod:`callmesh.ivr.events` event (anything else is reported, not raised).
            now: the time, POSIX seconds.
        """
        waiting = self.waiting
        if waiting is Waiting.ENDED:
            return [
                Notice(
                    NoticeCode.AFTER_END,
                    self._node_id(),
                    f"{type(event).__name__} after the call left the IVR",
                )
            ]
        if waiting is Waiting.START:
            return [Notice(NoticeCode.NOT_STARTED, None, f"{type(event).__name__} before start")]
        out: list[Action] = []
        kind = type(event)
        node = self.node
        if kind is CallerHangup:
            self._end(OutcomeKind.ABANDONED, None, out, now)
        elif waiting is Waiting.PROMPT and kind is PromptFinished:
            assert isinstance(node, PlayStep | SayStep)
            self._run(node.next, out, now)
        elif waiting is Waiting.DIGITS and kind is Digits:
            assert isinstance(event, Digits)
            digits = event.digits if isinstance(event.digits, str) else ""
            if isinstance(node, MenuStep):
                self._menu_input(node, digits, out, now)
            elif isinstance(node, CollectStep):
                self._collect_input(node, digits, out, now)
        elif waiting is Waiting.DIGITS and kind is Timeout:
            if isinstance(node, MenuStep):
                self._menu_input(node, "", out, now)
            elif isinstance(node, CollectStep):
                self._collect_input(node, "", out, now)
        elif waiting is Waiting.LOOKUP and kind in (LookupResult, Timeout):
            assert isinstance(node, LookupStep)
            self._lookup_result(node, event, out, now)
        elif kind in (Digits, Timeout, PromptFinished, LookupResult):
            out.append(
                Notice(
                    NoticeCode.IGNORED_EVENT,
                    self._node_id(),
                    f"{kind.__name__} while waiting for {waiting.value}",
                )
            )
        else:
            out.append(
                Notice(
                    NoticeCode.UNKNOWN_EVENT,
                    self._node_id(),
                    f"{kind.__name__} is not an IVR event",
                )
            )
        return out

    # --- running nodes -------------------------------------------------------------------

    def _node_id(self) -> str | None:
        return self.node.id if self.node is not None else None

    def _run(self, node_id: str, out: list[Action], now: float) -> None:
        """Enter ``node_id`` and go on until something must be waited for or the call left."""
        nodes = self.flow.nodes
        budget = 4 * len(nodes) + 8  # nodes entered without waiting: more means a loop
        next_id: str | None = node_id
        while next_id is not None:
            self._steps += 1
            budget -= 1
            if self._steps > self.flow.max_steps:
                message = f"more than {self.flow.max_steps} nodes entered in this call"
                self._fail(ErrorCode.STEP_LIMIT, message, out, now)
                return
            if budget < 0:
                message = "the flow loops through nodes without waiting for the caller"
                self._fail(ErrorCode.STEP_LIMIT, message, out, now)
                return
            node = nodes[next_id]
            self.node = node
            self._path.append(next_id)
            next_id = self._enter(node, out, now)

    def _enter(self, node: Step, out: list[Action], now: float) -> str | None:
        """Do what ``node`` does; the next node to enter at once, or None to stop."""
        ani, dnis, attributes = self.ani, self.dnis, self.attributes
        try:
            match node:
                case PlayStep():
                    out.append(Play(node.prompt.render(ani, dnis, attributes), wait=True))
                    self.waiting = Waiting.PROMPT
                    return None
                case SayStep():
                    value = node.value.render(ani, dnis, attributes)
                    if node.check is not None and not node.check.match(value):
                        return self._error(
                            ErrorCode.BAD_VALUE,
                            f"cannot say {_clip(value)!r} as a {node.kind}",
                            out,
                            now,
                        )
                    out.append(Say(value, node.kind, node.language, wait=True))
                    self.waiting = Waiting.PROMPT
                    return None
                case MenuStep() | CollectStep():
                    self.attempt = 1
                    out.append(self._ask(node))
                    self.waiting = Waiting.DIGITS
                    return None
                case ConditionStep():
                    return self._condition(node, out, now)
                case LookupStep():
                    key = node.key.render(ani, dnis, attributes)
                    out.append(CrmLookup(key, node.timeout, node.id))
                    self.waiting = Waiting.LOOKUP
                    return None
                case SetAttributeStep():
                    attributes[node.name] = node.value.render(ani, dnis, attributes)
                    return node.next
                case QueueStep():
                    priority = self._priority(node, out)
                    snapshot = MappingProxyType(dict(attributes))
                    out.append(EnqueueContact(node.queue, priority, node.skills, snapshot))
                    self._end(OutcomeKind.QUEUED, node.queue, out, now, snapshot)
                    return None
                case VoicemailStep():
                    greeting = (
                        node.greeting.render(ani, dnis, attributes) if node.greeting else None
                    )
                    out.append(Voicemail(node.mailbox, greeting))
                    self._end(OutcomeKind.VOICEMAIL, node.mailbox, out, now)
                    return None
                case CallbackStep():
                    prompt = node.prompt.render(ani, dnis, attributes) if node.prompt else None
                    snapshot = MappingProxyType(dict(attributes))
                    out.append(CallbackRequest(node.queue, ani, snapshot))
                    if prompt is not None:
                        out.append(Play(prompt, wait=False))
                    out.append(Hangup())
                    self._end(OutcomeKind.CALLBACK, node.queue, out, now, snapshot)
                    return None
                case TransferStep():
                    out.append(Transfer(node.destination, self.flow.caller_id_number))
                    self._end(OutcomeKind.TRANSFERRED, node.destination, out, now)
                    return None
                case HangupStep():
                    if node.prompt is not None:
                        out.append(Play(node.prompt.render(ani, dnis, attributes), wait=False))
                    out.append(Hangup(node.cause))
                    self._end(OutcomeKind.HUNG_UP, None, out, now)
                    return None
        except MissingAttribute as exc:
            return self._error(
                ErrorCode.TEMPLATE,
                f"attribute {exc.name!r} is not set on this call",
                out,
                now,
            )
        raise AssertionError(f"unhandled node {node!r}")  # pragma: no cover - all types above

    def _ask(self, node: MenuStep | CollectStep) -> CollectDigits:
        prompt = node.prompt.render(self.ani, self.dnis, self.attributes)
        if isinstance(node, MenuStep):
            return CollectDigits(
                prompt, 1, 1, "", node.timeout, node.regex, self.attempt, node.attempts, node.id
            )
        return CollectDigits(
            prompt,
            node.min_digits,
            node.max_digits,
            node.terminator,
            node.timeout,
            node.pattern.pattern,
            self.attempt,
            node.attempts,
            node.id,
        )

    def _condition(self, node: ConditionStep, out: list[Action], now: float) -> str | None:
        if node.hours is not None:
            try:
                result = node.hours.is_open(now)
            except (ValueError, OverflowError, OSError):
                return self._error(
                    ErrorCode.BAD_VALUE, f"now={now!r} is not a usable time", out, now
                )
        else:
            assert node.expression is not None
            try:
                result = node.expression.evaluate(self.ani, self.dnis, self.attributes)
            except ExpressionError as exc:
                return self._error(
                    ErrorCode.EXPRESSION, f"{node.expression.source}: {exc}", out, now
                )
        return node.if_true if result else node.if_false

    def _priority(self, node: QueueStep, out: list[Action]) -> int:
        if node.priority_attribute is None:
            return node.priority
        raw = self.attributes.get(node.priority_attribute)
        if raw is None:
            return node.priority
        try:
            value = int(raw.strip())
        except ValueError:
            out.append(
                Notice(
                    NoticeCode.BAD_PRIORITY,
                    node.id,
                    f"attribute {node.priority_attribute}={_clip(raw)!r} is not a whole number;"
                    f" using priority {node.priority}",
                )
            )
            return node.priority
        if not 0 <= value <= 100:
            clamped = min(100, max(0, value))
            out.append(
                Notice(
                    NoticeCode.BAD_PRIORITY,
                    node.id,
                    f"attribute {node.priority_attribute}={value} is outside 0-100; using {clamped}",
                )
            )
            return clamped
        return value

    # --- input ---------------------------------------------------------------------------

    def _menu_input(self, node: MenuStep, digits: str, out: list[Action], now: float) -> None:
        if digits:
            target = node.options.get(digits)
            if target is not None:
                self._run(target, out, now)
                return
            if len(digits) > 1 or not _DTMF.issuperset(digits):
                out.append(
                    Notice(
                        NoticeCode.INVALID_DIGITS,
                        node.id,
                        f"menu takes one key, got {_clip(digits)!r}",
                    )
                )
        timed_out = not digits
        if self.attempt < node.attempts:
            self.attempt += 1
            if not timed_out and node.invalid_prompt is not None:
                try:
                    prompt = node.invalid_prompt.render(self.ani, self.dnis, self.attributes)
                except MissingAttribute as exc:
                    self._go(
                        self._error(
                            ErrorCode.TEMPLATE, f"attribute {exc.name!r} is not set", out, now
                        ),
                        out,
                        now,
                    )
                    return
                out.append(Play(prompt, wait=False))
            self._reask(node, out, now)
            return
        if timed_out:
            if node.timeout_target is not None:
                self._run(node.timeout_target, out, now)
                return
            message = f"no key after {node.attempts} attempts"
            self._go(self._error(ErrorCode.MENU_TIMEOUT, message, out, now), out, now)
        else:
            if node.invalid_target is not None:
                self._run(node.invalid_target, out, now)
                return
            message = f"no valid key after {node.attempts} attempts"
            self._go(self._error(ErrorCode.MENU_INVALID, message, out, now), out, now)

    def _collect_input(self, node: CollectStep, digits: str, out: list[Action], now: float) -> None:
        entered = digits
        if node.terminator and entered.endswith(node.terminator):
            entered = entered[: -len(node.terminator)]
        if entered:
            if (
                node.min_digits <= len(entered) <= node.max_digits
                and _DTMF.issuperset(entered)
                and node.pattern.search(entered)
            ):
                self.attributes[node.attribute] = entered
                self._run(node.next, out, now)
                return
            if len(entered) > node.max_digits or not _DTMF.issuperset(entered):
                out.append(
                    Notice(
                        NoticeCode.INVALID_DIGITS,
                        node.id,
                        f"expected {node.min_digits}-{node.max_digits} digits, got {_clip(entered)!r}",
                    )
                )
        if self.attempt < node.attempts:
            self.attempt += 1
            self._reask(node, out, now)
            return
        if node.invalid_target is not None:
            self._run(node.invalid_target, out, now)
            return
        message = f"no valid input after {node.attempts} attempts"
        self._go(self._error(ErrorCode.COLLECT_FAILED, message, out, now), out, now)

    def _reask(self, node: MenuStep | CollectStep, out: list[Action], now: float) -> None:
        try:
            out.append(self._ask(node))
        except MissingAttribute as exc:
            self._go(
                self._error(ErrorCode.TEMPLATE, f"attribute {exc.name!r} is not set", out, now),
                out,
                now,
            )

    def _lookup_result(
        self, node: LookupStep, event: object, out: list[Action], now: float
    ) -> None:
        if isinstance(event, Timeout):
            message = f"no answer within {node.timeout:g} s"
            self._go(self._error(ErrorCode.LOOKUP_FAILED, message, out, now), out, now)
            return
        assert isinstance(event, LookupResult)
        if event.error is not None:
            message = f"lookup failed: {_clip(str(event.error), 200)}"
            self._go(self._error(ErrorCode.LOOKUP_FAILED, message, out, now), out, now)
            return
        found = event.attributes
        if found is None or not isinstance(found, Mapping):
            self.attributes["crm.found"] = "false"
            self._run(node.not_found, out, now)
            return
        self.attributes["crm.found"] = "true"
        keys = sorted(str(k) for k in found)
        trimmed = len(keys) > MAX_LOOKUP_KEYS
        values = {str(k): v for k, v in found.items()}
        for key in keys[:MAX_LOOKUP_KEYS]:
            value = values[key]
            text = value if isinstance(value, str) else str(value)
            if len(text) > MAX_VALUE_LENGTH:
                text = text[:MAX_VALUE_LENGTH]
                trimmed = True
            self.attributes[f"crm.{key}"] = text
        if trimmed:
            out.append(
                Notice(
                    NoticeCode.LOOKUP_TRIMMED,
                    node.id,
                    f"kept {min(len(keys), MAX_LOOKUP_KEYS)} of {len(keys)} CRM attributes,"
                    f" values cut at {MAX_VALUE_LENGTH} characters",
                )
            )
        self._run(node.next, out, now)

    # --- errors and the end --------------------------------------------------------------

    def _go(self, node_id: str | None, out: list[Action], now: float) -> None:
        if node_id is not None:
            self._run(node_id, out, now)

    def _error(self, code: ErrorCode, message: str, out: list[Action], now: float) -> str | None:
        """Report a failed step; the node to recover at, or None after hanging up."""
        self._errors.append(code)
        current = self._node_id() or self.flow.entry
        recovery = self.flow.on_error
        if recovery is not None and (
            recovery == current or len(self._errors) > self.flow.max_errors
        ):
            out.append(Error(code, current, message, None))
            self._fail(
                ErrorCode.ERROR_LOOP,
                f"the onError node {recovery!r} cannot recover ({len(self._errors)} errors)",
                out,
                now,
            )
            return None
        out.append(Error(code, current, message, recovery))
        if recovery is None:
            self._hang_up_failed(out, now)
        return recovery

    def _fail(self, code: ErrorCode, message: str, out: list[Action], now: float) -> None:
        """A failure with no recovery: report it and hang up."""
        self._errors.append(code)
        out.append(Error(code, self._node_id() or self.flow.entry, message, None))
        self._hang_up_failed(out, now)

    def _hang_up_failed(self, out: list[Action], now: float) -> None:
        out.append(Hangup("NORMAL_CLEARING"))
        self._end(OutcomeKind.FAILED, None, out, now)

    def _end(
        self,
        kind: OutcomeKind,
        target: str | None,
        out: list[Action],
        now: float,
        attributes: Mapping[str, str] | None = None,
    ) -> None:
        self.waiting = Waiting.ENDED
        self.outcome = Outcome(
            kind=kind,
            node=self._node_id() or self.flow.entry,
            target=target,
            path=tuple(self._path),
            attributes=attributes
            if attributes is not None
            else MappingProxyType(dict(self.attributes)),
            errors=tuple(self._errors),
            started_at=self._started_at,
            ended_at=now,
        )
        out.append(self.outcome)
