"""``callmesh staff``: Erlang C / Erlang A staffing from the command line.

Takes plain options for now (one AHT and patience, one or more interval arrival rates);
the workload file of ``callmesh simulate`` can feed :func:`callmesh.wfm.staffing.staff`
the same way. ``--verify`` replays the plan in the simulator (:mod:`callmesh.wfm.verify`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import typer

from callmesh.wfm.erlang import QueueLoad, performance
from callmesh.wfm.staffing import (
    Interval,
    IntervalStaffing,
    ServiceLevelBasis,
    StaffingInfeasibleError,
    StaffingTarget,
    staff,
)
from callmesh.wfm.verify import IntervalVerification

__all__ = ["build_intervals", "register", "staffing_json"]

_DEFINITIONS = {
    "p_wait": "P(all agents busy on arrival): the contact is not answered at once",
    "p_abandon": "P(the contact hangs up before it is answered), over offered contacts",
    "asa": "mean wait in seconds of answered contacts only (abandoners excluded)",
    "mean_wait": "mean time in queue in seconds over all contacts, abandoners until they hang up",
    "service_level": "answered within answer_time, over offered contacts (abandons are misses)",
    "service_level_answered": "answered within answer_time, over answered contacts",
    "service_level_excl_short_abandons": (
        "answered within answer_time, over offered contacts minus those that abandoned "
        "within short_abandon_time"
    ),
    "occupancy": "fraction of agent time spent handling contacts (carried load / agents)",
    "queue_length": "mean number of contacts waiting",
}


class Per(StrEnum):
    """Unit of ``--rate``."""

    hour = "hour"
    minute = "minute"
    second = "second"


class Output(StrEnum):
    """Output format."""

    table = "table"
    json = "json"


class Basis(StrEnum):
    """Which service level ``--target-sl`` applies to."""

    offered = "offered"
    answered = "answered"
    excl_short_abandons = "excl-short-abandons"


_SECONDS = {Per.hour: 3600.0, Per.minute: 60.0, Per.second: 1.0}
_BASIS: dict[Basis, ServiceLevelBasis] = {
    Basis.offered: "offered",
    Basis.answered: "answered",
    Basis.excl_short_abandons: "excl-short-abandons",
}


def build_intervals(
    rates: list[float],
    per: str,
    aht: float,
    patience: float | None,
    interval_minutes: float,
    start: str,
) -> list[Interval]:
    """One :class:`Interval` per rate, labelled from ``start`` (``HH:MM``) in steps."""
    if not rates:
        raise ValueError("--rate is required: give the arrival rate, e.g. --rate 600 --per hour")
    if not (math.isfinite(interval_minutes) and interval_minutes > 0):
        raise ValueError(f"--interval must be minutes > 0, got {interval_minutes!r}")
    try:
        clock = datetime.strptime(start, "%H:%M")
    except ValueError:
        raise ValueError(f"--start must be a time as HH:MM, e.g. 08:00; got {start!r}") from None
    unit = _SECONDS[Per(per)]
    out = []
    for i, rate in enumerate(rates):
        if not (math.isfinite(rate) and rate >= 0):
            raise ValueError(f"--rate must be >= 0 contacts per {per}, got {rate!r} (interval {i})")
        label = (clock + timedelta(minutes=interval_minutes * i)).strftime("%H:%M")
        out.append(Interval(label, QueueLoad(rate / unit, aht, patience), interval_minutes * 60.0))
    return out


def staffing_json(
    rows: list[IntervalStaffing],
    target: StaffingTarget,
    fixed_agents: int | None,
    verification: list[IntervalVerification] | None = None,
) -> dict[str, Any]:
    """The documented JSON document printed by ``callmesh staff --output json``.

    With ``verification`` (``--verify``) every interval carries a ``verification`` object:
    its verdict, the contacts simulated and, per KPI, the Erlang value, the simulated mean
    with its 95 % interval, the target and a verdict; otherwise ``verification`` is null.
    """
    checked: list[IntervalVerification | None] = (
        list(verification) if verification is not None else [None] * len(rows)
    )
    return {
        "model": rows[0].performance.model if rows else None,
        "mode": "evaluate" if fixed_agents is not None else "staff",
        "target": {
            "service_level": target.service_level,
            "answer_time": target.answer_time,
            "sl_basis": target.sl_basis,
            "max_asa": target.max_asa,
            "max_occupancy": target.max_occupancy,
            "max_abandon": target.max_abandon,
            "short_abandon_time": target.short_abandon_time,
        },
        "definitions": _DEFINITIONS,
        "intervals": [
            {
                "start": row.interval.start,
                "length": row.interval.length,
                "arrival_rate_per_hour": row.interval.load.arrival_rate * 3600.0,
                "offered": row.interval.offered,
                "aht": row.interval.load.aht,
                "patience": row.interval.load.patience,
                "meets_target": target.is_met(row.performance),
                **row.performance.as_dict(),
                "verification": None if check is None else check.as_dict(),
            }
            for row, check in zip(rows, checked, strict=True)
        ],
    }


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _secs(x: float) -> str:
    return "∞" if not math.isfinite(x) else f"{x:.1f}"


def _print_table(rows: list[IntervalStaffing], target: StaffingTarget, evaluate: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    model = rows[0].performance.model if rows else "erlang-c"
    sl_name = {"offered": "SL", "answered": "SL ans.", "excl-short-abandons": "SL excl."}[
        target.sl_basis
    ]
    table = Table(
        title=f"{'Evaluation' if evaluate else 'Staffing'} ({model}), target "
        f"{_pct(target.service_level)} in {target.answer_time:g}s",
        caption="ASA: answered contacts only. SL: answered within T over offered "
        "(see docs/staffing.md).",
    )
    for col in ("start", "calls/h", "Erlangs", "agents", "occupancy", "P(wait)"):
        table.add_column(col, justify="right")
    if model == "erlang-a":
        table.add_column("P(abandon)", justify="right")
    table.add_column("ASA s", justify="right")
    table.add_column(sl_name, justify="right")
    if evaluate:
        table.add_column("meets", justify="center")
    notes: list[str] = []
    for row in rows:
        p = row.performance
        cells = [
            row.interval.start,
            f"{row.interval.load.arrival_rate * 3600:.1f}",
            f"{p.traffic:.2f}",
            str(p.agents),
            _pct(p.occupancy),
            _pct(p.p_wait),
        ]
        if model == "erlang-a":
            cells.append(_pct(p.p_abandon))
        cells += [_secs(p.asa), _pct(target.achieved_service_level(p))]
        if evaluate:
            misses = target.misses(p)
            cells.append("yes" if not misses else "no")
            notes += [f"{row.interval.start}: {miss}" for miss in misses]
        table.add_row(*cells)
    console = Console()
    console.print(table)
    for note in notes:
        console.print(f"misses target at {note}", markup=False)


def _interval(low: float | None, high: float | None, fmt: Callable[[float], str]) -> str:
    if low is None or high is None:
        return "n/a"
    return f"{fmt(max(low, 0.0))}-{fmt(high)}"


def _print_verification(checks: list[IntervalVerification], hours: int, reps: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"Simulated at the staffing above: {reps} replications x {hours} h, 95% intervals",
        caption="holds: the interval meets every target; misses: it fails one; marginal: "
        "it straddles a target (more --verify-hours narrow it).",
    )
    for col in ("start", "agents", "contacts", "SL", "ASA s", "P(abandon)", "occupancy"):
        table.add_column(col, justify="right")
    table.add_column("verdict", justify="center")
    for check in checks:
        by = {c.kpi: c for c in check.checks}
        cells = [check.row.interval.start, str(check.row.agents), str(check.contacts)]
        if not by:
            cells += ["", "", "", ""]
        else:
            cells += [
                _interval(by["service_level"].low, by["service_level"].high, _pct),
                _interval(by["asa"].low, by["asa"].high, _secs),
                _interval(by["p_abandon"].low, by["p_abandon"].high, _pct),
                _interval(by["occupancy"].low, by["occupancy"].high, _pct),
            ]
        verdict = check.verdict + (f" ({check.note})" if check.note else "")
        table.add_row(*cells, verdict)
    Console().print(table)


def _run_verify(
    rows: list[IntervalStaffing],
    target: StaffingTarget,
    seed: int,
    reps: int,
    hours: int,
    jobs: int,
) -> list[IntervalVerification]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from callmesh.sim.parallel import worker_pool
    from callmesh.wfm.verify import verify

    with (
        worker_pool(jobs, reps) as pool,
        Progress(
            TextColumn("simulating"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            console=_stderr_console(),
            transient=True,
        ) as bar,
    ):
        task = bar.add_task("verify", total=1.0)
        return verify(
            rows,
            target,
            seed=seed,
            replications=reps,
            hours=hours,
            progress=lambda done: bar.update(task, completed=done),
            executor=pool,
        )


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def register(app: typer.Typer) -> None:
    """Add ``callmesh staff`` to ``app``."""

    @app.command("staff")
    def staff_command(
        rate: Annotated[
            list[float],
            typer.Option(help="Arrival rate; repeat once per interval for a day's profile."),
        ],
        aht: Annotated[float, typer.Option(help="Average handle time in seconds.")],
        per: Annotated[Per, typer.Option(help="Unit of --rate.")] = Per.hour,
        patience: Annotated[
            float | None,
            typer.Option(help="Mean patience in seconds (Erlang A); omit for Erlang C."),
        ] = None,
        target_sl: Annotated[
            float, typer.Option(help="Service-level target as a fraction; 0 disables it.")
        ] = 0.8,
        target_time: Annotated[
            float, typer.Option(help="Service-level answer time T in seconds.")
        ] = 20.0,
        target_asa: Annotated[
            float | None, typer.Option(help="Maximum ASA (answered contacts) in seconds.")
        ] = None,
        max_occupancy: Annotated[
            float | None, typer.Option(help="Maximum agent occupancy, e.g. 0.85.")
        ] = None,
        max_abandon: Annotated[
            float | None, typer.Option(help="Maximum abandon rate (Erlang A), e.g. 0.05.")
        ] = None,
        sl_basis: Annotated[
            Basis, typer.Option(help="Which service level --target-sl applies to.")
        ] = Basis.offered,
        short_abandon: Annotated[
            float, typer.Option(help="Abandons under this many seconds are 'short'.")
        ] = 5.0,
        interval: Annotated[float, typer.Option(help="Interval length in minutes.")] = 30.0,
        start: Annotated[str, typer.Option(help="Label of the first interval, HH:MM.")] = "00:00",
        agents: Annotated[
            int | None,
            typer.Option(help="Evaluate this staffing instead of computing the minimum."),
        ] = None,
        output: Annotated[Output, typer.Option(help="table or json.")] = Output.table,
        verify: Annotated[
            bool,
            typer.Option(
                "--verify/--no-verify",
                help="Replay each interval in the simulator at the staffing found and report "
                "whether the targets hold (exit code 1 if one clearly misses).",
            ),
        ] = False,
        seed: Annotated[int, typer.Option(help="Base seed of --verify.")] = 1,
        replications: Annotated[
            int, typer.Option(help="Independent replications per interval for --verify.")
        ] = 5,
        verify_hours: Annotated[
            int, typer.Option(help="Simulated hours per replication for --verify (1-24).")
        ] = 8,
        jobs: Annotated[
            int,
            typer.Option(
                "--jobs",
                "-j",
                min=0,
                help="Worker processes for --verify's replications (0: one per CPU; 1: none)."
                " The result is the same for any number.",
            ),
        ] = 0,
    ) -> None:
        """Agents needed per interval for a service-level / ASA target (Erlang C or A).

        Erlang A (callers hang up) with --patience, otherwise Erlang C.

        ASA counts answered contacts only; SL is answered within T over offered contacts.

        Example, 80% in 20 s for 600 calls an hour with a 3-minute handle time:

        callmesh staff --rate 600 --aht 180 --target-sl 0.8 --target-time 20

        KPI definitions and worked examples: docs/staffing.md.
        """
        try:
            target = StaffingTarget(
                service_level=target_sl,
                answer_time=target_time,
                max_asa=target_asa,
                max_occupancy=max_occupancy,
                max_abandon=max_abandon,
                sl_basis=_BASIS[sl_basis],
                short_abandon_time=short_abandon,
            )
            intervals = build_intervals(rate, per.value, aht, patience, interval, start)
            if agents is not None:
                if agents < 0:
                    raise ValueError(f"--agents must be >= 0, got {agents}")
                rows = [
                    IntervalStaffing(
                        iv, performance(iv.load, agents, target_time, target.short_abandon_time)
                    )
                    for iv in intervals
                ]
            else:
                rows = staff(intervals, target)
            checks = (
                _run_verify(rows, target, seed, replications, verify_hours, jobs)
                if verify
                else None
            )
        except (ValueError, StaffingInfeasibleError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=2) from None
        if output is Output.json:
            typer.echo(json.dumps(staffing_json(rows, target, agents, checks), indent=2))
        else:
            _print_table(rows, target, evaluate=agents is not None)
            if checks is not None:
                _print_verification(checks, verify_hours, replications)
        if checks is not None and any(c.verdict == "misses" for c in checks):
            raise typer.Exit(code=1)
