"""OpenTelemetry for the workers: tracer and meter providers, and a gRPC server interceptor.

Every worker calls :func:`setup_telemetry` once with its role and tenant, and installs
:class:`ServerTelemetryInterceptor` on its ``grpc.aio`` server: one SERVER span and one
duration measurement per rpc, named ``package.Service/Method`` as the OpenTelemetry RPC
semantic conventions say, with the gRPC status code. Health checks (``grpc.health.v1``,
probed every few seconds by the kubelet) and reflection are filtered out, so they do not
drown the traces. A caller's W3C trace context (``traceparent``/``tracestate`` request
metadata, as callcontrol sends with every router rpc) becomes the server span's parent, so
one trace follows a call across workers.

Exporters: spans and metrics go to the exporters and readers passed in (tests pass
in-memory ones). In a pod, ``OTEL_EXPORTER_OTLP_ENDPOINT`` turns on OTLP export when the
``opentelemetry-exporter-otlp`` package is installed, and ``CALLMESH_OTEL_CONSOLE=1`` prints
spans and metrics to stdout (for a quick look); with no exporter at all, spans are not
recorded (sampler ALWAYS_OFF) and metrics stay in memory, at almost no cost.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, Status, StatusCode

__all__ = [
    "FILTERED_PREFIXES",
    "ServerTelemetryInterceptor",
    "Telemetry",
    "parent_context",
    "setup_telemetry",
]

log = logging.getLogger("callmesh.workers.telemetry")

FILTERED_PREFIXES: tuple[str, ...] = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)
"""Methods the interceptor leaves alone (health probes and reflection)."""


@dataclass
class Telemetry:
    """A worker's providers, with the tracer and meter its code uses."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    tracer: trace.Tracer
    meter: metrics.Meter

    def shutdown(self) -> None:
        """Flush and stop exporters (call once, at the end of the process)."""
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def setup_telemetry(
    role: str,
    *,
    tenant: str = "",
    span_exporters: Sequence[SpanExporter] = (),
    metric_readers: Sequence[MetricReader] = (),
    install_global: bool = False,
    environ: dict[str, str] | None = None,
) -> Telemetry:
    """Providers for a worker (``service.name`` = ``callmesh-<role>``).

    Args:
        role: the worker role (router, callcontrol, dialer...).
        tenant: the tenant namespace, recorded as ``callmesh.tenant`` on everything.
        span_exporters: exported synchronously (tests: an in-memory exporter).
        metric_readers: metric readers (tests: an in-memory reader).
        install_global: also make them the process-wide providers (the CLI does; tests
            do not, so several servers can run in one process).
        environ: where the OTEL_* / CALLMESH_OTEL_* settings are read (default os.environ).
    """
    env = os.environ if environ is None else environ
    attrs: dict[str, Any] = {"service.name": f"callmesh-{role}", "callmesh.role": role}
    if tenant:
        attrs["callmesh.tenant"] = tenant
        attrs["service.namespace"] = tenant
    if env.get("POD_NAME"):
        attrs["service.instance.id"] = env["POD_NAME"]
    resource = Resource.create(attrs)
    console = env.get("CALLMESH_OTEL_CONSOLE") == "1"
    otlp = bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    # Nowhere to send spans: do not record them (a recorded span costs tens of µs per rpc).
    sampler = None if (span_exporters or console or otlp) else ALWAYS_OFF
    tracer_provider = TracerProvider(resource=resource, sampler=sampler)
    for exporter in span_exporters:
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    readers = list(metric_readers)
    if console:
        tracer_provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter()))
    if otlp:
        try:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (  # type: ignore[import-not-found,unused-ignore]
                OTLPMetricExporter,
            )
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
                OTLPSpanExporter,
            )
        except ImportError:
            log.warning(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set but opentelemetry-exporter-otlp is not"
                " installed: pip install opentelemetry-exporter-otlp to export"
            )
        else:
            tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    if install_global:
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
    scope = f"callmesh.workers.{role}"
    return Telemetry(
        tracer_provider,
        meter_provider,
        tracer_provider.get_tracer(scope),
        meter_provider.get_meter(scope),
    )


def parent_context(metadata: Any) -> otel_context.Context | None:
    """The caller's trace context from gRPC request metadata (None: no metadata at all).

    Reads ``traceparent`` (and ``tracestate``, baggage...) with the process's propagator
    (W3C trace context by default, ``OTEL_PROPAGATORS`` to change it).
    """
    if not metadata:
        return None
    carrier: dict[str, str] = {}
    for key, value in metadata:
        if isinstance(value, str):
            carrier[key] = value
    return propagate.extract(carrier) if carrier else None


def _split(method: str) -> tuple[str, str]:
    service, _, name = method.lstrip("/").partition("/")
    return service, name


class ServerTelemetryInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """A span and a duration per rpc (health checks and reflection filtered out).

    Spans are ``SpanKind.SERVER``, named ``<package.Service>/<Method>``, with
    ``rpc.system``, ``rpc.service``, ``rpc.method`` and ``rpc.grpc.status_code``; a unary
    rpc's span is current while its handler runs, so spans and events the handler makes
    nest under it; the caller's ``traceparent`` metadata, if any, is its parent. Durations
    go to the ``rpc.server.duration`` histogram (seconds).

    With a tracer that records nothing (``setup_telemetry`` with no exporter samples
    ALWAYS_OFF) no span is started at all: only the duration is measured. Wrapped handlers
    and metric attributes are built once per method, not per call.
    """

    def __init__(
        self,
        tracer: trace.Tracer,
        meter: metrics.Meter,
        filtered: Sequence[str] = FILTERED_PREFIXES,
    ) -> None:
        self._tracer = tracer
        self._spans = getattr(tracer, "sampler", None) is not ALWAYS_OFF
        self._filtered = tuple(filtered)
        self._duration = meter.create_histogram(
            "rpc.server.duration", unit="s", description="Duration of each gRPC call served."
        )
        self._handlers: dict[str, tuple[Any, Any]] = {}  # method -> (handler, wrapped)
        self._metric_attrs: dict[tuple[str, int], dict[str, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[Any]],
        handler_call_details: Any,
    ) -> Any:
        """Wrap the handler of every method not filtered out."""
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or method.startswith(self._filtered):
            return handler
        cached = self._handlers.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(method, handler)
        self._handlers[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, method: str, handler: Any) -> Any:
        if handler.request_streaming and handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(
                self._streaming(method, handler.stream_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.request_streaming:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(method, handler.stream_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return grpc.unary_unary_rpc_method_handler(
            self._unary(method, handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _attributes(self, method: str) -> dict[str, Any]:
        service, name = _split(method)
        return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}

    def _finish(
        self,
        span: trace.Span | None,
        attrs: dict[str, Any],
        context: Any,
        start: float,
        exc: Any,
    ) -> None:
        code = _code(context, exc)
        value = code.value[0]
        if span is not None:
            span.set_attribute("rpc.grpc.status_code", value)
            if code is not grpc.StatusCode.OK:
                span.set_status(Status(StatusCode.ERROR, f"{code.name}: {_details(context, exc)}"))
        key = (attrs["rpc.method"], value)
        metric_attrs = self._metric_attrs.get(key)
        if metric_attrs is None:
            metric_attrs = self._metric_attrs[key] = {**attrs, "rpc.grpc.status_code": value}
        self._duration.record(time.perf_counter() - start, metric_attrs)

    def _unary(
        self, method: str, behavior: Callable[[Any, Any], Awaitable[Any]]
    ) -> Callable[[Any, Any], Awaitable[Any]]:
        attrs = self._attributes(method)
        name = method.lstrip("/")

        async def wrapped(request: Any, context: Any) -> Any:
            start = time.perf_counter()
            failure: BaseException | None = None
            if not self._spans:
                try:
                    return await behavior(request, context)
                except BaseException as exc:
                    failure = exc
                    raise
                finally:
                    self._finish(None, attrs, context, start, failure)
            with self._tracer.start_as_current_span(
                name,
                context=parent_context(context.invocation_metadata()),
                kind=SpanKind.SERVER,
                attributes=attrs,
                record_exception=False,
            ) as span:
                try:
                    return await behavior(request, context)
                except BaseException as exc:
                    failure = exc
                    raise
                finally:
                    self._finish(span, attrs, context, start, failure)

        return wrapped

    def _streaming(
        self, method: str, behavior: Callable[[Any, Any], AsyncIterator[Any]]
    ) -> Callable[[Any, Any], AsyncIterator[Any]]:
        attrs = self._attributes(method)
        name = method.lstrip("/")

        async def wrapped(request: Any, context: Any) -> AsyncIterator[Any]:
            start = time.perf_counter()
            # Not made current: an async generator may resume in another context.
            span = (
                self._tracer.start_span(
                    name,
                    context=parent_context(context.invocation_metadata()),
                    kind=SpanKind.SERVER,
                    attributes=attrs,
                )
                if self._spans
                else None
            )
            failure: BaseException | None = None
            try:
                async for item in behavior(request, context):
                    yield item
            except BaseException as exc:
                failure = exc
                raise
            finally:
                self._finish(span, attrs, context, start, failure)
                if span is not None:
                    span.end()

        return wrapped


def _code(context: Any, exc: BaseException | None) -> grpc.StatusCode:
    code = None
    try:
        code = context.code()
    except Exception:  # pragma: no cover - older grpc without code()
        code = None
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):
        for candidate in grpc.StatusCode:
            if candidate.value[0] == code:
                return candidate
    if exc is None:
        return grpc.StatusCode.OK
    if isinstance(exc, GeneratorExit | asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN


def _details(context: Any, exc: BaseException | None) -> str:
    try:
        details = context.details()
    except Exception:  # pragma: no cover
        details = None
    if details:
        return str(details)
    return f"{type(exc).__name__}: {exc}" if exc is not None else ""
