"""skaffold.yaml: valid for its schema; consistent with Dockerfiles, sources and overlays."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
from jsonschema.exceptions import best_match

from devstack.up import APIS as MAKE_UP_APIS
from tests.deploy.deploy_model import (
    DEPLOY,
    OVERLAYS,
    REPO,
    SKAFFOLD_SCHEMA,
    Obj,
    apply_json_patch,
    exact_third_party_image,
    find,
    glob_to_regex,
    load_yaml_documents,
    overlay_missing_reason,
    pod_templates,
    render,
    skaffold_artifacts,
    skaffold_config,
    skaffold_pipeline,
    skaffold_profile_for,
)

API_SERVICES = ("tasks-api", "stats-api")
SYNCED_SOURCES = ("services/{svc}/src/**/*.py", "libs/taskflow-core/src/**/*.py")
# Edits to these must rebuild the image (new pods run the migrate initContainer again).
REBUILD_ONLY = (
    "alembic/env.py",
    "alembic/versions/0001_example.py",
    "alembic.ini",
    "pyproject.toml",
    "uv.lock",
    "libs/taskflow-core/pyproject.toml",
    "services/tasks-api/pyproject.toml",
    "services/stats-api/pyproject.toml",
)


def tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return out.splitlines()


def test_skaffold_yaml_is_valid_for_its_schema() -> None:
    assert SKAFFOLD_SCHEMA.is_relative_to(REPO), "the schema is vendored in the repository"
    schema = json.loads(SKAFFOLD_SCHEMA.read_text())
    config = skaffold_config()
    assert config["apiVersion"] == "skaffold/v4beta14"
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(config))
    assert not errors, best_match(errors).message


def test_schema_check_catches_a_misspelt_field() -> None:
    schema = json.loads(SKAFFOLD_SCHEMA.read_text())
    config = skaffold_config()
    config["deploy"]["statusCheckDeadlineSecond"] = 600
    assert list(jsonschema.Draft7Validator(schema).iter_errors(config))


@pytest.mark.parametrize("svc", API_SERVICES)
def test_api_artifact_builds_from_the_repo_root(svc: str) -> None:
    artifact = next(a for a in skaffold_artifacts(None) if a["image"] == svc)
    assert artifact["context"] == "."
    assert artifact["docker"]["dockerfile"] == f"services/{svc}/Dockerfile"


@pytest.mark.parametrize("svc", API_SERVICES)
def test_sync_copies_python_sources_into_app(svc: str) -> None:
    artifact = next(a for a in skaffold_artifacts(None) if a["image"] == svc)
    rules = artifact["sync"]["manual"]
    assert {(r["src"], r["dest"]) for r in rules} == {
        (pattern.format(svc=svc), "/app") for pattern in SYNCED_SOURCES
    }
    assert all("strip" not in r for r in rules), "paths are kept under /app"
    files = tracked_files()
    for rule in rules:
        pattern = glob_to_regex(rule["src"])
        matched = [f for f in files if pattern.match(f)]
        assert matched, f"sync glob {rule['src']} matches no file"
        assert all(f.endswith(".py") for f in matched)


@pytest.mark.parametrize("svc", API_SERVICES)
def test_migrations_and_dependencies_are_never_synced(svc: str) -> None:
    artifact = next(a for a in skaffold_artifacts(None) if a["image"] == svc)
    patterns = [glob_to_regex(r["src"]) for r in artifact["sync"]["manual"]]
    for path in REBUILD_ONLY:
        assert not any(p.match(path) for p in patterns), f"{path} would be synced, not rebuilt"


def test_sync_glob_semantics() -> None:
    pattern = glob_to_regex("services/tasks-api/src/**/*.py")
    assert pattern.match("services/tasks-api/src/tasks_api/app.py")
    assert pattern.match("services/tasks-api/src/tasks_api/routes/tasks.py")
    assert not pattern.match("services/tasks-api/src/tasks_api/app.pyc")
    assert not pattern.match("services/stats-api/src/stats_api/app.py")


def dockerfile_copy_sources(dockerfile: Path) -> list[str]:
    """Sources of COPY/ADD lines that read the build context (not `--from=` stages)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    sources: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].upper() not in {"COPY", "ADD"}:
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]):
            continue
        if args and args[0].startswith("["):
            args = json.loads(" ".join(args))
        sources += args[:-1]
    return sources


