"""Pod Security "restricted" everywhere, hardening beyond it, least-privilege RBAC, policies."""

from __future__ import annotations

import copy

import pytest
import yaml
from stats_api.scaling.resources import RESOURCES as SCALING_RESOURCES
from stats_api.scaling.resources import VERBS as SCALING_VERBS

from tests.deploy.deploy_model import (
    DEPLOY,
    OVERLAYS,
    Obj,
    PodTemplate,
    cluster_instances,
    container_ports,
    find,
    ident,
    load_yaml_documents,
    name_of,
    of_kind,
    overlay_missing_reason,
    pod_template_of,
    pod_templates,
    render,
    selects,
)
from tests.deploy.pod_security import restricted_violations

# Workloads that call the Kubernetes API and so mount a ServiceAccount token.
API_CLIENTS = {"prometheus", "kube-state-metrics", "loadgen", "stats-api"}


def rendered(overlay: str) -> tuple[Obj, ...]:
    reason = overlay_missing_reason(overlay)
    if reason is not None:
        pytest.skip(reason)
    return render(overlay)


def all_templates(overlay: str) -> list[PodTemplate]:
    templates = pod_templates(rendered(overlay))
    job = pod_template_of(load_yaml_documents(DEPLOY / "verify" / "smoke-job.yaml")[0])
    assert job is not None
    return [*templates, job]


# --- Pod Security Standards ------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_meets_pod_security_restricted(overlay: str) -> None:
    templates = all_templates(overlay)
    assert templates
    for template in templates:
        problems = restricted_violations(template.spec, template.annotations)
        assert not problems, f"{template.name}: {problems}"


def _api_spec() -> Obj:
    template = next(t for t in pod_templates(render("prod")) if name_of(t.owner) == "tasks-api")
    return copy.deepcopy(template.spec)


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (lambda s: s["initContainers"][0]["securityContext"].pop("allowPrivilegeEscalation"),
         "allowPrivilegeEscalation"),
        (lambda s: s["initContainers"][0]["securityContext"]["capabilities"].update(drop=[]),
         "drop must include ALL"),
        (lambda s: s["containers"][0]["securityContext"]["capabilities"].update(add=["NET_RAW"]),
         "NET_RAW"),
        (lambda s: s["containers"][0]["securityContext"].update(runAsNonRoot=False),
         "runAsNonRoot"),
        (lambda s: s["containers"][0]["securityContext"].update(runAsUser=0), "runAsUser"),
        (lambda s: s["containers"][0]["securityContext"].update(
            seccompProfile={"type": "Unconfined"}), "Unconfined"),
        (lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}), "hostPath"),
        (lambda s: s.update(hostNetwork=True), "hostNetwork"),
        (lambda s: s["containers"][0]["ports"][0].update(hostPort=8000), "hostPort"),
        (lambda s: s["containers"][0]["securityContext"].update(privileged=True), "privileged"),
        (lambda s: s["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
         "kernel.msgmax"),
    ],
)  # fmt: skip
def test_the_check_catches_each_control(mutation: object, expected: str) -> None:
    spec = _api_spec()
    assert restricted_violations(spec, {}) == []
    mutation(spec)  # type: ignore[operator]
    problems = restricted_violations(spec, {})
    assert any(expected in p for p in problems), problems


def test_the_check_honours_pod_level_defaults() -> None:
    spec = _api_spec()
    for container in spec["containers"] + spec["initContainers"]:
        del container["securityContext"]["runAsNonRoot"]
        del container["securityContext"]["seccompProfile"]
    assert restricted_violations(spec, {}) == []
    del spec["securityContext"]["runAsNonRoot"]
    assert any("runAsNonRoot" in p for p in restricted_violations(spec, {}))


