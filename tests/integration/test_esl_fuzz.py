"""Hostile bytes from "FreeSWITCH": the client and the server fail with typed errors only, and
every connection is closed afterwards (nothing leaks: the peer sees EOF, no task survives)."""

from __future__ import annotations

import asyncio
import contextlib

from callmesh.workers.esl.connection import (
    CallSession,
    EslOptions,
    InboundClient,
    OutboundServer,
)
from callmesh.workers.esl.errors import EslError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

GREETING = b"Content-Type: auth/request\n\n"
ACCEPTED = b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n"
ENABLED = b"Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n"
OPTIONS = EslOptions(command_timeout=0.1, connect_timeout=0.1, max_header_bytes=1024,
                     max_body_bytes=4096)  # fmt: skip

# Bytes that look like ESL more often than uniform noise does.
_pieces = st.sampled_from(
    [b"Content-Type: ", b"command/reply", b"api/response", b"text/event-plain",
     b"text/disconnect-notice", b"Content-Length: ", b"Reply-Text: +OK", b"-ERR", b"\n",
     b"\n\n", b"12", b"99999999", b": ", b"Event-Name: BACKGROUND_JOB", b"\xff", b"{"]
)  # fmt: skip
hostile = st.one_of(
    st.binary(max_size=400),
    st.lists(_pieces, max_size=40).map(b"".join),
)
fuzz = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


async def _drain_until_eof(reader: asyncio.StreamReader) -> None:
    while await reader.read(4096):
        pass


def _no_tasks_left() -> None:
    leftover = asyncio.all_tasks() - {asyncio.current_task()}
    assert not leftover, leftover


@fuzz
@given(prefix=st.sampled_from([b"", GREETING, GREETING + ACCEPTED + ENABLED]),
       junk=hostile, close=st.booleans())  # fmt: skip
def test_inbound_client_survives_hostile_freeswitch(
    prefix: bytes, junk: bytes, close: bool
) -> None:
    async def scenario() -> None:
        eof = asyncio.Event()

        async def fake_switch(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(prefix + junk)
            if close:
                writer.close()
            await _drain_until_eof(reader)
            eof.set()
            writer.close()

        server = await asyncio.start_server(fake_switch, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = InboundClient("127.0.0.1", port, "ClueCon", options=OPTIONS)
        try:
            conn = await client.connect_once()
        except (EslError, OSError, TimeoutError):
            pass  # typed failure: the connection was closed by connect_once
        else:
            with contextlib.suppress(EslError, OSError):
                await conn.api("status")
            await conn.close()
        await asyncio.wait_for(eof.wait(), 2)  # the client closed its socket
        server.close()
        await server.wait_closed()
        await client.close()
        _no_tasks_left()

    asyncio.run(scenario())


@fuzz
@given(junk=hostile, close=st.booleans())
def test_outbound_server_survives_hostile_freeswitch(junk: bytes, close: bool) -> None:
    async def scenario() -> None:
        calls: list[CallSession] = []

        async def handler(call: CallSession) -> None:
            calls.append(call)
            await call.myevents()

        server = OutboundServer(handler, options=OPTIONS)
        await server.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        assert await reader.readuntil(b"\n\n") == b"connect\n\n"
        writer.write(junk)
        if close:
            writer.write_eof()
        await asyncio.wait_for(_drain_until_eof(reader), 2)  # the server hung up on us
        writer.close()
        await server.stop(grace=1)
        assert not server.sessions
        assert server.calls_accepted == 1
        _no_tasks_left()

    asyncio.run(scenario())
