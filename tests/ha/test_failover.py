"""A failover of the primary under the load generator's mixed load, on loopback.

A primary with one synchronous standby (pg_basebackup, synchronous_standby_names), and a TCP
forwarder standing in for the Cluster's -rw Service that both APIs and their cache use. The
test stops the primary, promotes the standby and points the forwarder at it, as CloudNativePG
does. Meanwhile: every answer is 201 or a 503 problem (never a 500), the APIs recover by
themselves within RECOVERY_BOUND, every acknowledged create is on the new primary, /ready says
503 while there is no primary, and no page cached before the failover is served after it,
even where the new primary's cache generation counter reaches the same value with other data.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

from devstack.databases import migrate
from tests.support.api_process import ApiProcess, running_both
from tests.support.replication import ReplicatedPostgres, replicated_postgres
from tests.support.tcp_forwarder import TcpForwarder

LOADGEN = str(Path(sys.executable).parent / "loadgen")
# The load generator's rate (req/s, its default mix) and the phases around the switch.
RATE = 30
WARM_UP = 4.0  # seconds of load before the primary dies
OUTAGE = 2.0  # the operator's detection and promotion, during which -rw has no endpoint
AFTER = 7.0  # seconds of load on the new primary
# From the forwarder's switch to the new primary, every request answers as before within this
# (README.md, "High availability"): the pools open fresh connections on their next acquire.
RECOVERY_BOUND = 5.0
PROBE_INTERVAL = 0.05
PROBLEM_JSON = "application/problem+json"


@dataclass
class Answer:
    sent: float
    status: int | None  # None: no HTTP answer at all (a timeout or a reset)
    content_type: str = ""
    body: dict[str, object] = field(default_factory=dict)


class Writer(threading.Thread):
    """Creates a task every PROBE_INTERVAL and keeps every answer: the ids acknowledged."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.answers: list[Answer] = []
        self.paused = threading.Event()
        self.stopped = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            n = 0
            while not self.stopped.is_set():
                if self.paused.is_set():
                    time.sleep(PROBE_INTERVAL)
                    continue
                n += 1
                sent = time.monotonic()
                try:
                    response = client.post("/tasks", json={"title": f"probe-{n}"})
                except httpx.HTTPError:
                    self.answers.append(Answer(sent, None))
                else:
                    self.answers.append(
                        Answer(
                            sent,
                            response.status_code,
                            response.headers.get("content-type", ""),
                            response.json() if response.content else {},
                        )
                    )
                time.sleep(PROBE_INTERVAL)


class ReadinessWatch(threading.Thread):
    """Both APIs' /ready, ten times a second: (time, app, status)."""

    def __init__(self, apis: tuple[ApiProcess, ...]) -> None:
        super().__init__(daemon=True)
        self.apis = apis
        self.seen: list[tuple[float, str, int | None]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=3) as client:
            while not self.stopped.is_set():
                for api in self.apis:
                    at = time.monotonic()
                    try:
                        status: int | None = client.get(f"{api.url}/ready").status_code
                    except httpx.HTTPError:
                        status = None
                    self.seen.append((at, api.app_name, status))
                time.sleep(0.1)


def scalar(url: str, sql: str, *args: object) -> object:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql, args).fetchone()
    assert row is not None
    return row[0]


def generation(url: str) -> int:
    return int(str(scalar(url, "SELECT value FROM cache_generation WHERE id = 1")))


def status_counts(api: ApiProcess) -> dict[str, float]:
    counts: dict[str, float] = {}
    for (name, labels), value in api.metrics().items():
        if name == "taskflow_requests_total":
            code = dict(labels)["status_code"]
            counts[code] = counts.get(code, 0) + value
    return counts


@contextmanager
def held(loadgen: subprocess.Popen[str], writer: Writer) -> Iterator[None]:
    """No new request from the load generator or the writer; those in flight have finished."""
    loadgen.send_signal(signal.SIGSTOP)
    writer.paused.set()
    time.sleep(0.3)
    try:
        yield
    finally:
        writer.paused.clear()
        loadgen.send_signal(signal.SIGCONT)


def answered(url: str) -> httpx.Response:
    """GET as a client that retries a 503 would, within RECOVERY_BOUND."""
    deadline = time.monotonic() + RECOVERY_BOUND
    while True:
        response = httpx.get(url, timeout=5)
        if response.status_code != 503 or time.monotonic() > deadline:
            assert response.status_code == 200, response.text
            return response
        time.sleep(0.1)


@pytest.fixture
def cluster() -> Iterator[tuple[ReplicatedPostgres, TcpForwarder]]:
    with replicated_postgres() as pair:
        migrate(pair.primary.create_database("taskflow"))
        service = TcpForwarder(pair.primary.port).start()
        try:
            yield pair, service
        finally:
            service.close()


