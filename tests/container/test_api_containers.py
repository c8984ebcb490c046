"""Each API image run as Kubernetes runs it under Pod Security `restricted`, serving requests."""

from __future__ import annotations

import httpx
import pytest

from tests.container.dockerctl import Container, StartApi, docker

pytestmark = [pytest.mark.container, pytest.mark.timeout(1200)]


def test_both_apis_serve_read_only_as_app_user(
    api_images: dict[str, str], database_url: str, start_api: StartApi, http: httpx.Client
) -> None:
    tasks, tasks_url = start_api(api_images["tasks-api"], database_url)
    stats, stats_url = start_api(api_images["stats-api"], database_url)

    for container in (tasks, stats):
        info = container.inspect()
        assert info["HostConfig"]["ReadonlyRootfs"] is True
        assert info["HostConfig"]["CapDrop"] == ["ALL"]
        assert info["Config"]["User"] == "10001:10001"
        # The server process itself (PID 1): real, effective, saved and fs UIDs, no capabilities.
        status = container.exec("cat", "/proc/1/status").stdout.decode()
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        assert uid_line.split()[1:] == ["10001"] * 4
        assert "CapEff:\t0000000000000000" in status
        # Exec form: PID 1 is the server itself (granian's supervisor, no shell), and its one
        # worker process is the only other process.
        cmdline = container.exec("cat", "/proc/1/cmdline").stdout.split(b"\0")
        assert cmdline[:-1] == [part.encode() for part in info["Config"]["Entrypoint"]]
        pids = _pids(container)
        assert "1" in pids, pids
        assert len(pids) == 2, pids
        (worker,) = [pid for pid in pids if pid != "1"]
        stat = container.exec("cat", f"/proc/{worker}/stat").stdout.decode()
        assert stat.rsplit(")", 1)[1].split()[1] == "1"  # its parent is the server

    for base in (tasks_url, stats_url):
        assert http.get(f"{base}/health").status_code == 200
        assert http.get(f"{base}/ready").status_code == 200

    before = http.get(f"{stats_url}/stats")
    assert before.status_code == 200, before.text
    created = http.post(
        f"{tasks_url}/tasks", json={"title": "from a read-only container", "priority": "high"}
    )
    assert created.status_code == 201, created.text
    task = created.json()
    assert http.get(f"{tasks_url}/tasks/{task['id']}").json()["title"] == task["title"]

    after = http.get(f"{stats_url}/stats").json()
    assert after["total"] == before.json()["total"] + 1
    high = after["by_priority"]["high"]["total"]
    assert high == before.json()["by_priority"]["high"]["total"] + 1

    metrics = http.get(f"{tasks_url}/metrics")
    assert metrics.status_code == 200
    assert "taskflow_requests_total" in metrics.text

    # SIGTERM reaches the server as PID 1: it drains and exits 0 on its own, never killed.
    for container in (tasks, stats):
        docker("stop", "--time", "40", container.id, timeout=60)
        state = container.inspect()["State"]
        assert (state["ExitCode"], state["OOMKilled"]) == (0, False), container.logs()[-2000:]


def _pids(container: Container) -> list[str]:
    """Processes in the container other than the `sh` that lists them (a glob: no child)."""
    listing = container.exec("sh", "-c", "echo $$ /proc/[0-9]*").stdout.decode().split()
    own, entries = listing[0], listing[1:]
    return sorted(entry.removeprefix("/proc/") for entry in entries if entry != f"/proc/{own}")
