"""The dashboards' queries against a real scrape: every metric and label they read from the APIs
is exported (the exporters', kube-state-metrics' and the load generator's series are evaluated by
a real Prometheus in tests/e2e/test_dashboards_prometheus.py).

Both APIs run as real server processes (as in their pods) on a real PostgreSQL and Redis, serve
a few requests, and their /metrics text is parsed. Labels Prometheus attaches at scrape time
(`job`, `instance`, and the relabelled `app`, `component`, `pod`, `namespace`) are allowed too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from taskflow_core.metrics import REQUEST_LABELS

from devstack.databases import Postgres
from devstack.servers import LOOPBACK, free_port, stop_process, wait_until
from tests.deploy.dashboard_model import DASHBOARDS, PROMETHEUS_BUILTINS, metric_names
from tests.deploy.deploy_model import DEPLOY, REPO

SERVICES = {"tasks-api": "tasks_api", "stats-api": "stats_api"}
TRAFFIC = {
    "tasks-api": ["/tasks", "/tasks", "/tasks?priority=high", "/tasks/999999999"],
    "stats-api": ["/stats", "/stats"],
}
BUILTIN_LABELS = frozenset({"__name__", "job", "instance", "le", "quantile"})
# Families the API processes export: TaskFlow's own and prometheus-client's process collector.
API_PREFIXES = ("taskflow_", "process_")


def target_labels() -> set[str]:
    """Labels the taskflow-pods scrape job adds to every series (relabel target_label)."""
    config = yaml.safe_load((DEPLOY / "components" / "monitoring" / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "taskflow-pods"]
    return {
        r["target_label"]
        for r in job["relabel_configs"]
        if "target_label" in r and not r["target_label"].startswith("__")
    }


@pytest.fixture(scope="module")
def scrape(
    postgres: Postgres, migrated_template: str, redis_url: str
) -> Iterator[dict[str, set[str]]]:
    """Sample name -> label names, from both APIs' /metrics after real traffic."""
    database_url = postgres.create_database("taskflow_dashboard", template=migrated_template)
    labels: dict[str, set[str]] = {}
    processes = []
    try:
        for service, module in SERVICES.items():
            port = free_port()
            env = {
                **os.environ,
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_url,
                "HOST": LOOPBACK,
                "PORT": str(port),
            }
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", module],
                    env=env,
                    cwd=REPO,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            base = f"http://{LOOPBACK}:{port}"
            wait_until(
                lambda b=base: httpx.get(f"{b}/ready", timeout=2).status_code == 200, 60, service
            )
            with httpx.Client(base_url=base, timeout=10) as client:
                for path in TRAFFIC[service]:
                    client.get(path)
                text = client.get("/metrics").text
            for family in text_string_to_metric_families(text):
                # A family with no sample yet (no error so far) is still declared by its TYPE.
                declared = family.name + ("_total" if family.type == "counter" else "")
                labels.setdefault(declared, set())
                for sample in family.samples:
                    labels.setdefault(sample.name, set()).update(sample.labels)
        yield labels
    finally:
        for process in processes:
            stop_process(process)


def labels_used(expr: str, legend: str) -> set[str]:
    used = set()
    for clause in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        used |= {label.strip() for label in clause.split(",") if label.strip()}
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        used |= set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
    used |= set(re.findall(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", legend))
    return used


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_metrics_and_labels_exist_in_a_real_scrape(
    path: Path, scrape: dict[str, set[str]]
) -> None:
    dashboard = json.loads(path.read_text())
    extra = target_labels() | BUILTIN_LABELS
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr, legend = target["expr"], target.get("legendFormat", "")
            names = {n for n in metric_names(expr) if n.startswith(API_PREFIXES)}
            if not names or names != metric_names(expr) - PROMETHEUS_BUILTINS:
                # Another source's series (or a join with one): its labels are not the APIs'.
                for name in names:
                    assert name in scrape, f"{panel['title']}: {name} is not in a real scrape"
                continue
            available = set(extra)
            for name in names:
                assert name in scrape, f"{panel['title']}: {name} is not in a real scrape"
                # Declared but empty (errors before the first error): the request labels.
                available |= scrape[name] or set(REQUEST_LABELS)
            missing = labels_used(expr, legend) - available
            assert not missing, f"{panel['title']}: labels {sorted(missing)} are not exported"


def test_target_labels_include_what_panels_group_by() -> None:
    assert {"app", "pod"} <= target_labels()
