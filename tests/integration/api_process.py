"""Run tasks-api / stats-api as real server processes on free loopback ports for tests."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from devstack.servers import LOOPBACK, free_port, wait_until

REPO = Path(__file__).resolve().parents[2]


class ApiProcess:
    """`python -m <module>` with DATABASE_URL / REDIS_URL, HOST=127.0.0.1 and a free PORT."""

    def __init__(self, module: str, database_url: str, redis_url: str | None, **env: str) -> None:
        self.module = module
        self.port = free_port()
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "HOST": LOOPBACK,
            "PORT": str(self.port),
            "LOG_LEVEL": "WARNING",
            **env,
        }
        self.env.pop("REDIS_HOST", None)
        self.env.pop("REDIS_PORT", None)
        if redis_url is None:
            self.env.pop("REDIS_URL", None)
        else:
            self.env["REDIS_URL"] = redis_url
        self.log = Path(tempfile.mkstemp(prefix=f"{module}-", suffix=".log")[1])
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> ApiProcess:
        return self.launch().wait_healthy()

    def launch(self) -> ApiProcess:
        """Start the process without waiting (start several, then wait for each)."""
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def wait_healthy(self) -> ApiProcess:
        try:
            wait_until(self._healthy, 30, f"{self.module} on port {self.port}")
        except TimeoutError:
            self.stop()
            raise AssertionError(f"{self.module} did not start:\n{self.output()}") from None
        return self

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.module} exited with {self.process.returncode}")
        return httpx.get(f"{self.url}/health", timeout=1).status_code == 200

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(25)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """Every sample of /metrics keyed by (name, labels)."""
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def cache_requests(self, result: str) -> float:
        app_name = self.module.replace("_", "-")
        labels = frozenset({("app_name", app_name), ("result", result)})
        return self.metrics().get(("taskflow_cache_requests_total", labels), 0.0)

    def breaker_open(self) -> float | None:
        labels = frozenset({("app_name", self.module.replace("_", "-"))})
        return self.metrics().get(("taskflow_cache_breaker_open", labels))


@contextlib.contextmanager
def running_both(
    database_url: str, redis_url: str | None
) -> Iterator[tuple[ApiProcess, ApiProcess]]:
    """tasks-api and stats-api on one database and one Redis, started side by side."""
    apis = [ApiProcess(m, database_url, redis_url) for m in ("tasks_api", "stats_api")]
    try:
        for api in apis:
            api.launch()
        for api in apis:
            api.wait_healthy()
        yield apis[0], apis[1]
    finally:
        for api in apis:
            api.stop()
            api.log.unlink(missing_ok=True)


@contextlib.contextmanager
def running(
    module: str, database_url: str, redis_url: str | None, **env: str
) -> Iterator[ApiProcess]:
    api = ApiProcess(module, database_url, redis_url, **env).start()
    try:
        yield api
    finally:
        api.stop()
        api.log.unlink(missing_ok=True)
