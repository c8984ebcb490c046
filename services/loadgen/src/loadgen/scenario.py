"""The lab's read loop and the write mix: which request each scheduled send becomes."""

from __future__ import annotations

import itertools
import json
import random
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Operation:
    """One endpoint of the mix; `path` may hold `{id}` for an own task."""

    service: str  # "tasks" or "stats": which base URL
    method: str
    path: str


OPERATIONS: dict[str, Operation] = {
    "list": Operation("tasks", "GET", "/tasks"),
    "high": Operation("tasks", "GET", "/tasks?priority=high"),
    "pending": Operation("tasks", "GET", "/tasks?completed=false"),
    "stats": Operation("stats", "GET", "/stats"),
    "create": Operation("tasks", "POST", "/tasks"),
    "complete": Operation("tasks", "PATCH", "/tasks/{id}"),
    "delete": Operation("tasks", "DELETE", "/tasks/{id}"),
}

_PRIORITIES = ("low", "medium", "high")
IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class Request:
    """A concrete request: the operation name it is reported under, and what to send."""

    name: str
    method: str
    url: str
    body: bytes | None
    task_id: int | None = None
    headers: Mapping[str, str] | None = None
    trace_id: str | None = None  # sent as a sampled W3C traceparent when set

    @property
    def retryable(self) -> bool:
        """Safe to send again after a failed connection: a create carrying its key."""
        return self.headers is not None and IDEMPOTENCY_HEADER in self.headers


class OwnTasks:
    """Ids of tasks this generator created; writes touch only these, so data stays bounded."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: deque[int] = deque()  # created, not yet completed
        self.done: deque[int] = deque()  # completed, not yet deleted

    def __len__(self) -> int:
        return len(self.open) + len(self.done)

    def take_open(self) -> int | None:
        return self.open.popleft() if self.open else None

    def take_any(self) -> int | None:
        if self.done:
            return self.done.popleft()
        return self.open.popleft() if self.open else None

    def drain(self) -> list[int]:
        ids = [*self.done, *self.open]
        self.open.clear()
        self.done.clear()
        return ids


class Scenario:
    """Turns each scheduled send into a request by weighted choice over the mix."""

    def __init__(
        self,
        mix: Mapping[str, float],
        base_urls: Mapping[str, str],
        own: OwnTasks,
        seed: int | None = None,
        tag: str = "loadgen",
        on_created: Callable[[int], None] | None = None,
        trace_fraction: float = 0.0,
    ) -> None:
        self.names = [name for name, weight in mix.items() if weight > 0]
        self.cum_weights = list(itertools.accumulate(mix[name] for name in self.names))
        self.base_urls = base_urls
        self.own = own
        self.tag = tag
        self.random = random.Random(seed)  # noqa: S311 - load shaping, not security
        self.trace_fraction = trace_fraction
        self.created = 0
        self.on_created = on_created  # told every id a create was acknowledged with

    def pick(self) -> str:
        """The operation the next send is reported under (before own-task fallbacks)."""
        if len(self.names) == 1:
            return self.names[0]
        return self.random.choices(self.names, cum_weights=self.cum_weights)[0]

    def build(self, name: str) -> Request:
        """Writes fall back so the pool stays within its limit: no own task -> create."""
        if name == "create" and len(self.own) >= self.own.limit:
            name = "delete"
        task_id: int | None = None
        if name == "complete":
            task_id = self.own.take_open()
        elif name == "delete":
            task_id = self.own.take_any()
        if name in ("complete", "delete") and task_id is None:
            name = "create"
        op = OPERATIONS[name]
        url = self.base_urls[op.service] + op.path.replace("{id}", str(task_id))
        # Every create carries a key of its own, so resending it can never create a second task.
        headers = {IDEMPOTENCY_HEADER: f'"{uuid.uuid4()}"'} if name == "create" else None
        trace_id = None
        if self.trace_fraction and self.random.random() < self.trace_fraction:
            trace_id = f"{self.random.getrandbits(128) or 1:032x}"
        return Request(name, op.method, url, self._body(name), task_id, headers, trace_id)

    def _body(self, name: str) -> bytes | None:
        if name == "create":
            self.created += 1
            priority = _PRIORITIES[self.created % len(_PRIORITIES)]
            title = f"{self.tag} task {self.created}"
            return json.dumps({"title": title, "priority": priority}).encode()
        if name == "complete":
            return b'{"completed": true}'
        return None

    def settle(self, request: Request, status: int | None, body: bytes) -> None:
        """Track own tasks from the outcome: created ids join, failed writes give theirs back."""
        ok = status is not None and status < 400
        if request.name == "create" and ok:
            task_id = _created_id(body)
            if task_id is not None:
                self.own.open.append(task_id)
                if self.on_created is not None:
                    self.on_created(task_id)
        elif request.task_id is not None and request.name == "complete":
            (self.own.done if ok else self.own.open).append(request.task_id)
        elif request.task_id is not None and request.name == "delete" and not ok and status != 404:
            self.own.done.append(request.task_id)  # not deleted: keep it (404: gone, forget it)


def traceparent(trace_id: str, span_id: int) -> str:
    """A W3C traceparent with the sampled flag: the APIs record and export this trace."""
    return f"00-{trace_id}-{span_id or 1:016x}-01"


def _created_id(body: bytes) -> int | None:
    try:
        value = json.loads(body)["id"]
    except (ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, int) else None
