"""stats-api's image in a pod's shoes: KUBERNETES_SERVICE_HOST/PORT set and a ServiceAccount
(token, ca.crt, namespace) mounted where the kubelet mounts it, read-only as UID 10001. Its
`/scaling` reads the stub Kubernetes API over TLS with that token, in that namespace, and follows
the replayed 2 -> 10 -> 2 watch."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import trustme

from tests.container.dockerctl import RESTRICTED, StartApi
from tests.support.loopback_http import serving_in_thread
from tests.support.scaling_replay import AT_START, FOLLOW_SECONDS, STEPS, wait_for_services
from tests.support.stub_kube import HPA_WATCH_2_10_2, ManualClock, StubKube

pytestmark = [pytest.mark.container, pytest.mark.timeout(1200)]

SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
POD_TOKEN = "pod-service-account-token"


@pytest.fixture
def tls_stub() -> Iterator[tuple[StubKube, ManualClock, str, trustme.CA]]:
    """The stub API server on HTTPS, its certificate issued for 127.0.0.1 by a throwaway CA."""
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_tls)
    clock = ManualClock()
    kube = StubKube.from_file(HPA_WATCH_2_10_2, position=clock)
    with serving_in_thread(kube.app(), tls=server_tls) as url:
        yield kube, clock, url, ca


def service_account_dir(root: Path, ca: trustme.CA, namespace: str) -> Path:
    """What the kubelet mounts: token, ca.crt and namespace, readable by the app user."""
    root.mkdir(mode=0o755)
    root.chmod(0o755)  # the mount's own mode is what UID 10001 sees
    (root / "token").write_text(POD_TOKEN)
    ca.cert_pem.write_to_path(str(root / "ca.crt"))
    (root / "namespace").write_text(namespace)
    for file in root.iterdir():
        file.chmod(0o644)
    return root


def test_stats_api_image_watches_through_its_mounted_service_account(
    api_images: dict[str, str],
    database_url: str,
    start_api: StartApi,
    tls_stub: tuple[StubKube, ManualClock, str, trustme.CA],
    tmp_path: Path,
) -> None:
    kube, clock, url, ca = tls_stub
    account = service_account_dir(tmp_path / "serviceaccount", ca, kube.namespace)
    address = urlsplit(url)
    container, base_url = start_api(
        api_images["stats-api"],
        database_url,
        options=(*RESTRICTED, "--volume", f"{account}:{SERVICE_ACCOUNT}:ro"),
        extra_env={
            "KUBERNETES_SERVICE_HOST": str(address.hostname),
            "KUBERNETES_SERVICE_PORT": str(address.port),
        },
    )

    try:
        wait_for_services(base_url, AT_START, within=30)
        body = httpx.get(f"{base_url}/scaling", timeout=5).json()
        assert (body["in_cluster"], body["namespace"]) == (True, kube.namespace)
        for position, services in STEPS:
            clock.advance_to(position)
            wait_for_services(base_url, services, within=FOLLOW_SECONDS)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nstats-api log:\n{container.logs()[-4000:]}") from None

    assert kube.calls
    for call in kube.calls:  # the mounted token, over TLS verified against the mounted ca.crt
        assert call.authorization == f"Bearer {POD_TOKEN}"
        assert call.namespace == kube.namespace
        assert call.verb in {"list", "watch"}
