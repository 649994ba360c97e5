"""Progressive pacing against renewal theory, on the real dialer engine and the real ACD.

With one line per free agent, every agent goes through cycles of: dialling until a person
answers (attempts are independent: a person with probability p after the answer time X,
otherwise a machine after X plus detection, a busy line after 3 s, or the ring timeout),
then talk, then wrap-up. By the renewal-reward theorem the share of time an agent works is

    occupancy = (talk + wrap) / (E[search] + talk + wrap),
    E[search] = (1 - p) / p * E[duration of a failed attempt] + E[X]

and contacts reached per agent-hour = 3600 / (E[search] + talk + wrap). The simulation's
mean over replications must agree within its 95% interval (widened by a small bias term:
the day starts with every agent searching at once).
"""

from __future__ import annotations

from typing import Any

from callmesh.acd.config import AgentConfig, QueueConfig, TeamConfig, TierConfig
from callmesh.api.dialercampaign import DialerCampaignSpec
from callmesh.sim.campaigns import CampaignTraffic, simulate_campaign, summarize
from callmesh.sim.distributions import Constant, Exponential

P_HUMAN, P_MACHINE, P_BUSY = 0.3, 0.1, 0.05
ANSWER, AMD, RING, BUSY = 12.0, 2.5, 25.0, 3.0
TALK, WRAP = 150.0, 30.0


def theory() -> tuple[float, float]:
    p_fail = 1 - P_HUMAN
    p_none = p_fail - P_MACHINE - P_BUSY
    failed = (P_MACHINE * (ANSWER + AMD) + P_BUSY * BUSY + p_none * RING) / p_fail
    search = p_fail / P_HUMAN * failed + ANSWER
    cycle = search + TALK + WRAP
    return (TALK + WRAP) / cycle, 3600 / cycle


def test_progressive_occupancy_and_reach_agree_with_renewal_theory() -> None:
    spec = DialerCampaignSpec.model_validate(
        {
            "mode": "progressive",
            "state": "running",
            "queue": "sales",
            "contactList": {"configMap": {"name": "l", "key": "c.csv"}},
            "callerId": {"number": "+12125550100"},
            "pacing": {"ringTimeoutSeconds": int(RING)},
        }
    )
    team = TeamConfig("out", tuple(AgentConfig(f"a{i}") for i in range(10)), wrap_up_time=WRAP)
    queue = QueueConfig("sales", (TierConfig(("out",)),), wrap_up_time=WRAP)
    traffic = CampaignTraffic(
        contact_rate=P_HUMAN,
        machine_rate=P_MACHINE,
        busy_rate=P_BUSY,
        answer_time=Constant(type="constant", value=ANSWER),
        amd_seconds=AMD,
        talk_time=Exponential(type="exponential", mean=TALK),
        contacts=4000,
    )
    records: list[Any] = [
        simulate_campaign("c", spec, [queue], [team], traffic, seed=s, hours=3.0) for s in range(6)
    ]
    kpi = summarize(records)
    occupancy, reach = theory()
    occ, per_hour = kpi["occupancy"], kpi["reached_per_agent_hour"]
    assert occ.mean is not None and occ.half_width is not None
    assert per_hour.mean is not None and per_hour.half_width is not None
    assert abs(occ.mean - occupancy) <= occ.half_width + 0.01, (occ, occupancy)
    assert abs(per_hour.mean - reach) <= per_hour.half_width + 0.3, (per_hour, reach)
    assert all(r.abandoned == 0 for r in records)  # never more calls than free agents
