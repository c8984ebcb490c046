"""Sends that cannot leave on schedule are counted as late and their lag stays in the latency;
while running, a progress line appears every --progress-interval."""

from __future__ import annotations

import asyncio
import re
import time

from loadgen.config import Stage, parse_mix
from loadgen.histogram import summary_ms
from loadgen.scenario import OPERATIONS, OwnTasks, Scenario
from loadgen.scheduler import OpenModel
from loadgen.stats import EndpointStats, RunStats, StageStats
from loadgen.transport import AiohttpTransport

from tests.loadgen.stub_api import StubApi, run_loadgen
from tests.support.loopback_http import serve

RATE, DURATION = 100, 1.5
BLOCK_AT, BLOCK_FOR = 0.5, 0.3  # the generator's own loop is blocked for this long
LAG_BOUND = 0.025


async def test_sends_held_up_by_a_blocked_loop_are_late_and_keep_their_lag() -> None:
    runner, url = await serve(StubApi().app())
    stats = RunStats(
        endpoints={name: EndpointStats() for name in OPERATIONS},
        stages=[StageStats(RATE, DURATION)],
    )
    scenario = Scenario(parse_mix("list=1"), {"tasks": url, "stats": url}, OwnTasks(10), seed=5)
    transport = AiohttpTransport(1000, 5.0)
    model = OpenModel([Stage(RATE, DURATION)], scenario, transport, stats, 1000, LAG_BOUND)

    def block() -> None:
        time.sleep(BLOCK_FOR)  # deliberately stalls the event loop, as a CPU-starved pod would

    try:
        loop = asyncio.get_running_loop()
        loop.call_later(BLOCK_AT, block)
        await model.run(asyncio.Event())
        await model.drain(5.0)
    finally:
        await transport.close()
        await runner.cleanup()

    # Sends due in [BLOCK_AT, BLOCK_AT + BLOCK_FOR - LAG_BOUND) leave more than LAG_BOUND late.
    certain = int((BLOCK_FOR - LAG_BOUND) * RATE) - 2
    assert stats.scheduled == stats.sent == int(RATE * DURATION)
    assert stats.dropped == 0
    assert certain <= stats.late <= stats.sent
    assert stats.stages[0].late == stats.endpoints["list"].late == stats.late
    lag = summary_ms(stats.lag)
    assert lag["max"] is not None
    assert lag["max"] >= BLOCK_FOR * 1000 - 20
    # the first held-up send waited the whole block: its latency counts from its schedule
    latency = summary_ms(stats.endpoints["list"].latency)
    assert latency["max"] is not None
    assert latency["max"] >= BLOCK_FOR * 1000 - 20


async def test_progress_lines_every_interval() -> None:
    runner, url = await serve(StubApi().app())
    try:
        done = await run_loadgen(
            "run",
            f"--tasks-url={url}",
            f"--stats-url={url}",
            "--stages=20:2.2s",
            "--mix=list=1",
            "--metrics-port=0",
            "--progress-interval=0.5s",
            "--p99-ms=5000",
            "--lag-bound-ms=500",
            "--report=",
        )
    finally:
        await runner.cleanup()
    assert done.returncode == 0, done.stderr
    pattern = re.compile(
        r"^\[loadgen\] t=\d+s stage 1/1 target 20/s \| sent (\d+) .* ok \d+ err 0 "
        r"\| late \d+ dropped 0 inflight \d+ \| worst p99 [\d.]+ ms$"
    )
    lines = [m for m in map(pattern.match, done.stderr.splitlines()) if m]
    assert 3 <= len(lines) <= 5, done.stderr  # every 0.5 s over 2.2 s
    sent = [int(m.group(1)) for m in lines]
    assert sent == sorted(sent)
    assert sent[-1] > sent[0]
