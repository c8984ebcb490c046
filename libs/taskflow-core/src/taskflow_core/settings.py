"""Settings read from the environment only; a bad value stops the process with one clear line."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

DATABASE_PARTS = (
    "DATABASE_HOST",
    "DATABASE_PORT",
    "DATABASE_NAME",
    "DATABASE_USER",
    "DATABASE_PASSWORD",
)

# Every variable the settings read; the deploy tests check manifests provide nothing else.
ENV_VARS = frozenset(
    {
        "DATABASE_URL",
        *DATABASE_PARTS,
        "REDIS_URL",
        "REDIS_HOST",
        "REDIS_PORT",
        "CACHE_TTL",
        "DB_POOL_SIZE",
        "DB_MAX_OVERFLOW",
        "DB_POOL_TIMEOUT",
        "LOG_LEVEL",
        "SEED_DEMO_TASKS",
        "HOST",
        "PORT",
        "RELOAD",
    }
)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(Exception):
    """A missing or malformed environment variable; the message names it."""


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    redis_url: str | None = None
    cache_ttl: int = 300
    db_pool_size: int = 5
    db_max_overflow: int = 0
    db_pool_timeout: float = 2.0
    log_level: str = "INFO"
    seed_demo_tasks: int = 0
    host: str = "0.0.0.0"  # noqa: S104 - containers must listen on every interface
    port: int = 8000
    reload: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = _Env(os.environ if environ is None else environ)
        return cls(
            database_url=_database_url(env),
            redis_url=_redis_url(env),
            cache_ttl=env.integer("CACHE_TTL", 300, minimum=0),
            db_pool_size=env.integer("DB_POOL_SIZE", 5, minimum=1),
            db_max_overflow=env.integer("DB_MAX_OVERFLOW", 0, minimum=0),
            db_pool_timeout=env.number("DB_POOL_TIMEOUT", 2.0, minimum=0.1),
            log_level=env.choice("LOG_LEVEL", "INFO", LOG_LEVELS),
            seed_demo_tasks=env.integer("SEED_DEMO_TASKS", 0, minimum=0),
            host=env.text("HOST", "0.0.0.0"),  # noqa: S104 - containers must listen on every interface
            port=env.integer("PORT", 8000, minimum=1, maximum=65535),
            reload=env.boolean("RELOAD", False),
        )

    @property
    def cache_enabled(self) -> bool:
        return self.redis_url is not None and self.cache_ttl > 0


class _Env:
    """Typed access to environment variables; every error names the variable."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        return None if value is None or value.strip() == "" else value.strip()

    def text(self, name: str, default: str) -> str:
        return self.raw(name) or default

    def integer(
        self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {value!r}") from None
        _check_range(name, number, minimum, maximum)
        return number

    def number(self, name: str, default: float, *, minimum: float) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{name} must be a number of seconds, got {value!r}") from None
        if not math.isfinite(number):  # float() accepts "nan" and "inf"; neither bounds a wait
            raise ConfigError(f"{name} must be a finite number of seconds, got {value!r}")
        _check_range(name, number, minimum, None)
        return number

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = (self.raw(name) or default).upper()
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() in {"1", "true", "yes", "on"}:
            return True
        if value.lower() in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{name} must be true or false, got {value!r}")


def _check_range(name: str, value: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum}, got {value}")


def _database_url(env: _Env) -> str:
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


def _redis_url(env: _Env) -> str | None:
    url = env.raw("REDIS_URL")
    if url is not None:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(
                f"REDIS_URL must start with redis://, rediss:// or unix://, got {url!r}"
            )
        return url
    host = env.raw("REDIS_HOST")
    if host is None:
        if env.raw("REDIS_PORT") is not None:
            raise ConfigError("REDIS_PORT is set but REDIS_HOST is not")
        return None
    port = env.integer("REDIS_PORT", 6379, minimum=1, maximum=65535)
    return f"redis://{quote(host)}:{port}/0"


def _redact(value: str) -> str:
    # Never echo a password into logs.
    return value.split("@")[-1] if "@" in value else value