# --- Hardening beyond the profile ------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_root_filesystems_are_read_only_except_where_dev_syncs(overlay: str) -> None:
    for template in all_templates(overlay):
        api_pod = template.labels.get("app.kubernetes.io/component") == "api"
        for container in template.containers():
            writable = container["securityContext"].get("readOnlyRootFilesystem") is not True
            is_api_server = api_pod and container in template.spec["containers"]
            # Skaffold syncs the UI's static files into the web container (not the exporter).
            is_web_server = template.labels.get("app.kubernetes.io/name") == "web" and (
                container["name"] == "web"
            )
            expected = overlay == "dev" and (is_api_server or is_web_server)
            assert writable == expected, f"{overlay} {template.name}/{container['name']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_containers_run_with_explicit_hardened_contexts(overlay: str) -> None:
    for template in all_templates(overlay):
        for container in template.containers():
            sc = container["securityContext"]
            where = f"{template.name}/{container['name']}"
            assert sc["runAsNonRoot"] is True, where
            assert sc["runAsUser"] >= 1, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_api_containers_run_as_the_image_user_with_tmp(overlay: str) -> None:
    for template in all_templates(overlay):
        if template.labels.get("app.kubernetes.io/component") != "api":
            continue
        tmp = {v["name"] for v in template.spec["volumes"] if "emptyDir" in v}
        for container in template.containers():
            sc = container["securityContext"]
            assert (sc["runAsUser"], sc["runAsGroup"]) == (10001, 10001)
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts.get("/tmp") in tmp, f"{template.name}/{container['name']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_api_clients_mount_a_service_account_token(overlay: str) -> None:
    for template in all_templates(overlay):
        name = template.labels["app.kubernetes.io/name"]
        mounts = template.spec.get("automountServiceAccountToken", True)
        assert mounts == (name in API_CLIENTS), template.name


# Objects that would expose a Service outside the cluster.
ENTRY_POINT_KINDS = {"Ingress", "Gateway", "HTTPRoute", "GRPCRoute", "TCPRoute", "TLSRoute"}


# Overlays whose web Service is a LoadBalancer (laptop clusters); prod keeps every Service
# ClusterIP behind your own authenticated Ingress or Gateway.
LOAD_BALANCED_OVERLAYS = ("dev", "loadtest", "ha")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_web_is_public_and_only_on_laptop_overlays(overlay: str) -> None:
    # Authentication is out of scope: no Ingress or Gateway ships; only web, which exposes
    # nothing but the UI and the API routes, may be a LoadBalancer, and only in dev/loadtest.
    docs = rendered(overlay)
    assert not [ident(d) for d in docs if d["kind"] in ENTRY_POINT_KINDS]
    for service in of_kind(docs, "Service"):
        public = overlay in LOAD_BALANCED_OVERLAYS and name_of(service) == "web"
        expected = "LoadBalancer" if public else "ClusterIP"
        assert service["spec"].get("type", "ClusterIP") == expected, ident(service)
        assert "externalIPs" not in service["spec"], ident(service)
    for template in pod_templates(docs):
        assert not template.spec.get("hostNetwork", False), template.name
        for container in template.containers():
            host_ports = [p for p in container.get("ports", []) if "hostPort" in p]
            assert not host_ports, f"{template.name}/{container['name']}"


# --- RBAC --------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rbac_is_namespaced_and_has_no_wildcards(overlay: str) -> None:
    docs = rendered(overlay)
    assert not of_kind(docs, "ClusterRole")
    assert not of_kind(docs, "ClusterRoleBinding")
    for role in of_kind(docs, "Role"):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(field, []), ident(role)
            assert "secrets" not in rule["resources"], ident(role)
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, ident(role)


# What Prometheus's Kubernetes service discovery lists and watches for each `role`.
SD_ROLE_READS = {
    "pod": {("", "pods")},
    "service": {("", "services")},
    "endpoints": {("", "endpoints"), ("", "services"), ("", "pods")},
    "endpointslice": {("discovery.k8s.io", "endpointslices"), ("", "services"), ("", "pods")},
}


