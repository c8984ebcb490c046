"""The server runner: reload watches exactly the service's and taskflow_core's source dirs."""

from __future__ import annotations

from pathlib import Path

import taskflow_core
import tasks_api
from taskflow_core.server import GRACEFUL_SHUTDOWN_SECONDS, WORKER_STOP_SECONDS, source_dirs
from taskflow_core.settings import Settings


def test_reload_dirs_are_the_package_source_dirs() -> None:
    dirs = source_dirs("tasks_api.app:create_app")
    assert dirs == [
        str(Path(tasks_api.__file__).resolve().parent),
        str(Path(taskflow_core.__file__).resolve().parent),
    ]
    assert dirs[0].endswith("services/tasks-api/src/tasks_api")
    assert dirs[1].endswith("libs/taskflow-core/src/taskflow_core")


def test_shutdown_bound_is_the_drain_window_plus_granians_20_seconds() -> None:
    assert WORKER_STOP_SECONDS == 20
    assert GRACEFUL_SHUTDOWN_SECONDS == 25
    default = Settings.from_env({"DATABASE_URL": "postgresql://u:p@h:5432/d"}).server
    assert default.drain_seconds == 5
