"""The SQL of stats-api: the six rows of task_counts, kept exact by triggers at any table size."""

from __future__ import annotations

# One row per (priority, completed): the cost does not grow with the number of tasks.
STATS_QUERY = "SELECT priority, completed, total FROM task_counts"
