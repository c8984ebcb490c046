"""One-line notices on stderr, prefixed with the tool's name."""

from __future__ import annotations

import sys


def warn(message: str) -> None:
    print(f"loadgen: {message}", file=sys.stderr, flush=True)
