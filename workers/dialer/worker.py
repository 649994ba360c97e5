"""The dialer worker: campaigns paced by :mod:`callmesh.dialer`, dialled over inbound ESL.

One :class:`DialerWorker` runs every DialerCampaign of a tenant:

* a loop asks each running campaign how many calls to place (``Campaign.tick`` with the
  target queue's agents from an :class:`AgentFeed`, normally the router's ``WatchQueues``
  stream), wakes at each compliance deadline, and carries the effects out;
* ``Dial`` -> ``bgapi originate`` (:func:`~callmesh.workers.dialer.calls.originate_command`);
  its ``BACKGROUND_JOB`` gives the outcome (answer, busy, no answer, failure); an answered
  call runs answering-machine detection when the campaign asks for it (mod_amd's ``amd``,
  verdict in ``amd_result``) before the campaign decides;
* ``Connect`` moves the call into callcontrol's socket for the target queue; the
  ``CHANNEL_BRIDGE`` of that call is the agent connecting (``on_agent_connected``); no bridge
  within the compliance window: the campaign's ``SafeHarbour`` plays the message and hangs up;
* agentless: ``PlayAnnouncement`` runs ``play_and_get_digits`` on the parked call; the key
  goes to ``on_digit`` (transfer to the queue, or opt-out into the do-not-call list);
* every dial decision (dialled or refused, and why) and every outcome is appended to the
  audit log (JSON lines).

Nothing one call does (a refused command, a hangup mid-step) reaches another call or stops
the loop: each call's steps run in their own task and end in a logged outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from callmesh.workers.dialer.calls import (
    AMD_VARIABLE,
    DIAL_STRING,
    connect_transfer,
    message_transfer,
    originate_command,
    outcome_of_amd,
    outcome_of_cause,
    parse_originate_result,
    prompt_app,
)
from callmesh.workers.dialer.config import CampaignInput, DialerConfig
from callmesh.workers.esl.connection import InboundClient
from callmesh.workers.esl.errors import EslError
from callmesh.workers.esl.events import Event

from callmesh.api.dialercampaign import CampaignState, DialerMode
from callmesh.dialer.campaign import (
    AgentSnapshot,
    Campaign,
    Connect,
    Dial,
    Effect,
    HangupCall,
    LeaveMessage,
    Outcome,
    PlayAnnouncement,
    SafeHarbour,
)
from callmesh.dialer.journal import JournalRecord, decision_record, outcome_record, parse_record

__all__ = ["AgentFeed", "AuditLog", "DialerWorker", "StaticAgents"]

log = logging.getLogger("callmesh.workers.dialer")

DTMF_VARIABLE = "callmesh_dialer_digit"
"""Where ``play_and_get_digits`` leaves the agentless listener's key."""


class AgentFeed(Protocol):
    """The target queue's agents, as the pacer needs them."""

    def snapshot(self, queue: str, now: float) -> AgentSnapshot:
        """Free agents now and wrap-ups about to end, for ``queue``."""
        ...


@dataclass
class StaticAgents:
    """An :class:`AgentFeed` set by hand (a preview desk, a test, the CLI without a router)."""

    free: dict[str, int] = field(default_factory=dict)

    def snapshot(self, queue: str, now: float) -> AgentSnapshot:
        """``free[queue]`` agents, nobody about to be free."""
        return AgentSnapshot(free=self.free.get(queue, 0))


