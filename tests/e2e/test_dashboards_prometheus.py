"""Every dashboard query, evaluated by a real Prometheus that scraped the real local stack.

Debian's Prometheus runs on loopback with the shipped prometheus.yml (alerts.yml beside it) and
its container's flags, only its Kubernetes discovery swapped for file discovery that carries the
rendered loadtest pods' `__meta_kubernetes_*` labels (tests/deploy/prometheus_sd.py), so the
shipped relabelling decides what is scraped and how it is labelled. It scrapes `make up`'s two
APIs and nginx exporter, Debian's postgres_exporter and redis_exporter on `make up`'s PostgreSQL
and Redis, the load generator's /metrics during a short run against the stack, and
kube-state-metrics' series from a text fixture (tests/deploy/prometheus/kube-state-metrics.prom)
on a loopback file server. Then every query of every panel, at a moment while the load ran, must
return data and no error.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiohttp import web

from devstack.servers import LOOPBACK, free_port, stop_process, wait_until
from tests.deploy.dashboard_model import DASHBOARDS, expressions
from tests.deploy.deploy_model import PodTemplate, find, pod_templates, render
from tests.deploy.prometheus_sd import ALERT_RULES, pod_targets, write_config
from tests.support.loopback_http import serving_in_thread
from tests.support.make_up import MakeUp, running_make_up

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
KSM_FIXTURE = REPO / "tests/deploy/prometheus/kube-state-metrics.prom"
# The pods kube-state-metrics' fixture describes; the local processes play them.
POD_NAMES = {
    "tasks-api": "tasks-api-6b7f9c8d5-k2x7p",
    "stats-api": "stats-api-5c8d7f6b9-q4w9z",
    "web": "web-7d4b9c6f8-m3n5r",
    "postgres": "postgres-0",
    "redis": "redis-6f5c4b8d7-t8v2w",
    "loadgen": "loadgen-h7k2s",
    "kube-state-metrics": "kube-state-metrics-84c6d9f7b-x9z4q",
}
# What Grafana substitutes for $__rate_interval at the shipped 15 s scrape interval (4 x 15 s).
RATE_INTERVAL = "1m"
SCRAPES_BEFORE_QUERYING = 2
WAIT_FOR_SCRAPES = 90.0


@dataclass(frozen=True)
class Run:
    prometheus: str  # base URL
    at: float  # evaluation time: while the load generator ran


def _name(template: PodTemplate) -> str:
    return template.labels["app.kubernetes.io/name"]


def _start(command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _banner_url(stack: MakeUp, label: str) -> str:
    match = re.search(rf"^\s+{label}\s+(\S+)", stack.banner, re.MULTILINE)
    assert match, f"{label} is not in make up's banner"
    return match.group(1)


def _postgres_dsn(stack: MakeUp) -> str:
    url = _banner_url(stack, "PostgreSQL")
    password = os.environ.get("POSTGRES_PASSWORD")
    if password:  # the banner never shows it
        url = url.replace("postgres@", f"postgres:{password}@", 1)
    return f"{url}?sslmode=disable"


def _exporter_binary(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name}: Debian's package (make test installs it)"
    return found


def _ksm_app() -> web.Application:
    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(text=KSM_FIXTURE.read_text(), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    return app


def _targets(local: dict[str, dict[int, int]]) -> list[dict[str, Any]]:
    groups = []
    for template in pod_templates(render("loadtest")):
        name = _name(template)
        if name in local:
            groups += pod_targets(template, POD_NAMES[name], local[name])
    return groups


def _shipped_flags(paths: dict[str, str]) -> list[str]:
    """The Prometheus container's flags (retention, feature flags), its paths made local."""
    deployment = find(render("loadtest"), "Deployment", "prometheus")
    assert deployment is not None
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    flags = []
    for arg in container["args"]:
        name = arg.split("=", 1)[0]
        flags.append(f"{name}={paths[name]}" if name in paths else arg)
    return flags


def _query(base: str, expr: str, at: float) -> dict[str, Any]:
    answer = httpx.get(f"{base}/api/v1/query", params={"query": expr, "time": at}, timeout=10)
    body: dict[str, Any] = answer.json()
    return body


