"""``callmesh simulate``: a day of traffic on the real router, before go-live.

This module is the simulator's composition root: it reads the manifests and the workload,
builds each tenant's routing policy from the plugin manager (so the vendor routing plugins
of ``ContactCenter.spec.plugins`` decide, as they would in production), runs the
replications with a progress bar (on ``--jobs`` worker processes), and prints a table,
JSON, and an HTML report.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from collections.abc import Callable

    from callmesh.acd.strategy import RoutingPolicy
    from callmesh.api import Tenant
    from callmesh.sim.workload import Workload

__all__ = ["load_workload", "register", "simulate_command"]


class Output(StrEnum):
    """Output format of ``callmesh simulate``."""

    table = "table"
    json = "json"


def register(app: typer.Typer) -> None:
    """Add ``simulate`` to the ``callmesh`` command."""
    app.command("simulate")(simulate_command)


def load_workload(path: Path) -> Workload:
    """Read the workload file at ``path`` (the only file I/O of a workload).

    Raises:
        WorkloadError: the file cannot be read, or its text is not one valid Workload.
    """
    from callmesh.sim.workload import WorkloadError, read_workload

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkloadError(str(path), [f"cannot read it: {exc}"]) from None
    return read_workload(text, str(path))


def _find_workloads(paths: list[Path]) -> list[tuple[Path, Workload]]:
    import yaml

    from callmesh.sim.workload import is_workload_document, read_workload

    found = []
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in {".yaml", ".yml"})
        elif path.is_file():
            files.append(path)
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
            docs = list(yaml.safe_load_all(text))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue  # the manifest loader reports unreadable files
        if any(is_workload_document(d) for d in docs):
            found.append((file, read_workload(text, str(file))))
    return found


class _PluginPolicy:
    """Builds the tenant's plugin manager for each replication (picklable: the specs only,
    so a worker process of ``--jobs`` builds its own)."""

    def __init__(self, specs: list[object]) -> None:
        self.specs = specs

    def __call__(self) -> RoutingPolicy:
        from callmesh.plugins.manager import PluginManager

        return PluginManager(self.specs)


def _policy_factory(tenant: Tenant) -> Callable[[], RoutingPolicy]:
    """The tenant's plugin manager, configured from ``ContactCenter.spec.plugins``."""
    specs: list[object] = list(tenant.center.spec.plugins) if tenant.center is not None else []
    factory = _PluginPolicy(specs)
    factory()  # fail now, naming the field, rather than inside a replication
    return factory


def _fmt(est: dict[str, Any], digits: int = 1) -> str:
    mean = est.get("mean")
    if mean is None:
        return "-"
    hw = est.get("halfWidth")
    if hw is None:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f}±{hw:.{digits}f}"


def _erl(erlang: dict[str, Any] | None, key: str) -> str:
    if not erlang or erlang.get(key) is None:
        return ""
    return f"{erlang[key]:.1f}"


