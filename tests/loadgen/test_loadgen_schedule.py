"""The open model against real loopback HTTP: schedule kept, cap counted, stalls timed from it."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from loadgen.config import Stage, parse_mix
from loadgen.histogram import PERCENTILES
from loadgen.scenario import OPERATIONS, OwnTasks, Scenario
from loadgen.scheduler import OpenModel
from loadgen.stats import EndpointStats, RunStats, StageStats
from loadgen.transport import AiohttpTransport

from tests.loadgen.stub_api import StubApi, free_port, run_loadgen
from tests.support.loopback_http import serve


@pytest.fixture
async def stub() -> AsyncIterator[tuple[StubApi, str]]:
    api = StubApi()
    runner, url = await serve(api.app())
    yield api, url
    await runner.cleanup()


async def _drive(url: str, stages: list[Stage], mix: str, max_inflight: int) -> RunStats:
    stats = RunStats(
        endpoints={name: EndpointStats() for name in OPERATIONS},
        stages=[StageStats(s.rate, s.duration) for s in stages],
    )
    scenario = Scenario(parse_mix(mix), {"tasks": url, "stats": url}, OwnTasks(100), seed=3)
    transport = AiohttpTransport(max_inflight, 5.0)
    model = OpenModel(stages, scenario, transport, stats, max_inflight, lag_bound=0.025)
    try:
        elapsed = await model.run(asyncio.Event())
        await model.drain(5.0)
    finally:
        await transport.close()
    assert elapsed == pytest.approx(sum(s.duration for s in stages), abs=0.5)
    return stats


async def test_every_scheduled_send_leaves_and_is_answered(stub: tuple[StubApi, str]) -> None:
    api, url = stub
    stats = await _drive(
        url, [Stage(100, 1.0), Stage(0, 0.5), Stage(50, 1.0)], "list=1,stats=1", 100
    )
    assert stats.scheduled == 150 == stats.sent == stats.completed
    assert [s.scheduled for s in stats.stages] == [100, 0, 50]
    assert stats.stage_index == 2
    assert stats.dropped == 0
    assert stats.inflight == 0
    assert stats.endpoints["list"].ok + stats.endpoints["stats"].ok == 150
    assert len(api.served) == 150


async def test_a_pause_stage_is_the_current_stage_while_it_lasts(stub: tuple[StubApi, str]) -> None:
    _, url = stub
    stages = [Stage(20, 0.3), Stage(0, 0.8), Stage(20, 0.3)]
    stats = RunStats(
        endpoints={name: EndpointStats() for name in OPERATIONS},
        stages=[StageStats(s.rate, s.duration) for s in stages],
    )
    scenario = Scenario(parse_mix("list=1"), {"tasks": url, "stats": url}, OwnTasks(1), seed=1)
    transport = AiohttpTransport(10, 5.0)
    model = OpenModel(stages, scenario, transport, stats, 10, lag_bound=0.025)
    try:
        run = asyncio.create_task(model.run(asyncio.Event()))
        await asyncio.sleep(0.7)  # inside the pause
        during_pause = stats.stage_index, stats.scheduled
        await run
        await model.drain(5.0)
    finally:
        await transport.close()
    assert during_pause == (1, 6)
    assert stats.stage_index == 2
    assert stats.scheduled == 12


async def test_writes_keep_the_data_set_bounded(stub: tuple[StubApi, str]) -> None:
    api, url = stub
    stats = await _drive(url, [Stage(200, 1.5)], "create=2,complete=1,delete=2", 300)
    assert stats.completed == 300
    assert sum(sum(e.errors.values()) for e in stats.endpoints.values()) == 0
    assert stats.endpoints["complete"].ok > 0
    assert stats.endpoints["delete"].ok > 0
    assert len(api.tasks) <= 100  # OwnTasks(100): never more of ours alive


async def test_in_flight_cap_hits_are_counted_as_dropped() -> None:
    api = StubApi(stall_from=0.0, stall_until=1.5)  # hold everything for 1.5 s
    runner, url = await serve(api.app())
    try:
        stats = await _drive(url, [Stage(100, 1.0)], "list=1", max_inflight=10)
    finally:
        await runner.cleanup()
    assert stats.scheduled == 100
    assert stats.sent == 10
    assert stats.dropped == 90
    assert stats.endpoints["list"].dropped == 90
    assert stats.stages[0].dropped == 90


def _truth_percentiles(latencies: list[float]) -> dict[str, float]:
    """HDR's definition: the smallest value with at least p% of all values at or below it."""
    ordered = sorted(latencies)
    truth = {
        key: ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]
        for key, pct in PERCENTILES.items()
    }
    truth["max"] = ordered[-1]
    return truth


