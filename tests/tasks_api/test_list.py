"""GET /tasks: filters, q, created range, every sort with ties, keyset cursor walks, bad values."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from taskflow_core.problems import ProblemKind

from tests.support.apiserver import in_process
from tests.support.problems import assert_problem, field_names

Client = AsyncTestClient[Litestar]
BASE = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PRIORITY_RANK = {"low": 0, "medium": 1, "high": 2}


def insert(database_url: str, rows: list[dict[str, Any]]) -> None:
    """Rows with chosen created_at values (the API cannot set them) straight into PostgreSQL."""
    with psycopg.connect(database_url) as conn:
        for row in rows:
            conn.execute(
                "INSERT INTO tasks (title, completed, priority, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                (
                    row["title"],
                    row["completed"],
                    row["priority"],
                    row["created_at"],
                    row["created_at"],
                ),
            )


def mixed_rows(count: int) -> list[dict[str, Any]]:
    """Many ties: three rows share each created_at, priorities and completion cycle."""
    priorities = itertools.cycle(["low", "medium", "high", "medium", "high"])
    return [
        {
            "title": f"Task {n:03d}",
            "completed": n % 3 == 0,
            "priority": next(priorities),
            "created_at": BASE + timedelta(seconds=n // 3),
        }
        for n in range(count)
    ]


async def walk(client: Client, query: str, cursor: str | None = None) -> list[dict[str, Any]]:
    """Follow next_cursor to the end (from `cursor` if given); bounded by a generous page count."""
    items: list[dict[str, Any]] = []
    url = f"/tasks?{query}" if cursor is None else f"/tasks?{query}&cursor={cursor}"
    for _ in range(200):
        response = await client.get(url)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"items", "next_cursor"}
        items.extend(page["items"])
        if page["next_cursor"] is None:
            return items
        url = f"/tasks?{query}&cursor={page['next_cursor']}"
    pytest.fail("cursor walk did not end")


def sort_key(sort: str) -> Callable[[dict[str, Any]], tuple[Any, int]]:
    field = sort.lstrip("-")
    if field == "priority":
        return lambda task: (PRIORITY_RANK[task["priority"]], task["id"])
    return lambda task: (task["created_at"], task["id"])


async def test_empty_list_has_the_envelope_and_no_cursor(client: Client) -> None:
    response = await client.get("/tasks")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"items": [], "next_cursor": None}


async def test_default_page_is_50_newest_first(client: Client, database_url: str) -> None:
    insert(database_url, mixed_rows(60))
    page = (await client.get("/tasks")).json()
    assert len(page["items"]) == 50
    assert page["next_cursor"] is not None
    keys = [(t["created_at"], t["id"]) for t in page["items"]]
    assert keys == sorted(keys, reverse=True)


@pytest.mark.parametrize("sort", ["created_at", "-created_at", "priority", "-priority"])
@pytest.mark.parametrize("limit", [1, 7, 100])
async def test_cursor_walk_returns_every_row_once_in_sort_order(
    client: Client, database_url: str, sort: str, limit: int
) -> None:
    insert(database_url, mixed_rows(45))
    items = await walk(client, f"sort={sort}&limit={limit}")
    ids = [task["id"] for task in items]
    assert len(ids) == len(set(ids)) == 45
    expected = sorted(items, key=sort_key(sort), reverse=sort.startswith("-"))
    assert items == expected  # ties broken by id in the sort's direction


async def test_cursor_walk_with_filters_and_a_concurrent_insert(
    client: Client, database_url: str
) -> None:
    insert(database_url, mixed_rows(90))
    first = (await client.get("/tasks?priority=high&completed=false&limit=5")).json()
    # A newer row arriving mid-walk must not shift the pages (keyset, not offset).
    await client.post("/tasks", json={"title": "newcomer", "priority": "high"})
    rest = await walk(client, "priority=high&completed=false&limit=5", first["next_cursor"])
    items = first["items"] + rest
    ids = [task["id"] for task in items]
    assert len(ids) == len(set(ids))
    expected = [r for r in mixed_rows(90) if r["priority"] == "high" and not r["completed"]]
    assert len(items) == len(expected)
    assert all(t["priority"] == "high" and t["completed"] is False for t in items)


async def test_last_page_exactly_full_has_null_cursor(client: Client, database_url: str) -> None:
    insert(database_url, mixed_rows(10))
    first = (await client.get("/tasks?limit=5")).json()
    second = (await client.get(f"/tasks?limit=5&cursor={first['next_cursor']}")).json()
    assert len(second["items"]) == 5
    assert second["next_cursor"] is None


async def test_priority_is_repeatable_and_completed_filters(
    client: Client, database_url: str
) -> None:
    rows = mixed_rows(30)
    insert(database_url, rows)

    async def titles(query: str) -> set[str]:
        return {t["title"] for t in await walk(client, query)}

    assert await titles("priority=high") == {r["title"] for r in rows if r["priority"] == "high"}
    assert await titles("priority=high&priority=low") == {
        r["title"] for r in rows if r["priority"] in {"high", "low"}
    }
    assert await titles("completed=true") == {r["title"] for r in rows if r["completed"]}
    assert await titles("completed=false&priority=medium") == {
        r["title"] for r in rows if not r["completed"] and r["priority"] == "medium"
    }


async def test_q_is_a_case_insensitive_substring_with_wildcards_escaped(
    client: Client, database_url: str
) -> None:
    titles = ["Buy MILK", "milkshake", "Silk", "100% done", "1000 done", "snake_case", "snakeXcase",
              "back\\slash", "backslash"]  # fmt: skip
    insert(database_url, [
        {"title": t, "completed": False, "priority": "low", "created_at": BASE} for t in titles
    ])  # fmt: skip

    async def found(q: str) -> set[str]:
        response = await client.get("/tasks", params={"q": q, "limit": 100})
        assert response.status_code == 200
        return {t["title"] for t in response.json()["items"]}

    assert await found("milk") == {"Buy MILK", "milkshake"}
    assert await found("MiLk") == {"Buy MILK", "milkshake"}
    assert await found("%") == {"100% done"}
    assert await found("0%") == {"100% done"}
    assert await found("_") == {"snake_case"}
    assert await found("\\") == {"back\\slash"}
    assert await found("nothing") == set()


async def test_created_range_is_exclusive_and_accepts_offsets(
    client: Client, database_url: str
) -> None:
    insert(database_url, [
        {"title": f"t{n}", "completed": False, "priority": "low",
         "created_at": BASE + timedelta(minutes=n)}
        for n in range(5)
    ])  # fmt: skip

    async def titles(**params: str) -> list[str]:
        response = await client.get("/tasks", params={**params, "sort": "created_at"})
        assert response.status_code == 200, response.text
        return [t["title"] for t in response.json()["items"]]

    after = (BASE + timedelta(minutes=1)).isoformat()
    before = (BASE + timedelta(minutes=4)).isoformat()
    assert await titles(created_after=after) == ["t2", "t3", "t4"]
    assert await titles(created_before=before) == ["t0", "t1", "t2", "t3"]
    assert await titles(created_after=after, created_before=before) == ["t2", "t3"]
    # The same instant written with another offset, and with Z.
    shifted = (BASE + timedelta(minutes=1)).astimezone(timezone(timedelta(hours=2))).isoformat()
    assert await titles(created_after=shifted) == ["t2", "t3", "t4"]
    zulu = (BASE + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert await titles(created_after=zulu) == ["t2", "t3", "t4"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("priority=urgent", "priority"),
        ("priority=high&priority=nope", "priority"),
        ("completed=yes", "completed"),
        ("completed=1", "completed"),
        ("completed=TRUE", "completed"),
        ("sort=title", "sort"),
        ("sort=-id", "sort"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=-5", "limit"),
        ("limit=abc", "limit"),
        ("limit=1.0", "limit"),
        ("limit=1e1", "limit"),
        ("created_after=yesterday", "created_after"),
        ("created_after=2025-03-01", "created_after"),
        ("created_after=2025-03-01T12:00:00", "created_after"),  # no offset
        ("created_before=2025-03-01T12:00:00", "created_before"),
        ("created_after=9999-12-31T23:59:59-23:59", "created_after"),  # past year 9999 in UTC
        ("created_before=0001-01-01T00:00:00%2B14:00", "created_before"),  # before year 1 in UTC
        ("cursor=", "cursor"),
        ("q=a%00b", "q"),
        ("cursor=not-a-cursor", "cursor"),
    ],
)
async def test_malformed_values_are_400_naming_the_field(
    client: Client, query: str, field: str
) -> None:
    response = await client.get(f"/tasks?{query}")
    assert field in field_names(assert_problem(response, 400, ProblemKind.VALIDATION))


async def test_limit_bounds_are_inclusive(client: Client, database_url: str) -> None:
    insert(database_url, mixed_rows(120))
    assert len((await client.get("/tasks?limit=1")).json()["items"]) == 1
    assert len((await client.get("/tasks?limit=100")).json()["items"]) == 100


async def test_unknown_parameter_names_are_ignored(client: Client, database_url: str) -> None:
    insert(database_url, mixed_rows(3))
    response = await client.get("/tasks?colour=blue&page=2&Priority=zzz")
    assert response.status_code == 200
    assert len(response.json()["items"]) == 3


def forge(payload: object) -> str:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "cursor",
    [
        forge(b"\xff\xfe not json"),
        forge([1, 2]),
        forge({"s": "-created_at"}),
        forge({"s": "-created_at", "k": ["2025-03-01T12:00:00+00:00"]}),
        forge({"s": "-created_at", "k": ["yesterday", 5]}),
        forge({"s": "-created_at", "k": ["2025-03-01T12:00:00", 5]}),  # naive
        forge({"s": "-created_at", "k": ["2025-03-01T12:00:00+00:00", "5"]}),
        forge({"s": "-created_at", "k": ["2025-03-01T12:00:00+00:00", 0]}),
        forge({"s": "-created_at", "k": ["2025-03-01T12:00:00+00:00", 5], "x": 1}),
        forge({"s": "-created_at", "k": ["high", 5]}),
        forge({"s": "-priority", "k": ["urgent", 5]}),
        forge({"s": "title", "k": ["a", 5]}),
        forge({"s": "-created_at", "k": ["2025-03-01T12:00:00+00:00", 2**63]}),  # past bigint
        forge({"s": "-created_at", "k": ["9999-12-31T23:59:59-23:59", 5]}),  # past year 9999
        forge({"s": "-created_at", "k": ["0001-01-01T00:00:00+14:00", 5]}),  # before year 1
        "%%%",
        "A" * 600,
    ],
)
async def test_forged_cursors_are_400(client: Client, cursor: str) -> None:
    response = await client.get("/tasks", params={"cursor": cursor})
    assert field_names(assert_problem(response, 400, ProblemKind.VALIDATION)) == {"cursor"}


async def test_a_cursor_from_another_sort_is_400(client: Client, database_url: str) -> None:
    insert(database_url, mixed_rows(10))
    cursor = (await client.get("/tasks?limit=2&sort=priority")).json()["next_cursor"]
    assert (await client.get(f"/tasks?limit=2&sort=priority&cursor={cursor}")).status_code == 200
    for other in ["-priority", "created_at", "-created_at"]:
        response = await client.get(f"/tasks?limit=2&sort={other}&cursor={cursor}")
        assert field_names(assert_problem(response, 400, ProblemKind.VALIDATION)) == {"cursor"}


async def test_timestamps_are_utc_whatever_the_database_time_zone(database_url: str) -> None:
    name = database_url.rpartition("/")[2]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE \"{name}\" SET timezone TO 'Asia/Kolkata'")
    moment = datetime(2025, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    insert(database_url, [
        {"title": "in India", "completed": False, "priority": "low", "created_at": moment}
    ])  # fmt: skip
    async with in_process(database_url) as client:
        listed = (await client.get("/tasks")).json()["items"]
        created = (await client.post("/tasks", json={"title": "now"})).json()
        fetched = (await client.get(f"/tasks/{listed[0]['id']}")).json()
    assert [t["created_at"] for t in listed] == ["2025-03-01T06:30:00Z"]
    assert fetched["updated_at"] == "2025-03-01T06:30:00Z"
    assert created["created_at"].endswith("Z")
    assert created["updated_at"].endswith("Z")
