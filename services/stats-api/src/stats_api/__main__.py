"""`python -m stats_api`: granian (one worker) serving stats_api.app:create_app on HOST/PORT."""

from __future__ import annotations

from taskflow_core.server import run

from stats_api import SERVICE

APP_FACTORY = "stats_api.app:create_app"


def main() -> None:
    run(SERVICE, APP_FACTORY)


if __name__ == "__main__":
    main()
