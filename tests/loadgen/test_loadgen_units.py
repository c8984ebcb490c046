"""Units of the generator: schedule, configuration parsing, histograms, thresholds, merge, mix."""

from __future__ import annotations

import json
import random

import pytest
from loadgen.config import (
    ConfigError,
    Limit,
    Stage,
    Thresholds,
    parse_duration,
    parse_limit,
    parse_mix,
    parse_stages,
)
from loadgen.histogram import HIGHEST_US, decode, encode, new_histogram, record_seconds, summary_ms
from loadgen.merge import merge_reports
from loadgen.report import finalize, raw_report, render_table
from loadgen.scenario import OPERATIONS, OwnTasks, Request, Scenario
from loadgen.scheduler import arrivals, stage_starts
from loadgen.stats import EndpointStats, RunStats, StageStats, status_kind
from loadgen.thresholds import evaluate
from loadgen.timeline import Timeline

LENIENT = Thresholds(Limit(1000.0), Limit(0.5), 0.5)


# --- schedule -------------------------------------------------------------------------------


def test_arrivals_are_evenly_spaced_at_each_stage_rate() -> None:
    stages = [Stage(10, 1), Stage(0, 2), Stage(4, 0.5)]
    times = list(arrivals(stages))
    assert [t for i, t in times if i == 0] == pytest.approx([k / 10 for k in range(10)])
    assert [i for i, _ in times].count(1) == 0  # a zero-rate stage is a pause
    assert [t for i, t in times if i == 2] == pytest.approx([3.0, 3.25])
    assert stage_starts(stages) == [0.0, 1.0, 3.0]


def test_arrivals_count_is_rate_times_duration_even_for_fractional_rates() -> None:
    assert len(list(arrivals([Stage(33.3, 3)]))) == 99
    assert len(list(arrivals([Stage(0.5, 10)]))) == 5
    assert len(list(arrivals([Stage(200, 0.1)]))) == 20


# --- configuration --------------------------------------------------------------------------


def test_durations_and_stages_parse() -> None:
    assert parse_duration("90") == 90
    assert parse_duration("250ms") == pytest.approx(0.25)
    assert parse_duration("1.5m") == 90
    assert parse_duration("2h") == 7200
    assert parse_stages("50:1m, 100:30s,0:10") == (Stage(50, 60), Stage(100, 30), Stage(0, 10))


@pytest.mark.parametrize(
    "text", ["", "fast", "10", "10:", "-1:10s", "10:0s", "10:1x", "nan:10s", "0:10s,0:5s"]
)
def test_bad_stages_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_stages(text)


def test_mix_and_limits_parse_with_per_endpoint_overrides() -> None:
    mix = parse_mix("list=3,create=1")
    assert mix["list"] == 3
    assert mix["create"] == 1
    assert mix["stats"] == 0
    limit = parse_limit("300,stats=200", "--p99-ms")
    assert limit.for_endpoint("stats") == 200
    assert limit.for_endpoint("list") == 300
    for bad in ("list=x", "bogus=1", "list=-1", "list=0"):
        with pytest.raises(ConfigError):
            parse_mix(bad)
    for bad in ("stats=200", "x", "300,bogus=1", "-5"):
        with pytest.raises(ConfigError):
            parse_limit(bad, "--p99-ms")


# --- histograms -----------------------------------------------------------------------------


def test_histogram_summary_encode_decode_round_trip() -> None:
    histogram = new_histogram()
    for ms in range(1, 1001):
        record_seconds(histogram, ms / 1000)
    summary = summary_ms(histogram)
    assert summary["p50"] == pytest.approx(500, rel=1e-3)
    assert summary["p99"] == pytest.approx(990, rel=1e-3)
    assert summary["p99.9"] == pytest.approx(999, rel=1e-3)
    assert summary["max"] == pytest.approx(1000, rel=1e-3)
    again = decode(encode(histogram))
    assert again.get_total_count() == 1000
    assert summary_ms(again) == summary


def test_histogram_clamps_out_of_range_and_empty_has_no_percentiles() -> None:
    histogram = new_histogram()
    record_seconds(histogram, -0.001)  # clock jitter
    record_seconds(histogram, 10 * 3600)  # slower than the range
    assert histogram.get_total_count() == 2
    assert histogram.get_max_value() >= HIGHEST_US * 0.999
    assert set(summary_ms(new_histogram()).values()) == {None}


# --- thresholds -----------------------------------------------------------------------------


