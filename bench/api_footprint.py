"""Memory and CPU footprint of one API process: the figures behind the Kubernetes requests/limits.

Starts a throwaway PostgreSQL (1000 demo tasks) and Redis, then, for each API, one server
process configured as the cluster runs it (deploy/base/config.yaml; stats-api also watching
HPAs and Deployments for /scaling, from a loopback stand-in of the Kubernetes API), driven by a
separate load process so the driver's CPU is never counted. Reads /proc/<pid>/stat and status:

    idle RSS and CPU, CPU per request for /health (the framework's floor, measured in the same
    run) and for the service's routes, peak RSS under load, and RSS after the load stops
    (whether memory falls decides whether the HPA may use a memory metric).

Usage: uv run python bench/api_footprint.py [--load-seconds 12] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devstack.servers import (  # noqa: E402
    LOOPBACK,
    PostgresServer,
    RedisServer,
    free_port,
    stop_process,
    wait_until,
)
from tests.support.loopback_http import serving_in_thread  # noqa: E402
from tests.support.stub_kube import HPA_WATCH_2_10_2, StubKube, write_kubeconfig  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SERVICES = {
    "tasks-api": ("tasks_api", ["/tasks", "/tasks?priority=high", "/tasks?completed=false"]),
    "stats-api": ("stats_api", ["/stats"]),
}
# The memory question: the largest pages at four times the concurrency, then quiet.
BURSTS = {
    "tasks-api": ["/tasks?limit=100", "/tasks?limit=100&sort=priority", "/tasks?limit=100&q=a"],
    "stats-api": ["/stats"],
}


@dataclass(frozen=True)
class Sample:
    cpu_seconds: float
    rss_bytes: int
    peak_rss_bytes: int
    at: float


def sample(pid: int) -> Sample:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    rss = int(status["VmRSS"].split()[0]) * 1024
    hwm = int(status["VmHWM"].split()[0]) * 1024
    return Sample(cpu, rss, hwm, time.monotonic())


def cluster_settings() -> dict[str, str]:
    """The ConfigMap the pods get, so the process runs with the deployed pool and cache."""
    config = yaml.safe_load((REPO / "deploy" / "base" / "config.yaml").read_text())
    return {k: str(v) for k, v in config["data"].items()}


@contextmanager
def api_process(module: str, env: dict[str, str]) -> Iterator[tuple[int, str]]:
    port = free_port()
    full_env = {**os.environ, **env, "HOST": LOOPBACK, "PORT": str(port), "RELOAD": "false"}
    process = subprocess.Popen(
        [sys.executable, "-m", module],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://{LOOPBACK}:{port}"
    try:
        wait_until(lambda: httpx.get(f"{base}/ready", timeout=2).status_code == 200, 60, module)
        yield process.pid, base
    finally:
        stop_process(process)


def drive(
    base: str, paths: list[str], seconds: float, concurrency: int, *, shed_ok: bool = False
) -> int:
    """Run the load driver in its own process; returns the number of successful requests.

    With `shed_ok`, 503s (the pool's fail-fast answer under overload) are expected, not errors.
    """
    result = subprocess.run(
        [sys.executable, __file__, "--drive", base, "--seconds", str(seconds),
         "--concurrency", str(concurrency), *paths],
        capture_output=True, text=True, check=False, timeout=seconds + 60,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"load driver against {base} failed:\n{result.stderr[-3000:]}")
    outcome = json.loads(result.stdout)
    if not outcome["ok"] or (outcome["shed"] and not shed_ok):
        raise RuntimeError(f"{outcome} requests against {base} failed")
    if outcome["errors"]:
        # Figures stay per successful request; what failed is shown, not hidden.
        print(f"note: {base}{paths}: {outcome}", file=sys.stderr)
    return int(outcome["ok"])


async def _drive(base: str, paths: list[str], seconds: float, concurrency: int) -> dict[str, int]:
    counts: dict[str, int] = {"ok": 0, "shed": 0, "errors": 0}
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as client:

        async def worker(offset: int) -> None:
            i = offset
            while time.monotonic() < deadline:
                try:
                    response = await client.get(paths[i % len(paths)])
                except httpx.HTTPError as exc:  # named in the outcome, so a failure says what
                    counts["errors"] += 1
                    counts[type(exc).__name__] = counts.get(type(exc).__name__, 0) + 1
                else:
                    status = response.status_code
                    kind = "ok" if status == 200 else "shed" if status == 503 else f"http_{status}"
                    counts[kind] = counts.get(kind, 0) + 1
                    counts["errors"] += kind.startswith("http_")
                i += 1

        await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return counts


@dataclass(frozen=True)
class Footprint:
    service: str
    cache: bool
    idle_rss: int
    idle_millicores: float
    health_cpu_ms: float
    route_cpu_ms: float
    route_rps: float
    peak_rss: int
    burst_peak_rss: int
    rss_after: int


def measure(service: str, env: dict[str, str], load_seconds: float, concurrency: int) -> Footprint:
    module, paths = SERVICES[service]
    with api_process(module, env) as (pid, base):
        drive(base, paths, 2, 4)  # warm-up: imports, pool, cache, JIT-free code paths
        idle_start = sample(pid)
        time.sleep(8)
        idle_end = sample(pid)
        before = sample(pid)
        health = drive(base, ["/health"], load_seconds / 2, concurrency)
        after_health = sample(pid)
        routes = drive(base, paths, load_seconds, concurrency)
        after_routes = sample(pid)
        drive(base, BURSTS[service], load_seconds / 2, concurrency * 4, shed_ok=True)
        after_burst = sample(pid)
        time.sleep(15)  # memory held after the load stops is what a memory metric would see
        settled = sample(pid)
    idle_seconds = idle_end.at - idle_start.at
    return Footprint(
        service=service,
        cache=env.get("CACHE_TTL") != "0",
        idle_rss=idle_end.rss_bytes,
        idle_millicores=1000 * (idle_end.cpu_seconds - idle_start.cpu_seconds) / idle_seconds,
        health_cpu_ms=1000 * (after_health.cpu_seconds - before.cpu_seconds) / health,
        route_cpu_ms=1000 * (after_routes.cpu_seconds - after_health.cpu_seconds) / routes,
        route_rps=routes / (after_routes.at - after_health.at),
        peak_rss=after_routes.peak_rss_bytes,
        burst_peak_rss=after_burst.peak_rss_bytes,
        rss_after=settled.rss_bytes,
    )


def mib(n: int) -> str:
    return f"{n / 2**20:6.1f}"


def report(results: list[Footprint]) -> None:
    print(
        f"{'service':<10} {'cache':<5} {'idle MiB':>8} {'idle m':>7} {'/health ms':>10} "
        f"{'route ms':>9} {'ratio':>6} {'route rps':>9} {'peak MiB':>8} {'burst MiB':>9} "
        f"{'after MiB':>9} {'kept':>5}"
    )
    for r in results:
        print(
            f"{r.service:<10} {'on' if r.cache else 'off':<5} {mib(r.idle_rss):>8} "
            f"{r.idle_millicores:7.1f} {r.health_cpu_ms:10.3f} {r.route_cpu_ms:9.3f} "
            f"{r.route_cpu_ms / r.health_cpu_ms:6.2f} {r.route_rps:9.0f} "
            f"{mib(r.peak_rss):>8} {mib(r.burst_peak_rss):>9} {mib(r.rss_after):>9} "
            f"{r.rss_after / r.burst_peak_rss:5.2f}"
        )
    print(
        "route ms: CPU milliseconds per request of the service's routes; ratio: that over the "
        "/health floor measured in the same run; burst: peak RSS after 4x the concurrency on the "
        "largest pages; kept: RSS 15 s after the burst / burst peak."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drive", metavar="BASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=10.0, help=argparse.SUPPRESS)
    parser.add_argument("--load-seconds", type=float, default=12.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    if args.drive:
        counts = asyncio.run(_drive(args.drive, args.paths, args.seconds, args.concurrency))
        print(json.dumps(counts))
        return

    postgres = PostgresServer().start()
    redis = RedisServer().start()
    # In a cluster stats-api loads the Kubernetes client and watches (GET /scaling): the whole
    # recorded 2 -> 10 -> 2 scaling replayed at once, so the watch holds its final objects.
    kube = StubKube.from_file(HPA_WATCH_2_10_2, position=lambda: float("inf"))
    scratch = tempfile.TemporaryDirectory(prefix="api-footprint-")
    try:
        database_url = postgres.create_database("taskflow_bench")
        seed_env = {**os.environ, "DATABASE_URL": database_url, "SEED_DEMO_TASKS": "1000"}
        subprocess.run(
            [sys.executable, "-m", "taskflow_core.migrate_command"],
            env=seed_env, cwd=REPO, check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        # Children so far: the servers' setup and the migrate run (initContainer's footprint).
        migrate_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        env = {**cluster_settings(), "DATABASE_URL": database_url, "REDIS_URL": redis.url}
        results = []
        with serving_in_thread(kube.app()) as kube_url:
            kubeconfig = write_kubeconfig(
                Path(scratch.name) / "kubeconfig", kube_url, kube.namespace
            )
            watching = {"stats-api": {"KUBECONFIG": str(kubeconfig)}}
            for service in SERVICES:
                for cache_ttl in (env["CACHE_TTL"], "0"):
                    run_env = {**env, **watching.get(service, {}), "CACHE_TTL": cache_ttl}
                    results.append(measure(service, run_env, args.load_seconds, args.concurrency))
            assert kube.calls_of("watch", "deployments"), "stats-api never watched"
        report(results)
        print(f"taskflow-migrate (upgrade + seed 1000) peak RSS: {mib(migrate_peak).strip()} MiB")
    finally:
        scratch.cleanup()
        redis.remove()
        postgres.stop()


if __name__ == "__main__":
    main()
