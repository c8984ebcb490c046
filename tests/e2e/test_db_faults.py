"""Database faults under load, on a PostgreSQL of the test's own with a cluster's durable settings
(fsync, synchronous_commit and full_page_writes on).

Both APIs run as real processes; two loadgen runs drive them the whole time (a read mix on both
APIs, and a create-only run that logs every acknowledged id). The database is then stopped
(refused), put into a smart shutdown ("the database system is shutting down") with the APIs'
sessions cut mid-use, crash-restarted by the SIGKILL of one backend, killed whole with SIGKILL and
crash-recovered ("starting up"), and locked until the pools run dry and statements time out.
Throughout: every answer is 2xx or 503 problem+json with Retry-After, never 500, never later than
DB_POOL_TIMEOUT + DB_CONNECT_TIMEOUT + DB_STATEMENT_TIMEOUT (plus a generous allowance for a busy
machine); /ready is 503 while the database is away; both APIs recover without a restart; every
create answered 201 is a row afterwards. About 70 s.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from taskflow_core.problems import PROBLEM_MEDIA_TYPE, ProblemKind
from taskflow_core.settings import Env, PoolSettings

from devstack.databases import migrate
from devstack.postgres_faults import FAULTS, FaultyPostgres
from tests.support.api_process import ApiProcess, running_both

pytestmark = pytest.mark.e2e

POOL_ENV = {
    "DB_POOL_SIZE": "3",
    "DB_MAX_OVERFLOW": "0",
    "DB_POOL_TIMEOUT": "1",
    "DB_CONNECT_TIMEOUT": "1",
    "DB_STATEMENT_TIMEOUT": "2",
}
BOUND = PoolSettings.from_env(Env(POOL_ENV)).request_bound  # 4 s
ALLOWANCE = 3.0  # a shared two-core CI machine's scheduling noise on top of the bound
READY_BOUND = 3.0 + ALLOWANCE  # /ready's own check is bounded by READY_DB_TIMEOUT
RECOVERY_TIMEOUT = 40.0
UNAVAILABLE = ProblemKind.SERVICE_UNAVAILABLE.type_uri


@dataclass
class Answer:
    phase: str
    target: str
    status: int | None  # None: no response (the test fails on it)
    seconds: float
    headers: dict[str, str]
    body: str


@dataclass
class Prober:
    """Asks each API's data and readiness endpoints in turn, recording every answer."""

    urls: dict[str, str]
    phase: str = "steady"
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        targets = {
            "tasks": self.urls["tasks"] + "/tasks?limit=5",
            "stats": self.urls["stats"] + "/stats",
            "tasks-ready": self.urls["tasks"] + "/ready",
            "stats-ready": self.urls["stats"] + "/ready",
        }
        with httpx.Client(timeout=60) as client:
            while not self.stop.is_set():
                for target, url in targets.items():
                    phase, started = self.phase, time.monotonic()
                    try:
                        response = client.get(url)
                    except httpx.HTTPError as exc:
                        self.answers.append(
                            Answer(phase, target, None, time.monotonic() - started, {}, repr(exc))
                        )
                        continue
                    self.answers.append(
                        Answer(
                            phase,
                            target,
                            response.status_code,
                            time.monotonic() - started,
                            dict(response.headers),
                            response.text,
                        )
                    )
                time.sleep(0.05)

    def mark(self, phase: str) -> None:
        self.phase = phase

    def of(self, phase: str, target: str) -> list[Answer]:
        return [a for a in self.answers if a.phase == phase and a.target == target]


@pytest.fixture
def durable_postgres() -> Iterator[FaultyPostgres]:
    server = FaultyPostgres()
    server.start(durable=True)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def loadgen(urls: dict[str, str], name: str, out: Path, *args: str) -> Iterator[Path]:
    """A loadgen run for as long as the block lasts (SIGINT ends it; its report is written)."""
    report = out / f"{name}.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOADGEN_")}
    process = subprocess.Popen(
        [
            sys.executable, "-m", "loadgen", "run", f"--tasks-url={urls['tasks']}",
            f"--stats-url={urls['stats']}", "--stages=1:1s,25:600s", "--timeout=60s",
            "--wait-ready=30s", "--metrics-port=0", "--progress-interval=0",
            "--lag-bound-ms=1000", "--seed=11", f"--report={report}", *args,
        ],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        yield report
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=120)
        assert report.exists(), output


def wait_ready(apis: tuple[ApiProcess, ApiProcess]) -> None:
    deadline = time.monotonic() + RECOVERY_TIMEOUT
    for api in apis:
        while True:
            try:
                if httpx.get(api.url + "/ready", timeout=10).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{api.module} did not recover:\n{api.output()}"
            time.sleep(0.2)