class AuditLog:
    """Append-only JSON lines: one record per dial decision and per call outcome.

    The records' shapes are :mod:`callmesh.dialer.journal`'s; :meth:`history` reads them
    back at start so the campaigns' caps and abandonment meters carry over a restart.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file: TextIO | None = None
        self.records: list[dict[str, Any]] = []
        """The records written by this process (the last 10,000), for status and tests."""

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` (and flush, so a crash loses nothing already decided)."""
        self.records.append(record)
        if len(self.records) > 10_000:
            del self.records[:1000]
        if self.path is None:
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        self._file.write(json.dumps(record, sort_keys=True) + "\n")
        self._file.flush()

    def history(self) -> tuple[list[JournalRecord], list[str]]:
        """Every record written so far, oldest first, and the lines that could not be read.

        From the file when there is one (earlier processes included), else from this
        process's records. A line cut short by a crash, or otherwise unreadable, is skipped
        and reported (``line N: why``); it never stops the worker.
        """
        records: list[JournalRecord] = []
        bad: list[str] = []
        if self.path is None:
            for record in self.records:
                records.append(parse_record(record))
            return records, bad
        if self._file is not None:
            self._file.flush()
        try:
            handle = self.path.open(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return records, bad
        with handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                    if not isinstance(data, dict):
                        raise ValueError("not a JSON object")
                    records.append(parse_record(data))
                except ValueError as exc:
                    bad.append(f"line {number}: {exc}")
        return records, bad

    def close(self) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass
class _Call:
    campaign: str
    attempt_id: str
    uuid: str
    answered: bool = False
    connected: bool = False
    done: bool = False


@dataclass
class _Running:
    name: str
    engine: Campaign
    source: CampaignInput
    audited: int = 0


class DialerWorker:
    """Runs a tenant's campaigns over one inbound ESL client; see the module docstring."""

    def __init__(
        self,
        config: DialerConfig,
        *,
        esl: InboundClient,
        agents: AgentFeed,
        callcontrol: str,
        trunk: str | None = None,
        audit: AuditLog | None = None,
        clock: Callable[[], float] = time.time,
        interval: float = 0.5,
        tts_engine: str = "flite",
        amd_timeout: float = 10.0,
        dial_string: str = DIAL_STRING,
    ) -> None:
        self.esl = esl
        self.agents = agents
        self.callcontrol = callcontrol
        self.audit = audit or AuditLog(None)
        self.clock = clock
        self.interval = interval
        self.tts_engine = tts_engine
        self.amd_timeout = amd_timeout
        self.dial_string = dial_string
        self._trunk_option = trunk
        self.config = config
        self.campaigns: dict[str, _Running] = {}
        self.calls: dict[str, _Call] = {}
        self._by_attempt: dict[str, _Call] = {}
        self._apps: dict[str, tuple[str, asyncio.Future[Event | None]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self.apply(config)

    # ------------------------------------------------------------------ config

    @property
    def trunk(self) -> str | None:
        """The gateway calls go out through: ``--trunk``, else the center's first trunk."""
        return self._trunk_option or (self.config.trunks[0] if self.config.trunks else None)

    def apply(self, config: DialerConfig) -> None:
        """Load ``config``: new campaigns start, removed ones stop dialling, a changed spec
        (running/paused, pacing) applies at once; a changed list restarts the campaign."""
        self.config = config
        for name in list(self.campaigns):
            if name not in config.campaigns:
                del self.campaigns[name]
        history: list[JournalRecord] | None = None
        for name, source in config.campaigns.items():
            running = self.campaigns.get(name)
            spec = source.resource.spec
            if (
                running is not None
                and running.source.contacts == source.contacts
                and running.source.do_not_call == source.do_not_call
            ):
                running.engine.spec = spec
                running.source = source
                continue
            engine = Campaign(
                name,
                spec,
                source.contacts,
                source.do_not_call,
                time_zone=config.time_zone,
            )
            if history is None:
                history = self._history()
            live = [c.attempt_id for c in self.calls.values() if c.campaign == name]
            summary = engine.replay(history, self.clock(), in_flight=live)
            if summary.decisions or summary.outcomes:
                log.info(
                    "campaign %s: rebuilt from the audit log: %d dial decisions, %d outcomes,"
                    " %d attempts without an outcome (held back), %d answered calls counted"
                    " abandoned for want of an agent record, %d opt-outs",
                    name,
                    summary.decisions,
                    summary.outcomes,
                    summary.unresolved,
                    summary.assumed_abandoned,
                    summary.opted_out,
                )
            self.campaigns[name] = _Running(name, engine, source)
        self._wake.set()

    def _history(self) -> list[JournalRecord]:
        records, bad = self.audit.history()
        if bad:
            log.warning(
                "audit log %s: %d unreadable line(s) skipped (%s)",
                self.audit.path,
                len(bad),
                "; ".join(bad[:5]),
            )
        return records

    def wake(self) -> None:
        """Run a pacing step now (new agent figures, a call resolved)."""
        self._wake.set()

    def status(self) -> dict[str, dict[str, Any]]:
        """Per campaign: what its resource's status should say (counts, rate, problems)."""
        now = self.clock()
        out: dict[str, dict[str, Any]] = {}
        for name, running in self.campaigns.items():
            engine, source = running.engine, running.source
            stats = engine.stats(now)
            problems = [*source.problems, *engine.problems()]
            if self.trunk is None:
                problems.insert(0, "the ContactCenter has no trunk: add spec.trunks or --trunk")
            dialling = (
                engine.spec.state is CampaignState.running
                and not source.blocked
                and stats.window_opens
                and stats.contacts > 0
                and self.trunk is not None
            )
            out[name] = {
                "state": engine.spec.state.value,
                "dialling": dialling,
                "contacts": stats.contacts,
                "rejectedRows": stats.rejected_rows,
                "dialled": stats.dialled,
                "answered": stats.answered,
                "abandoned": stats.abandoned,
                "abandonPercent": round(stats.abandon_rate * 100, 3),
                "reached": stats.reached,
                "remaining": engine.remaining(),
                "inFlight": stats.in_flight,
                "windowOpens": stats.window_opens,
                "problems": problems,
            }
        return out

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Subscribe to the call events the dialer follows and start the pacing loop."""
        self.esl.on("CHANNEL_BRIDGE", self._on_bridge)
        self.esl.on("CHANNEL_EXECUTE_COMPLETE", self._on_execute_complete)
        self.esl.on("CHANNEL_HANGUP_COMPLETE", self._on_hangup)
        await self.esl.subscribe(
            "CHANNEL_BRIDGE", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HANGUP_COMPLETE"
        )
        self._loop_task = asyncio.create_task(self._loop(), name="dialer-loop")

    async def stop(self, grace: float = 5.0) -> None:
        """Stop placing calls; give calls in progress ``grace`` seconds to settle."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.audit.close()

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ the loop

    async def _loop(self) -> None:
        while True:
            try:
                self.pace()
            except Exception:
                log.exception("dialer pacing step failed; trying again")
            now = self.clock()
            deadlines = [
                d for r in self.campaigns.values() if (d := r.engine.next_deadline()) is not None
            ]
            delay = min([self.interval, *(d - now for d in deadlines)])
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, delay)):
                    await self._wake.wait()

    def pace(self) -> None:
        """One pacing step for every campaign: expire windows, place the calls wanted."""
        now = self.clock()
        for running in self.campaigns.values():
            engine = running.engine
            allowed = (
                not running.source.blocked
                and self.trunk is not None
                and esl_up(self.esl)
                and engine.spec.mode is not DialerMode.preview
            )
            agents = self.agents.snapshot(engine.spec.queue, now)
            effects = engine.tick(now, agents, wanted=None if allowed else 0)
            self._flush_audit(running)
            self._carry(running.name, effects)

    def _flush_audit(self, running: _Running) -> None:
        entries = running.engine.audit
        for entry in entries[running.audited :]:
            self.audit.write(decision_record(running.name, entry))
        running.audited = len(entries)

    def _outcome_record(self, call: _Call, what: str, detail: str = "") -> None:
        self.audit.write(
            outcome_record(call.campaign, call.attempt_id, call.uuid, what, detail, self.clock())
        )

    # ------------------------------------------------------------------ effects

    def _carry(self, campaign: str, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Dial):
                call = _Call(campaign, effect.attempt_id, str(uuidlib.uuid4()))
                self.calls[call.uuid] = call
                self._by_attempt[call.attempt_id] = call
                self._spawn(self._dial(call, effect))
                continue
            call_or_none = self._by_attempt.get(effect.attempt_id)
            if call_or_none is None:
                continue
            self._spawn(self._step(call_or_none, effect))

    async def _dial(self, call: _Call, dial: Dial) -> None:
        trunk = self.trunk or ""
        try:
            command = originate_command(
                dial, trunk, call_uuid=call.uuid, dial_string=self.dial_string
            )
            job = await self.esl.bgapi(command)
            body = await job.result(check=False)
        except (EslError, ValueError, OSError) as exc:
            body = f"-ERR DESTINATION_OUT_OF_ORDER {exc}"
        uuid, cause = parse_originate_result(body)
        if uuid is None:
            outcome = outcome_of_cause(cause or "")
            self._outcome_record(call, outcome.value, cause or "")
            self._forget(call)
            self._decide(call, outcome)
            return
        call.answered = True
        outcome = Outcome.HUMAN
        running = self.campaigns.get(call.campaign)
        if running is not None and running.engine.spec.answering_machine.detect:
            verdict = await self._run_app(call.uuid, "amd", "", self.amd_timeout)
            if verdict is None:  # hung up during detection: nobody to talk to
                self._outcome_record(call, "hangup", "during answering-machine detection")
                self._decide(call, Outcome.NO_ANSWER)
                return
            outcome = outcome_of_amd(verdict.variable(AMD_VARIABLE))
        self._outcome_record(call, outcome.value)
        self._decide(call, outcome)

    def _decide(self, call: _Call, outcome: Outcome) -> None:
        running = self.campaigns.get(call.campaign)
        if running is None:
            return
        effects = running.engine.on_outcome(call.attempt_id, outcome, self.clock())
        self._flush_audit(running)
        self._carry(call.campaign, effects)
        self._wake.set()

    async def _step(self, call: _Call, effect: Effect) -> None:
        try:
            if isinstance(effect, Connect):
                self._outcome_record(call, "queued", effect.queue)
                await self.esl.api(
                    connect_transfer(call.uuid, effect.queue, self.callcontrol, call.attempt_id)
                )
            elif isinstance(effect, SafeHarbour):
                self._outcome_record(call, "abandoned", "no agent within the compliance window")
                await self.esl.api(
                    message_transfer(call.uuid, effect.prompt, tts_engine=self.tts_engine)
                )
            elif isinstance(effect, LeaveMessage):
                self._outcome_record(call, "message-left")
                await self.esl.api(
                    message_transfer(call.uuid, effect.prompt, tts_engine=self.tts_engine)
                )
            elif isinstance(effect, HangupCall):
                self._outcome_record(call, "hangup", effect.reason)
                await self.esl.api(f"uuid_kill {call.uuid} NORMAL_CLEARING", check=False)
            elif isinstance(effect, PlayAnnouncement):
                await self._announce(call, effect)
        except EslError as exc:
            log.warning("call %s: %s failed: %s", call.uuid, type(effect).__name__, exc)
            self._outcome_record(call, "failed", f"{type(effect).__name__}: {exc}")

    async def _announce(self, call: _Call, play: PlayAnnouncement) -> None:
        running = self.campaigns.get(call.campaign)
        if running is None:
            return
        app = prompt_app(play.prompt, self.tts_engine)
        file = (
            app.removeprefix("playback:") if app.startswith("playback:") else "silence_stream://250"
        )
        if not app.startswith("playback:"):  # TTS first; the key is collected after it
            await self._run_app(call.uuid, "speak", app.removeprefix("speak:"), 120.0)
        keys = "".join(
            "\\" + k if k in "*#" else k for k in play.transfer_digit + (play.opt_out_digit or "")
        )
        arg = f"1 1 {play.repeat} 5000 # {file} silence_stream://250 {DTMF_VARIABLE} [{keys}]"
        done = await self._run_app(call.uuid, "play_and_get_digits", arg, 60.0 * play.repeat)
        digit = (done.variable(DTMF_VARIABLE) or "") if done is not None else ""
        if done is None:
            self._outcome_record(call, "hangup", "during the announcement")
            return
        self._outcome_record(call, "announced", f"key {digit or 'none'}")
        effects = running.engine.on_digit(call.attempt_id, digit, self.clock()) if digit else []
        self._flush_audit(running)
        if not effects:
            effects = [HangupCall(call.attempt_id, "no transfer key pressed")]
        for effect in effects:
            await self._step(call, effect)

    async def _run_app(self, uuid: str, app: str, arg: str, timeout: float) -> Event | None:
        """Execute ``app`` on the call and wait for its CHANNEL_EXECUTE_COMPLETE (None on
        hangup or timeout)."""
        event_uuid = str(uuidlib.uuid4())
        future: asyncio.Future[Event | None] = asyncio.get_running_loop().create_future()
        self._apps[event_uuid] = (uuid, future)
        headers = {"execute-app-name": app, "Event-UUID": event_uuid}
        if arg:
            headers["execute-app-arg"] = arg
        try:
            await self.esl.sendmsg(uuid, "execute", headers)
            async with asyncio.timeout(timeout):
                return await future
        except (EslError, TimeoutError):
            return None
        finally:
            self._apps.pop(event_uuid, None)

    def _forget(self, call: _Call) -> None:
        call.done = True
        self.calls.pop(call.uuid, None)
        self._by_attempt.pop(call.attempt_id, None)

    # ------------------------------------------------------------------ events

    async def _on_bridge(self, event: Event) -> None:
        ids = {event.get("Bridge-A-Unique-ID"), event.get("Bridge-B-Unique-ID"), event.unique_id}
        for uuid in ids:
            call = self.calls.get(uuid or "")
            if call is None or call.connected:
                continue
            call.connected = True
            running = self.campaigns.get(call.campaign)
            if running is not None:
                running.engine.on_agent_connected(call.attempt_id, self.clock())
            self._outcome_record(call, "connected", "agent bridged")

    async def _on_execute_complete(self, event: Event) -> None:
        waiting = self._apps.get(event.application_uuid or "")
        if waiting is not None and not waiting[1].done():
            waiting[1].set_result(event)

    async def _on_hangup(self, event: Event) -> None:
        uuid = event.unique_id or ""
        for channel, future in list(self._apps.values()):
            if channel == uuid and not future.done():
                future.set_result(None)  # the application will not complete on a dead call
        call = self.calls.get(uuid)
        if call is None:
            return
        if call.answered:
            self._outcome_record(call, "ended", event.get("Hangup-Cause") or "")
            self._forget(call)


def esl_up(esl: InboundClient) -> bool:
    """Whether the ESL connection is up (no dialling while FreeSWITCH is unreachable)."""
    return esl.connected
