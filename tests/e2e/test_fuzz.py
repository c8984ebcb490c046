"""Schemathesis over both APIs' OpenAPI documents, against `make up`'s real stack: every check on,
a fixed seed (tests/e2e/schemathesis.toml), stateful sequences through the documents' links.
Zero failures means no 5xx and no response outside its documented schema, status or media type."""

from __future__ import annotations

import collections
import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.make_up import MakeUp

pytestmark = pytest.mark.e2e
HERE = Path(__file__).resolve().parent
SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
# Statuses no fuzzer reaches on a healthy stack, each tested on its own: a body over 64 KiB (413,
# tests/tasks_api/test_server_process.py), a database down (503, tests/core/test_problems.py).
REACHED_ELSEWHERE = {413, 503}


def fuzz(base_url: str, report_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            SCHEMATHESIS, "--config-file", str(HERE / "schemathesis.toml"), "run",
            f"{base_url}/schema/openapi.json", "--checks", "all", "--no-color",
            "--report", "har", "--report-dir", str(report_dir),
        ],
        capture_output=True, text=True, timeout=600, check=False,
        cwd=report_dir.parent,  # schemathesis keeps a crash cache in its working directory
    )  # fmt: skip


def observed(report_dir: Path, base_url: str, document: dict[str, object]) -> dict[str, set[int]]:
    """The statuses each documented operation answered during the run, by operation id."""
    templates = {
        (method.upper(), re.sub(r"\{[^}]+\}", "[^/]+", path)): operation["operationId"]
        for path, item in document["paths"].items()  # type: ignore[attr-defined]
        for method, operation in item.items()
    }
    seen: dict[str, set[int]] = collections.defaultdict(set)
    (har,) = report_dir.iterdir()
    for entry in json.loads(har.read_text())["log"]["entries"]:
        path = entry["request"]["url"].removeprefix(base_url).split("?")[0]
        for (method, pattern), operation_id in templates.items():
            if entry["request"]["method"] == method and re.fullmatch(pattern, path):
                seen[operation_id].add(entry["response"]["status"])
    return seen


@pytest.mark.parametrize("api", ["tasks", "stats"])
def test_fuzzing_finds_nothing_and_reaches_every_documented_status(
    shared_make_up: MakeUp, api: str, tmp_path: Path
) -> None:
    base_url = shared_make_up.urls[api]
    report_dir = tmp_path / "report"
    result = fuzz(base_url, report_dir)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert re.search(r"\d+ generated, \d+ passed", result.stdout), result.stdout[-2000:]

    document = httpx.get(f"{base_url}/schema/openapi.json", timeout=10).json()
    seen = observed(report_dir, base_url, document)
    for item in document["paths"].values():
        for operation in item.values():
            documented = {int(status) for status in operation["responses"]}
            missing = documented - REACHED_ELSEWHERE - seen[operation["operationId"]]
            assert not missing, f"{operation['operationId']} never answered {sorted(missing)}"
