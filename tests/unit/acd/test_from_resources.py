"""The ACD configuration built from the Queue and AgentTeam resources of the examples."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from callmesh.acd import AgentState, Channel, ContactSpec, Offer, OverflowAction, Router
from callmesh.acd.config import from_resources
from callmesh.api.agentteam import AgentTeam
from callmesh.api.queue import Queue

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _load(tenant: str) -> tuple[list[Queue], list[AgentTeam]]:
    queues = [
        Queue.model_validate(doc)
        for doc in yaml.safe_load_all((EXAMPLES / tenant / "queues.yaml").read_text())
        if doc
    ]
    teams = [
        AgentTeam.model_validate(doc)
        for doc in yaml.safe_load_all((EXAMPLES / tenant / "agentteams.yaml").read_text())
        if doc
    ]
    return queues, teams


@pytest.mark.parametrize("tenant", ["acme-insurance", "globex-telecom"])
def test_example_tenants_build_a_router_that_routes(tenant: str) -> None:
    queues, teams = _load(tenant)
    queue_configs, team_configs = from_resources(queues, teams)
    router = Router(queue_configs, team_configs)
    assert [q.name for q in queue_configs] == [q.name for q in queues]
    for team in team_configs:
        for agent in team.agents:
            if router.agent_state(agent.id) is AgentState.LOGGED_OUT:
                router.login(agent.id, 0.0)
    for n, queue in enumerate(queue_configs):
        effects = router.enqueue(ContactSpec(f"c{n}", queue.name), 1.0)
        offers = [e for e in effects if isinstance(e, Offer)]
        assert offers, f"{tenant}: nobody can take a contact of queue {queue.name}"
        assert offers[0].decision.decided_by.split(":")[-1] in {
            queue.strategy,
            "longest-idle-agent",
        }
    router.check_invariants()


def test_fields_are_mapped() -> None:
    queues, teams = _load("acme-insurance")
    queue_configs, team_configs = from_resources(queues, teams)
    sales = next(q for q in queue_configs if q.name == "sales")
    assert sales.skills == {"sales": 1}
    assert [t.delay for t in sales.tiers] == [0.0, 90.0]
    assert sales.tiers[0].teams == ("sales-desk",)
    assert sales.max_wait == 600.0 and sales.overflow is not None
    assert sales.overflow.action is OverflowAction.CALLBACK
    assert sales.priority == 20 and sales.offer_timeout == 20.0 and sales.wrap_up_time == 30.0
    assert sales.channel is Channel.VOICE
    source = next(t for t in teams if t.name == "sales-desk").spec.agents[0]
    agent = next(a for t in team_configs for a in t.agents if a.id == source.id)
    assert agent.skills == {s.name: s.level for s in source.skills}
    assert agent.capacity[Channel.VOICE] == source.capacity.voice
