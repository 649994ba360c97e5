"""``verify`` and ``callmesh staff --verify``: the plan replayed in the real simulator.

Runs are short (2 simulated hours x 3 replications, about a thousand contacts per interval)
so the staffing and targets here are chosen far apart (minimal staffing would sit right at
the target and be "marginal"): the verdicts must not depend on luck, only on the simulator
agreeing with the model's order of magnitude.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from callmesh.cli import app
from callmesh.wfm import Interval, IntervalStaffing, QueueLoad, StaffingTarget, performance
from callmesh.wfm.verify import MAX_SIMULATED_AGENTS, verify

QUICK = {"hours": 2, "replications": 3, "warmup_minutes": 15}
TEN_ERLANGS = Interval("08:00", QueueLoad.per_hour(200, 180.0))


def _at(interval: Interval, agents: int) -> IntervalStaffing:
    return IntervalStaffing(interval, performance(interval.load, agents))


def test_a_comfortable_target_holds() -> None:
    target = StaffingTarget(service_level=0.5, answer_time=20.0, max_occupancy=0.9)
    # 16 agents: Erlang C says 97 % in 20 s at 62.5 % occupancy, far inside the target.
    (result,) = verify([_at(TEN_ERLANGS, 16)], target, **QUICK)
    assert result.verdict == "holds"
    assert result.contacts > 800
    by = {c.kpi: c for c in result.checks}
    assert by["service_level"].verdict == "holds" and by["service_level"].low is not None
    assert by["occupancy"].verdict == "holds"
    assert by["asa"].target is None and by["asa"].verdict is None  # reported, not targeted
    assert by["p_wait"].mean is not None and 0.0 < by["p_wait"].mean < 1.0


def test_an_impossible_occupancy_cap_misses() -> None:
    target = StaffingTarget(service_level=0.0, max_occupancy=0.5)
    (result,) = verify([_at(TEN_ERLANGS, 12)], target, **QUICK)  # Erlang: 83 % occupancy
    assert result.verdict == "misses"
    occupancy = next(c for c in result.checks if c.kpi == "occupancy")
    assert occupancy.verdict == "misses"
    assert occupancy.low is not None and occupancy.low > 0.5


def test_erlang_a_abandon_target_is_checked() -> None:
    impatient = Interval("09:00", QueueLoad.per_hour(400, 180.0, 60.0))
    target = StaffingTarget(service_level=0.0, max_abandon=0.5)
    (result,) = verify([_at(impatient, 20)], target, **QUICK)
    ab = next(c for c in result.checks if c.kpi == "p_abandon")
    assert ab.target == 0.5 and ab.verdict == "holds"
    assert ab.high is not None and ab.high < 0.5


def test_what_cannot_be_simulated_is_skipped_with_a_reason() -> None:
    quiet = Interval("03:00", QueueLoad(0.0, 180.0))
    huge = Interval("10:00", QueueLoad.per_hour(12000, 180.0))
    rows = [_at(quiet, 0), _at(huge, MAX_SIMULATED_AGENTS + 20)]
    results = verify(rows, StaffingTarget(), **QUICK)
    assert [r.verdict for r in results] == ["skipped", "skipped"]
    assert results[0].note == "no traffic"
    assert "at most 500" in results[1].note


@pytest.mark.parametrize(
    ("target", "kwargs", "message"),
    [
        (StaffingTarget(sl_basis="answered"), {}, "sl_basis 'answered' cannot be verified"),
        (StaffingTarget(answer_time=20.5), {}, "answer_time must be whole seconds"),
        (StaffingTarget(), {"replications": 1}, "replications must be >= 2"),
        (StaffingTarget(), {"hours": 0}, "hours must be 1..24"),
    ],
)
def test_bad_verify_settings_name_the_setting(
    target: StaffingTarget, kwargs: dict[str, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        verify([_at(TEN_ERLANGS, 14)], target, **kwargs)  # type: ignore[arg-type]


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["staff", *args], env={"COLUMNS": "140"})
    return result.exit_code, result.stdout, result.stderr


def test_cli_verify_table_and_exit_code() -> None:
    quick = ["--verify", "--verify-hours", "2", "--replications", "3"]
    code, out, _ = _cli(
        "--rate", "200", "--aht", "180", "--agents", "16", "--target-sl", "0.5", *quick
    )
    assert code == 0
    assert "Simulated at the staffing above: 3 replications x 2 h" in out
    assert "holds" in out
    code, out, _ = _cli(
        "--rate", "200", "--aht", "180", "--agents", "12", "--target-sl", "0",
        "--max-occupancy", "0.5", *quick,
    )  # fmt: skip
    assert code == 1  # a clear miss fails the command, for scripts and CI
    assert "misses" in out


def test_cli_verify_json() -> None:
    code, out, _ = _cli(
        "--rate", "200", "--aht", "180", "--agents", "16", "--target-sl", "0.5",
        "--output", "json", "--verify", "--verify-hours", "2", "--replications", "3",
    )  # fmt: skip
    assert code == 0
    check = json.loads(out)["intervals"][0]["verification"]
    assert check["verdict"] == "holds" and check["contactsSimulated"] > 800
    sl = next(c for c in check["checks"] if c["kpi"] == "service_level")
    assert sl["bound"] == "min" and sl["target"] == 0.5
    assert sl["simulated"]["low"] <= sl["simulated"]["mean"] <= sl["simulated"]["high"]
    _, plain, _ = _cli("--rate", "200", "--aht", "180", "--output", "json")
    assert json.loads(plain)["intervals"][0]["verification"] is None


def test_cli_verify_gives_the_same_json_on_worker_processes() -> None:
    args = ("--rate", "200", "--aht", "180", "--agents", "16", "--target-sl", "0.5",
            "--output", "json", "--verify", "--verify-hours", "1", "--replications", "3")  # fmt: skip
    one = _cli(*args, "--jobs", "1")
    two = _cli(*args, "--jobs", "2")
    assert one[0] == two[0] == 0
    assert one[1] == two[1] and json.loads(one[1])["intervals"][0]["verification"]


def test_cli_verify_rejects_unverifiable_settings() -> None:
    code, _, err = _cli("--rate", "200", "--aht", "180", "--sl-basis", "answered", "--verify")
    assert code == 2 and "cannot be verified" in err
