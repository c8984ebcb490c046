"""aiohttp stand-ins served on a free loopback port: in the test's loop, or in a thread of
their own for synchronous tests."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

STOP_TIMEOUT = 30.0


async def serve(
    app: web.Application, tls: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, str]:
    """Start on a free loopback port (HTTPS with `tls`); returns the runner and the base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"{'https' if tls else 'http'}://127.0.0.1:{port}"


@contextmanager
def serving_in_thread(app: web.Application, tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """`app` on a free loopback port, run by an event loop in its own thread; yields its URL."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="loopback-http", daemon=True)
    thread.start()
    try:
        started = serve(app, tls)
        runner, url = asyncio.run_coroutine_threadsafe(started, loop).result(STOP_TIMEOUT)
        try:
            yield url
        finally:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(STOP_TIMEOUT)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP_TIMEOUT)
        loop.close()
