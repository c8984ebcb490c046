"""The manifests agree with each other and with the code: selectors, ports, routes, env, HPAs."""

from __future__ import annotations

import base64
import functools
import importlib
import os
import re

import pytest
from stats_api.scaling.objects import SERVICES as SCALING_SERVICES
from taskflow_core import migrate_command
from taskflow_core.probes import READY_DB_TIMEOUT
from taskflow_core.server import GRACEFUL_SHUTDOWN_SECONDS
from taskflow_core.settings import API_ENV_VARS, DATABASE_PARTS, ConfigError, Env, Settings

from tests.deploy.deploy_model import (
    DEPLOY,
    KUBERNETES_VERSIONS,
    OVERLAYS,
    Obj,
    PodTemplate,
    container_ports,
    cpu_millis,
    find,
    ident,
    name_of,
    of_kind,
    overlay_missing_reason,
    pod_templates,
    probes,
    provided_env,
    render,
    selects,
)

# Image (Skaffold artifact) -> the app factory its server runs.
APP_FACTORIES = {
    "tasks-api": "tasks_api.app:create_app",
    "stats-api": "stats_api.app:create_app",
}
API_IMAGES = tuple(APP_FACTORIES)
# Shutdown hooks (pool and Redis close) and slack after the server's drain bound.
SHUTDOWN_MARGIN_SECONDS = 5


def rendered(overlay: str) -> tuple[Obj, ...]:
    reason = overlay_missing_reason(overlay)
    if reason is not None:
        pytest.skip(reason)
    return render(overlay)


def api_templates(docs: tuple[Obj, ...]) -> list[PodTemplate]:
    found = [
        t
        for t in pod_templates(docs)
        if any(c["image"] in API_IMAGES for c in t.spec.get("containers", []))
    ]
    assert {name_of(t.owner) for t in found} >= set(API_IMAGES)
    return found


@functools.cache
def app_routes(image: str) -> frozenset[str]:
    """Paths of the app's GET routes, from the real app built as its server builds it."""
    module_name, _, factory = APP_FACTORIES[image].partition(":")
    module = importlib.import_module(module_name)
    saved = os.environ.get("DATABASE_URL")
    # Construction needs a database URL but connects to nothing (port 9 would refuse).
    os.environ["DATABASE_URL"] = "postgresql://taskflow@127.0.0.1:9/taskflow"
    try:
        app = getattr(module, factory)()
    finally:
        if saved is None:
            del os.environ["DATABASE_URL"]
        else:
            os.environ["DATABASE_URL"] = saved
    return frozenset(
        route.path for route in app.routes if "GET" in getattr(route, "methods", {"GET"})
    )


# --- Services ------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_selectors_match_pods_and_target_container_ports(overlay: str) -> None:
    docs = rendered(overlay)
    templates = pod_templates(docs)
    for service in of_kind(docs, "Service"):
        selected = [t for t in templates if selects(service["spec"]["selector"], t.labels)]
        assert selected, f"{ident(service)} selects no pod"
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            for template in selected:
                ports: dict[str | int, int] = {}
                for container in template.containers(init=False):
                    ports |= container_ports(container)
                assert target in ports, f"{ident(service)} targets {target!r} of {template.name}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_api_services_expose_port_8000_as_http(overlay: str) -> None:
    docs = rendered(overlay)
    for name in API_IMAGES:
        service = find(docs, "Service", name)
        assert service is not None
        assert service["spec"]["type"] == "ClusterIP"
        assert service["spec"]["ports"] == [
            {"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}
        ]


# --- Probes --------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probe_ports_are_container_ports(overlay: str) -> None:
    for template in pod_templates(rendered(overlay)):
        for container in template.containers():
            ports = container_ports(container)
            for kind, probe in probes(container):
                handler = probe.get("httpGet") or probe.get("tcpSocket") or probe.get("grpc")
                if handler is None:
                    assert "exec" in probe, f"{template.name}/{container['name']} {kind}"
                    continue
                where = f"{template.name}/{container['name']} {kind}"
                assert handler["port"] in ports, f"{where}: port {handler['port']!r}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_api_probes_hit_real_routes(overlay: str) -> None:
    for template in api_templates(rendered(overlay)):
        container = template.spec["containers"][0]
        routes = app_routes(container["image"])
        expected = {
            "startupProbe": "/health",
            "livenessProbe": "/health",
            "readinessProbe": "/ready",
        }
        for kind, path in expected.items():
            probe_path = container[kind]["httpGet"]["path"]
            assert probe_path == path, f"{template.name} {kind}"
            assert probe_path in routes, f"{template.name} {kind}: {probe_path} is not a route"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_metrics_annotations_point_at_a_real_route(overlay: str) -> None:
    for template in api_templates(rendered(overlay)):
        container = template.spec["containers"][0]
        annotations = template.annotations
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) in container_ports(container).values()
        assert annotations["prometheus.io/path"] in app_routes(container["image"])


