"""The ``remote`` plugin: the hook contract served by a gRPC ``PluginService`` in any language.

Enable one instance per service in ``ContactCenter.spec.plugins``::

    - name: remote
      config:
        name: acme-routing           # instance name; registered as ``remote:acme-routing``
        target: acme-routing.acme.svc:50051
        ca_file: /var/run/secrets/acme/ca.crt   # optional: TLS with this root CA

The adapter asks ``GetIdentity`` and ``GetCapabilities`` once (retrying at most every
``retry_seconds`` while the service is down) and calls only the hooks the service implements.
Each rpc carries a gRPC deadline equal to the hook's budget, so a slow service costs at most
the budget; errors and deadlines surface as failures of this plugin, which the manager logs,
counts and replaces with its fallback, exactly as for an in-process plugin. Routing
outcomes are sent without waiting (errors are logged). See ``proto/callmesh/v1/plugin.proto``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from callmesh.plugins.hookspecs import HOOKS, hookimpl
from callmesh.plugins.types import (
    CONTRACT_VERSION,
    CallerQuery,
    CallerRecord,
    ContactEvent,
    CriterionScore,
    Interaction,
    PacingDecision,
    PacingRequest,
    Scorecard,
)
from callmesh.v1 import plugin_pb2 as pb
from callmesh.v1 import plugin_pb2_grpc as pb_grpc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from callmesh.acd.strategy import (
    RoutingDecision,
    RoutingOutcome,
    RoutingRequest,
    RoutingStrategy,
)

__all__ = ["RemotePlugin", "RemotePluginConfig", "RemoteUnavailable"]

log = logging.getLogger("callmesh.plugins.remote")

HOOK_ENUM: dict[str, int] = {
    "callmesh_routing_strategies": pb.HOOK_ROUTING_STRATEGIES,
    "callmesh_route_contact": pb.HOOK_ROUTE_CONTACT,
    "callmesh_routing_outcome": pb.HOOK_ROUTING_OUTCOME,
    "callmesh_crm_lookup": pb.HOOK_CRM_LOOKUP,
    "callmesh_crm_record_interaction": pb.HOOK_CRM_RECORD_INTERACTION,
    "callmesh_qa_score": pb.HOOK_QA_SCORE,
    "callmesh_contact_event": pb.HOOK_CONTACT_EVENT,
    "callmesh_dialer_pace": pb.HOOK_DIALER_PACE,
}
CHANNEL_ENUM = {
    "voice": pb.CHANNEL_VOICE,
    "chat": pb.CHANNEL_CHAT,
    "email": pb.CHANNEL_EMAIL,
}


class RemoteUnavailable(Exception):
    """The remote plugin could not be reached or answered with an error."""


class RemotePluginConfig(BaseModel):
    """Config of one ``remote`` plugin instance."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="Instance name (lowercase, digits, dashes); registered as remote:<name>.",
    )
    target: str = Field(description="host:port of the PluginService.")
    ca_file: str | None = Field(
        default=None, description="Root CA file for TLS (a mounted Secret); plaintext if unset."
    )
    max_candidates: int = Field(
        default=200, ge=1, le=5000, description="Candidates sent per routing request."
    )
    connect_timeout_seconds: float = Field(
        default=2.0, gt=0, le=30, description="Deadline of GetIdentity/GetCapabilities."
    )
    retry_seconds: float = Field(
        default=5.0, ge=0, le=300, description="Wait before asking a down service again."
    )

    @field_validator("target")
    @classmethod
    def _target(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{value!r} is not host:port (e.g. acme-routing.acme.svc:50051)")
        return value


@dataclass(frozen=True, slots=True)
class _Capabilities:
    name: str
    version: str
    vendor: str
    hooks: frozenset[str]
    strategies: tuple[str, ...]


def _check(caps_identity: Any) -> None:
    theirs = caps_identity.contract_version or "?"
    if theirs.split(".")[0] != CONTRACT_VERSION.split(".")[0]:
        raise RemoteUnavailable(
            f"remote plugin {caps_identity.name!r} implements contract {theirs}, "
            f"callmesh speaks {CONTRACT_VERSION}; upgrade one of them"
        )


def _rpc_error(target: str, exc: grpc.RpcError) -> Exception:
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return TimeoutError(f"{target}: deadline exceeded")
    name = code.name if code is not None else "UNKNOWN"
    return RemoteUnavailable(f"{target}: {name}: {details}")


class _RemoteStrategy:
    """A routing strategy served by the remote plugin."""

    def __init__(self, plugin: RemotePlugin, name: str) -> None:
        self.plugin = plugin
        self.name = name

    def choose(self, request: RoutingRequest) -> RoutingDecision | None:
        """Ask the service to choose with its strategy ``self.name``."""
        return self.plugin.route(request, self.name)


class RemotePlugin:
    """Calls a remote ``callmesh.v1.PluginService`` for every hook it implements."""

    config_model = RemotePluginConfig
    multi_instance = True
    trusted = True  # runs inline: the gRPC deadline enforces the budget

    def __init__(self, config: RemotePluginConfig) -> None:
        self.config = config
        self._credentials: grpc.ChannelCredentials | None = None
        if config.ca_file is not None:
            path = Path(config.ca_file)
            if not path.is_file():
                raise ValueError(f"ca_file {config.ca_file!r} does not exist; mount the Secret")
            self._credentials = grpc.ssl_channel_credentials(root_certificates=path.read_bytes())
        self._channel = self._sync_channel()
        self._stub = pb_grpc.PluginServiceStub(self._channel)
        self._aio: tuple[asyncio.AbstractEventLoop, grpc.aio.Channel] | None = None
        self._caps: _Capabilities | None = None
        self._caps_error: tuple[float, str] | None = None
        self._lock = threading.Lock()

    # -- channels and capabilities ---------------------------------------------------------
    def _sync_channel(self) -> grpc.Channel:
        if self._credentials is not None:
            return grpc.secure_channel(self.config.target, self._credentials)
        return grpc.insecure_channel(self.config.target)

    def _aio_stub(self) -> pb_grpc.PluginServiceStub:
        loop = asyncio.get_running_loop()
        if self._aio is None or self._aio[0] is not loop:
            if self._credentials is not None:
                channel = grpc.aio.secure_channel(self.config.target, self._credentials)
            else:
                channel = grpc.aio.insecure_channel(self.config.target)
            self._aio = (loop, channel)
        return pb_grpc.PluginServiceStub(self._aio[1])

    def _remember(self, identity: Any, caps: Any) -> _Capabilities:
        _check(identity)
        hooks = frozenset(name for name, value in HOOK_ENUM.items() if value in caps.hooks)
        found = _Capabilities(
            identity.name, identity.version, identity.vendor, hooks, tuple(caps.routing_strategies)
        )
        self._caps, self._caps_error = found, None
        log.info(
            "remote plugin %r at %s: %s %s by %s, hooks %s",
            self.config.name,
            self.config.target,
            found.name,
            found.version,
            found.vendor or "?",
            ", ".join(sorted(hooks)) or "none",
        )
        return found

    def _gate(self) -> None:
        error = self._caps_error
        if error is not None and time.monotonic() - error[0] < self.config.retry_seconds:
            raise RemoteUnavailable(f"{self.config.target} unavailable: {error[1]}")

    def _failed(self, exc: Exception) -> Exception:
        self._caps_error = (time.monotonic(), str(exc))
        return exc

    def capabilities(self, timeout: float | None = None) -> _Capabilities:
        """The service's identity and hooks (asked once; blocks up to ``timeout`` seconds,
        default ``connect_timeout_seconds``).

        Raises:
            RemoteUnavailable: the service is down (asked again after ``retry_seconds``).
        """
        caps = self._caps
        if caps is not None:
            return caps
        with self._lock:
            if self._caps is not None:
                return self._caps
            self._gate()
            timeout = timeout or self.config.connect_timeout_seconds
            try:
                identity = self._stub.GetIdentity(pb.GetIdentityRequest(), timeout=timeout)
                caps_pb = self._stub.GetCapabilities(pb.GetCapabilitiesRequest(), timeout=timeout)
            except grpc.RpcError as exc:
                raise self._failed(_rpc_error(self.config.target, exc)) from None
            try:
                return self._remember(identity, caps_pb)
            except RemoteUnavailable as exc:
                raise self._failed(exc) from None

    async def acapabilities(self) -> _Capabilities:
        """Like :meth:`capabilities`, without blocking the event loop."""
        caps = self._caps
        if caps is not None:
            return caps
        self._gate()
        stub = self._aio_stub()
        timeout = self.config.connect_timeout_seconds
        try:
            identity = await stub.GetIdentity(pb.GetIdentityRequest(), timeout=timeout)
            caps_pb = await stub.GetCapabilities(pb.GetCapabilitiesRequest(), timeout=timeout)
        except grpc.RpcError as exc:
            raise self._failed(_rpc_error(self.config.target, exc)) from None
        try:
            return self._remember(identity, caps_pb)
        except RemoteUnavailable as exc:
            raise self._failed(exc) from None

    # -- routing ---------------------------------------------------------------------------
    def route(self, request: RoutingRequest, strategy: str) -> RoutingDecision | None:
        """One RouteContact rpc (``strategy`` empty for the override hook)."""
        contact = request.contact
        message = pb.RouteContactRequest(
            contact=pb.Contact(
                id=contact.id,
                channel=CHANNEL_ENUM.get(str(contact.channel), pb.CHANNEL_UNSPECIFIED),
                priority=contact.priority,
                attributes=dict(contact.attributes),
                skills=dict(contact.skills),
                queue=contact.queue,
                enqueued_at=contact.enqueued_at,
                attempts=contact.attempts,
            ),
            queue=request.queue,
            strategy=strategy,
            params={k: str(v) for k, v in request.params.items()},
            candidates=[
                pb.Agent(
                    id=a.id,
                    skills=dict(a.skills),
                    idle_since=a.idle_since,
                    calls_handled=a.calls_handled,
                    talk_time=a.talk_time,
                    team=a.team,
                    tier=a.tier,
                    position=a.position,
                    free_capacity=a.free_capacity,
                )
                for a in itertools.islice(request.candidates, self.config.max_candidates)
            ],
            now=request.now,
            seed=request.rng.getrandbits(63),
        )
        try:
            response = self._stub.RouteContact(
                message, timeout=HOOKS["callmesh_route_contact"].budget
            )
        except grpc.RpcError as exc:
            raise _rpc_error(self.config.target, exc) from None
        if not response.HasField("decision"):
            return None
        d = response.decision
        return RoutingDecision(
            tuple(d.agent_ids),
            d.decided_by or strategy or "remote",
            d.reason,
            d.progressive_delay or None,
        )

    @hookimpl
    def callmesh_routing_strategies(self, register: Callable[[RoutingStrategy], None]) -> None:
        """Register the strategies the service offers (asks its capabilities)."""
        caps = self.capabilities()
        if "callmesh_routing_strategies" in caps.hooks:
            for name in caps.strategies:
                register(_RemoteStrategy(self, name))

    @hookimpl
    def callmesh_route_contact(self, request: RoutingRequest) -> RoutingDecision | None:
        """Ask the service's override (when it implements one)."""
        caps = self.capabilities(HOOKS["callmesh_route_contact"].budget)
        if "callmesh_route_contact" not in caps.hooks:
            return None
        return self.route(request, "")

    @hookimpl
    def callmesh_routing_outcome(self, outcome: RoutingOutcome) -> None:
        """Send the outcome without waiting; errors are logged."""
        caps = self._caps
        if caps is None or "callmesh_routing_outcome" not in caps.hooks:
            return
        result = getattr(pb, f"OFFER_RESULT_{outcome.result.name}", pb.OFFER_RESULT_UNSPECIFIED)
        future = self._stub.ObserveRoutingOutcome.future(
            pb.ObserveRoutingOutcomeRequest(
                contact_id=outcome.contact_id,
                queue=outcome.queue,
                agent_id=outcome.agent_id,
                result=result,
                decided_by=outcome.decided_by,
                at=outcome.at,
            ),
            timeout=HOOKS["callmesh_routing_outcome"].budget,
        )

        def done(f: Any) -> None:
            exc = f.exception()
            if exc is not None:
                log.warning("remote plugin %r: outcome not delivered: %s", self.config.name, exc)

        future.add_done_callback(done)

    # -- async families --------------------------------------------------------------------
    async def _call(self, hook: str, rpc: str, message: Any) -> Any:
        caps = await self.acapabilities()
        if hook not in caps.hooks:
            return None
        method = getattr(self._aio_stub(), rpc)
        try:
            return await method(message, timeout=HOOKS[hook].budget)
        except grpc.RpcError as exc:
            raise _rpc_error(self.config.target, exc) from None

    @hookimpl
    async def callmesh_crm_lookup(self, query: CallerQuery) -> CallerRecord | None:
        """LookupCaller on the service."""
        response = await self._call(
            "callmesh_crm_lookup",
            "LookupCaller",
            pb.LookupCallerRequest(
                contact_id=query.contact_id,
                channel=CHANNEL_ENUM.get(query.channel, pb.CHANNEL_UNSPECIFIED),
                ani=query.ani,
                dnis=query.dnis,
                attributes=dict(query.attributes),
            ),
        )
        if response is None or not response.HasField("record"):
            return None
        r = response.record
        return CallerRecord(
            found=True,
            display_name=r.display_name,
            customer_id=r.customer_id,
            attributes=dict(r.attributes),
            history=tuple(r.history),
        )

    @hookimpl
    async def callmesh_crm_record_interaction(self, interaction: Interaction) -> None:
        """RecordInteraction on the service."""
        await self._call(
            "callmesh_crm_record_interaction",
            "RecordInteraction",
            pb.RecordInteractionRequest(interaction=_interaction(interaction)),
        )

    @hookimpl
    async def callmesh_qa_score(
        self, interaction: Interaction, scorecard: Scorecard
    ) -> Sequence[CriterionScore] | None:
        """ScoreInteraction on the service."""
        response = await self._call(
            "callmesh_qa_score",
            "ScoreInteraction",
            pb.ScoreInteractionRequest(
                interaction=_interaction(interaction),
                scorecard=scorecard.name,
                criteria=[
                    pb.Criterion(
                        id=c.id,
                        description=c.description,
                        weight=c.weight,
                        rule=c.rule,
                        params_json=json.dumps(dict(c.params), default=str),
                    )
                    for c in scorecard.criteria
                ],
                pass_mark=scorecard.pass_mark,
            ),
        )
        if response is None or not response.scores:
            return None
        return [CriterionScore(s.criterion_id, s.score, s.evidence) for s in response.scores]

    @hookimpl
    async def callmesh_contact_event(self, event: ContactEvent) -> None:
        """NotifyContactEvent on the service."""
        kind = getattr(
            pb, f"CONTACT_EVENT_KIND_{event.kind.name}", pb.CONTACT_EVENT_KIND_UNSPECIFIED
        )
        await self._call(
            "callmesh_contact_event",
            "NotifyContactEvent",
            pb.NotifyContactEventRequest(
                kind=kind,
                contact_id=event.contact_id,
                queue=event.queue,
                ani=event.ani,
                at=event.at,
                agent_id=event.agent_id,
                attributes=dict(event.attributes),
            ),
        )

    @hookimpl
    def callmesh_dialer_pace(self, request: PacingRequest) -> PacingDecision | None:
        """PaceDialer on the service."""
        if (
            "callmesh_dialer_pace"
            not in self.capabilities(HOOKS["callmesh_dialer_pace"].budget).hooks
        ):
            return None
        message = pb.PaceDialerRequest(
            campaign=request.campaign,
            mode=request.mode,
            now=request.now,
            available_agents=request.available_agents,
            dialing=request.dialing,
            pending_contacts=request.pending_contacts,
            answer_rate=request.answer_rate,
            abandon_rate=request.abandon_rate,
            max_abandon_rate=request.max_abandon_rate,
            average_handle_seconds=request.average_handle_seconds,
        )
        try:
            response = self._stub.PaceDialer(message, timeout=HOOKS["callmesh_dialer_pace"].budget)
        except grpc.RpcError as exc:
            raise _rpc_error(self.config.target, exc) from None
        if not response.HasField("decision"):
            return None
        return PacingDecision(response.decision.calls, reason=response.decision.reason)

    async def aclose(self) -> None:
        """Close both channels."""
        self._channel.close()
        if self._aio is not None:
            loop, channel = self._aio
            self._aio = None
            if loop is asyncio.get_running_loop():
                await channel.close()


def _interaction(i: Interaction) -> Any:
    return pb.Interaction(
        id=i.id,
        channel=CHANNEL_ENUM.get(i.channel, pb.CHANNEL_UNSPECIFIED),
        queue=i.queue,
        agent_id=i.agent_id,
        ani=i.ani,
        started_at=i.started_at,
        ended_at=i.ended_at,
        wait_seconds=i.wait_seconds,
        talk_seconds=i.talk_seconds,
        hold_seconds=i.hold_seconds,
        transcript=i.transcript,
        disposition=i.disposition,
        attributes=dict(i.attributes),
    )
