"""The Docker CLI as the container tests drive it: Debian's client, BuildKit, host network only."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
DOCKER = os.environ.get("DOCKER", "/usr/bin/docker")
STANDIN_BASE = "taskflow-ci/python-base:bookworm"
# One tag per checkout: two clones testing at once on one engine never run each other's images.
CHECKOUT_TAG = "checkout-" + hashlib.sha256(str(REPO).encode()).hexdigest()[:10]
APP_USER = "10001:10001"

# How the restricted Pod Security profile runs every TaskFlow container.
RESTRICTED = (
    "--network", "host",
    "--read-only", "--tmpfs", "/tmp",
    "--user", APP_USER,
    "--cap-drop", "ALL",
    "--security-opt", "no-new-privileges",
)  # fmt: skip
# The dev overlay: the same user and caps, only the root filesystem is writable (for sync).
DEV = (
    "--network", "host",
    "--tmpfs", "/tmp",
    "--user", APP_USER,
    "--cap-drop", "ALL",
    "--security-opt", "no-new-privileges",
)  # fmt: skip


def docker(
    *args: str, timeout: float = 120, check: bool = True, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one docker CLI command; text output; raise with its stderr when `check` fails."""
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    result = subprocess.run(
        [DOCKER, *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"docker {' '.join(args[:3])} exited {result.returncode}:\n{result.stderr[-4000:]}"
        )
    return result


@dataclass(frozen=True)
class Build:
    image_id: str
    seconds: float
    log: str


def build(
    service: str,
    tag: str,
    context: Path = REPO,
    base: str = STANDIN_BASE,
    timeout: float = 900,
    base_arg: str = "PYTHON_IMAGE",
) -> Build:
    """Build services/<service>/Dockerfile from `context` (the repo root) on `base`, given to
    the Dockerfile as the build argument `base_arg`."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="taskflow-dockerfile-") as staging:
        dockerfile = stage_dockerfile(context / "services" / service / "Dockerfile", Path(staging))
        result = docker(
            "build",
            "--network", "host",
            "--build-arg", f"{base_arg}={base}",
            "--progress", "plain",
            "-f", str(dockerfile),
            "-t", tag,
            str(context),
            timeout=timeout,
        )  # fmt: skip
    image_id = docker("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()
    return Build(image_id, time.monotonic() - started, result.stderr)


def stage_dockerfile(dockerfile: Path, staging: Path) -> Path:
    """Copy a Dockerfile and its Dockerfile.dockerignore with fresh mtimes.

    Docker 20.10's CLI syncs every build's Dockerfile under one name per context dir and skips
    a file whose size and mtime match the last one sent: tasks-api's and stats-api's Dockerfiles
    (same size, same mtime after a tarball checkout) would silently build each other.
    """
    staged = staging / "Dockerfile"
    shutil.copyfile(dockerfile, staged)
    ignore = dockerfile.with_name("Dockerfile.dockerignore")
    if ignore.exists():
        shutil.copyfile(ignore, staging / "Dockerfile.dockerignore")
    return staged


def image_config(tag: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(docker("image", "inspect", tag).stdout)[0]
    return config


def run_once(
    image: str,
    *command: str,
    options: tuple[str, ...] = RESTRICTED,
    env: dict[str, str] | None = None,
    entrypoint: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`docker run --rm` to completion; the caller asserts on the exit code."""
    return docker(
        *run_args(image, command, options, env or {}, entrypoint, detach=False),
        timeout=timeout,
        check=False,
    )


def run_args(
    image: str,
    command: tuple[str, ...],
    options: tuple[str, ...],
    env: dict[str, str],
    entrypoint: str | None,
    detach: bool,
) -> list[str]:
    args = ["run", "-d" if detach else "--rm", *options]
    for name, value in env.items():
        args += ["-e", f"{name}={value}"]
    if entrypoint is not None:
        args += ["--entrypoint", entrypoint]
    return [*args, image, *command]


class Container:
    """A detached container; `remove()` deletes it (tests call it from a fixture's finally)."""

    def __init__(self, container_id: str) -> None:
        self.id = container_id

    @classmethod
    def start(
        cls,
        image: str,
        *command: str,
        options: tuple[str, ...] = RESTRICTED,
        env: dict[str, str] | None = None,
        entrypoint: str | None = None,
    ) -> Container:
        name = ("--name", f"taskflow-test-{uuid.uuid4().hex[:12]}")
        args = run_args(image, command, (*name, *options), env or {}, entrypoint, detach=True)
        return cls(docker(*args).stdout.strip())

    def inspect(self) -> dict[str, Any]:
        info: dict[str, Any] = json.loads(docker("inspect", self.id).stdout)[0]
        return info

    def running(self) -> bool:
        return bool(self.inspect()["State"]["Running"])

    def logs(self) -> str:
        result = docker("logs", self.id, check=False)
        return result.stdout + result.stderr

    def exec(
        self, *command: str, user: str = "10001", stdin: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        args = ["exec", *(["-i"] if stdin is not None else []), "--user", user, self.id]
        return subprocess.run(
            [DOCKER, *args, *command],
            input=stdin,
            capture_output=True,
            timeout=60,
            check=False,
        )

    def remove(self) -> None:
        docker("rm", "--force", "--volumes", self.id, check=False, timeout=60)


# start_api(image, database_url, options=None, extra_env=None) -> (container, base URL)
StartApi = Callable[..., tuple["Container", str]]


def wait_http(
    container: Container, url: str, timeout: float = 90, status: int = 200
) -> httpx.Response:
    """Poll `url` until it answers `status`; fail early, with the logs, if the container exits."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == status:
                return response
            last = f"{response.status_code} {response.text[:300]}"
        except httpx.HTTPError as exc:
            last = exc
        if not container.running():
            raise AssertionError(f"container exited before {url} answered:\n{container.logs()}")
        time.sleep(0.25)
    raise AssertionError(f"{url} not {status} after {timeout}s ({last!r}):\n{container.logs()}")


def tar_of(files: dict[str, bytes]) -> bytes:
    """A tarball like Skaffold's sync streams: repo-relative paths under the sync dest (app/...)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path, content in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(content)
            info.mode = 0o644
            info.mtime = int(time.time())
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()
