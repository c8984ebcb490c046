"""Server settings: where an API listens, how long it keeps answering after SIGTERM, and whether
it reloads on code changes."""

from __future__ import annotations

from dataclasses import dataclass

from taskflow_core.settings.env import Env

ENV_VARS = frozenset({"HOST", "PORT", "DRAIN_SECONDS", "RELOAD"})
ANY_INTERFACE = "0.0.0.0"  # noqa: S104 - containers must listen on every interface
DRAIN_SECONDS = 5.0  # part of GRACEFUL_SHUTDOWN_SECONDS (taskflow_core.server)
MAX_DRAIN_SECONDS = 5.0  # the grace period of deploy/base/api counts on at most this


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = ANY_INTERFACE
    port: int = 8000
    # After SIGTERM: keep accepting and answering (each response with `Connection: close`,
    # /ready 503) this long, then stop accepting and finish what is in flight.
    drain_seconds: float = DRAIN_SECONDS
    reload: bool = False  # the Skaffold dev overlay syncs code into the pod

    @classmethod
    def from_env(cls, env: Env) -> ServerSettings:
        return cls(
            host=env.text("HOST", ANY_INTERFACE),
            port=env.integer("PORT", 8000, minimum=1, maximum=65535),
            drain_seconds=env.seconds(
                "DRAIN_SECONDS", DRAIN_SECONDS, minimum=0, maximum=MAX_DRAIN_SECONDS
            ),
            reload=env.boolean("RELOAD", False),
        )
