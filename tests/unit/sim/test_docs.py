"""docs/simulate.md: its workload example is a valid workload for the acme example tenant."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from callmesh.api.validate import load_tenants
from callmesh.sim.simulator import Simulator
from callmesh.sim.workload import check_against, parse_workload

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
