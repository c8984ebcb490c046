"""`python -m bench.memory` (`make bench-memory`): the APIs' resident memory through a steady
mixed load, a burst, and the database faults of tests/e2e/test_db_faults.py, on a durable
PostgreSQL and Redis set up as the cluster runs them, each API started as deployed (granian's
supervisor and its worker). stats-api also watches HPAs and Deployments through a kubeconfig, as
in a cluster, against the tests' stand-in for the Kubernetes API replaying a recorded 2 -> 10 -> 2
scale-out (its worker's RSS includes the Kubernetes client and its watches). The steady load
goes through the web container's nginx (the burst straight to the APIs), whose exporter is
scraped every second as Prometheus would.
With KUBECONFIG granian's supervisor imports the client too (it checks the kubeconfig before it
starts), which a pod's supervisor does not: a pod's stats-api is counted as that worker plus the
supervisor of a third, idle stats-api outside any cluster. Prints each process's RSS at the end
of every phase and its peak, then the memory request and limit each container's peak gives
(x 1.25, rounded up to 32 MiB; limit twice the request) beside the manifests'. About two
minutes."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from bench.datastores import REPO, datastores, seeded_database
from bench.processes import Server, pinned_server
from bench.rss import RssWatch
from bench.run import base_env, deployed_env
from devstack.postgres_faults import FAULTS, FaultyPostgres
from devstack.servers import LOOPBACK, free_port
from devstack.web import WebServer
from tests.support.loopback_http import serving_in_thread
from tests.support.stub_kube import HPA_WATCH_2_10_2, StubKube, write_kubeconfig

APIS = {"tasks-api": "tasks_api", "stats-api": "stats_api", "stats-api-no-cluster": "stats_api"}
# A container's processes: (server, role) whose RSS it holds.
PODS = {
    "tasks-api": (("tasks-api", "supervisor"), ("tasks-api", "worker")),
    "stats-api": (("stats-api-no-cluster", "supervisor"), ("stats-api", "worker")),
    "web nginx": (("web nginx", "supervisor"), ("web nginx", "worker")),
    "web exporter": (("web exporter", "supervisor"),),
}
WEB_MANIFEST = REPO / "deploy" / "base" / "web" / "deployment.yaml"
CONTAINERS = {  # report row -> (manifest, container name)
    "tasks-api": (REPO / "deploy" / "base" / "api" / "deployment.yaml", "api"),
    "stats-api": (REPO / "deploy" / "base" / "api" / "deployment.yaml", "api"),  # one workload
    "web nginx": (WEB_MANIFEST, "web"),
    "web exporter": (WEB_MANIFEST, "exporter"),
}
NAMES = {  # the name each server reports under (traces, logs)
    "tasks-api": "tasks-api",
    "stats-api": "stats-api",
    "stats-api-no-cluster": "stats-api",
}
# request = peak x 1.25: the peak already holds faults and a burst; the margin covers run-to-run
# spread (about 10 %) and a newer Python; the limit (twice the request) what no run showed.
HEADROOM = 1.25
ROUND_MIB = 32


def loadgen(urls: dict[str, str], stages: str, log: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOADGEN_")}
    return subprocess.Popen(
        [
            sys.executable, "-m", "loadgen", "run", f"--tasks-url={urls['tasks-api']}",
            f"--stats-url={urls['stats-api']}", f"--stages={stages}", "--timeout=30s",
            "--metrics-port=0", "--progress-interval=0", "--report=", "--seed=5", *args,
        ],
        env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


@contextlib.contextmanager
def steady_load(urls: dict[str, str], rate: int, workdir: Path) -> Iterator[None]:
    process = loadgen(urls, f"{rate}:3600s", workdir / "steady.log")
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(120)


def api_env(name: str, database_url: str, redis_url: str, kubeconfig: Path) -> dict[str, str]:
    """The pod's environment: the ConfigMap, the database and Redis (stats-api: the cluster)."""
    env = base_env() | deployed_env() | {
        "DATABASE_URL": database_url, "REDIS_URL": redis_url, "OTEL_SERVICE_NAME": NAMES[name],
    }  # fmt: skip
    if name == "stats-api":
        env["KUBECONFIG"] = str(kubeconfig)
    return env


@contextlib.contextmanager
def kubernetes_api(workdir: Path) -> Iterator[Path]:
    """The stand-in Kubernetes API replaying its recording in real time; yields a kubeconfig."""
    started = time.monotonic()
    kube = StubKube.from_file(HPA_WATCH_2_10_2, position=lambda: time.monotonic() - started)
    with serving_in_thread(kube.app()) as url:
        yield write_kubeconfig(workdir / "kubeconfig", url, kube.namespace)


def request_mib(peak_mib: float) -> int:
    return math.ceil(peak_mib * HEADROOM / ROUND_MIB) * ROUND_MIB


def manifest_memory(path: Path, name: str) -> str:
    for doc in yaml.safe_load_all(path.read_text()):
        for container in doc["spec"]["template"]["spec"]["containers"]:
            if container["name"] == name:
                resources = container["resources"]
                return f"{resources['requests']['memory']} / {resources['limits']['memory']}"
    raise LookupError(path)


