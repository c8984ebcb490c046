"""`python -m stats_api`: granian (one worker) serving stats_api.app:create_app on HOST/PORT."""

from __future__ import annotations

from taskflow_core.server import run
from taskflow_core.settings import load_or_exit

from stats_api import SERVICE
from stats_api.scaling.cluster import find_cluster

APP_FACTORY = "stats_api.app:create_app"


def main() -> None:
    # Checked before the server starts: a bad KUBECONFIG stops the process with exit 2 (the
    # worker, which builds the app, would only make granian's supervisor exit 1).
    load_or_exit(SERVICE, find_cluster)
    run(SERVICE, APP_FACTORY)


if __name__ == "__main__":
    main()