def _scraped_enough(base: str, jobs: int) -> bool:
    result = _query(base, "count_over_time(up[2m])", time.time())["data"]["result"]
    return len(result) >= jobs and all(
        float(r["value"][1]) >= SCRAPES_BEFORE_QUERYING for r in result
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("prometheus")
    processes: list[subprocess.Popen[bytes]] = []
    with running_make_up() as stack, serving_in_thread(_ksm_app()) as ksm_url:
        try:
            ports = {"postgres": free_port(), "redis": free_port(), "loadgen": free_port()}
            processes.append(
                _start(
                    [
                        _exporter_binary("prometheus-postgres-exporter"),
                        f"--web.listen-address={LOOPBACK}:{ports['postgres']}",
                    ],
                    {**os.environ, "DATA_SOURCE_NAME": _postgres_dsn(stack)},
                )
            )
            processes.append(
                _start(
                    [
                        _exporter_binary("prometheus-redis-exporter"),
                        f"-web.listen-address={LOOPBACK}:{ports['redis']}",
                        f"-redis.addr={_banner_url(stack, 'Redis')}",
                    ]
                )
            )
            loadgen_env = {k: v for k, v in os.environ.items() if not k.startswith("LOADGEN_")}
            processes.append(
                _start(
                    [
                        sys.executable, "-m", "loadgen", "run", "--profile=smoke",
                        "--stages=20:3m", f"--tasks-url={stack.urls['tasks']}",
                        f"--stats-url={stack.urls['stats']}", "--wait-ready=60s",
                        f"--metrics-port={ports['loadgen']}", "--seed=9",
                        f"--report={tmp / 'report.json'}",
                    ],
                    loadgen_env,
                )
            )  # fmt: skip
            local = {
                "tasks-api": {8000: stack.tasks_port},
                "stats-api": {8000: stack.stats_port},
                "web": {8080: stack.web_port, 9113: stack.web_metrics_port},
                "postgres": {9187: ports["postgres"]},
                "redis": {9121: ports["redis"]},
                "loadgen": {9100: ports["loadgen"]},
                "kube-state-metrics": {8080: int(ksm_url.rpartition(":")[2])},
            }
            port = free_port()
            config = write_config(tmp, _targets(local), f"{LOOPBACK}:{port}")
            paths = {"--config.file": str(config), "--storage.tsdb.path": str(tmp / "data")}
            processes.append(
                _start(
                    [
                        _exporter_binary("prometheus"),
                        *_shipped_flags(paths),
                        f"--web.listen-address={LOOPBACK}:{port}",
                    ]
                )
            )
            base = f"http://{LOOPBACK}:{port}"
            wait_until(
                lambda: httpx.get(f"{base}/-/ready", timeout=2).status_code == 200,
                30,
                "prometheus",
            )
            # The shipped 15 s interval: every target scraped a few times under load.
            wait_until(lambda: _scraped_enough(base, len(local) + 1), WAIT_FOR_SCRAPES, "scrapes")
            yield Run(base, time.time())
        finally:
            for process in reversed(processes):
                stop_process(process, grace=10)


def test_every_target_is_discovered_relabelled_and_up(run: Run) -> None:
    targets = httpx.get(f"{run.prometheus}/api/v1/targets", timeout=10).json()["data"]
    active = targets["activeTargets"]
    down = [(t["scrapeUrl"], t["lastError"]) for t in active if t["health"] != "up"]
    assert not down
    pods = {
        t["labels"]["app"]: t["labels"]["pod"]
        for t in active
        if t["labels"]["job"] == "taskflow-pods"
    }
    assert pods == {k: v for k, v in POD_NAMES.items() if k != "kube-state-metrics"}
    ksm = [t for t in active if t["labels"]["job"] == "kube-state-metrics"]
    assert len(ksm) == 1, "only kube-state-metrics' metrics port, once"
    assert all(t["labels"]["namespace"] == "taskflow" for t in active if "namespace" in t["labels"])


def test_the_fixture_describes_the_scraped_pods() -> None:
    described = set(re.findall(r'pod="([^"]+)"', KSM_FIXTURE.read_text()))
    assert described == {POD_NAMES["tasks-api"], POD_NAMES["stats-api"]}


def test_every_rule_loads_and_evaluates_without_error(run: Run) -> None:
    groups = httpx.get(f"{run.prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    loaded = {r["name"]: r for g in groups for r in g["rules"]}
    shipped = yaml.safe_load(ALERT_RULES.read_text())["groups"]
    assert set(loaded) == {r["alert"] for g in shipped for r in g["rules"]}
    for name, rule in loaded.items():
        assert rule["health"] == "ok", (name, rule.get("lastError"))


def _problem(run: Run, expr: str) -> str | None:
    answer = _query(run.prometheus, expr.replace("$__rate_interval", RATE_INTERVAL), run.at)
    if answer["status"] != "success":
        return f"{answer.get('errorType')}: {answer.get('error')}"
    if not answer["data"]["result"]:
        return "no data"
    return None


def readme_queries() -> list[str]:
    """The PromQL blocks of README.md's "Reading the load test"."""
    text = (REPO / "README.md").read_text()
    section = text.split("### Reading the load test", 1)[1].split("\n## ", 1)[0]
    return [" ".join(q.split()) for q in re.findall(r"```promql\n(.*?)```", section, re.DOTALL)]


def test_the_readme_queries_evaluate_without_error(run: Run) -> None:
    queries = readme_queries()
    assert len(queries) >= 5
    for expr in queries:
        answer = _query(run.prometheus, expr, run.at)
        assert answer["status"] == "success", (expr, answer.get("error"))


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_panel_query_returns_data(run: Run, path: Path) -> None:
    dashboard = json.loads(path.read_text())
    problems = [
        f"{title}: {problem}\n    {expr}"
        for title, expr in expressions(dashboard)
        if (problem := _problem(run, expr)) is not None
    ]
    assert not problems, f"{len(problems)} queries of {path.name}:\n" + "\n".join(problems)
