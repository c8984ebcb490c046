"""Skaffold's file sync, reproduced: a tarball streamed into the running dev container through
`docker exec ... tar xmf -`, which the reloading server picks up without a container restart."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.container.dockerctl import DEV, REPO, Container, StartApi, tar_of

pytestmark = [pytest.mark.container, pytest.mark.timeout(1200)]

APP_MODULE = "services/tasks-api/src/tasks_api/app.py"
CORE_INIT = "libs/taskflow-core/src/taskflow_core/__init__.py"
PROBE = "/sync-probe"

# Appended to the real app module: wraps the fixed factory `create_app` to add one route whose
# body shows which edit the server runs, and a value read from the shared library.
PROBE_SOURCE = """

# --- edited by the container sync test ---
import taskflow_core as _sync_core
from litestar import get as _sync_get


@_sync_get("{path}", sync_to_thread=False)
def _sync_probe() -> dict[str, str]:
    return {{"handler": "{marker}", "library": getattr(_sync_core, "SYNC_MARKER", "none")}}


_create_app_before_sync = create_app


def create_app(*args, **kwargs):
    app = _create_app_before_sync(*args, **kwargs)
    app.register(_sync_probe)
    return app
"""


def _sync(container: Container, files: dict[str, str]) -> None:
    """What `skaffold dev` does for sync.manual with dest /app: paths kept under app/."""
    archive = tar_of({f"app/{path}": content.encode() for path, content in files.items()})
    command = ("tar", "xmf", "-", "-C", "/", "--no-same-owner")
    result = container.exec(*command, user="10001", stdin=archive)
    assert result.returncode == 0, result.stderr.decode()


def _wait_for(url: str, expected: dict[str, str], container: Container) -> None:
    deadline = time.monotonic() + 60
    last: object = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200 and response.json() == expected:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:  # the worker is restarting
            last = exc
        time.sleep(0.25)
    raise AssertionError(f"{url} never returned {expected} ({last!r}):\n{container.logs()}")


def _identity(container: Container) -> dict[str, Any]:
    info = container.inspect()
    return {
        "id": info["Id"],
        "restarts": info["RestartCount"],
        "started": info["State"]["StartedAt"],
        "pid": info["State"]["Pid"],
        "running": info["State"]["Running"],
    }


def test_synced_handler_and_library_reload_without_restart(
    api_images: dict[str, str], database_url: str, start_api: StartApi, http: httpx.Client
) -> None:
    container, base = start_api(
        api_images["tasks-api"], database_url, options=DEV, extra_env={"RELOAD": "true"}
    )
    before = _identity(container)
    assert before["restarts"] == 0
    assert http.get(f"{base}{PROBE}").status_code == 404

    app_source = (REPO / APP_MODULE).read_text()
    core_source = (REPO / CORE_INIT).read_text()

    _sync(container, {APP_MODULE: app_source + PROBE_SOURCE.format(path=PROBE, marker="v1")})
    _wait_for(f"{base}{PROBE}", {"handler": "v1", "library": "none"}, container)

    _sync(container, {APP_MODULE: app_source + PROBE_SOURCE.format(path=PROBE, marker="v2")})
    _wait_for(f"{base}{PROBE}", {"handler": "v2", "library": "none"}, container)

    _sync(container, {CORE_INIT: core_source + '\nSYNC_MARKER = "lib-v1"\n'})
    _wait_for(f"{base}{PROBE}", {"handler": "v2", "library": "lib-v1"}, container)

    # The same container process served every version: no restart, no new container.
    assert _identity(container) == before
    # The synced files belong to the app user, and the real routes still work after reloads.
    owner = container.exec("stat", "-c", "%u:%g", f"/app/{APP_MODULE}").stdout.decode().strip()
    assert owner == "10001:10001"
    created = http.post(f"{base}/tasks", json={"title": "after sync"})
    assert created.status_code == 201, created.text
