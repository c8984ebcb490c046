"""/metrics of a real server: counts and latency by route template, every exported family."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families
from taskflow_core.metrics import EXPORTED_METRICS

from tests.support.apiserver import api_server, service_env


def test_metrics_are_labelled_by_route_template(database_url: str, redis_url: str) -> None:
    env = service_env(database_url, REDIS_URL=redis_url)
    with api_server("tasks_api", env) as server, httpx.Client(base_url=server.base_url) as client:
        created = client.post("/tasks", json={"title": "measured"}).json()
        for _ in range(3):
            assert client.get(f"/tasks/{created['id']}").status_code == 200
        assert client.get("/tasks/987654").status_code == 404
        assert client.get("/tasks").status_code == 200
        for n in range(3):  # unrouted paths must not each become a label (unbounded cardinality)
            assert client.get(f"/no-such-route-{n}").status_code == 404
        client.get("/health")
        client.get("/ready")
        scrape = client.get("/metrics")
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(scrape.text)}
    samples = [
        sample
        for family in families.values()
        for sample in family.samples
        if sample.name.startswith("taskflow_request")
    ]
    paths = {sample.labels.get("path") for sample in samples}
    assert "/tasks/{task_id}" in paths
    assert "/tasks" in paths
    assert not any(path and path.startswith("/tasks/") and "{" not in path for path in paths)
    assert not paths & {"/health", "/ready", "/metrics"}  # probes and scrapes are not measured
    assert not any(path and path.startswith("/no-such-route") for path in paths)

    def value(name: str, **labels: str) -> float:
        return sum(
            sample.value
            for sample in samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    item = {"app_name": "tasks-api", "method": "GET", "path": "/tasks/{task_id}"}
    assert value("taskflow_requests_total", **item, status_code="200") == 3
    assert value("taskflow_requests_total", **item, status_code="404") == 1
    assert value("taskflow_request_duration_seconds_count", **item, status_code="200") == 3
    assert any(s.name == "taskflow_request_duration_seconds_bucket" for s in samples)


def test_every_exported_family_appears_in_a_scrape(database_url: str, redis_url: str) -> None:
    with api_server("tasks_api", service_env(database_url, REDIS_URL=redis_url)) as server:
        httpx.get(server.base_url + "/tasks", timeout=10)
        scrape = httpx.get(server.base_url + "/metrics", timeout=10).text
    declared = set()
    for line in scrape.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            declared.add(name + "_total" if kind == "counter" else name)
            declared.add(name)
    missing = [name for name in EXPORTED_METRICS if name not in declared]
    assert not missing, f"families missing from /metrics: {missing}"
