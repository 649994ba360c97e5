"""Pure pieces of the operator: conditions, the apply helper's comparisons, admission, render."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml
from callmesh.operator import status as st
from callmesh.operator.apply import covers, stamp, up_to_date
from callmesh.operator.labels import INPUT_HASH
from callmesh.operator.webhook import admission_problems
from typer.testing import CliRunner

from callmesh.api.problems import Problem
from callmesh.cli import app

ROOT = Path(__file__).resolve().parents[3]
T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(minutes=5)


def body(generation: int = 1, status: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"metadata": {"name": "q", "generation": generation}}
    if status is not None:
        out["status"] = status
    return out


def test_transition_time_moves_only_when_the_status_changes() -> None:
    ready = st.Verdict(True, st.AVAILABLE, "configuration applied")
    first = st.status_patch(body(), ready, T0)
    assert first is not None and first["observedGeneration"] == 1
    assert {c["type"]: c["status"] for c in first["conditions"]} == {
        "Ready": "True",
        "Progressing": "False",
        "Degraded": "False",
    }
    # same verdict later: nothing to write
    assert st.status_patch(body(status=first), ready, T1) is None
    # new generation, same verdict: written, but no condition changed its status
    second = st.status_patch(body(2, first), ready, T1)
    assert second is not None and second["observedGeneration"] == 2
    assert all(c["lastTransitionTime"] == "2026-01-01T12:00:00Z" for c in second["conditions"])
    # degraded: Ready and Degraded move, Progressing (False before and after) keeps its time
    bad = st.Verdict(False, "TeamNotFound", "spec.tiers[0].teams[0]: ...", degraded=True)
    third = st.status_patch(body(2, second), bad, T1)
    assert third is not None
    times = {c["type"]: c["lastTransitionTime"] for c in third["conditions"]}
    assert times == {
        "Ready": "2026-01-01T12:05:00Z",
        "Progressing": "2026-01-01T12:00:00Z",
        "Degraded": "2026-01-01T12:05:00Z",
    }
    assert st.transitions(second["conditions"], third["conditions"]) == [
        ("Ready", "True", "False"),
        ("Progressing", "False", "False"),  # same status, new reason
        ("Degraded", "False", "True"),
    ]


def test_problem_reasons_come_from_the_validators_codes() -> None:
    from callmesh.api.validate import check

    docs = manifests("acme-insurance")
    for doc in docs:
        if doc["kind"] == "Queue" and doc["metadata"]["name"] == "support":
            doc["spec"]["tiers"] = [{"level": 1, "teams": ["night"]}]
            doc["spec"]["overflow"] = {"action": "queue", "queue": "nowhere"}
        if doc["kind"] == "Queue" and doc["metadata"]["name"] == "claims":
            doc["spec"]["maxWaitSeconds"] = -5
    problems, _ = check(docs)
    by_path = {(p.name, p.path): p for p in problems}
    team = by_path[("support", "spec.tiers[0].teams[0]")]
    assert (team.code, st.reason_for(team)) == ("TeamNotFound", "TeamNotFound")
    assert st.missing_reference(team) == ("AgentTeam", "night")
    overflow = by_path[("support", "spec.overflow.queue")]
    assert st.reason_for(overflow) == "QueueNotFound"
    assert st.missing_reference(overflow) == ("Queue", "nowhere")
    (bad_value,) = [p for p in problems if p.name == "claims"]
    assert st.reason_for(bad_value) == "InvalidSpec" and st.missing_reference(bad_value) is None
    # the reason does not depend on the wording of the message
    reworded = Problem(
        team.file, team.line, team.kind, team.name, team.path, "no such team", team.code
    )
    assert st.reason_for(reworded) == "TeamNotFound"
    verdict = st.verdict_for_problems([team])
    assert verdict.degraded and verdict.message.startswith("spec.tiers[0].teams[0]: AgentTeam")


def test_input_hash_and_drift_detection() -> None:
    desired = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "a", "labels": {"x": "1"}},
        "data": {"k": "v"},
    }
    stamped = stamp(desired)
    assert (
        stamped["metadata"]["annotations"][INPUT_HASH]
        == stamp(stamped)["metadata"]["annotations"][INPUT_HASH]
    )
    assert "annotations" not in desired["metadata"]  # the input is not modified
    live = {
        **stamped,
        "metadata": {**stamped["metadata"], "uid": "u", "resourceVersion": "7"},
        "status": {},
    }
    assert up_to_date(live, stamped)  # server-added fields are fine
    assert not up_to_date({**live, "data": {"k": "edited"}}, stamped)  # a hand edit is drift
    changed = stamp({**desired, "data": {"k": "new"}})
    assert not up_to_date(live, changed)
    assert covers({"a": [{"b": 1, "c": 2}]}, {"a": [{"b": 1}]})
    assert not covers({"a": [{"b": 1}, {"b": 2}]}, {"a": [{"b": 1}]})


def manifests(tenant: str) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((ROOT / "examples" / tenant).glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_admission_rejects_bad_objects_and_only_warns_on_missing_references() -> None:
    docs = manifests("acme-insurance")
    others = [d for d in docs if d["kind"] != "Queue" or d["metadata"]["name"] != "support"]
    (support,) = [d for d in docs if d["kind"] == "Queue" and d["metadata"]["name"] == "support"]
    assert admission_problems(support, others) == ([], [])

    dangling = {**support, "spec": {**support["spec"], "tiers": [{"level": 1, "teams": ["new"]}]}}
    rejected, warned = admission_problems(dangling, others)
    assert rejected == [] and "'new' does not exist" in warned[0].message

    broken = {**support, "spec": {**support["spec"], "maxWaitSeconds": -5}}
    rejected, _ = admission_problems(broken, others)
    assert rejected and "maxWaitSeconds" in rejected[0].path

    # a ContactCenter applied before its flows (kubectl apply -f folder/ goes by file name)
    (center,) = [d for d in docs if d["kind"] == "ContactCenter"]
    rejected, warned = admission_problems(center, [])
    assert rejected == [] and {p.path for p in warned} == {
        f"spec.numbers[{i}].flow" for i in range(3)
    }


def test_render_prints_valid_objects_and_no_secret_by_default() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["render", str(ROOT / "examples")])
    assert result.exit_code == 0, result.output
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    kinds = {d["kind"] for d in docs}
    assert "Secret" not in kinds
    assert {"StatefulSet", "Deployment", "ConfigMap", "Service", "NetworkPolicy"} <= kinds
    assert {"acme-insurance", "globex-telecom"} <= {d["metadata"]["namespace"] for d in docs}
    assert all("ownerReferences" not in d["metadata"] for d in docs)
    with_secrets = runner.invoke(app, ["render", str(ROOT / "examples"), "--include-secrets"])
    secrets = [
        d
        for d in yaml.safe_load_all(with_secrets.stdout)
        if d and d["kind"] == "Secret" and d["metadata"]["namespace"] == "acme-insurance"
    ]
    assert len(secrets) == 1 + 40  # the ESL password, one SIP password per agent


def test_render_refuses_invalid_manifests(tmp_path: Path) -> None:
    bad = tmp_path / "q.yaml"
    bad.write_text(
        "apiVersion: callmesh.io/v1alpha1\nkind: Queue\n"
        "metadata: {name: q, namespace: t}\nspec: {tiers: [{level: 1, teams: [ghosts]}]}\n"
    )
    result = CliRunner().invoke(app, ["render", str(bad)])
    assert result.exit_code == 1
    assert "ghosts" in result.output
    assert "kind: ConfigMap" not in result.output  # nothing rendered
