"""`taskflow-migrate`: upgrade to head under the migration lock, then seed demo tasks once.

Run by every API pod's initContainer, any number at once. Exit codes: 0 when the database is at
head afterwards or already ahead of this image (a rollback must not wedge pods in Init), 1 when
the migration or the seed fails (lock timeout, database unreachable), 2 on bad configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from dataclasses import dataclass

import structlog
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from taskflow_core.migrations import SchemaStatus, alembic_config, head_revision
from taskflow_core.seed import seed_demo_tasks
from taskflow_core.settings import ConfigError, Settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
APPLICATION_NAME = "taskflow-migrate"

log = structlog.get_logger("taskflow.migrate")


@dataclass(frozen=True, slots=True)
class Outcome:
    before: SchemaStatus
    revision: str | None
    seeded: bool


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"{APPLICATION_NAME}: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log_level)
    started = time.monotonic()
    try:
        config = alembic_config()
        config.attributes["lock_timeout"] = args.lock_timeout
        outcome = asyncio.run(migrate_and_seed(settings, config))
    except Exception as exc:  # every failure ends as one log line and exit 1
        log.error("migration failed", error=_one_line(exc, settings.database_url))
        return EXIT_FAILED
    _report(outcome, settings.seed_demo_tasks, time.monotonic() - started)
    return EXIT_OK


def configure_logging(level: str) -> None:
    """JSON lines on stdout for ours and alembic's messages; the web stack is not imported here,
    so the initContainer starts fast."""
    shared: list[structlog.types.Processor] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=APPLICATION_NAME, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lock-timeout",
        default="120s",
        help="longest wait for another migration to finish (PostgreSQL duration, default 120s)",
    )
    return parser.parse_args(argv)


async def migrate_and_seed(settings: Settings, config: Config) -> Outcome:
    """Upgrade on one connection (env.py takes the lock on it), then seed on the same one."""
    engine = create_async_engine(
        settings.database_url,
        poolclass=NullPool,
        connect_args={"timeout": 10, "server_settings": {"application_name": APPLICATION_NAME}},
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


def _report(outcome: Outcome, seed_count: int, seconds: float) -> None:
    took = round(seconds, 3)
    if outcome.before is SchemaStatus.AHEAD:
        log.warning(
            "database schema is ahead of this image; left as is",
            revision=outcome.revision,
            image_head=head_revision(),
            took_s=took,
        )
        return
    log.info("schema at head", revision=outcome.revision, before=str(outcome.before), took_s=took)
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
