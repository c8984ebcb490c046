"""`Idempotency-Key` on POST /tasks, through real HTTP to a real tasks-api on real PostgreSQL:
retries replay the first 201, another body is 422, concurrent retries make one row, keys expire
after 24 hours and are purged."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from taskflow_core.cache import Cache
from taskflow_core.engine import RequestPool
from taskflow_core.problems import ProblemKind, ValidationFailed
from taskflow_core.settings import CacheSettings, PoolSettings
from tasks_api import idempotency
from tasks_api.schemas import TaskCreate
from tasks_api.service import TaskService

from devstack.databases import Postgres
from tests.support.apiserver import ApiServer, api_server, service_env
from tests.support.problems import assert_problem, field_names

HEADER = "Idempotency-Key"


@pytest.fixture(scope="module")
def shared_database_url(postgres: Postgres, migrated_template: str) -> str:
    """One database for the module's HTTP tests: each uses titles and keys of its own."""
    return postgres.create_database("taskflow_idempotency", template=migrated_template)


@pytest.fixture(scope="module")
def server(shared_database_url: str) -> Iterator[ApiServer]:
    with api_server("tasks_api", service_env(shared_database_url)) as running:
        yield running


@pytest.fixture
def database_url(shared_database_url: str) -> str:
    return shared_database_url


def new_key() -> str:
    return f'"{uuid.uuid4()}"'


def count(database_url: str, sql: str, *params: object) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def tasks_titled(database_url: str, title: str) -> int:
    return count(database_url, "SELECT count(*) FROM tasks WHERE title = %s", title)


def post(
    server: ApiServer, body: object, key: str | None, raw: bytes | None = None
) -> httpx.Response:
    headers = {"Content-Type": "application/json", **({HEADER: key} if key else {})}
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(f"{server.base_url}/tasks", content=content, headers=headers, timeout=20)


def test_a_retry_with_the_same_key_and_body_replays_the_first_201(
    server: ApiServer, database_url: str
) -> None:
    key = new_key()
    first = post(server, {"title": "pay rent", "priority": "high"}, key)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    # The same request again, formatted differently: the same body once decoded.
    again = post(server, None, key, raw=b'{ "priority":"high",  "title":"pay rent" }')
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    for header in ("etag", "location"):
        assert again.headers[header] == first.headers[header]
    assert tasks_titled(database_url, "pay rent") == 1
    # Replayed as first answered, even after the task changed since.
    task = first.json()
    patched = httpx.patch(
        f"{server.base_url}/tasks/{task['id']}", json={"completed": True}, timeout=10
    )
    assert patched.status_code == 200
    assert post(server, {"title": "pay rent", "priority": "high"}, key).json() == task


def test_quoted_and_bare_forms_name_the_same_key(server: ApiServer, database_url: str) -> None:
    token = str(uuid.uuid4())
    first = post(server, {"title": "bare"}, token)
    quoted = post(server, {"title": "bare"}, f'"{token}"')
    assert first.status_code == quoted.status_code == 201
    assert quoted.headers["idempotent-replayed"] == "true"
    assert tasks_titled(database_url, "bare") == 1


def test_without_a_key_every_post_creates(server: ApiServer, database_url: str) -> None:
    for _ in range(2):
        assert post(server, {"title": "unkeyed"}, None).status_code == 201
    assert tasks_titled(database_url, "unkeyed") == 2


def test_the_same_key_with_another_body_is_422(server: ApiServer, database_url: str) -> None:
    key = new_key()
    assert post(server, {"title": "first body"}, key).status_code == 201
    reused = post(server, {"title": "second body"}, key)
    body = assert_problem(reused, 422, ProblemKind.IDEMPOTENCY_KEY_REUSED)
    assert "another request" in body["detail"]
    assert tasks_titled(database_url, "second body") == 0
    # Only the body's meaning counts: a field with its default value is the same request.
    same = post(server, {"title": "first body", "priority": "medium"}, key)
    assert same.status_code == 201
    assert same.headers["idempotent-replayed"] == "true"


async def test_concurrent_retries_create_exactly_one_row(
    server: ApiServer, database_url: str
) -> None:
    key = new_key()
    limits = httpx.Limits(max_connections=12)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=20, limits=limits) as client:
        responses = await asyncio.gather(
            *(
                client.post("/tasks", json={"title": "racing retries"}, headers={HEADER: key})
                for _ in range(12)
            )
        )
    assert [r.status_code for r in responses] == [201] * 12, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 11
    assert tasks_titled(database_url, "racing retries") == 1
    keys = "SELECT count(*) FROM idempotency_keys WHERE key = %s"
    assert count(database_url, keys, key.strip('"')) == 1