def test_prometheus_may_only_read_what_its_discovery_uses() -> None:
    docs = render("dev")
    role = next(r for r in of_kind(docs, "Role") if name_of(r) == "prometheus")
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    config = yaml.safe_load((DEPLOY / "components" / "monitoring" / "prometheus.yml").read_text())
    roles = {
        sd["role"]
        for job in config["scrape_configs"]
        for sd in job.get("kubernetes_sd_configs", [])
    }
    assert roles == {"pod"}
    needed = set().union(*(SD_ROLE_READS[r] for r in roles))
    assert granted == {(g, r, v) for g, r in needed for v in ("get", "list", "watch")}
    binding = next(b for b in of_kind(docs, "RoleBinding") if name_of(b) == "prometheus")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "prometheus",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "prometheus", "namespace": "taskflow"}
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_stats_api_may_only_list_and_watch_what_scaling_reads(overlay: str) -> None:
    # The grants are derived from the calls the code makes (scaling/resources.py); the stub API
    # test in tests/stats_api/test_scaling.py shows the running code makes exactly those.
    docs = rendered(overlay)
    role = find(docs, "Role", "stats-api")
    assert role is not None
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert granted == {
        (r.group, r.plural, verb) for r in SCALING_RESOURCES for verb in SCALING_VERBS
    }
    bindings = [b for b in of_kind(docs, "RoleBinding") if b["roleRef"]["name"] == "stats-api"]
    assert [name_of(b) for b in bindings] == ["stats-api"]
    assert bindings[0]["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "stats-api",
    }
    assert bindings[0]["subjects"] == [
        {"kind": "ServiceAccount", "name": "stats-api", "namespace": "taskflow"}
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_role_is_bound_to_tasks_api(overlay: str) -> None:
    for binding in of_kind(rendered(overlay), "RoleBinding"):
        for subject in binding["subjects"]:
            assert subject["name"] != "tasks-api", ident(binding)


# --- NetworkPolicy (every overlay with in-cluster datastores carries the component) ------------

# prod's policies need your datastores' and Prometheus's addresses (README.md, "Security").
NETWORK_POLICY_OVERLAYS = ("dev", "loadtest", "ha")


def policies(docs: tuple[Obj, ...], direction: str) -> list[Obj]:
    return [p for p in of_kind(docs, "NetworkPolicy") if direction in p["spec"]["policyTypes"]]


def network_policy_docs(overlay: str) -> tuple[Obj, ...]:
    """An overlay and Skaffold's smoke-test Job, which runs in the same namespace."""
    smoke = load_yaml_documents(DEPLOY / "verify" / "smoke-job.yaml")
    return (*rendered(overlay), *smoke)


def network_pods(docs: tuple[Obj, ...]) -> list[PodTemplate]:
    """Every pod the policies must cover: the workloads' and a CloudNativePG cluster's."""
    return [*pod_templates(docs), *cluster_instances(docs)]


def test_the_policy_overlays_are_those_with_in_cluster_datastores() -> None:
    with_policies = {o for o in OVERLAYS if of_kind(rendered(o), "NetworkPolicy")}
    assert with_policies == set(NETWORK_POLICY_OVERLAYS)
    with_datastores = {
        o
        for o in OVERLAYS
        if find(rendered(o), "StatefulSet", "postgres") or cluster_instances(rendered(o))
    }
    assert with_datastores == with_policies


def allowed(docs: tuple[Obj, ...], source: PodTemplate, dest: PodTemplate, port: int) -> bool:
    """Whether policies let `source` open a TCP connection to `dest` on `port`."""

    def port_matches(rule: Obj, pod: PodTemplate) -> bool:
        if "ports" not in rule:
            return True
        named: dict[str | int, int] = {}
        for container in pod.containers(init=False):
            named |= container_ports(container)
        return any(named.get(p["port"], p["port"]) == port for p in rule["ports"])

    def peer_matches(peers: list[Obj] | None, pod: PodTemplate) -> bool:
        if peers is None:
            return True
        return any(
            "podSelector" in peer
            and "namespaceSelector" not in peer
            and selects(peer["podSelector"], pod.labels)
            for peer in peers
        )

    egress_ok = any(
        peer_matches(rule.get("to"), dest) and port_matches(rule, dest)
        for policy in policies(docs, "Egress")
        if selects(policy["spec"]["podSelector"], source.labels)
        for rule in policy["spec"].get("egress", [])
    )
    ingress_ok = any(
        peer_matches(rule.get("from"), source) and port_matches(rule, dest)
        for policy in policies(docs, "Ingress")
        if selects(policy["spec"]["podSelector"], dest.labels)
        for rule in policy["spec"].get("ingress", [])
    )
    return egress_ok and ingress_ok


def by_name(templates: list[PodTemplate], name: str) -> PodTemplate:
    return next(t for t in templates if t.labels.get("app.kubernetes.io/name") == name)


@pytest.mark.parametrize("overlay", NETWORK_POLICY_OVERLAYS)
def test_default_deny_covers_every_pod(overlay: str) -> None:
    docs = network_policy_docs(overlay)
    deny = [
        p
        for p in of_kind(docs, "NetworkPolicy")
        if p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert len(deny) == 1


@pytest.mark.parametrize("overlay", NETWORK_POLICY_OVERLAYS)
def test_dns_egress_to_kube_dns_on_udp_and_tcp(overlay: str) -> None:
    docs = network_policy_docs(overlay)
    dns = [
        rule
        for p in policies(docs, "Egress")
        if p["spec"]["podSelector"] == {}
        for rule in p["spec"].get("egress", [])
        if any(
            (peer.get("namespaceSelector") or {}).get("matchLabels")
            == {"kubernetes.io/metadata.name": "kube-system"}
            for peer in rule.get("to", [])
        )
    ]
    assert len(dns) == 1
    assert {(p["protocol"], p["port"]) for p in dns[0]["ports"]} == {("UDP", 53), ("TCP", 53)}


@pytest.mark.parametrize("overlay", NETWORK_POLICY_OVERLAYS)
def test_exactly_the_designed_flows_are_open(overlay: str) -> None:
    docs = network_policy_docs(overlay)
    pods = network_pods(docs)
    tasks, stats = by_name(pods, "tasks-api"), by_name(pods, "stats-api")
    postgres, redis = by_name(pods, "postgres"), by_name(pods, "redis")
    prometheus, grafana = by_name(pods, "prometheus"), by_name(pods, "grafana")
    for api in (tasks, stats):
        assert allowed(docs, api, postgres, 5432)
        assert allowed(docs, api, redis, 6379)
        assert allowed(docs, prometheus, api, 8000)
        assert not allowed(docs, api, prometheus, 9090)
        assert not allowed(docs, grafana, api, 8000)
    assert allowed(docs, grafana, prometheus, 9090)
    assert not allowed(docs, prometheus, postgres, 5432)
    assert not allowed(docs, grafana, postgres, 5432)
    assert not allowed(docs, grafana, redis, 6379)
    assert not allowed(docs, redis, postgres, 5432)
    assert not allowed(docs, tasks, stats, 8000), "APIs never call each other"
    smoke = by_name(pods, "smoke")
    assert allowed(docs, smoke, tasks, 8000)
    assert not allowed(docs, smoke, postgres, 5432)
    web = by_name(pods, "web")
    for api in (tasks, stats):
        assert allowed(docs, web, api, 8000), "web proxies to both APIs"
    # Anything may reach web's port (clients outside the cluster come through the Service);
    # only Prometheus its exporter.
    open_to_all = [
        rule
        for policy in policies(docs, "Ingress")
        if selects(policy["spec"]["podSelector"], web.labels)
        for rule in policy["spec"].get("ingress", [])
        if "from" not in rule
    ]
    assert [[p["port"] for p in rule["ports"]] for rule in open_to_all] == [["http"]]
    assert allowed(docs, smoke, web, 8080)
    assert allowed(docs, prometheus, web, 9113), "Prometheus scrapes web's exporter"
    assert not allowed(docs, grafana, web, 9113)
    assert not allowed(docs, web, postgres, 5432)
    assert not allowed(docs, web, redis, 6379)
    assert not allowed(docs, web, prometheus, 9090)
    # Observability: spans to Jaeger, scrapes of the exporters and kube-state-metrics, Grafana
    # reading traces; nothing else reaches them.
    ksm = by_name(pods, "kube-state-metrics") if overlay != "ha" else None
    assert allowed(docs, prometheus, redis, 9121), "redis_exporter beside Redis"
    if overlay != "ha":  # ha: the operator's PostgreSQL, and no kube-state-metrics
        assert allowed(docs, prometheus, postgres, 9187), "postgres_exporter beside PostgreSQL"
        assert not allowed(docs, tasks, postgres, 9187)
    if ksm is not None:
        for api in (tasks, stats):
            assert not allowed(docs, api, ksm, 8080)
        assert allowed(docs, prometheus, ksm, 8080)
        assert not allowed(docs, grafana, ksm, 8080)
        assert not allowed(docs, ksm, postgres, 5432)
        assert not allowed(docs, ksm, tasks, 8000)
    if overlay != "ha":  # the tracing component (not in ha: the reference node)
        jaeger = by_name(pods, "jaeger")
        for api in (tasks, stats):
            assert allowed(docs, api, jaeger, 4318), "APIs export OTLP/HTTP"
            assert allowed(docs, api, jaeger, 4317), "APIs may export OTLP/gRPC"
            assert not allowed(docs, api, jaeger, 16686)
        assert allowed(docs, grafana, jaeger, 16686)
        assert not allowed(docs, grafana, jaeger, 4318)
        assert not allowed(docs, web, jaeger, 4318)
        assert not allowed(docs, jaeger, postgres, 5432)
        assert not allowed(docs, prometheus, jaeger, 16686)
    if overlay == "loadtest":
        loadgen = by_name(pods, "loadgen")
        assert allowed(docs, loadgen, tasks, 8000)
        assert allowed(docs, loadgen, stats, 8000)
        assert not allowed(docs, loadgen, postgres, 5432)
        assert not allowed(docs, loadgen, redis, 6379)
    if overlay == "ha":
        # Streaming replication and pg_basebackup between the instances; nothing else new.
        assert allowed(docs, postgres, postgres, 5432)
        assert allowed(docs, postgres, postgres, 8000)
        assert not allowed(docs, postgres, redis, 6379)
        assert not allowed(docs, postgres, tasks, 8000)
        for other in (tasks, stats, web, prometheus, grafana, smoke, redis):
            assert not allowed(docs, other, postgres, 8000), "the status port is the operator's"


def test_the_operator_reaches_every_cluster_instance() -> None:
    # Its namespace and pod label as the release manifest sets them (cnpg-system).
    docs = network_policy_docs("ha")
    (instance,) = cluster_instances(docs)
    operator = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "cnpg-system"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "cloudnative-pg"}},
    }
    ports = {
        port["port"]
        for policy in policies(docs, "Ingress")
        if selects(policy["spec"]["podSelector"], instance.labels)
        for rule in policy["spec"].get("ingress", [])
        if operator in rule.get("from", [])
        for port in rule["ports"]
    }
    assert ports == {5432, 8000}
    egress = [
        rule
        for policy in policies(docs, "Egress")
        if selects(policy["spec"]["podSelector"], instance.labels)
        for rule in policy["spec"].get("egress", [])
        if any("ipBlock" in peer for peer in rule.get("to", []))
    ]
    assert [{p["port"] for p in rule["ports"]} for rule in egress] == [{443, 6443}], (
        "the instance manager talks to the API server"
    )


