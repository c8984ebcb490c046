"""Dashboards name only metrics the services export; Prometheus discovers only its namespace."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from taskflow_core.metrics import EXPORTED_METRICS

from tests.deploy.dashboard_model import (
    DASHBOARDS,
    MONITORING,
    PROMETHEUS_BUILTINS,
    exported_sample_names,
    expressions,
    metric_names,
)
from tests.deploy.deploy_model import find, render


def test_there_is_a_dashboard() -> None:
    assert DASHBOARDS


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_queries_name_only_exported_metrics(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    allowed = exported_sample_names() | PROMETHEUS_BUILTINS
    seen = set()
    for title, expr in expressions(dashboard):
        names = metric_names(expr)
        assert names, f"{title}: no metric in {expr}"
        assert names <= allowed, f"{title}: {sorted(names - allowed)} are not exported"
        seen |= names
    # The dashboard covers what the services measure.
    for family in EXPORTED_METRICS:
        base = family.removesuffix("_total")
        assert any(name.startswith(base) for name in seen), f"no panel shows {family}"


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