def _print_table(run: dict[str, Any], cpu: float, campaign_cpu: float) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=180)  # piped or captured: keep the table on one line per row
    day = run["day"]
    console.print(
        f"[bold]{run['tenant']}[/bold]: workload {run['workload']}, {day['weekday']}"
        f" {day['start']}-{day['end']}, {run['replications']} replications (seed {run['seed']});"
        " whole day, mean±95% CI half-width",
        highlight=False,
    )
    queues = run["queues"]
    short = any(q["serviceLevelTarget"]["excludeAbandonedUnderSeconds"] for q in queues)
    erlang = any(q["total"]["erlang"] for q in queues)
    volumes: list[tuple[str, Any]] = [
        ("offered", lambda t: _fmt(t["offered"], 0)),
        ("answered", lambda t: _fmt(t["answered"], 0)),
        ("abandoned %", lambda t: _fmt(t["abandonedPercent"])),
        ("overflowed", lambda t: _fmt(t["overflowed"], 0)),
        ("RONA", lambda t: _fmt(t["rona"], 0)),
        ("P(wait) %", lambda t: _fmt(t["waitProbabilityPercent"])),
    ]
    service: list[tuple[str, Any]] = [("SL %", lambda t: _fmt(t["serviceLevelPercent"]))]
    if short:  # identical to SL % when no queue excludes short abandons
        service.append(
            ("SL excl. short ab. %", lambda t: _fmt(t["serviceLevelExclShortAbandonsPercent"]))
        )
    service += [
        ("ASA s", lambda t: _fmt(t["asaSeconds"])),
        ("AHT s", lambda t: _fmt(t["ahtSeconds"], 0)),
        ("longest wait s", lambda t: _fmt(t["longestWaitSeconds"], 0)),
    ]
    if erlang:
        service += [
            ("Erlang SL %", lambda t: _erl(t["erlang"], "serviceLevelPercent")),
            ("Erlang ASA s", lambda t: _erl(t["erlang"], "asaSeconds")),
        ]
    for columns in (volumes, service):
        table = Table()
        table.add_column("queue (SL target)", no_wrap=True)
        for name, _ in columns:
            table.add_column(name, justify="right", no_wrap=True)
        for q in queues:
            target = q["serviceLevelTarget"]
            label = f"{q['name']} ({target['percent']:g}% in {target['seconds']} s)"
            table.add_row(label, *(cell(q["total"]) for _, cell in columns))
        console.print(table)
    teams = Table(title="occupancy by team", title_justify="left")
    teams.add_column("team")
    teams.add_column("agents", justify="right")
    teams.add_column("occupancy %", justify="right")
    for team in run["teams"]:
        teams.add_row(team["name"], str(team["agents"]), _fmt(team["occupancyPercent"]))
    console.print(teams)
    for flow in run["flows"]:
        outcomes = ", ".join(
            f"{kind} {est['mean']:.1f}%"
            for kind, est in flow["outcomesPercent"].items()
            if est["mean"]
        )
        console.print(
            f"IVR {flow['name']}: {_fmt(flow['calls'], 0)} calls; {outcomes or 'no outcome'};"
            f" {_fmt(flow['ivrSecondsMean'])} s in the IVR",
            highlight=False,
        )
    routing = run["routing"]
    deciders = ", ".join(
        f"{name} {est['mean']:.1f}%" for name, est in routing["decisionsPercent"].items()
    )
    console.print(
        f"routing decisions: {deciders or 'none'}; fallbacks {_fmt(routing['fallbackPercent'])}%",
        highlight=False,
    )
    if run["campaigns"]:
        campaigns = Table(
            title="outbound campaigns (the real dialer engine on the same agents)",
            title_justify="left",
        )
        for name in ("campaign (mode)", "agents", "occupancy %", "abandoned % (cap)"):
            campaigns.add_column(name, justify="left" if name.startswith("campaign") else "right")
        for name in ("reached / agent-hour", "dialled", "answered", "reached"):
            campaigns.add_column(name, justify="right", no_wrap=True)
        for c in run["campaigns"]:
            campaigns.add_row(
                f"{c['name']} ({c['mode']})",
                str(c["agents"]),
                _fmt(c["occupancyPercent"]),
                f"{_fmt(c['abandonedPercent'], 2)} ({c['maxAbandonPercent']:g})",
                _fmt(c["reachedPerAgentHour"], 2),
                _fmt(c["dialled"], 0),
                _fmt(c["answered"], 0),
                _fmt(c["reached"], 0),
            )
        console.print(campaigns)
    checks = run["checks"]
    console.print(
        f"{checks['contactsSimulated']:,} contacts simulated in {cpu:.1f} s of CPU"
        f" ({checks['contactsSimulated'] / max(cpu, 1e-9):,.0f}/s); Little's law max relative"
        f" error {checks['littleLawMaxRelativeError']:.1e}; flow conservation violations:"
        f" {checks['flowConservationViolations']}"
        + (f"; campaigns {campaign_cpu:.1f} s of CPU" if run["campaigns"] else ""),
        highlight=False,
    )


