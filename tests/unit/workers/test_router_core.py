"""RouterCore without sockets: reloads with multi-chat agents in progress, refusals, timers.

The core runs on the test's event loop; configs are built directly from the engine's
dataclasses. After every step the engine's invariants and the worker's bookkeeping are
checked.
"""

from __future__ import annotations

import gc
import math
import weakref
from dataclasses import replace

import grpc
import pytest
from callmesh.v1 import router_pb2
from callmesh.workers.router.config import RouterConfig, RouterConfigError, ServiceLevelTarget
from callmesh.workers.router.core import HOLD_PREFIX, RequestError, RouterCore

from callmesh.acd import AgentConfig, Channel, QueueConfig, TeamConfig, TierConfig


def config(
    chat_capacity: int = 3,
    digest: str = "v1",
    wrap: float = 0.0,
    max_wait: float | None = None,
    backup: bool = False,
) -> RouterConfig:
    agents = tuple(
        AgentConfig(a, capacity={Channel.VOICE: 1, Channel.CHAT: chat_capacity})
        for a in ("ann", "bob")
    )
    return RouterConfig(
        namespace="t",
        queues=(
            QueueConfig("chat", (TierConfig(("desk",)),), channel=Channel.CHAT, wrap_up_time=wrap),
            QueueConfig("voice", (TierConfig(("desk",)),), wrap_up_time=wrap, max_wait=max_wait),
        )
        + ((QueueConfig("backup", (TierConfig(("desk",)),), max_wait=max_wait),) if backup else ()),
        teams=(TeamConfig("desk", agents),),
        service_levels={"voice": ServiceLevelTarget(20.0, 0.8)},
        digest=digest,
    )


def offered_to(effects: list[object]) -> list[str]:
    return [a for e in effects if type(e).__name__ == "Offer" for a in e.agent_ids]  # type: ignore[attr-defined]


async def test_reload_keeps_two_chats_in_progress_and_a_voice_call() -> None:
    core = RouterCore(config(), lambda _c: None)
    ann = core.open_session("ann", True)
    core.open_session("bob", True)
    for cid in ("chat-1", "chat-2"):
        (agent,) = offered_to(core.enqueue(cid, "chat"))
        core.answer(cid, agent, True)
    (voice_agent,) = offered_to(core.enqueue("call-1", "voice"))
    core.answer("call-1", voice_agent, True)
    core.check_invariants()
    busy = {cid: core.contacts[cid].agent_id for cid in ("chat-1", "chat-2", "call-1")}
    core.set_not_ready("bob", "coaching")

    assert core.reload(config(digest="v2", wrap=15.0))
    core.check_invariants()
    for cid, agent in busy.items():
        assert core.contacts[cid].agent_id == agent
    assert core.presence["bob"] == ("NotReady", "coaching")
    assert not ann.events.empty()
    # Hold queues are internal: not enqueueable, not in the KPIs.
    with pytest.raises(RequestError) as err:
        core.enqueue("x", f"{HOLD_PREFIX}ann{HOLD_PREFIX}chat")
    assert err.value.code is grpc.StatusCode.NOT_FOUND
    assert [k.queue for k in core.kpis()] == ["chat", "voice"]
    # They complete normally and the agent wraps up for the new config's 15 s.
    for cid in busy:
        assert core.complete(cid) == busy[cid]
        core.check_invariants()
    assert "WrapUp" in {core.router.agent_state(a) for a in set(busy.values())}
    assert core.contacts == {}
    core.close()


async def test_reload_refused_when_capacity_drops_below_chats_in_progress() -> None:
    core = RouterCore(config(), lambda _c: None)
    core.open_session("ann", True)
    for cid in ("chat-1", "chat-2"):
        core.answer(cid, offered_to(core.enqueue(cid, "chat"))[0], True)
    engine = core.router
    with pytest.raises(RouterConfigError, match="capacity is 1"):
        core.reload(config(chat_capacity=1, digest="v2"))
    assert core.router is engine
    core.check_invariants()
    assert not core.reload(config())  # same digest: nothing to do
    core.close()


