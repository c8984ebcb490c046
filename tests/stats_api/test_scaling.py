"""`GET /scaling` of a real stats-api process: outside a cluster, and reading a loopback stub of
the Kubernetes API (through KUBECONFIG) that replays a recorded 2 -> 10 -> 2 HPA watch.

Each step of the replay must show in /scaling within a second; the watch must survive a dropped
connection and `410 Gone`; and every call it makes must be one the stats-api Role grants."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from stats_api.scaling import cluster, informer
from stats_api.scaling.resources import RESOURCES, VERBS

from tests.support.apiserver import ApiServer, api_server, service_env
from tests.support.loopback_http import serving_in_thread
from tests.support.scaling_replay import (
    AT_START,
    FOLLOW_SECONDS,
    STEPS,
    Service,
    wait_for_services,
)
from tests.support.stub_kube import (
    HPA_WATCH_2_10_2,
    STUB_TOKEN,
    Call,
    ManualClock,
    StubKube,
    write_kubeconfig,
)

REPO = Path(__file__).resolve().parents[2]
STATS_API_RBAC = REPO / "deploy" / "base" / "stats-api" / "rbac.yaml"
# After a fault the watch waits at most its first backoff before it reconnects.
RECOVER_SECONDS = FOLLOW_SECONDS + informer.FIRST_RETRY_SECONDS


def role_grants() -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) the stats-api Role grants, read from its manifest."""
    (role,) = [d for d in yaml.safe_load_all(STATS_API_RBAC.read_text()) if d["kind"] == "Role"]
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def used(calls: list[Call]) -> set[tuple[str, str, str]]:
    return {(c.group, c.resource, c.verb) for c in calls}


def get_scaling(server: ApiServer) -> httpx.Response:
    return httpx.get(f"{server.base_url}/scaling", timeout=5)


def wait_for(server: ApiServer, services: dict[str, Service], within: float) -> float:
    return wait_for_services(server.base_url, services, within)


@pytest.fixture
def stub() -> Iterator[tuple[StubKube, ManualClock, str]]:
    clock = ManualClock()
    kube = StubKube.from_file(HPA_WATCH_2_10_2, position=clock)
    with serving_in_thread(kube.app()) as url:
        yield kube, clock, url


@pytest.fixture
def watching(
    stub: tuple[StubKube, ManualClock, str], database_url: str, tmp_path: Path
) -> Iterator[tuple[ApiServer, StubKube, ManualClock]]:
    """stats-api reading the stub through a kubeconfig, synced with the recording's start."""
    kube, clock, url = stub
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url, kube.namespace)
    env = service_env(database_url, KUBECONFIG=str(kubeconfig))
    with api_server("stats_api", env) as server:
        wait_for(server, AT_START, within=30)  # the first list, after the process started
        yield server, kube, clock


def test_outside_a_cluster_scaling_is_empty(database_url: str) -> None:
    with api_server("stats_api", service_env(database_url)) as server:
        response = get_scaling(server)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {"in_cluster": False, "namespace": None, "services": {}}


def test_scaling_follows_a_replayed_watch_2_to_10_to_2(
    watching: tuple[ApiServer, StubKube, ManualClock],
) -> None:
    server, kube, clock = watching
    first = get_scaling(server)
    assert first.headers["cache-control"] == "no-store"
    assert first.json()["in_cluster"] is True
    assert first.json()["namespace"] == "taskflow"
    lists = len(kube.calls_of("list", "deployments"))
    for position, services in STEPS:
        clock.advance_to(position)
        wait_for(server, services, within=FOLLOW_SECONDS)
    # One list per resource, then watches: never one API call per request.
    assert len(kube.calls_of("list", "deployments")) == lists == 1
    assert len(kube.calls_of("list", "horizontalpodautoscalers")) == 1


def test_every_call_is_one_the_role_grants(
    watching: tuple[ApiServer, StubKube, ManualClock],
) -> None:
    server, kube, clock = watching
    for position, services in STEPS:
        clock.advance_to(position)
        wait_for(server, services, within=FOLLOW_SECONDS)
    declared = {(r.group, r.plural, verb) for r in RESOURCES for verb in VERBS}
    # Exactly the Role: every call is granted, and every grant is used.
    assert used(kube.calls) == declared == role_grants()
    for call in kube.calls:
        assert call.method == "GET"
        assert call.namespace == "taskflow"
        assert call.authorization == f"Bearer {STUB_TOKEN}"  # the kubeconfig's credentials
        assert call.label_selector == "app.kubernetes.io/name in (tasks-api,stats-api)"


def test_the_watch_resumes_after_a_dropped_connection(
    watching: tuple[ApiServer, StubKube, ManualClock],
) -> None:
    server, kube, clock = watching
    (position, services), *rest = STEPS
    clock.advance_to(position)
    wait_for(server, services, within=FOLLOW_SECONDS)
    watches = len(kube.calls_of("watch", "deployments"))

    kube.drop_watches()
    (position, services), *rest = rest
    clock.advance_to(position)
    wait_for(server, services, within=RECOVER_SECONDS)
    rewatch = kube.calls_of("watch", "deployments")[watches:]
    assert rewatch, "no new watch after the connection dropped"
    # Resumed from the last version it saw (the tasks-api Deployment at 0.7 s): no list needed.
    assert rewatch[0].resource_version == "1008"
    assert len(kube.calls_of("list", "deployments")) == 1


@pytest.mark.parametrize("as_status", [False, True], ids=["error-event", "http-410"])
def test_410_gone_lists_again_and_the_watch_goes_on(
    watching: tuple[ApiServer, StubKube, ManualClock], as_status: bool
) -> None:
    server, kube, clock = watching
    for position, services in STEPS[:2]:
        clock.advance_to(position)
        wait_for(server, services, within=FOLLOW_SECONDS)
    lists = {r.plural: len(kube.calls_of("list", r.plural)) for r in RESOURCES}

    kube.expire_history(as_status=as_status)
    for position, services in STEPS[2:]:
        clock.advance_to(position)
        wait_for(server, services, within=RECOVER_SECONDS)
    for resource in RESOURCES:
        assert len(kube.calls_of("list", resource.plural)) == lists[resource.plural] + 1
    assert used(kube.calls) == role_grants()


@pytest.mark.parametrize(
    "content",
    [None, "apiVersion: v1\nkind: Config\nclusters: []\n", "clusters: [\n"],
    ids=["missing", "no-current-context", "not-yaml"],
)
def test_an_unusable_kubeconfig_stops_stats_api_at_start(
    content: str | None, database_url: str, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    if content is not None:
        kubeconfig.write_text(content)
    env = service_env(database_url, KUBECONFIG=str(kubeconfig), HOST="127.0.0.1", PORT="9")
    result = subprocess.run(
        [sys.executable, "-m", "stats_api"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "configuration error" in line]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"stats-api: configuration error: KUBECONFIG='{kubeconfig}'")


def test_in_cluster_detection_reads_the_client_librarys_paths() -> None:
    # cluster.py avoids importing the slow client to detect a pod; its paths must be the ones
    # the client's in-cluster loader then reads.
    from kubernetes_asyncio.config import incluster_config

    assert str(cluster.SERVICE_TOKEN) == incluster_config.SERVICE_TOKEN_FILENAME
    assert cluster.SERVICE_HOST == incluster_config.SERVICE_HOST_ENV_NAME
    assert cluster.POD_NAMESPACE.parent == cluster.SERVICE_TOKEN.parent
