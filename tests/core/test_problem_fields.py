"""Field names pulled out of msgspec/Litestar validation messages; stable problem types."""

from __future__ import annotations

import pytest
from taskflow_core.problems import PROBLEM_TYPES, ProblemKind, field_errors_from_messages


@pytest.mark.parametrize(
    ("key", "message", "field", "kept"),
    [
        ("", "Expected `str`, got `int` - at `$.title`", "title", "Expected `str`, got `int`"),
        ("", "Object contains unknown field `colour`", "colour", None),
        ("data", "Object missing required field `title`", "title", None),
        ("limit", "Expected `int` >= 1", "limit", None),
        ("", "Expected `object`, got `array`", "body", None),
    ],
)
def test_field_names(key: str, message: str, field: str, kept: str | None) -> None:
    [error] = field_errors_from_messages([(key, message)])
    assert error.field == field
    assert error.message == (kept or message)


def test_type_uris_are_stable_and_titles_constant() -> None:
    assert ProblemKind.VALIDATION.type_uri == "https://taskflow.dev/problems/validation-error"
    assert len(PROBLEM_TYPES) == len(ProblemKind)
    assert len({kind.title for kind in ProblemKind}) == len(ProblemKind)
