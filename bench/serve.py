"""Serve an app factory on one of the servers the harness compares (one process, one worker).

    python -m bench.serve --server granian --port 8000 bench.ceiling_app:create_app

Servers never write an access log here: the APIs write their own (taskflow_core.access_log).
"""

from __future__ import annotations

import argparse
import os

from taskflow_core.logs import configure_logging
from taskflow_core.settings import LoggingSettings

SERVERS = ("uvicorn", "uvicorn-h11", "granian")


def serve(server: str, target: str, host: str, port: int) -> None:
    configure_logging(LoggingSettings(level=os.environ.get("LOG_LEVEL", "WARNING")))
    if server == "granian":
        from granian import Granian
        from granian.constants import Interfaces, Loops

        Granian(
            target, address=host, port=port, interface=Interfaces.ASGI, factory=True,
            workers=1, loop=Loops.uvloop, log_access=False, log_dictconfig={"version": 1},
        ).serve()  # fmt: skip
        return
    import uvicorn

    uvicorn.run(
        target, factory=True, host=host, port=port, workers=1, log_config=None,
        http="h11" if server == "uvicorn-h11" else "httptools", loop="uvloop",
        access_log=False, server_header=False,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=SERVERS, default="uvicorn")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("target")
    args = parser.parse_args()
    serve(args.server, args.target, args.host, args.port)


if __name__ == "__main__":
    main()
