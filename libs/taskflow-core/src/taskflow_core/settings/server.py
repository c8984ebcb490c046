"""Server settings: where an API listens and whether it reloads on code changes."""

from __future__ import annotations

from dataclasses import dataclass

from taskflow_core.settings.env import Env

ENV_VARS = frozenset({"HOST", "PORT", "RELOAD"})
ANY_INTERFACE = "0.0.0.0"  # noqa: S104 - containers must listen on every interface


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = ANY_INTERFACE
    port: int = 8000
    reload: bool = False  # the Skaffold dev overlay syncs code into the pod

    @classmethod
    def from_env(cls, env: Env) -> ServerSettings:
        return cls(
            host=env.text("HOST", ANY_INTERFACE),
            port=env.integer("PORT", 8000, minimum=1, maximum=65535),
            reload=env.boolean("RELOAD", False),
        )
