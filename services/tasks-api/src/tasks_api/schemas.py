"""Request and response bodies of tasks-api (msgspec Structs; unknown fields are rejected)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from taskflow_core.models import DESCRIPTION_MAX, TITLE_MAX, Priority

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=TITLE_MAX)]
Description = Annotated[str, msgspec.Meta(max_length=DESCRIPTION_MAX)]
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


class TaskCreate(msgspec.Struct, forbid_unknown_fields=True):
    title: Title
    description: Description | None = None
    completed: bool = False
    priority: Priority = Priority.MEDIUM


class TaskPatch(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A partial update: absent fields stay as they are; `description` may be set to null."""

    title: Title | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType | None = msgspec.UNSET
    completed: bool | msgspec.UnsetType = msgspec.UNSET
    priority: Priority | msgspec.UnsetType = msgspec.UNSET

    def changes(self) -> dict[str, object]:
        return {
            field: value
            for field in self.__struct_fields__
            if (value := getattr(self, field)) is not msgspec.UNSET
        }


class TaskPage(msgspec.Struct):
    items: list[Task]
    next_cursor: str | None
