"""The vendor's own tests: the callmesh conformance suite plus the plugin's behaviour."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from callmesh.plugins.manager import PluginManager
from callmesh.plugins.testkit import PluginConformance, make_request

from callmesh.acd.strategy import AgentView, Channel, ContactView


class TestConformance(PluginConformance):
    """callmesh's conformance suite, run against the installed plugin."""

    plugin_name: ClassVar[str] = "vip-routing"
    plugin_config: ClassVar[Mapping[str, object]] = {
        "values": ["vip", "gold"],
        "senior_skill": "billing",
        "min_level": 5,
    }
    sample_attributes: ClassVar[Mapping[str, Sequence[str]]] = {
        "tier": ["vip", "gold", "standard", ""]
    }


def agent(agent_id: str, idle_since: float, seniority: int) -> AgentView:
    return AgentView(agent_id, {"seniority": seniority}, idle_since, 0, 0.0, "team", 1, 0)


AGENTS = [agent("junior", 10.0, 2), agent("senior", 50.0, 9), agent("senior-2", 80.0, 8)]


def contact(tier: str) -> ContactView:
    return ContactView("c1", Channel.VOICE, 0, {"tier": tier}, {}, "support", 0.0)


def test_vip_goes_to_the_longest_idle_senior(
    callmesh_plugin_manager: type[PluginManager],
) -> None:
    manager = callmesh_plugin_manager([{"name": "vip-routing", "config": {}}])
    decision = manager.route(make_request(AGENTS, contact=contact("vip")))
    assert decision is not None
    assert decision.agent_ids == ("senior",)
    assert decision.decided_by == "vip-routing"


def test_others_are_left_to_the_queue_strategy(
    callmesh_plugin_manager: type[PluginManager],
) -> None:
    manager = callmesh_plugin_manager([{"name": "vip-routing", "config": {}}])
    decision = manager.route(make_request(AGENTS, contact=contact("standard")))
    assert decision is not None
    assert decision.agent_ids == ("junior",)  # longest idle overall
    assert decision.decided_by == "longest-idle-agent"