def _endpoint(p99: float | None, error_rate: float, sent: int = 10) -> dict[str, object]:
    return {"sent": sent, "latency_ms": {"p99": p99}, "error_rate": error_rate}


def test_thresholds_judge_p99_and_error_rate_per_endpoint_and_misses() -> None:
    thresholds = Thresholds(parse_limit("100,stats=50", "p99"), Limit(0.01), 0.001)
    endpoints = {
        "list": _endpoint(99.0, 0.0),
        "stats": _endpoint(60.0, 0.0),  # over its own 50 ms
        "create": _endpoint(10.0, 0.02),  # too many errors
        "delete": _endpoint(None, 0.0, sent=0),  # sent nothing: not judged
    }
    verdicts = {
        (v["threshold"], v["scope"]): v["passed"] for v in evaluate(endpoints, 0.002, thresholds)
    }
    assert verdicts == {
        ("p99_ms", "list"): True,
        ("error_rate", "list"): True,
        ("p99_ms", "stats"): False,
        ("error_rate", "stats"): True,
        ("p99_ms", "create"): True,
        ("error_rate", "create"): False,
        ("miss_rate", "schedule"): False,
    }


def test_status_kinds() -> None:
    assert status_kind(200) is None
    assert status_kind(204) is None
    assert status_kind(304) is None
    assert status_kind(404) == "http_4xx"
    assert status_kind(503) == "http_5xx"


# --- reports and merge ----------------------------------------------------------------------


def _run_stats(latencies_ms: dict[str, list[float]], errors: int = 0) -> RunStats:
    endpoints = {name: EndpointStats() for name in OPERATIONS}
    for name, values in latencies_ms.items():
        endpoint = endpoints[name]
        for value in values:
            endpoint.sent += 1
            endpoint.record(value / 1000, None)
    endpoints["list"].sent += errors
    for _ in range(errors):
        endpoints["list"].record(None, "timeout")
    stats = RunStats(endpoints=endpoints, stages=[StageStats(100, 10)])
    stats.scheduled = stats.stages[0].scheduled = stats.stages[0].sent = stats.sent
    for value in range(stats.sent):
        record_seconds(stats.lag, value / 1e6)
    return stats


def test_merge_is_exact_histogram_addition() -> None:
    rng = random.Random(7)
    a = {"list": [rng.expovariate(1 / 20) for _ in range(5000)], "stats": [5.0] * 100}
    b = {"list": [rng.expovariate(1 / 80) for _ in range(3000)], "create": [40.0] * 50}
    reports = []
    for values, errors in ((a, 3), (b, 0)):
        report = raw_report(_run_stats(values, errors), 10.0)
        report.update(started_at="t0", ended_at="t1", generators=[{"hostname": "x"}], hpa=None)
        reports.append(finalize(report, LENIENT))
    merged = merge_reports(json.loads(json.dumps(reports)))  # through JSON, like files

    truth = new_histogram()
    for value in a["list"] + b["list"]:
        record_seconds(truth, value / 1000)
    assert merged["endpoints"]["list"]["latency_ms"] == summary_ms(truth)
    assert merged["endpoints"]["list"]["sent"] == 8003
    assert merged["endpoints"]["list"]["errors"]["timeout"] == 3
    assert merged["endpoints"]["stats"]["sent"] == 100
    assert merged["endpoints"]["create"]["sent"] == 50
    assert merged["total"]["sent"] == 8153
    assert merged["schedule"]["scheduled"] == 8153
    assert merged["stages"][0]["rate"] == 200
    assert merged["sources"] == 2
    assert decode(merged["schedule"]["lag_histogram"]).get_total_count() == 8153
    assert merged["thresholds"] == LENIENT.to_json()
    assert merged["passed"]


def test_merge_re_evaluates_thresholds() -> None:
    report = raw_report(_run_stats({"list": [10.0, 20.0, 500.0]}), 1.0)
    report.update(started_at="t0", ended_at="t1", generators=[], hpa=None)
    finalize(report, LENIENT)
    strict = Thresholds(Limit(100.0), Limit(0.0), 0.0)
    merged = merge_reports([report, json.loads(json.dumps(report))], strict)
    assert not merged["passed"]
    assert [v["scope"] for v in merged["verdicts"] if not v["passed"]] == ["list"]
    assert "FAIL p99_ms" in render_table(merged)


