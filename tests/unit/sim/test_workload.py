"""The workload file: what is accepted, and bad input rejected naming the field, early."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from callmesh.api.validate import load_tenants
from callmesh.sim.commands import load_workload
from callmesh.sim.simulator import Simulator
from callmesh.sim.workload import (
    WorkloadError,
    check_against,
    parse_workload,
    read_workload,
)

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"


def _base() -> dict[str, Any]:
    return {
        "apiVersion": "sim.callmesh.io/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": "w", "namespace": "acme-insurance"},
        "spec": {
            "start": "08:00",
            "end": "10:00",
            "intervalMinutes": 30,
            "arrivals": [{"queue": "sales", "perHour": [10, 20, 30, 40]}],
            "queues": {
                "sales": {
                    "handleTime": {"type": "lognormal", "mean": 300, "sd": 100},
                    "patience": {"type": "exponential", "mean": 60},
                }
            },
        },
    }


def _problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(WorkloadError) as info:
        parse_workload(data, "w.yaml")
    assert str(info.value).startswith("w.yaml: the workload is invalid")
    return info.value.problems


@pytest.fixture(scope="module")
def acme() -> Any:
    return load_tenants([EXAMPLES / "acme-insurance"])["acme-insurance"]


@pytest.mark.parametrize("tenant", ["acme-insurance", "globex-telecom"])
def test_example_workloads_are_valid_for_their_tenant(tenant: str) -> None:
    workload = load_workload(EXAMPLES / tenant / "simulate" / "workload.yaml")
    tenants = load_tenants([EXAMPLES / tenant])
    assert workload.metadata.namespace == tenant
    check_against(tenants[tenant], workload, "workload.yaml")
    Simulator(tenants[tenant], workload)  # compiles flows, builds the ACD configuration


def test_rates_in_every_form_give_one_rate_per_interval() -> None:
    data = _base()
    data["spec"]["arrivals"] = [
        {"queue": "sales", "perHour": 36},
        {"queue": "sales", "perHour": [36, 72, 0, 3.6]},
        {"queue": "sales", "perHour": {"08:00": 1, "08:30": 2, "09:00": 3, "09:30": 4}},
    ]
    w = parse_workload(data)
    assert w.spec.interval_labels() == ["08:00", "08:30", "09:00", "09:30"]
    assert w.rates_per_second(0) == pytest.approx([0.01] * 4)
    assert w.rates_per_second(1) == pytest.approx([0.01, 0.02, 0.0, 0.001])
    assert w.rates_per_second(2) == pytest.approx([1 / 3600, 2 / 3600, 3 / 3600, 4 / 3600])


def test_negative_rate_names_the_field() -> None:
    data = _base()
    data["spec"]["arrivals"][0]["perHour"] = [10, -5, 30, 40]
    assert any(p.startswith("spec.arrivals[0].perHour[1]") for p in _problems(data))


@pytest.mark.parametrize(
    ("distribution", "field"),
    [
        ({"type": "lognormal", "mean": 300, "sd": 0}, "spec.queues.sales.handleTime.sd"),
        ({"type": "exponential", "mean": -1}, "spec.queues.sales.handleTime.mean"),
        ({"type": "uniform", "low": 10, "high": 5}, "spec.queues.sales.handleTime"),
        ({"type": "empirical", "values": [1, 2], "weights": [1]}, "spec.queues.sales.handleTime"),
        ({"type": "empirical", "values": []}, "spec.queues.sales.handleTime.values"),
        ({"type": "gamma", "mean": 3}, "spec.queues.sales.handleTime"),
    ],
)
def test_impossible_distributions_name_the_field(distribution: dict[str, Any], field: str) -> None:
    data = _base()
    data["spec"]["queues"]["sales"]["handleTime"] = distribution
    problems = _problems(data)
    assert any(p.startswith(field) for p in problems), problems


def test_interval_grid_must_tile_the_day() -> None:
    data = _base()
    data["spec"]["intervalMinutes"] = 45
    (problem,) = _problems(data)
    assert problem.startswith("spec:")
    assert "does not tile the day 08:00-10:00 (120 min)" in problem


def test_end_before_start_and_bad_clock() -> None:
    data = _base()
    data["spec"]["end"] = "07:00"
    assert "end (07:00) must be after start (08:00)" in _problems(data)[0]
    data["spec"]["end"] = "25:00"
    assert _problems(data)[0].startswith("spec.end")


def test_rate_list_and_mapping_must_match_the_grid() -> None:
    data = _base()
    data["spec"]["arrivals"][0]["perHour"] = [10, 20]
    (problem,) = _problems(data)
    assert problem.startswith("spec.arrivals[0].perHour: 2 rates for 4 intervals")
    data["spec"]["arrivals"][0]["perHour"] = {"08:00": 1, "08:15": 2}
    problems = _problems(data)
    assert any("08:15 not on the interval grid" in p for p in problems)
    assert any("no rate for 08:30, 09:00, 09:30" in p for p in problems)


def test_arrival_needs_exactly_one_target_and_unknown_fields_are_rejected() -> None:
    data = _base()
    data["spec"]["arrivals"][0]["flow"] = "acme-main"
    assert any("set exactly one of queue or flow" in p for p in _problems(data))
    data = _base()
    data["spec"]["arrivalz"] = []
    assert any(p.startswith("spec.arrivalz") for p in _problems(data))


def test_menu_probabilities_cannot_exceed_one() -> None:
    data = _base()
    data["spec"]["ivr"] = [
        {"flow": "acme-main", "menus": [{"node": "main-menu", "choices": {"1": 0.7, "2": 0.5}}]}
    ]
    assert any(p.startswith("spec.ivr[0].menus[0]") and "sum to 1.2" in p for p in _problems(data))


def test_date_must_match_weekday() -> None:
    data = _base()
    data["spec"]["weekday"] = "mon"
    data["spec"]["date"] = "2026-11-24"
    assert any("2026-11-24 is a tue" in p for p in _problems(data))


def test_unknown_names_in_the_tenant_are_all_reported(acme: Any) -> None:
    data = _base()
    spec = data["spec"]
    spec["arrivals"].append({"queue": "claimz", "perHour": 5})
    spec["arrivals"].append({"flow": "acme-mian", "perHour": 5})
    spec["queues"]["salez"] = copy.deepcopy(spec["queues"]["sales"])
    spec["teams"] = {"nobody": {"chatConcurrency": 2}}
    spec["ivr"] = [{"flow": "acme-main", "menus": [{"node": "welcome", "choices": {"1": 1}}]}]
    w = parse_workload(data)
    with pytest.raises(WorkloadError) as info:
        check_against(acme, w, "w.yaml")
    text = "\n".join(info.value.problems)
    assert "spec.arrivals[1].queue: unknown queue 'claimz'" in text
    assert "known: claims, sales, support" in text
    assert "spec.arrivals[2].flow: unknown IVRFlow 'acme-mian'" in text
    assert "spec.queues.salez: unknown queue" in text
    assert "spec.teams.nobody: unknown AgentTeam" in text
    assert "spec.ivr[0].menus[0].node: 'welcome' is not a menu node" in text


def test_queues_reached_need_a_handle_time_and_menus_need_choices(acme: Any) -> None:
    data = _base()
    data["spec"]["arrivals"] = [{"flow": "acme-main", "perHour": 100}]
    with pytest.raises(WorkloadError) as info:
        check_against(acme, parse_workload(data), "w.yaml")
    text = "\n".join(info.value.problems)
    # acme-main leads to claims and support too; sales overflows to a callback (no queue).
    assert "spec.queues.claims.handleTime: queue 'claims' receives contacts" in text
    assert "spec.queues.support.handleTime" in text
    assert "menu 'main-menu' has no choices" in text
    assert "menu 'claims-menu' has no choices" in text


def test_unknown_digit_in_a_menu(acme: Any) -> None:
    data = _base()
    data["spec"]["ivr"] = [
        {"flow": "acme-main", "menus": [{"node": "main-menu", "choices": {"7": 0.5}}]}
    ]
    with pytest.raises(WorkloadError) as info:
        check_against(acme, parse_workload(data), "w.yaml")
    assert any(
        p.startswith("spec.ivr[0].menus[0].choices.7: menu main-menu has no option '7'")
        for p in info.value.problems
    )


def test_workload_namespace_must_match_the_tenant(acme: Any) -> None:
    data = _base()
    data["metadata"]["namespace"] = "globex-telecom"
    with pytest.raises(WorkloadError) as info:
        check_against(acme, parse_workload(data))
    assert info.value.problems[0].startswith("metadata.namespace: 'globex-telecom'")


def test_load_workload_reads_one_document(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("kind: Queue\n---\n")
    with pytest.raises(WorkloadError, match="expected one document with kind: Workload"):
        load_workload(path)
    path.write_text("a: [\n")
    with pytest.raises(WorkloadError, match="cannot read it"):
        load_workload(path)
    with pytest.raises(WorkloadError, match=r"^.*missing.yaml: the workload is invalid"):
        load_workload(tmp_path / "missing.yaml")  # the file I/O is the command's


def test_read_workload_takes_text_and_names_its_source() -> None:
    text = (EXAMPLES / "acme-insurance" / "simulate" / "workload.yaml").read_text()
    assert read_workload(text, "acme.yaml").metadata.name == "acme-weekday"
    with pytest.raises(WorkloadError, match=r"^w\.yaml: the workload is invalid"):
        read_workload("kind: Queue\n", "w.yaml")
