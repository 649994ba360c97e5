"""Reading manifests: lines per field, kubectl's scalars, and hostile YAML refused cleanly."""

from __future__ import annotations

from pathlib import Path

from callmesh.api.commands import find_files, read_documents
from callmesh.api.loader import Document, parse_yaml

TEXT = """\
# comment
apiVersion: callmesh.io/v1alpha1
kind: Queue
metadata:
  name: q
spec:
  tiers:
    - level: 1
      teams: [a, b]
    - level: 2
      teams:
        - c
---
---
kind: Second
"""


def test_documents_keep_their_start_line_and_field_lines() -> None:
    docs, problems = parse_yaml(TEXT, "x.yaml")
    assert problems == []
    assert [(d.file, d.line, d.index) for d in docs] == [("x.yaml", 2, 0), ("x.yaml", 15, 2)]
    first = docs[0]
    assert first.line_of(("spec", "tiers")) == 7
    assert first.line_of(("spec", "tiers", 1)) == 10
    assert first.line_of(("spec", "tiers", 1, "teams", 0)) == 12
    assert first.line_of(("spec", "tiers", 0, "teams", 1)) == 9
    # A missing field points at its nearest written ancestor.
    assert first.line_of(("spec", "tiers", 1, "escalateAfterSeconds")) == 10
    assert first.line_of(("status",)) == 2


def test_times_and_dates_stay_strings_as_kubectl_reads_them() -> None:
    [doc], _ = parse_yaml(
        "a: 10:30\nb: 2026-12-25\nc: 2026-12-25T10:00:00Z\nd: 190:20:30.15\ne: 42\nf: 1.5\n"
    )
    assert doc.data == {
        "a": "10:30",
        "b": "2026-12-25",
        "c": "2026-12-25T10:00:00Z",
        "d": "190:20:30.15",
        "e": 42,
        "f": 1.5,
    }


def test_duplicate_keys_are_recorded_on_the_document() -> None:
    [doc], problems = parse_yaml("spec:\n  a: 1\n  b: 2\n  a: 3\n", "d.yaml")
    assert problems == []
    [dup] = doc.problems
    assert (dup.line, dup.path) == (4, "spec.a")
    assert "first written on line 2" in dup.message


def test_syntax_error_keeps_earlier_documents() -> None:
    docs, problems = parse_yaml("a: 1\n---\nb: [1, 2\n", "s.yaml")
    assert [d.data for d in docs] == [{"a": 1}]
    [problem] = problems
    assert problem.file == "s.yaml" and problem.line >= 3 and "YAML syntax error" in problem.message


def test_alias_bomb_is_refused() -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    docs, problems = parse_yaml("\n".join(lines) + "\n")
    assert docs == []
    assert "alias bomb" in problems[0].message


def test_recursive_alias_is_refused() -> None:
    docs, problems = parse_yaml("a: &x [*x]\n")
    assert docs == []
    assert "refers to itself" in problems[0].message


def test_deep_nesting_is_refused() -> None:
    docs, problems = parse_yaml("[" * 100 + "]" * 100)
    assert docs == []
    assert "nested deeper" in problems[0].message or "too deeply" in problems[0].message


def test_unhashable_key_is_a_problem_not_a_crash() -> None:
    docs, problems = parse_yaml("? [a, b]\n: c\n")
    assert docs == []
    assert problems and "YAML" in problems[0].message


def test_folders_are_read_recursively_and_hidden_ones_skipped(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".git").mkdir()
    (tmp_path / "a.yaml").write_text("a: 1\n")
    (tmp_path / "sub" / "b.yml").write_text("b: 1\n")
    (tmp_path / "sub" / "c.txt").write_text("c: 1\n")
    (tmp_path / ".git" / "d.yaml").write_text("d: 1\n")
    files, problems = find_files([tmp_path])
    assert problems == []
    assert [p.relative_to(tmp_path).as_posix() for p in files] == ["a.yaml", "sub/b.yml"]


def test_unreadable_and_missing_paths_are_problems(tmp_path: Path) -> None:
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00bad")
    (tmp_path / "empty").mkdir()
    docs, problems = read_documents(
        [tmp_path / "bin.yaml", tmp_path / "nope.yaml", tmp_path / "empty"]
    )
    assert docs == []
    assert [(p.file, p.message.split(" ")[0]) for p in problems] == [
        (str(tmp_path / "nope.yaml"), "no"),
        (str(tmp_path / "empty"), "no"),
        (str(tmp_path / "bin.yaml"), "cannot"),
    ]


def test_document_defaults() -> None:
    doc = Document({"a": 1})
    assert (doc.file, doc.line, doc.line_of(("a",))) == ("<input>", 1, 1)


def test_crds_are_text_in_and_out_with_files_only_in_commands(tmp_path: Path) -> None:
    """crd.py generates and compares texts; commands.py writes and reads the folder."""
    from callmesh.api.commands import drift, write_crds
    from callmesh.api.crd import crd_files, stale_files

    texts = crd_files()
    assert stale_files(texts) == []
    changed = {**texts, "callmesh.io_queues.yaml": "x", "callmesh.io_gone.yaml": "y"}
    assert stale_files(changed) == ["callmesh.io_queues.yaml", "callmesh.io_gone.yaml"]
    assert drift(tmp_path / "none") == sorted(texts, key=list(texts).index)
    (tmp_path / "callmesh.io_gone.yaml").write_text("old")
    written = write_crds(tmp_path)
    assert {p.name for p in written} == set(texts)
    assert not (tmp_path / "callmesh.io_gone.yaml").exists()
    assert drift(tmp_path) == []
