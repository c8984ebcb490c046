"""/metrics of a real server: the request pool's connections, waits and timeouts, the process
collector, build info and the schema revision found."""

from __future__ import annotations

import threading

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families
from taskflow_core.schema_version import head_revision

from tests.support.apiserver import api_server, service_env

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def test_a_pool_held_by_a_blocked_request_shows_in_use_waits_and_timeouts(
    database_url: str,
) -> None:
    env = service_env(
        database_url, DB_POOL_SIZE="1", DB_MAX_OVERFLOW="0", DB_POOL_TIMEOUT="0.3",
        TASKFLOW_REVISION="abc1234",
    )  # fmt: skip
    service = {"app_name": "tasks-api"}
    with api_server("tasks_api", env) as server, httpx.Client(base_url=server.base_url) as client:
        assert client.get("/ready").status_code == 200
        idle = samples(client.get("/metrics").text)
        with psycopg.connect(database_url) as locker:
            # The one pooled connection blocks on this lock; the next request waits, then 503.
            locker.execute("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE")
            blocked = threading.Thread(
                target=client.get, args=("/tasks/1",), kwargs={"timeout": 30}
            )
            blocked.start()
            try:
                _wait_in_use(client)
                assert client.get("/tasks/2").status_code == 503
                busy = samples(client.get("/metrics").text)
            finally:
                locker.rollback()
            blocked.join(30)
        after = samples(client.get("/metrics").text)

    assert value(idle, "taskflow_db_pool_max_connections", **service) == 1
    assert value(idle, "taskflow_db_pool_waits_total", **service) == 0
    assert value(busy, "taskflow_db_pool_connections", **service, state="in_use") == 1
    assert value(busy, "taskflow_db_pool_connections", **service, state="overflow") == 0
    assert value(busy, "taskflow_db_pool_waits_total", **service) == 1
    assert value(busy, "taskflow_db_pool_timeouts_total", **service) == 1
    assert value(after, "taskflow_db_pool_connections", **service, state="in_use") == 0
    assert value(after, "taskflow_db_pool_connections", **service, state="idle") == 1

    build = value(
        after, "taskflow_build_info", service="tasks-api", version="0.1.0", revision="abc1234"
    )
    assert build == 1
    schema = value(
        after, "taskflow_schema_revision_info", service="tasks-api", revision=head_revision()
    )
    assert schema == 1
    assert value(after, "process_cpu_seconds_total") > 0
    assert value(after, "process_resident_memory_bytes") > 10 * 2**20


def _wait_in_use(client: httpx.Client) -> None:
    for _ in range(100):
        text = client.get("/metrics").text
        if 'taskflow_db_pool_connections{app_name="tasks-api",state="in_use"} 1.0' in text:
            return
        threading.Event().wait(0.05)
    raise AssertionError("the blocked request never held the pool's connection")
