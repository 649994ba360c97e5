"""``callmesh render`` and ``callmesh operator``: the control plane on the command line."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]


class LogLevel(StrEnum):
    """Operator log levels."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


#: Client libraries kopf imports when they are installed, only to log in through them and to
#: accept their model objects (``kopf.adopt`` & co.). The operator logs in with its own
#: handler and passes plain dicts, so its process goes without them: ``kubernetes`` alone
#: is ~10 MiB of resident memory, a seventh of the operator's budget at 100 tenants.
UNUSED_CLIENTS = ("kubernetes", "kubernetes_asyncio", "pykube")


def skip_unused_clients() -> None:
    """Make ``import`` of :data:`UNUSED_CLIENTS` fail in this process, as if not installed.

    Call it before kopf is imported; a library imported already is left alone.
    """
    for name in UNUSED_CLIENTS:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: ImportError


def register(app: typer.Typer) -> None:
    """Add ``render`` and ``operator`` to the ``callmesh`` command."""
    app.command("render")(render_command)
    app.command("operator")(operator_command)


def render_command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Manifest files or folders, as for callmesh validate.", show_default=False
        ),
    ],
    include_secrets: Annotated[
        bool,
        typer.Option(
            "--include-secrets",
            help="Also print the Secrets the operator generates (ESL and agent SIP passwords), "
            "with freshly generated random passwords. Off by default: passwords are secrets.",
        ),
    ] = False,
    worker_image: Annotated[
        str | None, typer.Option(help="Image of the worker pods (default: this version's).")
    ] = None,
    cluster_domain: Annotated[str, typer.Option(help="Cluster DNS domain.")] = "cluster.local",
    external_address: Annotated[
        str | None,
        typer.Option(
            help="Address of the SIP load balancer, for loadBalancer exposure "
            "(the operator reads it from the Service once the cloud assigns it)."
        ),
    ] = None,
) -> None:
    """Print every object the operator would create for the manifests, like helm template.

    The manifests are validated first (the checks of callmesh validate); on a problem
    nothing is printed and the problems go to stderr. Output is multi-document YAML that
    kubectl apply -f - accepts; owner references are left out because the ContactCenters
    do not exist yet (the operator adds them).
    """
    import secrets

    import yaml
    from callmesh.operator.render import RenderOptions, generated_secrets, render_tenant

    from callmesh import __version__
    from callmesh.api.validate import InvalidManifests, load_tenants

    try:
        tenants = load_tenants(paths)
    except InvalidManifests as exc:
        for problem in exc.problems:
            typer.echo(problem.format(), err=True)
        raise typer.Exit(1) from exc
    options = RenderOptions(
        worker_image=worker_image or f"ghcr.io/callmesh/callmesh:{__version__}",
        cluster_domain=cluster_domain,
        external_address=external_address,
    )
    documents = []
    for namespace, tenant in tenants.items():
        if tenant.center is None:
            typer.echo(
                f"namespace {namespace}: no ContactCenter — nothing to render for it; "
                "add a ContactCenter to the manifests",
                err=True,
            )
            raise typer.Exit(1)
        documents += render_tenant(tenant, options)
        if include_secrets:
            documents += generated_secrets(tenant, set(), lambda: secrets.token_urlsafe(24))
    typer.echo(yaml.safe_dump_all(documents, sort_keys=False), nl=False)
    typer.echo(
        f"{len(documents)} objects for {len(tenants)} tenant(s)"
        + ("" if include_secrets else "; generated Secrets left out (--include-secrets)"),
        err=True,
    )


def operator_command(
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace",
            "-n",
            help="Namespace (tenant) to watch; repeat for several. Mutually exclusive with "
            "--all-namespaces.",
        ),
    ] = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="Watch every namespace.")
    ] = False,
    worker_image: Annotated[
        str | None, typer.Option(help="Image of the worker pods (default: this version's).")
    ] = None,
    cluster_domain: Annotated[str, typer.Option(help="Cluster DNS domain.")] = "cluster.local",
    api_server_cidr: Annotated[
        list[str] | None,
        typer.Option(
            help="CIDR of the Kubernetes API server's endpoints (repeatable): the router and "
            "dialer NetworkPolicies allow egress there, to write live figures into status. "
            "Default 0.0.0.0/0 (any address, on the API ports only).",
        ),
    ] = None,
    api_server_port: Annotated[
        list[int] | None,
        typer.Option(
            help="TCP port of the API server's endpoints (repeatable; default 443 and 6443)."
        ),
    ] = None,
    log_level: Annotated[LogLevel, typer.Option(help="Log level.")] = LogLevel.INFO,
    webhook_port: Annotated[
        int | None,
        typer.Option(help="Serve the validating admission webhook on this port (off if unset)."),
    ] = None,
    webhook_service: Annotated[
        str | None,
        typer.Option(
            help="Service in front of the webhook; with it the webhook speaks HTTPS and the "
            "operator keeps the ValidatingWebhookConfiguration callmesh.io up to date. "
            "Without it, plain HTTP on 127.0.0.1 (local development)."
        ),
    ] = None,
    webhook_cert_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder with tls.crt and tls.key for the webhook (e.g. from cert-manager); "
            "a self-signed certificate is generated when unset."
        ),
    ] = None,
    drift_interval: Annotated[
        float, typer.Option(min=1, help="Seconds between drift repairs of each tenant.")
    ] = 60.0,
    liveness: Annotated[
        str, typer.Option(help="Liveness endpoint (kopf's /healthz).")
    ] = "http://0.0.0.0:8080/healthz",
    peering: Annotated[
        bool,
        typer.Option(
            "--peering",
            help="Coordinate several replicas with kopf peering (one active at a time).",
        ),
    ] = False,
) -> None:
    """Run the operator: reconcile each tenant's resources into FreeSWITCH and workers.

    Connects with the pod's service account, or the kubeconfig (KUBECONFIG or
    ~/.kube/config) outside a cluster. Stops cleanly on SIGTERM.
    """
    import asyncio
    import logging

    skip_unused_clients()
    from callmesh.operator.handlers import OperatorConfig, run_operator
    from callmesh.operator.render import RenderOptions

    from callmesh import __version__

    if bool(namespace) == all_namespaces:
        typer.echo(
            "give either --namespace NAME (repeatable) or --all-namespaces, not both or neither",
            err=True,
        )
        raise typer.Exit(2)
    logging.basicConfig(
        level=log_level.value, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = OperatorConfig(
        namespaces=tuple(namespace or ()),
        render=RenderOptions(
            worker_image=worker_image or f"ghcr.io/callmesh/callmesh:{__version__}",
            cluster_domain=cluster_domain,
            api_server_cidrs=tuple(api_server_cidr or ("0.0.0.0/0",)),
            api_server_ports=tuple(api_server_port or (443, 6443)),
        ),
        drift_interval=drift_interval,
        liveness=liveness,
        webhook_port=webhook_port,
        webhook_service=webhook_service,
        webhook_namespace=os.environ.get("POD_NAMESPACE") if webhook_service else None,
        webhook_cert_dir=webhook_cert_dir,
        peering=peering,
    )
    asyncio.run(run_operator(config))
