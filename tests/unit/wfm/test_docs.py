"""Every snippet in docs/staffing.md runs, and every shown command prints what is shown."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from callmesh.cli import app

DOC = Path(__file__).resolve().parents[3] / "docs" / "staffing.md"
_BLOCK = re.compile(r"^```(python|console)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _blocks(kind: str) -> list[str]:
    return [body for lang, body in _BLOCK.findall(DOC.read_text()) if lang == kind]


def test_the_doc_has_examples() -> None:
    assert len(_blocks("python")) >= 4 and len(_blocks("console")) >= 2


def test_python_examples_run_in_order() -> None:
    namespace: dict[str, object] = {}
    for block in _blocks("python"):
        exec(compile(block, str(DOC), "exec"), namespace)


def _sessions() -> list[tuple[str, list[str]]]:
    out = []
    for block in _blocks("console"):
        command, *expected = block.rstrip("\n").split("\n")
        assert command.startswith("$ callmesh "), command
        out.append((command[len("$ callmesh ") :], expected))
    return out


@pytest.mark.parametrize(("command", "expected"), _sessions())
def test_console_examples_print_what_the_doc_shows(command: str, expected: list[str]) -> None:
    result = CliRunner().invoke(app, shlex.split(command), env={"COLUMNS": "100"})
    assert result.exit_code == (2 if expected[0].startswith("error:") else 0)
    shown = result.stdout if result.exit_code == 0 else result.stderr
    assert [line.rstrip() for line in shown.rstrip("\n").split("\n")] == [
        line.rstrip() for line in expected
    ]
