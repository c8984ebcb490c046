"""The open-model scheduler: sends leave at fixed arrival times whatever the responses do."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Iterator, Sequence

from loadgen.config import Stage
from loadgen.histogram import record_seconds
from loadgen.scenario import Request, Scenario, traceparent
from loadgen.stats import EndpointStats, RunStats, status_kind
from loadgen.transport import Transport, TransportError

# one clock for schedule and measurement: CLOCK_MONOTONIC, fine-grained (uvloop's loop.time() is ms)
clock = time.monotonic
MIN_SLEEP = 0.001  # the loop's timer resolution; sends are at most ~1 ms late, never early
# A create whose connection failed (refused or cut before the answer) is sent again with the
# same Idempotency-Key: at most this often, after these pauses. A timeout is not retried.
RETRY_KINDS = frozenset({"connect", "reset"})
RETRY_PAUSES = (0.05, 0.2, 0.5)


def stage_starts(stages: Sequence[Stage]) -> list[float]:
    """Offset (s) of each stage's start from the start of the load."""
    starts, offset = [], 0.0
    for stage in stages:
        starts.append(offset)
        offset += stage.duration
    return starts


def arrivals(stages: Sequence[Stage]) -> Iterator[tuple[int, float]]:
    """(stage index, offset from load start) of every send, evenly spaced at each stage's rate."""
    for index, (stage, start) in enumerate(zip(stages, stage_starts(stages), strict=True)):
        if stage.rate <= 0:
            continue
        for k in range(math.floor(stage.rate * stage.duration + 1e-9)):
            yield index, start + k / stage.rate


class OpenModel:
    """Drives one run: launches each send at its time, counts sends that could not keep it."""

    def __init__(
        self,
        stages: Sequence[Stage],
        scenario: Scenario,
        transport: Transport,
        stats: RunStats,
        max_inflight: int,
        lag_bound: float,
    ) -> None:
        self.stages = stages
        self.scenario = scenario
        self.transport = transport
        self.stats = stats
        self.max_inflight = max_inflight
        self.lag_bound = lag_bound
        self.tasks: set[asyncio.Task[None]] = set()
        self.started = 0.0

    async def run(self, stop: asyncio.Event) -> float:
        """Run every stage (or until `stop`); return the load phase's length in seconds."""
        self.started = start = clock()
        starts = stage_starts(self.stages)
        for index, offset in arrivals(self.stages):
            if not await self._enter_stage(index, starts, stop):
                return clock() - start
            due = start + offset
            if not await _sleep_until(due, stop):
                return clock() - start
            self._launch(due, index, start + starts[index])
        if await self._enter_stage(len(self.stages) - 1, starts, stop):
            await _sleep_until(start + sum(stage.duration for stage in self.stages), stop)
        return clock() - start

    async def _enter_stage(self, index: int, starts: list[float], stop: asyncio.Event) -> bool:
        """Advance the current stage (progress, /metrics) at its start, pauses included."""
        while self.stats.stage_index < index:
            if not await _sleep_until(self.started + starts[self.stats.stage_index + 1], stop):
                return False
            self.stats.stage_index += 1
        return not stop.is_set()

    async def drain(self, seconds: float) -> None:
        """Wait for in-flight requests; anything still open after `seconds` is cancelled."""
        if self.tasks:
            _, pending = await asyncio.wait(set(self.tasks), timeout=seconds)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)

    def _launch(self, due: float, index: int, stage_start: float) -> None:
        now = clock()
        lag = now - due
        stats, stage = self.stats, self.stats.stages[index]
        stats.scheduled += 1
        stage.scheduled += 1
        name = self.scenario.pick()
        if stats.inflight >= self.max_inflight:  # the cap is the generator's limit: a miss
            stats.endpoints[name].dropped += 1
            stage.dropped += 1
            return
        request = self.scenario.build(name)  # own-task fallbacks may change the operation
        endpoint = stats.endpoints[request.name]
        record_seconds(stats.lag, lag)
        if lag > self.lag_bound:
            endpoint.late += 1
            stage.late += 1
        endpoint.sent += 1
        stage.sent += 1
        stage.last_send = now - stage_start
        stats.inflight += 1
        task = asyncio.get_running_loop().create_task(self._send(due, request))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _send(self, due: float, request: Request) -> None:
        endpoint = self.stats.endpoints[request.name]
        parent = None
        if request.trace_id is not None:
            parent = traceparent(request.trace_id, self.scenario.random.getrandbits(64))
        try:
            status, body = await self._exchange(request, endpoint, parent)
        except TransportError as exc:
            endpoint.record(None, exc.kind)
            if request.trace_id is not None:
                endpoint.record_traced(clock() - due, request.trace_id, exc.kind)
            self.scenario.settle(request, None, b"")
        except asyncio.CancelledError:
            endpoint.record(None, "timeout")
            raise
        except Exception:  # an unexpected client failure must not kill the run: count it
            endpoint.record(None, "other")
            self.scenario.settle(request, None, b"")
        else:
            # latency from the scheduled time, not the actual send: no coordinated omission
            seconds = clock() - due
            endpoint.record(seconds, status_kind(status))
            if request.trace_id is not None:
                endpoint.record_traced(seconds, request.trace_id, str(status))
            self.scenario.settle(request, status, body)
        finally:
            self.stats.inflight -= 1

    async def _exchange(
        self, request: Request, endpoint: EndpointStats, parent: str | None
    ) -> tuple[int, bytes]:
        """One request, resent after a failed connection when that is safe (its key)."""
        headers = request.headers
        if parent is not None:
            headers = {**(headers or {}), "traceparent": parent}
        pauses = iter(RETRY_PAUSES if request.retryable else ())
        while True:
            try:
                return await self.transport.request(
                    request.method, request.url, request.body, headers
                )
            except TransportError as exc:
                pause = next(pauses, None) if exc.kind in RETRY_KINDS else None
                if pause is None:
                    raise
            endpoint.retries += 1
            await asyncio.sleep(pause)


async def _sleep_until(deadline: float, stop: asyncio.Event) -> bool:
    """Sleep to `deadline`, never waking before it; long sleeps end early on `stop`."""
    # Event-loop timers have 1 ms resolution (uvloop may even fire up to 0.5 ms early): sleep
    # again until due, and at least MIN_SLEEP, so a sub-ms remainder never busy-spins a core.
    while (delay := deadline - clock()) > 0:
        if delay > 0.5:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return False
        else:
            await asyncio.sleep(max(delay, MIN_SLEEP))
    return not stop.is_set()