@pytest.mark.parametrize("profile", [None, "loadtest"])
def test_dockerfile_copy_sources_exist(profile: str | None) -> None:
    files = tracked_files()
    for artifact in skaffold_artifacts(profile):
        dockerfile = REPO / artifact["context"] / artifact["docker"]["dockerfile"]
        assert dockerfile.exists(), f"{artifact['image']}: {dockerfile} missing"
        sources = dockerfile_copy_sources(dockerfile)
        assert sources, f"{dockerfile} copies nothing from the context"
        for source in sources:
            pattern = glob_to_regex(source.rstrip("/").removeprefix("./"))
            exists = (REPO / artifact["context"] / source).exists() or any(
                pattern.match(f) or f.startswith(source.rstrip("/") + "/") for f in files
            )
            assert exists, f"{dockerfile}: COPY source {source} does not exist"


def test_dev_pipeline_renders_the_dev_overlay() -> None:
    config = skaffold_config()
    assert config["manifests"]["kustomize"]["paths"] == ["deploy/overlays/dev"]
    assert skaffold_profile_for("prod") == "prod"
    assert skaffold_profile_for("loadtest") == "loadtest"


def test_loadtest_profile_adds_only_the_loadgen_artifact() -> None:
    default = skaffold_pipeline(None)["build"]
    build = skaffold_pipeline("loadtest")["build"]
    assert build["artifacts"][: len(default["artifacts"])] == default["artifacts"]
    (loadgen,) = build["artifacts"][len(default["artifacts"]) :]
    assert loadgen["image"] == "loadgen"
    assert loadgen["context"] == "."
    assert loadgen["docker"]["dockerfile"] == "services/loadgen/Dockerfile"
    # `skaffold run` never syncs; the generator is a Job, so nothing would reload it anyway.
    assert "sync" not in loadgen
    assert {k: v for k, v in build.items() if k != "artifacts"} == {
        k: v for k, v in default.items() if k != "artifacts"
    }


def test_profiles_never_redeclare_artifacts() -> None:
    # A profile adds artifacts with patches; a `build.artifacts` list would replace them all.
    default = {a["image"] for a in skaffold_artifacts(None)}
    for profile in skaffold_config()["profiles"]:
        assert "artifacts" not in profile.get("build", {}), profile["name"]
        for operation in profile.get("patches", []):
            if operation["path"].startswith("/build/artifacts"):
                assert operation["op"] == "add", profile["name"]
                assert operation["value"]["image"] not in default, profile["name"]


def test_json_patch_model() -> None:
    doc: Obj = {"build": {"artifacts": [{"image": "a"}], "local": {"useBuildkit": True}}}
    added = apply_json_patch(
        doc, {"op": "add", "path": "/build/artifacts/-", "value": {"image": "b"}}
    )
    assert [a["image"] for a in added["build"]["artifacts"]] == ["a", "b"]
    pushed = apply_json_patch(doc, {"op": "add", "path": "/build/local/push", "value": True})
    assert pushed["build"]["local"] == {"useBuildkit": True, "push": True}
    assert doc["build"]["local"] == {"useBuildkit": True}, "the input is left alone"
    with pytest.raises(AssertionError):
        apply_json_patch(doc, {"op": "replace", "path": "/build/tagPolicy", "value": {}})
    with pytest.raises(AssertionError):
        apply_json_patch(doc, {"op": "test", "path": "/build/artifacts/0/image", "value": "b"})


def test_loadtest_overlay_runs_no_reloader() -> None:
    if overlay_missing_reason("loadtest"):
        pytest.skip(overlay_missing_reason("loadtest") or "")
    for template in pod_templates(render("loadtest")):
        for container in template.containers():
            names = {e["name"] for e in container.get("env", [])}
            assert "RELOAD" not in names, template.name


