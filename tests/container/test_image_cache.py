"""Layer caching: edits outside an image's inputs rebuild nothing; a code edit rebuilds only code.

Builds a copy of the repository (the real tree is never touched) and compares images and layers.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.container.dockerctl import CHECKOUT_TAG, REPO, build, docker, image_config

pytestmark = [pytest.mark.container, pytest.mark.timeout(1200)]

TAG = f"taskflow-test/tasks-api:cache-probe-{CHECKOUT_TAG}"
# Everything an image could take from the context, plus the places the test adds noise to.
INPUTS = ("pyproject.toml", "uv.lock", "alembic.ini", "alembic", "libs", "services")
SKIP = shutil.ignore_patterns("__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache")


def _copy_file(source: str, target: str) -> None:
    """copy2 that tolerates a file another process removed while the tree is copied."""
    with contextlib.suppress(FileNotFoundError):
        shutil.copy2(source, target)


@pytest.fixture
def repo_copy(tmp_path: Path, base_image: str) -> Iterator[Path]:
    copy = tmp_path / "repo"
    for name in INPUTS:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=SKIP, copy_function=_copy_file)
        else:
            copy.mkdir(exist_ok=True)
            shutil.copy2(source, copy / name)
    (copy / "tests").mkdir()
    try:
        yield copy
    finally:
        docker("image", "rm", "--force", TAG, check=False)


def _layers(tag: str) -> list[str]:
    layers: list[str] = image_config(tag)["RootFS"]["Layers"]
    return layers


def test_unrelated_edits_keep_the_image_and_code_edits_keep_the_dependencies(
    repo_copy: Path, base_image: str
) -> None:
    first = build("tasks-api", TAG, context=repo_copy, base=base_image)
    layers = _layers(TAG)

    # Tests, other services, docs, deploy files and tool config are outside the image.
    (repo_copy / "tests" / "test_new_probe.py").write_text("def test_x() -> None: ...\n")
    (repo_copy / "services" / "stats-api" / "src" / "stats_api" / "probe.py").write_text("X = 1\n")
    (repo_copy / "services" / "tasks-api" / "NOTES.md").write_text("notes\n")
    (repo_copy / "services" / "tasks-api" / "tests").mkdir(exist_ok=True)
    (repo_copy / "services" / "tasks-api" / "tests" / "test_probe.py").write_text("X = 1\n")
    (repo_copy / "libs" / "taskflow-core" / "README.md").write_text("notes\n")
    (repo_copy / "docs-probe.md").write_text("docs\n")
    (repo_copy / "deploy").mkdir(exist_ok=True)
    (repo_copy / "deploy" / "probe.yaml").write_text("kind: Probe\n")
    src_cache = repo_copy / "services" / "tasks-api" / "src" / "tasks_api" / "__pycache__"
    src_cache.mkdir(exist_ok=True)
    (src_cache / "app.cpython-311.pyc").write_bytes(b"\0")
    root = repo_copy / "pyproject.toml"
    root.write_text(root.read_text() + "\n# a tool-config edit: same locked dependency set\n")
    # Secrets left in copied folders never reach a layer (Dockerfile.dockerignore).
    package = repo_copy / "services" / "tasks-api" / "src" / "tasks_api"
    for name in (".env", ".env.local", "local.env", ".pgpass", ".netrc"):
        (package / name).write_text("DATABASE_PASSWORD=left-behind\n")
    (repo_copy / "libs" / "taskflow-core" / "src" / ".env").write_text("X=1\n")
    (repo_copy / "alembic" / ".env").write_text("X=1\n")
    assert build("tasks-api", TAG, context=repo_copy, base=base_image).image_id == first.image_id

    # A handler edit: every layer up to the service's code layer (the venv included) is reused.
    handler = repo_copy / "services" / "tasks-api" / "src" / "tasks_api" / "app.py"
    handler.write_text(handler.read_text() + "\n# edited\n")
    edited = build("tasks-api", TAG, context=repo_copy, base=base_image)
    assert edited.image_id != first.image_id
    changed = _layers(TAG)
    assert changed[:-1] == layers[:-1]
    assert changed[-1] != layers[-1]
