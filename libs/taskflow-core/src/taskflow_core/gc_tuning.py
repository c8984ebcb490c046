"""The garbage collector's settings for a process serving an API.

With CPython's defaults the young generation is collected every 700 net allocations: with tens of
requests in flight, their short-lived objects are traversed again and again, survive into the
old generation and make its full collections frequent, and each full collection traverses the
~125,000 objects the app built at startup (tens of milliseconds: the p99 of every API case in
`make bench`). Measured in README.md ("Performance", "Where the time went").
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # allocations between young collections (CPython's default: 700)


def tune_for_serving() -> None:
    """Freeze what startup built out of every later collection and collect the young generation
    less often. Once per process: a worker builds one app, a test process many."""
    if gc.get_freeze_count():
        return
    gc.collect()  # nothing that is already garbage gets frozen
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