def test_database_faults_answer_503_within_the_bound_and_lose_no_acknowledged_write(
    durable_postgres: FaultyPostgres, redis_url: str, tmp_path: Path
) -> None:
    url = durable_postgres.create_database("taskflow_faults")
    migrate(url)
    with psycopg.connect(url) as conn:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            assert conn.execute(f"SHOW {setting}").fetchone() == ("on",), setting
    created_ids = tmp_path / "created-ids.txt"
    with running_both(url, redis_url, **POOL_ENV) as apis:
        pids = [api.process.pid for api in apis]
        urls = {"tasks": apis[0].url, "stats": apis[1].url}
        prober = Prober(urls)
        thread = threading.Thread(target=prober.run, daemon=True)
        with (
            loadgen(urls, "reads", tmp_path, "--mix=list=3,high=1,pending=1,stats=3") as reads,
            loadgen(
                urls, "creates", tmp_path, "--mix=create=1", "--no-cleanup",
                "--max-own-tasks=1000000", f"--created-ids={created_ids}",
            ) as creates,
        ):  # fmt: skip
            thread.start()
            time.sleep(3)
            for fault in FAULTS:
                fault(durable_postgres, "taskflow_faults", prober.mark)
                wait_ready(apis)  # by themselves: nothing restarts the APIs
                prober.phase = f"after-{fault.__name__}"
                time.sleep(2)
            prober.stop.set()
            thread.join(timeout=120)
        assert [api.process.poll() for api in apis] == [None, None]
        assert [api.process.pid for api in apis] == pids
        server_errors = {api.module: _count(api, status_prefix="5", but="503") for api in apis}
        logs = "".join(api.server.log() for api in apis)

    check_answers(prober)
    unexpected = [
        line for line in logs.splitlines() if "unhandled" in line or "server error" in line
    ]
    assert server_errors == {"tasks_api": 0, "stats_api": 0}, "\n".join(unexpected)[-6000:]
    for report_path in (reads, creates):
        check_report(report_path)
    check_every_acknowledged_create_is_a_row(url, created_ids)


def check_answers(prober: Prober) -> None:
    assert prober.answers
    for answer in prober.answers:
        where = f"{answer.phase} {answer.target}: {answer.status} {answer.body[:300]}"
        assert answer.status in (200, 503), where
        bound = READY_BOUND if answer.target.endswith("ready") else BOUND + ALLOWANCE
        assert answer.seconds <= bound, f"{where} after {answer.seconds:.1f}s"
        if answer.status == 503 and not answer.target.endswith("ready"):
            assert answer.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE), where
            assert answer.headers["retry-after"] == "1", where
            assert UNAVAILABLE in answer.body, where
    for phase in ("refused", "killed"):
        for target in ("tasks-ready", "stats-ready"):
            statuses = {a.status for a in prober.of(phase, target)}
            assert 503 in statuses, f"/ready during {phase}: {statuses}"
    steady = [a for a in prober.answers if a.phase.startswith("after-")]
    for target in ("tasks", "stats", "tasks-ready", "stats-ready"):
        last = [a for a in steady if a.target == target][-1]
        assert last.status == 200, f"{target} after the faults: {last.status}"


def check_report(path: Path) -> None:
    import json

    report = json.loads(path.read_text())
    for name, endpoint in report["endpoints"].items():
        if not endpoint["sent"]:
            continue
        errors = {kind: n for kind, n in endpoint["errors"].items() if n and kind != "http_5xx"}
        assert errors == {}, f"{path.name} {name}: {errors}"
        # Latency counts from the scheduled send, so it bounds the server's answer from above.
        assert endpoint["latency_ms"]["max"] <= (BOUND + ALLOWANCE) * 1000, (path.name, name)
    assert report["total"]["errors"]["http_5xx"] > 0, "no fault reached the clients"


def check_every_acknowledged_create_is_a_row(url: str, created_ids: Path) -> None:
    acknowledged = {int(line) for line in created_ids.read_text().split()}
    assert len(acknowledged) > 100
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id FROM tasks WHERE id = ANY(%s)", (list(acknowledged),))
        found = {int(row[0]) for row in rows.fetchall()}
    assert acknowledged - found == set(), "acknowledged creates that are not rows"


def _count(api: ApiProcess, *, status_prefix: str, but: str) -> float:
    return sum(
        value
        for (name, labels), value in api.metrics().items()
        if name == "taskflow_requests_total"
        and dict(labels).get("status_code", "").startswith(status_prefix)
        and dict(labels).get("status_code") != but
    )
