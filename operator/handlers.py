"""kopf handlers: thin, named ``<kind>_<event>``, each delegating to ``reconcile(namespace)``.

:func:`build_registry` registers everything on a fresh :class:`kopf.OperatorRegistry` and
:func:`run_operator` runs kopf with it; ``callmesh operator`` and the integration tests run
exactly this. The state handlers share is one :class:`Runtime` (kopf's ``memo``): the
connection kopf logged in with, the API client built from it, and the reconciler.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kopf
from callmesh.operator.kube import REFS, ApiError, KubeClient
from callmesh.operator.labels import MANAGED_BY
from callmesh.operator.reconcile import KIND_NAMES, Reconciler
from callmesh.operator.render import RenderOptions
from callmesh.operator.webhook import admission_problems, webhook_server

from callmesh.api import GROUP, VERSION

logger = logging.getLogger("callmesh.operator")

#: Seconds before kopf retries a handler whose reconcile met an API failure.
RETRY_DELAY = 5.0
#: Name of the ValidatingWebhookConfiguration kopf keeps up to date.
WEBHOOK_CONFIGURATION = "callmesh.io"


@dataclass(frozen=True)
class OperatorConfig:
    """Settings of one operator process (the ``callmesh operator`` options)."""

    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty watches all of them (cluster-wide)."""
    render: RenderOptions = field(default_factory=RenderOptions)
    drift_interval: float = 60.0
    """Seconds between drift repairs of each tenant."""
    retry_delay: float = RETRY_DELAY
    liveness: str | None = "http://0.0.0.0:8080/healthz"
    webhook_port: int | None = None
    webhook_service: str | None = None
    webhook_namespace: str | None = None
    webhook_cert_dir: Path | None = None
    peering: bool = False
    """Run with kopf peering (several replicas, one active); needs the kopf.dev CRDs."""


@dataclass
class _Shared:
    info: kopf.ConnectionInfo | None = None
    reconciler: Reconciler | None = None
    drift: asyncio.Task[None] | None = None
    readiness: set[asyncio.Task[None]] = field(default_factory=set)


@dataclass
class Runtime:
    """What the handlers share: kopf's ``memo``.

    kopf hands each object a shallow copy of the memo; the mutable state lives in one
    ``_Shared`` that all copies point to, so there is one client and one reconciler.
    """

    config: OperatorConfig
    shared: _Shared = field(default_factory=_Shared)

    @property
    def reconciler(self) -> Reconciler:
        """The reconciler, built on first use from the connection kopf logged in with."""
        if self.shared.reconciler is None:
            if self.shared.info is None:
                raise kopf.TemporaryError("not logged in to the API server yet", delay=1)
            self.shared.reconciler = Reconciler(KubeClient(self.shared.info), self.config.render)
        return self.shared.reconciler

    def tenants(self) -> int:
        """How many tenants this process has reconciled."""
        return self.shared.reconciler.tenants if self.shared.reconciler else 0

    async def close(self) -> None:
        """Close the API client."""
        if self.shared.reconciler is not None:
            await self.shared.reconciler.client.close()


async def reconcile(
    runtime: Runtime, namespace: str | None, full: bool = True, coalesce: bool = False
) -> None:
    """Reconcile ``namespace`` (see :meth:`Reconciler.reconcile`), API failures -> kopf retries.

    ``coalesce`` returns at once when a pass that has not started yet will serve the request
    (:meth:`Reconciler.request`); only a caller that kopf retries on failure may ask for it.
    """
    if not namespace:
        raise kopf.PermanentError("callmesh resources are namespaced; this one has no namespace")
    try:
        if coalesce:
            await runtime.reconciler.request(namespace, full)
        else:
            await runtime.reconciler.reconcile(namespace, full)
    except ApiError as exc:
        if exc.retriable:
            raise kopf.TemporaryError(
                f"namespace {namespace}: {exc} — retrying in {runtime.config.retry_delay:g} s",
                delay=runtime.config.retry_delay,
            ) from exc
        raise kopf.TemporaryError(
            f"namespace {namespace}: {exc} — check the operator's RBAC and the API server; "
            f"retrying in {runtime.config.retry_delay * 6:g} s",
            delay=runtime.config.retry_delay * 6,
        ) from exc


