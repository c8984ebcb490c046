"""One `loadgen run`: check targets, watch the cluster, drive the schedule, clean up, report."""

from __future__ import annotations

import asyncio
import contextlib
import platform
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadgen.config import ConfigError, RunConfig
from loadgen.metrics import LoadgenCollector, serve_metrics
from loadgen.report import finalize, raw_report
from loadgen.scenario import OPERATIONS, OwnTasks, Scenario
from loadgen.scheduler import OpenModel, clock
from loadgen.stats import EndpointStats, RunStats, StageStats
from loadgen.transport import Transport, TransportError, make_transport

if TYPE_CHECKING:
    from kubernetes_asyncio.client import Configuration

    from loadgen.kube import ClusterWatch

CLEANUP_SECONDS = 30.0
CLEANUP_CONCURRENCY = 16


async def execute(
    cfg: RunConfig, locate: Callable[[], tuple[Configuration | None, str]]
) -> dict[str, Any]:
    """Run the whole test; ConfigError when a target is unreachable or a port is taken.
    `locate` says where to watch the HPAs (None: nowhere) once the targets have answered."""
    transport = make_transport(cfg.client, cfg.max_inflight, cfg.timeout)
    try:
        await check_targets(transport, cfg)
        kube, namespace = locate()
        stats = RunStats(
            endpoints={name: EndpointStats() for name in OPERATIONS},
            stages=[StageStats(stage.rate, stage.duration) for stage in cfg.stages],
        )
        collector = LoadgenCollector(stats, [stage.rate for stage in cfg.stages])
        async with _metrics(cfg.metrics_port, collector), _cluster(kube, namespace) as watcher:
            collector.timeline = watcher.timeline if watcher else None
            report = await _drive(cfg, transport, stats, watcher)
            if watcher is not None:
                report["hpa"] = watcher.timeline.summary(
                    namespace, report["load_started_unix"], report["load_ended_unix"]
                )
        return finalize(report, cfg.thresholds)
    finally:
        await transport.close()


async def check_targets(transport: Transport, cfg: RunConfig) -> None:
    """Each API the mix uses must answer: /ready 200 within --wait-ready, else any /health reply."""
    for service in sorted(cfg.services_used()):
        base = cfg.base_url(service)
        if cfg.wait_ready > 0:
            await _wait_ready(transport, service, base, cfg.wait_ready)
            continue
        try:
            await transport.request("GET", base + "/health", None)
        except TransportError as exc:
            raise ConfigError(f"{service} API unreachable at {base}: {exc.kind}: {exc}") from None


async def _wait_ready(transport: Transport, service: str, base: str, seconds: float) -> None:
    deadline = clock() + seconds
    last = "no answer"
    while clock() < deadline:
        try:
            status, _ = await transport.request("GET", base + "/ready", None)
        except TransportError as exc:
            last = f"{exc.kind}: {exc}"
        else:
            if status == 200:
                return
            last = f"HTTP {status}"
        await asyncio.sleep(min(1.0, max(0.0, deadline - clock())))
    raise ConfigError(f"{service} API at {base} not ready within {seconds:g}s (last: {last})")


async def _drive(
    cfg: RunConfig, transport: Transport, stats: RunStats, watcher: ClusterWatch | None
) -> dict[str, Any]:
    with _created_log(cfg.created_ids) as log_created:
        own = OwnTasks(cfg.max_own_tasks)
        base_urls = {"tasks": cfg.tasks_url, "stats": cfg.stats_url}
        tag = f"loadgen {socket.gethostname()}"
        scenario = Scenario(cfg.mix, base_urls, own, cfg.seed, tag, log_created, cfg.trace_fraction)
        return await _drive_scenario(cfg, transport, stats, watcher, scenario)


@contextlib.contextmanager
def _created_log(path: str | None) -> Iterator[Callable[[int], None] | None]:
    """--created-ids: each acknowledged id on its own line, flushed at once (a killed run
    still lists every create it saw acknowledged)."""
    if path is None:
        yield None
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a", encoding="utf-8") as log:

        def write(task_id: int) -> None:
            log.write(f"{task_id}\n")
            log.flush()

        yield write


