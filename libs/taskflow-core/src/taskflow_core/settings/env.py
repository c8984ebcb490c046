"""Typed reads of environment variables, and the one exit for bad configuration.

Every error names its variable in one line; `load_or_exit` prints it and exits 2, so the servers,
the migrate command and `alembic` report bad configuration the same way.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Mapping
from typing import NoReturn, TypeVar

EXIT_CONFIG = 2
T = TypeVar("T")


class ConfigError(Exception):
    """A missing or malformed environment variable; the message names it."""


class Env:
    """Typed access to environment variables; every error names the variable."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

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

    def seconds(
        self, name: str, default: float, *, minimum: float, maximum: float | None = None
    ) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{name} must be a number of seconds, got {value!r}") from None
        if not math.isfinite(number):  # float() accepts "nan" and "inf"; neither bounds a wait
            raise ConfigError(f"{name} must be a finite number of seconds, got {value!r}")
        _check_range(name, number, minimum, maximum)
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


def load_or_exit(
    program: str, load: Callable[[Env], T], environ: Mapping[str, str] | None = None
) -> T:
    """`load(Env(...))`, or one line `<program>: configuration error: ...` on stderr and exit 2."""
    try:
        return load(Env(environ))
    except ConfigError as exc:
        exit_config_error(program, exc)


def exit_config_error(program: str, exc: ConfigError) -> NoReturn:
    print(f"{program}: configuration error: {exc}", file=sys.stderr)
    raise SystemExit(EXIT_CONFIG) from None