async def drift_timer(runtime: Runtime) -> None:
    """Every ``drift_interval`` seconds, reconcile every tenant that has a ContactCenter.

    This repairs children that were deleted or edited by hand. It is one loop for the whole
    operator rather than a kopf timer per ContactCenter, because a kopf timer puts a
    finalizer on its object; a ContactCenter here needs none (its children go with it
    through owner references).
    """
    config = runtime.config
    while True:
        await asyncio.sleep(config.drift_interval)
        try:
            reconciler = runtime.reconciler
            ref = REFS["ContactCenter"]
            centers: list[dict[str, Any]] = []
            for namespace in config.namespaces or (None,):
                centers += await reconciler.client.list(ref, namespace)
        except (ApiError, kopf.TemporaryError) as exc:
            logger.warning(
                "drift timer: could not list ContactCenters (%s); next pass in %g s",
                exc,
                config.drift_interval,
            )
            continue
        namespaces = sorted({c["metadata"]["namespace"] for c in centers})

        async def repair(namespace: str, reconciler: Reconciler = reconciler) -> None:
            try:
                await reconciler.reconcile(namespace)
            except ApiError as exc:
                logger.warning(
                    "drift timer: namespace %s: %s; next pass in %g s",
                    namespace,
                    exc,
                    config.drift_interval,
                )

        await asyncio.gather(*(repair(ns) for ns in namespaces))