def test_a_failover_under_load_answers_503_then_recovers_and_loses_no_acknowledged_write(
    cluster: tuple[ReplicatedPostgres, TcpForwarder], redis_url: str, tmp_path: Path
) -> None:
    pair, service = cluster
    primary, standby = pair.primary.url("taskflow"), pair.standby.url("taskflow")
    url = f"postgresql://postgres@127.0.0.1:{service.port}/taskflow"
    with running_both(url, redis_url) as (tasks, stats):
        report = tmp_path / "loadgen.json"
        loadgen = subprocess.Popen(
            [LOADGEN, "run", f"--tasks-url={tasks.url}", f"--stats-url={stats.url}",
             f"--stages={RATE}:{WARM_UP + OUTAGE + AFTER + 1:.0f}s", "--metrics-port=0",
             "--progress-interval=0", "--lag-bound-ms=500", "--timeout=10", "--no-cleanup",
             f"--report={report}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        writer, watch = Writer(tasks.url), ReadinessWatch((tasks, stats))
        writer.start()
        watch.start()
        try:
            time.sleep(WARM_UP)
            assert loadgen.poll() is None, loadgen.communicate()[0]

            # A commit the standby never got: written on the primary alone (what a cancelled
            # wait for the standby leaves), then read through both APIs into the cache. The
            # writers are held meanwhile, so no write waits on the lost standby yet.
            ghost = f"ghost-{uuid.uuid4().hex[:8]}"
            page = f"/tasks?q={ghost}"
            with held(loadgen, writer):
                with psycopg.connect(primary) as conn:
                    conn.execute("SET LOCAL synchronous_commit = local")
                    conn.execute("INSERT INTO tasks (title, completed) VALUES (%s, true)", (ghost,))
                    pair.replication_link.cut()
                    conn.commit()
                ghost_generation = generation(primary)
                cached = [answered(tasks.url + page).json() for _ in range(2)]
                assert [len(body["items"]) for body in cached] == [1, 1]
                stats_before = answered(f"{stats.url}/stats").json()
            time.sleep(0.3)  # writes now wait for the standby, as when it is lost for real

            # The primary's pod dies; -rw has no endpoint until the operator promotes.
            stopped = time.monotonic()
            pair.stop_primary()
            service.cut()
            down = time.monotonic()  # a /ready sent before this may still have found it
            time.sleep(OUTAGE)
            standby_state = scalar(standby, "SELECT count(*) FROM tasks WHERE title = %s", ghost)
            assert standby_state == 0, "the ghost commit never reached the standby"
            pair.standby.promote()

            # Bring the new primary's counter to the ghost page's value with other writes
            # (the writers held back meanwhile): a key made of the counter alone would repeat.
            with held(loadgen, writer):
                with psycopg.connect(standby, autocommit=True) as conn:
                    while generation(standby) < ghost_generation:
                        conn.execute("INSERT INTO tasks (title) VALUES ('bridge')")
                assert generation(standby) == ghost_generation
                switched = time.monotonic()
                service.point_at(pair.standby.port)

                after = answered(tasks.url + page)
                assert after.json()["items"] == [], "the page cached on the old primary came back"
                stats_after = answered(f"{stats.url}/stats").json()
                assert stats_after["total"] == scalar(standby, "SELECT count(*) FROM tasks")
                # The same total at the same counter value; the ghost was a completed task.
                assert stats_before["completed"] == stats_after["completed"] + 1
                assert generation(standby) == ghost_generation, "no write moved the counter on"

            time.sleep(AFTER)
        finally:
            writer.stopped.set()
            watch.stopped.set()
            loadgen.send_signal(signal.SIGCONT)
            writer.join(10)
            watch.join(10)
            try:
                output, _ = loadgen.communicate(timeout=60)
            finally:
                if loadgen.poll() is None:
                    loadgen.kill()
                    loadgen.communicate(timeout=10)
        assert report.exists(), output

        # A write after the failover is visible through both APIs.
        created = httpx.post(f"{tasks.url}/tasks", json={"title": "after-failover"}, timeout=5)
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]
        assert httpx.get(f"{tasks.url}/tasks/{task_id}", timeout=5).status_code == 200
        total = httpx.get(f"{stats.url}/stats", timeout=5).json()["total"]
        assert total == scalar(standby, "SELECT count(*) FROM tasks")

        # Never a 500: every failed request in either API was a 503.
        for api in (tasks, stats):
            counts = status_counts(api)
            assert not [code for code in counts if code.startswith("5") and code != "503"], (
                api.app_name,
                counts,
            )
        assert status_counts(tasks).get("503", 0) > 0, "the switch was seen"
        loadgen_total = json.loads(report.read_text())["total"]
        assert loadgen_total["sent"] > 0
        print(f"failover: loadgen {loadgen_total}; API statuses {status_counts(tasks)}")

    answers = writer.answers
    unexpected = [a for a in answers if a.status not in (201, 503)]
    assert not unexpected, unexpected[:5]
    for answer in answers:
        if answer.status == 503:
            assert answer.content_type.startswith(PROBLEM_JSON), answer
            assert answer.body["status"] == 503
    # Every acknowledged create, before the switch or after it, is on the new primary.
    acknowledged = [int(str(a.body["id"])) for a in answers if a.status == 201]
    found = scalar(standby, "SELECT count(*) FROM tasks WHERE id = ANY(%s)", acknowledged)
    assert found == len(acknowledged)
    assert [a for a in answers if a.sent < stopped and a.status == 201]
    # Recovered by themselves: every create sent from RECOVERY_BOUND after the switch on.
    late = [a for a in answers if a.sent >= switched + RECOVERY_BOUND]
    assert late, "the writer ran past the bound"
    assert all(a.status == 201 for a in late), [a for a in late if a.status != 201][:5]
    first_ok = min(a.sent for a in answers if a.sent >= switched and a.status == 201)
    refused = [a.sent - switched for a in answers if a.status == 503]
    print(
        f"failover: {len(answers)} creates, {len(refused)} answered 503; the first acknowledged "
        f"{first_ok - switched:.2f}s after the switch, the last 503 sent {max(refused):.2f}s "
        f"after it (bound {RECOVERY_BOUND:.0f}s)"
    )
    # /ready: 503 while there was no primary, 200 again at the end, for both APIs.
    for app in ("tasks-api", "stats-api"):
        during = [s for at, name, s in watch.seen if name == app and down < at < switched]
        assert during, app
        assert 200 not in during, (app, during)
        assert [s for at, name, s in watch.seen if name == app][-1] == 200, app
