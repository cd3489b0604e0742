"""OpenTelemetry tracing: off by default, spans from FastAPI and Temporal when on, OTLP export."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from temporalio.worker import Worker

from core.telemetry.tracing import (
    TracingConfigError,
    build_tracer_provider,
    configure_tracing,
    instrument_fastapi,
    temporal_interceptors,
    tracing_enabled,
)
from tests.ops.conftest import OpsStack
from tests.ops.trace_workflow import OpsTraceWorkflow, echo


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        ({}, False),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_tracing_is_off_unless_the_otel_variables_ask_for_it(env: dict[str, str], enabled: bool) -> None:
    assert tracing_enabled(env) is enabled


def test_disabled_tracing_wires_nothing() -> None:
    assert configure_tracing("aimpact-test", env={}) is None
    assert temporal_interceptors(None) == []
    assert instrument_fastapi(FastAPI(), None) is False


def test_unsupported_settings_fail_loudly() -> None:
    with pytest.raises(TracingConfigError, match="zipkin"):
        tracing_enabled({"OTEL_TRACES_EXPORTER": "zipkin"})
    grpc = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    with pytest.raises(TracingConfigError, match="http/protobuf"):
        build_tracer_provider("aimpact-test", env=grpc)


async def test_fastapi_requests_become_spans_except_probes() -> None:
    exporter = InMemorySpanExporter()
    provider = build_tracer_provider("aimpact-api-test", env={}, exporter=exporter)
    app = FastAPI()

    @app.get("/v1/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    assert instrument_fastapi(app, provider) is True
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client:
        assert (await client.get("/v1/things/t1")).status_code == 200
        assert (await client.get("/healthz")).status_code == 200
    spans = exporter.get_finished_spans()
    servers = [s for s in spans if s.kind.name == "SERVER"]
    assert [s.name for s in servers] == ["GET /v1/things/{thing_id}"]
    assert servers[0].resource.attributes["service.name"] == "aimpact-api-test"
    assert servers[0].attributes["http.route"] == "/v1/things/{thing_id}"
    provider.shutdown()


async def test_temporal_interceptors_trace_start_workflow_and_activity(ops_stack: OpsStack) -> None:
    exporter = InMemorySpanExporter()
    provider = build_tracer_provider("aimpact-worker-test", env={}, exporter=exporter)
    interceptors = temporal_interceptors(provider)
    assert len(interceptors) == 1
    client = await Client.connect(ops_stack.stack.temporal_address, interceptors=interceptors)
    queue = f"ops-trace-{uuid.uuid4().hex}"
    async with Worker(client, task_queue=queue, workflows=[OpsTraceWorkflow], activities=[echo]):
        result = await client.execute_workflow(
            OpsTraceWorkflow.run, "hi", id=f"ops-trace-{uuid.uuid4().hex}", task_queue=queue
        )
    assert result == "HI"
    names = {span.name for span in exporter.get_finished_spans()}
    assert {
        "StartWorkflow:OpsTraceWorkflow",
        "RunWorkflow:OpsTraceWorkflow",
        "StartActivity:ops_trace.echo",
        "RunActivity:ops_trace.echo",
    } <= names
    trace_ids = {span.context.trace_id for span in exporter.get_finished_spans()}
    assert len(trace_ids) == 1  # one trace from the client call through the activity
    provider.shutdown()


class _Collector(BaseHTTPRequestHandler):
    """A stand-in OTLP/HTTP collector that keeps what it receives."""

    received: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        return None


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    _Collector.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Collector.received
    server.shutdown()
    server.server_close()


def test_otlp_exporter_posts_spans_to_the_configured_endpoint(
    collector: tuple[str, list[tuple[str, bytes]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, received = collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "aimpact-from-env")
    assert tracing_enabled()
    provider = build_tracer_provider("aimpact-default-name")
    with provider.get_tracer("ops").start_as_current_span("ops.export-check"):
        pass
    assert provider.force_flush(10_000)
    provider.shutdown()
    assert [path for path, _ in received] == ["/v1/traces"]
    request = ExportTraceServiceRequest.FromString(received[0][1])
    resource_spans = request.resource_spans[0]
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}["service.name"]
    assert service == "aimpact-from-env"
    assert [s.name for s in resource_spans.scope_spans[0].spans] == ["ops.export-check"]