def configure(settings: kopf.OperatorSettings, config: OperatorConfig) -> kopf.OperatorSettings:
    """kopf settings: our own annotations for its bookkeeping, no status of its own."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{GROUP}/reconcile-tenant"
    settings.posting.enabled = False  # the reconciler posts its own Events, on transitions
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 30
    settings.peering.standalone = not config.peering
    settings.peering.name = "callmesh"
    settings.peering.clusterwide = True  # one ClusterKopfPeering "callmesh" (the chart makes it)
    settings.peering.mandatory = config.peering
    if config.webhook_port is not None:
        settings.admission.server = webhook_server(
            config.webhook_port,
            config.webhook_service,
            config.webhook_namespace,
            config.webhook_cert_dir,
        )
        if config.webhook_service is not None:
            settings.admission.managed = WEBHOOK_CONFIGURATION
    return settings


def build_registry(config: OperatorConfig) -> kopf.OperatorRegistry:
    """Every handler of the operator, on a registry of its own."""
    registry = kopf.OperatorRegistry()
    plurals = {kind: REFS[kind].plural for kind in KIND_NAMES}

    def changes(kind: str) -> list[Any]:
        plural = plurals[kind]
        return [
            kopf.on.create(GROUP, VERSION, plural, registry=registry),
            kopf.on.update(GROUP, VERSION, plural, registry=registry),
            kopf.on.resume(GROUP, VERSION, plural, registry=registry),
        ]

    def deletions(kind: str) -> Any:
        return kopf.on.event(
            GROUP,
            VERSION,
            plurals[kind],
            registry=registry,
            when=lambda type, **_: type == "DELETED",
        )

    def wrap(decorators: list[Any], fn: Any) -> Any:
        for decorator in decorators:
            fn = decorator(fn)
        return fn

    @kopf.on.login(registry=registry)
    def operator_login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        """Service account in a pod, else the kubeconfig (KUBECONFIG or ~/.kube/config)."""
        info: kopf.ConnectionInfo | None = kopf.login_with_service_account(
            **kwargs
        ) or kopf.login_with_kubeconfig(**kwargs)
        memo: Runtime = kwargs["memo"]
        memo.shared.info = info
        return info

    @kopf.on.cleanup(registry=registry)
    async def operator_cleanup(memo: Runtime, **_: Any) -> None:
        if memo.shared.drift is not None:
            memo.shared.drift.cancel()
        for task in list(memo.shared.readiness):
            task.cancel()
        await memo.close()

    @kopf.on.probe(id="tenants", registry=registry)
    def operator_probe(memo: Runtime, **_: Any) -> int:
        """Liveness detail: how many tenants this process has reconciled."""
        return memo.tenants()

    # A change handler returns at once when a pass of its namespace is pending (kopf retries
    # the one that waits for it if it fails): kopf keeps each running handler's event body,
    # and at startup every object of a tenant asks for the same pass.
    async def contactcenter_changed(namespace: str | None, memo: Runtime, **_: Any) -> None:
        await reconcile(memo, namespace, coalesce=True)

    async def queue_changed(namespace: str | None, memo: Runtime, **_: Any) -> None:
        await reconcile(memo, namespace, coalesce=True)

    async def agentteam_changed(namespace: str | None, memo: Runtime, **_: Any) -> None:
        await reconcile(memo, namespace, coalesce=True)

    async def ivrflow_changed(namespace: str | None, memo: Runtime, **_: Any) -> None:
        await reconcile(memo, namespace, coalesce=True)

    async def dialercampaign_changed(namespace: str | None, memo: Runtime, **_: Any) -> None:
        await reconcile(memo, namespace, coalesce=True)

    async def tenant_object_deleted(
        namespace: str | None, memo: Runtime, logger: logging.Logger, **_: Any
    ) -> None:
        """A callmesh object is gone: re-render its tenant without it (no finalizer needed)."""
        try:
            await reconcile(memo, namespace)
        except kopf.TemporaryError as exc:  # event handlers are not retried: the timer repairs
            logger.warning("%s; the drift timer will repair it", exc)

    for kind, fn in (
        ("ContactCenter", contactcenter_changed),
        ("Queue", queue_changed),
        ("AgentTeam", agentteam_changed),
        ("IVRFlow", ivrflow_changed),
        ("DialerCampaign", dialercampaign_changed),
    ):
        wrap(changes(kind), fn)
        wrap([deletions(kind)], tenant_object_deleted)

    async def workload_event(
        *,
        type: str,
        body: Mapping[str, Any],
        namespace: str | None,
        memo: Runtime,
        logger: logging.Logger | logging.LoggerAdapter[Any],
        **_: Any,
    ) -> None:
        """A switch StatefulSet or worker Deployment changed: reconcile when its readiness did.

        This is how a tenant turns Ready once its pods are, and Progressing while a rollout
        runs, without waiting for the drift timer. A child deleted by hand is restored at
        once. The pass runs in a task of its own, so kopf does not hold the event's body
        (a whole Deployment) while it waits its turn.
        """
        if not namespace:
            return
        if type != "DELETED" and not memo.reconciler.workload_changed(namespace, body):
            return

        async def readiness_pass(ns: str = namespace) -> None:
            try:
                await reconcile(memo, ns, full=False)
            except kopf.TemporaryError as exc:  # not retried here: the drift timer repairs
                logger.warning("%s; the drift timer will repair it", exc)
            except Exception:  # a bug: say so, the drift timer still repairs
                logger.exception("namespace %s: readiness pass failed", ns)

        task = asyncio.create_task(readiness_pass(), name=f"callmesh-readiness-{namespace}")
        memo.shared.readiness.add(task)
        task.add_done_callback(memo.shared.readiness.discard)

    for plural in ("statefulsets", "deployments"):
        kopf.on.event(
            "apps",
            "v1",
            plural,
            id=f"{plural}-readiness",
            labels={"app.kubernetes.io/managed-by": MANAGED_BY},
            registry=registry,
        )(workload_event)

    @kopf.on.startup(registry=registry)
    async def operator_startup(memo: Runtime, **_: Any) -> None:
        """Start the drift timer (one loop for every tenant, so no finalizer is needed)."""
        memo.shared.drift = asyncio.create_task(drift_timer(memo), name="callmesh-drift")

    async def admit(
        body: Mapping[str, Any], namespace: str | None, memo: Runtime, warnings: list[str]
    ) -> None:
        incoming = dict(body)
        meta = dict(incoming.get("metadata") or {})
        if namespace and not meta.get("namespace"):
            meta["namespace"] = namespace
        incoming["metadata"] = meta
        others: list[dict[str, Any]] = []
        if meta.get("namespace"):
            try:
                client = memo.reconciler.client
                for kind in KIND_NAMES:
                    others += await client.list(REFS[kind], str(meta["namespace"]))
            except (ApiError, kopf.TemporaryError) as exc:
                warnings.append(f"namespace not read ({exc}); checked this object alone")
                others = []
        rejected, warned = admission_problems(incoming, others)
        warnings.extend(p.format() for p in warned)
        if rejected:
            raise kopf.AdmissionError(
                "; ".join(f"{p.path}: {p.message}" if p.path else p.message for p in rejected),
                code=422,
            )

    async def tenant_object_validate(
        body: Mapping[str, Any],
        namespace: str | None,
        memo: Runtime,
        warnings: list[str],
        **_: Any,
    ) -> None:
        """Admission for any of the five kinds: the checks of ``callmesh validate``."""
        await admit(body, namespace, memo, warnings)

    if config.webhook_port is not None:
        for kind in KIND_NAMES:
            kopf.on.validate(
                GROUP,
                VERSION,
                plurals[kind],
                id=f"{kind.lower()}-validate",
                operations=["CREATE", "UPDATE"],
                registry=registry,
            )(tenant_object_validate)
    return registry


async def run_operator(
    config: OperatorConfig,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
) -> None:
    """Run the operator until ``stop_flag`` is set (or a signal stops it)."""
    runtime = Runtime(config)
    settings = configure(kopf.OperatorSettings(), config)
    await kopf.operator(
        registry=build_registry(config),
        settings=settings,
        memo=runtime,
        clusterwide=not config.namespaces,
        namespaces=list(config.namespaces),
        standalone=not config.peering,
        liveness_endpoint=config.liveness,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )
