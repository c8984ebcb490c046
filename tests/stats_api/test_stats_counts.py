"""task_counts stays exact under concurrent writers in separate OS processes: creates, updates
that move tasks between buckets, title-only updates, deletes, and rolled-back transactions.

Every figure must equal a fresh count(*) at the end, and also in every snapshot taken while the
writers run (the triggers write the counts in the writing transaction); no writer may hit a
deadlock; and /stats, read through the cache while they write, equals count(*) at the end.
Run as `python -m tests.stats_api.test_stats_counts URL SECONDS SEED` for one writer.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.support.api_process import running
from tests.support.task_rows import counted_stats

REPO = Path(__file__).resolve().parents[2]
WRITERS = 4
SECONDS = 4.0
PRIORITIES = ("low", "medium", "high")

Bucket = tuple[str, bool]


def _random_bucket(rng: random.Random) -> Bucket:
    return rng.choice(PRIORITIES), rng.random() < 0.5


def _write_once(conn: psycopg.Connection, rng: random.Random, top_id: int) -> int:
    """One writing statement of a random kind; returns the highest task id it created."""
    kind = rng.choices(
        ["create", "create_many", "move", "retitle", "delete"], weights=[30, 10, 30, 10, 20]
    )[0]
    target = rng.randint(1, max(top_id, 1))
    if kind == "create":
        priority, completed = _random_bucket(rng)
        row = conn.execute(
            "INSERT INTO tasks (title, priority, completed) VALUES ('w', %s, %s) RETURNING id",
            (priority, completed),
        ).fetchone()
        return int(row[0]) if row else top_id
    if kind == "create_many":
        buckets = [_random_bucket(rng) for _ in range(rng.randint(2, 6))]
        rows = conn.execute(
            "INSERT INTO tasks (title, priority, completed) "
            "SELECT 'w', p::task_priority, c FROM unnest(%s::text[], %s::bool[]) AS b(p, c) "
            "RETURNING id",
            ([p for p, _ in buckets], [c for _, c in buckets]),
        ).fetchall()
        return max([top_id, *(int(r[0]) for r in rows)])
    if kind == "move":
        priority, completed = _random_bucket(rng)
        conn.execute(
            "UPDATE tasks SET priority = %s, completed = %s WHERE id = %s",
            (priority, completed, target),
        )
    elif kind == "retitle":
        conn.execute("UPDATE tasks SET title = 'renamed' WHERE id = %s", (target,))
    else:
        conn.execute("DELETE FROM tasks WHERE id = %s", (target,))
    return top_id


def write_for(url: str, seconds: float, seed: int) -> dict[str, object]:
    """One writer process: single-statement transactions, one in ten rolled back."""
    rng = random.Random(seed)
    stats: Counter[str] = Counter()
    errors: list[str] = []
    deadline = time.monotonic() + seconds
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT coalesce(max(id), 1) FROM tasks").fetchone()
        top_id = int(row[0]) if row else 1
        conn.commit()
        while time.monotonic() < deadline:
            rollback = rng.random() < 0.1
            try:
                created = _write_once(conn, rng, top_id)
                if rollback:
                    conn.rollback()
                    stats["rolled_back"] += 1
                else:
                    conn.commit()
                    top_id = created
                    stats["committed"] += 1
            except psycopg.errors.DeadlockDetected as exc:
                conn.rollback()
                stats["deadlocks"] += 1
                errors.append(str(exc).splitlines()[0])
            except psycopg.Error as exc:
                conn.rollback()
                errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    return {**stats, "errors": errors}


def _counts_snapshot(conn: psycopg.Connection) -> tuple[list[tuple[object, ...]], ...]:
    """Kept counts and fresh counts read in one REPEATABLE READ snapshot."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        kept = conn.execute(
            "SELECT priority, completed, total FROM task_counts ORDER BY 1, 2"
        ).fetchall()
        fresh = conn.execute(
            "SELECT b.priority, b.completed, count(t.id) FROM task_counts AS b "
            "LEFT JOIN tasks AS t USING (priority, completed) GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
    return kept, fresh


def test_counts_stay_exact_under_concurrent_writer_processes(
    database_url: str, redis_url: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO tasks (title, priority, completed) "
            "SELECT 'seed', (ARRAY['low','medium','high'])[1 + i % 3]::task_priority, i % 2 = 0 "
            "FROM generate_series(1, 300) AS i"
        )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with running("stats_api", database_url, redis_url) as stats_api:
        reports, snapshots = _write_concurrently(database_url, env, stats_api.url)
        for _ in range(2):  # the miss, then the cached copy: each equals a fresh count(*)
            figures = httpx.get(f"{stats_api.url}/stats", timeout=5).json()
            truth = counted_stats(database_url)
            assert figures == {**truth, "completion_rate": pytest.approx(truth["completion_rate"])}
    assert snapshots > 5
    assert [report["errors"] for report in reports] == [[]] * WRITERS
    assert all(report.get("deadlocks", 0) == 0 for report in reports)
    # The writers really did commit and roll back plenty of work.
    assert sum(int(report.get("committed", 0)) for report in reports) > 200
    assert sum(int(report.get("rolled_back", 0)) for report in reports) > 10


def _write_concurrently(
    database_url: str, env: dict[str, str], stats_url: str
) -> tuple[list[dict[str, Any]], int]:
    """WRITERS writer processes; counts checked in every snapshot, /stats read meanwhile."""
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.stats_api.test_stats_counts",
                database_url,
                str(SECONDS),
                str(seed),
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(WRITERS)
    ]
    snapshots = 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        deadline = time.monotonic() + SECONDS + 60
        while any(w.poll() is None for w in writers) and time.monotonic() < deadline:
            kept, fresh = _counts_snapshot(conn)
            assert kept == fresh  # exact in every snapshot, not only at the end
            # Fills the cache with entries of generations the writers then leave behind.
            assert httpx.get(f"{stats_url}/stats", timeout=5).status_code == 200
            snapshots += 1
            time.sleep(0.05)
        reports = []
        for writer in writers:
            stdout, stderr = writer.communicate(timeout=60)
            assert writer.returncode == 0, stderr
            reports.append(json.loads(stdout))
        kept, fresh = _counts_snapshot(conn)
    assert kept == fresh
    return reports, snapshots


if __name__ == "__main__":
    print(json.dumps(write_for(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]))))
