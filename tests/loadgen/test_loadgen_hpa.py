"""HPA timeline: the real Kubernetes client against a loopback API replaying a 2 -> 10 -> 2
watch stream; the report's times and utilisation match the recording, and every call the
client made is a verb the component's Role grants."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import pytest
import yaml

from tests.loadgen.stub_api import StubApi, free_port, run_loadgen
from tests.support.loopback_http import serve
from tests.support.stub_kube import HPA_WATCH_2_10_2, StubKube

REPO = Path(__file__).resolve().parents[2]
COMPONENT = REPO / "deploy" / "components" / "loadgen"
LOAD_SECONDS = 3.0
TOLERANCE = 0.3  # seconds: process scheduling between the stub and the generator


def role_grants() -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs of the Role `loadgen` in the component's YAML."""
    docs = [
        doc
        for path in sorted(COMPONENT.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]
    (role,) = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "loadgen"]
    grants: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                grants.setdefault((group, resource), set()).update(rule["verbs"])
    return grants


# What the client calls (kube.py: list_namespaced_* and their watches); the test below checks it.
CALLED = {
    ("autoscaling", "horizontalpodautoscalers"): {"list", "watch"},
    ("apps", "deployments"): {"list", "watch"},
}


def test_role_grants_exactly_the_verbs_the_client_calls() -> None:
    assert role_grants() == CALLED


async def _scrape_until(url: str, needle: str, run: asyncio.Task[object]) -> str:
    text = ""
    async with aiohttp.ClientSession() as session:
        for _ in range(300):  # bounded: ~30 s or the end of the run
            if run.done():
                break
            await asyncio.sleep(0.1)
            try:
                async with session.get(url) as response:
                    text = await response.text()
            except aiohttp.ClientError:
                continue
            if needle in text:
                break
    return text


def _since(start: float | None) -> float | None:
    """The replay runs on the load's clock: seconds since the first load request."""
    return None if start is None else time.monotonic() - start


async def test_hpa_timeline_from_a_replayed_watch_stream(tmp_path: Path) -> None:
    api = StubApi()
    api_runner, api_url = await serve(api.app())
    kube = StubKube.from_file(HPA_WATCH_2_10_2, position=lambda: _since(api.first_request))
    kube_runner, kube_url = await serve(kube.app())
    metrics_port = free_port()
    report_path = tmp_path / "report.json"
    try:
        run = asyncio.create_task(
            run_loadgen(
                "run",
                f"--tasks-url={api_url}",
                f"--stats-url={api_url}",
                f"--stages=20:{LOAD_SECONDS}s",
                "--mix=list=1,stats=1",
                "--observe-after=2s",
                f"--kube-api={kube_url}",
                "--namespace=taskflow",
                f"--metrics-port={metrics_port}",
                "--lag-bound-ms=500",
                "--p99-ms=2000",
                f"--report={report_path}",
            )
        )
        needle = 'loadgen_hpa_desired_replicas{deployment="tasks-api",hpa="tasks-api"} 10.0'
        metrics = await _scrape_until(f"http://127.0.0.1:{metrics_port}/metrics", needle, run)
        done = await run
    finally:
        await api_runner.cleanup()
        await kube_runner.cleanup()
    assert done.returncode == 0, done.stderr
    assert needle in metrics
    assert "loadgen_hpa_cpu_utilization_percent" in metrics

    hpa = json.loads(report_path.read_text())["hpa"]
    assert hpa["namespace"] == "taskflow"
    assert hpa["load_duration_s"] == pytest.approx(LOAD_SECONDS, abs=0.1)
    assert set(hpa["services"]) == {"tasks-api", "stats-api"}  # only autoscaled Deployments
    tasks, stats = hpa["services"]["tasks-api"], hpa["services"]["stats-api"]
    expected = {
        "tasks-api": (tasks, 0.6, 1.2, 1.6, 4.2 - LOAD_SECONDS, 210, 210),
        "stats-api": (stats, 0.9, 2.1, 2.5, 4.5 - LOAD_SECONDS, 120, 120),
    }
    for name, (got, up, at_max, ready, back, cpu_up, cpu_peak) in expected.items():
        assert (got["min_replicas"], got["max_replicas"]) == (2, 10), name
        assert got["replicas_at_start"] == 2, name
        assert got["peak_replicas"] == 10, name
        assert got["first_scale_up_s"] == pytest.approx(up, abs=TOLERANCE), name
        assert got["max_replicas_reached_s"] == pytest.approx(at_max, abs=TOLERANCE), name
        assert got["max_replicas_ready_s"] == pytest.approx(ready, abs=TOLERANCE), name
        assert got["back_to_min_s"] == pytest.approx(back, abs=TOLERANCE), name
        assert got["cpu_utilization_at_first_scale_up"] == cpu_up, name
        assert got["peak_cpu_utilization"] == cpu_peak, name
        assert [p["desired"] for p in got["series"]][-1] == 2, name

    calls: dict[tuple[str, str], set[str]] = {}
    for call in kube.calls:
        calls.setdefault((call.group, call.resource), set()).add(call.verb)
    # Exactly the Role: every call is granted, and every grant is used.
    assert calls == CALLED == role_grants()
