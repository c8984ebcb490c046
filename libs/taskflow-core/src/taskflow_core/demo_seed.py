"""Demo tasks with the lab's mix, inserted once per database (the marker commits with them)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

DEMO_MARKER = "demo_tasks"
SPREAD_SECONDS = 30 * 24 * 3600  # created_at spans the last 30 days, so sorting means something

# The first writer of the marker owns the seed; a concurrent one waits on its key, then skips.
_CLAIM = text(
    "INSERT INTO seed_marker (name, rows) VALUES (:name, :rows) "
    "ON CONFLICT (name) DO NOTHING RETURNING name"
)

# Residues of i*37 and i*61+17 modulo 100 run through 0..99 once per 100 rows: every 100 tasks
# hold exactly 20 low, 50 medium, 30 high and 30 completed, in a scattered order.
_INSERT = text(
    """
INSERT INTO tasks (title, description, completed, priority, created_at, updated_at)
SELECT
    (ARRAY['Review', 'Write', 'Fix', 'Plan', 'Refactor', 'Test', 'Document', 'Deploy',
           'Design', 'Triage'])[1 + i % 10]
    || ' ' ||
    (ARRAY['the login page', 'the billing report', 'the onboarding flow', 'API rate limits',
           'the search index', 'nightly backups', 'the release notes', 'the cache layer',
           'the mobile layout', 'error budgets', 'the data export', 'team OKRs']
    )[1 + (i / 10) % 12],
    CASE WHEN i % 3 = 0 THEN NULL ELSE 'Demo task number ' || i END,
    (i * 61 + 17) % 100 < 30,
    (CASE
        WHEN (i * 37) % 100 < 20 THEN 'low'
        WHEN (i * 37) % 100 < 70 THEN 'medium'
        ELSE 'high'
    END)::task_priority,
    at.created,
    at.created
FROM generate_series(1, CAST(:count AS integer)) AS i
CROSS JOIN LATERAL (
    SELECT now() - make_interval(
        secs => (CAST(:count AS integer) - i) * CAST(:spread AS float8) / CAST(:count AS integer)
                + (i::bigint * 7919) % 600
    ) AS created
) AS at
"""
)


async def seed_demo_tasks(conn: AsyncConnection, count: int) -> bool:
    """Insert `count` demo tasks unless this database was seeded before; True when it did.

    `conn` must not be inside a transaction: the marker and the tasks commit together here.
    """
    if count <= 0:
        return False
    async with conn.begin():
        # A concurrent seeder holds the marker's key until it commits; wait for it, boundedly.
        await conn.execute(text("SET LOCAL lock_timeout = '120s'"))
        claimed = (await conn.execute(_CLAIM, {"name": DEMO_MARKER, "rows": count})).first()
        if claimed is None:
            return False
        await conn.execute(_INSERT, {"count": count, "spread": SPREAD_SECONDS})
    return True