async def test_stalled_responses_count_from_the_schedule(tmp_path: Path) -> None:
    """The server holds every response of a 2 s window: latency is end of window - schedule."""
    rate, duration, stall_from, stall_until = 50, 6.0, 2.0, 4.0
    api = StubApi(stall_from=stall_from, stall_until=stall_until)
    runner, url = await serve(api.app())
    report_path = tmp_path / "report.json"
    try:
        done = await run_loadgen(
            "run",
            f"--tasks-url={url}",
            f"--stats-url={url}",
            f"--stages={rate}:{duration}s",
            "--mix=list=1",
            "--metrics-port=0",
            "--max-inflight=1000",
            f"--report={report_path}",
        )
    finally:
        await runner.cleanup()
    assert done.returncode == 1, done.stderr  # p99 over 300 ms: a breach, as it should be
    report = json.loads(report_path.read_text())
    endpoint = report["endpoints"]["list"]

    # the window opened at the server's first load request, a little after the load's start
    assert api.first_request_unix is not None
    opened = api.first_request_unix - report["load_started_unix"]
    assert 0 <= opened < 0.5
    window = (opened + stall_from, opened + stall_until)
    schedule = [k / rate for k in range(int(rate * duration))]
    truth_s = [window[1] - s if window[0] <= s < window[1] else 0.0 for s in schedule]
    truth = _truth_percentiles([s * 1000 for s in truth_s])
    assert truth["p90"] >= 1300  # the window dominates the tail
    assert truth["p99"] >= 1900
    # never below the truth; above it by at most the generator's own (reported) lag and the
    # time to hand out 100 responses released at once on a busy machine
    slack = 150 + report["schedule"]["lag_ms"]["p99.9"]
    for key, expected in truth.items():
        measured = endpoint["latency_ms"][key]
        assert expected - 20 <= measured <= expected + slack, (key, measured, expected, slack)
    assert endpoint["sent"] == endpoint["ok"] == len(schedule)
    assert report["schedule"]["dropped"] == 0
    assert endpoint["achieved_rate"] == pytest.approx(rate, rel=0.01)
    p99_verdict = next(v for v in report["verdicts"] if v["threshold"] == "p99_ms")
    assert not p99_verdict["passed"]


async def test_metrics_endpoint_serves_live_counters(stub: tuple[StubApi, str]) -> None:
    _, url = stub
    port = free_port()
    run = asyncio.create_task(
        run_loadgen(
            "run",
            f"--tasks-url={url}",
            f"--stats-url={url}",
            "--stages=50:4s",
            f"--metrics-port={port}",
            "--lag-bound-ms=500",
            "--p99-ms=2000",
            "--report=",
            "--mix=list=1",
        )
    )
    text = ""
    async with aiohttp.ClientSession() as session:
        for _ in range(300):  # bounded: up to ~30 s, or until the run ends
            if run.done():
                break
            await asyncio.sleep(0.1)
            try:
                async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                    text = await response.text()
            except aiohttp.ClientError:
                continue
            # Counters appear with the first send, quantiles with the first answer.
            if 'loadgen_latency_seconds{endpoint="list",quantile="99"}' in text:
                break
    done = await run
    assert done.returncode == 0, done.stderr
    assert 'loadgen_requests_total{endpoint="list",outcome="ok"}' in text
    assert "loadgen_scheduled_total" in text
    assert "loadgen_target_rate 50.0" in text
    assert 'loadgen_latency_seconds{endpoint="list",quantile="99"}' in text
