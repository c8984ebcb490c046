"""Serve an app factory on one of the servers the harness compares (one process, one worker).

    python -m bench.serve --server granian --port 8000 bench.ceiling_app:create_app

`--access-log` gives the server's own access log through taskflow_core.logs (what a deployed
API writes); without it the server logs nothing per request (the ceiling).
"""

from __future__ import annotations

import argparse
import os

from taskflow_core.logs import configure_logging

SERVERS = ("uvicorn", "uvicorn-h11", "granian")


def serve(server: str, target: str, host: str, port: int, access_log: bool) -> None:
    configure_logging(os.environ.get("LOG_LEVEL", "INFO") if access_log else "WARNING")
    if server == "granian":
        from granian import Granian
        from granian.constants import Interfaces, Loops

        Granian(
            target, address=host, port=port, interface=Interfaces.ASGI, factory=True,
            workers=1, loop=Loops.uvloop, log_access=access_log, log_dictconfig={"version": 1},
        ).serve()  # fmt: skip
        return
    import uvicorn

    uvicorn.run(
        target, factory=True, host=host, port=port, workers=1, log_config=None,
        http="h11" if server == "uvicorn-h11" else "httptools", loop="uvloop",
        access_log=access_log, server_header=False,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=SERVERS, default="uvicorn")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--access-log", action="store_true")
    parser.add_argument("target")
    args = parser.parse_args()
    serve(args.server, args.target, args.host, args.port, args.access_log)


if __name__ == "__main__":
    main()
