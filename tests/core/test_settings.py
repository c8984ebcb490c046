"""Settings from the environment: required, optional, alternatives; every bad value is one line
naming its variable."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator, Mapping

import pytest
from sqlalchemy.engine import make_url
from taskflow_core import migrate_command
from taskflow_core.settings import API_ENV_VARS, ConfigError, Env, Settings

URL = "postgresql://app:pw@db.example:5432/taskflow"
PARTS = {
    "DATABASE_HOST": "db.example",
    "DATABASE_PORT": "6543",
    "DATABASE_NAME": "taskflow",
    "DATABASE_USER": "app",
    "DATABASE_PASSWORD": "p@ss/w:rd%",
}


def settings(**env: str) -> Settings:
    return Settings.from_env(env)


def config_error(**env: str) -> str:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_defaults_with_only_a_database_url() -> None:
    loaded = settings(DATABASE_URL=URL)
    assert loaded.database.url == "postgresql+asyncpg://app:pw@db.example:5432/taskflow"
    assert loaded.cache.redis_url is None
    assert loaded.cache.enabled is False
    assert (loaded.cache.ttl, loaded.pool.size, loaded.pool.max_overflow) == (300, 5, 0)
    assert loaded.pool.timeout == 2.0
    assert loaded.logging.level == "INFO"
    assert (loaded.server.host, loaded.server.port, loaded.server.reload) == (
        "0.0.0.0",
        8000,
        False,
    )


def test_any_postgresql_driver_in_the_url_becomes_asyncpg() -> None:
    loaded = settings(DATABASE_URL="postgresql+psycopg://u@h/d")
    assert loaded.database.url == "postgresql+asyncpg://u@h/d"


def test_database_parts_build_the_url_and_keep_special_characters_in_the_password() -> None:
    url = make_url(settings(**PARTS).database.url)
    assert url.drivername == "postgresql+asyncpg"
    assert (url.host, url.port, url.database, url.username) == (
        "db.example",
        6543,
        "taskflow",
        "app",
    )
    assert url.password == "p@ss/w:rd%"


def test_database_url_wins_over_the_parts() -> None:
    loaded = settings(DATABASE_URL=URL, **PARTS)
    assert make_url(loaded.database.url).port == 5432


def test_neither_url_nor_parts_names_database_url_and_the_parts() -> None:
    message = config_error()
    assert message.startswith("DATABASE_URL is not set")
    assert all(name in message for name in PARTS)


def test_a_missing_part_is_named() -> None:
    incomplete = {k: v for k, v in PARTS.items() if k != "DATABASE_PASSWORD"}
    assert config_error(**incomplete).endswith("(missing: DATABASE_PASSWORD)")


def test_blank_values_count_as_unset() -> None:
    assert "missing: DATABASE_HOST" in config_error(**{**PARTS, "DATABASE_HOST": "  "})
    assert settings(DATABASE_URL=URL, CACHE_TTL="").cache.ttl == 300


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DATABASE_URL": "mysql://u@h/d"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://u@h"}, "DATABASE_URL"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL"),
        ({**PARTS, "DATABASE_PORT": "five"}, "DATABASE_PORT"),
        ({**PARTS, "DATABASE_PORT": "70000"}, "DATABASE_PORT"),
        ({"DATABASE_URL": URL, "REDIS_URL": "http://cache:6379"}, "REDIS_URL"),
        ({"DATABASE_URL": URL, "REDIS_PORT": "6379"}, "REDIS_PORT"),
        ({"DATABASE_URL": URL, "REDIS_HOST": "cache", "REDIS_PORT": "x"}, "REDIS_PORT"),
        ({"DATABASE_URL": URL, "CACHE_TTL": "-1"}, "CACHE_TTL"),
        ({"DATABASE_URL": URL, "CACHE_TTL": "5m"}, "CACHE_TTL"),
        ({"DATABASE_URL": URL, "DB_POOL_SIZE": "0"}, "DB_POOL_SIZE"),
        ({"DATABASE_URL": URL, "DB_MAX_OVERFLOW": "-2"}, "DB_MAX_OVERFLOW"),
        ({"DATABASE_URL": URL, "DB_POOL_TIMEOUT": "soon"}, "DB_POOL_TIMEOUT"),
        ({"DATABASE_URL": URL, "DB_POOL_TIMEOUT": "0"}, "DB_POOL_TIMEOUT"),
        ({"DATABASE_URL": URL, "DB_POOL_TIMEOUT": "nan"}, "DB_POOL_TIMEOUT"),
        ({"DATABASE_URL": URL, "DB_POOL_TIMEOUT": "inf"}, "DB_POOL_TIMEOUT"),
        ({"DATABASE_URL": URL, "LOG_LEVEL": "verbose"}, "LOG_LEVEL"),
        ({"DATABASE_URL": URL, "PORT": "0"}, "PORT"),
        ({"DATABASE_URL": URL, "PORT": "http"}, "PORT"),
        ({"DATABASE_URL": URL, "RELOAD": "maybe"}, "RELOAD"),
        ({"DATABASE_URL": URL, "DRAIN_SECONDS": "-1"}, "DRAIN_SECONDS"),
        ({"DATABASE_URL": URL, "DRAIN_SECONDS": "6"}, "DRAIN_SECONDS"),
    ],
)
def test_a_bad_value_is_one_line_naming_its_variable(env: dict[str, str], variable: str) -> None:
    assert config_error(**env).startswith(variable)


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u:s3cret@h/d",
        "postgresql://u:s3cret@:x:y/d",
        # No "@host": the whole value would be user and password.
        "postgresql://u:s3cret",
        "postgresql://u:s3cret/d",
        # A password pasted where the URL belongs.
        "s3cret",
        "postgresql://u:s3cret@h:port/d",
    ],
)
def test_a_password_is_never_echoed_in_an_error(url: str) -> None:
    message = config_error(DATABASE_URL=url)
    assert message.startswith("DATABASE_URL"), message
    assert "s3cret" not in message


def test_redis_alternatives() -> None:
    assert settings(DATABASE_URL=URL, REDIS_URL="redis://c:1/2").cache.redis_url == "redis://c:1/2"
    assert settings(DATABASE_URL=URL, REDIS_HOST="cache").cache.redis_url == "redis://cache:6379/0"
    both = settings(DATABASE_URL=URL, REDIS_HOST="cache", REDIS_PORT="7000")
    assert both.cache.redis_url == "redis://cache:7000/0"
    assert both.cache.enabled is True
    preferred = settings(DATABASE_URL=URL, REDIS_URL="redis://a:1/0", REDIS_HOST="b")
    assert preferred.cache.redis_url == "redis://a:1/0"
    assert settings(DATABASE_URL=URL, REDIS_HOST="c", CACHE_TTL="0").cache.enabled is False


def test_values_are_parsed() -> None:
    loaded = settings(
        DATABASE_URL=URL,
        CACHE_TTL="60",
        DB_POOL_SIZE="3",
        DB_MAX_OVERFLOW="2",
        DB_POOL_TIMEOUT="0.5",
        LOG_LEVEL="debug",
        HOST="127.0.0.1",
        PORT="8001",
        RELOAD="true",
    )
    assert (loaded.cache.ttl, loaded.pool.size, loaded.pool.max_overflow) == (60, 3, 2)
    assert (loaded.pool.timeout, loaded.logging.level) == (0.5, "DEBUG")
    assert (loaded.server.host, loaded.server.port, loaded.server.reload) == (
        "127.0.0.1",
        8001,
        True,
    )
    assert settings(DATABASE_URL=URL, RELOAD="0").server.reload is False


def test_the_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in API_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", URL)
    monkeypatch.setenv("PORT", "9000")
    assert Settings.from_env().server.port == 9000


class Recording(Mapping[str, str]):
    """An environment that remembers every name the settings looked up."""

    def __init__(self, values: dict[str, str]) -> None:
        self._values = values
        self.read: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.read.add(name)
        return self._values[name]

    def get(self, name: str, default: object = None) -> object:  # type: ignore[override]
        self.read.add(name)
        return self._values.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def test_env_vars_lists_exactly_the_variables_read() -> None:
    with_parts = Recording({**PARTS, "REDIS_HOST": "cache"})
    with_urls = Recording({"DATABASE_URL": URL, "REDIS_URL": "redis://c:1/0"})
    Settings.from_env(with_parts)
    Settings.from_env(with_urls)
    assert with_parts.read | with_urls.read == API_ENV_VARS


def test_the_migrate_command_reads_the_database_logging_and_the_seed_count() -> None:
    recording = Recording({"DATABASE_URL": URL, "SEED_DEMO_TASKS": "1000"})
    loaded = migrate_command.MigrateSettings.read(Env(recording))
    assert (loaded.database.url, loaded.seed_demo_tasks) == (
        "postgresql+asyncpg://app:pw@db.example:5432/taskflow",
        1000,
    )
    assert recording.read | set(PARTS) == migrate_command.ENV_VARS
    assert "SEED_DEMO_TASKS" not in API_ENV_VARS


@pytest.mark.parametrize("value", ["1e3", "-5", "many"])
def test_a_bad_seed_count_is_named(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^SEED_DEMO_TASKS"):
        migrate_command.MigrateSettings.read(Env({"DATABASE_URL": URL, "SEED_DEMO_TASKS": value}))


@pytest.mark.parametrize(
    ("value", "console"), [("json", False), ("CONSOLE", True), ("console", True)]
)
def test_log_format_chooses_json_or_console_lines(value: str, console: bool) -> None:
    assert Settings.from_env({"DATABASE_URL": URL, "LOG_FORMAT": value}).logging.console is console


def test_log_format_auto_is_json_when_stdout_is_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # a pipe, as in a container
    assert Settings.from_env({"DATABASE_URL": URL}).logging.console is False


def test_a_bad_log_format_is_named() -> None:
    with pytest.raises(ConfigError, match=r"^LOG_FORMAT"):
        Settings.from_env({"DATABASE_URL": URL, "LOG_FORMAT": "xml"})
