"""The SQL of stats-api: the six rows of task_counts, kept exact by triggers at any table size."""

from __future__ import annotations

from sqlalchemy import Select, select
from taskflow_core.models import Priority, TaskCount

# One row per (priority, completed): the cost does not grow with the number of tasks.
STATS_QUERY: Select[Priority, bool, int] = select(
    TaskCount.priority, TaskCount.completed, TaskCount.total
)
