"""Strong ETags built from a task's id and version, and If-Match evaluation (RFC 9110 §13.1.1)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_ETAG = re.compile(r'^"(\d+)\.(\d+)"$')


def etag(task_id: int, version: int) -> str:
    return f'"{task_id}.{version}"'


@dataclass(frozen=True, slots=True)
class IfMatch:
    """`any_version` for `*`; otherwise the versions of this task the client will accept."""

    any_version: bool
    versions: frozenset[int]


def parse_if_match(header: str | None, task_id: int) -> IfMatch | None:
    """None when the header is absent: the write is unconditional."""
    if header is None:
        return None
    if header.strip() == "*":
        return IfMatch(any_version=True, versions=frozenset())
    versions: set[int] = set()
    for candidate in header.split(","):
        # Weak tags never match If-Match (strong comparison); foreign tags match nothing.
        found = _ETAG.match(candidate.strip())
        if found and int(found.group(1)) == task_id:
            versions.add(int(found.group(2)))
    return IfMatch(any_version=False, versions=frozenset(versions))


def none_match_hits(header: str, current: str) -> bool:
    """If-None-Match uses weak comparison: `W/"1.2"` matches `"1.2"`; `*` matches any."""
    if header.strip() == "*":
        return True
    tags = {candidate.strip().removeprefix("W/") for candidate in header.split(",")}
    return current in tags
