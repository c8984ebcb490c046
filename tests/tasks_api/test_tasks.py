"""tasks-api single-task contract: create, read, update, delete, ETags, body rules, errors."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from taskflow_core.problems import ProblemKind

from tests.support.apiserver import create_task
from tests.support.problems import assert_problem, field_names

Client = AsyncTestClient[Litestar]
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


async def test_create_applies_defaults_and_answers_201_with_location_and_etag(
    client: Client,
) -> None:
    response = await create_task(client, title="Write the design")
    task = response.json()
    assert set(task) == {
        "id", "title", "description", "completed", "priority", "created_at", "updated_at"
    }  # fmt: skip
    assert task["title"] == "Write the design"
    assert task["description"] is None
    assert task["completed"] is False
    assert task["priority"] == "medium"
    assert RFC3339_UTC.match(task["created_at"])
    assert RFC3339_UTC.match(task["updated_at"])
    assert response.headers["location"] == f"/tasks/{task['id']}"
    assert re.fullmatch(r'"[^"]+"', response.headers["etag"])  # strong ETag

    fetched = await client.get(response.headers["location"])
    assert fetched.status_code == 200
    assert fetched.json() == task
    assert fetched.headers["etag"] == response.headers["etag"]


async def test_create_keeps_every_given_field(client: Client) -> None:
    body = {"title": "t", "description": "d" * 10_000, "completed": True, "priority": "high"}
    task = (await create_task(client, **body)).json()
    assert {key: task[key] for key in body} == body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "x" * 256}, "title"),
        ({"title": None}, "title"),
        ({"title": 7}, "title"),
        ({"title": "ok", "description": "d" * 10_001}, "description"),
        ({"title": "ok", "priority": "urgent"}, "priority"),
        ({"title": "ok", "completed": "true"}, "completed"),
        ({"title": "ok", "colour": "red"}, "colour"),
        ({"title": "ok", "id": 5}, "id"),
        ({"title": "ok", "created_at": "2024-01-01T00:00:00Z"}, "created_at"),
        ({"title": "ok", "updated_at": "2024-01-01T00:00:00Z"}, "updated_at"),
        ({"title": "nul\u0000byte"}, "title"),
        ({"title": "ok", "description": "nul\u0000byte"}, "description"),
    ],
)
async def test_create_rejects_bad_fields_naming_them(
    client: Client, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/tasks", json=body)
    problem = assert_problem(response, 400, ProblemKind.VALIDATION)
    assert field in field_names(problem)
    assert (await client.get("/tasks")).json()["items"] == []


async def test_every_unknown_and_read_only_field_is_named(client: Client) -> None:
    response = await client.post("/tasks", json={"title": "x", "id": 1, "owner": "me"})
    problem = assert_problem(response, 400, ProblemKind.VALIDATION)
    assert field_names(problem) == {"id", "owner"}
    messages = {error["field"]: error["message"] for error in problem["errors"]}
    assert "read-only" in messages["id"]


async def test_title_of_255_characters_is_accepted(client: Client) -> None:
    await create_task(client, title="é" * 255)


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"title": "x"}', "text/plain"),
        (b"title=x", "application/x-www-form-urlencoded"),
        (b"{not json", "application/json"),
        (b"", "application/json"),
        (b'{"title": "\xff\xfe"}', "application/json"),  # not UTF-8
        (b'{"title": "x"}', None),
    ],
)
async def test_a_body_that_is_not_json_is_415(
    client: Client, content: bytes, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await client.post("/tasks", content=content, headers=headers)
    assert_problem(response, 415, ProblemKind.UNSUPPORTED_MEDIA_TYPE)
    task = (await create_task(client)).json()
    patched = await client.patch(f"/tasks/{task['id']}", content=content, headers=headers)
    assert_problem(patched, 415, ProblemKind.UNSUPPORTED_MEDIA_TYPE)


async def test_deeply_nested_json_is_400_naming_the_body(client: Client) -> None:
    deep = b'{"title": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    response = await client.post(
        "/tasks", content=deep, headers={"content-type": "application/json"}
    )
    assert field_names(assert_problem(response, 400, ProblemKind.VALIDATION)) == {"body"}


async def test_bodies_over_64_kib_are_413(client: Client) -> None:
    big = '{"title": "x", "description": "' + "d" * 70_000 + '"}'
    response = await client.post(
        "/tasks", content=big.encode(), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, ProblemKind.PAYLOAD_TOO_LARGE)
    task = (await create_task(client)).json()
    patched = await client.patch(
        f"/tasks/{task['id']}", content=big.encode(), headers={"content-type": "application/json"}
    )
    assert_problem(patched, 413, ProblemKind.PAYLOAD_TOO_LARGE)


async def test_a_body_just_under_the_limit_reaches_validation(client: Client) -> None:
    body = '{"title": "x", "description": "' + "d" * 60_000 + '"}'
    response = await client.post(
        "/tasks", content=body.encode(), headers={"content-type": "application/json"}
    )
    assert "description" in field_names(assert_problem(response, 400, ProblemKind.VALIDATION))


@pytest.mark.parametrize(
    "path", ["/tasks/424242", "/tasks/0", "/tasks/-1", "/tasks/99999999999999999999"]
)
async def test_unknown_ids_are_404_for_every_method(client: Client, path: str) -> None:
    assert_problem(await client.get(path), 404, ProblemKind.NOT_FOUND)
    assert_problem(await client.patch(path, json={"completed": True}), 404, ProblemKind.NOT_FOUND)
    assert_problem(await client.delete(path), 404, ProblemKind.NOT_FOUND)
    assert_problem(
        await client.patch(path, json={"completed": True}, headers={"if-match": "*"}),
        404,
        ProblemKind.NOT_FOUND,
    )


async def test_non_numeric_ids_and_unknown_paths_are_404(client: Client) -> None:
    assert_problem(await client.get("/tasks/abc"), 404, ProblemKind.NOT_FOUND)
    assert_problem(await client.get("/nothing-here"), 404, ProblemKind.NOT_FOUND)


async def test_unsupported_methods_are_405(client: Client) -> None:
    task = (await create_task(client)).json()
    assert_problem(
        await client.put(f"/tasks/{task['id']}", json={}), 405, ProblemKind.METHOD_NOT_ALLOWED
    )
    not_allowed = await client.delete("/tasks")
    assert_problem(not_allowed, 405, ProblemKind.METHOD_NOT_ALLOWED)
    assert set(not_allowed.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


async def test_patch_changes_only_the_given_fields(client: Client) -> None:
    created = await create_task(client, title="old", description="keep me", priority="low")
    task = created.json()
    response = await client.patch(f"/tasks/{task['id']}", json={"title": "new", "completed": True})
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["title"] == "new"
    assert patched["completed"] is True
    assert patched["description"] == "keep me"
    assert patched["priority"] == "low"
    assert patched["created_at"] == task["created_at"]
    assert patched["updated_at"] > task["updated_at"]
    assert response.headers["etag"] != created.headers["etag"]
    assert (await client.get(f"/tasks/{task['id']}")).json() == patched


async def test_patch_sets_description_to_null_and_validates_fields(client: Client) -> None:
    task = (await create_task(client, description="something")).json()
    cleared = await client.patch(f"/tasks/{task['id']}", json={"description": None})
    assert cleared.status_code == 200
    assert cleared.json()["description"] is None
    for body, field in [
        ({"title": None}, "title"),
        ({"title": ""}, "title"),
        ({"priority": "urgent"}, "priority"),
        ({"completed": None}, "completed"),
        ({"id": 9}, "id"),
        ({"updated_at": "2024-01-01T00:00:00Z"}, "updated_at"),
        ({"nope": 1}, "nope"),
    ]:
        response = await client.patch(f"/tasks/{task['id']}", json=body)
        assert field in field_names(assert_problem(response, 400, ProblemKind.VALIDATION))


async def test_empty_patch_returns_the_task_unchanged(client: Client) -> None:
    created = await create_task(client)
    response = await client.patch(created.headers["location"], json={})
    assert response.status_code == 200
    assert response.json() == created.json()
    assert response.headers["etag"] == created.headers["etag"]


async def test_if_match_stale_is_412_current_and_star_succeed(client: Client) -> None:
    created = await create_task(client)
    location, first_etag = created.headers["location"], created.headers["etag"]
    updated = await client.patch(location, json={"title": "v2"}, headers={"if-match": first_etag})
    assert updated.status_code == 200
    second_etag = updated.headers["etag"]

    stale = await client.patch(location, json={"title": "v3"}, headers={"if-match": first_etag})
    assert_problem(stale, 412, ProblemKind.PRECONDITION_FAILED)
    assert (await client.get(location)).json()["title"] == "v2"

    weak = await client.patch(
        location, json={"title": "v3"}, headers={"if-match": f"W/{second_etag}"}
    )
    assert_problem(weak, 412, ProblemKind.PRECONDITION_FAILED)

    listed = await client.patch(
        location, json={"title": "v3"}, headers={"if-match": f"{first_etag}, {second_etag}"}
    )
    assert listed.status_code == 200
    star = await client.patch(location, json={"title": "v4"}, headers={"if-match": "*"})
    assert star.status_code == 200
    assert star.json()["title"] == "v4"


async def test_delete_honours_if_match_then_the_task_is_gone(client: Client) -> None:
    created = await create_task(client)
    location = created.headers["location"]
    await client.patch(location, json={"completed": True})
    stale = await client.delete(location, headers={"if-match": created.headers["etag"]})
    assert_problem(stale, 412, ProblemKind.PRECONDITION_FAILED)
    current = (await client.get(location)).headers["etag"]
    deleted = await client.delete(location, headers={"if-match": current})
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_problem(await client.get(location), 404, ProblemKind.NOT_FOUND)
    assert_problem(await client.delete(location), 404, ProblemKind.NOT_FOUND)


async def test_if_none_match_current_is_304_without_a_body(client: Client) -> None:
    created = await create_task(client)
    location, tag = created.headers["location"], created.headers["etag"]
    for header in (tag, f"W/{tag}", f'"0.0", {tag}', "*"):
        cached = await client.get(location, headers={"if-none-match": header})
        assert cached.status_code == 304
        assert cached.content == b""
        assert cached.headers["etag"] == tag
    await client.patch(location, json={"title": "changed"})
    fresh = await client.get(location, headers={"if-none-match": tag})
    assert fresh.status_code == 200
    assert fresh.json()["title"] == "changed"
    assert fresh.headers["etag"] != tag


async def test_delete_without_if_match(client: Client) -> None:
    created = await create_task(client)
    assert (await client.delete(created.headers["location"])).status_code == 204


async def test_delete_with_if_match_star_removes_whatever_version(client: Client) -> None:
    created = await create_task(client)
    location = created.headers["location"]
    await client.patch(location, json={"title": "changed"})
    assert (await client.delete(location, headers={"if-match": "*"})).status_code == 204
    gone = await client.delete(location, headers={"if-match": "*"})
    assert_problem(gone, 404, ProblemKind.NOT_FOUND)


async def test_openapi_document_has_explicit_operation_ids(client: Client) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    document = response.json()
    operations = {
        (path, method): operation.get("operationId")
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }
    assert operations[("/tasks", "get")] == "listTasks"
    assert operations[("/tasks", "post")] == "createTask"
    assert operations[("/tasks/{task_id}", "get")] == "getTask"
    assert operations[("/tasks/{task_id}", "patch")] == "updateTask"
    assert operations[("/tasks/{task_id}", "delete")] == "deleteTask"
    assert all(operations.values())
    assert "/metrics" not in document["paths"]
    create_responses = document["paths"]["/tasks"]["post"]["responses"]
    for status in ("400", "413", "415"):
        problem = create_responses[status]["content"]["application/problem+json"]
        assert problem["schema"]["$ref"].endswith("/ProblemDetails")
    assert "412" in document["paths"]["/tasks/{task_id}"]["patch"]["responses"]
    page = document["paths"]["/tasks"]["get"]["responses"]["200"]["content"]["application/json"]
    assert page["schema"]["$ref"].endswith("/TaskPage")
    parameters = {p["name"] for p in document["paths"]["/tasks"]["get"]["parameters"]}
    assert {
        "priority",
        "completed",
        "q",
        "created_after",
        "created_before",
        "sort",
        "limit",
        "cursor",
    } <= parameters