async def test_kpis_count_service_level_and_abandons() -> None:
    core = RouterCore(config(), lambda _c: None)
    core.enqueue("gone", "voice")
    assert core.cancel("gone") >= 0
    core.open_session("ann", True)
    core.enqueue("c1", "voice")
    core.answer("c1", "ann", True)
    (kpi,) = core.kpis(["voice"])
    assert (kpi.answered, kpi.abandoned) == (1, 1)
    assert kpi.service_level == 0.5  # 1 answered in 20 s, 1 abandon (none excluded)
    assert kpi.service_level_seconds == 20 and kpi.service_level_target == 0.8
    assert math.isnan(core.kpis(["chat"])[0].service_level)  # no target: no SL
    assert {c.state: c.count for c in kpi.agents}[router_pb2.AGENT_STATE_BUSY] == 1
    with pytest.raises(RequestError) as err:
        core.kpis(["nope"])
    assert "chat, voice" in str(err.value)
    core.check_invariants()
    core.close()


async def test_reload_keeps_a_running_wrap_up_for_the_time_left() -> None:
    core = RouterCore(config(wrap=30.0), lambda _c: None)
    core.open_session("ann", True)
    core.enqueue("c1", "voice")
    core.answer("c1", "ann", True)
    core.complete("c1")
    assert core.router.agent_state("ann") == "WrapUp"
    started = core.wrap_started["ann"]
    core.enqueue("c2", "voice")  # waits: ann wraps up, bob is logged out
    assert core.reload(config(digest="v2", wrap=30.0))
    core.check_invariants()
    assert core.router.agent_state("ann") == "WrapUp"
    assert core.router.next_deadline() == pytest.approx(started + 30.0, abs=0.5)
    assert core.router.waiting("voice") == ["c2"]
    assert "c2" in core.contacts and len(core.contacts) == 1
    # Ready ends it early, as before the reload.
    core.set_ready("ann")
    assert core.contacts["c2"].ringing == {"ann"}
    core.check_invariants()
    core.close()


async def test_reload_keeps_max_wait_counting_from_queue_entry() -> None:
    core = RouterCore(config(max_wait=600.0, backup=True), lambda _c: None)
    core.enqueue("c1", "voice")
    entered = core.contacts["c1"].spec.enqueued_at
    assert entered is not None
    core.enqueue("c2", "backup")
    core.transfer("c2", "voice", "supervisor")  # moved: counts from the move in voice
    moved_at = core.contacts["c2"].spec.queued_at
    assert moved_at is not None and moved_at >= entered
    assert core.reload(config(digest="v2", max_wait=600.0, backup=True))
    core.check_invariants()
    assert core.router.waiting("voice") == ["c1", "c2"]
    assert core.contacts["c2"].spec.queued_at == moved_at
    # The first max-wait deadline is still c1's original one, not the reload time + 600.
    assert core.router.next_deadline() == pytest.approx(entered + 600.0, abs=0.5)
    core.close()


async def test_transfer_of_an_answered_contact_that_was_moved_requeues_it() -> None:
    """A moved contact keeps its queue time in its spec; a transfer after it was answered
    starts a new wait from now (before, the engine refused the spec after the call had been
    completed, and the contact was lost)."""
    import asyncio

    core = RouterCore(config(backup=True), lambda _c: None)
    core.open_session("ann", True)
    core.enqueue("busy", "voice")
    core.answer("busy", "ann", True)
    core.enqueue("c1", "voice")
    await asyncio.sleep(0.01)
    core.transfer("c1", "backup", "supervisor")  # waiting: moved, its queue time is kept
    assert core.contacts["c1"].spec.queued_at is not None
    await asyncio.sleep(0.01)
    core.complete("busy")
    core.answer("c1", "ann", True)
    await asyncio.sleep(0.01)
    assert core.transfer("c1", "voice", "blind") == router_pb2.TRANSFER_OUTCOME_REQUEUED
    core.check_invariants()
    assert core.router.contacts() == ["c1"] and list(core.contacts) == ["c1"]
    spec = core.contacts["c1"].spec
    assert spec.queue == "voice" and spec.queued_at is None
    core.close()


async def test_reload_keeps_the_priority_a_moved_contact_is_served_by() -> None:
    """The engine keeps a moved contact's priority (the queue it entered first); a reload
    re-enqueues it with that priority, not the priority of the queue it was moved to."""
    import asyncio

    def two(digest: str) -> RouterConfig:
        return RouterConfig(
            namespace="t",
            queues=(
                QueueConfig("a", (TierConfig(("desk",)),), priority=20),
                QueueConfig("b", (TierConfig(("desk",)),), priority=5),
            ),
            teams=(TeamConfig("desk", (AgentConfig("ann"),)),),
            digest=digest,
        )

    core = RouterCore(two("v1"), lambda _c: None)
    core.enqueue("y", "b")
    await asyncio.sleep(0.01)
    core.enqueue("x", "a")
    core.transfer("x", "b", "supervisor")
    assert core.router.waiting("b") == ["x", "y"]
    assert core.reload(two("v2"))
    core.check_invariants()
    assert core.router.waiting("b") == ["x", "y"]
    assert core.router.priority("x") == 20 and core.router.priority("y") == 5
    core.close()


