"""``callmesh staff`` end to end through the real console app."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from callmesh.cli import app


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["staff", *args], env={"COLUMNS": "160"})
    return result.exit_code, result.stdout, result.stderr


def test_staff_prints_a_table() -> None:
    code, out, _ = _run("--rate", "200", "--aht", "180", "--start", "08:00")
    assert code == 0, out
    assert "Staffing (erlang-c)" in out
    row = next(line for line in out.splitlines() if "08:00" in line)
    assert "14" in row and "88.8%" in row and "17.4%" in row


def test_staff_json_is_per_interval_and_self_describing() -> None:
    code, out, _ = _run(
        "--rate", "10", "--rate", "20", "--per", "minute", "--aht", "180",
        "--patience", "120", "--interval", "15", "--start", "09:45", "--output", "json",
    )  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    assert doc["model"] == "erlang-a" and doc["mode"] == "staff"
    assert "answered contacts only" in doc["definitions"]["asa"]
    assert [iv["start"] for iv in doc["intervals"]] == ["09:45", "10:00"]
    first = doc["intervals"][0]
    assert first["arrival_rate_per_hour"] == pytest.approx(600.0)
    assert first["offered"] == pytest.approx(150.0)
    assert first["traffic"] == pytest.approx(30.0)
    assert first["meets_target"] is True and first["service_level"] >= 0.8
    assert doc["intervals"][1]["agents"] > first["agents"]


def test_staff_per_minute_equals_per_hour() -> None:
    _, hourly, _ = _run("--rate", "600", "--aht", "180", "--output", "json")
    _, minutely, _ = _run("--rate", "10", "--per", "minute", "--aht", "180", "--output", "json")
    assert json.loads(hourly)["intervals"][0]["agents"] == 35
    assert json.loads(minutely)["intervals"][0]["agents"] == 35


def test_evaluate_a_given_staffing() -> None:
    code, out, _ = _run("--rate", "600", "--aht", "180", "--agents", "33", "--target-asa", "10")
    assert code == 0
    assert "Evaluation" in out and "no" in out
    assert "misses target at 00:00: ASA" in out
    code, out, _ = _run("--rate", "600", "--aht", "180", "--agents", "33", "--output", "json")
    doc = json.loads(out)
    assert doc["mode"] == "evaluate" and doc["intervals"][0]["agents"] == 33


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "-5", "--aht", "180"], "--rate must be >= 0"),
        (["--rate", "100", "--aht", "0"], "aht must be a finite number > 0"),
        (["--rate", "100", "--aht", "180", "--target-sl", "1.2"], "service_level must be in"),
        (["--rate", "100", "--aht", "180", "--start", "9am"], "--start must be a time as HH:MM"),
        (["--rate", "100", "--aht", "180", "--patience", "-1"], "patience must be"),
        (["--rate", "100", "--aht", "180", "--agents", "-2"], "--agents must be >= 0"),
    ],
)
def test_bad_options_exit_2_with_the_field_named(args: list[str], message: str) -> None:
    code, _, err = _run(*args)
    assert code == 2
    assert message in err


def test_staff_is_listed_in_help() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert "staff" in result.output
