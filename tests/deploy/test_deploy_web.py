"""The web tier's manifests agree with services/web: probes, ports, environment, the exporter,
sync rules and the dev patch."""

from __future__ import annotations

import re
import subprocess

import httpx
import pytest
import yaml

from devstack.servers import LOOPBACK, free_port, stop_process, wait_until
from devstack.web import WebServer, exporter_binary
from tests.deploy.deploy_model import (
    DEPLOY,
    OVERLAYS,
    REPO,
    Obj,
    PodTemplate,
    container_ports,
    find,
    glob_to_regex,
    overlay_missing_reason,
    pod_templates,
    provided_env,
    render,
    selects,
    skaffold_artifacts,
    skaffold_config,
)

WEB = REPO / "services" / "web"
TEMPLATE = (WEB / "nginx.conf.template").read_text()
RENDER = (WEB / "render-config.sh").read_text()
DOCKERFILE = (WEB / "Dockerfile").read_text()


def rendered(overlay: str) -> tuple[Obj, ...]:
    reason = overlay_missing_reason(overlay)
    if reason is not None:
        pytest.skip(reason)
    return render(overlay)


def web_template(docs: tuple[Obj, ...]) -> PodTemplate:
    (found,) = [t for t in pod_templates(docs) if t.labels.get("app.kubernetes.io/name") == "web"]
    return found


def container(template: PodTemplate, name: str) -> Obj:
    found: list[Obj] = [c for c in template.spec["containers"] if c["name"] == name]
    assert len(found) == 1, name
    return found[0]


def placeholders() -> set[str]:
    return set(re.findall(r"\$\{([A-Z_]+)\}", TEMPLATE))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_web_runs_two_replicas_with_a_pdb_and_probes_on_healthz(overlay: str) -> None:
    docs = rendered(overlay)
    template = web_template(docs)
    assert template.owner["spec"]["replicas"] == 2
    pdbs = [p for p in docs if p["kind"] == "PodDisruptionBudget"]
    covering = [p for p in pdbs if selects(p["spec"]["selector"], template.labels)]
    assert len(covering) == 1
    assert covering[0]["spec"]["maxUnavailable"] == 1
    web = container(template, "web")
    assert "location = /healthz {" in TEMPLATE
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert web[kind]["httpGet"] == {"path": "/healthz", "port": "http"}, kind
    assert container_ports(web)["http"] == 8080


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_web_environment_is_what_the_renderer_reads(overlay: str) -> None:
    docs = rendered(overlay)
    web = container(web_template(docs), "web")
    env = provided_env(web, docs, overlay)
    read = set(re.findall(r"\$\{([A-Z_]+)[-:}]", RENDER))
    assert env.names <= read, env.names - read
    # Every placeholder has a value: from the manifest, else from the image's ENV.
    image_env = set(re.findall(r"^(?:ENV)?\s+([A-Z_]+)=", DOCKERFILE, re.MULTILINE))
    assert placeholders() <= env.names | image_env
    assert env.values["PORT"] == str(container_ports(web)["http"])
    assert env.values["TASKS_API_ADDRESS"] == "tasks-api:8000"
    assert env.values["STATS_API_ADDRESS"] == "stats-api:8000"
    for name in ("tasks-api", "stats-api"):
        service = find(docs, "Service", name)
        assert service is not None
        assert service["spec"]["ports"][0]["port"] == 8000


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_nginx_writes_only_to_its_emptydir(overlay: str) -> None:
    template = web_template(rendered(overlay))
    web = container(template, "web")
    runtime = provided_env(web, rendered(overlay), overlay).values["RUNTIME_DIR"]
    mounts = {m["mountPath"]: m["name"] for m in web["volumeMounts"]}
    empty_dirs = {v["name"] for v in template.spec["volumes"] if "emptyDir" in v}
    assert any(
        runtime.startswith(path + "/") and name in empty_dirs for path, name in mounts.items()
    )
    for directive in ("pid", "client_body_temp_path", "proxy_temp_path", "fastcgi_temp_path",
                      "uwsgi_temp_path", "scgi_temp_path"):  # fmt: skip
        assert re.search(rf"^\s*{directive} \$\{{RUNTIME_DIR\}}/", TEMPLATE, re.M), directive
    sc = web["securityContext"]
    assert (sc["runAsUser"], sc["runAsGroup"]) == (10001, 10001)
    assert template.spec["automountServiceAccountToken"] is False


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_exporter_reads_stub_status_and_prometheus_scrapes_it(overlay: str) -> None:
    docs = rendered(overlay)
    template = web_template(docs)
    web, exporter = container(template, "web"), container(template, "exporter")
    status_port = provided_env(web, docs, overlay).values["STATUS_PORT"]
    assert f"--nginx.scrape-uri=http://127.0.0.1:{status_port}/stub_status" in exporter["args"]
    assert "listen 127.0.0.1:${STATUS_PORT};" in TEMPLATE, "stub_status stays on loopback"
    metrics = container_ports(exporter)["metrics"]
    assert "--web.listen-address=:" + str(metrics) in exporter["args"]
    assert template.annotations["prometheus.io/scrape"] == "true"
    assert template.annotations["prometheus.io/port"] == str(metrics)
    assert template.annotations["prometheus.io/path"] == "/metrics"
    assert template.labels["app.kubernetes.io/part-of"] == "taskflow"  # Prometheus keeps it


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_exporter_is_probed_on_its_own_page(overlay: str) -> None:
    exporter = container(web_template(rendered(overlay)), "exporter")
    for kind in ("readinessProbe", "livenessProbe"):
        assert exporter[kind]["httpGet"] == {"path": "/", "port": "metrics"}, kind