async def test_reload_that_raises_a_queues_priority_keeps_its_line_in_order() -> None:
    """Contacts without a priority of their own take their queue's from the new config:
    a raise does not let new arrivals overtake the contacts already waiting."""
    import asyncio

    def one(priority: int, digest: str) -> RouterConfig:
        return RouterConfig(
            namespace="t",
            queues=(QueueConfig("a", (TierConfig(("desk",)),), priority=priority),),
            teams=(TeamConfig("desk", (AgentConfig("ann"),)),),
            digest=digest,
        )

    core = RouterCore(one(0, "v1"), lambda _c: None)
    core.enqueue("old", "a")
    assert core.reload(one(10, "v2"))
    await asyncio.sleep(0.01)
    core.enqueue("new", "a")
    core.check_invariants()
    assert core.router.waiting("a") == ["old", "new"]
    assert core.router.priority("old") == core.router.priority("new") == 10
    core.close()


async def test_reload_keeps_an_agent_forced_out_mid_call_out_until_it_logs_in_again() -> None:
    from callmesh.acd import AgentState

    core = RouterCore(config(), lambda _c: None)
    core.open_session("ann", True)
    core.enqueue("c1", "voice")
    core.answer("c1", "ann", True)
    assert core.force_state("ann", AgentState.LOGGED_OUT, "") is AgentState.LOGGED_OUT
    assert "ann" not in core.sessions
    assert core.reload(config(digest="v2"))
    core.check_invariants()
    assert core.router.agent_state("ann") is AgentState.LOGGED_OUT
    assert core.contacts["c1"].agent_id == "ann"
    core.open_session("ann", True)  # the desktop logs in again: Busy with its call
    assert core.reload(config(digest="v3"))
    core.check_invariants()
    assert core.router.agent_state("ann") is AgentState.BUSY
    core.complete("c1")
    core.check_invariants()
    assert core.router.agent_state("ann") is AgentState.AVAILABLE
    core.close()


async def test_service_level_and_asa_are_over_a_sliding_window() -> None:
    import asyncio

    start = asyncio.get_running_loop().time()
    clock = [start]
    core = RouterCore(config(), lambda _c: None, clock=lambda: clock[0], kpi_window=60.0)
    core.open_session("ann", True)

    def answer_after(cid: str, wait: float) -> None:
        core.enqueue(cid, "voice")
        clock[0] += wait
        core.answer(cid, "ann", True)
        core.complete(cid)

    answer_after("slow", 50.0)  # out of target (20 s), ends at +50
    clock[0] += 20.0
    answer_after("fast", 4.0)  # in target, ends at +74
    (kpi,) = core.kpis(["voice"])
    assert kpi.window_seconds == 60.0
    assert kpi.service_level == 0.5 and kpi.asa_seconds == pytest.approx(27.0)
    assert core.status_fields()[("queues", "voice")]["serviceLevel"] == "50.0%"
    clock[0] = start + 111.0  # "slow" ended 61 s ago: out of the window
    (kpi,) = core.kpis(["voice"])
    assert kpi.service_level == 1.0 and kpi.asa_seconds == pytest.approx(4.0)
    assert kpi.answered == 2  # the counts stay cumulative
    clock[0] = start + 200.0  # nothing in the last minute: no service level, ASA 0
    (kpi,) = core.kpis(["voice"])
    assert math.isnan(kpi.service_level) and kpi.asa_seconds == 0.0
    fields = core.status_fields()
    assert fields[("queues", "voice")] == {"waiting": 0, "serviceLevel": None}
    assert fields[("queues", "chat")]["serviceLevel"] is None  # no target
    assert fields[("agentteams", "desk")] == {"loggedIn": 1}
    core.close()

    # Window 0: since the router started.
    clock[0] = start
    core = RouterCore(config(), lambda _c: None, clock=lambda: clock[0], kpi_window=0)
    core.open_session("ann", True)
    answer_after("slow", 50.0)
    clock[0] += 10_000.0
    (kpi,) = core.kpis(["voice"])
    assert kpi.service_level == 0.0 and kpi.asa_seconds == pytest.approx(50.0)
    assert kpi.window_seconds == 0.0
    core.close()
    with pytest.raises(ValueError, match="kpi_window is -1"):
        RouterCore(config(), lambda _c: None, kpi_window=-1)


