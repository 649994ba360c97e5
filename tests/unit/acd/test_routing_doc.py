"""Every Python block of docs/routing.md runs, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "routing.md"
BLOCK = re.compile(r"^## (?P<section>.+?)$|^```python\n(?P<code>.*?)^```$", re.M | re.S)


def _blocks() -> list[tuple[str, str]]:
    section = "intro"
    blocks = []
    for match in BLOCK.finditer(DOC.read_text()):
        if match.group("section"):
            section = match.group("section")
        else:
            blocks.append((section, match.group("code")))
    return blocks


def test_the_doc_has_an_example_per_strategy() -> None:
    from callmesh.acd import BUILTIN_STRATEGIES

    sections = " ".join(section for section, _ in _blocks())
    missing = [name for name in BUILTIN_STRATEGIES if name not in sections]
    assert missing == [], f"docs/routing.md lacks a worked example for {missing}"


def test_routing_doc_examples_run() -> None:
    namespace: dict[str, object] = {"__name__": "routing_doc"}
    blocks = _blocks()
    assert len(blocks) >= 10
    for section, code in blocks:
        try:
            exec(compile(code, f"docs/routing.md ({section})", "exec"), namespace)
        except Exception as exc:  # name the section that failed
            pytest.fail(f"docs/routing.md section {section!r} failed: {exc!r}")
