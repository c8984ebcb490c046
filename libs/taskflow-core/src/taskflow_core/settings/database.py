"""Database settings: where PostgreSQL is (DATABASE_URL or its parts) and the request pool."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from taskflow_core.settings.env import ConfigError, Env

DATABASE_PARTS = (
    "DATABASE_HOST",
    "DATABASE_PORT",
    "DATABASE_NAME",
    "DATABASE_USER",
    "DATABASE_PASSWORD",
)
POOL_VARS = (
    "DB_POOL_SIZE",
    "DB_MAX_OVERFLOW",
    "DB_POOL_TIMEOUT",
    "DB_CONNECT_TIMEOUT",
    "DB_STATEMENT_TIMEOUT",
)
ENV_VARS = frozenset({"DATABASE_URL", *DATABASE_PARTS})


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """The database every process needs; `url` always names the asyncpg driver."""

    url: str

    @classmethod
    def from_env(cls, env: Env) -> DatabaseSettings:
        return cls(url=_database_url(env))


@dataclass(frozen=True, slots=True)
class PoolSettings:
    """The request-path connection pool of an API process and the bounds of a request's waits.

    A request's database work shares one deadline, `request_bound` seconds after it first asks
    for a connection: past it the request answers 503, whatever the database is doing.
    """

    size: int = 5
    max_overflow: int = 0
    timeout: float = 2.0  # seconds to wait for a pooled connection before answering 503
    connect_timeout: float = 2.0  # seconds to open a new connection (refused, starting up, ...)
    statement_timeout: float = 5.0  # seconds all of a request's statements may take together

    @classmethod
    def from_env(cls, env: Env) -> PoolSettings:
        return cls(
            size=env.integer("DB_POOL_SIZE", 5, minimum=1),
            max_overflow=env.integer("DB_MAX_OVERFLOW", 0, minimum=0),
            timeout=env.seconds("DB_POOL_TIMEOUT", 2.0, minimum=0.1),
            connect_timeout=env.seconds("DB_CONNECT_TIMEOUT", 2.0, minimum=0.1),
            statement_timeout=env.seconds("DB_STATEMENT_TIMEOUT", 5.0, minimum=0.1),
        )

    @property
    def request_bound(self) -> float:
        """The longest a request waits for the database: pool + connect + statements."""
        return self.timeout + self.connect_timeout + self.statement_timeout


def _database_url(env: Env) -> str:
    url = env.raw("DATABASE_URL")
    if url is not None:
        return _async_postgres_url("DATABASE_URL", url)
    missing = [name for name in DATABASE_PARTS if env.raw(name) is None]
    if missing:
        raise ConfigError(
            "DATABASE_URL is not set, nor all of "
            + ", ".join(DATABASE_PARTS)
            + f" (missing: {', '.join(missing)})"
        )
    port = env.integer("DATABASE_PORT", 5432, minimum=1, maximum=65535)
    built = URL.create(
        "postgresql+asyncpg",
        username=env.raw("DATABASE_USER"),
        password=env.raw("DATABASE_PASSWORD"),
        host=env.raw("DATABASE_HOST"),
        port=port,
        database=env.raw("DATABASE_NAME"),
    )
    return built.render_as_string(hide_password=False)


def _async_postgres_url(name: str, value: str) -> str:
    try:
        url = make_url(value)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigError(f"{name} is not a database URL: {_redact(value)!r}") from None
    if url.get_backend_name() != "postgresql":
        raise ConfigError(f"{name} must be a postgresql:// URL, got {url.drivername!r}")
    if not url.database:
        raise ConfigError(f"{name} must name a database")
    return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def _redact(value: str) -> str:
    # Never echo a password into logs: only what follows the last "@" (host, port, database),
    # else only the scheme; a value without either may be a misplaced password itself.
    if "@" in value:
        return value.rsplit("@", 1)[-1]
    scheme, separator, _ = value.partition("://")
    return f"{scheme}://..." if separator else "..."