def test_the_exporter_answers_its_probe_while_nginx_is_down() -> None:
    # Debian's prometheus-nginx-exporter with the manifest's arguments, on loopback against a
    # real nginx: its landing page, the probes' path, is served without reading nginx (v0.11
    # here and the image's v1.4 both register "/"), so nginx going down never fails the probes.
    exporter = container(web_template(render("prod")), "exporter")
    nginx = WebServer(free_port(), f"{LOOPBACK}:9", f"{LOOPBACK}:9").start()
    port = free_port()
    args = [
        f"--web.listen-address={LOOPBACK}:{port}"
        if a.startswith("--web.listen-address=")
        else f"--nginx.scrape-uri=http://{LOOPBACK}:{nginx.status_port}/stub_status"
        if a.startswith("--nginx.scrape-uri=")
        else a
        for a in exporter["args"]
    ]
    process = subprocess.Popen(
        [exporter_binary(), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://{LOOPBACK}:{port}"

    def probes_answer() -> None:
        for kind in ("readinessProbe", "livenessProbe"):
            probe = exporter[kind]["httpGet"]
            assert httpx.get(base + probe["path"], timeout=2).status_code == 200, kind

    try:
        wait_until(lambda: httpx.get(f"{base}/metrics", timeout=1).status_code == 200, 15, base)
        assert "nginx_up 1" in httpx.get(f"{base}/metrics", timeout=5).text
        probes_answer()
        nginx.stop()
        assert "nginx_up 0" in httpx.get(f"{base}/metrics", timeout=5).text
        probes_answer()
    finally:
        stop_process(process, grace=5)
        nginx.stop()


def test_prometheus_keeps_pods_by_the_labels_web_carries() -> None:
    config = yaml.safe_load((DEPLOY / "components" / "monitoring" / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "taskflow-pods"]
    keeps = {
        tuple(r["source_labels"]): r["regex"]
        for r in job["relabel_configs"]
        if r.get("action") == "keep"
    }
    assert keeps[("__meta_kubernetes_pod_label_app_kubernetes_io_part_of",)] == "taskflow"


def test_dev_relaxes_the_root_filesystem_of_the_web_container_by_name() -> None:
    patch = yaml.safe_load((DEPLOY / "overlays" / "dev" / "web-sync.yaml").read_text())
    (entry,) = patch["spec"]["template"]["spec"]["containers"]
    assert entry == {"name": "web", "securityContext": {"readOnlyRootFilesystem": False}}


def test_web_artifact_syncs_only_the_static_files() -> None:
    (artifact,) = [a for a in skaffold_artifacts(None) if a["image"] == "web"]
    assert artifact["context"] == "."
    assert artifact["docker"]["dockerfile"] == "services/web/Dockerfile"
    (rule,) = artifact["sync"]["manual"]
    assert rule["dest"] == "/app"
    assert "strip" not in rule
    assert "STATIC_ROOT=/app/services/web/static" in DOCKERFILE
    pattern = glob_to_regex(rule["src"])
    for path in ("services/web/static/index.html", "services/web/static/js/tasks.js",
                 "services/web/static/app.css"):  # fmt: skip
        assert pattern.match(path), path
    for path in ("services/web/nginx.conf.template", "services/web/start.sh",
                 "services/web/render-config.sh", "services/web/Dockerfile"):  # fmt: skip
        assert not pattern.match(path), f"{path} must rebuild the image"


def test_web_is_forwarded_on_8080() -> None:
    forwards = {f["resourceName"]: f for f in skaffold_config()["portForward"]}
    assert (forwards["web"]["port"], forwards["web"]["localPort"]) == (8080, 8080)
