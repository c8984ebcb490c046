"""The loadtest Job's default ramp against the rendered HPAs and the measured CPU per request
(bench/reference.json, written by `make bench-record`): both HPAs can reach maxReplicas within
the peak stage, the generator watches long enough to see them back at minReplicas, and the Job's
deadline leaves room for all of it (README arithmetic)."""

from __future__ import annotations

import json
import math

import pytest
from loadgen.cli import RUN_OPTIONS, build_parser, resolve, run_config
from loadgen.config import RunConfig
from loadgen.scenario import OPERATIONS

from tests.deploy.deploy_model import (
    REPO,
    Obj,
    cpu_millis,
    find,
    of_kind,
    overlay_missing_reason,
    render,
)

# What must hold on top of the bare arithmetic: the README claims a 1.5x margin; measurements
# move 15-30 % between runs, so at least 1.25x must remain at the cheapest measured cost.
MIN_MARGIN = 1.25
# Before the HPA acts on load: metrics-server's window plus the HPA's sync period, generously.
METRICS_LAG_S = 60
SERVICE_OF = {"tasks": "tasks-api", "stats": "stats-api"}


def loadtest() -> tuple[Obj, ...]:
    reason = overlay_missing_reason("loadtest")
    if reason is not None:
        pytest.skip(reason)
    return render("loadtest")


def job_config(docs: tuple[Obj, ...]) -> RunConfig:
    data = find(docs, "ConfigMap", "loadgen")
    assert data is not None
    return run_config(resolve(build_parser().parse_args(["run"]), RUN_OPTIONS, data["data"]))


# The cached reads of both APIs in the reference run, at the demo data's 1,000 tasks.
CACHED_CASES = {"page-hit", "stats-hit"}
DEMO_ROWS = 1_000


def measured_cached_ms() -> list[float]:
    """CPU ms per cached request of both APIs in the tracked reference figures."""
    reference = json.loads((REPO / "bench" / "reference.json").read_text())
    rows = [
        float(r["cpu_ms"])
        for r in reference["results"]
        if r["key"] in CACHED_CASES and r["rows"] == DEMO_ROWS
    ]
    assert len(rows) == len(CACHED_CASES), "bench/reference.json lost a cached case"
    return rows


def share_per_service(cfg: RunConfig) -> dict[str, float]:
    total = sum(cfg.mix.values())
    shares: dict[str, float] = {}
    for name, weight in cfg.mix.items():
        service = SERVICE_OF[OPERATIONS[name].service]
        shares[service] = shares.get(service, 0.0) + weight / total
    return shares


def scale_up_steps(behavior: Obj, start: int, end: int) -> int:
    """15 s periods the HPA needs from `start` to `end` replicas (selectPolicy Max)."""
    steps, replicas = 0, start
    while replicas < end:
        proposals = [
            replicas * (1 + p["value"] / 100) if p["type"] == "Percent" else replicas + p["value"]
            for p in behavior["policies"]
        ]
        replicas = min(end, math.ceil(max(proposals)))
        steps += 1
    return steps


def scale_down_seconds(behavior: Obj, start: int, end: int) -> int:
    seconds: int = behavior["stabilizationWindowSeconds"]
    replicas = start
    (policy,) = behavior["policies"]
    assert policy["type"] == "Percent"
    while replicas > end:
        replicas = max(end, math.ceil(replicas * (1 - policy["value"] / 100)))
        seconds += policy["periodSeconds"]
    return seconds


def test_peak_stage_drives_both_hpas_to_max_replicas() -> None:
    docs = loadtest()
    cfg = job_config(docs)
    peak = max(cfg.stages, key=lambda s: s.rate)
    shares = share_per_service(cfg)
    cheapest_ms = min(measured_cached_ms())
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        deployment = find(docs, "Deployment", hpa["spec"]["scaleTargetRef"]["name"])
        assert deployment is not None
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        request_m = cpu_millis(container["resources"]["requests"]["cpu"])
        (metric,) = hpa["spec"]["metrics"]
        target = metric["resource"]["target"]["averageUtilization"] / 100
        # Requests per second that keep maxReplicas pods at the HPA's CPU target.
        needed = hpa["spec"]["maxReplicas"] * request_m * target / cheapest_ms
        offered = peak.rate * shares[hpa["spec"]["scaleTargetRef"]["name"]]
        assert offered >= MIN_MARGIN * needed, (
            f"{hpa['metadata']['name']}: the peak stage offers {offered:.0f} req/s, "
            f"maxReplicas needs {needed:.0f} x {MIN_MARGIN}"
        )
        up = hpa["spec"]["behavior"]["scaleUp"]
        steps = scale_up_steps(up, hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"])
        assert METRICS_LAG_S + steps * 15 < peak.duration, "the peak ends before max replicas"


def test_generator_watches_until_both_hpas_are_back_at_min() -> None:
    docs = loadtest()
    cfg = job_config(docs)
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        down = hpa["spec"]["behavior"]["scaleDown"]
        needed = scale_down_seconds(down, hpa["spec"]["maxReplicas"], hpa["spec"]["minReplicas"])
        assert cfg.observe_after >= needed + 30, (
            f"LOADGEN_OBSERVE_AFTER {cfg.observe_after:.0f}s < scale-down {needed}s + 30s lag"
        )


def test_job_deadline_covers_wait_load_and_watch() -> None:
    docs = loadtest()
    cfg = job_config(docs)
    job = find(docs, "Job", "loadgen")
    assert job is not None
    load = sum(stage.duration for stage in cfg.stages)
    # wait for the APIs, the load, the scale-down watch, and a minute for cleanup and the report
    assert job["spec"]["activeDeadlineSeconds"] >= cfg.wait_ready + load + cfg.observe_after + 60
    assert job["spec"]["backoffLimit"] == 0  # a breached threshold must not rerun the test
    assert job["spec"]["ttlSecondsAfterFinished"] >= 600  # time to collect the pods' reports


def test_hpa_arithmetic_helpers() -> None:
    up = {"policies": [{"type": "Percent", "value": 100}, {"type": "Pods", "value": 4}]}
    assert scale_up_steps(up, 2, 10) == 2  # 2 -> 6 -> 10
    down = {
        "stabilizationWindowSeconds": 60,
        "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
    }
    assert scale_down_seconds(down, 10, 2) == 240  # 10 -> 5 -> 3 -> 2
