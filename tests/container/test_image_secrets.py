"""No secret is baked into an image: no secret-like variable or build argument in its configuration
or history, no env or credentials file in any layer, and no known secret value in a layer's bytes.

Nothing secret exists at build time (the Dockerfiles take only the base image as an argument, and
each Dockerfile.dockerignore is an allow-list that also drops env and credentials files); this
shows the images as built hold none either, layer by layer (`docker save`), deleted files included.
"""

from __future__ import annotations

import base64
import re
import subprocess
import tarfile
from collections.abc import Iterator
from typing import IO

import pytest

from tests.container.dockerctl import DOCKER, docker, image_config
from tests.deploy.deploy_model import of_kind, render

pytestmark = [pytest.mark.container, pytest.mark.timeout(1200)]

IMAGES = ("tasks-api", "stats-api", "loadgen", "web")
SECRET_NAME = re.compile(r"(?i)pass|secret|token|credential|private|api_?key")
SECRET_FILE = re.compile(
    r"(^|/)(\.env|\.env\.[^/]+|[^/]+\.env|\.pgpass|\.netrc|\.git-credentials|\.pypirc"
    r"|id_rsa|id_ecdsa|id_ed25519)$"
)


@pytest.fixture(scope="module")
def images(api_images: dict[str, str], loadgen_image: str, web_image: str) -> dict[str, str]:
    return {**api_images, "loadgen": loadgen_image, "web": web_image}


def known_secrets() -> list[bytes]:
    """Secret values the repository itself holds: the dev overlay's generated passwords."""
    values = []
    for secret in of_kind(render("dev"), "Secret"):
        for key, value in (secret.get("data") or {}).items():
            if SECRET_NAME.search(key):
                values.append(base64.b64decode(value))
    assert values, "the dev overlay's taskflow-db Secret has a password"
    return values


@pytest.mark.parametrize("service", IMAGES)
def test_no_secret_like_variable_or_build_argument(images: dict[str, str], service: str) -> None:
    config = image_config(images[service])["Config"]
    names = [item.split("=", 1)[0] for item in config["Env"] or []]
    assert not [name for name in names if SECRET_NAME.search(name)], names
    # Every step's command line, build arguments included (BuildKit records `|n NAME=value`).
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", images[service])
    assigned = set(re.findall(r"\b([A-Za-z_][A-Za-z0-9_]*)=", history.stdout))
    assert not [name for name in assigned if SECRET_NAME.search(name)], sorted(assigned)


def layers(saved: IO[bytes]) -> Iterator[tarfile.TarFile]:
    """Each layer of a `docker save` stream, as a tar stream (legacy and OCI layouts)."""
    with tarfile.open(fileobj=saved, mode="r|") as archive:
        for member in archive:
            is_layer = member.name.endswith("/layer.tar") or member.name.startswith("blobs/")
            if not (member.isfile() and is_layer):
                continue
            blob = archive.extractfile(member)
            assert blob is not None
            try:
                with tarfile.open(fileobj=blob, mode="r|*") as layer:
                    yield layer
            except tarfile.ReadError:
                continue  # an OCI config or manifest blob


@pytest.mark.parametrize("service", IMAGES)
def test_no_layer_holds_an_env_file_or_a_known_secret(images: dict[str, str], service: str) -> None:
    needles = known_secrets()
    files, holding, scanned = [], [], 0
    save = subprocess.Popen([DOCKER, "save", images[service]], stdout=subprocess.PIPE)
    assert save.stdout is not None
    try:
        for layer in layers(save.stdout):
            for entry in layer:
                scanned += 1
                if SECRET_FILE.search(entry.name):
                    files.append(entry.name)
                content = layer.extractfile(entry) if entry.isfile() else None
                if content is not None:
                    data = content.read()
                    holding += [entry.name for needle in needles if needle in data]
    finally:
        save.stdout.close()
        assert save.wait(120) == 0
    assert scanned > 1000, f"only {scanned} entries: not the image's layers"
    assert files == []
    assert holding == []
