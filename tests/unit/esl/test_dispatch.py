"""Event fan-out: handlers in order, subscriptions bounded, failures isolated."""

from __future__ import annotations

import asyncio

import pytest
from callmesh.workers.esl.dispatch import ANY, EventDispatcher
from callmesh.workers.esl.errors import EslConnectionLost, EslError
from callmesh.workers.esl.events import Event


def ev(name: str, **headers: str) -> Event:
    return Event([("Event-Name", name), *headers.items()])


async def test_handlers_run_in_order_and_a_failing_one_is_isolated() -> None:
    dispatcher = EventDispatcher()
    seen: list[str] = []

    async def record(event: Event) -> None:
        seen.append(event.name)

    async def broken(event: Event) -> None:
        raise RuntimeError("handler bug")

    dispatcher.on("CHANNEL_ANSWER", broken)
    dispatcher.on("CHANNEL_ANSWER", record)
    dispatcher.on(ANY, record)
    dispatcher.on("sofia::register", record)
    for event in (
        ev("CHANNEL_ANSWER"),
        ev("DTMF"),
        ev("CUSTOM", **{"Event-Subclass": "sofia::register"}),
    ):
        dispatcher.publish(event)
    dispatcher.close()
    await dispatcher.wait_closed()
    assert seen == ["CHANNEL_ANSWER", "CHANNEL_ANSWER", "DTMF", "CUSTOM", "CUSTOM"]
    assert dispatcher.handler_failures == 1


async def test_handler_off() -> None:
    dispatcher = EventDispatcher()
    seen: list[str] = []

    async def record(event: Event) -> None:
        seen.append(event.name)

    dispatcher.on("DTMF", record)
    dispatcher.off("DTMF", record)
    dispatcher.off("DTMF", record)  # twice is harmless
    dispatcher.publish(ev("DTMF"))
    dispatcher.close()
    await dispatcher.wait_closed()
    assert seen == []


async def test_subscriptions_filter_and_end_when_closed() -> None:
    dispatcher = EventDispatcher()
    dtmf = dispatcher.subscribe("DTMF")
    everything = dispatcher.subscribe()
    custom = dispatcher.subscribe("callmesh::probe")
    dispatcher.publish(ev("DTMF", **{"DTMF-Digit": "5"}))
    dispatcher.publish(ev("CHANNEL_ANSWER"))
    dispatcher.publish(ev("CUSTOM", **{"Event-Subclass": "callmesh::probe"}))
    dispatcher.close()
    assert [e["DTMF-Digit"] async for e in dtmf] == ["5"]
    assert [e.name async for e in everything] == ["DTMF", "CHANNEL_ANSWER", "CUSTOM"]
    assert [e.subclass async for e in custom] == ["callmesh::probe"]
    with pytest.raises(EslConnectionLost):
        await dtmf.get()


async def test_a_slow_subscriber_is_closed_not_grown() -> None:
    dispatcher = EventDispatcher(subscription_maxsize=3)
    slow = dispatcher.subscribe()
    for i in range(10):
        dispatcher.publish(ev("DTMF", **{"DTMF-Digit": str(i)}))
    assert slow.closed
    got = []
    with pytest.raises(EslError, match="fell 3 events behind"):
        while True:
            got.append((await slow.get())["DTMF-Digit"])
    assert len(got) <= 3  # what was queued before the overflow, then the error


async def test_unsubscribe_stops_delivery() -> None:
    dispatcher = EventDispatcher()
    sub = dispatcher.subscribe()
    dispatcher.unsubscribe(sub)
    dispatcher.publish(ev("DTMF"))
    assert [e async for e in sub] == []
    await asyncio.sleep(0)