@pytest.mark.parametrize(
    "value",
    [
        '"unterminated',
        '""',
        '"' + "k" * 256 + '"',
        "two words",
        '"caf\u00e9"',
        "a,b",
        '"x";param=1',
    ],
)
def test_a_malformed_key_is_400_naming_the_header(
    server: ApiServer, database_url: str, value: str
) -> None:
    response = httpx.post(
        f"{server.base_url}/tasks",
        json={"title": "never created"},
        headers=[(HEADER.encode(), value.encode())],
        timeout=10,
    )
    assert field_names(assert_problem(response, 400, ProblemKind.VALIDATION)) == {HEADER}
    assert tasks_titled(database_url, "never created") == 0


def test_a_key_given_twice_is_400(server: ApiServer) -> None:
    headers = [(HEADER, '"a"'), (HEADER, '"b"')]
    response = httpx.post(
        f"{server.base_url}/tasks", json={"title": "twice"}, headers=headers, timeout=10
    )
    assert field_names(assert_problem(response, 400, ProblemKind.VALIDATION)) == {HEADER}


def test_a_key_older_than_24_hours_is_a_new_key(server: ApiServer, database_url: str) -> None:
    key = new_key()
    assert post(server, {"title": "yesterday"}, key).status_code == 201
    backdate(database_url, key.strip('"'), hours=24, seconds=1)
    today = post(server, {"title": "today"}, key)
    assert today.status_code == 201, today.text
    assert "idempotent-replayed" not in today.headers
    assert tasks_titled(database_url, "today") == 1
    # The key now belongs to the new request.
    assert post(server, {"title": "today"}, key).headers["idempotent-replayed"] == "true"


def backdate(database_url: str, pattern: str, *, hours: int, seconds: int = 0) -> None:
    """Make the keys LIKE `pattern` look `hours` (+ `seconds`) old."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE idempotency_keys SET created_at = now() - make_interval(hours => %s, "
            "secs => %s) WHERE key LIKE %s",
            (hours, seconds, pattern),
        )


async def test_expired_keys_are_purged_in_the_background(
    postgres: Postgres, migrated_template: str
) -> None:
    database_url = postgres.create_database("taskflow_purge", template=migrated_template)
    pool = RequestPool(database_url, application_name="tasks-api-test", pool=PoolSettings())
    await pool.open()
    try:
        service = TaskService(pool, Cache.from_settings(CacheSettings(), "tasks-api"))
        for n in range(3):
            await service.create_once(TaskCreate(title=f"old {n}"), f"old-{n}")
        backdate(database_url, "old-%", hours=25)
        await service.create_once(TaskCreate(title="recent"), "recent")
        assert count(database_url, "SELECT count(*) FROM idempotency_keys") == 4

        # The first keyed create after PURGE_INTERVAL starts the purge; it never delays it.
        service._next_purge = 0.0
        await service.create_once(TaskCreate(title="next"), "next")
        assert service._purging is not None
        await service._purging
        keys = count(database_url, "SELECT count(*) FROM idempotency_keys")
        assert keys == 2  # "recent" and "next"; the three expired ones are gone
        assert service._next_purge > 0
        assert await service.purge_expired_keys() == 0
    finally:
        await pool.close()


def test_the_openapi_document_describes_the_header_and_the_422(server: ApiServer) -> None:
    document = httpx.get(f"{server.base_url}/schema/openapi.json", timeout=10).json()
    operation = document["paths"]["/tasks"]["post"]
    [parameter] = [p for p in operation["parameters"] if p["name"] == HEADER]
    assert parameter["in"] == "header"
    assert parameter["required"] is False
    assert "24 hours" in parameter["description"]
    assert operation["responses"]["422"]["content"]["application/problem+json"]
    assert idempotency.LIFETIME_HOURS == 24


@pytest.mark.parametrize(
    "value",
    [
        '"a"',
        "a",
        '"' + "k" * 255 + '"',
        "k" * 255,
        "k" * 256,
        '"' + "k" * 256 + '"',
        '"' + "\\\\" * 255 + '"',
        '"with space"',
        '"esc\\"aped"',
        '""',
        '"a',
        "a b",
        "a;b",
        '"caf\u00e9"',
    ],
)
def test_the_documented_pattern_is_what_the_server_accepts(value: str) -> None:
    documented = re.fullmatch(idempotency.KEY_PATTERN, value) is not None
    try:
        key = idempotency.parse_key([value])
    except ValidationFailed:
        accepted = False
    else:
        accepted = key is not None and 1 <= len(key) <= 255
    assert documented == accepted, value