@pytest.mark.parametrize("overlay", NETWORK_POLICY_OVERLAYS)
def test_every_pod_is_selected_by_an_ingress_and_an_egress_policy(overlay: str) -> None:
    docs = network_policy_docs(overlay)
    for template in network_pods(docs):
        for direction in ("Ingress", "Egress"):
            assert any(
                selects(p["spec"]["podSelector"], template.labels)
                for p in policies(docs, direction)
            ), f"{template.name} is not isolated for {direction}"


@pytest.mark.parametrize("overlay", NETWORK_POLICY_OVERLAYS)
def test_every_policy_selects_existing_pods(overlay: str) -> None:
    docs = network_policy_docs(overlay)
    templates = network_pods(docs)
    for policy in of_kind(docs, "NetworkPolicy"):
        selected = [t for t in templates if selects(policy["spec"]["podSelector"], t.labels)]
        assert selected, f"{ident(policy)} selects no pod"
        rules = policy["spec"].get("egress", []) + policy["spec"].get("ingress", [])
        for rule in rules:
            for peer in rule.get("to", []) + rule.get("from", []):
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    peers = [t for t in templates if selects(peer["podSelector"], t.labels)]
                    assert peers, f"{ident(policy)}: peer {peer} matches no pod"


@pytest.mark.parametrize("overlay", NETWORK_POLICY_OVERLAYS)
def test_apiserver_egress_only_for_api_clients(overlay: str) -> None:
    docs = network_policy_docs(overlay)
    pods = network_pods(docs)
    policy = next(p for p in of_kind(docs, "NetworkPolicy") if name_of(p) == "apiserver-egress")
    selected = {
        t.labels["app.kubernetes.io/name"]
        for t in pods
        if selects(policy["spec"]["podSelector"], t.labels)
    }
    assert selected <= API_CLIENTS
    assert "prometheus" in selected
    assert "stats-api" in selected
    assert "tasks-api" not in selected
    (rule,) = policy["spec"]["egress"]
    assert {p["port"] for p in rule["ports"]} == {443, 6443}
