"""Every Python snippet in docs/esl.md runs; its client examples run against the test peer."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from callmesh.workers.esl.connection import OutboundServer
from esl_peer.channel import Channel
from esl_peer.peer import FakeFreeSwitch

DOC = Path(__file__).resolve().parents[2] / "docs" / "esl.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def run_doc() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    blocks = _BLOCK.findall(DOC.read_text())
    assert len(blocks) >= 4
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)
    return namespace


async def test_inbound_example(esl_peer: FakeFreeSwitch) -> None:
    example = run_doc()["inbound_example"]
    result = await example("127.0.0.1", esl_peer.port)
    assert result == ["CHANNEL_ANSWER", "answered", "No such channel!"]
    assert esl_peer.channels["doc-leg"].hangup_cause == "NORMAL_CLEARING"


async def test_outbound_example() -> None:
    handle_call = run_doc()["handle_call"]

    def caller(channel: Channel) -> None:
        async def press(ch: Channel, arg: str) -> None:
            await ch.wait_event("PLAYBACK_STOP")
            ch.caller_dtmf("2")

        async def give_up(ch: Channel, arg: str) -> None:
            if arg.startswith("silence_stream://"):
                ch.hangup("ORIGINATOR_CANCEL")

        channel.when_app("play_and_get_digits", press)
        channel.when_app("playback", give_up)

    server = OutboundServer(handle_call)
    await server.start()
    async with FakeFreeSwitch(time_scale=0.01) as peer:
        call = await peer.call("127.0.0.1", server.port, setup=caller)
        await asyncio.wait_for(call.ended.wait(), 5)
    await server.stop()
    assert call.channel.variables["callmesh_choice"] == "2"
    assert call.channel.hangup_cause == "ORIGINATOR_CANCEL"
    assert server.calls_failed == 0
