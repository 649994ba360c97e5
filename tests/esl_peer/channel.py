"""A FreeSWITCH channel model for the test peer: the events a real call emits, in FS's order.

Header layout, event order and ``Event-Calling-*`` values are taken from the FreeSWITCH
1.10.12 captures in ``../shared/esl`` (the comparison tests in
``tests/integration/test_esl_peer_vs_captures.py`` hold the peer to them):

* 13 core headers (``Event-Name`` ... ``Event-Sequence``);
* an event-specific prefix (``Hangup-Cause`` on CHANNEL_HANGUP_COMPLETE, ``Bridge-A/B`` ...);
* the channel's basic data (``Channel-State`` ... ``Answer-State``, ``Hangup-Cause`` once hung
  up, the six codec headers once media is up), the ``Caller-*`` profile, ``Other-Type`` and
  ``Other-Leg-*`` while bridged, then ``variable_*`` (not on CHANNEL_STATE, DTMF, CODEC);
* an event-specific suffix (``Application*``, ``Playback-*``, ``DTMF-*``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid as uuidlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from callmesh.workers.esl.events import Event
from callmesh.workers.esl.quoting import expand_variables, separate_string

Pairs = list[tuple[str, str]]

# Event-Calling-File / -Function / -Line-Number, as FreeSWITCH 1.10.12 reports them.
CALLING: dict[str, tuple[str, str, str]] = {
    "API": ("switch_loadable_module.c", "switch_api_execute", "2954"),
    "BACKGROUND_JOB": ("mod_event_socket.c", "api_exec", "1572"),
    "CHANNEL_ANSWER": ("switch_channel.c", "switch_channel_perform_mark_answered", "3846"),
    "CHANNEL_BRIDGE": ("switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", "1689"),
    "CHANNEL_CALLSTATE": ("switch_channel.c", "switch_channel_perform_set_callstate", "301"),
    "CHANNEL_CREATE": ("switch_core_state_machine.c", "switch_core_session_run", "626"),
    "CHANNEL_DATA": ("mod_event_socket.c", "parse_command", "2021"),
    "CHANNEL_DESTROY": ("switch_core_session.c", "switch_core_session_perform_destroy", "1584"),
    "CHANNEL_EXECUTE": ("switch_core_session.c", "switch_core_session_exec", "2944"),
    "CHANNEL_EXECUTE_COMPLETE": ("switch_core_session.c", "switch_core_session_exec", "2967"),
    "CHANNEL_HANGUP": ("switch_channel.c", "switch_channel_perform_hangup", "3445"),
    "CHANNEL_HANGUP_COMPLETE": (
        "switch_core_state_machine.c",
        "switch_core_session_reporting_state",
        "943",
    ),
    "CHANNEL_ORIGINATE": ("switch_core_state_machine.c", "switch_core_session_run", "632"),
    "CHANNEL_OUTGOING": ("switch_core_session.c", "switch_core_session_outgoing_channel", "768"),
    "CHANNEL_PARK": ("switch_ivr.c", "switch_ivr_park", "1002"),
    "CHANNEL_PROGRESS": (
        "switch_channel.c",
        "switch_channel_perform_mark_ring_ready_value",
        "3505",
    ),
    "CHANNEL_PROGRESS_MEDIA": (
        "switch_channel.c",
        "switch_channel_perform_mark_pre_answered",
        "3560",
    ),
    "CHANNEL_STATE": ("switch_channel.c", "switch_channel_perform_set_running_state", "2408"),
    "CHANNEL_UNBRIDGE": ("switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", "1879"),
    "CHANNEL_UNPARK": ("switch_ivr.c", "switch_ivr_park", "1213"),
    "DTMF": ("switch_channel.c", "switch_channel_dequeue_dtmf", "677"),
    "PLAYBACK_START": ("switch_ivr_play_say.c", "switch_ivr_play_file", "1646"),
    "PLAYBACK_STOP": ("switch_ivr_play_say.c", "switch_ivr_play_file", "2020"),
}
STATE_NUMBERS = {
    "CS_NEW": 0, "CS_INIT": 1, "CS_ROUTING": 2, "CS_SOFT_EXECUTE": 3, "CS_EXECUTE": 4,
    "CS_EXCHANGE_MEDIA": 5, "CS_PARK": 6, "CS_CONSUME_MEDIA": 7, "CS_HIBERNATE": 8,
    "CS_RESET": 9, "CS_HANGUP": 10, "CS_REPORTING": 11, "CS_DESTROY": 12, "CS_NONE": 13,
}  # fmt: skip
CALL_STATE_NUMBERS = {
    "DOWN": 0, "DIALING": 1, "RINGING": 2, "EARLY": 3, "ACTIVE": 4, "HELD": 5,
    "RING_WAIT": 6, "HANGUP": 7, "UNHELD": 8,
}  # fmt: skip
CODEC_CALLING = (
    ("switch_core_codec.c", "switch_core_session_set_real_read_codec", "168"),
    ("switch_core_codec.c", "switch_core_session_set_write_codec", "450"),
)
NO_VARIABLES = frozenset(
    {"CHANNEL_STATE", "CHANNEL_CALLSTATE", "DTMF", "CODEC", "CHANNEL_OUTGOING"}
)
PROFILE_FIELDS = (
    "Direction", "Logical-Direction", "Username", "Dialplan", "Caller-ID-Name",
    "Caller-ID-Number", "Orig-Caller-ID-Name", "Orig-Caller-ID-Number", "Callee-ID-Name",
    "Callee-ID-Number", "Network-Addr", "ANI", "Destination-Number", "Unique-ID", "Source",
    "Transfer-Source", "Context", "Channel-Name", "Profile-Index",
)  # fmt: skip
"""Caller-profile fields in FreeSWITCH's order; empty ones are left out, as FS does."""
TIME_FIELDS = (
    "Profile-Created-Time", "Channel-Created-Time", "Channel-Answered-Time",
    "Channel-Progress-Time", "Channel-Progress-Media-Time", "Channel-Hangup-Time",
    "Channel-Transfer-Time", "Channel-Resurrect-Time", "Channel-Bridged-Time",
    "Channel-Last-Hold", "Channel-Hold-Accum",
)  # fmt: skip
CODEC: Pairs = [
    ("Channel-Read-Codec-Name", "PCMU"), ("Channel-Read-Codec-Rate", "8000"),
    ("Channel-Read-Codec-Bit-Rate", "64000"), ("Channel-Write-Codec-Name", "PCMU"),
    ("Channel-Write-Codec-Rate", "8000"), ("Channel-Write-Codec-Bit-Rate", "64000"),
]  # fmt: skip


