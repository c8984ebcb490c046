"""Cache settings: the Redis to use (optional) and how long an entry lives."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from taskflow_core.settings.env import ConfigError, Env

ENV_VARS = frozenset({"REDIS_URL", "REDIS_HOST", "REDIS_PORT", "CACHE_TTL"})


@dataclass(frozen=True, slots=True)
class CacheSettings:
    redis_url: str | None = None
    ttl: int = 300  # seconds; 0 turns the cache off

    @classmethod
    def from_env(cls, env: Env) -> CacheSettings:
        return cls(redis_url=_redis_url(env), ttl=env.integer("CACHE_TTL", 300, minimum=0))

    @property
    def enabled(self) -> bool:
        return self.redis_url is not None and self.ttl > 0


def _redis_url(env: Env) -> str | None:
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
