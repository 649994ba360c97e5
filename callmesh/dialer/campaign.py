"""One outbound campaign as a pure engine: calls in, effects out, clock passed in.

The dialer worker carries the effects out over ESL (``Dial`` becomes ``bgapi originate``) and
reports what happened (``on_outcome``, ``on_agent_connected``, ``on_digit``); the simulator
schedules the same effects on its clock. Every dial decision is audited.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from callmesh.api.base import Prompt
from callmesh.api.dialercampaign import (
    CampaignState,
    DialerCampaignSpec,
    DialerMode,
    Disposition,
    MachineAction,
)
from callmesh.dialer.compliance import (
    AbandonMeter,
    AuditEntry,
    local_day,
    next_local_time,
    window_ever_opens,
    window_open,
)
from callmesh.dialer.contacts import Contact, ContactList, normalize_phone
from callmesh.dialer.journal import OPT_OUT_REASON, DialDecision, JournalRecord
from callmesh.dialer.pacing import (
    TimedPacingInput,
    progressive_calls,
    timed_predictive_calls,
)

#: How long a contact whose calling window is closed waits before it is looked at again.
RECHECK_SECONDS = 900.0

#: Mean time to answer assumed before five people have answered (seconds).
DEFAULT_ANSWER_SECONDS = 10.0


# Enum members read through their class cost a descriptor call each: the pacer, asked every
# second, reads these module constants instead.
_PAUSED = CampaignState.paused
_PREVIEW = DialerMode.preview
_PROGRESSIVE = DialerMode.progressive
_AGENTLESS = DialerMode.agentless


def prior_answer_survival(seconds: float) -> float:
    """P(a person who answers takes longer than ``seconds``) before any is measured.

    Erlang with shape 3 and mean :data:`DEFAULT_ANSWER_SECONDS`: a phone rings a few
    seconds before anyone picks up (an exponential prior would have a tenth of the people
    answer within the first second, so a call that has rung one second unanswered would
    already look less promising than it is).
    """
    if seconds <= 0:
        return 1.0
    x = 3.0 * seconds / DEFAULT_ANSWER_SECONDS
    return math.exp(-x) * (1.0 + x + x * x / 2.0)


class Outcome(StrEnum):
    """What became of a placed call."""

    HUMAN = "human"
    MACHINE = "machine"
    BUSY = "busy"
    NO_ANSWER = "noAnswer"
    FAILED = "failed"


_RETRY_DISPOSITION = {
    Outcome.MACHINE: Disposition.machine,
    Outcome.BUSY: Disposition.busy,
    Outcome.NO_ANSWER: Disposition.no_answer,
    Outcome.FAILED: Disposition.failed,
}


# --- effects -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dial:
    """Place a call (``originate`` with the campaign's caller ID and variables)."""

    attempt_id: str
    contact: Contact
    caller_id_number: str
    caller_id_name: str
    timeout_seconds: int
    variables: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Connect:
    """A person answered (or pressed the transfer key): queue the call to the target queue."""

    attempt_id: str
    queue: str
    priority: int
    attributes: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class PlayAnnouncement:
    """Agentless: play the message and wait for the transfer or opt-out key."""

    attempt_id: str
    prompt: Prompt
    transfer_digit: str
    opt_out_digit: str | None
    repeat: int


@dataclass(frozen=True, slots=True)
class SafeHarbour:
    """No agent within the compliance window: play the safe-harbour message, then hang up."""

    attempt_id: str
    prompt: Prompt | None


@dataclass(frozen=True, slots=True)
class LeaveMessage:
    """An answering machine answered: leave the message, then hang up."""

    attempt_id: str
    prompt: Prompt


@dataclass(frozen=True, slots=True)
class HangupCall:
    """End the call."""

    attempt_id: str
    reason: str


Effect = Dial | Connect | PlayAnnouncement | SafeHarbour | LeaveMessage | HangupCall


# --- state ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _ContactState:
    contact: Contact
    order: int
    attempts: int = 0
    by_disposition: dict[Disposition, int] = field(default_factory=dict)
    per_day: dict[str, int] = field(default_factory=dict)
    next_at: float = 0.0
    done: str | None = None


@dataclass(slots=True)
class _Attempt:
    contact_id: str
    placed_at: float
    answered_at: float | None = None
    window_ends: float | None = None
    connected: bool = False
    abandoned: bool = False


@dataclass(frozen=True, slots=True)
class AgentSnapshot:
    """The agents of the target queue as the pacer sees them."""

    free: int
    freeing: tuple[float, ...] = ()
    """Seconds until each busy agent is free, where known (the rest of a wrap-up)."""


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    """What :meth:`Campaign.replay` rebuilt from the journal."""

    decisions: int = 0
    outcomes: int = 0
    unknown_contacts: int = 0
    """Dial decisions for contacts no longer in the list (counted in nothing but this)."""
    unresolved: int = 0
    """Attempts with no recorded outcome: counted against the caps, the contact held back."""
    assumed_abandoned: int = 0
    """Answered calls with no record of an agent in time: counted abandoned (conservative)."""
    opted_out: int = 0


_FINAL_REFUSALS = {
    "on the do-not-call list": "do-not-call",
    "the calling window never opens": "never-callable",
}
"""Refusals that end a contact (the reason in the audit -> the contact's end state)."""

_DECIDED = {
    "human": Outcome.HUMAN,
    "machine": Outcome.MACHINE,
    "busy": Outcome.BUSY,
    "noAnswer": Outcome.NO_ANSWER,
    "failed": Outcome.FAILED,
}


@dataclass(frozen=True, slots=True)
class CampaignStats:
    """Counters for status and reports."""

    contacts: int
    rejected_rows: int
    dialled: int
    answered: int
    abandoned: int
    abandon_rate: float
    reached: int
    exhausted: int
    in_flight: int
    human_rate: float
    window_opens: bool = True


class Campaign:
    """The pacing and compliance engine of one DialerCampaign."""

    def __init__(
        self,
        name: str,
        spec: DialerCampaignSpec,
        contacts: ContactList,
        do_not_call: frozenset[str],
        *,
        time_zone: str = "UTC",
        initial_human_rate: float = 0.3,
        agentless_lines: int = 10,
        history: int = 300,
    ) -> None:
        self.name = name
        self._spec = spec
        self.rejected_rows = len(contacts.problems)
        self.row_problems = contacts.problems
        self._dnc = set(do_not_call)
        self._states = {c.id: _ContactState(c, i) for i, c in enumerate(contacts.contacts)}
        self._ready: list[tuple[float, int, str]] = [
            (0.0, s.order, s.contact.id) for s in self._states.values()
        ]
        heapq.heapify(self._ready)
        self._attempts: dict[str, _Attempt] = {}
        # placed and unresolved; a dict, not a set: the pacer sums over these in this order,
        # which must not depend on the process's string hash seed
        self._in_flight: dict[str, None] = {}
        self._windows: list[tuple[float, str]] = []  # compliance deadlines of answered calls
        self._meter = AbandonMeter(spec.pacing.period, time_zone)
        self._results: deque[tuple[float, bool]] = deque(maxlen=history)  # (placed at, human)
        self._placed_all: list[float] = []  # the placing times in _results, sorted
        self._placed_human: list[float] = []  # those answered by a person, sorted
        self._latest = 0.0  # the latest time the engine was told about
        self._prior = initial_human_rate
        self._agentless_lines = agentless_lines
        self._dialled = 0
        self._answer_delays: deque[float] = deque(maxlen=history)
        self._resolved: deque[tuple[float, bool]] = deque(maxlen=history)
        self._cache: tuple[list[float], list[float], list[int]] | None = None
        self._human_cache: list[float] | None = None
        self.audit: list[AuditEntry] = []
        self._open_key: tuple[float, object] | None = None  # (now, spec) of _open
        self._open: dict[str, bool] = {}  # calling window open, per time zone, at that now

    @property
    def spec(self) -> DialerCampaignSpec:
        """The campaign's spec. Setting a different one (the worker does on a config
        change) puts every contact refused for a reason of the clock back in line at once,
        so a wider calling window or a higher daily cap takes effect now."""
        return self._spec

    @spec.setter
    def spec(self, spec: DialerCampaignSpec) -> None:
        if spec == self._spec:
            self._spec = spec
            return
        self._spec = spec
        self._ready = [
            (min(at, max(self._states[cid].next_at, self._latest)), order, cid)
            for at, order, cid in self._ready
        ]
        heapq.heapify(self._ready)

    # --- restart --------------------------------------------------------------------------

    def replay(
        self, records: Iterable[JournalRecord], now: float, *, in_flight: Iterable[str] = ()
    ) -> ReplaySummary:
        """Rebuild what the rules depend on from the journal of earlier runs; pure.

        Call on a fresh engine before its first ``tick``, with every record the worker
        wrote (any campaign's; others are skipped), oldest first. Rebuilt: each contact's
        attempts (per local day for the frequency cap, per outcome for the retry rules, the
        retry delays), contacts reached, exhausted or opted out (and the opted-out numbers
        added to the do-not-call list), the abandonment meter, the dialled count and the
        measured contact rate and answer times. Conservative where the journal stops short:

        * an attempt with no outcome (the pod died while it rang) counts against the caps
          and holds its contact back for the ``noAnswer`` retry delay (15 min without one),
          unless its id is in ``in_flight`` (calls this process still follows);
        * a person who answered with no record of an agent in time and no safe-harbour
          record is counted abandoned once the window is over (pending windows are kept).
        """
        live = set(in_flight)
        decisions = outcomes = unknown = opted = 0
        decided: set[str] = set()
        queued: dict[str, float | None] = dict.fromkeys(self._states, 0.0)
        hold = next(
            (r.delay_seconds for r in self.spec.retries if r.disposition is Disposition.no_answer),
            RECHECK_SECONDS,
        )
        window = self.spec.pacing.compliance_window_seconds
        agentless = self.spec.mode is DialerMode.agentless
        for record in records:
            if record.campaign != self.name:
                continue
            if isinstance(record, DialDecision):
                decisions += 1
                state = self._states.get(record.contact)
                if not record.dialled:
                    if record.reason == OPT_OUT_REASON:
                        opted += 1
                        self._dnc.add(record.phone)
                        if state is not None:
                            state.done = "opted-out"
                    elif state is not None and state.done is None:  # as _next_contact did
                        if record.reason in _FINAL_REFUSALS:
                            state.done = _FINAL_REFUSALS[record.reason]
                        elif queued[record.contact] is not None:
                            # Judged again under this process's spec and list, which may
                            # have changed since (a restart is how a new spec arrives): a
                            # wider window must not wait for the old one's opening.
                            reason = self._refusal(state, record.at)
                            queued[record.contact] = (
                                state.next_at
                                if reason is None or reason in _FINAL_REFUSALS
                                else self._look_again(state, reason, record.at)
                            )
                    continue
                if state is None:
                    unknown += 1
                    continue
                number = record.attempt or state.attempts + 1
                attempt_id = f"{self.name}.{record.contact}.{number}"
                if attempt_id in self._attempts:  # the same line twice
                    continue
                state.attempts = max(state.attempts, number)
                day = local_day(record.at, state.contact.time_zone)
                state.per_day[day] = state.per_day.get(day, 0) + 1
                self._attempts[attempt_id] = _Attempt(record.contact, record.at)
                queued[record.contact] = None
                self._dialled += 1
                continue
            outcomes += 1
            attempt = self._attempts.get(record.attempt)
            if attempt is None:
                continue
            state = self._states[attempt.contact_id]
            what = record.outcome
            if record.attempt not in decided and (what in _DECIDED or what == "hangup"):
                decided.add(record.attempt)  # a hang-up before any verdict: no answer
                outcome = _DECIDED.get(what, Outcome.NO_ANSWER)
                human = outcome is Outcome.HUMAN
                self._add_result(attempt.placed_at, human)
                self._latest = max(self._latest, record.at)
                self._resolved.append((record.at - attempt.placed_at, human))
                if human:
                    attempt.answered_at = record.at
                    self._answer_delays.append(record.at - attempt.placed_at)
                    self._meter.answered(record.at)
                    if agentless:
                        state.done = "reached"
                    else:
                        attempt.window_ends = record.at + window
                else:
                    self._schedule_retry(state, outcome, record.at)
                    queued[attempt.contact_id] = state.next_at
            elif what == "connected" and attempt.answered_at is not None:
                attempt.connected = True
                state.done = "reached"
            elif what == "abandoned" and not attempt.abandoned:
                attempt.abandoned = True
                self._meter.abandoned(record.at)
        unresolved = assumed = 0
        for attempt_id, attempt in self._attempts.items():
            state = self._states[attempt.contact_id]
            if attempt_id not in decided:
                if attempt_id in live:
                    self._in_flight[attempt_id] = None
                    continue
                unresolved += 1
                if attempt_id == f"{self.name}.{attempt.contact_id}.{state.attempts}":
                    state.next_at = max(state.next_at, attempt.placed_at + hold)
                    queued[attempt.contact_id] = state.next_at
                continue
            ends = attempt.window_ends
            if ends is None or attempt.connected or attempt.abandoned:
                continue
            if ends > now or attempt_id in live:
                heapq.heappush(self._windows, (ends, attempt_id))
            else:
                attempt.abandoned = True
                self._meter.abandoned(ends)
                assumed += 1
        self._ready = [
            (at, s.order, cid)
            for cid, s in self._states.items()
            if s.done is None and (at := queued[cid]) is not None
        ]
        heapq.heapify(self._ready)
        self._cache = self._human_cache = None
        return ReplaySummary(decisions, outcomes, unknown, unresolved, assumed, opted)

    # --- what the pacer knows ------------------------------------------------------------

    @property
    def human_rate(self) -> float:
        """Measured share of placed calls a person answers (a prior of 10 calls blended in).

        Only calls placed at least a ring timeout ago count: a busy line is known in
        seconds and a no-answer only at the ring timeout, so the outcomes of recent calls
        are mostly the quick ones (counting them would read a low contact rate just after a
        burst of dials, and dial too many).
        """
        weight = 10
        settled = self._latest - self.spec.pacing.ring_timeout_seconds
        total = bisect.bisect_right(self._placed_all, settled)  # placed <= settled
        humans = bisect.bisect_right(self._placed_human, settled)
        return (humans + self._prior * weight) / (total + weight)

    def _add_result(self, placed: float, human: bool) -> None:
        """Remember a resolved call (the oldest beyond ``history`` is forgotten)."""
        results = self._results
        if results.maxlen == 0:
            return
        if len(results) == results.maxlen:
            old, was_human = results[0]
            del self._placed_all[bisect.bisect_left(self._placed_all, old)]
            if was_human:
                del self._placed_human[bisect.bisect_left(self._placed_human, old)]
        results.append((placed, human))
        bisect.insort_right(self._placed_all, placed)
        if human:
            bisect.insort_right(self._placed_human, placed)

    def answer_horizon(self, quantile: float = 0.5) -> float:
        """Seconds from dialling to a person answering, measured (``quantile`` of the last
        answers; :data:`DEFAULT_ANSWER_SECONDS` before the first five).

        The predictive pacer counts a busy agent as available when it is expected to be free
        within this horizon: a call dialled now reaches a person about this much later.
        """
        if len(self._answer_delays) < 5:
            return DEFAULT_ANSWER_SECONDS
        ordered = sorted(self._answer_delays)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]

    def _measured(self) -> tuple[list[float], list[float], list[int]]:
        """Sorted human answer delays; sorted resolution delays with humans at or after each."""
        if self._cache is None:
            answers = sorted(self._answer_delays)
            resolved = sorted(self._resolved)
            humans_after = [0] * (len(resolved) + 1)
            for i in range(len(resolved) - 1, -1, -1):
                humans_after[i] = humans_after[i + 1] + resolved[i][1]
            self._cache = (answers, [d for d, _ in resolved], humans_after)
        return self._cache

    def answer_survival(self, seconds: float) -> float:
        """P(a person who answers takes at least ``seconds`` to do so), measured.

        :func:`prior_answer_survival` until five people answered.
        """
        if seconds <= 0:
            return 1.0
        answers = self._measured()[0]
        if len(answers) < 5:
            return prior_answer_survival(seconds)
        return 1.0 - bisect.bisect_left(answers, seconds) / len(answers)

    def still_human(self, rung: float) -> float:
        """P(a call that has rung ``rung`` seconds unresolved will be answered by a person).

        From the last resolved calls (those that took longer than ``rung``), with the
        measured human rate blended in as ten calls' worth of prior.
        """
        _, delays, humans_after = self._measured()
        i = bisect.bisect_right(delays, rung)
        later = len(delays) - i
        weight = 10
        return (humans_after[i] + self.human_rate * weight) / (later + weight)

    @property
    def in_flight(self) -> int:
        """Calls placed and not yet answered or failed."""
        return len(self._in_flight)

    def stats(self, now: float) -> CampaignStats:
        """Counters for the campaign's status."""
        answered, abandoned = self._meter.totals(now)
        states = self._states.values()
        return CampaignStats(
            contacts=len(self._states),
            rejected_rows=self.rejected_rows,
            dialled=self._dialled,
            answered=answered,
            abandoned=abandoned,
            abandon_rate=self._meter.rate(now),
            reached=sum(1 for s in states if s.done == "reached"),
            exhausted=sum(1 for s in states if s.done == "exhausted"),
            in_flight=len(self._in_flight),
            human_rate=self.human_rate,
            window_opens=window_ever_opens(self.spec.calling_window),
        )

    def problems(self, limit: int = 20) -> list[str]:
        """What keeps (part of) the campaign from dialling, for its status, worst first.

        A window that never opens and an empty list stop the whole campaign; bad rows are
        listed (row and reason, up to ``limit``) and skipped while the rest dials.
        """
        out: list[str] = []
        window = self.spec.calling_window
        if not window_ever_opens(window):
            out.append(
                f"spec.callingWindow never opens ({window.start}-{window.end} on"
                f" {', '.join(d.value for d in window.days) or 'no day'}): set end after"
                " start and at least one day; nothing is dialled"
            )
        if not self._states:
            out.append("the contact list has no valid contact: nothing to dial")
        if self.row_problems:
            shown = [str(p) for p in self.row_problems[:limit]]
            more = len(self.row_problems) - len(shown)
            out.append(
                f"{len(self.row_problems)} contact row(s) skipped: "
                + "; ".join(shown)
                + (f"; and {more} more" if more > 0 else "")
            )
        return out

    def next_deadline(self) -> float | None:
        """The earliest compliance-window end the engine must be told about (``tick``)."""
        return self._windows[0][0] if self._windows else None

    # --- deciding --------------------------------------------------------------------------

    def _dials_allowed(self) -> bool:
        return self.spec.state is CampaignState.running and self.spec.mode is not DialerMode.preview

    def calls_wanted(self, now: float, agents: AgentSnapshot) -> int:
        """How many new calls the campaign's mode wants placed now."""
        spec = self._spec
        mode = spec.mode
        if spec.state is _PAUSED or mode is _PREVIEW:
            return 0
        if mode is _PROGRESSIVE:
            return progressive_calls(agents.free, len(self._in_flight))
        if mode is _AGENTLESS:
            return max(0, self._agentless_lines - len(self._in_flight))
        answered, abandoned = self._meter.totals(now)
        return timed_predictive_calls(self._timed_input(now, agents, answered, abandoned))

    def _timed_input(
        self, now: float, agents: AgentSnapshot, answered: int, abandoned: int
    ) -> TimedPacingInput:
        pacing = self._spec.pacing
        window = pacing.compliance_window_seconds
        horizon = pacing.ring_timeout_seconds + window
        ends = sorted([r - window for r in agents.freeing])  # when each busy agent can take one
        checkpoints = [max(0.0, t - 0.01) for t in ends if 0 < t < horizon]
        checkpoints.append(horizon)
        answers, delays, humans_after = self._measured()
        humans = self._human_delays()
        rate = self.human_rate
        n_answers = len(answers)
        measured = n_answers >= 5
        right = bisect.bisect_right

        def answered_by(t: float) -> float:  # P(a person answers within t | a person answers)
            if not measured:
                return 1.0 - prior_answer_survival(t)
            return right(answers, t) / n_answers

        rung = [now - self._attempts[a].placed_at for a in self._in_flight]
        n_delays = len(delays)
        # per call in flight, what does not depend on the checkpoint (computed once)
        calls = []
        ringing_total = 0.0
        for e in rung:
            i = right(delays, e)
            later = n_delays - i
            reached = answered_by(e)
            calls.append(
                (e, later + 10, right(humans, e), reached, max(1e-9, 1.0 - rate * reached))
            )
            ringing_total += (humans_after[i] + rate * 10) / (later + 10)  # still_human(e)
        ringing = []
        for t in checkpoints:
            total = 0.0
            for e, weight, before, reached, alive in calls:
                x = e + t
                got = right(humans, x) - before
                # a person answers in (e, e + t] given no answer by e (the call still rings)
                gain = (right(answers, x) / n_answers if measured else answered_by(x)) - reached
                prior = rate * (gain if gain > 0.0 else 0.0)
                prior /= alive
                total += (got + 10 * prior) / weight
            ringing.append(total)
        free = agents.free
        reachable = free + bisect.bisect_left(ends, horizon)  # r - window < horizon
        return TimedPacingInput(
            supply=tuple([float(free + right(ends, t)) for t in checkpoints]),  # r - window <= t
            ringing=tuple(ringing),
            fresh=tuple([rate * answered_by(t) for t in checkpoints]),
            ringing_total=ringing_total,
            human_rate=rate,
            free_agents=agents.free,
            in_flight=self.in_flight,
            answered=answered,
            abandoned=abandoned,
            cap=pacing.max_abandon_percent / 100,
            max_calls=math.floor(pacing.max_dial_ratio * max(1, reachable)),
        )

    def _human_delays(self) -> list[float]:
        if self._human_cache is None:
            self._human_cache = sorted(d for d, human in self._resolved if human)
        return self._human_cache

    def tick(self, now: float, agents: AgentSnapshot, *, wanted: int | None = None) -> list[Effect]:
        """Expire compliance windows, then place the calls pacing wants.

        ``wanted`` replaces the mode's own count (a baseline pacer such as VICIdial's dial
        level, in the benchmark); every compliance gate still applies, and a paused or
        preview campaign still places nothing.
        """
        self._latest = max(self._latest, now)
        effects = self._expire_windows(now)
        if wanted is not None and self._dials_allowed():
            count = max(0, wanted)  # the mode's own count (never negative) would be replaced
        else:
            count = self.calls_wanted(now, agents)
        for _ in range(count):
            contact = self._next_contact(now)
            if contact is None:
                break
            effects.append(self._dial(contact, now))
        return effects

    def preview(self, now: float) -> Contact | None:
        """Preview mode: the next contact an agent may choose to dial (not yet dialled)."""
        contact = self._next_contact(now)
        if contact is not None:  # back in line until the agent decides
            state = self._states[contact.id]
            heapq.heappush(self._ready, (now, state.order, contact.id))
        return contact

    def dial_preview(self, contact_id: str, now: float) -> Effect | None:
        """Preview mode: the agent chose to dial ``contact_id``; checked like any other dial."""
        state = self._states.get(contact_id)
        if state is None or state.done is not None:
            return None
        reason = self._refusal(state, now)
        if reason is not None:
            self._audit(now, state.contact, False, reason)
            return None
        return self._dial(state.contact, now)

    def _refusal(self, state: _ContactState, now: float) -> str | None:
        """Why ``state``'s contact may not be dialled now (None: it may)."""
        contact = state.contact
        spec = self.spec
        if contact.phone in self._dnc or normalize_phone(contact.phone) in self._dnc:
            return "on the do-not-call list"
        if not window_ever_opens(spec.calling_window):
            return "the calling window never opens"
        zone = contact.time_zone
        if not self._window_open(zone, now):
            return f"outside the calling window in {zone}"
        if state.per_day.get(local_day(now, zone), 0) >= spec.max_attempts_per_day:
            return f"frequency cap of {spec.max_attempts_per_day} attempts a day reached"
        if state.next_at > now:
            return "retry delay not over"
        return None

    def _look_again(self, state: _ContactState, reason: str, now: float) -> float:
        """When to look at a contact refused for a reason that may end (not a final one).

        A refusal for a reason of the clock lasts at least until the calling window's next
        opening or the next local midnight; the rest (and a day the zone's UTC offset
        changes) are looked at again every :data:`RECHECK_SECONDS`.
        """
        zone = state.contact.time_zone
        until = -math.inf
        if reason.startswith("outside the calling window"):
            until = next_local_time(now, zone, self.spec.calling_window.start)
        elif reason.startswith("frequency cap"):
            until = next_local_time(now, zone, "00:00")
        # ``until`` is the wall time less a second (see next_local_time): look again at the
        # wall time itself, rather than a second early only to be refused once more
        later = now + RECHECK_SECONDS if until == -math.inf else max(now, until) + 1.0
        return max(state.next_at, later)

    def _window_open(self, zone: str, now: float) -> bool:
        """:func:`window_open` for the current spec, remembered per zone for one ``now``."""
        key = (now, self.spec)
        if self._open_key is None or self._open_key[0] != now or self._open_key[1] is not self.spec:
            self._open_key = key
            self._open.clear()
        known = self._open.get(zone)
        if known is None:
            known = self._open[zone] = window_open(self.spec.calling_window, zone, now)
        return known

    def _next_contact(self, now: float) -> Contact | None:
        """The first contact in line that every rule allows now, or None.

        A contact refused for a reason of the clock (its calling window is closed, its
        daily cap reached) is audited once and goes back in line for the moment that reason
        can end (the window's next opening, the next local midnight; every
        :data:`RECHECK_SECONDS` when the zone's UTC offset changes in between), so a long
        list is not re-checked and re-audited while nothing can change. A new spec puts
        those contacts back in line at once (see :attr:`spec`).
        """
        deferred: list[tuple[float, int, str]] = []
        found: Contact | None = None
        while self._ready and self._ready[0][0] <= now:
            _, order, contact_id = heapq.heappop(self._ready)
            state = self._states[contact_id]
            if state.done is not None:
                continue
            reason = self._refusal(state, now)
            if reason is None:
                found = state.contact
                break
            self._audit(now, state.contact, False, reason)
            if reason in _FINAL_REFUSALS:
                state.done = _FINAL_REFUSALS[reason]
                continue
            deferred.append((self._look_again(state, reason, now), order, contact_id))
        for item in deferred:
            heapq.heappush(self._ready, item)
        return found

    def _dial(self, contact: Contact, now: float) -> Dial:
        state = self._states[contact.id]
        state.attempts += 1
        day = local_day(now, contact.time_zone)
        state.per_day[day] = state.per_day.get(day, 0) + 1
        attempt_id = f"{self.name}.{contact.id}.{state.attempts}"
        self._attempts[attempt_id] = _Attempt(contact.id, now)
        self._in_flight[attempt_id] = None
        self._dialled += 1
        self._audit(now, contact, True, f"attempt {state.attempts}")
        caller = self.spec.caller_id
        return Dial(
            attempt_id=attempt_id,
            contact=contact,
            caller_id_number=caller.number,
            caller_id_name=caller.name,
            timeout_seconds=self.spec.pacing.ring_timeout_seconds,
            variables={
                "callmesh_campaign": self.name,
                "callmesh_attempt": attempt_id,
                "callmesh_contact": contact.id,
            },
        )

    def _audit(self, now: float, contact: Contact, dialled: bool, reason: str) -> None:
        self.audit.append(AuditEntry(now, contact.id, contact.phone, dialled, reason))

    # --- outcomes ------------------------------------------------------------------------------

    def on_outcome(self, attempt_id: str, outcome: Outcome, now: float) -> list[Effect]:
        """A placed call was answered, or failed; returns what to do with the call."""
        attempt = self._attempts.get(attempt_id)
        if attempt is None or attempt_id not in self._in_flight:
            return []
        self._in_flight.pop(attempt_id, None)
        self._add_result(attempt.placed_at, outcome is Outcome.HUMAN)
        self._latest = max(self._latest, now)
        self._resolved.append((now - attempt.placed_at, outcome is Outcome.HUMAN))
        self._cache = self._human_cache = None
        state = self._states[attempt.contact_id]
        spec = self.spec
        if outcome is Outcome.HUMAN:
            attempt.answered_at = now
            self._answer_delays.append(now - attempt.placed_at)
            self._cache = None
            self._meter.answered(now)
            if spec.mode is DialerMode.agentless:
                assert spec.agentless is not None  # guaranteed by the CRD rule
                state.done = "reached"
                return [
                    PlayAnnouncement(
                        attempt_id,
                        spec.agentless.message,
                        spec.agentless.transfer_digit,
                        spec.agentless.opt_out_digit,
                        spec.agentless.repeat,
                    )
                ]
            attempt.window_ends = now + spec.pacing.compliance_window_seconds
            heapq.heappush(self._windows, (attempt.window_ends, attempt_id))
            return [Connect(attempt_id, spec.queue, 0, dict(state.contact.attributes))]
        self._schedule_retry(state, outcome, now)
        if outcome is Outcome.MACHINE:
            machine = spec.answering_machine
            if machine.action is MachineAction.leave_message and machine.message is not None:
                return [LeaveMessage(attempt_id, machine.message)]
            return [HangupCall(attempt_id, "answering machine")]
        return []

    def _schedule_retry(self, state: _ContactState, outcome: Outcome, now: float) -> None:
        disposition = _RETRY_DISPOSITION[outcome]
        count = state.by_disposition.get(disposition, 0) + 1
        state.by_disposition[disposition] = count
        rule = next((r for r in self.spec.retries if r.disposition is disposition), None)
        if rule is None or count >= rule.max_attempts:
            state.done = "exhausted"
            return
        state.next_at = now + rule.delay_seconds
        heapq.heappush(self._ready, (state.next_at, state.order, state.contact.id))

    def on_agent_connected(self, attempt_id: str, now: float) -> None:
        """The answered call reached an agent (in time, or after it was counted abandoned)."""
        attempt = self._attempts.get(attempt_id)
        if attempt is None or attempt.answered_at is None:
            return
        attempt.connected = True
        self._states[attempt.contact_id].done = "reached"

    def on_digit(self, attempt_id: str, digit: str, now: float) -> list[Effect]:
        """Agentless: a key pressed during the announcement."""
        attempt = self._attempts.get(attempt_id)
        agentless = self.spec.agentless
        if attempt is None or agentless is None:
            return []
        state = self._states[attempt.contact_id]
        if digit == agentless.transfer_digit:
            attributes = {**state.contact.attributes, "campaign": self.name}
            return [Connect(attempt_id, self.spec.queue, 0, attributes)]
        if agentless.opt_out_digit is not None and digit == agentless.opt_out_digit:
            self._dnc.add(state.contact.phone)
            state.done = "opted-out"
            self._audit(now, state.contact, False, OPT_OUT_REASON)
            return [HangupCall(attempt_id, "opted out")]
        return []

    def _expire_windows(self, now: float) -> list[Effect]:
        effects: list[Effect] = []
        while self._windows and self._windows[0][0] <= now:
            _, attempt_id = heapq.heappop(self._windows)
            attempt = self._attempts[attempt_id]
            if attempt.connected:
                continue
            attempt.abandoned = True
            self._meter.abandoned(now)
            effects.append(SafeHarbour(attempt_id, self.spec.safe_harbour_message))
        return effects

    def abandon_by_day(self) -> dict[str, tuple[int, int]]:
        """(answered, abandoned) per local day in the campaign's zone (the last 31 days)."""
        return self._meter.by_day()

    def abandon_rate(self, now: float) -> float:
        """The period's abandonment rate (0..1)."""
        return self._meter.rate(now)

    def remaining(self) -> int:
        """Contacts not yet done (reached, exhausted, opted out or never callable)."""
        return sum(1 for s in self._states.values() if s.done is None)