class Core:
    """What every event shares: the switch's identity, the clock and the sequence counter.

    ``fire`` is set by the peer to fan events out to its ESL listeners.
    """

    def __init__(self, *, hostname: str = "callmesh-peer", time_scale: float = 0.0) -> None:
        self.core_uuid = str(uuidlib.uuid4())
        self.hostname = hostname
        self.sequence = 1000
        self.time_scale = time_scale
        """Media time (prompts, digit timeouts) is multiplied by this; 0 makes it instant."""
        self.fire: Callable[[Event], None] = lambda event: None
        self.record = True
        """Keep every event a channel fires in :attr:`Channel.events` (the peer may turn
        it off for benchmarks)."""
        self.wanted: Callable[[str, str | None], bool] = lambda name, uuid: True
        """Whether anyone may hear event ``name`` of channel ``uuid`` (set by the peer)."""
        self.expand: Callable[[str], Awaitable[str]] = _no_expansion
        self.apps: dict[str, AppRunner] = dict(APPS)
        """Dialplan applications by name; the peer adds ``bridge``, tests may add more."""
        """Expands ``${...}`` in application data (the peer runs ``${api(args)}`` calls)."""

    @staticmethod
    def now_us() -> int:
        """Wall-clock microseconds, as in Event-Date-Timestamp."""
        return time.time_ns() // 1000

    def core_headers(self, name: str, calling: tuple[str, str, str] | None = None) -> Pairs:
        """The 13 headers every FreeSWITCH event starts with."""
        self.sequence += 1
        now = self.now_us()
        local = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now / 1e6))
        gmt = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now / 1e6))
        default = ("switch_event.c", "switch_event_fire", "0")
        file, func, line = calling or CALLING.get(name, default)
        return [
            ("Event-Name", name),
            ("Core-UUID", self.core_uuid),
            ("FreeSWITCH-Hostname", self.hostname),
            ("FreeSWITCH-Switchname", self.hostname),
            ("FreeSWITCH-IPv4", "127.0.0.1"),
            ("FreeSWITCH-IPv6", "::1"),
            ("Event-Date-Local", local),
            ("Event-Date-GMT", gmt),
            ("Event-Date-Timestamp", str(now)),
            ("Event-Calling-File", file),
            ("Event-Calling-Function", func),
            ("Event-Calling-Line-Number", line),
            ("Event-Sequence", str(self.sequence)),
        ]

    async def media_wait(self, seconds: float) -> None:
        """Let (scaled) media time pass; always yields to the event loop at least once."""
        await asyncio.sleep(seconds * self.time_scale)


