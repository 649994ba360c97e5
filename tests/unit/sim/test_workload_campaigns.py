"""Campaigns in the workload (``spec.campaigns``) and in ``callmesh simulate``'s results."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from callmesh.acd.config import AgentConfig, QueueConfig, TeamConfig, TierConfig
from callmesh.api.dialercampaign import CampaignState, DialerCampaignSpec
from callmesh.api.validate import load_tenants
from callmesh.sim.campaigns import (
    campaign_agents,
    inbound_from_run,
    simulate_campaign,
)
from callmesh.sim.results import SCHEMA_VERSION, simulate
from callmesh.sim.simulator import Simulator
from callmesh.sim.workload import (
    CampaignTraffic,
    WorkloadError,
    check_against,
    parse_workload,
)

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"
SCHEMA = json.loads((ROOT / "callmesh" / "sim" / "simulate-result.schema.json").read_text())

RENEWALS = {
    "contactRate": 0.3,
    "machineRate": 0.15,
    "answerTime": {"type": "lognormal", "mean": 11, "sd": 5},
    "talkTime": {"type": "lognormal", "mean": 240, "sd": 120},
    "contacts": 3000,
}


def _acme(**campaigns: Any) -> dict[str, Any]:
    return {
        "apiVersion": "sim.callmesh.io/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": "w", "namespace": "acme-insurance"},
        "spec": {
            "weekday": "tue",
            "start": "09:00",
            "end": "10:00",
            "intervalMinutes": 30,
            "arrivals": [{"queue": "sales", "perHour": 20}],
            "queues": {"sales": {"handleTime": {"type": "exponential", "mean": 300}}},
            "campaigns": campaigns,
        },
    }


@pytest.fixture(scope="module")
def acme() -> Any:
    return load_tenants([EXAMPLES / "acme-insurance"])["acme-insurance"]


@pytest.fixture(scope="module")
def globex() -> Any:
    return load_tenants([EXAMPLES / "globex-telecom"])["globex-telecom"]


def _problems(data: dict[str, Any], tenant: Any | None = None) -> list[str]:
    with pytest.raises(WorkloadError) as info:
        workload = parse_workload(data, "w.yaml")
        if tenant is not None:
            check_against(tenant, workload, "w.yaml")
    return info.value.problems


def test_campaign_traffic_is_read_with_defaults() -> None:
    workload = parse_workload(_acme(**{"policy-renewals": RENEWALS}))
    traffic = workload.spec.campaigns["policy-renewals"]
    assert traffic.contact_rate == 0.3 and traffic.busy_rate == 0.05
    assert traffic.talk_time.mean_value == 240 and traffic.wrap_up_seconds is None


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"contactRate": 1.5}, "spec.campaigns.c.contactRate", "less than or equal to 1"),
        ({"contactRate": -0.1}, "spec.campaigns.c.contactRate", "greater than or equal to 0"),
        ({"contactRate": 0.7, "machineRate": 0.4}, "spec.campaigns.c", "add up to at most 1"),
        (
            {"contactRate": 0.3, "talkTime": {"type": "lognormal", "mean": 200, "sd": 0}},
            "spec.campaigns.c.talkTime.sd",
            "greater than 0",
        ),
        ({"contactRate": 0.3, "wrapUpSeconds": -5}, "spec.campaigns.c.wrapUpSeconds", "0"),
        ({"contactRate": 0.3, "contacts": 0}, "spec.campaigns.c.contacts", "1"),
        ({"contactRate": 0.3, "dialRate": 2}, "spec.campaigns.c.dialRate", "not permitted"),
        (
            {"contactRate": 0.3, "transferRate": 0.8, "optOutRate": 0.4},
            "spec.campaigns.c",
            "transferRate + optOutRate",
        ),
    ],
)
def test_impossible_campaign_parameters_name_the_field(
    body: dict[str, Any], field: str, words: str
) -> None:
    problems = _problems(_acme(c=body))
    assert any(p.startswith(f"{field}:") and words in p for p in problems), problems


def test_unknown_campaign_is_named_with_the_known_ones(acme: Any) -> None:
    (problem,) = _problems(_acme(renewals=RENEWALS), acme)
    assert problem.startswith("spec.campaigns.renewals: unknown DialerCampaign 'renewals'")
    assert "known: policy-renewals" in problem


def test_a_closed_calling_window_or_a_paused_campaign_is_refused(acme: Any) -> None:
    sunday = _acme(**{"policy-renewals": RENEWALS})
    sunday["spec"]["weekday"] = "sun"  # the window is mon..sat
    (problem,) = _problems(sunday, acme)
    assert problem.startswith("spec.campaigns.policy-renewals: the calling window")
    assert "closed all through the simulated day (sun 09:00-10:00)" in problem
    early = _acme(**{"policy-renewals": RENEWALS})
    early["spec"].update(start="06:00", end="09:00")  # the window opens at 09:00
    assert "closed all through" in _problems(early, acme)[0]
    paused = copy.deepcopy(acme)
    resource = paused.campaigns["policy-renewals"]
    paused.campaigns["policy-renewals"] = resource.model_copy(
        update={"spec": resource.spec.model_copy(update={"state": CampaignState.paused})}
    )
    (problem,) = _problems(_acme(**{"policy-renewals": RENEWALS}), paused)
    assert "is paused (spec.state)" in problem


def test_agentless_parameters_belong_to_agentless_campaigns(acme: Any, globex: Any) -> None:
    predictive = _acme(**{"policy-renewals": {**RENEWALS, "transferRate": 0.1}})
    (problem,) = _problems(predictive, acme)
    assert problem.startswith("spec.campaigns.policy-renewals.transferRate: only agentless")
    workload = _globex_workload({"contactRate": 0.3})
    (problem,) = _problems(workload, globex)
    assert problem.startswith("spec.campaigns.fiber-upgrade.transferRate: campaign")
    assert "agentless" in problem


def _globex_workload(traffic: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "sim.callmesh.io/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": "w", "namespace": "globex-telecom"},
        "spec": {
            "weekday": "mon",
            "start": "10:00",
            "end": "11:00",
            "intervalMinutes": 60,
            "arrivals": [{"queue": "sales", "perHour": 6}],
            "queues": {"sales": {"handleTime": {"type": "exponential", "mean": 300}}},
            "campaigns": {"fiber-upgrade": traffic},
        },
    }


def test_only_tiers_open_within_the_compliance_window_are_campaign_agents(acme: Any) -> None:
    spec = acme.campaigns["policy-renewals"].spec  # sales: sales-desk, generalists after 90 s
    sim = Simulator(acme, parse_workload(_acme()))
    teams = {t.name: t for t in sim.setup.teams}
    sales = next(q for q in sim.setup.queues if q.name == "sales")
    agents = campaign_agents(spec, sales, teams)
    assert set(agents) == {a.id for a in teams["sales-desk"].agents}
    agentless = DialerCampaignSpec.model_validate(
        {
            **spec.model_dump(by_alias=True, exclude_none=True),
            "mode": "agentless",
            "agentless": {"message": {"text": "hi"}},
        }
    )
    assert len(campaign_agents(agentless, sales, teams)) == 12 + 16  # every tier


def _run(acme: Any, seed: int = 5, **campaigns: Any) -> dict[str, Any]:
    sim = Simulator(acme, parse_workload(_acme(**campaigns)))
    return simulate(sim, seed, 2)


def test_simulate_reports_campaign_kpis_with_intervals_in_the_schema(acme: Any) -> None:
    run = _run(acme, **{"policy-renewals": RENEWALS})
    assert run["schemaVersion"] == SCHEMA_VERSION == 2
    jsonschema.Draft202012Validator(SCHEMA).validate(
        {"schemaVersion": 2, "seed": 5, "replications": 2, "runs": [run]}
    )
    (campaign,) = run["campaigns"]
    assert campaign["name"] == "policy-renewals" and campaign["mode"] == "predictive"
    assert campaign["agents"] == 12
    occupancy = campaign["occupancyPercent"]
    assert 0 < occupancy["mean"] <= 100 and occupancy["n"] == 2
    assert occupancy["halfWidth"] is not None
    answered, abandoned = campaign["answered"]["mean"], campaign["abandoned"]["mean"]
    assert answered > 0
    assert campaign["abandonedPercent"]["mean"] == pytest.approx(
        100 * abandoned / answered, rel=0.5
    )
    reached = campaign["reached"]["mean"]
    assert campaign["reachedPerAgentHour"]["mean"] == pytest.approx(reached / 12, rel=1e-6)
    # The same seed gives the same document; another seed another one.
    assert _run(acme, **{"policy-renewals": RENEWALS}) == run
    assert _run(acme, seed=6, **{"policy-renewals": RENEWALS})["campaigns"] != run["campaigns"]


def test_a_workload_without_campaigns_reports_none(acme: Any) -> None:
    assert _run(acme)["campaigns"] == []


def test_inbound_load_for_the_campaign_comes_from_the_run(acme: Any) -> None:
    workload = parse_workload(_acme())
    run = simulate(Simulator(acme, workload), 1, 2, campaigns=False)
    (sales,) = inbound_from_run(workload, run)
    answered = next(q for q in run["queues"] if q["name"] == "sales")["total"]["answered"]
    assert sales.queue == "sales" and sales.per_hour == pytest.approx(answered["mean"])


TEAM = TeamConfig("out", tuple(AgentConfig(f"a{i}") for i in range(6)), wrap_up_time=10.0)
SALES = QueueConfig("sales", (TierConfig(("out",)),), wrap_up_time=10.0)


def _spec(**overrides: Any) -> DialerCampaignSpec:
    base: dict[str, Any] = {
        "mode": "progressive",
        "state": "running",
        "queue": "sales",
        "contactList": {"configMap": {"name": "l", "key": "c.csv"}},
        "callerId": {"number": "+12125550100"},
    }
    base.update(overrides)
    return DialerCampaignSpec.model_validate(base)


def test_wrap_up_seconds_is_a_what_if_on_the_campaign_agents() -> None:
    traffic = CampaignTraffic(contact_rate=0.4, contacts=2000)
    short = simulate_campaign("c", _spec(), [SALES], [TEAM], traffic, seed=2, hours=1.0)
    longer = traffic.model_copy(update={"wrap_up_seconds": 240.0})
    long = simulate_campaign("c", _spec(), [SALES], [TEAM], longer, seed=2, hours=1.0)
    # Longer wrap-up: agents stay busy longer per call, so fewer calls reach them.
    assert long.reached < short.reached
    assert long.reached_per_agent_hour < short.reached_per_agent_hour


def test_agentless_listeners_press_one_opt_out_or_give_up_waiting() -> None:
    spec = _spec(
        mode="agentless",
        agentless={"message": {"text": "Press 1"}, "transferDigit": "1", "optOutDigit": "9"},
    )
    traffic = CampaignTraffic(
        contact_rate=0.5,
        transfer_rate=0.3,
        opt_out_rate=0.2,
        contacts=4000,
        patience={"type": "exponential", "mean": 20},
    )
    small = TeamConfig("out", (AgentConfig("a0"),), wrap_up_time=10.0)
    rec = simulate_campaign("c", spec, [SALES], [small], traffic, seed=4, hours=1.0)
    assert rec.answered > 100
    assert rec.transferred == pytest.approx(0.3 * rec.answered, rel=0.35)
    assert rec.opted_out == pytest.approx(0.2 * rec.answered, rel=0.35)
    # One agent cannot take every transfer: impatient listeners hang up in the queue.
    assert rec.transfers_abandoned > 0
    assert rec.reached + rec.transfers_abandoned <= rec.transferred
    assert rec.abandoned == 0  # nobody waits for an agent within a compliance window
