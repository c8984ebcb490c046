"""`taskflow-migrate`: upgrade to head under the migration lock, then seed demo tasks once.

Run by every API pod's initContainer, any number at once. Exit codes: 0 when the database is at
head afterwards or already ahead of this image (a rollback must not wedge pods in Init), 1 when
the migration or the seed fails (lock timeout, database unreachable), 2 on bad configuration.
Reads DATABASE_*, LOG_LEVEL and LOG_FORMAT like the APIs, plus SEED_DEMO_TASKS (demo rows,
default 0). Its lines carry `service` (taskflow-migrate) like the APIs'; the line that ends the
migration carries `outcome` (migrated, at_head, ahead or failed) and `duration_ms`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass

import structlog
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from taskflow_core.demo_seed import seed_demo_tasks
from taskflow_core.engine import create_engine
from taskflow_core.logs import configure_logging
from taskflow_core.schema_version import SchemaStatus, alembic_config, head_revision
from taskflow_core.settings import (
    DatabaseSettings,
    Env,
    LoggingSettings,
    database,
    load_or_exit,
    logging,
)

EXIT_OK = 0
EXIT_FAILED = 1
APPLICATION_NAME = "taskflow-migrate"
CONNECT_TIMEOUT = 10.0  # seconds; the initContainer restarts and tries again after that
# Every variable the migrate command reads; the deploy tests check manifests set nothing else.
ENV_VARS = frozenset(database.ENV_VARS | logging.ENV_VARS | {"SEED_DEMO_TASKS"})

log = structlog.get_logger("taskflow.migrate")


@dataclass(frozen=True, slots=True)
class MigrateSettings:
    database: DatabaseSettings
    logging: LoggingSettings
    seed_demo_tasks: int = 0  # demo rows seeded once per database; 0 seeds nothing

    @classmethod
    def read(cls, env: Env) -> MigrateSettings:
        return cls(
            database=DatabaseSettings.from_env(env),
            logging=LoggingSettings.from_env(env),
            seed_demo_tasks=env.integer("SEED_DEMO_TASKS", 0, minimum=0),
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    before: SchemaStatus
    revision: str | None
    seeded: bool


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    settings = load_or_exit(APPLICATION_NAME, MigrateSettings.read)
    configure_logging(settings.logging, APPLICATION_NAME)
    started = time.monotonic()
    try:
        config = alembic_config()
        config.attributes["lock_timeout"] = args.lock_timeout
        outcome = asyncio.run(migrate_and_seed(settings, config))
    except Exception as exc:  # every failure ends as one log line and exit 1
        log.error(
            "migration failed",
            error=_one_line(exc, settings.database.url),
            outcome="failed",
            duration_ms=_milliseconds(time.monotonic() - started),
        )
        return EXIT_FAILED
    _report(outcome, settings.seed_demo_tasks, time.monotonic() - started)
    return EXIT_OK


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=APPLICATION_NAME, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lock-timeout",
        default="120s",
        help="longest wait for another migration to finish (PostgreSQL duration, default 120s)",
    )
    return parser.parse_args(argv)


async def migrate_and_seed(settings: MigrateSettings, config: Config) -> Outcome:
    """Upgrade on one connection (env.py takes the lock on it), then seed on the same one."""
    engine = create_engine(
        settings.database.url,
        application_name=APPLICATION_NAME,
        pool=None,
        statement_timeout=None,  # the lock wait is bounded by lock_timeout, the DDL by its own
        connect_timeout=CONNECT_TIMEOUT,
    )
    try:
        async with engine.connect() as conn:
            before = await conn.run_sync(_upgrade, config)
            revision = (
                await conn.execute(text("SELECT max(version_num) FROM alembic_version"))
            ).scalar_one_or_none()
            await conn.commit()
            if before is SchemaStatus.AHEAD:
                return Outcome(before, revision, seeded=False)
            seeded = await seed_demo_tasks(conn, settings.seed_demo_tasks)
            return Outcome(before, revision, seeded)
    finally:
        await engine.dispose()


def _upgrade(conn: Connection, config: Config) -> SchemaStatus:
    config.attributes.update(connection=conn, allow_ahead=True, configure_logger=False)
    command.upgrade(config, "head")
    status: SchemaStatus = config.attributes["schema_status"]
    return status


def _milliseconds(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _report(outcome: Outcome, seed_count: int, seconds: float) -> None:
    took = _milliseconds(seconds)
    if outcome.before is SchemaStatus.AHEAD:
        log.warning(
            "database schema is ahead of this image; left as is",
            revision=outcome.revision,
            image_head=head_revision(),
            outcome="ahead",
            duration_ms=took,
        )
        return
    log.info(
        "schema at head",
        revision=outcome.revision,
        before=str(outcome.before),
        outcome="at_head" if outcome.before is SchemaStatus.AT_HEAD else "migrated",
        duration_ms=took,
    )
    if outcome.seeded:
        log.info("demo tasks seeded", rows=seed_count)
    elif seed_count > 0:
        log.info("demo tasks were seeded before; not seeding again")


def _one_line(exc: BaseException, database_url: str) -> str:
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        detail = str(exc.orig)
    elif isinstance(exc, OSError | TimeoutError):
        where = make_url(database_url).render_as_string(hide_password=True)
        detail = f"cannot connect to {where}: {exc}"
    else:
        detail = str(exc)
    first = detail.strip().splitlines()[0] if detail.strip() else type(exc).__name__
    return f"{type(exc).__name__}: {first}"


if __name__ == "__main__":
    sys.exit(main())
