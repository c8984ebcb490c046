"""The sort orders of GET /tasks; ties are broken by id in the sort's direction."""

from __future__ import annotations

import enum


class Sort(enum.StrEnum):
    CREATED_AT = "created_at"
    CREATED_AT_DESC = "-created_at"
    PRIORITY = "priority"
    PRIORITY_DESC = "-priority"

    @property
    def descending(self) -> bool:
        return self.value.startswith("-")

    @property
    def by_priority(self) -> bool:
        return self.value.endswith("priority")


DEFAULT_SORT = Sort.CREATED_AT_DESC
