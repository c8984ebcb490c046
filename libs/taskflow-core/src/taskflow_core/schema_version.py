"""Where a database's schema stands against this image's migrations, and the migration lock.

`schema_status` is what `/ready` and the migrate command read; `MIGRATION_LOCK_KEY` is the
advisory lock alembic/env.py takes around every upgrade.
"""

from __future__ import annotations

import enum
import functools
import os
from collections.abc import Collection
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection

# pg_advisory_lock key of every schema migration: the bytes of "taskflow" as a positive bigint.
MIGRATION_LOCK_KEY = int.from_bytes(b"taskflow", "big")

_CURRENT_REVISIONS = text("SELECT version_num FROM alembic_version")
_VERSION_TABLE_EXISTS = text("SELECT to_regclass('alembic_version') IS NOT NULL")


class SchemaStatus(enum.StrEnum):
    EMPTY = "empty"  # never migrated
    BEHIND = "behind"  # this image has migrations the database lacks
    AT_HEAD = "at_head"
    AHEAD = "ahead"  # migrated by a newer image: a numbered revision this image does not know


def alembic_ini_path() -> Path:
    """alembic.ini: $ALEMBIC_CONFIG, else the repo root above this package (/app in images)."""
    given = os.environ.get("ALEMBIC_CONFIG")
    if given:
        return Path(given)
    # This file sits at <root>/libs/taskflow-core/src/taskflow_core/schema_version.py.
    candidates = [
        Path(__file__).resolve().parents[4] / "alembic.ini",
        Path.cwd() / "alembic.ini",
        Path("/app/alembic.ini"),
    ]
    return next((path for path in candidates if path.is_file()), candidates[0])


def alembic_config(path: Path | None = None) -> Config:
    ini = path or alembic_ini_path()
    if not ini.is_file():
        raise FileNotFoundError(f"alembic.ini not found at {ini} (set ALEMBIC_CONFIG)")
    return Config(str(ini))


@functools.cache
def _script_directory(ini: Path) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(ini))


def script_directory() -> ScriptDirectory:
    return _script_directory(alembic_ini_path())


def head_revision() -> str:
    """The single head revision of this image's migrations."""
    head = script_directory().get_current_head()
    if head is None:
        raise RuntimeError("alembic/versions holds no revision")
    return head


def classify(revisions: Collection[str], script: ScriptDirectory | None = None) -> SchemaStatus:
    """The status of a database whose alembic_version holds `revisions`."""
    if not revisions:
        return SchemaStatus.EMPTY
    scripts = script or script_directory()
    head = scripts.get_current_head()
    if head is None:
        raise RuntimeError("alembic/versions holds no revision")
    if set(revisions) == {head}:
        return SchemaStatus.AT_HEAD
    known = {revision.revision for revision in scripts.walk_revisions()}
    unknown = [revision for revision in revisions if revision not in known]
    if unknown and all(_newer(revision, head) for revision in unknown):
        return SchemaStatus.AHEAD
    # Known but older, or unknown and not numbered after our head: not ready for this image.
    return SchemaStatus.BEHIND


def _newer(revision: str, head: str) -> bool:
    return revision.isdigit() and head.isdigit() and int(revision) > int(head)


async def schema_status(conn: AsyncConnection) -> SchemaStatus:
    """Read alembic_version on `conn` (no transaction left open by the caller's choice)."""
    return classify(await current_revisions(conn))


async def current_revisions(conn: AsyncConnection) -> list[str]:
    """The revisions in alembic_version (none for a database never migrated)."""
    if not (await conn.execute(_VERSION_TABLE_EXISTS)).scalar_one():
        return []
    return sorted((await conn.execute(_CURRENT_REVISIONS)).scalars().all())


def schema_status_sync(conn: Connection, script: ScriptDirectory | None = None) -> SchemaStatus:
    """schema_status for a synchronous connection (alembic's env.py, with its own scripts)."""
    if not conn.execute(_VERSION_TABLE_EXISTS).scalar_one():
        return SchemaStatus.EMPTY
    return classify(conn.execute(_CURRENT_REVISIONS).scalars().all(), script)


def lock_holder_query() -> str:
    """SQL a person can run to see which session holds the migration lock."""
    high, low = MIGRATION_LOCK_KEY >> 32, MIGRATION_LOCK_KEY & 0xFFFFFFFF
    return (
        "SELECT pid, application_name, backend_start FROM pg_locks JOIN pg_stat_activity "
        f"USING (pid) WHERE locktype = 'advisory' AND classid = {high} AND objid = {low} "
        "AND granted"
    )
