"""Logging settings: the level of every process (servers and the migrate command)."""

from __future__ import annotations

from dataclasses import dataclass

from taskflow_core.settings.env import Env

ENV_VARS = frozenset({"LOG_LEVEL"})
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    level: str = "INFO"

    @classmethod
    def from_env(cls, env: Env) -> LoggingSettings:
        return cls(level=env.choice("LOG_LEVEL", "INFO", LOG_LEVELS))
