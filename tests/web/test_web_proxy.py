"""The entry point over plain HTTP (curl --path-as-is) in front of `make up`'s real APIs: exact
routes, headers on every answer, nginx's own errors as problem+json, gzip, ETags, trace context,
the JSON access log and the metrics exporter."""

from __future__ import annotations

import gzip
import json
import time

import pytest

from tests.support.make_up import MakeUp
from tests.web.http import Answer, curl

pytestmark = pytest.mark.e2e

CSP_MUST = ("default-src 'none'", "script-src 'self'", "frame-ancestors 'none'")
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def assert_security_headers(answer: Answer, where: str) -> None:
    csp = answer.header("content-security-policy") or ""
    for directive in CSP_MUST:
        assert directive in csp, f"{where}: CSP lacks {directive}"
    # No source but 'self' (and 'none'): no other origin, no inline script.
    sources = {word for part in csp.split(";") for word in part.split()[1:]}
    assert sources <= {"'self'", "'none'"}, f"{where}: {sources}"
    assert answer.header("x-content-type-options") == "nosniff", where
    assert answer.header("referrer-policy") == "no-referrer", where
    assert answer.count("content-security-policy") == 1, where


def assert_problem(answer: Answer, status: int, where: str) -> dict[str, object]:
    assert answer.status == status, where
    assert answer.header("content-type") == "application/problem+json", where
    body: dict[str, object] = json.loads(answer.body)
    assert body["status"] == status, where
    assert all(body.get(key) for key in ("type", "title", "detail")), where
    return body


def test_api_routes_reach_the_apis_with_only_the_prefix_stripped(stack: MakeUp) -> None:
    web, tasks = stack.urls["web"], stack.urls["tasks"]
    page = curl(f"{web}/api/tasks?priority=high&limit=3")
    assert page.status == 200
    direct = curl(f"{tasks}/tasks?priority=high&limit=3")
    assert json.loads(page.body) == json.loads(direct.body)
    task_id = json.loads(page.body)["items"][0]["id"]
    one = curl(f"{web}/api/tasks/{task_id}")
    assert one.status == 200
    assert one.header("etag") == curl(f"{tasks}/tasks/{task_id}").header("etag")
    assert curl(f"{web}/api/stats").body == curl(f"{stack.urls['stats']}/stats").body
    # The API's own errors pass through untouched.
    missing = assert_problem(curl(f"{web}/api/tasks/999999999"), 404, "unknown task")
    assert missing["type"] == "https://taskflow.dev/problems/not-found"


@pytest.mark.parametrize(
    "path",
    [
        "/api/metrics",
        "/api/ready",
        "/api/health",
        "/api/schema/openapi.json",
        "/api/schema",
        "/api/statsX",
        "/api/stats/",
        "/api/scalingX",
        "/api",
        "/api/",
        "/api/tasks/../metrics",
        "/api/tasks/%2e%2e/metrics",
        "/api/tasks/%2E%2E/ready",
        "/api/tasks%2F..%2Fmetrics",
        "/api/tasks/5/../../schema/openapi.json",
        "/api/stats/../metrics",
        "/api/../metrics",
        "/metrics",
        "/ready",
        "/stub_status",
    ],
)
def test_nothing_else_of_the_apis_is_reachable(stack: MakeUp, path: str) -> None:
    answer = curl(stack.urls["web"] + path)
    body = assert_problem(answer, 404, path)
    # nginx's own 404, not the API's: no upstream was asked.
    assert body["detail"] == "No such resource behind this entry point.", path
    assert_security_headers(answer, path)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/index.html",
        "/js/main.js",
        "/app.css",
        "/api/tasks?limit=1",
        "/api/stats",
        "/healthz",
        "/nope",
    ],
)
def test_security_headers_on_every_answer(stack: MakeUp, path: str) -> None:
    assert_security_headers(curl(stack.urls["web"] + path), path)