def test_route_tables_are_the_real_apps() -> None:
    # Guards the route check itself: the tables hold the API routes and nothing invented.
    assert {"/tasks", "/health", "/ready", "/metrics"} <= app_routes("tasks-api")
    assert {"/stats", "/health", "/ready", "/metrics"} <= app_routes("stats-api")
    assert "/stats" not in app_routes("tasks-api")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_api_servers_wait_with_the_kubelets_sleep_action(overlay: str) -> None:
    # The images have no sleep binary; the sleep action is on by default from Kubernetes 1.30,
    # below every version the manifests are validated against.
    assert min(tuple(map(int, v.split("."))) for v in KUBERNETES_VERSIONS) >= (1, 30)
    for template in api_templates(rendered(overlay)):
        for container in template.spec["containers"]:
            assert set(container["lifecycle"]["preStop"]) == {"sleep"}, template.name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_termination_grace_covers_prestop_and_drain(overlay: str) -> None:
    for template in api_templates(rendered(overlay)):
        container = template.spec["containers"][0]
        pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert pre_stop >= 5
        grace = template.spec["terminationGracePeriodSeconds"]
        assert grace >= pre_stop + GRACEFUL_SHUTDOWN_SECONDS + SHUTDOWN_MARGIN_SECONDS


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_readiness_probe_outwaits_the_readiness_checks(overlay: str) -> None:
    # /ready answers 503 itself after its database timeout; the kubelet must wait longer, or a
    # slow database reads as a probe timeout instead of the app's answer.
    for template in api_templates(rendered(overlay)):
        probe = template.spec["containers"][0]["readinessProbe"]
        assert probe["timeoutSeconds"] > READY_DB_TIMEOUT


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_api_pods_run_migrate_first_on_their_own_image(overlay: str) -> None:
    for template in api_templates(rendered(overlay)):
        (app,) = template.spec["containers"]
        (init,) = template.spec["initContainers"]
        assert init["name"] == "migrate"
        assert init["command"] == ["taskflow-migrate"]
        assert init["image"] == app["image"] == name_of(template.owner)
        assert {"cpu", "memory"} <= set(init["resources"]["requests"])