def test_prod_profile_pushes_digest_tagged_images() -> None:
    default = skaffold_pipeline(None)["build"]
    build = skaffold_pipeline("prod")["build"]
    assert build["local"] == {**default["local"], "push": True}
    assert build["tagPolicy"] == {"inputDigest": {}}
    assert build["artifacts"] == default["artifacts"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_image_is_an_artifact_or_exactly_tagged(overlay: str) -> None:
    if overlay_missing_reason(overlay):
        pytest.skip(overlay_missing_reason(overlay) or "")
    artifacts = {a["image"] for a in skaffold_artifacts(skaffold_profile_for(overlay))}
    used: set[str] = set()
    for template in pod_templates(render(overlay)):
        for container in template.containers():
            image = container["image"]
            used.add(image)
            assert image in artifacts or exact_third_party_image(image), (
                f"{template.name}/{container['name']}: {image} is neither a Skaffold artifact "
                "nor an exactly tagged image"
            )
    # Every artifact the pipeline builds is deployed by it.
    assert artifacts <= used


def test_image_pin_rule() -> None:
    # Made-up versions: the real references live in one file each (test below).
    assert exact_third_party_image("postgres:16.2-bookworm")
    assert exact_third_party_image("prom/prometheus:v2.9.1")
    assert exact_third_party_image("busybox@sha256:" + "a" * 64)
    assert exact_third_party_image("redis:6.2.1-bookworm")
    loose = ("postgres", "postgres:latest", "postgres:15", "redis:7.4-bookworm", "grafana:11.6")
    for image in loose:
        assert not exact_third_party_image(image), image


def third_party_images() -> set[str]:
    """Every image the stack runs that Skaffold does not build: overlays' and verify's."""
    images = {case["container"]["image"] for case in skaffold_config()["verify"]}
    for overlay in OVERLAYS:
        artifacts = {a["image"] for a in skaffold_artifacts(skaffold_profile_for(overlay))}
        for template in pod_templates(render(overlay)):
            images |= {c["image"] for c in template.containers() if c["image"] not in artifacts}
    return images


def test_each_third_party_image_is_pinned_in_exactly_one_file() -> None:
    images = third_party_images()
    assert images, "no third-party image found"
    contents = {f: (REPO / f).read_bytes() for f in tracked_files() if (REPO / f).is_file()}
    for image in sorted(images):
        assert exact_third_party_image(image), image
        holders = [f for f, data in contents.items() if image.encode() in data]
        assert len(holders) == 1, f"{image} is written in {holders}: pin it in one place"


def test_verify_image_is_exactly_tagged() -> None:
    for case in skaffold_config()["verify"]:
        assert exact_third_party_image(case["container"]["image"])


def test_verify_runs_in_cluster_with_a_restricted_job() -> None:
    (case,) = skaffold_config()["verify"]
    manifest = case["executionMode"]["kubernetesCluster"]["jobManifestPath"]
    (job,) = load_yaml_documents(REPO / manifest)
    assert job["kind"] == "Job"
    assert job["metadata"]["namespace"] == "taskflow"
    # Skaffold patches the container whose name matches the verify container, replacing its
    # image, command and args: skaffold.yaml is the one place they are written.
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["name"] == case["container"]["name"]
    assert not {"image", "command", "args"} & set(container), "written in skaffold.yaml"
    script = " ".join(case["container"]["args"])
    for url in ("tasks-api.taskflow.svc", "stats-api.taskflow.svc", "web.taskflow.svc"):
        assert url in script
    for path in ("/ready", "/tasks", "/stats", '$web/"', "$web/api/stats"):
        assert path in script


def test_port_forwards_name_real_services() -> None:
    docs = render("dev")
    forwards = skaffold_config()["portForward"]
    assert {f["resourceName"] for f in forwards} == {
        "web",
        "tasks-api",
        "stats-api",
        "grafana",
        "prometheus",
        "jaeger",
    }
    local_ports = [f["localPort"] for f in forwards]
    assert len(set(local_ports)) == len(local_ports)
    for forward in forwards:
        service: Obj | None = find(docs, "Service", forward["resourceName"])
        assert service is not None, forward
        assert forward["namespace"] == service["metadata"]["namespace"]
        assert forward["port"] in [p["port"] for p in service["spec"]["ports"]]
    by_name = {f["resourceName"]: f["localPort"] for f in forwards}
    # The same local ports as `make up`, so a client works against either.
    for api in MAKE_UP_APIS:
        assert by_name[api.name] == api.default_port, api.name


def test_status_check_tolerates_the_migrate_wait() -> None:
    deploy = skaffold_config()["deploy"]
    assert deploy["tolerateFailuresUntilDeadline"] is True
    # PostgreSQL's first start plus init restarts with back-off (up to 5 min between tries).
    assert deploy["statusCheckDeadlineSeconds"] >= 300
    dev = render("dev")
    for deployment in [d for d in dev if d["kind"] == "Deployment"]:
        progress = deployment["spec"].get("progressDeadlineSeconds", 600)
        # A smaller Deployment deadline would cut Skaffold's short.
        assert progress >= deploy["statusCheckDeadlineSeconds"], deployment["metadata"]["name"]


def test_kustomize_paths_exist() -> None:
    config = skaffold_config()
    paths = list(config["manifests"]["kustomize"]["paths"])
    for profile in config["profiles"]:
        paths += profile.get("manifests", {}).get("kustomize", {}).get("paths", [])
    for path in paths:
        assert (REPO / path / "kustomization.yaml").exists(), path
        assert (REPO / path).is_relative_to(DEPLOY)


def final_stage_copies(dockerfile: Path) -> list[tuple[str, str]]:
    """(source, absolute destination) of the last stage's COPYs from the build context."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    last_from = max(i for i, ln in enumerate(lines) if ln.upper().startswith("FROM "))
    workdir = "/"
    copies = []
    for line in lines[last_from + 1 :]:
        words = line.split()
        if words[0].upper() == "WORKDIR":
            workdir = str(Path(workdir, words[1]))
        elif words[0].upper() == "COPY" and not any(w.startswith("--from") for w in words):
            args = [w for w in words[1:] if not w.startswith("--")]
            dest = args[-1]
            base = dest if dest.startswith("/") else str(Path(workdir, dest))
            copies += [(src, base + ("/" if dest.endswith("/") else "")) for src in args[:-1]]
    return copies


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path (or a parent of it) decides."""
    excluded = False
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = glob_to_regex(raw.removeprefix("!").rstrip("/"))
        if any(pattern.match(c) for c in candidates):
            excluded = not negate
    return excluded


@pytest.mark.parametrize("svc", API_SERVICES)
def test_synced_files_land_where_the_image_has_them(svc: str) -> None:
    # Skaffold writes <dest>/<path in the context>; the image must hold that very file there,
    # copied from the context (and not dockerignored), or the server never sees the edit.
    artifact = next(a for a in skaffold_artifacts(None) if a["image"] == svc)
    dockerfile = REPO / artifact["docker"]["dockerfile"]
    ignore_file = dockerfile.with_name(dockerfile.name + ".dockerignore")
    patterns = [
        ln.strip()
        for ln in ignore_file.read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    copies = final_stage_copies(dockerfile)
    files = tracked_files()
    for rule in artifact["sync"]["manual"]:
        synced = [f for f in files if glob_to_regex(rule["src"]).match(f)]
        for path in synced:
            target = f"{rule['dest'].rstrip('/')}/{path}"
            assert not dockerignored(path, patterns), f"{path} is dockerignored"
            placed = {
                dest + path.removeprefix(src.rstrip("/") + "/")
                for src, dest in copies
                if src.endswith("/") and path.startswith(src)
            }
            assert target in placed, f"{path}: sync writes {target}, the image has {placed}"


def test_dockerignore_rule() -> None:
    patterns = ["*", "!services/tasks-api/src/", "**/__pycache__"]
    assert not dockerignored("services/tasks-api/src/tasks_api/app.py", patterns)
    assert dockerignored("services/stats-api/src/stats_api/app.py", patterns)
    assert dockerignored("services/tasks-api/src/tasks_api/__pycache__/app.pyc", patterns)


@pytest.mark.parametrize("svc", API_SERVICES)
def test_migrations_and_dependencies_are_build_dependencies(svc: str) -> None:
    # Skaffold rebuilds when a COPY source (minus the dockerignore) changes: these must be.
    artifact = next(a for a in skaffold_artifacts(None) if a["image"] == svc)
    dockerfile = REPO / artifact["docker"]["dockerfile"]
    ignore_file = dockerfile.with_name(dockerfile.name + ".dockerignore")
    patterns = [
        ln.strip()
        for ln in ignore_file.read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    sources = [s.rstrip("/") for s in dockerfile_copy_sources(dockerfile)]
    rebuild = [
        "alembic.ini",
        "alembic/env.py",
        "pyproject.toml",
        "uv.lock",
        "libs/taskflow-core/pyproject.toml",
        f"services/{svc}/pyproject.toml",
    ]
    for path in rebuild:
        assert (REPO / path).exists(), path
        covered = any(path == s or path.startswith(s + "/") for s in sources)
        assert covered, f"{svc}: no COPY reads {path}, so editing it would not rebuild"
        assert not dockerignored(path, patterns), f"{svc}: {path} is dockerignored"
    other = next(s for s in API_SERVICES if s != svc)
    assert not any(s.startswith(f"services/{other}") for s in sources), "a rebuild per edit"
