"""A served API's garbage collector (taskflow_core.gc_tuning), in a process of its own: after the
app's startup what startup built is frozen and the young generation is collected less often."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from taskflow_core.gc_tuning import YOUNG_THRESHOLD

PROBE = """
import gc, json
from litestar.testing import TestClient
from stats_api.app import create_app

default = gc.get_threshold()[0]
with TestClient(create_app()) as client:
    assert client.get("/health").status_code == 200
    after_first = (gc.get_freeze_count(), gc.get_threshold()[0])
    with TestClient(create_app()):
        pass
    print("GC " + json.dumps({"default": default, "after_first": after_first,
                              "after_second": gc.get_freeze_count()}))
"""


def test_startup_freezes_what_it_built_and_raises_the_young_threshold_once(
    database_url: str, redis_url: str
) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("GC ")]  # beside the app's logs
    found = json.loads(line.removeprefix("GC "))
    assert found["default"] == 700  # CPython's, before the app starts
    frozen, threshold = found["after_first"]
    assert frozen > 10_000  # the modules and the app startup built
    assert threshold == YOUNG_THRESHOLD
    assert found["after_second"] <= frozen  # a second app freezes nothing more (some were freed)