def report(watch: RssWatch, phases: Sequence[str]) -> None:
    print(f"{'process':<32}" + "".join(f"{p:>15}" for p in phases) + f"{'peak':>9}")
    for server in sorted({server for server, _ in watch.servers.items()}):
        for role in ("supervisor", "worker"):
            series = watch.series(server, role)
            if not series:
                continue
            last = {s.phase: s.rss_mib for s in series}
            cells = "".join(f"{last.get(p, float('nan')):>15.1f}" for p in phases)
            print(f"{server + ' ' + role:<32}{cells}{max(s.rss_mib for s in series):>9.1f}")
    print()
    print(f"{'container':<18}{'peak MiB':>9}{'in phase':>16}{'request/limit':>16}  manifest")
    for server in PODS:
        _, phase, peak = max(pod_totals(watch, server), key=lambda row: row[2])
        derived = request_mib(peak)
        print(
            f"{server:<18}{peak:>9.1f}{phase:>16}{f'{derived}Mi / {2 * derived}Mi':>16}  "
            f"{manifest_memory(*CONTAINERS[server])}"
        )


def pod_totals(watch: RssWatch, pod: str) -> list[tuple[float, str, float]]:
    """(seconds, phase, RSS of the pod's processes) per sampling round."""
    rounds: dict[float, tuple[str, float]] = {}
    for sample in watch.samples:
        if (sample.server, sample.role) in PODS[pod]:
            phase, total = rounds.get(sample.seconds, (sample.phase, 0.0))
            rounds[sample.seconds] = (phase, total + sample.rss_mib)
    return [(t, phase, total) for t, (phase, total) in sorted(rounds.items())]


@dataclass
class Stack:
    postgres: FaultyPostgres
    database: str
    servers: dict[str, Server]
    web: WebServer

    @property
    def urls(self) -> dict[str, str]:
        """Where loadgen sends: through nginx, as the UI's requests go."""
        return {"tasks-api": self.web.url + "/api", "stats-api": self.web.url + "/api"}

    @property
    def api_urls(self) -> dict[str, str]:
        """Straight to the APIs, as the in-cluster loadgen Job sends (to their Services)."""
        return {name: server.base_url for name, server in self.servers.items()}

    @property
    def pids(self) -> dict[str, int]:
        pids = {name: server.process.pid for name, server in self.servers.items()}
        assert self.web.nginx is not None
        assert self.web.exporter is not None
        return pids | {"web nginx": self.web.nginx.pid, "web exporter": self.web.exporter.pid}


@contextlib.contextmanager
def stack(workdir: Path) -> Iterator[Stack]:
    """Durable PostgreSQL with 1,000 demo tasks, Redis, the stand-in Kubernetes API and APIS."""
    with datastores(FaultyPostgres) as stores, contextlib.ExitStack() as stack:
        postgres = stores.postgres
        assert isinstance(postgres, FaultyPostgres)
        url = seeded_database(stores, 1_000)
        kubeconfig = stack.enter_context(kubernetes_api(workdir))
        servers = {
            name: stack.enter_context(
                pinned_server(
                    name, ["-m", module], api_env(name, url, stores.redis.url, kubeconfig), "/ready"
                )
            )
            for name, module in APIS.items()
        }  # fmt: skip
        web = WebServer(
            free_port(),
            servers["tasks-api"].base_url.removeprefix("http://"),
            servers["stats-api"].base_url.removeprefix("http://"),
            metrics_port=free_port(),
            output=subprocess.DEVNULL,
        )
        stack.callback(web.stop)
        web.start()
        stack.enter_context(scraping(f"http://{LOOPBACK}:{web.metrics_port}/metrics"))
        yield Stack(postgres, url.rpartition("/")[2], servers, web)


@contextlib.contextmanager
def scraping(url: str, every: float = 1.0) -> Iterator[None]:
    """Prometheus's part: the exporter is scraped (and so scrapes nginx) as in the cluster."""
    stop = threading.Event()

    def run() -> None:
        with httpx.Client(timeout=5) as client:
            while not stop.wait(every):
                with contextlib.suppress(httpx.HTTPError):
                    client.get(url)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--rate", type=int, default=50, help="steady mixed rate, req/s")
    parser.add_argument("--burst", type=int, default=400, help="burst rate, req/s, for 10 s")
    parser.add_argument("--seconds", type=float, default=20, help="steady phase length")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    with stack(workdir) as running, RssWatch(running.pids) as watch:
        watch.phase = "started"
        time.sleep(2)
        with steady_load(running.urls, args.rate, workdir):
            watch.phase = "steady"
            time.sleep(args.seconds)
            watch.phase = "burst"
            burst = loadgen(
                running.api_urls, f"{args.burst}:10s", workdir / "burst.log", "--mix=list=1"
            )
            burst.wait(120)
            for fault in FAULTS:
                fault(running.postgres, running.database, lambda p: setattr(watch, "phase", p))
                watch.phase = "recovering"
                time.sleep(3)
            watch.phase = "after-faults"
            time.sleep(args.seconds / 2)
        watch.phase = "idle"
        time.sleep(5)
    phases = ["started", "steady", "burst", "refused", "shutting-down", "backend-killed",
              "killed", "locked", "after-faults", "idle"]  # fmt: skip
    report(watch, phases)
    return 0


if __name__ == "__main__":
    sys.exit(main())