async def _no_expansion(text: str) -> str:
    return text


AppHook = Callable[["Channel", str], Awaitable[None] | None]


@dataclass
class Execution:
    """One queued ``execute`` of a dialplan application."""

    app: str
    arg: str
    app_uuid: str
    done: asyncio.Future[str] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Hangup(Exception):
    """Raised inside an application when the channel hangs up under it."""


class Channel:
    """One call leg: state, variables, an application queue and the events they produce."""

    def __init__(
        self,
        core: Core,
        *,
        uuid: str | None = None,
        direction: str = "inbound",
        caller_id_name: str = "caller",
        caller_id_number: str = "1000",
        destination: str = "9200",
        name: str | None = None,
        context: str = "public",
    ) -> None:
        self.core = core
        self.uuid = uuid or str(uuidlib.uuid4())
        self.direction = direction
        self.name = name or f"sofia/external/{caller_id_number}@127.0.0.1:5060"
        self.state = "CS_NEW"
        self.call_state = "DOWN"
        self.answer_state = "ringing"
        self.hangup_cause: str | None = None
        self.media = False
        created = core.now_us()
        self.times = {"created": created, "answered": 0, "progress": 0, "progress_media": 0,
                      "hangup": 0, "bridged": 0}  # fmt: skip
        if direction == "inbound":
            self.profile = {
                "Direction": direction, "Logical-Direction": direction,
                "Username": caller_id_number, "Dialplan": "XML",
                "Caller-ID-Name": caller_id_name, "Caller-ID-Number": caller_id_number,
                "Orig-Caller-ID-Name": caller_id_name, "Orig-Caller-ID-Number": caller_id_number,
                "Network-Addr": "127.0.0.1", "ANI": caller_id_number,
                "Destination-Number": destination, "Unique-ID": self.uuid, "Source": "mod_sofia",
                "Context": context, "Channel-Name": self.name, "Profile-Index": "1",
            }  # fmt: skip
        else:  # a leg created by originate (capture 04)
            self.profile = {
                "Direction": direction, "Logical-Direction": direction,
                "Caller-ID-Number": caller_id_number, "Orig-Caller-ID-Number": caller_id_number,
                "Callee-ID-Name": "Outbound Call", "Callee-ID-Number": destination,
                "ANI": caller_id_number, "Destination-Number": destination,
                "Unique-ID": self.uuid, "Source": "src/switch_ivr_originate.c",
                "Context": "default", "Channel-Name": self.name, "Profile-Index": "1",
            }  # fmt: skip
        self.state_number: int | None = None
        """Channel-State-Number when it differs from Channel-State (FS reports the pending
        state: 1 on CHANNEL_OUTGOING, 8 on a bridge's UNPARK, 12 on CHANNEL_DESTROY)."""
        self.variables: dict[str, str] = {
            "direction": direction,
            "uuid": self.uuid,
            "session_id": "1",
            "channel_name": self.name,
            "sip_from_user": caller_id_number,
            "sip_to_user": destination,
            "call_uuid": self.uuid,
        }
        self.other: Channel | None = None
        self.other_type = ""
        self.dtmf: deque[str] = deque()
        self._dtmf_arrived = asyncio.Event()
        self.hungup = asyncio.Event()
        self.break_media = asyncio.Event()
        """Set by ``uuid_break``: the playing prompt stops (Playback-Status ``break``)."""
        self.recording: str | None = None
        self.reported = False
        self.destroyed = False
        self.queue: asyncio.Queue[Execution] = asyncio.Queue()
        self.current: Execution | None = None
        self.app_hooks: dict[str, list[AppHook]] = {}
        self.last_response = "_none_"
        self.digits_dialed = ""
        self._worker: asyncio.Task[None] | None = None
        self.events: list[Event] = []
        self._waiters: dict[str, list[asyncio.Future[Event]]] = {}
        self.hook_tasks: set[asyncio.Future[None]] = set()
        """Every event this channel fired, for assertions."""

    # ------------------------------------------------------------ events

    def basic(self) -> Pairs:
        """Basic channel data (switch_channel_event_set_basic_data)."""
        pairs: Pairs = [
            ("Channel-State", self.state),
            ("Channel-Call-State", self.call_state),
            (
                "Channel-State-Number",
                str(STATE_NUMBERS[self.state] if self.state_number is None else self.state_number),
            ),
            ("Channel-Name", self.name),
            ("Unique-ID", self.uuid),
            ("Call-Direction", self.direction),
            ("Presence-Call-Direction", self.direction),
            ("Channel-HIT-Dialplan", "true"),
            ("Channel-Call-UUID", self.uuid),
            ("Answer-State", self.answer_state),
        ]
        if self.hangup_cause:
            pairs.append(("Hangup-Cause", self.hangup_cause))
        if self.media:
            pairs += CODEC
        return pairs

    def caller_profile(self, prefix: str = "Caller", *, other: bool = False) -> Pairs:
        """The caller profile headers (``Caller-*``; ``Channel-*`` in CHANNEL_DATA;
        ``Other-Leg-*`` seen from the bridged partner, without Profile-Index or
        Transfer-Source)."""
        times = {
            "Profile-Created-Time": self.times["created"],
            "Channel-Created-Time": self.times["created"],
            "Channel-Answered-Time": self.times["answered"],
            "Channel-Progress-Time": self.times["progress"],
            "Channel-Progress-Media-Time": self.times["progress_media"],
            "Channel-Hangup-Time": self.times["hangup"],
            "Channel-Transfer-Time": 0,
            "Channel-Resurrect-Time": 0,
            "Channel-Bridged-Time": self.times["bridged"],
            "Channel-Last-Hold": 0,
            "Channel-Hold-Accum": 0,
        }
        out: Pairs = []
        for key in PROFILE_FIELDS:
            if other and key in ("Profile-Index", "Transfer-Source"):
                continue
            value = self.profile.get(key)
            if value:
                out.append((f"{prefix}-{key}", value))
        for key in TIME_FIELDS:
            out.append((f"{prefix}-{key}", str(times[key])))
        out += [(f"{prefix}-Screen-Bit", "true"), (f"{prefix}-Privacy-Hide-Name", "false"),
                (f"{prefix}-Privacy-Hide-Number", "false")]  # fmt: skip
        return out

    def other_leg(self) -> Pairs:
        """``Other-Type`` and ``Other-Leg-*`` while bridged."""
        if self.other is None:
            return []
        pairs = self.other.caller_profile("Other-Leg", other=True)
        if self.other_type == "originator":  # as recorded: the originator sees 0 here
            pairs = [(k, "0" if k == "Other-Leg-Profile-Created-Time" else v) for k, v in pairs]
        return [("Other-Type", self.other_type), *pairs]

    def event(
        self,
        name: str,
        *,
        prefix: Pairs | None = None,
        suffix: Pairs | None = None,
        caller: bool = True,
        variables: bool | None = None,
        calling: tuple[str, str, str] | None = None,
    ) -> Event:
        """Build (not fire) a channel event laid out as FreeSWITCH does."""
        pairs = self.core.core_headers(name, calling) + (prefix or []) + self.basic()
        if caller:
            pairs += self.caller_profile() + self.other_leg()
        if variables if variables is not None else name not in NO_VARIABLES:
            pairs += [(f"variable_{k}", v) for k, v in self.variables.items()]
        pairs += suffix or []
        return Event(pairs)

    def fire(self, name: str, **kwargs: object) -> Event | None:
        """Build and fire a channel event; None when nobody could hear it (not recording,
        no connection subscribed, no waiter): then it is not built, but it uses up its
        ``Event-Sequence`` number, as in FreeSWITCH."""
        core = self.core
        if not core.record and name not in self._waiters and not core.wanted(name, self.uuid):
            core.sequence += 1
            return None
        event = self.event(name, **kwargs)  # type: ignore[arg-type]
        if core.record:
            self.events.append(event)
        self.core.fire(event)
        for waiter in self._waiters.pop(name, []):
            if not waiter.done():
                waiter.set_result(event)
        return event

    async def wait_event(self, name: str) -> Event:
        """Wait for the next event ``name`` this channel fires (for scripted callers)."""
        waiter: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(name, []).append(waiter)
        return await waiter

    def channel_data(self) -> Pairs:
        """CHANNEL_DATA headers, as in the outbound ``connect`` reply."""
        pairs = self.core.core_headers("CHANNEL_DATA") + self.caller_profile("Channel")
        pairs += self.basic() + self.caller_profile()
        pairs += [(f"variable_{k}", v) for k, v in self.variables.items()]
        return pairs

    # ------------------------------------------------------------ state changes

    def set_state(self, state: str) -> None:
        """Enter ``state`` and fire CHANNEL_STATE (without variables, as FS does)."""
        self.state = state
        self.state_number = None
        self.fire("CHANNEL_STATE")

    def set_call_state(self, call_state: str) -> None:
        """Change the call state and fire CHANNEL_CALLSTATE (old state and new number first)."""
        old, self.call_state = self.call_state, call_state
        self.fire(
            "CHANNEL_CALLSTATE",
            prefix=[("Original-Channel-Call-State", old),
                    ("Channel-Call-State-Number", str(CALL_STATE_NUMBERS[call_state]))],
        )  # fmt: skip

    def arrive(self) -> None:
        """An inbound call enters the dialplan (capture 02a): CS_NEW (no profile yet), CS_INIT,
        CHANNEL_CREATE, RINGING, CS_ROUTING, CS_EXECUTE."""
        self.state = "CS_NEW"
        self.fire("CHANNEL_STATE", caller=False)
        self.set_state("CS_INIT")
        self.state_number = STATE_NUMBERS["CS_ROUTING"]
        self.fire("CHANNEL_CREATE")
        self.state = "CS_ROUTING"
        self.set_call_state("RINGING")
        self.set_state("CS_ROUTING")
        self.set_state("CS_EXECUTE")

    def ring_ready(self) -> None:
        """CHANNEL_PROGRESS (180 Ringing)."""
        self.times["progress"] = self.core.now_us()
        self.fire("CHANNEL_PROGRESS")
        if self.call_state != "RINGING":
            self.set_call_state("RINGING")

    def start_media(self) -> None:
        """Codecs negotiated: the two CODEC events, then the codec headers on every event."""
        if self.media:
            return
        self.media = True
        self.fire("CODEC", calling=CODEC_CALLING[0], suffix=[
            ("channel-read-codec-name", "PCMU"), ("channel-read-codec-rate", "8000"),
            ("channel-read-codec-bit-rate", "64000")])  # fmt: skip
        self.fire("CODEC", calling=CODEC_CALLING[1], suffix=[
            ("Channel-Write-Codec-Name", "PCMU"), ("Channel-Write-Codec-Rate", "8000"),
            ("Channel-Write-codec-bit-rate", "64000")])  # fmt: skip

    def pre_answer(self) -> None:
        """Early media: CODEC events, CHANNEL_PROGRESS_MEDIA, call state EARLY."""
        if self.answer_state != "ringing":
            return
        self.start_media()
        self.answer_state = "early"
        self.times["progress_media"] = self.core.now_us()
        self.fire("CHANNEL_PROGRESS_MEDIA")
        self.set_call_state("EARLY")

    def answer(self, *, early_media: bool = True) -> None:
        """CHANNEL_ANSWER, after CHANNEL_PROGRESS_MEDIA when we answer an inbound call (03a);
        a dialled leg answered with SDP (04) sets up media without PROGRESS_MEDIA."""
        if self.answer_state == "answered":
            return
        if early_media:
            self.pre_answer()
        else:
            self.start_media()
        self.answer_state = "answered"
        self.times["answered"] = self.core.now_us()
        self.variables["endpoint_disposition"] = "ANSWER"
        self.fire("CHANNEL_ANSWER")
        self.set_call_state("ACTIVE")

    def caller_dtmf(self, digits: str, duration: int = 2240) -> None:
        """The caller presses ``digits`` (RFC 2833): one DTMF event each, buffered for apps."""
        for digit in digits:
            if self.hungup.is_set():
                return
            self.fire(
                "DTMF",
                suffix=[("DTMF-Digit", digit), ("DTMF-Duration", str(duration)),
                        ("DTMF-Source", "RTP")],
            )  # fmt: skip
            self.digits_dialed += digit
            self.dtmf.append(digit)
        self._dtmf_arrived.set()

    def hangup(self, cause: str = "NORMAL_CLEARING") -> bool:
        """Hang up (caller BYE, ``uuid_kill`` or the hangup app): CHANNEL_HANGUP now; the rest
        (CHANNEL_STATE, CHANNEL_HANGUP_COMPLETE) comes from :meth:`finish`. False if already."""
        if self.hungup.is_set():
            return False
        self.hangup_cause = cause
        self.answer_state = "hangup"
        self.times["hangup"] = self.core.now_us()
        self.variables["hangup_cause"] = cause
        self.fire("CHANNEL_HANGUP")
        if self.recording is not None:
            self.fire("RECORD_STOP", suffix=[("Record-File-Path", self.recording)])
        self.hungup.set()
        self._dtmf_arrived.set()
        return True

    def report(self) -> None:
        """CS_HANGUP, CS_REPORTING and CHANNEL_HANGUP_COMPLETE (the CDR-bearing event)."""
        if self.reported:
            return
        self.reported = True
        self.set_state("CS_HANGUP")
        self.set_call_state("HANGUP")
        self.set_state("CS_REPORTING")
        self.variables["digits_dialed"] = self.digits_dialed or "none"
        self.fire("CHANNEL_HANGUP_COMPLETE", prefix=[("Hangup-Cause", self.hangup_cause or "")])

    def destroy(self) -> None:
        """CS_DESTROY and CHANNEL_DESTROY; the channel is gone."""
        if self.destroyed:
            return
        self.report()
        self.state_number = STATE_NUMBERS["CS_DESTROY"]
        self.fire("CHANNEL_DESTROY")
        self.state_number = None
        self.set_state("CS_DESTROY")
        self.destroyed = True

    def finish(self) -> None:
        """Everything after CHANNEL_HANGUP: :meth:`report` then :meth:`destroy`."""
        self.report()
        self.destroy()

    # ------------------------------------------------------------ applications

    def when_app(self, app: str, hook: AppHook) -> None:
        """Run ``hook(channel, arg)`` when ``app`` starts (a caller's reaction: DTMF, BYE)."""
        self.app_hooks.setdefault(app, []).append(hook)

    def enqueue(self, app: str, arg: str, app_uuid: str | None = None) -> Execution:
        """Queue an application (sendmsg execute); the channel's worker runs it in order."""
        execution = Execution(app, arg, app_uuid or str(uuidlib.uuid4()))
        self.queue.put_nowait(execution)
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work())
        return execution

    async def _work(self) -> None:
        while not self.hungup.is_set():
            execution = await self.queue.get()
            if self.hungup.is_set():
                execution.done.set_result("")
                break
            response = await self.run(execution)
            execution.done.set_result(response)

    async def stop(self) -> None:
        """Stop the application worker and any scripted-caller hooks (peer shutdown)."""
        for task in self.hook_tasks:
            task.cancel()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    async def run(self, execution: Execution) -> str:
        """CHANNEL_EXECUTE, the application, CHANNEL_EXECUTE_COMPLETE; returns the response."""
        app = execution.app
        arg = execution.arg
        literal = expand_variables(arg)  # FreeSWITCH's escapes (\$, \\, \')
        arg = literal if literal is not None else await self.core.expand(arg)
        self.current = execution
        self.variables["current_application"] = app
        if arg:
            self.variables["current_application_data"] = arg
        data: Pairs = [("Application-Data", arg)] if arg else []
        self.fire("CHANNEL_EXECUTE",
                  suffix=[("Application", app), *data, ("Application-UUID", execution.app_uuid)])  # fmt: skip
        for hook in self.app_hooks.get(app, []):
            result = hook(self, arg)
            if result is not None:
                self.hook_tasks.add(asyncio.ensure_future(result))
        runner = self.core.apps.get(app, _app_unknown)
        try:
            response = await runner(self, arg)
        except Hangup:
            response = self.last_response if app != "playback" else "PLAYBACK ERROR"
        self.last_response = response
        self.variables["current_application_response"] = response
        self.fire(
            "CHANNEL_EXECUTE_COMPLETE",
            suffix=[("Application", app), *data, ("Application-Response", response),
                    ("Application-UUID", execution.app_uuid)],
        )  # fmt: skip
        self.current = None
        return response

    async def play(self, path: str) -> str:
        """PLAYBACK_START, media time (until done or hangup), PLAYBACK_STOP."""
        kind: Pairs = []
        if "://" in path and path.split("://")[0] == "tone_stream":
            kind = [("Playback-File-Type", "tone_stream")]
        self.fire("PLAYBACK_START", suffix=[*kind, ("Playback-File-Path", path)])
        seconds = media_seconds(path)
        self.break_media.clear()
        hung = asyncio.ensure_future(self.hungup.wait())
        broken = asyncio.ensure_future(self.break_media.wait())
        limit = None if seconds == float("inf") else seconds * self.core.time_scale
        try:
            await asyncio.wait({hung, broken}, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
            if not hung.done():
                await asyncio.sleep(0)
        finally:
            hung.cancel()
            broken.cancel()
        interrupted = self.hungup.is_set()
        status = "break" if self.break_media.is_set() and not interrupted else "done"
        self.break_media.clear()
        ms = int(min(seconds, 3600) * 1000)
        self.variables.update(
            playback_last_offset_pos=str(ms * 8), playback_seconds=str(ms // 1000),
            playback_ms=str(ms), playback_samples=str(ms * 8),
        )  # fmt: skip
        self.fire("PLAYBACK_STOP",
                  suffix=[*kind, ("Playback-File-Path", path), ("Playback-Status", status)])  # fmt: skip
        if interrupted:
            raise Hangup
        return "FILE PLAYED"

    async def collect(self, count: int, terminators: str, timeout: float) -> tuple[str, str]:
        """Take up to ``count`` buffered/arriving digits; stops at a terminator or timeout."""
        got = ""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout * self.core.time_scale
        while len(got) < count:
            if self.dtmf:
                digit = self.dtmf.popleft()
                if digit in terminators:
                    return got, digit
                got += digit
                continue
            if self.hungup.is_set():
                raise Hangup
            self._dtmf_arrived.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                await asyncio.sleep(0)  # let a scripted caller react first
                if not self.dtmf:
                    break
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._dtmf_arrived.wait()
        return got, ""


def media_seconds(path: str) -> float:
    """How long a prompt plays: ``silence_stream://N`` is N ms (-1: forever);
    ``tone_stream://%(on,off,f)`` is ``on`` ms; ``local_stream://`` (music on hold) until broken
    or hung up; anything else one second."""
    if path.startswith("local_stream://") or path == "silence_stream://-1":
        return float("inf")
    if path.startswith("silence_stream://"):
        head = path.removeprefix("silence_stream://").split(",")[0]
        return int(head) / 1000 if head.isdigit() else 1.0
    match = re.match(r"tone_stream://%\((\d+),", path)
    if match:
        return int(match.group(1)) / 1000
    return 1.0


AppRunner = Callable[[Channel, str], Awaitable[str]]


async def _app_answer(ch: Channel, arg: str) -> str:
    ch.answer()
    return "_none_"


async def _app_pre_answer(ch: Channel, arg: str) -> str:
    ch.pre_answer()
    return "_none_"


async def _app_ring_ready(ch: Channel, arg: str) -> str:
    ch.ring_ready()
    return "_none_"


async def _app_playback(ch: Channel, arg: str) -> str:
    return await ch.play(arg)


async def _app_set(ch: Channel, arg: str) -> str:
    name, _, value = arg.partition("=")
    if value:
        ch.variables[name] = value
    else:
        ch.variables.pop(name, None)
    return "_none_"


async def _app_unset(ch: Channel, arg: str) -> str:
    ch.variables.pop(arg, None)
    return "_none_"


async def _app_hangup(ch: Channel, arg: str) -> str:
    ch.state_number = STATE_NUMBERS["CS_HANGUP"]  # as recorded in 02a
    ch.hangup(arg or "NORMAL_CLEARING")
    return "_none_"


async def _app_sleep(ch: Channel, arg: str) -> str:
    ms = int(arg) if arg.isdigit() else 0
    hung = asyncio.ensure_future(ch.hungup.wait())
    try:
        await asyncio.wait({hung}, timeout=ms / 1000 * ch.core.time_scale)
    finally:
        hung.cancel()
    return "_none_"


async def _app_play_and_get_digits(ch: Channel, arg: str) -> str:
    """``min max tries timeout terminators file invalid_file var regexp [digit_timeout]``."""
    parts = separate_string(arg, " ", 11)  # as mod_dptools splits it (escapes, quotes)
    if len(parts) < 9:
        ch.variables["read_result"] = "failure"
        return "_none_"
    low, high, tries, timeout_ms = (int(p) if p.isdigit() else 0 for p in parts[:4])
    terminators, prompt, invalid, var, regexp = parts[4:9]
    terminators = "" if terminators == "none" else terminators
    result = "timeout"
    for attempt in range(max(tries, 1)):
        await ch.play(prompt)
        digits, term = await ch.collect(high, terminators, timeout_ms / 1000)
        if term:
            ch.variables["read_terminator_used"] = term
        if digits and low <= len(digits) <= high and re.fullmatch(regexp, digits):
            ch.variables[var] = digits
            ch.variables["read_result"] = "success"
            return "_none_"
        result = "failure" if digits else "timeout"
        if attempt + 1 < tries and invalid != "silence_stream://0" and digits:
            await ch.play(invalid)
    ch.variables["read_result"] = result
    ch.variables.pop(var, None)
    return "_none_"


async def _app_record_session(ch: Channel, arg: str) -> str:
    """Start recording (RECORD_START now, RECORD_STOP at hangup; not in the captures: the
    headers follow switch_ivr_async.c)."""
    ch.recording = arg.split(" ")[0]
    ch.variables["callmesh_recording_path"] = ch.recording
    ch.fire("RECORD_START", suffix=[("Record-File-Path", ch.recording)])
    return "_none_"


async def _app_park(ch: Channel, arg: str) -> str:
    """Park: CHANNEL_PARK, then run messages sent to the channel (sendmsg execute) until it
    hangs up, as a parked FreeSWITCH channel does."""
    ch.fire("CHANNEL_PARK")
    parked = ch.current
    while not ch.hungup.is_set():
        message = asyncio.ensure_future(ch.queue.get())
        hung = asyncio.ensure_future(ch.hungup.wait())
        await asyncio.wait({message, hung}, return_when=asyncio.FIRST_COMPLETED)
        hung.cancel()
        if not message.done():
            message.cancel()
            break
        execution = message.result()
        execution.done.set_result(await ch.run(execution))
        ch.current = parked
    return "_none_"


async def _app_unknown(ch: Channel, arg: str) -> str:
    return "_none_"


APPS: dict[str, AppRunner] = {
    "answer": _app_answer,
    "pre_answer": _app_pre_answer,
    "ring_ready": _app_ring_ready,
    "playback": _app_playback,
    "speak": _app_playback,
    "say": _app_playback,
    "set": _app_set,
    "export": _app_set,
    "unset": _app_unset,
    "hangup": _app_hangup,
    "sleep": _app_sleep,
    "play_and_get_digits": _app_play_and_get_digits,
    "park": _app_park,
    "record_session": _app_record_session,
}
"""Dialplan applications the channel model runs (each peer copies them into ``core.apps``)."""