async def test_kpi_snapshots_are_shared_until_something_happens() -> None:
    import asyncio

    start = asyncio.get_running_loop().time()
    clock = [start]
    core = RouterCore(config(), lambda _c: None, clock=lambda: clock[0])
    first = core.kpis(["voice"])
    assert core.kpis(["voice"]) is first  # a second wallboard, same instant: shared
    assert core.kpis(["chat", "voice"]) is not first  # other queues: its own
    core.enqueue("c1", "voice")  # something happened: a new snapshot
    after = core.kpis(["voice"])
    assert after is not first and after[0].waiting == 1
    clock[0] += 1.0  # the longest wait moved on
    later = core.kpis(["voice"])
    assert later is not after and later[0].longest_wait_seconds == pytest.approx(1.0)
    core.close()


def test_interval_stats_keep_one_bucket_per_second_whatever_the_rate() -> None:
    from callmesh.workers.router.core import IntervalStats

    stats = IntervalStats(window=60.0)
    for n in range(5000):  # 5,000 contacts in 10 s: 10 buckets, not 5,000 entries
        stats.add(
            100.0 + n / 500, answered=n % 2 == 0, waited=4.0, in_target=n % 4 == 0, counted=True
        )
    assert len(stats._buckets) == 10
    assert (stats.counted, stats.answered, stats.answered_in_target) == (5000, 2500, 1250)
    assert stats.service_level == 0.25 and stats.asa == pytest.approx(4.0)
    stats.prune(160.9)  # the bucket [100, 101) is not wholly older than 60 s yet
    assert stats.counted == 5000
    stats.prune(161.0)  # now it is
    assert stats.counted == 4500 and len(stats._buckets) == 9
    stats.prune(1000.0)
    assert stats.counted == 0 and math.isnan(stats.service_level) and stats.asa == 0.0


async def test_engine_keeps_no_agent_state_history() -> None:
    """The worker never reads an agent's state history, so its engine keeps one entry per
    agent (not 1,000): a history that grows with every contact is heap every full garbage
    collection walks while the event loop waits."""
    core = RouterCore(config(), lambda _c: None)
    core.open_session("ann", True)
    core.open_session("bob", True)
    for round_ in range(2):
        for n in range(6):
            cid = f"c{round_}-{n}"
            (agent,) = offered_to(core.enqueue(cid, "voice"))
            core.answer(cid, agent, True)
            core.complete(cid)
        for agent_id in ("ann", "bob"):
            assert core.router.agent_history(agent_id) == []
        core.reload(config(digest="v2"))  # the engine is rebuilt: the same holds
        core.check_invariants()


async def test_a_reload_frees_the_engine_it_replaces_even_from_a_frozen_heap() -> None:
    """The worker freezes its start-up heap (tune_garbage_collector): a frozen object in a
    reference cycle would never be freed. The engine a reload replaces is in none."""
    core = RouterCore(config(), lambda _c: None)
    core.open_session("ann", True)
    # The engine's own random generator stands for it: only the engine holds it, and a
    # compiled engine (mypyc) cannot be weakly referenced itself.
    old = weakref.ref(core.router._rng)
    gc.freeze()
    try:
        core.reload(config(digest="v2"))
        assert old() is None
    finally:
        gc.unfreeze()


def offers(session: object) -> list[tuple[str, int]]:
    """(contact, priority) of every offer waiting in an agent session's outbox."""
    events = session.events  # type: ignore[attr-defined]
    found = []
    while not events.empty():
        msg = events.get_nowait()
        if msg is not None and msg.HasField("offer"):
            found.append((msg.offer.contact_id, msg.offer.priority))
    return found


async def test_an_offer_tells_the_agent_the_priority_the_engine_serves_by() -> None:
    base = config()
    queues = tuple(replace(q, priority=20) if q.name == "voice" else q for q in base.queues)
    core = RouterCore(replace(base, queues=queues), lambda _c: None)
    ann = core.open_session("ann", True)
    core.enqueue("own", "voice", priority=5)
    core.enqueue("queue-default", "voice")  # no priority of its own: the queue's 20
    assert offers(ann) == [("own", 5)]
    bob = core.open_session("bob", True)  # free: takes the waiting one
    assert offers(bob) == [("queue-default", 20)]
    core.check_invariants()
