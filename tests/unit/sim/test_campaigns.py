"""Campaigns on the simulated clock: the real dialer engine and the real ACD together."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest

from callmesh.acd.config import AgentConfig, QueueConfig, TeamConfig, TierConfig
from callmesh.api.dialercampaign import DialerCampaignSpec
from callmesh.api.validate import load_tenants
from callmesh.sim.campaigns import (
    CampaignRecord,
    CampaignTraffic,
    InboundTraffic,
    parse_campaign_traffic,
    simulate_campaign,
    simulate_tenant_campaigns,
    summarize,
    summary_document,
    summary_line,
    synthetic_contacts,
)
from callmesh.sim.commands import load_workload
from callmesh.sim.distributions import Exponential, Lognormal

TEAM = TeamConfig("out", tuple(AgentConfig(f"a{i}") for i in range(8)), wrap_up_time=30.0)
SALES = QueueConfig("sales", (TierConfig(("out",)),), wrap_up_time=30.0)
SUPPORT = QueueConfig("support", (TierConfig(("out",)),), wrap_up_time=30.0)
TRAFFIC = CampaignTraffic(
    contact_rate=0.3,
    machine_rate=0.1,
    answer_time=Lognormal(type="lognormal", mean=12, sd=4),
    talk_time=Exponential(type="exponential", mean=120),
    contacts=1500,
)


def spec(**overrides: Any) -> DialerCampaignSpec:
    base: dict[str, Any] = {
        "mode": "predictive",
        "state": "running",
        "queue": "sales",
        "contactList": {"configMap": {"name": "l", "key": "c.csv"}},
        "callerId": {"number": "+12125550100"},
    }
    base.update(overrides)
    return DialerCampaignSpec.model_validate(base)


def run(pacer: Any = "campaign", seed: int = 3, **kwargs: Any) -> CampaignRecord:
    if not kwargs:
        return _cached(pacer, seed)
    return simulate_campaign(
        "c", spec(), [SALES, SUPPORT], [TEAM], TRAFFIC, seed=seed, hours=0.5, pacer=pacer, **kwargs
    )


@functools.cache
def _cached(pacer: Any, seed: int) -> CampaignRecord:
    return simulate_campaign(
        "c", spec(), [SALES, SUPPORT], [TEAM], TRAFFIC, seed=seed, hours=0.5, pacer=pacer
    )


def test_same_seed_same_record() -> None:
    again = simulate_campaign(
        "c", spec(), [SALES, SUPPORT], [TEAM], TRAFFIC, seed=3, hours=0.5, pacer="campaign"
    )
    assert again == run()
    assert run(seed=4) != run()


def test_progressive_never_abandons_and_predictive_keeps_agents_busier() -> None:
    progressive, predictive = run("progressive"), run("campaign")
    assert progressive.abandoned == 0 and progressive.answered > 25
    assert predictive.occupancy > progressive.occupancy
    assert predictive.abandon_rate <= 0.05  # one hour, eight agents: a loose bound
    assert predictive.reached_per_agent_hour > progressive.reached_per_agent_hour
    assert 0 < predictive.occupancy <= 1
    assert predictive.reached <= predictive.answered <= predictive.dialled


def test_inbound_calls_share_the_agents() -> None:
    alone = run("progressive")
    shared = run(
        "progressive",
        inbound=[
            InboundTraffic(
                queue="support", per_hour=60, handle_time=Exponential(type="exponential", mean=120)
            )
        ],
    )
    assert shared.inbound_answered > 15
    assert shared.reached < alone.reached  # the agents took inbound calls too


def test_do_not_call_numbers_are_never_dialled_in_simulation() -> None:
    contacts = synthetic_contacts(200)
    dnc = frozenset(c.phone for c in contacts.contacts[::2])
    record = run("campaign", contacts=contacts, do_not_call=dnc)
    assert record.dialled <= 100


def test_summary_gives_intervals_over_replications() -> None:
    kpi = summarize([run(seed=s) for s in (3, 4, 5)])
    assert kpi["occupancy"].n == 3 and kpi["occupancy"].half_width is not None


def test_unknown_target_queue_is_named() -> None:
    with pytest.raises(ValueError, match=r"spec\.queue 'sales' is not among the queues"):
        simulate_campaign("c", spec(), [SUPPORT], [TEAM], TRAFFIC, seed=1, hours=0.1)


EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "acme-insurance"


def test_a_tenants_campaign_runs_on_its_workload_day_with_inbound_traffic() -> None:
    tenant = load_tenants([EXAMPLE])["acme-insurance"]
    workload = load_workload(EXAMPLE / "simulate" / "workload.yaml")
    short = workload.model_copy(
        update={"spec": workload.spec.model_copy(update={"start": "09:00", "end": "09:10"})}
    )
    traffic = parse_campaign_traffic(
        {"policy-renewals": {"contactRate": 0.3, "machineRate": 0.1, "contacts": 2000}}
    )
    (summary,) = simulate_tenant_campaigns(tenant, short, traffic, seed=1, replications=2)
    assert summary.campaign == "policy-renewals" and summary.pacer == "predictive"
    assert len(summary.records) == 2 and all(r.dialled > 0 for r in summary.records)
    assert summary.kpis["occupancy"].n == 2
    document = summary_document(summary, tenant.campaigns["policy-renewals"].spec)
    assert document["occupancyPercent"]["n"] == 2 and document["agents"] == 12
    assert document["abandonPeriod"] == "rolling30Days" and document["maxAbandonPercent"] == 3
    assert summary_line(document).startswith(
        "campaign policy-renewals (predictive, 12 agents): occupancy "
    )
    with pytest.raises(ValueError, match=r"spec\.campaigns\.x: .*contact_rate|contactRate"):
        parse_campaign_traffic({"x": {"contactRate": 2}})
    with pytest.raises(ValueError, match="manifests do not define"):
        simulate_tenant_campaigns(
            tenant, short, {"nope": traffic["policy-renewals"]}, seed=1, replications=1
        )
