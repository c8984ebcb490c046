"""Dashboards name only metrics the services export; Prometheus discovers only its namespace."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from taskflow_core.metrics import EXPORTED_METRICS

from tests.deploy.dashboard_model import (
    DASHBOARDS,
    MONITORING,
    expressions,
    known_sample_names,
    metric_names,
)
from tests.deploy.deploy_model import find, name_of, render


def dashboard(uid: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        d for p in DASHBOARDS if (d := json.loads(p.read_text()))["uid"] == uid
    ]
    (board,) = found
    return board


def all_names(board: dict[str, Any]) -> set[str]:
    return {name for _title, expr in expressions(board) for name in metric_names(expr)}


def test_the_two_dashboards_the_issue_names() -> None:
    titles = {json.loads(p.read_text())["title"] for p in DASHBOARDS}
    assert titles == {"TaskFlow overview", "Load test"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_queries_name_only_exported_metrics(path: Path) -> None:
    board = json.loads(path.read_text())
    for title, expr in expressions(board):
        names = metric_names(expr)
        assert names, f"{title}: no metric in {expr}"
        unknown = sorted(n for n in names if not known_sample_names(n))
        assert not unknown, f"{title}: {unknown} are not exported"


def test_the_overview_covers_what_the_services_measure() -> None:
    seen = all_names(dashboard("taskflow-overview"))
    for family in EXPORTED_METRICS:
        base = family.removesuffix("_total")
        assert any(name.startswith(base) for name in seen), f"no panel shows {family}"
    # Per pod against its request; replicas; PostgreSQL; Redis; web; alerts.
    assert {
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "kube_pod_container_resource_requests",
        "kube_pod_container_resource_limits",
        "kube_horizontalpodautoscaler_status_current_replicas",
        "kube_horizontalpodautoscaler_status_desired_replicas",
        "kube_horizontalpodautoscaler_spec_max_replicas",
        "pg_stat_activity_count",
        "pg_settings_max_connections",
        "redis_memory_used_bytes",
        "redis_memory_max_bytes",
        "redis_evicted_keys_total",
        "nginx_http_requests_total",
        "ALERTS",
    } <= seen


def test_the_overview_shows_p50_p95_p99() -> None:
    exprs = [expr for _title, expr in expressions(dashboard("taskflow-overview"))]
    for quantile in ("0.5", "0.95", "0.99"):
        assert any(f"histogram_quantile({quantile}," in e for e in exprs), quantile


def test_the_load_test_dashboard_puts_load_and_replicas_on_one_axis() -> None:
    board = dashboard("taskflow-loadtest")
    seen = all_names(board)
    assert {
        "loadgen_target_rate",
        "loadgen_scheduled_total",
        "loadgen_requests_total",
        "loadgen_latency_seconds",
        "kube_horizontalpodautoscaler_status_current_replicas",
        "process_cpu_seconds_total",
    } <= seen
    # One dashboard, one time range: Grafana draws every panel on the same axis.
    assert "timeFrom" not in json.dumps(board)
    assert "timeShift" not in json.dumps(board)


def test_grafana_reads_traces_from_the_tracing_backend() -> None:
    sources = yaml.safe_load((MONITORING / "grafana-datasources.yaml").read_text())
    (jaeger,) = [s for s in sources["datasources"] if s["type"] == "jaeger"]
    docs = render("dev")
    service = find(docs, "Service", "jaeger")
    assert service is not None
    assert jaeger["url"] == "http://jaeger:16686"
    assert 16686 in {p["port"] for p in service["spec"]["ports"]}


def api_env(overlay: str) -> dict[str, dict[str, str]]:
    envs = {}
    for doc in render(overlay):
        if doc["kind"] == "Deployment" and name_of(doc) in {"tasks-api", "stats-api"}:
            (container,) = doc["spec"]["template"]["spec"]["containers"]
            envs[name_of(doc)] = {e["name"]: e.get("value", "") for e in container.get("env", [])}
    return envs


def test_apis_export_spans_to_jaeger_in_dev_and_loadtest_and_never_in_prod() -> None:
    for overlay in ("dev", "loadtest"):
        jaeger = find(render(overlay), "Service", "jaeger")
        assert jaeger is not None
        assert 4318 in {p["port"] for p in jaeger["spec"]["ports"]}
        for env in api_env(overlay).values():
            assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
            assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    for env in api_env("prod").values():
        assert not any(name.startswith("OTEL_EXPORTER_") for name in env)
    for env in api_env("loadtest").values():
        assert env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
        assert env["OTEL_TRACES_SAMPLER_ARG"] == "0.05"


def test_jaeger_keeps_a_bounded_number_of_traces_in_memory() -> None:
    deployment = find(render("dev"), "Deployment", "jaeger")
    assert deployment is not None
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["SPAN_STORAGE_TYPE"] == "memory"
    assert any(re.fullmatch(r"--memory\.max-traces=\d+", a) for a in container["args"])
    assert container["resources"]["limits"]["memory"]


def test_kube_state_metrics_is_namespaced_and_scraped() -> None:
    docs = render("loadtest")
    assert not [d for d in docs if d["kind"] in {"ClusterRole", "ClusterRoleBinding"}]
    deployment = find(docs, "Deployment", "kube-state-metrics")
    assert deployment is not None
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "--namespaces=$(POD_NAMESPACE)" in container["args"]
    assert "--resources=horizontalpodautoscalers,deployments,pods" in container["args"]
    role = find(docs, "Role", "kube-state-metrics")
    assert role is not None
    granted = {
        (g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
    }
    assert granted == {
        ("", "pods"),
        ("apps", "deployments"),
        ("autoscaling", "horizontalpodautoscalers"),
    }
    assert all(set(rule["verbs"]) == {"list", "watch"} for rule in role["rules"])
    (job,) = [
        j for j in prometheus_config()["scrape_configs"] if j["job_name"] == "kube-state-metrics"
    ]
    assert job["honor_labels"] is True
    ports = {p["name"] for p in container["ports"]}
    keep = [
        r
        for r in job["relabel_configs"]
        if r["source_labels"] == ["__meta_kubernetes_pod_container_port_name"]
    ]
    assert [r["regex"] for r in keep] == ["metrics"]
    assert "metrics" in ports


def debian_version(package: str) -> str:
    """The upstream version of an installed Debian package (make test installs the exporters)."""
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", package],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, f"{package} is not installed: {done.stderr}"
    return done.stdout.split(":")[-1].split("-")[0].split("+")[0]


@pytest.mark.parametrize("overlay", ["dev", "loadtest"])
def test_exporters_run_beside_postgres_and_redis_and_are_scraped(overlay: str) -> None:
    docs = render(overlay)
    # Each image at the version of the Debian exporter the tests run (same metric names).
    for kind, name, package, port in (
        ("StatefulSet", "postgres", "prometheus-postgres-exporter", 9187),
        ("Deployment", "redis", "prometheus-redis-exporter", 9121),
    ):
        workload = find(docs, kind, name)
        assert workload is not None
        template = workload["spec"]["template"]
        (exporter,) = [c for c in template["spec"]["containers"] if c["name"] == "exporter"]
        assert exporter["image"].endswith(f":v{debian_version(package)}"), exporter["image"]
        assert {p["name"]: p["containerPort"] for p in exporter["ports"]} == {"metrics": port}
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(port)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_uses_the_provisioned_datasource(path: Path) -> None:
    datasources = yaml.safe_load((MONITORING / "grafana-datasources.yaml").read_text())
    uids = {d["uid"] for d in datasources["datasources"]}
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] in uids, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in uids, panel["title"]


def test_metric_name_extraction() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, app_name) "
        '(rate(taskflow_request_duration_seconds_bucket{path="/tasks"}[$__rate_interval])))'
        " / on(app_name) group_left max(up offset 5m)"
    )
    assert metric_names(expr) == {"taskflow_request_duration_seconds_bucket", "up"}
    assert metric_names("sum(rate(made_up_total[5m]))") == {"made_up_total"}


def test_rendered_dashboard_is_the_file() -> None:
    docs = render("dev")
    configmaps = [
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("grafana-dashboards-")
    ]
    contents = {k: json.loads(v) for c in configmaps for k, v in (c.get("data") or {}).items()}
    for path in DASHBOARDS:
        assert contents[path.name] == json.loads(path.read_text())


def prometheus_config() -> dict[str, Any]:
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    assert isinstance(config, dict)
    return config


def test_prometheus_discovers_pods_in_its_own_namespace_only() -> None:
    jobs = [j for j in prometheus_config()["scrape_configs"] if "kubernetes_sd_configs" in j]
    assert jobs
    for job in jobs:
        for sd in job["kubernetes_sd_configs"]:
            assert sd["role"] == "pod"
            assert sd["namespaces"] == {"own_namespace": True}


def test_prometheus_keeps_annotated_taskflow_pods() -> None:
    (job,) = [j for j in prometheus_config()["scrape_configs"] if j["job_name"] == "taskflow-pods"]
    keeps = {
        tuple(r["source_labels"]): r["regex"]
        for r in job["relabel_configs"]
        if r.get("action") == "keep"
    }
    assert keeps[("__meta_kubernetes_pod_annotation_prometheus_io_scrape",)] == "true"
    assert keeps[("__meta_kubernetes_pod_label_app_kubernetes_io_part_of",)] == "taskflow"
    # The address rewrite takes the annotated port.
    rewrite = next(r for r in job["relabel_configs"] if r.get("target_label") == "__address__")
    pattern = re.compile(rewrite["regex"])
    match = pattern.fullmatch("10.1.2.3:8000;9100")
    assert match is not None
    assert match.expand(rewrite["replacement"].replace("$", "\\")) == "10.1.2.3:9100"


def test_prometheus_runs_on_its_service_account_with_a_volume() -> None:
    docs = render("dev")
    deployment = find(docs, "Deployment", "prometheus")
    assert deployment is not None
    spec = deployment["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "prometheus"
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in spec["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert claims
    assert all(find(docs, "PersistentVolumeClaim", c) is not None for c in claims)
