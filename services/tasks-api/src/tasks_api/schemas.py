"""Request and response bodies of tasks-api (msgspec Structs; unknown fields are rejected)."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Annotated

import msgspec
from taskflow_core.models import DESCRIPTION_MAX, TITLE_MAX, Priority

# A title once surrounding whitespace is trimmed: 1-255 characters, none of them a control
# character (Unicode Cc). The pattern says it for clients and the OpenAPI document;
# `title_problem` says the same in words for the error message.
_CONTROL = "\\x00-\\x1f\\x7f-\\x9f"
TITLE_PATTERN = rf"^\s*[^\s{_CONTROL}](?:[^{_CONTROL}]{{0,{TITLE_MAX - 2}}}[^\s{_CONTROL}])?\s*$"
Title = Annotated[
    str,
    msgspec.Meta(
        pattern=TITLE_PATTERN,
        description=f"1-{TITLE_MAX} characters once surrounding whitespace is trimmed; "
        "no control characters.",
    ),
]
Description = Annotated[
    str, msgspec.Meta(max_length=DESCRIPTION_MAX, pattern=r"^[^\x00]*$", description="No NUL.")
]
# Fields a client may read but never write; named as such when a body carries them.
READ_ONLY_FIELDS = frozenset({"id", "created_at", "updated_at", "version"})


class Task(msgspec.Struct):
    id: int
    title: str
    description: str | None
    completed: bool
    priority: Priority
    created_at: datetime
    updated_at: datetime


def title_problem(title: str) -> str | None:
    """Why `title` is not a valid title once trimmed, or None."""
    trimmed = title.strip()
    if not trimmed:
        return "must not be empty or only whitespace"
    if len(trimmed) > TITLE_MAX:
        return f"must be at most {TITLE_MAX} characters once trimmed"
    if any(unicodedata.category(c) == "Cc" for c in trimmed):
        return "must not contain control characters"
    return None


def clean_title(title: str) -> str:
    problem = title_problem(title)
    if problem is not None:
        raise ValueError(f"title {problem}")
    return title.strip()


class TaskCreate(msgspec.Struct, forbid_unknown_fields=True):
    title: Title
    description: Description | None = None
    completed: bool = False
    priority: Priority = Priority.MEDIUM

    def __post_init__(self) -> None:
        self.title = clean_title(self.title)


class TaskPatch(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A partial update: absent fields stay as they are; `description` may be set to null."""

    title: Title | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType | None = msgspec.UNSET
    completed: bool | msgspec.UnsetType = msgspec.UNSET
    priority: Priority | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        if not isinstance(self.title, msgspec.UnsetType):
            self.title = clean_title(self.title)

    def changes(self) -> dict[str, object]:
        return {
            field: value
            for field in self.__struct_fields__
            if (value := getattr(self, field)) is not msgspec.UNSET
        }


class TaskPage(msgspec.Struct):
    items: list[Task]
    next_cursor: str | None
