"""docs/simulate.md: its workload example runs on the acme example tenant, and every error it
shows is what the check prints for that example with the mistake made."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from callmesh.api.validate import load_tenants
from callmesh.sim.simulator import Simulator
from callmesh.sim.workload import WorkloadError, check_against, parse_workload

ROOT = Path(__file__).resolve().parents[3]


def test_the_documented_workload_runs_on_the_acme_example() -> None:
    text = (ROOT / "docs" / "simulate.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    docs = [yaml.safe_load(b) for b in blocks]
    (example,) = [d for d in docs if isinstance(d, dict) and d.get("kind") == "Workload"]
    workload = parse_workload(example, "docs/simulate.md")
    tenant = load_tenants([ROOT / "examples" / "acme-insurance"])["acme-insurance"]
    check_against(tenant, workload, "docs/simulate.md")
    sim = Simulator(tenant, workload)
    assert sim.intervals == 12
    assert sim.flow_names == ("acme-main",)


def test_every_kpi_of_the_schema_is_defined_in_the_docs() -> None:
    text = (ROOT / "docs" / "simulate.md").read_text()
    from callmesh.sim.results import KPI_NAMES

    for name in KPI_NAMES:
        assert f"`{name}`" in text, f"docs/simulate.md does not define {name}"


def _documented_workload() -> dict[str, Any]:
    text = (ROOT / "docs" / "simulate.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    (example,) = [
        d
        for d in map(yaml.safe_load, blocks)
        if isinstance(d, dict) and d.get("kind") == "Workload"
    ]
    return dict(example)


def test_the_documented_campaign_is_played_with_its_parameters() -> None:
    workload = parse_workload(_documented_workload(), "docs/simulate.md")
    renewals = workload.spec.campaigns["policy-renewals"]
    assert (renewals.contact_rate, renewals.machine_rate, renewals.busy_rate) == (0.32, 0.18, 0.04)
    assert renewals.wrap_up_seconds == 45 and renewals.contacts == 12000


def _mutations() -> list[Any]:
    """How each documented error is made from the documented example, in the page's order."""

    def negative_rate_and_sd(spec: dict[str, Any]) -> None:
        spec["arrivals"][1]["perHour"] = [12] * 23 + [-1]
        spec["queues"]["claims"]["handleTime"] = {"type": "lognormal", "mean": 540, "sd": 0}

    def grid(spec: dict[str, Any]) -> None:
        spec["intervalMinutes"] = 25

    def unknown_names(spec: dict[str, Any]) -> None:
        spec["arrivals"][0] = {"queue": "claimz", "perHour": 10}
        spec["ivr"][0]["menus"][0]["choices"]["7"] = 0.01

    def shares(spec: dict[str, Any]) -> None:
        spec["campaigns"]["policy-renewals"]["contactRate"] = 0.88

    def unknown_campaign(spec: dict[str, Any]) -> None:
        spec["campaigns"]["renewals"] = spec["campaigns"].pop("policy-renewals")

    return [negative_rate_and_sd, grid, unknown_names, shares, unknown_campaign]


def test_every_documented_error_is_what_the_workload_check_prints() -> None:
    text = (ROOT / "docs" / "simulate.md").read_text()
    section = text.split("Bad input is rejected before anything runs", 1)[1]
    block = re.search(r"```\n(.*?)```", section, flags=re.S)
    assert block is not None
    documented = [b.strip() for b in block.group(1).split("\n\n")]
    tenant = load_tenants([ROOT / "examples" / "acme-insurance"])["acme-insurance"]
    mutations = _mutations()
    assert len(documented) == len(mutations)
    for expected, mutate in zip(documented, mutations, strict=True):
        data = copy.deepcopy(_documented_workload())
        mutate(data["spec"])
        with pytest.raises(WorkloadError) as info:
            check_against(tenant, parse_workload(data, "workload.yaml"), "workload.yaml")
        assert str(info.value) == expected
