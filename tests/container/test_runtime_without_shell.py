"""The Python images need no shell at runtime: with every shell of the image made unexecutable, the
migrate initContainer's command, both API servers and the load generator do their whole job.

Their entrypoints are exec form (a JSON array naming the program, no `sh -c`), and the programs
are Python console scripts whose shebang is the venv's interpreter. The base image keeps its shell
(python:3.12-slim has one); a distroless base could drop it. The web image is the exception: its
start script renders nginx's configuration with sh, then execs nginx (test_web_image.py shows
PID 1 is nginx).
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.container.dockerctl import RESTRICTED, StartApi, image_config, run_once

pytestmark = [pytest.mark.container, pytest.mark.timeout(1200)]

SHELL_NAMES = ("sh", "bash", "dash", "rbash")


def shells(image: str) -> list[str]:
    """Every shell the image holds: /etc/shells and the usual names, resolved to real files."""
    script = (
        "import os, shutil\n"
        "names = [l.strip() for l in open('/etc/shells') if l.startswith('/')]\n"
        f"names += [shutil.which(n) or '' for n in {SHELL_NAMES!r}]\n"
        "print('\\n'.join(sorted({os.path.realpath(n) for n in names if n and os.path.exists(n)})))"
    )
    result = run_once(image, "-c", script, entrypoint="python3")
    assert result.returncode == 0, result.stderr
    found = result.stdout.split()
    assert found, "the base has a shell to take away"
    return found


def without_shells(image: str) -> tuple[str, ...]:
    """The restricted run, each shell replaced by /dev/null (exec: permission denied)."""
    masks: list[str] = []
    for path in shells(image):
        masks += ["--mount", f"type=bind,source=/dev/null,target={path},readonly"]
    return (*RESTRICTED, *masks)


@pytest.mark.parametrize("service", ["tasks-api", "stats-api", "loadgen"])
def test_entrypoint_is_exec_form_without_a_shell(
    api_images: dict[str, str], loadgen_image: str, service: str
) -> None:
    image = {**api_images, "loadgen": loadgen_image}[service]
    config = image_config(image)["Config"]
    entrypoint = config["Entrypoint"]
    assert isinstance(entrypoint, list)
    assert entrypoint[0] not in {"sh", "/bin/sh", "bash", "/bin/bash"}, entrypoint
    assert not config["Cmd"]
    # The program itself: no shell script on the way (a console script's shebang is python).
    check = (
        "import shutil, sys\n"
        f"path = shutil.which({entrypoint[0]!r})\n"
        "head = open(path, 'rb').read(128)\n"
        "print(head.splitlines()[0].decode() if head.startswith(b'#!') else 'binary')"
    )
    result = run_once(image, "-c", check, entrypoint="python3")
    assert result.returncode == 0, result.stderr
    first = result.stdout.strip()
    assert first == "binary" or first.startswith("#!/opt/venv/bin/python"), first


def test_migrate_serve_and_load_with_no_shell_in_the_image(
    api_images: dict[str, str],
    loadgen_image: str,
    empty_database_url: str,
    start_api: StartApi,
) -> None:
    options = {name: without_shells(image) for name, image in api_images.items()}
    # The masks bite: a shell cannot start in such a container.
    probe = run_once(
        api_images["tasks-api"], "-c", "true", entrypoint="sh", options=options["tasks-api"]
    )
    assert probe.returncode != 0

    for name, image in api_images.items():
        env = {"DATABASE_URL": empty_database_url, "SEED_DEMO_TASKS": "5"}
        migrated = run_once(image, env=env, entrypoint="taskflow-migrate", options=options[name])
        assert migrated.returncode == 0, migrated.stdout[-2000:] + migrated.stderr[-2000:]

    _, tasks = start_api(api_images["tasks-api"], empty_database_url, options=options["tasks-api"])
    _, stats = start_api(api_images["stats-api"], empty_database_url, options=options["stats-api"])
    created = httpx.post(f"{tasks}/tasks", json={"title": "no shell needed"}, timeout=10)
    assert created.status_code == 201, created.text
    assert httpx.get(f"{stats}/stats", timeout=10).json()["total"] == 6

    result = run_once(
        loadgen_image,
        "run",
        "--tasks-url", tasks,
        "--stats-url", stats,
        "--stages", "10:2s",
        "--report", "/tmp/loadgen-report.json",
        "--metrics-port", "0",
        "--progress-interval", "0",
        "--print-json",
        # The image's machinery, not performance: generous bounds for a busy machine.
        "--lag-bound-ms", "500",
        "--p99-ms", "2000",
        options=without_shells(loadgen_image),
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("LOADGEN_REPORT "))
    report = json.loads(line.removeprefix("LOADGEN_REPORT "))
    assert report["total"]["sent"] > 0
    assert report["total"]["ok"] == report["total"]["sent"]
