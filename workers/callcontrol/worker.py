"""The callcontrol worker: FreeSWITCH's outbound sockets in, the router over gRPC out.

:class:`CallControl` owns

* an :class:`~callmesh.workers.esl.connection.OutboundServer` the dialplan's
  ``socket <callcontrol>:8084 async full`` connects to, one :class:`~.call.Call` per call;
* one :class:`~callmesh.workers.esl.connection.InboundClient` for ``originate``,
  ``uuid_bridge``, ``uuid_kill`` and agent-leg hangups (reconnecting with backoff);
* one gRPC channel to the tenant's router;
* the interaction sink, the CRM hook (the plugin manager) and the tracer.

On every (re)connection of the inbound client it looks for calls left waiting by a previous
callcontrol process (channels carrying the :data:`~.call.MARKER` variable that no live
socket controls) and hands each back to its own outbound server with ``uuid_transfer ...
socket`` inline; the call then resumes its wait with its original enqueue time. See
``docs/callflow.md`` for what survives what.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, Protocol

import grpc.aio
from callmesh.v1 import router_pb2, router_pb2_grpc
from callmesh.workers.callcontrol.call import BRIDGED, MARKER, Call, unpack_record
from callmesh.workers.callcontrol.config import CallControlConfig
from callmesh.workers.esl.connection import (
    CallSession,
    EslConnection,
    EslOptions,
    InboundClient,
    OutboundServer,
)
from callmesh.workers.esl.errors import EslError
from callmesh.workers.esl.events import Event
from callmesh.workers.esl.quoting import token
from callmesh.workers.interactions import InteractionRecord, InteractionSink
from opentelemetry import trace

__all__ = ["CallControl", "CrmLookup"]

log = logging.getLogger("callmesh.workers.callcontrol")

_UUID = re.compile(r"[A-Za-z0-9-]{1,64}")
"""A channel UUID as ``show channels`` lists it (checked before it goes into a command)."""


class CrmLookup(Protocol):
    """The CRM hook as callcontrol uses it (the plugin manager's ``lookup_caller``)."""

    async def lookup_caller(self, query: Any) -> Any:
        """The caller's record; never raises (UNKNOWN_CALLER when no CRM answers)."""


class CallControl:
    """One tenant's call-control worker.

    Args:
        config: the tenant (flows compiled once, queues, agents' extensions).
        router: the router's gRPC address (``host:port``).
        freeswitch: ``(host, port)`` of FreeSWITCH's event socket.
        password: the event-socket password.
        sink: where interaction records go.
        host, port: where the outbound-socket server listens (8084; 0 picks one).
        advertise: ``host:port`` FreeSWITCH reaches this server at, for re-adopting waiting
            calls after a restart (default: ``host:port`` as bound).
        crm: the CRM hook (a :class:`~callmesh.plugins.manager.PluginManager`), or None.
        tracer: OpenTelemetry tracer (default: the global one).
        tts_engine, tts_voice: what ``speak`` uses for text prompts.
        recordings: folder of recordings on the FreeSWITCH side.
        esl_options: ESL timeouts and limits.
    """

    def __init__(
        self,
        config: CallControlConfig,
        *,
        router: str,
        freeswitch: tuple[str, int],
        password: str,
        sink: InteractionSink,
        host: str = "0.0.0.0",
        port: int = 8084,
        advertise: str | None = None,
        crm: CrmLookup | None = None,
        tracer: trace.Tracer | None = None,
        tts_engine: str = "flite",
        tts_voice: str = "kal",
        recordings: str = "/var/lib/freeswitch/recordings",
        esl_options: EslOptions | None = None,
    ) -> None:
        self.config = config
        self.router_address = router
        self.sink = sink
        self.crm = crm
        self.tracer = tracer or trace.get_tracer("callmesh.workers.callcontrol")
        self.tts_engine = tts_engine
        self.tts_voice = tts_voice
        self.recordings = recordings.rstrip("/")
        self.advertise = advertise
        self.esl = InboundClient(freeswitch[0], freeswitch[1], password, options=esl_options)
        self.server = OutboundServer(self._handle, host, port, options=esl_options)
        self._channel: grpc.aio.Channel | None = None
        self.router: router_pb2_grpc.RouterServiceStub
        self.calls: dict[str, Call] = {}
        """Live calls by caller UUID."""
        self.legs: dict[str, Call] = {}
        """Agent legs (ringing or bridged) by UUID -> their call."""
        self.calls_handled = 0
        self.recovered = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._adopting: set[str] = set()
        self.orphans: dict[str, InteractionRecord] = {}
        """Calls bridged by a previous process, by caller UUID, finished here at hang-up."""
        self.crashed = False
        """Set by :meth:`abort`: calls still running write no record (a crash writes none)."""

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> int:
        """Connect to the router and FreeSWITCH, then listen; returns the listening port."""
        self._channel = grpc.aio.insecure_channel(self.router_address)
        self.router = router_pb2_grpc.RouterServiceStub(self._channel)
        await self.esl.subscribe("CHANNEL_HANGUP")
        self.esl.on("CHANNEL_HANGUP", self._on_hangup)
        self.esl.on_connected.append(self._recover)
        await self.esl.start()
        _, port = await self.server.start()
        if self.advertise is None:
            host = self.server.host if self.server.host not in ("0.0.0.0", "::") else "127.0.0.1"
            self.advertise = f"{host}:{port}"
        # calls left waiting by a previous process (the first connection ran before listening)
        await self.recover()
        log.info(
            "callcontrol for %s listening on %d: %d flows, %d queues",
            self.config.namespace or "?",
            port,
            len(self.config.flows),
            len(self.config.queues),
        )
        return port

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting calls, give live ones ``grace`` seconds, then close everything.

        Calls still up when the grace ends are left to FreeSWITCH (see docs/callflow.md:
        bridged calls stay bridged, waiting ones are re-adopted by the next process).
        """
        await self.server.stop(grace)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.esl.close()
        if self._channel is not None:
            await self._channel.close()

    async def abort(self) -> None:
        """Drop every socket at once and write nothing more, as a crash would."""
        self.crashed = True
        if self.server._server is not None:
            self.server._server.close()
        for session in list(self.server.sessions):
            session.conn.abort()
        await self.server.stop(0.0)
        for task in list(self._tasks):
            task.cancel()
        await self.esl.close()
        if self._channel is not None:
            await self._channel.close(None)

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run ``coro`` in the background, kept until done."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ calls

    def _handle(self, session: CallSession) -> Awaitable[None]:
        """The call's coroutine (returned, not awaited here: one frame less per call)."""
        call = Call(self, session)
        self.calls[call.uuid] = call
        self.calls_handled += 1
        marker = call.marker
        recovered: dict[str, str] | None = None
        if marker:
            queue, _, rest = marker.partition("|")
            enqueued_at, _, packed = rest.partition("|")
            recovered = {
                "queue": queue,
                "enqueued_at": enqueued_at or str(time.time()),
                "record": packed,
            }
            self.recovered += 1
            self._adopting.discard(call.uuid)
        return call.run(recovered=recovered)

    def finished(self, call: Call) -> None:
        """A call ended (called by :class:`Call` before writing its record)."""
        self.calls.pop(call.uuid, None)

    def recording_path(self, call: Call) -> str:
        """Where FreeSWITCH writes the call's recording."""
        day = time.strftime("%Y/%m/%d", time.gmtime(call.record.started_at))
        tenant = self.config.namespace or "default"
        return f"{self.recordings}/{tenant}/{day}/{call.uuid}.{self.config.recording_format}"

    async def _on_hangup(self, event: Event) -> None:
        uuid = event.unique_id
        if uuid is None:
            return
        call = self.legs.pop(uuid, None)  # gone: nothing to uuid_kill any more
        if call is not None:
            await call.agent_hung_up(uuid)
        orphan = self.orphans.pop(uuid, None)
        if orphan is not None:
            await self._orphan_ended(orphan, event)

    def _adopt_bridged(self, uuid: str, value: str) -> None:
        """A call a previous process bridged: finish it here when it hangs up."""
        _agent, _, packed = value.partition("|")
        record = unpack_record(packed)
        if record is None or record.call_id != uuid:
            log.warning("bridged call %s carries no readable record; not adopted", uuid)
            return
        record.recovered = True
        self.orphans[uuid] = record
        log.info("watching bridged call %s of agent %s until it ends", uuid, record.agent_id)

    async def _orphan_ended(self, record: InteractionRecord, event: Event) -> None:
        record.ended_at = time.time()
        record.hangup_cause = event.get("Hangup-Cause") or ""
        try:
            await self.router.Complete(
                router_pb2.CompleteRequest(contact_id=record.call_id), timeout=5.0
            )
        except grpc.aio.AioRpcError as exc:
            log.info("bridged call %s: Complete refused: %s", record.call_id, exc.details())
        try:
            await self.sink.write(record)
        except Exception:
            log.exception("interaction record of %s not written", record.call_id)

    # ------------------------------------------------------------------ recovery

    async def _recover(self, conn: EslConnection) -> None:
        if self.server._server is not None:
            await self.recover()

    async def recover(self) -> int:
        """Re-adopt calls left waiting by a previous process; how many were sent back.

        Lists ``show channels as json``, reads the marker of every channel no live call of
        this process controls (``uuid_getvar``), and sends each marked one to this server
        with ``uuid_transfer <uuid> socket:<advertise> async full inline``.
        """
        try:
            raw = await self.esl.api("show channels as json")
        except EslError as exc:
            log.warning("cannot list FreeSWITCH's channels for recovery: %s", exc)
            return 0
        try:
            rows = json.loads(raw).get("rows", [])
        except (ValueError, AttributeError):
            log.warning("show channels as json answered %r; no recovery", raw[:80])
            return 0
        sent = 0
        for row in rows:
            uuid = row.get("uuid", "") if isinstance(row, dict) else ""
            if not uuid or uuid in self.calls or uuid in self.legs or uuid in self._adopting:
                continue
            if uuid in self.orphans or not _UUID.fullmatch(uuid):
                continue
            with contextlib.suppress(EslError):
                bridged = await self.esl.api(f"uuid_getvar {uuid} {BRIDGED}", check=False)
                if "|" in bridged and not bridged.startswith("-ERR"):
                    self._adopt_bridged(uuid, bridged.strip())
                    continue
            if row.get("application") != "park":
                continue  # still run by a live socket (maybe another replica's)
            try:
                marker = await self.esl.api(f"uuid_getvar {uuid} {MARKER}", check=False)
            except EslError:
                continue
            if not marker.strip() or marker.strip() == "_undef_" or marker.startswith("-ERR"):
                continue
            target = f"socket:{token(self.advertise or '', 'advertise')} async full"
            with contextlib.suppress(EslError):
                await self.esl.api(f"uuid_transfer {uuid} '{target}' inline")
                self._adopting.add(uuid)
                sent += 1
                log.info("re-adopting waiting call %s (%s)", uuid, marker.strip())
        return sent


def default_sink_path(tenant: str) -> Path:
    """Where the CLI writes interaction records by default."""
    return Path("/var/lib/callmesh") / (tenant or "default") / "interactions.jsonl"
