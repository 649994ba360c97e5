"""``callmesh validate``: the malformed corpus, a valid tenant, the CLI and the library calls.

Each file of tests/corpus/ holds one mistake a user makes, on top of otherwise valid objects,
and a header ``# expect: LINE KIND/NAME: PATH: TEXT``: the validator must report exactly
that one problem, at that line, on that field, with that text in its message.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from callmesh.api import AgentTeam, Queue
from callmesh.api.loader import parse_yaml
from callmesh.api.validate import (
    InvalidManifests,
    load_tenants,
    validate_objects,
    validate_paths,
)
from callmesh.cli import app

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus"
CASES = sorted(CORPUS.glob("*.yaml"))
OK = CORPUS / "ok"
EXPECT = re.compile(r"^# expect: (\d+) (\S+): (\S*): (.+)$", re.M)


def _expectation(path: Path) -> tuple[int, str, str, str]:
    match = EXPECT.search(path.read_text())
    assert match, f"{path.name}: no '# expect: LINE KIND/NAME: PATH: TEXT' header"
    return int(match[1]), match[2], match[3], match[4]


def test_corpus_has_at_least_40_distinct_mistakes() -> None:
    expectations = [_expectation(p)[1:] for p in CASES]
    assert len(CASES) >= 40
    assert len(set(expectations)) == len(expectations), "two corpus files test the same thing"


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_corpus_file_reports_exactly_its_mistake(path: Path) -> None:
    line, where, field, text = _expectation(path)
    problems = validate_paths([path])
    assert len(problems) == 1, "\n".join(p.format() for p in problems)
    [problem] = problems
    assert (problem.file, problem.line, problem.where(), problem.path) == (
        str(path),
        line,
        where,
        field,
    )
    assert text in problem.message
    assert " — " in problem.message, "a message says what is wrong — and how to fix it"


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_corpus_file_fails_through_the_cli(path: Path) -> None:
    line, where, field, _ = _expectation(path)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1, result.output
    prefix = f"{path}:{line} {where}:" + (f" {field}:" if field else "")
    assert prefix in result.output


def test_valid_tenant_exits_zero_and_prints_no_problem() -> None:
    result = CliRunner().invoke(app, ["validate", str(OK)])
    assert result.exit_code == 0, result.output
    assert "ok: 8 callmesh objects" in result.output


def test_json_output_lists_problems_with_their_fields() -> None:
    path = CORPUS / "unknown-team.yaml"
    result = CliRunner().invoke(app, ["validate", "--output", "json", str(path)])
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload == [
        {
            "file": str(path),
            "line": 21,
            "kind": "Queue",
            "name": "support",
            "path": "spec.tiers[0].teams[0]",
            "message": payload[0]["message"],
            "code": "TeamNotFound",
        }
    ]
    assert "did you mean tier1?" in payload[0]["message"]


def test_json_output_of_a_valid_tenant_is_an_empty_list() -> None:
    result = CliRunner().invoke(app, ["validate", "-o", "json", str(OK)])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


def test_standard_input() -> None:
    text = (CORPUS / "unknown-team.yaml").read_text()
    result = CliRunner().invoke(app, ["validate", "-"], input=text)
    assert result.exit_code == 1
    assert "<stdin>:21 Queue/support: spec.tiers[0].teams[0]:" in result.output
    ok = CliRunner().invoke(app, ["validate", "-"], input=(OK / "tenant.yaml").read_text())
    assert ok.exit_code == 0, ok.output


def test_missing_path_is_an_error() -> None:
    result = CliRunner().invoke(app, ["validate", str(CORPUS / "no-such-file.yaml")])
    assert result.exit_code == 1
    assert "no such file or folder" in result.output


def test_one_bad_object_does_not_hide_problems_elsewhere(tmp_path: Path) -> None:
    shutil.copy(OK / "tenant.yaml", tmp_path / "tenant.yaml")
    text = (tmp_path / "tenant.yaml").read_text()
    text = text.replace("maxWaitSeconds: 600", "maxWaitSeconds: -1")
    text = text.replace("flow: main, description", "flow: mian, description")
    (tmp_path / "tenant.yaml").write_text(text)
    problems = validate_paths([tmp_path])
    assert [(p.where(), p.path) for p in problems] == [
        ("ContactCenter/center", "spec.numbers[0].flow"),
        ("Queue/backlog", "spec.maxWaitSeconds"),
    ]


def test_invalid_object_is_not_reported_again_as_a_dangling_reference() -> None:
    docs, _ = parse_yaml(
        (OK / "tenant.yaml")
        .read_text()
        .replace("escalateAfterSeconds: 30", "escalateAfterSeconds: x")
    )
    problems = validate_objects(docs)
    # The flow's references to the broken queue 'support' are not reported: it exists.
    assert [(p.where(), p.path) for p in problems] == [
        ("Queue/support", "spec.tiers[1].escalateAfterSeconds")
    ]


def _ok_objects() -> list[dict[str, Any]]:
    """Plain dicts, as the API server hands them over (JSON: times and dates are strings)."""
    docs, _ = parse_yaml((OK / "tenant.yaml").read_text())
    return [json.loads(json.dumps(d.data)) for d in docs]


def test_library_call_on_plain_dicts_as_a_webhook_would() -> None:
    objects = _ok_objects()
    assert validate_objects(objects) == []
    queue = next(o for o in objects if o["kind"] == "Queue")
    queue["spec"]["tiers"][0]["teams"] = ["nobody"]
    [problem] = validate_objects(objects)
    assert (problem.file, problem.kind, problem.name, problem.path) == (
        "<input>",
        "Queue",
        "support",
        "spec.tiers[0].teams[0]",
    )


def test_load_tenants_returns_models_grouped_by_namespace() -> None:
    tenants = load_tenants([OK, ROOT / "tests" / "corpus" / "ok" / "tenant.yaml"][:1])
    assert list(tenants) == ["corpus-ok"]
    tenant = tenants["corpus-ok"]
    assert tenant.center is not None and tenant.center.spec.time_zone == "Europe/Berlin"
    assert sorted(tenant.queues) == ["backlog", "chat", "support"]
    assert isinstance(tenant.queues["support"], Queue)
    assert isinstance(tenant.teams["generalists"], AgentTeam)
    # Defaults are applied, as the API server would.
    assert tenant.queues["chat"].spec.strategy.name == "longest-idle-agent"
    assert sorted(tenant.flows) == ["main"] and sorted(tenant.campaigns) == ["renewals"]
    # Unquoted times and dates stay strings, as kubectl reads them.
    assert tenant.center.spec.schedules[0].weekly[0].open == "08:00"
    assert tenant.center.spec.schedules[0].holidays[0].date == "2026-12-25"


def test_load_tenants_raises_with_the_problems() -> None:
    with pytest.raises(InvalidManifests) as caught:
        load_tenants([CORPUS / "loop-without-exit.yaml"])
    assert [p.path for p in caught.value.problems] == ["spec.nodes[0].id"]
    assert "loop with no way out" in str(caught.value)


def test_objects_of_other_api_groups_are_skipped() -> None:
    docs, _ = parse_yaml(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\nkind: Whatever\n"
    )
    problems = validate_objects(docs)
    # A document without apiVersion is reported; a Namespace is not ours to check.
    assert [(p.line, p.path) for p in problems] == [(5, "apiVersion")]


def _flow(nodes: str, extra: str = "") -> str:
    return (
        "apiVersion: callmesh.io/v1alpha1\nkind: IVRFlow\nmetadata: {name: f}\n"
        f"spec:\n  entry: a\n{extra}  nodes:\n{nodes}"
    )


def test_menu_retrying_itself_is_not_a_loop() -> None:
    nodes = (
        "    - {id: a, type: menu, menu: {prompt: {file: m.wav}, options: [{digit: '9', target: a}],"
        " invalidTarget: a, timeoutTarget: a}}\n"
    )
    # Every exit of the menu leads back to it: that is a loop with no way out.
    [problem] = validate_objects(parse_yaml(_flow(nodes))[0])
    assert problem.path == "spec.nodes[0].id" and "a -> a" in problem.message
    # Without a timeout target the exhausted menu hangs up: a way out.
    nodes = "    - {id: a, type: menu, menu: {prompt: {file: m.wav}, options: [{digit: '9', target: a}]}}\n"
    assert validate_objects(parse_yaml(_flow(nodes))[0]) == []


def test_on_error_path_counts_as_an_exit_and_as_reachability() -> None:
    nodes = (
        "    - {id: a, type: crmLookup, crmLookup: {next: b}}\n"
        "    - {id: b, type: play, play: {prompt: {file: x.wav}, next: a}}\n"
        "    - {id: bye, type: hangup, hangup: {}}\n"
    )
    # A lookup can fail and go to onError (bye): the a <-> b loop has an exit.
    assert validate_objects(parse_yaml(_flow(nodes, "  onError: bye\n"))[0]) == []
    # Without onError a failed lookup hangs up, and bye is unreachable.
    [problem] = validate_objects(parse_yaml(_flow(nodes))[0])
    assert problem.path == "spec.nodes[2].id" and "cannot be reached" in problem.message


def test_loops_are_reported_once_per_trap() -> None:
    nodes = (
        "    - {id: a, type: play, play: {prompt: {file: x.wav}, next: b}}\n"
        "    - {id: b, type: play, play: {prompt: {file: x.wav}, next: c}}\n"
        "    - {id: c, type: play, play: {prompt: {file: x.wav}, next: b}}\n"
    )
    [problem] = validate_objects(parse_yaml(_flow(nodes))[0])
    # Reported once, on the loop itself (a only leads into it).
    assert problem.path == "spec.nodes[1].id"
    assert "nodes b -> c -> b loop" in problem.message


def test_duplicate_objects_across_files(tmp_path: Path) -> None:
    shutil.copy(OK / "tenant.yaml", tmp_path / "a.yaml")
    shutil.copy(OK / "tenant.yaml", tmp_path / "b.yaml")
    problems = validate_paths([tmp_path])
    assert problems and all(p.file.endswith("b.yaml") for p in problems)
    assert all("defined twice" in p.message for p in problems)
    assert len(problems) == 8


def test_two_namespaces_are_checked_apart(tmp_path: Path) -> None:
    text = (OK / "tenant.yaml").read_text()
    (tmp_path / "a.yaml").write_text(text)
    (tmp_path / "b.yaml").write_text(text.replace("namespace: corpus-ok", "namespace: other"))
    assert validate_paths([tmp_path]) == []
    assert sorted(load_tenants([tmp_path])) == ["corpus-ok", "other"]
