"""The console script teaches: --help lists the commands."""

from __future__ import annotations

from typer.testing import CliRunner

from callmesh.cli import app


def test_help_lists_commands() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "contact center" in result.output