def simulate_command(
    path: Annotated[
        Path,
        typer.Argument(
            help="Manifests (a file or a folder read recursively), the same `kubectl apply` takes.",
            show_default=False,
        ),
    ],
    workload: Annotated[
        Path | None,
        typer.Option(
            "--workload",
            "-w",
            help="Workload YAML (kind: Workload); by default every Workload found under PATH,"
            " one per tenant.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Seed of the whole run.")] = 1,
    replications: Annotated[
        int,
        typer.Option(
            "--replications", "-r", min=1, max=1000, help="Independent replications (>= 2 for CIs)."
        ),
    ] = 10,
    output: Annotated[
        Output,
        typer.Option(
            "--output",
            "-o",
            help="table: KPI tables; json: the documented schema"
            " (callmesh/sim/simulate-result.schema.json).",
        ),
    ] = Output.table,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Write a self-contained HTML report with charts here."),
    ] = None,
    tenant_name: Annotated[
        str | None, typer.Option("--tenant", "-t", help="Simulate only this namespace.")
    ] = None,
    progress_bar: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show a progress bar on stderr.")
    ] = True,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            min=0,
            help="Worker processes for the replications (0: one per CPU; 1: none). The"
            " result is the same for any number.",
        ),
    ] = 0,
) -> None:
    """Run a day of traffic through the real router, IVR and routing plugins, before go-live.

    Loads the manifests under PATH and a workload (arrival rates per interval, handle-time
    and patience distributions, agent behaviour), plays independent replications on a
    simulated clock, and reports per queue and interval: offered, answered, abandoned %,
    service level (the queue's own target), ASA, AHT, longest wait, P(wait), RONA and
    overflow; per team and agent: occupancy and contacts handled; each with a 95% confidence
    interval, and Erlang C / Erlang A beside it where the model applies.

    The same seed gives the same JSON. Exits 2 on invalid manifests or workload.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from callmesh.api.validate import InvalidManifests, load_tenants
    from callmesh.sim.parallel import CpuTime, worker_pool
    from callmesh.sim.report import render_report
    from callmesh.sim.results import SCHEMA_VERSION, add_campaigns, simulate
    from callmesh.sim.simulator import Simulator
    from callmesh.sim.workload import WorkloadError

    err = Console(stderr=True)
    try:
        tenants = load_tenants([path])
    except InvalidManifests as exc:
        err.print(str(exc), highlight=False, markup=False)
        raise typer.Exit(2) from None
    try:
        workloads = (
            [(workload, load_workload(workload))]
            if workload is not None
            else _find_workloads([path])
        )
    except WorkloadError as exc:
        err.print(str(exc), highlight=False, markup=False)
        raise typer.Exit(2) from None
    if not workloads:
        err.print(
            f"no Workload found under {path}: pass --workload FILE (see docs/simulate.md)",
            highlight=False,
        )
        raise typer.Exit(2)
    plans: list[tuple[Simulator, Callable[[], RoutingPolicy]]] = []
    try:
        for source, wl in workloads:
            ns = wl.metadata.namespace
            if ns is None:
                if len(tenants) != 1:
                    raise WorkloadError(
                        str(source),
                        [
                            "metadata.namespace: the manifests hold tenants "
                            f"{', '.join(tenants)}: name the one this workload is for"
                        ],
                    )
                ns = next(iter(tenants))
            if tenant_name is not None and ns != tenant_name:
                continue
            tenant = tenants.get(ns)
            if tenant is None:
                raise WorkloadError(
                    str(source),
                    [
                        f"metadata.namespace: no manifests for tenant {ns!r} under {path}"
                        f" (found: {', '.join(tenants) or 'none'})"
                    ],
                )
            factory = _policy_factory(tenant)
            plans.append(
                (Simulator(tenant, wl, policy_factory=factory, source=str(source)), factory)
            )
    except (WorkloadError, ValueError) as exc:
        err.print(str(exc), highlight=False, markup=False)
        raise typer.Exit(2) from None
    if not plans:
        err.print(f"no workload for tenant {tenant_name!r}", highlight=False)
        raise typer.Exit(2)

    runs: list[dict[str, Any]] = []
    cpus: list[CpuTime] = []
    with (
        worker_pool(jobs, replications) as pool,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>5.1f}%"),
            TimeElapsedColumn(),
            console=err,
            disable=not progress_bar,
            transient=False,
        ) as bar,
    ):
        tasks = [bar.add_task(f"simulating {sim.tenant.namespace}", total=1.0) for sim, _ in plans]
        for (sim, _factory), task in zip(plans, tasks, strict=True):

            def step(fraction: float, task: Any = task) -> None:
                bar.update(task, completed=fraction)

            cpu = CpuTime()
            run = simulate(sim, seed, replications, step, campaigns=False, executor=pool, cpu=cpu)
            add_campaigns(sim, run, seed, replications, step, executor=pool, cpu=cpu)
            runs.append(run)
            cpus.append(cpu)
    document = {
        "schemaVersion": SCHEMA_VERSION,
        "seed": seed,
        "replications": replications,
        "runs": runs,
    }
    if report is not None:
        try:
            report.write_text(render_report(document), encoding="utf-8")
        except OSError as exc:
            err.print(f"--report {report}: cannot write it: {exc}", highlight=False)
            raise typer.Exit(2) from None
        err.print(f"report written to {report}", highlight=False)
    if output is Output.json:
        sys.stdout.write(json.dumps(document, indent=2, sort_keys=False) + "\n")
    else:
        for run, cpu in zip(runs, cpus, strict=True):
            _print_table(run, cpu.inbound, cpu.campaigns)
