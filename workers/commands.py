"""``callmesh worker ROLE``: run one of the data-plane workers of a tenant.

One subcommand per role (``router`` now; ``callcontrol`` and ``dialer`` join the group the
same way). Each imports its server (grpc, OpenTelemetry) only when it runs, so
``callmesh --help`` stays fast. The operator's Deployments run exactly these commands
(``operator/render.py``: ``worker <role> --config /etc/callmesh/tenant.yaml --port 50051``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from asyncio import AbstractEventLoop
    from collections.abc import Callable

__all__ = ["register", "worker_app"]

worker_app = typer.Typer(
    name="worker",
    help="Run a data-plane worker of one tenant (what the operator's Deployments run).",
    no_args_is_help=True,
)


# Options that several workers share, declared once.
RouterAddress = Annotated[
    str, typer.Option(help="The router's gRPC address.", envvar="CALLMESH_ROUTER")
]
FreeswitchAddress = Annotated[
    str, typer.Option(help="FreeSWITCH's event socket, host:port.", envvar="CALLMESH_FREESWITCH")
]
EslPassword = Annotated[
    str | None,
    typer.Option(
        help="The event-socket password (the operator sets it from the Secret"
        " <center>-esl). Required, here or with --password-file.",
        envvar="CALLMESH_ESL_PASSWORD",
        show_envvar=True,
    ),
]
EslPasswordFile = Annotated[
    Path | None,
    typer.Option(
        help="File holding the event-socket password (a mounted Secret key); used when"
        " CALLMESH_ESL_PASSWORD is not set.",
        envvar="CALLMESH_ESL_PASSWORD_FILE",
        show_envvar=True,
    ),
]
LogLevel = Annotated[str, typer.Option(help="debug, info, warning or error.")]
EventLoopName = Annotated[
    str,
    typer.Option(
        "--event-loop",
        help="auto (uvloop when installed, else asyncio's), uvloop or asyncio.",
        envvar="CALLMESH_EVENT_LOOP",
    ),
]


def register(app: typer.Typer) -> None:
    """Add the ``worker`` command group to the ``callmesh`` command."""
    app.add_typer(worker_app)


def _setup(log_level: str, event_loop: str) -> Callable[[], AbstractEventLoop]:
    """What every worker does first: set up logging, then check ``--event-loop`` and return
    its loop constructor (exit 2 with the reason when the name is bad)."""
    from callmesh.workers.runtime import loop_factory

    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return loop_factory(event_loop)
    except ValueError as exc:
        typer.echo(f"error: --event-loop: {exc}", err=True)
        raise typer.Exit(2) from None


def _esl_password(value: str | None, path: Path | None) -> str:
    """The event-socket password from --password (or its env), else from --password-file;
    exit 2 naming the ways to give it when there is none."""
    if value:
        return value
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            typer.echo(f"error: --password-file {path}: cannot read it: {exc.strerror}", err=True)
            raise typer.Exit(2) from None
        if text:
            return text
        typer.echo(f"error: --password-file {path} is empty", err=True)
        raise typer.Exit(2)
    typer.echo(
        "error: the event-socket password is required: set CALLMESH_ESL_PASSWORD (the"
        " operator renders it from the Secret <center>-esl, key 'password'), pass"
        " --password, or --password-file with a mounted Secret key"
        " (CALLMESH_ESL_PASSWORD_FILE)",
        err=True,
    )
    raise typer.Exit(2)


@worker_app.command("router")
def router_command(
    config: Annotated[
        Path,
        typer.Option(
            "--config",
            "-c",
            help="The tenant's rendered tenant.yaml (the router ConfigMap), or a folder of"
            " manifests.",
            envvar="CALLMESH_CONFIG",
        ),
    ] = Path("/etc/callmesh/tenant.yaml"),
    port: Annotated[int, typer.Option(help="gRPC port; 0 picks a free one.", min=0)] = 50051,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "[::]",
    grace: Annotated[
        float, typer.Option(help="Seconds in-flight rpcs get on SIGTERM.", min=0)
    ] = 10.0,
    reload_interval: Annotated[
        float,
        typer.Option(
            help="Seconds between checks of the config file for changes; 0: never.", min=0
        ),
    ] = 5.0,
    seed: Annotated[int, typer.Option(help="Seed of the routing engine's random generator.")] = 0,
    kpi_window: Annotated[
        float,
        typer.Option(
            help="Seconds of the sliding interval the live service level and ASA are over"
            " (WatchQueues, metrics, Queue status); 0: since the router started.",
            min=0,
        ),
    ] = 900.0,
    publish_status: Annotated[
        bool,
        typer.Option(
            help="In a pod, publish per Queue waiting and serviceLevel and per AgentTeam"
            " loggedIn into their status (needs patch on queues/status and"
            " agentteams/status).",
        ),
    ] = True,
    status_interval: Annotated[
        float, typer.Option(help="Seconds between status publications.", min=1)
    ] = 10.0,
    event_loop: EventLoopName = "auto",
    log_level: LogLevel = "info",
) -> None:
    """Serve one tenant's ACD over gRPC (callmesh.v1.RouterService).

    Loads queues and teams from the config, enables the ContactCenter's plugins, reloads
    the config when the file changes (or on SIGHUP) without dropping a waiting contact or a
    logged-in agent, and stops gracefully on SIGTERM. Health and reflection are served on
    the same port. OTEL_EXPORTER_OTLP_ENDPOINT (with opentelemetry-exporter-otlp
    installed) or CALLMESH_OTEL_CONSOLE=1 export traces and metrics. In a pod, the live
    KPIs go to the Queue and AgentTeam status every --status-interval seconds, so
    `kubectl get queues` shows them.
    """

    from callmesh.workers.kubestatus import in_cluster_publisher
    from callmesh.workers.router.config import RouterConfigError, load_config
    from callmesh.workers.router.server import RouterServer, run_router
    from callmesh.workers.runtime import run as run_loop
    from callmesh.workers.telemetry import setup_telemetry

    make_loop = _setup(log_level, event_loop)
    try:
        tenant = load_config(config).namespace
    except RouterConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    telemetry = setup_telemetry(
        "router", tenant=tenant or os.environ.get("CALLMESH_TENANT", ""), install_global=True
    )
    server = RouterServer(
        config,
        address=f"{host}:{port}",
        grace=grace,
        reload_interval=reload_interval,
        seed=seed,
        telemetry=telemetry,
        kpi_window=kpi_window,
    )

    async def run() -> None:
        # The publisher's HTTP client belongs to the running loop: build it inside.
        server.publisher = in_cluster_publisher(status_interval) if publish_status else None
        await run_router(server)

    try:
        run_loop(run(), make_loop)
    except (RouterConfigError, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        telemetry.shutdown()


@worker_app.command("callcontrol")
def callcontrol_command(
    config: Annotated[
        Path,
        typer.Option(
            "--config",
            "-c",
            help="The tenant's rendered tenant.yaml (ContactCenter, Queues, AgentTeams, IVRFlows).",
            envvar="CALLMESH_CONFIG",
        ),
    ] = Path("/etc/callmesh/tenant.yaml"),
    router: RouterAddress = "127.0.0.1:50051",
    freeswitch: FreeswitchAddress = "127.0.0.1:8021",
    password: EslPassword = None,
    password_file: EslPasswordFile = None,
    port: Annotated[
        int, typer.Option(help="Outbound-socket port the dialplan connects to.", min=0)
    ] = 8084,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "0.0.0.0",
    advertise: Annotated[
        str | None,
        typer.Option(
            help="host:port FreeSWITCH reaches this worker at (re-adopting waiting calls);"
            " default: the pod IP from POD_IP and the port.",
        ),
    ] = None,
    interactions: Annotated[
        Path | None,
        typer.Option(
            help="JSON-lines file of interaction records.", envvar="CALLMESH_INTERACTIONS"
        ),
    ] = None,
    default_queue: Annotated[
        str | None,
        typer.Option(
            help="Queue for calls whose flow is missing or fails (default: first voice queue)."
        ),
    ] = None,
    grace: Annotated[float, typer.Option(help="Seconds live calls get on SIGTERM.", min=0)] = 10.0,
    event_loop: EventLoopName = "auto",
    log_level: LogLevel = "info",
) -> None:
    """Run IVR flows, queue, announce and bridge calls through FreeSWITCH's event socket.

    FreeSWITCH's dialplan hands each call to this worker (``socket <host>:8084 async
    full``); queues live in the router (CALLMESH_ROUTER); agent legs are originated over the
    inbound event socket (CALLMESH_FREESWITCH; the password from CALLMESH_ESL_PASSWORD or
    --password-file, required: there is no default). Every call ends in one interaction
    record. Stops gracefully on SIGTERM; see docs/callflow.md.
    """
    import asyncio
    import signal

    from callmesh.workers.callcontrol.config import CallControlConfigError, load_config
    from callmesh.workers.callcontrol.worker import CallControl, default_sink_path
    from callmesh.workers.interactions import JsonLinesSink
    from callmesh.workers.runtime import run as run_loop
    from callmesh.workers.telemetry import setup_telemetry

    make_loop = _setup(log_level, event_loop)
    try:
        cfg = load_config(config, default_queue=default_queue)
    except CallControlConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    secret = _esl_password(password, password_file)
    fs_host, _, fs_port = freeswitch.rpartition(":")
    if not fs_host or not fs_port.isdigit():
        typer.echo(f"error: --freeswitch {freeswitch!r}: use host:port, e.g. fs:8021", err=True)
        raise typer.Exit(2)
    if advertise is None and os.environ.get("POD_IP"):
        advertise = f"{os.environ['POD_IP']}:{port}"
    telemetry = setup_telemetry("callcontrol", tenant=cfg.namespace, install_global=True)

    async def run() -> None:
        from callmesh.plugins.manager import PluginManager

        crm = PluginManager(cfg.plugins, where="ContactCenter spec.plugins")
        sink = JsonLinesSink(interactions or default_sink_path(cfg.namespace))
        worker = CallControl(
            cfg,
            router=router,
            freeswitch=(fs_host, int(fs_port)),
            password=secret,
            sink=sink,
            host=host,
            port=port,
            advertise=advertise,
            crm=crm,
            tracer=telemetry.tracer,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await worker.start()
        try:
            await stop.wait()
        finally:
            await worker.stop(grace)
            await sink.close()
            await crm.aclose()

    try:
        run_loop(run(), make_loop)
    finally:
        telemetry.shutdown()


@worker_app.command("dialer")
def dialer_command(
    config: Annotated[
        Path,
        typer.Option(
            "--config",
            "-c",
            help="The tenant's rendered tenant.yaml (ContactCenter, Queues, DialerCampaigns).",
            envvar="CALLMESH_CONFIG",
        ),
    ] = Path("/etc/callmesh/tenant.yaml"),
    lists: Annotated[
        Path,
        typer.Option(
            help="Folder with the campaigns' ConfigMaps/Secrets mounted as <name>/<key>.",
            envvar="CALLMESH_LISTS",
        ),
    ] = Path("/etc/callmesh/lists"),
    router: RouterAddress = "127.0.0.1:50051",
    freeswitch: FreeswitchAddress = "127.0.0.1:8021",
    password: EslPassword = None,
    password_file: EslPasswordFile = None,
    callcontrol: Annotated[
        str,
        typer.Option(
            help="Where FreeSWITCH reaches callcontrol's socket (answered calls go there);"
            " the default is the switch's own callcontrol_socket variable.",
            envvar="CALLMESH_CALLCONTROL",
        ),
    ] = "${callcontrol_socket}",
    trunk: Annotated[
        str | None, typer.Option(help="Gateway to dial out of (default: the center's first).")
    ] = None,
    audit: Annotated[
        Path, typer.Option(help="JSON-lines audit log of every dial decision and outcome.")
    ] = Path("/var/lib/callmesh/dialer-audit.jsonl"),
    status: Annotated[
        Path | None, typer.Option(help="File the campaigns' status is written to (JSON).")
    ] = None,
    reload_interval: Annotated[
        float, typer.Option(help="Seconds between checks of config and lists; 0: never.", min=0)
    ] = 5.0,
    publish_status: Annotated[
        bool,
        typer.Option(
            help="In a pod, publish each DialerCampaign's abandonPercent and progress"
            " (contacts, rejectedRows, dialled, answered, abandoned, reached, remaining)"
            " into its status (needs patch on dialercampaigns/status).",
        ),
    ] = True,
    status_interval: Annotated[
        float, typer.Option(help="Seconds between status publications.", min=1)
    ] = 10.0,
    event_loop: EventLoopName = "auto",
    log_level: LogLevel = "info",
) -> None:
    """Dial the tenant's DialerCampaigns through FreeSWITCH's event socket.

    Paces each running campaign (docs/dialer.md) from the target queue's agents as the
    router reports them, originates over ESL, hands answered calls to callcontrol, and
    appends every dial decision and outcome to the audit log. Bad contact rows, a missing
    list and a calling window that never opens are logged and written to --status; the
    rest dials. Config and lists are re-read when they change (running/paused applies at
    once). At start the audit log is read back, so a restart keeps each contact's attempts
    (frequency cap, retries), the opt-outs and the period's abandonment rate. The
    event-socket password is required (CALLMESH_ESL_PASSWORD or --password-file). In a pod,
    each DialerCampaign's abandonPercent and progress counts go to its status.
    """

    from callmesh.workers.dialer.run import run_dialer
    from callmesh.workers.kubestatus import in_cluster_publisher
    from callmesh.workers.runtime import run as run_loop

    make_loop = _setup(log_level, event_loop)
    secret = _esl_password(password, password_file)
    fs_host, _, fs_port = freeswitch.rpartition(":")
    if not fs_host or not fs_port.isdigit():
        typer.echo(f"error: --freeswitch {freeswitch!r}: use host:port, e.g. fs:8021", err=True)
        raise typer.Exit(2)

    async def run() -> None:
        # The publisher's HTTP client belongs to the running loop: build it inside.
        await run_dialer(
            config,
            lists,
            router=router,
            freeswitch=(fs_host, int(fs_port)),
            password=secret,
            callcontrol=callcontrol,
            trunk=trunk,
            audit=audit,
            status=status,
            reload_interval=reload_interval,
            publisher=in_cluster_publisher(status_interval) if publish_status else None,
        )

    try:
        run_loop(run(), make_loop)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
