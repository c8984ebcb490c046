"""Alembic environment: async (asyncpg), every upgrade serialised by one PostgreSQL advisory lock.

`alembic upgrade head` from a laptop and `taskflow-migrate` in any number of initContainers take
pg_advisory_lock(MIGRATION_LOCK_KEY) on the very connection that then migrates, waiting at most
`-x lock_timeout` (default 120s); all pending revisions then run in one transaction with a short
DDL lock_timeout (`-x ddl_lock_timeout`, default 5s), and the lock is released.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterable
from logging.config import fileConfig

from alembic import context
from alembic.migration import MigrationContext
from alembic.operations.ops import MigrationScript
from alembic.util import CommandError
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from taskflow_core.engine import create_engine
from taskflow_core.models import Base
from taskflow_core.schema_version import (
    MIGRATION_LOCK_KEY,
    SchemaStatus,
    lock_holder_query,
    schema_status_sync,
)
from taskflow_core.settings import DatabaseSettings, load_or_exit

config = context.config
target_metadata = Base.metadata

DEFAULT_LOCK_TIMEOUT = "120s"
DEFAULT_DDL_LOCK_TIMEOUT = "5s"
LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of "canceling statement due to lock timeout"
_DURATION = re.compile(r"\d+(ms|s|min)?")

if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _duration_option(name: str, default: str) -> str:
    """A PostgreSQL duration from config.attributes, then `-x name=...`, then the default."""
    given = config.attributes.get(name) or context.get_x_argument(as_dictionary=True).get(name)
    value = str(given or default).strip()
    if not _DURATION.fullmatch(value):
        raise CommandError(f"-x {name} must look like 120s, 500ms or 2min, got {value!r}")
    return f"{value}s" if value.isdigit() else value


def _database_url() -> str:
    given = config.attributes.get("database_url")
    if given:
        return str(given)
    return load_or_exit("alembic", DatabaseSettings.from_env).url


def _sqlstate(exc: DBAPIError) -> str | None:
    for source in (exc.orig, getattr(exc.orig, "__cause__", None)):
        code = getattr(source, "sqlstate", None) or getattr(source, "pgcode", None)
        if code:
            return str(code)
    return None


def _set_lock_timeout(conn: Connection, value: str) -> None:
    conn.execute(text("SELECT set_config('lock_timeout', :value, false)"), {"value": value})


def _take_lock(conn: Connection) -> None:
    wait = _duration_option("lock_timeout", DEFAULT_LOCK_TIMEOUT)
    ddl_wait = _duration_option("ddl_lock_timeout", DEFAULT_DDL_LOCK_TIMEOUT)
    _set_lock_timeout(conn, wait)
    try:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    except DBAPIError as exc:
        if _sqlstate(exc) != LOCK_NOT_AVAILABLE:
            raise
        raise CommandError(
            f"timed out after {wait} waiting for the migration lock "
            f"pg_advisory_lock({MIGRATION_LOCK_KEY}): another migration of this database is "
            "running. Let it finish and retry, wait longer (alembic -x lock_timeout=300s upgrade "
            "head, taskflow-migrate --lock-timeout 300s), or find "
            f"the session holding it with: {lock_holder_query()}"
        ) from None
    # DDL must not queue behind long transactions with the long acquisition budget.
    _set_lock_timeout(conn, ddl_wait)
    conn.commit()  # the session lock survives; alembic opens its own transaction next


def _release_lock(conn: Connection) -> None:
    # Closing the session releases it too, so a broken connection is no reason to fail here.
    with contextlib.suppress(DBAPIError):
        if conn.in_transaction():
            conn.rollback()
        conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
        conn.execute(text("RESET lock_timeout"))
        conn.commit()


def _number_revisions(
    ctx: MigrationContext, revision: object, directives: Iterable[MigrationScript]
) -> None:
    """New revisions get the next number ("0002", ...) unless given with --rev-id."""
    for script in directives:
        if script.rev_id is not None and re.fullmatch(r"\d{4}", script.rev_id):
            continue
        heads = ctx.script.get_heads() if ctx.script is not None else []
        script.rev_id = f"{max((int(head) for head in heads), default=0) + 1:04d}"


def _migrate_locked(conn: Connection) -> None:
    _take_lock(conn)
    try:
        status = schema_status_sync(conn, context.script)
        conn.commit()
        config.attributes["schema_status"] = status
        if status is SchemaStatus.AHEAD and config.attributes.get("allow_ahead"):
            return  # a newer image migrated this database; its schema stays compatible with us
        context.configure(
            connection=conn,
            target_metadata=target_metadata,
            compare_type=True,
            process_revision_directives=_number_revisions,
        )
        with context.begin_transaction():
            context.run_migrations()
        conn.commit()
    finally:
        _release_lock(conn)


async def _migrate_online(url: str) -> None:
    engine = create_engine(
        url,
        application_name="alembic",
        pool=None,
        statement_timeout=None,  # the lock wait is bounded by lock_timeout, the DDL by its own
        connect_timeout=10,
    )
    try:
        try:
            conn = await engine.connect()
        except (OSError, DBAPIError) as exc:
            where = make_url(url).render_as_string(hide_password=True)
            detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise CommandError(f"cannot connect to {where}: {detail}") from None
        try:
            await conn.run_sync(_migrate_locked)
        finally:
            await conn.close()
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=_database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        # Whoever applies the script takes the same lock, held until the script's COMMIT.
        context.execute(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
        context.run_migrations()


def run_migrations_online() -> None:
    shared = config.attributes.get("connection")
    if isinstance(shared, Connection):
        _migrate_locked(shared)  # taskflow-migrate hands over its own connection
        return
    asyncio.run(_migrate_online(_database_url()))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
