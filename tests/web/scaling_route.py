"""Whether stats-api serves GET /scaling yet, read from the real app's route table.

The UI asks for /api/scaling; until stats-api has the route, the autoscaling panel shows the
404 problem (which the tests that need the route say plainly, instead of passing)."""

from __future__ import annotations

import functools
import os


@functools.cache
def stats_api_serves_scaling() -> bool:
    from stats_api.app import create_app

    saved = os.environ.get("DATABASE_URL")
    # Building the app connects to nothing (port 9 would refuse).
    os.environ["DATABASE_URL"] = "postgresql://taskflow@127.0.0.1:9/taskflow"
    try:
        app = create_app()
    finally:
        if saved is None:
            del os.environ["DATABASE_URL"]
        else:
            os.environ["DATABASE_URL"] = saved
    return any(route.path == "/scaling" for route in app.routes)


WAITING_FOR_SCALING = (
    "stats-api has no GET /scaling yet (it lands with the autoscaling-data branch)"
)
