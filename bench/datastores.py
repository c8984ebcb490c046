"""Throwaway PostgreSQL and Redis with the settings the cluster runs them with, on the load
core, migrated and seeded with demo tasks by the real migrate command."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis
import yaml

from bench.processes import on_load_core
from devstack.servers import PostgresServer, RedisServer

REPO = Path(__file__).resolve().parent.parent
REDIS_MANIFEST = REPO / "deploy" / "components" / "redis" / "redis.yaml"


@dataclass(frozen=True, slots=True)
class Datastores:
    postgres: PostgresServer
    redis: RedisServer

    def database_url(self, name: str) -> str:
        return self.postgres.url(name)


def redis_memory_args() -> list[str]:
    """The Redis container's memory arguments in the cluster (maxmemory and its eviction).

    Persistence is off there as in RedisServer (`--save ""`, `--appendonly no`)."""
    docs = yaml.safe_load_all(REDIS_MANIFEST.read_text())
    for doc in docs:
        if doc and doc.get("kind") in {"Deployment", "StatefulSet"}:
            # The exporter sidecar runs beside it: the container named redis holds the settings.
            containers = doc["spec"]["template"]["spec"]["containers"]
            (container,) = [c for c in containers if c["name"] == "redis"]
            args: list[str] = container["args"]
            return [
                item
                for name, value in zip(args[1::2], args[2::2], strict=True)
                if name.startswith("--maxmemory")
                for item in (name, value)
            ]
    raise LookupError(f"no Redis workload in {REDIS_MANIFEST.relative_to(REPO)}")


@contextmanager
def datastores(postgres: type[PostgresServer] = PostgresServer) -> Iterator[Datastores]:
    """PostgreSQL (fsync, synchronous commit, full-page writes: the defaults) and Redis."""
    with on_load_core():
        pg = postgres().start(max_connections=200, durable=True)
        cache = RedisServer().start()
    try:
        client = redis.Redis.from_url(cache.url)
        args = redis_memory_args()
        for name, value in zip(args[::2], args[1::2], strict=True):
            client.config_set(name.removeprefix("--"), value)
        client.close()
        yield Datastores(pg, cache)
    finally:
        cache.remove()
        pg.stop()


def seeded_database(stores: Datastores, rows: int) -> str:
    """A fresh database migrated to head with `rows` demo tasks; its URL."""
    url = stores.postgres.create_database(f"bench_{rows}")
    subprocess.run(
        [sys.executable, "-m", "taskflow_core.migrate_command"],
        env={"DATABASE_URL": url, "SEED_DEMO_TASKS": str(rows), "LOG_LEVEL": "WARNING",
             "PATH": "/usr/bin:/bin"},
        check=True, cwd=REPO, timeout=1800,
    )  # fmt: skip
    # What autovacuum would do soon after a bulk load: statistics and the visibility map.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) tasks")
    return url
