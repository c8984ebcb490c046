"""Traces leave a real tasks-api over OTLP/HTTP, named by route template, as service tasks-api;
the sampler follows OTEL_TRACES_SAMPLER, a caller's sampled trace is continued with its database
and Redis spans, and the access log and the latency exemplar name the same trace."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from devstack.servers import LOOPBACK
from tests.support.apiserver import api_server, service_env


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    scope: str


class Collector(ThreadingHTTPServer):
    """A minimal OTLP/HTTP trace receiver on loopback that keeps every export it gets."""

    def __init__(self) -> None:
        super().__init__((LOOPBACK, 0), _Handler)
        self.exports: list[ExportTraceServiceRequest] = []

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.server_address[1]}"

    def spans(self) -> list[tuple[str, str, dict[str, str]]]:
        """(service.name, span name, string attributes) of every span received so far."""
        found = []
        for export in list(self.exports):
            for resource_spans in export.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        attributes = {a.key: a.value.string_value for a in span.attributes}
                        found.append((resource.get("service.name", ""), span.name, attributes))
        return found

    def decoded(self) -> list[Span]:
        found = []
        for export in list(self.exports):
            for resource_spans in export.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        found.append(
                            Span(
                                resource.get("service.name", ""),
                                span.name,
                                span.trace_id.hex(),
                                span.span_id.hex(),
                                span.parent_span_id.hex(),
                                scope_spans.scope.name,
                            )
                        )
        return found


class _Handler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.path == "/v1/traces":
            export = ExportTraceServiceRequest()
            export.ParseFromString(body)
            self.server.exports.append(export)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_spans_are_exported_named_by_route_template(
    database_url: str, collector: Collector
) -> None:
    env = service_env(
        database_url, OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint, OTEL_BSP_SCHEDULE_DELAY="100"
    )
    with api_server("tasks_api", env) as server, httpx.Client(base_url=server.base_url) as client:
        created = client.post("/tasks", json={"title": "traced"}).json()
        client.get(f"/tasks/{created['id']}")
        client.get("/health")
        deadline = time.monotonic() + 15
        wanted = {"POST /tasks", "GET /tasks/{task_id}"}
        while time.monotonic() < deadline:
            if wanted <= {name for _, name, _ in collector.spans()}:
                break
            time.sleep(0.1)
    spans = collector.spans()
    names = {name for _, name, _ in spans}
    assert wanted <= names, names
    assert {service for service, _, _ in spans} == {"tasks-api"}
    routes = {attrs.get("http.route") for _, name, attrs in spans if name == "GET /tasks/{task_id}"}
    assert routes == {"/tasks/{task_id}"}
    assert not any(str(created["id"]) in name for name in names)  # never the raw path
    assert not any("/health" in name for name in names)  # probes are not traced


TRACE_ID = "5bf92f3577b34da6a3ce929d0e0e4737"
PARENT_ID = "10f067aa0ba902b7"


def test_a_sampled_callers_trace_is_exported_with_its_children_logged_and_exemplified(
    database_url: str, redis_url: str, collector: Collector
) -> None:
    env = service_env(
        database_url,
        REDIS_URL=redis_url,
        LOG_LEVEL="INFO",
        LOG_FORMAT="json",
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
        OTEL_BSP_SCHEDULE_DELAY="100",
        # Ratio 0: only traces a caller sampled are recorded (parent-based), as in the loadtest.
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0",
    )
    with api_server("tasks_api", env) as server, httpx.Client(base_url=server.base_url) as client:
        for _ in range(3):  # our own roots: never sampled at ratio 0
            assert client.get("/tasks?priority=low").status_code == 200
        traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01"
        response = client.get("/tasks?priority=low", headers={"traceparent": traceparent})
        assert response.status_code == 200
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(
            s.name == "GET /tasks" for s in collector.decoded()
        ):
            time.sleep(0.1)
        openmetrics = client.get(
            "/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"}
        )
        plain = client.get("/metrics")
        time.sleep(0.6)  # the access log writes its batch within 0.25 s
        log = server.log()
    spans = collector.decoded()
    servers = [s for s in spans if s.name == "GET /tasks"]
    assert [(s.trace_id, s.parent_id) for s in servers] == [(TRACE_ID, PARENT_ID)]
    children = {s.scope for s in spans if s.parent_id == servers[0].span_id}
    assert {"opentelemetry.instrumentation.asyncpg", "opentelemetry.instrumentation.redis"} <= (
        children
    )
    assert {s.trace_id for s in spans} == {TRACE_ID}  # nothing of the unsampled requests

    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("logger") == "taskflow.access"]
    assert len(access) == 4, log
    traced = [line for line in access if line.get("trace_id") == TRACE_ID]
    assert len(traced) == 1
    assert traced[0]["span_id"] == servers[0].span_id
    assert (traced[0]["service"], traced[0]["method"], traced[0]["route"]) == (
        "tasks-api",
        "GET",
        "/tasks",
    )
    assert traced[0]["status"] == 200
    assert traced[0]["duration_ms"] > 0

    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    exemplars = [
        line
        for line in openmetrics.text.splitlines()
        if line.startswith("taskflow_request_duration_seconds_bucket") and " # " in line
    ]
    assert len(exemplars) == 1, exemplars
    assert f'trace_id="{TRACE_ID}"' in exemplars[0]
    assert plain.headers["content-type"].startswith("text/plain")
    assert " # {" not in plain.text  # the text format has no exemplars


def test_without_an_exporter_a_callers_trace_id_is_still_logged(database_url: str) -> None:
    env = service_env(database_url, LOG_LEVEL="INFO", LOG_FORMAT="json")
    with api_server("tasks_api", env) as server, httpx.Client(base_url=server.base_url) as client:
        traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01"
        assert client.get("/tasks", headers={"traceparent": traceparent}).status_code == 200
        assert client.get("/tasks").status_code == 200
        time.sleep(0.6)  # the access log writes its batch within 0.25 s
        log = server.log()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("logger") == "taskflow.access"]
    assert [line.get("trace_id") for line in access] == [TRACE_ID, None], log
    assert not any("span_id" in line for line in access)  # no span was started
