"""Seeded random walks over RouterCore: any mix of good and bad requests, reloads included,
leaves the engine's invariants and the worker's bookkeeping intact after every step."""

from __future__ import annotations

import random

from callmesh.workers.router.config import RouterConfig, RouterConfigError
from callmesh.workers.router.core import RequestError, RouterCore

from callmesh.acd import AgentConfig, Channel, QueueConfig, TeamConfig, TierConfig
from callmesh.acd.errors import AcdError

AGENTS = ("ann", "bob", "cid", "dee")


def config(version: int) -> RouterConfig:
    """Two alternating configs: the second adds an agent, a tier and a chat capacity."""
    members = AGENTS[:3] if version % 2 == 0 else AGENTS
    agents = tuple(
        AgentConfig(
            a,
            skills={"en": 5, "fr": 3 if a in ("bob", "dee") else 0} if a != "ann" else {"en": 2},
            capacity={Channel.VOICE: 1, Channel.CHAT: 2 + version % 2},
        )
        for a in members
    )
    skills = {
        name: {k: v for k, v in a.skills.items() if v} for name, a in ((a.id, a) for a in agents)
    }
    agents = tuple(AgentConfig(a.id, skills=skills[a.id], capacity=a.capacity) for a in agents)
    tiers = (
        (TierConfig(("one",)),)
        if version % 2 == 0
        else (TierConfig(("one",)), TierConfig(("two",), 5.0))
    )
    teams = [TeamConfig("one", agents[:2]), TeamConfig("two", agents[2:])]
    if version % 2 == 0:
        tiers = (TierConfig(("one", "two")),)
    return RouterConfig(
        namespace="t",
        queues=(
            QueueConfig("voice", tiers, strategy="round-robin", wrap_up_time=5.0 + version % 2),
            QueueConfig("chat", tiers, channel=Channel.CHAT, strategy="agent-with-fewest-calls"),
            QueueConfig("fr", tiers, skills={"fr": 2}),
        ),
        teams=tuple(teams),
        digest=f"v{version}",
    )


async def test_random_walks_keep_invariants() -> None:
    wrapped = sum([await walk(seed) for seed in range(4)])
    assert wrapped, "no reload happened during a wrap-up: widen the walks"


async def walk(seed: int) -> int:
    """One walk; returns how many agents were in wrap-up at its reloads."""
    rng = random.Random(seed)
    core = RouterCore(config(0), lambda _c: None, seed=seed)
    version = 0
    next_id = 0
    sessions = {}
    refused = accepted = wrapped_at_reload = 0
    for _step in range(300):
        op = rng.choice(
            ["enqueue"] * 5
            + ["login", "logout", "drop", "ready", "not_ready", "accept"] * 2
            + ["reject", "cancel", "transfer", "reload", "bad"]
            + ["complete"] * 3
        )
        agent = rng.choice((*AGENTS, "ghost"))
        contact = f"c{rng.randrange(max(1, next_id))}"
        try:
            if op == "enqueue":
                next_id += 1
                core.enqueue(
                    f"c{next_id - 1}",
                    rng.choice(["voice", "chat", "fr"]),
                    priority=rng.choice([None, 0, 5]),
                )
            elif op == "login":
                sessions[agent] = core.open_session(agent, rng.random() < 0.8)
            elif op == "logout":
                core.logout(agent)
            elif op == "drop" and agent in sessions:
                core.close_session(sessions.pop(agent))
            elif op == "ready":
                core.set_ready(agent)
            elif op == "not_ready":
                core.set_not_ready(agent, rng.choice(["lunch", ""]))
            elif op in ("accept", "reject"):
                ringing = [(c, a) for c, i in core.contacts.items() for a in i.ringing]
                if ringing and rng.random() < 0.8:
                    contact, agent = rng.choice(sorted(ringing))
                core.answer(contact, agent, op == "accept")
            elif op == "cancel":
                core.cancel(contact)
            elif op == "complete":
                talking = sorted(c for c, i in core.contacts.items() if i.agent_id)
                if talking and rng.random() < 0.8:
                    contact = rng.choice(talking)
                core.complete(contact)
            elif op == "transfer":
                core.transfer(contact, rng.choice(["voice", "chat", "fr", "nope"]), "test")
            elif op == "reload":
                version += 1
                wrapping = [a for a in core.wrap_started if core.router.agent_state(a) == "WrapUp"]
                core.reload(config(version))
                wrapped_at_reload += len(wrapping)
            elif op == "bad":
                core.enqueue("", "voice")
            accepted += 1
        except (AcdError, RequestError, RouterConfigError):
            refused += 1
            if op == "reload":
                version -= 1
        core.check_invariants()
        assert set(core.sessions) <= set(AGENTS)
    assert accepted > 100 and refused > 20 and core.reloads > 2
    core.close()
    return wrapped_at_reload
