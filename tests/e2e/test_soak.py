"""A short soak: both APIs as real processes under a steady mixed load from loadgen (reads of
both APIs, creates, completions, deletes) give back everything the load took. Each API's open
files, its PostgreSQL sessions (`pg_stat_activity`) and its Redis connections (`CLIENT LIST`)
return to their baseline after a short warm-up at the same rate: the files beyond the pools'
connections to exactly the count then, the sessions to idle ones within DB_POOL_SIZE +
DB_MAX_OVERFLOW, the Redis connections within the cache's pool bound (pools keep idle
connections; nothing else may stay). The long run with RSS over time is `make soak`
(bench/soak.py). About 50 s."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis
from taskflow_core.cache import MAX_CONNECTIONS

from devstack.servers import RedisServer
from tests.support.api_process import ApiProcess, running_both

pytestmark = pytest.mark.e2e

POOL_ENV = {"DB_POOL_SIZE": "3", "DB_MAX_OVERFLOW": "1"}
POOL_MAX = 3 + 1
WARM_UP = "40:3s"  # first uses open what a process opens once (its pools, lazy resources)
STEADY = "40:30s"  # req/s : seconds of the soak
RETURN_WITHIN = 15.0  # seconds for the clients' closed connections to be closed server-side
APPS = {"tasks_api": "tasks-api", "stats_api": "stats-api"}


@dataclass(frozen=True)
class Held:
    """What one API holds: open files (its process tree), PostgreSQL sessions of its request
    pool (and how many are not idle), Redis connections of its cache."""

    files: int
    sessions: int
    busy_sessions: int
    redis: int

    @property
    def unpooled_files(self) -> int:
        """Files beyond the pools' connections: the listener, logs, clients' connections."""
        return self.files - self.sessions - self.redis


def open_files(pid: int) -> int:
    total = len(os.listdir(f"/proc/{pid}/fd"))
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return total + sum(open_files(int(child)) for child in children)


def held(apis: tuple[ApiProcess, ApiProcess], database_url: str, redis_url: str) -> dict[str, Held]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        sessions = conn.execute(
            "SELECT application_name, count(*), count(*) FILTER (WHERE state <> 'idle')"
            " FROM pg_stat_activity WHERE datname = current_database() GROUP BY 1"
        ).fetchall()
    client = redis.Redis.from_url(redis_url)
    try:
        names = [c["name"] for c in client.client_list()]
    finally:
        client.close()
    by_app = {str(name): (int(total), int(busy)) for name, total, busy in sessions}
    return {
        api.module: Held(
            files=open_files(api.process.pid),
            sessions=by_app.get(APPS[api.module], (0, 0))[0],
            busy_sessions=by_app.get(APPS[api.module], (0, 0))[1],
            redis=names.count(f"taskflow-{APPS[api.module]}"),
        )
        for api in apis
    }


def loadgen(urls: dict[str, str], stages: str, report: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOADGEN_")}
    return subprocess.run(
        [
            sys.executable, "-m", "loadgen", "run", f"--tasks-url={urls['tasks']}",
            f"--stats-url={urls['stats']}", f"--stages={stages}", "--metrics-port=0",
            "--progress-interval=0", "--lag-bound-ms=1000", "--max-miss-rate=1",
            "--p99-ms=5000", "--max-error-rate=0", "--seed=3", f"--report={report}",
        ],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def settled(
    apis: tuple[ApiProcess, ApiProcess], database_url: str, redis_url: str
) -> dict[str, Held]:
    """The counts once the load's client connections are closed on the server's side too."""
    time.sleep(2)
    return held(apis, database_url, redis_url)


def given_back(now: dict[str, Held], baseline: dict[str, Held]) -> bool:
    return all(
        held.unpooled_files <= baseline[name].unpooled_files
        and held.busy_sessions == 0
        and held.sessions <= POOL_MAX
        and held.redis <= MAX_CONNECTIONS
        for name, held in now.items()
    )


def test_a_steady_mixed_load_gives_back_files_sessions_and_redis_connections(
    database_url: str, private_redis: RedisServer, tmp_path: Path
) -> None:
    with running_both(database_url, private_redis.url, **POOL_ENV) as apis:
        urls = {"tasks": apis[0].url, "stats": apis[1].url}
        warm = loadgen(urls, WARM_UP, tmp_path / "warm-up.json")
        assert warm.returncode == 0, warm.stdout + warm.stderr
        baseline = settled(apis, database_url, private_redis.url)
        soak = loadgen(urls, STEADY, tmp_path / "soak.json")
        assert soak.returncode == 0, soak.stdout + soak.stderr  # every request answered 2xx
        during = held(apis, database_url, private_redis.url)
        deadline = time.monotonic() + RETURN_WITHIN
        now = during
        while not given_back(now, baseline) and time.monotonic() < deadline:
            time.sleep(0.5)
            now = held(apis, database_url, private_redis.url)
    assert given_back(now, baseline), f"after the soak {now}, baseline {baseline}"
    for name in APPS:  # the load did use both pools
        assert during[name].sessions > 0, name
        assert during[name].redis > 0, name