async def _drive_scenario(
    cfg: RunConfig,
    transport: Transport,
    stats: RunStats,
    watcher: ClusterWatch | None,
    scenario: Scenario,
) -> dict[str, Any]:
    model = OpenModel(cfg.stages, scenario, transport, stats, cfg.max_inflight, cfg.lag_bound)
    stop = _stop_on_signals()
    started_at, cpu_before = datetime.now(UTC), time.process_time()
    load_started = time.time()
    progress = asyncio.create_task(_progress(stats, cfg, model))
    try:
        duration = await model.run(stop)
        load_ended, cpu = time.time(), time.process_time() - cpu_before
        await model.drain(cfg.timeout + 1.0)
        if watcher is not None and cfg.observe_after > 0:
            print(
                f"loadgen: load done; watching the HPAs {cfg.observe_after:g}s more",
                file=sys.stderr,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), cfg.observe_after)
    finally:
        progress.cancel()
    if cfg.cleanup:
        await _cleanup(transport, scenario)
    report = raw_report(stats, duration)
    report.update(
        profile=cfg.profile,
        targets={"tasks": cfg.tasks_url, "stats": cfg.stats_url},
        config={
            "mix": dict(cfg.mix),
            "max_inflight": cfg.max_inflight,
            "lag_bound_ms": cfg.lag_bound * 1000,
            "timeout_s": cfg.timeout,
            "client": cfg.client,
            "loop": cfg.loop,
            "seed": cfg.seed,
            "trace_fraction": cfg.trace_fraction,
        },
        sources=1,
        started_at=_iso(started_at),
        ended_at=_iso(datetime.now(UTC)),
        load_started_unix=load_started,
        load_ended_unix=load_ended,
        generators=[_generator(cfg, cpu, duration)],
        hpa=None,
    )
    return report


def _generator(cfg: RunConfig, cpu_seconds: float, duration: float) -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "python": platform.python_version(),
        "client": cfg.client,
        "loop": cfg.loop,
        "cpu_seconds": round(cpu_seconds, 3),
        # share of one core the generator used while the load ran: keep it well below 0.8
        "cpu_utilization": round(cpu_seconds / duration, 3) if duration > 0 else 0.0,
    }


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _stop_on_signals() -> asyncio.Event:
    """SIGTERM (Job deleted) or SIGINT ends the load early; the report is still written."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def _progress(stats: RunStats, cfg: RunConfig, model: OpenModel) -> None:
    """A progress line every --progress-interval seconds on stderr."""
    if cfg.progress_interval <= 0:
        return
    previous = 0
    while True:
        await asyncio.sleep(cfg.progress_interval)
        sent, elapsed = stats.sent, clock() - model.started
        errors = sum(sum(e.errors.values()) for e in stats.endpoints.values())
        p99s = [
            e.latency.get_value_at_percentile(99.0) / 1000.0
            for e in stats.endpoints.values()
            if e.latency.get_total_count()
        ]
        print(
            f"[loadgen] t={elapsed:.0f}s stage {stats.stage_index + 1}/{len(stats.stages)} "
            f"target {stats.stages[stats.stage_index].rate:g}/s | sent {sent} "
            f"({(sent - previous) / cfg.progress_interval:.1f}/s) ok "
            f"{sum(e.ok for e in stats.endpoints.values())} err {errors} | late {stats.late} "
            f"dropped {stats.dropped} inflight {stats.inflight} | "
            f"worst p99 {max(p99s, default=0.0):.1f} ms",
            file=sys.stderr,
            flush=True,
        )
        previous = sent


async def _cleanup(transport: Transport, scenario: Scenario) -> None:
    """Delete the tasks this run created and still holds; not measured, bounded in time."""
    ids = scenario.own.drain()
    if not ids:
        return
    gate = asyncio.Semaphore(CLEANUP_CONCURRENCY)
    base = scenario.base_urls["tasks"]

    async def delete(task_id: int) -> None:
        async with gate:
            with contextlib.suppress(TransportError):
                await transport.request("DELETE", f"{base}/tasks/{task_id}", None)

    jobs = [asyncio.create_task(delete(task_id)) for task_id in ids]
    _, pending = await asyncio.wait(jobs, timeout=CLEANUP_SECONDS)
    for job in pending:
        job.cancel()
    print(f"loadgen: removed {len(ids) - len(pending)} of {len(ids)} own tasks", file=sys.stderr)


@contextlib.asynccontextmanager
async def _metrics(port: int, collector: LoadgenCollector) -> AsyncIterator[None]:
    try:
        server = serve_metrics(port, collector)
    except OSError as exc:
        raise ConfigError(f"--metrics-port {port}: {exc.strerror}") from None
    try:
        yield
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()


@contextlib.asynccontextmanager
async def _cluster(
    kube: Configuration | None, namespace: str
) -> AsyncIterator[ClusterWatch | None]:
    if kube is None:
        yield None
        return
    from loadgen.kube import ClusterWatch  # the Kubernetes client is slow to import: only here

    watcher = ClusterWatch(kube, namespace)
    task = asyncio.create_task(watcher.run())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(watcher.synced.wait(), 10.0)  # baseline before the load starts
    try:
        yield watcher
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
