"""Assertions on RFC 9457 problem responses, shared by the API tests."""

from __future__ import annotations

from typing import Any

import httpx
from taskflow_core.problems import PROBLEM_TYPES, ProblemKind

TITLES = {kind.type_uri: kind.title for kind in ProblemKind}


def assert_problem(response: httpx.Response, status: int, kind: ProblemKind) -> dict[str, Any]:
    """The RFC 9457 shape every error must have, with no internals leaking."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"] == kind.type_uri
    assert body["type"] in PROBLEM_TYPES
    assert body["title"] == TITLES[body["type"]]
    assert body["status"] == status
    assert isinstance(body["detail"], str)
    assert body["detail"]
    for leak in ("Traceback", "SELECT", "INSERT", "UPDATE tasks", "sqlalchemy", "asyncpg"):
        assert leak not in response.text
    return body


def field_names(body: dict[str, Any]) -> set[str]:
    return {error["field"] for error in body["errors"]}
