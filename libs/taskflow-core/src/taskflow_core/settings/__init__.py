"""Settings read from the environment only, one module per concern.

`Settings.from_env()` gathers what an API process reads: database (+ its request pool), cache,
server and logging. The migrate command reads its own (`taskflow_core.migrate_command`).
The variables and their defaults: docs/architecture.md ("Environment").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from taskflow_core.settings import cache, database, logging, server
from taskflow_core.settings.cache import CacheSettings
from taskflow_core.settings.database import DATABASE_PARTS, DatabaseSettings, PoolSettings
from taskflow_core.settings.env import ConfigError, Env, load_or_exit
from taskflow_core.settings.logging import LoggingSettings
from taskflow_core.settings.server import ServerSettings

# Set at image build (the commit): the revision label of taskflow_build_info.
REVISION_VARIABLE = "TASKFLOW_REVISION"
BUILD_VARS = frozenset({REVISION_VARIABLE})
# Every variable an API process reads; the deploy tests check manifests set nothing else.
API_ENV_VARS = frozenset(
    database.ENV_VARS
    | set(database.POOL_VARS)
    | cache.ENV_VARS
    | server.ENV_VARS
    | logging.ENV_VARS
    | BUILD_VARS
)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything an API process reads from the environment."""

    database: DatabaseSettings
    pool: PoolSettings = field(default_factory=PoolSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    revision: str = "unknown"  # of the code running (TASKFLOW_REVISION)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        return cls.read(Env(environ))

    @classmethod
    def read(cls, env: Env) -> Settings:
        return cls(
            database=DatabaseSettings.from_env(env),
            pool=PoolSettings.from_env(env),
            cache=CacheSettings.from_env(env),
            server=ServerSettings.from_env(env),
            logging=LoggingSettings.from_env(env),
            revision=env.text(REVISION_VARIABLE, "unknown"),
        )


__all__ = [
    "API_ENV_VARS",
    "BUILD_VARS",
    "DATABASE_PARTS",
    "REVISION_VARIABLE",
    "CacheSettings",
    "ConfigError",
    "DatabaseSettings",
    "Env",
    "LoggingSettings",
    "PoolSettings",
    "ServerSettings",
    "Settings",
    "load_or_exit",
]
