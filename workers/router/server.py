"""The router worker process: gRPC server, health, reflection, telemetry, reload, shutdown.

:class:`RouterServer` loads the tenant's ``tenant.yaml``, builds the plugin manager from
``ContactCenter.spec.plugins`` and the :class:`~callmesh.workers.router.core.RouterCore`,
and serves ``callmesh.v1.RouterService`` with the standard health service (SERVING once
started, NOT_SERVING while stopping) and server reflection, behind the shared OpenTelemetry
interceptor. It polls the config file and reloads it when its content changes (a
ConfigMap update swaps the mounted file); a reload that fails to parse, or that would lose a
contact, is logged and retried, and the old config stays in force meanwhile.
:func:`run_router` is what ``callmesh worker router`` runs: it stops gracefully on SIGTERM
(``await server.stop(grace)``) and reloads at once on SIGHUP.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import signal
from pathlib import Path

import grpc
import grpc.aio
from callmesh.v1 import router_pb2, router_pb2_grpc
from callmesh.workers.kubestatus import StatusPublisher
from callmesh.workers.router.config import RouterConfig, RouterConfigError, load_config
from callmesh.workers.router.core import DEFAULT_KPI_WINDOW, RouterCore
from callmesh.workers.router.service import RouterService
from callmesh.workers.telemetry import ServerTelemetryInterceptor, Telemetry, setup_telemetry
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from callmesh.acd import RoutingPolicy

__all__ = [
    "SERVICE_NAME",
    "YOUNG_COLLECTION_THRESHOLD",
    "RouterServer",
    "plugin_policy",
    "run_router",
    "tune_garbage_collector",
]

log = logging.getLogger("callmesh.workers.router")

SERVICE_NAME: str = router_pb2.DESCRIPTOR.services_by_name["RouterService"].full_name
"""``callmesh.v1.RouterService``, as health checks and reflection name it."""


def plugin_policy(config: RouterConfig) -> RoutingPolicy:
    """The tenant's plugin manager (routing policy) from ``ContactCenter.spec.plugins``.

    Raises:
        RouterConfigError: a plugin is unknown, fails to load or has a bad config.
    """
    from callmesh.plugins.errors import PluginError
    from callmesh.plugins.manager import PluginManager

    try:
        return PluginManager(config.plugins, where="ContactCenter spec.plugins")
    except PluginError as exc:
        raise RouterConfigError(str(exc)) from None


class RouterServer:
    """One tenant's router on ``address`` (``host:port``; port 0 picks a free one).

    Args:
        config_path: the rendered ``tenant.yaml`` (or a folder of manifests).
        address: where to listen.
        grace: seconds in-flight rpcs get on stop.
        reload_interval: seconds between checks of the config file; 0 disables polling.
        seed: the engine's random seed.
        telemetry: providers (default: new, not global, with no exporter).
        kpi_window: seconds of the sliding interval of the live service level and ASA
            (WatchQueues, metrics, status); 0: since the router started.
        publisher: where per-Queue ``waiting``/``serviceLevel`` and per-AgentTeam
            ``loggedIn`` go, every ``publisher.interval`` seconds (see
            :mod:`callmesh.workers.kubestatus`); None publishes nothing.
    """

    def __init__(
        self,
        config_path: str | Path,
        *,
        address: str = "[::]:50051",
        grace: float = 10.0,
        reload_interval: float = 5.0,
        seed: int = 0,
        telemetry: Telemetry | None = None,
        kpi_window: float = DEFAULT_KPI_WINDOW,
        publisher: StatusPublisher | None = None,
    ) -> None:
        self.config_path = Path(config_path)
        self.address = address
        self.grace = grace
        self.reload_interval = reload_interval
        self.seed = seed
        self.telemetry = telemetry
        self.kpi_window = kpi_window
        self.publisher = publisher
        self.port = 0
        self.core: RouterCore | None = None
        self.health = health.aio.HealthServicer()
        self.last_reload_error: str | None = None
        self._server: grpc.aio.Server | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._publishing: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()

    async def start(self) -> int:
        """Load the config, start serving; returns the bound port.

        Raises:
            RouterConfigError: the config cannot be used (the server does not start).
            RuntimeError: the address cannot be bound.
        """
        config = load_config(self.config_path)
        if self.telemetry is None:
            self.telemetry = setup_telemetry("router", tenant=config.namespace)
        self.core = RouterCore(
            config,
            plugin_policy,
            seed=self.seed,
            meter=self.telemetry.meter,
            tracer=self.telemetry.tracer,
            kpi_window=self.kpi_window,
        )
        server = grpc.aio.server(
            interceptors=[ServerTelemetryInterceptor(self.telemetry.tracer, self.telemetry.meter)]
        )
        router_pb2_grpc.add_RouterServiceServicer_to_server(RouterService(self.core), server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        self.port = server.add_insecure_port(self.address)
        if self.port == 0:
            raise RuntimeError(f"cannot listen on {self.address}: the address is taken or bad")
        await server.start()
        self._server = server
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        if self.reload_interval > 0:
            self._watcher = asyncio.create_task(self._watch())
        if self.publisher is not None:
            self._publishing = asyncio.create_task(self._publish(self.publisher))
        log.info(
            "router for tenant %s serving on port %d: %d queues, %d teams",
            config.namespace or "?",
            self.port,
            len(config.queues),
            len(config.teams),
        )
        return self.port

    def _digest(self) -> str | None:
        path = self.config_path
        digest = hashlib.sha256()
        try:
            files = sorted(path.rglob("*.y*ml")) if path.is_dir() else [path]
            for file in files:
                digest.update(file.read_bytes())
        except OSError:
            return None
        return digest.hexdigest()

    async def reload(self) -> bool:
        """Reload the config file now if it changed; True when a new config is in force.

        A config that does not parse, or a reload the core refuses, is logged (once per
        file content) and kept in :attr:`last_reload_error`; the old config stays.
        """
        assert self.core is not None, "start() first"
        digest = self._digest()
        if digest is None or digest == self.core.config.digest:
            return False
        try:
            config = load_config(self.config_path)
            changed = self.core.reload(config)
        except RouterConfigError as exc:
            message = str(exc)
            if message != self.last_reload_error:
                log.error("router config not reloaded, the previous one stays: %s", message)
            self.last_reload_error = message
            return False
        self.last_reload_error = None
        return changed

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.reload_interval)
            try:
                await self.reload()
            except Exception:  # pragma: no cover - keep watching whatever happens
                log.exception("router config reload failed")

    async def publish_status(self) -> None:
        """Hand the core's live figures to the publisher and send what changed, now."""
        assert self.core is not None and self.publisher is not None
        for (plural, name), fields in self.core.status_fields().items():
            self.publisher.set(plural, name, fields)
        await self.publisher.flush()

    async def _publish(self, publisher: StatusPublisher) -> None:
        log.info(
            "publishing live KPIs into the status of queues and agentteams in %s every %g s",
            publisher.namespace,
            publisher.interval,
        )
        try:
            while True:
                try:
                    await self.publish_status()
                except Exception:  # pragma: no cover - a bug; keep publishing
                    log.exception("router status publishing failed")
                await asyncio.sleep(publisher.interval)
        finally:
            await publisher.api.aclose()

    async def stop(self, grace: float | None = None) -> None:
        """Stop gracefully: NOT_SERVING, end sessions and watches, give rpcs ``grace`` s."""
        for task in (self._watcher, self._publishing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._watcher = self._publishing = None
        await self.health.enter_graceful_shutdown()
        if self.core is not None:
            self.core.close()
        if self._server is not None:
            await self._server.stop(self.grace if grace is None else grace)
            self._server = None
        if self.core is not None:
            closer = getattr(self.core.policy, "aclose", None)
            if closer is not None:
                await closer()
        self._stopped.set()

    async def wait_stopped(self) -> None:
        """Return once :meth:`stop` has finished."""
        await self._stopped.wait()


YOUNG_COLLECTION_THRESHOLD = 10_000
"""Allocations (net) between two collections of the youngest generation (Python's default:
700). Each such collection walks every young object, and a router serving sessions always
has thousands: the coroutines, futures and tasks awaiting each stream's next message are
made anew after every message. At 700, 200 agents at 500 contacts/s paid 29 young
collections of 1-3 ms (up to 14 ms on a loaded machine) and 3 older ones per 8 s; at
10,000, 2 of 7-9 ms: a quarter or less of the pause time, in 2 pauses instead of 32 (with
a contact every 2 ms, about one in a hundred had arrived during one)."""


def tune_garbage_collector() -> None:
    """Set the collector up for serving: leave what start-up built (modules, protobuf
    descriptors, grpc, the config) out of every later collection, and collect the young
    generation less often (:data:`YOUNG_COLLECTION_THRESHOLD`).

    A full (generation 2) collection walks every object the collector tracks, however old,
    while the event loop waits: at 500 contacts/s the start-up heap alone (~110,000
    objects) made each one a 30-110 ms stall of every rpc. Call once, after the server
    started; objects made later are collected as usual. The price: frozen objects that
    later become cyclic garbage are never freed, a one-off bounded by the start-up heap
    (the first engine, once a reload replaced it, is in no cycle: it is freed at once).
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, older, oldest)


async def run_router(server: RouterServer) -> None:
    """Run until SIGTERM or SIGINT, then stop gracefully; SIGHUP reloads the config now.

    Once started, the garbage collector is set up for serving
    (:func:`tune_garbage_collector`).
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    await server.start()
    tune_garbage_collector()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(server.reload()))
    try:
        await stop.wait()
        log.info("router stopping (grace %.1f s)", server.grace)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        await server.stop()
