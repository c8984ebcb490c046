"""`python -m tasks_api`: granian (one worker) serving tasks_api.app:create_app on HOST/PORT."""

from __future__ import annotations

from taskflow_core.server import run

from tasks_api import SERVICE

APP_FACTORY = "tasks_api.app:create_app"


def main() -> None:
    run(SERVICE, APP_FACTORY)


if __name__ == "__main__":
    main()
