"""One meaning per input: canonical ids, RFC 3339 timestamps only, trimmed titles without control
characters, single-valued parameters given once, no-op PATCHes that change nothing, HEAD wherever
GET is, OPTIONS and 405 naming exactly the allowed methods, and an OpenAPI document that says
which bodies refuse unknown fields."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from taskflow_core.problems import ProblemKind

from tests.support.apiserver import create_task
from tests.support.problems import assert_problem, field_names

Client = AsyncTestClient[Litestar]


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_only_the_canonical_decimal_id_addresses_a_task(client: Client, method: str) -> None:
    task_id = (await create_task(client)).json()["id"]
    assert task_id < 10  # a fresh database: the spellings below all denote this id
    spellings = [f"0{task_id}", f"000{task_id}", f"+{task_id}", f"{task_id}.0", f" {task_id}"]
    spellings += ["%EF%BC%91".replace("91", f"{0x90 + task_id:x}"), "1_0", "0"]
    for written in spellings:
        response = await client.request(method, f"/tasks/{written}", json={})
        assert_problem(response, 404, ProblemKind.NOT_FOUND)
    assert (await client.get(f"/tasks/{task_id}")).status_code == 200


@pytest.mark.parametrize(
    "value",
    ["0.5", "1700000000", "2026-01-01", "2026-01-01T00:00:00", "2026-01-01 00:00:00Z", "today"],
)
async def test_timestamps_are_rfc3339_with_an_offset_only(client: Client, value: str) -> None:
    for name in ("created_after", "created_before"):
        response = await client.get("/tasks", params={name: value})
        body = assert_problem(response, 400, ProblemKind.VALIDATION)
        assert field_names(body) == {name}
    for good in ("2026-01-01T00:00:00Z", "2026-01-01T01:00:00.5+01:00", "2026-01-01t00:00:00z"):
        assert (await client.get("/tasks", params={"created_before": good})).status_code == 200


@pytest.mark.parametrize(
    "name", ["completed", "q", "created_after", "created_before", "sort", "limit", "cursor"]
)
async def test_a_single_valued_parameter_given_twice_is_400_naming_it(
    client: Client, name: str
) -> None:
    values = {
        "completed": "true", "q": "x", "created_after": "2026-01-01T00:00:00Z",
        "created_before": "2026-01-01T00:00:00Z", "sort": "priority", "limit": "2",
        "cursor": "abc",
    }  # fmt: skip
    response = await client.get(f"/tasks?{name}={values[name]}&{name}={values[name]}")
    body = assert_problem(response, 400, ProblemKind.VALIDATION)
    assert field_names(body) == {name}
    assert (await client.get("/tasks?priority=low&priority=high")).status_code == 200


async def test_titles_are_trimmed_and_hold_no_control_characters(client: Client) -> None:
    created = (await create_task(client, title="  \t padded title \u3000 ")).json()
    assert created["title"] == "padded title"
    assert (await create_task(client, title=" " + "é" * 255 + " ")).json()["title"] == "é" * 255
    location = f"/tasks/{created['id']}"
    patched = await client.patch(location, json={"title": "  renamed  "})
    assert patched.json()["title"] == "renamed"
    for bad in [
        "",
        "   ",
        "\u3000\t",
        "x" * 256,
        "bell\u0007",
        "tab\there",
        "line\nbreak",
        "\u0085",
    ]:
        for response in (
            await client.post("/tasks", json={"title": bad}),
            await client.patch(location, json={"title": bad}),
        ):
            body = assert_problem(response, 400, ProblemKind.VALIDATION)
            assert field_names(body) == {"title"}, bad
    assert (await client.get(location)).json()["title"] == "renamed"


async def test_a_patch_that_changes_nothing_leaves_version_etag_and_updated_at(
    client: Client,
) -> None:
    created = await create_task(client, title="same", priority="high", description="d")
    location, etag = created.headers["location"], created.headers["etag"]
    before = created.json()
    for body in (
        {"title": "same"},
        {"title": " same "},
        {"priority": "high", "description": "d"},
        {},
    ):
        response = await client.patch(location, json=body, headers={"if-match": etag})
        assert response.status_code == 200, response.text
        assert response.headers["etag"] == etag
        assert response.json() == before
    changed = await client.patch(location, json={"completed": True}, headers={"if-match": etag})
    assert changed.headers["etag"] != etag
    assert changed.json()["updated_at"] >= before["updated_at"]
    # A stale If-Match still fails, even when the body would change nothing.
    stale = await client.patch(location, json={"title": "same"}, headers={"if-match": etag})
    assert_problem(stale, 412, ProblemKind.PRECONDITION_FAILED)


@pytest.mark.parametrize(
    "path", ["/tasks", "/tasks?priority=high", "/health", "/ready", "/metrics"]
)
async def test_head_answers_wherever_get_does_with_its_headers_and_no_body(
    client: Client, path: str
) -> None:
    get = await client.get(path)
    head = await client.head(path)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]


async def test_head_of_a_task_carries_its_etag(client: Client) -> None:
    created = await create_task(client)
    head = await client.head(created.headers["location"])
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["etag"] == created.headers["etag"]
    assert (await client.head("/tasks/999999")).status_code == 404


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/tasks", "GET, HEAD, POST, OPTIONS"),
        ("/tasks/1", "GET, HEAD, PATCH, DELETE, OPTIONS"),
        ("/health", "GET, HEAD, OPTIONS"),
        ("/ready", "GET, HEAD, OPTIONS"),
    ],
)
async def test_options_and_405_list_exactly_the_allowed_methods(
    client: Client, path: str, allowed: str
) -> None:
    options = await client.options(path)
    assert (options.status_code, options.headers["allow"]) == (204, allowed)
    refused = await client.put(path, json={})
    assert_problem(refused, 405, ProblemKind.METHOD_NOT_ALLOWED)
    assert refused.headers["allow"] == allowed
    assert (await client.options("/nowhere")).status_code == 404


async def test_the_openapi_document_says_which_bodies_refuse_unknown_fields(
    client: Client,
) -> None:
    schemas = (await client.get("/schema/openapi.json")).json()["components"]["schemas"]
    assert schemas["TaskCreate"]["additionalProperties"] is False
    assert schemas["TaskPatch"]["additionalProperties"] is False
