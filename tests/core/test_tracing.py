"""Traces leave a real tasks-api over OTLP/HTTP, named by route template, as service tasks-api."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from devstack.servers import LOOPBACK
from tests.support.apiserver import api_server, service_env


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