def test_static_files_have_their_types_and_revalidate_by_etag(stack: MakeUp) -> None:
    web = stack.urls["web"]
    for path, media in [
        ("/", "text/html"),
        ("/js/main.js", "text/javascript"),
        ("/app.css", "text/css"),
        ("/favicon.svg", "image/svg+xml"),
    ]:
        first = curl(web + path)
        assert first.status == 200, path
        assert (first.header("content-type") or "").startswith(media), path
        assert first.header("cache-control") == "no-cache", path
        etag = first.header("etag")
        assert etag, path
        again = curl(web + path, "-H", f"If-None-Match: {etag}")
        assert again.status == 304, path
        assert again.body == b"", path
        assert_security_headers(again, f"{path} 304")


def test_text_is_gzipped(stack: MakeUp) -> None:
    web = stack.urls["web"]
    for path in ("/app.css", "/js/tasks.js", "/api/tasks?limit=20"):
        answer = curl(web + path, "-H", "Accept-Encoding: gzip")
        assert answer.header("content-encoding") == "gzip", path
        assert gzip.decompress(answer.body), path
        assert "Accept-Encoding" in (answer.header("vary") or ""), path


def test_a_body_over_64_kib_is_refused_by_nginx(stack: MakeUp) -> None:
    body = json.dumps({"title": "x" * (70 * 1024)}).encode()
    answer = curl(
        f"{stack.urls['web']}/api/tasks",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        data=body,
    )
    problem = assert_problem(answer, 413, "70 KiB body")
    assert problem["type"] == "https://taskflow.dev/problems/payload-too-large"
    assert_security_headers(answer, "413")
    # Under the limit the body reaches the API (which judges the title itself).
    small = json.dumps({"title": "x" * 300}).encode()
    answer = curl(
        f"{stack.urls['web']}/api/tasks",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        data=small,
    )
    assert answer.status == 400
    assert json.loads(answer.body)["errors"][0]["field"] == "title"


def test_a_created_task_is_located_at_its_public_path(stack: MakeUp) -> None:
    body = json.dumps({"title": "located through web"}).encode()
    answer = curl(
        f"{stack.urls['web']}/api/tasks",
        *("-X", "POST", "-H", "Content-Type: application/json"),
        data=body,
    )
    assert answer.status == 201
    task_id = json.loads(answer.body)["id"]
    assert answer.header("location") == f"/api/tasks/{task_id}"
    assert curl(f"{stack.urls['web']}/api/tasks/{task_id}", "-X", "DELETE").status == 204


def test_healthz_answers_for_the_probes(stack: MakeUp) -> None:
    answer = curl(f"{stack.urls['web']}/healthz")
    assert answer.status == 200
    assert json.loads(answer.body) == {"status": "ok"}


def test_traceparent_reaches_the_api_and_the_access_log_is_json(stack: MakeUp) -> None:
    answer = curl(f"{stack.urls['web']}/api/tasks?limit=2", "-H", f"traceparent: {TRACEPARENT}")
    assert answer.status == 200
    deadline = time.monotonic() + 10
    nginx_line = api_line = None
    while time.monotonic() < deadline and not (nginx_line and api_line):
        for line in stack.output.splitlines():
            # `make up` labels each child's lines: `web       | {...}`.
            label, _, text = line.partition(" | ")
            if not text.startswith("{") or TRACE_ID not in text:
                continue
            record = json.loads(text)
            if label.strip() == "web" and record.get("traceparent") == TRACEPARENT:
                nginx_line = record
            elif label.strip() == "tasks-api" and record.get("trace_id") == TRACE_ID:
                api_line = record  # tasks-api continued the trace nginx passed on
        time.sleep(0.2)
    assert nginx_line is not None, "no JSON access-log line of nginx for the request"
    assert nginx_line["uri"] == "/api/tasks?limit=2"
    assert nginx_line["status"] == 200
    assert nginx_line["upstream"] == f"127.0.0.1:{stack.tasks_port}"
    assert api_line is not None, "tasks-api did not see the traceparent"


def test_the_exporter_reads_stub_status(stack: MakeUp) -> None:
    metrics = curl(f"{stack.urls['web_metrics']}/metrics").body.decode()
    assert "nginx_up 1" in metrics
    accepted = [
        line for line in metrics.splitlines() if line.startswith("nginx_connections_accepted ")
    ]
    assert accepted
    assert float(accepted[0].split()[1]) >= 1
