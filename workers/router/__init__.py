"""The router worker: one tenant's ACD (:class:`callmesh.acd.Router`) served over gRPC.

:mod:`~callmesh.workers.router.config` reads the operator's rendered ``tenant.yaml``,
:mod:`~callmesh.workers.router.core` owns the engine (clock, timers, effects, sessions,
watchers, KPIs, reload), :mod:`~callmesh.workers.router.service` maps gRPC onto it and
:mod:`~callmesh.workers.router.server` runs the server (health, reflection, telemetry,
graceful shutdown, config reload). See ``proto/callmesh/v1/router.proto``.
"""
