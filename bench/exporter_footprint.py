"""`python -m bench.exporter_footprint`: resident memory and CPU of Debian's postgres_exporter and
redis_exporter (the versions the datastores component pins) over 40 scrapes of a throwaway
PostgreSQL and Redis, each beside the memory request the manifests give it (README.md,
"Resource figures"). Prints; asserts nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import yaml

from devstack.servers import LOOPBACK, PostgresServer, RedisServer, free_port, stop_process
from tests.deploy.deploy_model import memory_bytes

DATASTORES = Path(__file__).resolve().parent.parent / "deploy" / "components" / "datastores"
SCRAPES = 40  # ten minutes of Prometheus at one scrape per 15 s
PAGE_KIB = 1024


def _request(manifest: str) -> int:
    for doc in yaml.safe_load_all((DATASTORES / manifest).read_text()):
        if doc["kind"] in {"Deployment", "StatefulSet"}:
            for container in doc["spec"]["template"]["spec"]["containers"]:
                if container["name"] == "exporter":
                    return memory_bytes(container["resources"]["requests"]["memory"])
    raise LookupError(f"no exporter in {manifest}")


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise LookupError("VmHWM")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(name: str, command: list[str], port: int, env: dict[str, str], manifest: str) -> None:
    binary = shutil.which(command[0])
    if binary is None:
        raise SystemExit(f"{command[0]}: install Debian's package (make test does)")
    process = subprocess.Popen(
        [binary, *command[1:]], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        url = f"http://{LOOPBACK}:{port}/metrics"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                httpx.get(url, timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        for _ in range(SCRAPES):
            httpx.get(url, timeout=10).raise_for_status()
        rss = _peak_rss_kib(process.pid) * PAGE_KIB
        cpu_ms = _cpu_seconds(process.pid) * 1000 / SCRAPES
        request = _request(manifest)
        print(
            f"{name:18} peak RSS {rss / 2**20:5.1f} MiB = {rss / request:.2f} x its "
            f"{request // 2**20}Mi request; {cpu_ms:4.1f} ms CPU per scrape"
        )
    finally:
        stop_process(process, grace=5)


def main() -> None:
    postgres, redis = PostgresServer().start(), RedisServer().start()
    try:
        port = free_port()
        dsn = f"{postgres.url()}?sslmode=disable"
        _measure(
            "postgres_exporter",
            ["prometheus-postgres-exporter", f"--web.listen-address={LOOPBACK}:{port}"],
            port,
            {**os.environ, "DATA_SOURCE_NAME": dsn},
            "postgres.yaml",
        )
        port = free_port()
        _measure(
            "redis_exporter",
            [
                "prometheus-redis-exporter",
                f"-web.listen-address={LOOPBACK}:{port}",
                f"-redis.addr={redis.url}",
            ],
            port,
            dict(os.environ),
            "redis.yaml",
        )
    finally:
        postgres.stop()
        redis.remove()


if __name__ == "__main__":
    main()
