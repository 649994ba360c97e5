"""Every snippet of docs/dialer.md runs, and prints what the page says it prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
import yaml

from callmesh.sim.campaigns import parse_campaign_traffic

DOC = Path(__file__).resolve().parents[3] / "docs" / "dialer.md"
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def blocks() -> list[tuple[str, str]]:
    return [(m[1], m[2]) for m in BLOCK.finditer(DOC.read_text())]


def python_examples() -> list[tuple[str, str]]:
    found = blocks()
    out = []
    for i, (lang, code) in enumerate(found):
        if lang == "python":
            expected = found[i + 1][1] if i + 1 < len(found) and found[i + 1][0] == "text" else ""
            out.append((code, expected))
    return out


@pytest.mark.parametrize(("code", "expected"), python_examples())
def test_python_examples_print_what_the_page_says(code: str, expected: str) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(DOC), "exec"), {})
    assert out.getvalue() == expected


def test_the_workload_section_parses() -> None:
    (section,) = [code for lang, code in blocks() if lang == "yaml"]
    traffic = parse_campaign_traffic(yaml.safe_load(section)["campaigns"])
    assert traffic["policy-renewals"].contact_rate == 0.3


def test_there_are_examples() -> None:
    assert len(python_examples()) == 3