def test_merge_refuses_reports_of_different_profiles() -> None:
    one = raw_report(_run_stats({"list": [1.0]}), 1.0)
    two = raw_report(_run_stats({"list": [1.0]}), 1.0)
    two["stages"].append(two["stages"][0])
    for report in (one, two):
        report.update(started_at="t0", ended_at="t1", generators=[], hpa=None)
        finalize(report, LENIENT)
    with pytest.raises(ConfigError):
        merge_reports([one, two])


# --- the mix and own tasks ------------------------------------------------------------------


def _scenario(mix: str, limit: int = 3) -> Scenario:
    urls = {"tasks": "http://t", "stats": "http://s"}
    return Scenario(parse_mix(mix), urls, OwnTasks(limit), seed=1)


def test_mix_follows_weights() -> None:
    scenario = _scenario("list=3,stats=1")
    picks = [scenario.pick() for _ in range(4000)]
    assert picks.count("list") / len(picks) == pytest.approx(0.75, abs=0.03)
    request = scenario.build("stats")
    assert (request.method, request.url) == ("GET", "http://s/stats")


def test_writes_touch_only_own_tasks_and_the_pool_stays_bounded() -> None:
    scenario = _scenario("create=1", limit=2)
    first = scenario.build("complete")  # nothing of ours yet: becomes a create
    assert (first.name, first.method, first.url) == ("create", "POST", "http://t/tasks")
    assert json.loads(first.body or b"")["title"].startswith("loadgen")
    scenario.settle(first, 201, b'{"id": 41}')
    scenario.settle(scenario.build("create"), 201, b'{"id": 42}')
    full = scenario.build("create")  # at the limit: deletes instead
    assert (full.name, full.method, full.url) == ("delete", "DELETE", "http://t/tasks/41")
    scenario.settle(full, 204, b"")
    complete = scenario.build("complete")
    assert (complete.method, complete.url, complete.body) == (
        "PATCH",
        "http://t/tasks/42",
        b'{"completed": true}',
    )
    scenario.settle(complete, 500, b"")  # failed: still open, tried again later
    assert list(scenario.own.open) == [42]
    again = scenario.build("complete")
    scenario.settle(again, 200, b"{}")
    assert list(scenario.own.done) == [42]
    assert not scenario.own.open
    delete = scenario.build("delete")
    scenario.settle(delete, 404, b"")  # gone already: forgotten
    assert len(scenario.own) == 0


def test_request_is_reported_under_its_final_operation() -> None:
    request = _scenario("delete=1").build("delete")
    assert isinstance(request, Request)
    assert request.name == "create"


# --- HPA timeline analysis ------------------------------------------------------------------


def _hpa(desired: int, cpu: int) -> dict[str, object]:
    return {
        "metadata": {"name": "tasks-api"},
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "tasks-api"},
            "minReplicas": 2,
            "maxReplicas": 10,
        },
        "status": {
            "desiredReplicas": desired,
            "currentReplicas": desired,
            "currentMetrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "current": {"averageUtilization": cpu}},
                }
            ],
        },
    }


def test_timeline_never_scaled_is_back_at_min_at_once() -> None:
    timeline = Timeline()
    timeline.observe_hpa(_hpa(2, 10), at=100.0)
    timeline.observe_deployment({"metadata": {"name": "redis"}, "status": {}}, at=100.0)
    summary = timeline.summary("taskflow", load_start=105.0, load_end=165.0)
    assert set(summary["services"]) == {"tasks-api"}  # redis has no HPA
    service = summary["services"]["tasks-api"]
    assert service["replicas_at_start"] == 2
    assert service["first_scale_up_s"] is None
    assert service["max_replicas_reached_s"] is None
    assert service["back_to_min_s"] == 0.0


def test_timeline_still_scaled_when_watching_ends_has_no_back_to_min() -> None:
    timeline = Timeline()
    timeline.observe_hpa(_hpa(2, 10), at=100.0)
    timeline.observe_hpa(_hpa(2, 10), at=101.0)  # unchanged: no new point
    timeline.observe_hpa(_hpa(6, 180), at=120.0)
    summary = timeline.summary("taskflow", load_start=110.0, load_end=130.0)["services"]
    service = summary["tasks-api"]
    assert service["first_scale_up_s"] == 10.0
    assert service["cpu_utilization_at_first_scale_up"] == 180
    assert service["back_to_min_s"] is None
    assert [p["t"] for p in service["series"]] == [-10.0, 10.0]
