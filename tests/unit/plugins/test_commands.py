"""`callmesh plugins list|check|reference`."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
from callmesh.plugins.catalog import _installed
from callmesh.plugins.reference import render_reference
from typer.testing import CliRunner

from callmesh.cli import app

runner = CliRunner()


def test_list_shows_name_version_hooks_and_source() -> None:
    result = runner.invoke(app, ["plugins", "list"], env={"CALLMESH_PLUGINS": ""})
    assert result.exit_code == 0, result.output
    for text in ("routing", "http-crm", "callmesh_crm_lookup", "callmesh (built-in)", "version"):
        assert text in result.output
    assert "not usable" not in result.output


def test_list_reports_a_broken_plugin_and_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = importlib.metadata.EntryPoint("broken", "callmesh_no_such_module:X", "callmesh")
    real = importlib.metadata.entry_points

    def fake(**kwargs: str) -> object:
        if kwargs.get("group") == "callmesh":
            return [broken]
        return real(**kwargs)

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    # The catalog reads the installed entry points once per process: read them again now,
    # and again after the test, without the fake.
    _installed.cache_clear()
    try:
        result = runner.invoke(app, ["plugins", "list"], env={"CALLMESH_PLUGINS": "broken"})
    finally:
        _installed.cache_clear()
    assert result.exit_code == 1
    assert "not usable" in result.output and "broken" in result.output
    assert "ModuleNotFoundError" in result.output


def test_check_names_the_bad_field(tmp_path: Path) -> None:
    manifest = tmp_path / "cc.yaml"
    manifest.write_text(
        "apiVersion: callmesh.io/v1alpha1\nkind: ContactCenter\nmetadata: {name: t}\n"
        "spec:\n  plugins:\n    - name: http-crm\n      config: {url: 'http://crm/{phone}'}\n"
    )
    result = runner.invoke(app, ["plugins", "check", str(manifest)])
    assert result.exit_code == 1
    assert "spec.plugins[0].config.url: " in result.output
    assert "spec.plugins[0].config.fields: Field required" in result.output


def test_check_without_a_contactcenter_fails(tmp_path: Path) -> None:
    manifest = tmp_path / "q.yaml"
    manifest.write_text("kind: Queue\n")
    result = runner.invoke(app, ["plugins", "check", str(manifest)])
    assert result.exit_code == 1 and "no ContactCenter" in result.output


def test_reference_prints_and_writes(tmp_path: Path) -> None:
    result = runner.invoke(app, ["plugins", "reference"])
    assert result.exit_code == 0 and result.output == render_reference()
    out = tmp_path / "ref.md"
    assert runner.invoke(app, ["plugins", "reference", "-o", str(out)]).exit_code == 0
    assert out.read_text() == render_reference()
