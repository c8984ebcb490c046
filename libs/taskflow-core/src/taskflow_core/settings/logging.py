"""Logging settings of every process (servers and the migrate command): the level, and the
format — JSON lines, or readable lines for a person at a terminal (`auto`: console when stdout
is a terminal, JSON otherwise, as in a container)."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from taskflow_core.settings.env import Env

ENV_VARS = frozenset({"LOG_LEVEL", "LOG_FORMAT"})
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("AUTO", "JSON", "CONSOLE")


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    level: str = "INFO"
    console: bool = False  # readable lines instead of JSON

    @classmethod
    def from_env(cls, env: Env) -> LoggingSettings:
        chosen = env.choice("LOG_FORMAT", "AUTO", LOG_FORMATS)
        console = chosen == "CONSOLE" or (chosen == "AUTO" and sys.stdout.isatty())
        return cls(level=env.choice("LOG_LEVEL", "INFO", LOG_LEVELS), console=console)
