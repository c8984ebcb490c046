"""A running API process seen from the cache's side: its cache counters and breaker gauge."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.apiserver import ApiServer, api_server, service_env

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass
class ApiProcess:
    module: str  # "tasks_api" or "stats_api"
    server: ApiServer

    @property
    def url(self) -> str:
        return self.server.base_url

    @property
    def process(self) -> subprocess.Popen[bytes]:
        return self.server.process

    @property
    def app_name(self) -> str:
        return self.module.replace("_", "-")

    def output(self) -> str:
        return self.server.log()[-4000:]

    def metrics(self) -> Samples:
        """Every sample of /metrics keyed by (name, labels)."""
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def cache_requests(self, result: str) -> float:
        labels = frozenset({("app_name", self.app_name), ("result", result)})
        return self.metrics().get(("taskflow_cache_requests_total", labels), 0.0)

    def breaker_open(self) -> float | None:
        labels = frozenset({("app_name", self.app_name)})
        return self.metrics().get(("taskflow_cache_breaker_open", labels))


@contextlib.contextmanager
def running(
    module: str, database_url: str, redis_url: str | None, **extra: str
) -> Iterator[ApiProcess]:
    """`python -m <module>` on a free loopback port; without `redis_url` the cache is off."""
    cache = {} if redis_url is None else {"REDIS_URL": redis_url}
    env = service_env(database_url, **cache, **extra)
    with api_server(module, env) as server:
        yield ApiProcess(module, server)


@contextlib.contextmanager
def running_both(
    database_url: str, redis_url: str | None, **extra: str
) -> Iterator[tuple[ApiProcess, ApiProcess]]:
    """tasks-api and stats-api on one database and one Redis (`extra`: more environment)."""
    with (
        running("tasks_api", database_url, redis_url, **extra) as tasks,
        running("stats_api", database_url, redis_url, **extra) as stats,
    ):
        yield tasks, stats
