"""OpenTelemetry tracing: off by default, configured by the standard ``OTEL_*`` variables.

Tracing turns on when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp`` or
``console``) or an OTLP endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``); ``OTEL_SDK_DISABLED=true`` or
``OTEL_TRACES_EXPORTER=none`` keep it off. Unlike the OpenTelemetry default
(``otlp``), nothing is exported unless asked for, so a process without a collector
never retries exports in the background.

The ``otlp`` exporter speaks OTLP over HTTP/protobuf (collector port 4318) to
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, else ``OTEL_EXPORTER_OTLP_ENDPOINT`` + ``/v1/traces``;
it reads the rest of its configuration (headers, timeout, compression, certificates)
from the standard variables itself. ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES``
are honoured; the service name given in code is only the default.

Wiring, in the composition roots::

    provider = configure_tracing("aimpact-api")
    client = await Client.connect(..., interceptors=temporal_interceptors(provider))
    instrument_fastapi(app, provider)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from temporalio.contrib.opentelemetry import TracingInterceptor

if TYPE_CHECKING:
    from fastapi import FastAPI

EXPORTERS = frozenset({"otlp", "console", "none"})
"""Values ``OTEL_TRACES_EXPORTER`` may list (comma-separated)."""

UNTRACED_PATHS = ("/healthz", "/readyz", "/metrics")
"""Probe and scrape endpoints: frequent, uninteresting, and never traced."""

_TRUE = frozenset({"true", "1", "yes", "on"})
_HTTP_PROTOCOLS = frozenset({"", "http/protobuf"})


class TracingConfigError(ValueError):
    """An ``OTEL_*`` variable asks for something this build cannot do."""


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def _exporter_names(env: Mapping[str, str]) -> list[str]:
    names = [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    unknown = sorted(set(names) - EXPORTERS)
    if unknown:
        raise TracingConfigError(f"OTEL_TRACES_EXPORTER: unsupported exporter(s) {unknown}; use otlp, console or none")
    return names


def tracing_enabled(env: Mapping[str, str] | None = None) -> bool:
    """Whether the ``OTEL_*`` variables ask for traces (see the module docstring)."""
    values = _env(env)
    if values.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        return False
    names = _exporter_names(values)
    if names:
        return any(name != "none" for name in names)
    return bool(values.get("OTEL_EXPORTER_OTLP_ENDPOINT") or values.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def _traces_endpoint(env: Mapping[str, str]) -> str | None:
    """The OTLP/HTTP traces URL the env names (``None``: the exporter's default, localhost:4318)."""
    if env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return f"{base.rstrip('/')}/v1/traces" if base else None


def _exporters_from_env(env: Mapping[str, str]) -> list[SpanExporter]:
    names = _exporter_names(env) or ["otlp"]
    exporters: list[SpanExporter] = []
    if "otlp" in names:
        protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", env.get("OTEL_EXPORTER_OTLP_PROTOCOL", ""))
        if protocol.strip().lower() not in _HTTP_PROTOCOLS:
            raise TracingConfigError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: only http/protobuf is supported (collector port 4318)"
            )
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporters.append(OTLPSpanExporter(endpoint=_traces_endpoint(env)))
    if "console" in names:
        exporters.append(ConsoleSpanExporter())
    return exporters


def build_tracer_provider(
    service_name: str, *, env: Mapping[str, str] | None = None, exporter: SpanExporter | None = None
) -> TracerProvider:
    """A tracer provider exporting to ``exporter`` (synchronously) or to the exporters the env names (batched).

    It is not installed globally; :func:`configure_tracing` does that.
    """
    values = _env(env)
    attributes: dict[str, Any] = {}
    if not values.get("OTEL_SERVICE_NAME"):
        attributes[SERVICE_NAME] = service_name
    provider = TracerProvider(resource=Resource.create(attributes))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        for each in _exporters_from_env(values):
            provider.add_span_processor(BatchSpanProcessor(each))
    return provider


def configure_tracing(service_name: str, *, env: Mapping[str, str] | None = None) -> TracerProvider | None:
    """Install a global tracer provider if the env asks for traces; ``None`` when tracing is off.

    Call once per process, at startup; call ``shutdown()`` on the result at exit to flush spans.
    """
    if not tracing_enabled(env):
        return None
    provider = build_tracer_provider(service_name, env=env)
    trace.set_tracer_provider(provider)
    return provider


def temporal_interceptors(tracer_provider: TracerProvider | None) -> list[TracingInterceptor]:
    """Temporal client/worker interceptors that trace workflows and activities; empty when tracing is off.

    Pass the list to ``Client.connect(interceptors=...)``: workers built on that client
    inherit it, so one list traces both starting and running workflows.
    """
    if tracer_provider is None:
        return []
    return [TracingInterceptor(tracer_provider.get_tracer("aimpact.temporal"))]


def instrument_fastapi(app: FastAPI, tracer_provider: TracerProvider | None) -> bool:
    """Trace every request of ``app`` except probes and scrapes; ``False`` (and no-op) when tracing is off."""
    if tracer_provider is None:
        return False
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    excluded = ",".join(f"{path}$" for path in UNTRACED_PATHS)
    FastAPIInstrumentor.instrument_app(app, tracer_provider=tracer_provider, excluded_urls=excluded)
    return True
