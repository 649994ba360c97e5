"""``callmesh worker dialer`` refuses to start without the event-socket password."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from callmesh.cli import app


def test_the_event_socket_password_is_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CALLMESH_ESL_PASSWORD", raising=False)
    monkeypatch.delenv("CALLMESH_ESL_PASSWORD_FILE", raising=False)
    args = ["worker", "dialer", "--config", str(tmp_path / "tenant.yaml"), "--no-publish-status"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "the event-socket password is required: set CALLMESH_ESL_PASSWORD" in result.output
    assert "--password-file" in result.output and "ClueCon" not in result.output

    empty = tmp_path / "password"
    empty.write_text("\n")
    result = CliRunner().invoke(app, [*args, "--password-file", str(empty)])
    assert result.exit_code == 2 and f"--password-file {empty} is empty" in result.output

    empty.write_text("s3cret\n")  # accepted: the next complaint is the missing config
    result = CliRunner().invoke(app, [*args, "--password-file", str(empty)])
    assert result.exit_code == 2 and "no such file" in result.output
    assert "s3cret" not in result.output
