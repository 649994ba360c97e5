"""``callmesh.v1.RouterService`` over :class:`~callmesh.workers.router.core.RouterCore`.

Each rpc checks its request, calls the core and answers; an engine or worker error becomes
a gRPC status with the error's message (unknown queue, agent or contact: NOT_FOUND;
duplicate contact id: ALREADY_EXISTS; an offer already withdrawn, a wrong state:
FAILED_PRECONDITION; a malformed request: INVALID_ARGUMENT), raised before anything
changed. Inside an AgentSession a failing message is answered with an ``AgentError``
carrying the same code and message, and the session carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator
from typing import NoReturn

import grpc
import grpc.aio
from callmesh.v1 import router_pb2, router_pb2_grpc
from callmesh.workers.router.core import (
    PB_TO_CHANNEL,
    PB_TO_STATE,
    STATE_TO_PB,
    RequestError,
    RouterCore,
    Session,
    _ts,
    status_of,
)

from callmesh.acd import Offer
from callmesh.acd.errors import AcdError

__all__ = ["RouterService"]

log = logging.getLogger("callmesh.workers.router")

_ANSWERS: dict[int, bool] = {
    router_pb2.OFFER_ANSWER_ACCEPT: True,
    router_pb2.OFFER_ANSWER_REJECT: False,
}


async def _abort(context: grpc.aio.ServicerContext, exc: Exception) -> NoReturn:
    await context.abort(status_of(exc), str(exc))
    raise AssertionError("unreachable")  # pragma: no cover - abort raises


def _answer(value: int, contact_id: str) -> bool:
    if value not in _ANSWERS:
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"answer is unset for contact {contact_id!r}: send OFFER_ANSWER_ACCEPT or"
            " OFFER_ANSWER_REJECT",
        )
    return _ANSWERS[value]


class RouterService(router_pb2_grpc.RouterServiceServicer):
    """The gRPC face of one tenant's router (see ``proto/callmesh/v1/router.proto``)."""

    def __init__(self, core: RouterCore) -> None:
        self.core = core

    async def Enqueue(
        self, request: router_pb2.EnqueueRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.EnqueueResponse:
        """Put a contact in a queue; see the proto."""
        try:
            channel = None
            if request.channel:
                if request.channel not in PB_TO_CHANNEL:
                    raise RequestError(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"channel {request.channel} is not a Channel value: use CHANNEL_VOICE,"
                        " CHANNEL_CHAT or CHANNEL_EMAIL",
                    )
                channel = PB_TO_CHANNEL[request.channel]
            wall = (
                request.enqueue_time.ToNanoseconds() / 1e9
                if request.HasField("enqueue_time")
                else None
            )
            skills: dict[str, int] = {}
            for s in request.skills:
                if s.name in skills:
                    raise RequestError(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"skills lists {s.name!r} twice: list each skill once",
                    )
                skills[s.name] = s.min_level
            effects = self.core.enqueue(
                request.contact_id,
                request.queue,
                channel=channel,
                priority=request.priority if request.HasField("priority") else None,
                skills=skills,
                attributes=dict(request.attributes),
                wall_enqueued=wall,
                wall_queued=(
                    request.queue_time.ToNanoseconds() / 1e9
                    if request.HasField("queue_time")
                    else None
                ),
            )
        except (AcdError, RequestError) as exc:
            await _abort(context, exc)
        info = self.core.contacts.get(request.contact_id)
        if info is None:  # ended at once (e.g. overflowed with no agent to wait for)
            return router_pb2.EnqueueResponse()
        position, ewt = self.core.position(request.contact_id)
        offered = [a for e in effects if type(e) is Offer for a in e.agent_ids]
        return router_pb2.EnqueueResponse(
            position=position,
            estimated_wait_seconds=ewt if math.isfinite(ewt) else 0.0,
            offered_agent_ids=[a for a in offered if a in info.ringing],
            # Built directly: Timestamp.FromNanoseconds checks its argument against an
            # abstract base class, several µs per call.
            enqueue_time=_ts(info.wall_enqueued),
        )

    async def Cancel(
        self, request: router_pb2.CancelRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.CancelResponse:
        """The caller left; see the proto."""
        try:
            waited = self.core.cancel(request.contact_id)
        except (AcdError, RequestError) as exc:
            await _abort(context, exc)
        return router_pb2.CancelResponse(waited_seconds=waited)

    async def Complete(
        self, request: router_pb2.CompleteRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.CompleteResponse:
        """An answered contact ended; see the proto."""
        try:
            agent_id = self.core.complete(request.contact_id)
        except (AcdError, RequestError) as exc:
            await _abort(context, exc)
        return router_pb2.CompleteResponse(agent_id=agent_id)

    async def Transfer(
        self, request: router_pb2.TransferRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.TransferResponse:
        """Move a contact to another queue; see the proto."""
        try:
            outcome = self.core.transfer(request.contact_id, request.queue, request.reason)
        except (AcdError, RequestError) as exc:
            await _abort(context, exc)
        position, _ = self.core.position(request.contact_id)
        return router_pb2.TransferResponse(
            outcome=router_pb2.TransferOutcome.ValueType(outcome), position=position
        )

    async def ForceAgentState(
        self, request: router_pb2.ForceAgentStateRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.ForceAgentStateResponse:
        """A supervisor sets an agent's state; see the proto."""
        try:
            state = self.core.force_state(
                request.agent_id, PB_TO_STATE.get(request.state), request.reason
            )
        except (AcdError, RequestError) as exc:
            await _abort(context, exc)
        return router_pb2.ForceAgentStateResponse(state=STATE_TO_PB[state])

    async def AnswerOffer(
        self, request: router_pb2.AnswerOfferRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.AnswerOfferResponse:
        """Accept or reject on the agent's behalf; see the proto."""
        try:
            accept = _answer(request.answer, request.contact_id)
            self.core.answer(request.contact_id, request.agent_id, accept)
        except (AcdError, RequestError) as exc:
            await _abort(context, exc)
        return router_pb2.AnswerOfferResponse()

    async def WatchContact(
        self, request: router_pb2.WatchContactRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[router_pb2.WatchContactResponse]:
        """Follow one contact until it ends; see the proto."""
        try:
            events = self.core.watch(request.contact_id)
        except (AcdError, RequestError) as exc:
            await _abort(context, exc)
        try:
            while (event := await events.get()) is not None:
                yield event
        finally:
            self.core.unwatch(request.contact_id, events)

    async def WatchQueues(
        self, request: router_pb2.WatchQueuesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[router_pb2.WatchQueuesResponse]:
        """Queue KPIs every interval; see the proto."""
        interval = request.interval_seconds or 1.0
        try:
            if not math.isfinite(interval) or interval < 0.05:
                raise RequestError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"interval_seconds is {interval}: use at least 0.05 (0 means 1 s)",
                )
            names = list(request.queues)
            self.core.kpis(names)
        except (AcdError, RequestError) as exc:
            await _abort(context, exc)
        while True:
            snapshot = router_pb2.WatchQueuesResponse(queues=self.core.kpis(names))
            snapshot.at.GetCurrentTime()
            yield snapshot
            await asyncio.sleep(interval)

    async def AgentSession(
        self,
        request_iterator: AsyncIterator[router_pb2.AgentSessionRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[router_pb2.AgentSessionResponse]:
        """An agent's session; see the proto."""
        try:
            first = await anext(aiter(request_iterator))
        except StopAsyncIteration:
            return
        if first.WhichOneof("action") != "login" or not first.login.agent_id:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "the first AgentSession message must be a login with the agent_id",
            )
        try:
            session = self.core.open_session(first.login.agent_id, first.login.ready)
        except (AcdError, RequestError) as exc:
            await _abort(context, exc)
        reader = asyncio.create_task(self._read(session.agent_id, request_iterator, session))
        try:
            while (event := await session.events.get()) is not None:
                yield event
            if session.closed_with is not None:
                code, message = session.closed_with
                await context.abort(code, message)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            self.core.close_session(session)

    async def _read(
        self,
        agent_id: str,
        requests: AsyncIterator[router_pb2.AgentSessionRequest],
        session: Session,
    ) -> None:
        """Apply the agent's messages; the stream's end (or a logout) ends the session."""
        core = self.core
        try:
            async for message in requests:
                if core.sessions.get(agent_id) is not session:
                    break  # replaced by a newer session
                action = message.WhichOneof("action")
                try:
                    if action == "ready":
                        core.set_ready(agent_id)
                    elif action == "not_ready":
                        core.set_not_ready(agent_id, message.not_ready.reason)
                    elif action == "answer":
                        accept = _answer(message.answer.answer, message.answer.contact_id)
                        core.answer(message.answer.contact_id, agent_id, accept)
                    elif action == "complete":
                        contact_id = message.complete.contact_id
                        info = core.contacts.get(contact_id)
                        if info is not None and info.agent_id not in (None, agent_id):
                            raise RequestError(
                                grpc.StatusCode.PERMISSION_DENIED,
                                f"contact {contact_id!r} is handled by {info.agent_id!r}, not"
                                f" {agent_id!r}: only its agent can complete it",
                            )
                        core.complete(contact_id)
                    elif action == "logout":
                        core.logout(agent_id)
                        break
                    else:
                        raise RequestError(
                            grpc.StatusCode.INVALID_ARGUMENT,
                            f"{action or 'an empty message'} is not allowed after login: send"
                            " ready, not_ready, answer, complete or logout",
                        )
                except (AcdError, RequestError) as exc:
                    error = router_pb2.AgentError(
                        request_id=message.request_id,
                        code=status_of(exc).value[0],
                        message=str(exc),
                    )
                    event = router_pb2.AgentSessionResponse(error=error)
                    event.at.GetCurrentTime()
                    session.events.put_nowait(event)
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        except Exception:  # a bug: end the session, and say so
            log.exception("agent session of %r failed", agent_id)
        finally:
            session.events.put_nowait(None)