# The APIs that call the Kubernetes API (stats-api's GET /scaling) and so mount a token.
KUBE_API_CALLERS = {"stats-api"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_api_pods_spread_and_only_stats_api_mounts_a_token(overlay: str) -> None:
    docs = rendered(overlay)
    for template in api_templates(docs):
        spec, name = template.spec, name_of(template.owner)
        mounts = name in KUBE_API_CALLERS
        assert spec["automountServiceAccountToken"] is mounts, name
        account = find(docs, "ServiceAccount", spec["serviceAccountName"])
        assert account is not None, name
        assert account["metadata"]["name"] == name  # one ServiceAccount per API
        assert account["automountServiceAccountToken"] is mounts, name
        constraints = spec["topologySpreadConstraints"]
        assert constraints
        for constraint in constraints:
            assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"
            assert selects(constraint["labelSelector"], template.labels)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scaling_finds_each_api_by_name_label_and_cpu_metric(overlay: str) -> None:
    # /scaling lists with a label selector on app.kubernetes.io/name, then reads the HPA and
    # the Deployment named after each API and the HPA's Resource metric `cpu` (objects.py).
    docs = rendered(overlay)
    for name in SCALING_SERVICES:
        hpa, deployment = (
            find(docs, "HorizontalPodAutoscaler", name),
            find(docs, "Deployment", name),
        )
        assert hpa is not None, name
        assert deployment is not None, name
        for obj in (hpa, deployment):
            assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == name, ident(obj)
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        cpu = [m for m in hpa["spec"]["metrics"] if m["resource"]["name"] == "cpu"]
        assert [m["type"] for m in cpu] == ["Resource"], name
        assert cpu[0]["resource"]["target"]["type"] == "Utilization", name


# --- Environment ---------------------------------------------------------------------------


def api_containers(overlay: str) -> list[tuple[str, Obj]]:
    return [
        (f"{t.name}/{c['name']}", c)
        for t in api_templates(rendered(overlay))
        for c in t.containers()
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_required_settings_are_provided(overlay: str) -> None:
    docs = rendered(overlay)
    for where, container in api_containers(overlay):
        env = provided_env(container, docs, overlay)
        assert not env.unresolved, f"{where} reads {env.unresolved}, defined nowhere"
        database = "DATABASE_URL" in env.names or set(DATABASE_PARTS) <= env.names
        assert database, f"{where}: neither DATABASE_URL nor all of {DATABASE_PARTS}"


# The server and its migrate initContainer share one ConfigMap; each reads its own part of it.
ENV_VARS = API_ENV_VARS | migrate_command.ENV_VARS


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_nothing_provided_goes_unread(overlay: str) -> None:
    docs = rendered(overlay)
    for where, container in api_containers(overlay):
        env = provided_env(container, docs, overlay)
        unread = {n for n in env.names if n not in ENV_VARS and not n.startswith("OTEL_")}
        assert not unread, f"{where} is given {sorted(unread)}, which the settings never read"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_provided_values_are_valid_settings(overlay: str) -> None:
    # The literal values (ConfigMap, env) parse: a typo would stop every pod at start.
    docs = rendered(overlay)
    for where, container in api_containers(overlay):
        values = provided_env(container, docs, overlay).values
        known = {k: v for k, v in values.items() if k in ENV_VARS}
        env = Env({**known, "DATABASE_URL": "postgresql://u@h/db"})
        try:
            if container["name"] == "migrate":
                migrate_command.MigrateSettings.read(env)
            else:
                Settings.read(env)
        except ConfigError as exc:
            pytest.fail(f"{where}: {exc}")


def test_dev_sets_reload_only_on_the_servers() -> None:
    for template in api_templates(render("dev")):
        (app,) = template.spec["containers"]
        assert {"name": "RELOAD", "value": "true"} in app["env"]
        for init in template.spec["initContainers"]:
            assert "RELOAD" not in {e["name"] for e in init.get("env", [])}


@pytest.mark.parametrize("overlay", ["dev", "loadtest"])
def test_demo_data_is_seeded_by_the_migrate_initcontainer(overlay: str) -> None:
    docs = rendered(overlay)
    for template in api_templates(docs):
        (init,) = template.spec["initContainers"]
        assert init["name"] == "migrate"
        assert provided_env(init, docs, overlay).values.get("SEED_DEMO_TASKS") == "1000"
        for app in template.spec["containers"]:
            assert "SEED_DEMO_TASKS" not in provided_env(app, docs, overlay).names, template.name


def test_prod_seeds_no_demo_data() -> None:
    docs = render("prod")
    for template in pod_templates(docs):
        for container in template.containers():
            names = provided_env(container, docs, "prod").names
            assert "SEED_DEMO_TASKS" not in names, f"{template.name}/{container['name']}"
    # Unset, the setting's default applies: no demo tasks.
    unset = Env({"DATABASE_URL": "postgresql://u@h/db"})
    assert migrate_command.MigrateSettings.read(unset).seed_demo_tasks == 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_env_entry_sets_a_value(overlay: str) -> None:
    # A patch entry that names a variable only to keep the env order must merge into a real one.
    for template in pod_templates(rendered(overlay)):
        for container in template.containers():
            for var in container.get("env", []):
                where = f"{overlay} {template.name}/{container['name']} {var['name']}"
                assert "value" in var or "valueFrom" in var, where


def example_keys(secret: str, overlay: str = "prod") -> dict[str, str]:
    """The keys and sample values of a Secret's example file (created outside the repo)."""
    example = DEPLOY / "overlays" / overlay / f"{secret}.env.example"
    lines = [ln.strip() for ln in example.read_text().splitlines()]
    pairs = [ln.split("=", 1) for ln in lines if ln and not ln.startswith("#")]
    return {key: value for key, value in pairs}


def test_prod_secret_examples_hold_the_settings_variables() -> None:
    docs = render("prod")
    referenced = {
        source["secretRef"]["name"]
        for _, container in api_containers("prod")
        for source in container.get("envFrom", [])
        if "secretRef" in source
    }
    # Every Secret the prod APIs read comes from outside the repo, as its example file shows.
    assert referenced == {"taskflow-db", "taskflow-redis"}
    assert not of_kind(docs, "Secret")
    database, redis = example_keys("taskflow-db"), example_keys("taskflow-redis")
    assert set(database) == set(DATABASE_PARTS)
    assert set(redis) == {"REDIS_URL"}
    # The examples are valid settings as they stand.
    settings = Settings.from_env({**database, **redis})
    assert settings.cache.redis_url == redis["REDIS_URL"]


SECRET_NAME = re.compile(r"(?i)pass|secret|token")
# A URL carrying a password: scheme://user:password@host
URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:(?P<password>[^/\s@]+)@", re.I)


def secret_values(overlay: str) -> set[str]:
    """The secret values an overlay's pods may get: its generated Secrets' passwords, and the
    documented external Secrets' sample ones (prod)."""
    pairs: list[tuple[str, str]] = []
    for secret in of_kind(render(overlay), "Secret"):
        pairs += [(k, base64.b64decode(v).decode()) for k, v in (secret.get("data") or {}).items()]
    for example in (DEPLOY / "overlays" / overlay).glob("*.env.example"):
        pairs += list(example_keys(example.name.removesuffix(".env.example"), overlay).items())
    values = {value for key, value in pairs if SECRET_NAME.search(key)}
    values |= {m.group("password") for _, value in pairs for m in URL_WITH_PASSWORD.finditer(value)}
    return {v for v in values if v}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_configmaps_hold_no_secrets(overlay: str) -> None:
    secrets = secret_values(overlay)
    if overlay != "prod":
        assert secrets, "the generated taskflow-db Secret has a password"
    for config in of_kind(rendered(overlay), "ConfigMap"):
        for key, value in (config.get("data") or {}).items():
            where = f"{ident(config)}: {key}"
            assert not SECRET_NAME.search(key), where
            assert not URL_WITH_PASSWORD.search(str(value)), where
            assert not [s for s in secrets if s in str(value)], where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_get_no_secret_as_a_literal(overlay: str) -> None:
    # Secrets reach pods through secretRef/secretKeyRef or Secret volumes, never `value:` (a
    # *_FILE variable names the path of a Secret's file).
    secrets = secret_values(overlay)
    for template in pod_templates(rendered(overlay)):
        for container in template.containers():
            for var in container.get("env", []):
                where = f"{template.name}/{container['name']} {var['name']}"
                if SECRET_NAME.search(var["name"]) and not var["name"].endswith("_FILE"):
                    assert "value" not in var, where
                assert not [s for s in secrets if s in str(var.get("value", ""))], where
                assert not URL_WITH_PASSWORD.search(str(var.get("value", ""))), where


# --- HPAs and PDBs -------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_hpa_target_exists_with_cpu_requests_and_no_replicas(overlay: str) -> None:
    docs = rendered(overlay)
    hpas = of_kind(docs, "HorizontalPodAutoscaler")
    assert {name_of(h) for h in hpas} >= set(API_IMAGES)
    for hpa in hpas:
        ref = hpa["spec"]["scaleTargetRef"]
        target = find(docs, ref["kind"], ref["name"])
        assert target is not None, f"{ident(hpa)} targets a missing {ref['kind']}/{ref['name']}"
        assert "replicas" not in target["spec"], f"{ident(target)} sets spec.replicas"
        spec = target["spec"]["template"]["spec"]
        for container in spec["containers"] + spec.get("initContainers", []):
            cpu = container.get("resources", {}).get("requests", {}).get("cpu")
            assert cpu is not None, f"{ident(target)}/{container['name']} has no CPU request"
            assert cpu_millis(cpu) > 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_hpas_scale_on_cpu_with_the_lab_behaviour(overlay: str) -> None:
    for hpa in of_kind(rendered(overlay), "HorizontalPodAutoscaler"):
        spec = hpa["spec"]
        assert spec["metrics"] == [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 50},
                },
            }
        ]
        expected = (1, 1) if overlay == "dev" else (2, 10)
        assert (spec["minReplicas"], spec["maxReplicas"]) == expected
        up, down = spec["behavior"]["scaleUp"], spec["behavior"]["scaleDown"]
        assert up["stabilizationWindowSeconds"] == 0
        assert up["selectPolicy"] == "Max"
        assert {(p["type"], p["value"], p["periodSeconds"]) for p in up["policies"]} == {
            ("Percent", 100, 15),
            ("Pods", 4, 15),
        }
        assert down["stabilizationWindowSeconds"] == 60
        assert [(p["type"], p["value"], p["periodSeconds"]) for p in down["policies"]] == [
            ("Percent", 50, 60)
        ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_api_has_one_pdb_allowing_one_disruption(overlay: str) -> None:
    docs = rendered(overlay)
    pdbs = of_kind(docs, "PodDisruptionBudget")
    for template in api_templates(docs):
        covering = [p for p in pdbs if selects(p["spec"]["selector"], template.labels)]
        assert len(covering) == 1, template.name
        assert covering[0]["spec"] == {
            "maxUnavailable": 1,
            "selector": covering[0]["spec"]["selector"],
        }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_and_limits(overlay: str) -> None:
    for template in pod_templates(rendered(overlay)):
        for container in template.containers():
            resources = container.get("resources", {})
            where = f"{template.name}/{container['name']}"
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), where
            assert {"cpu", "memory"} <= set(resources.get("limits", {})), where
