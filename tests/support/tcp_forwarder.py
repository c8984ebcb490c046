"""A TCP forwarder on loopback standing in for a Kubernetes Service: clients keep one address
while the test moves its endpoint. `cut()` is a Service without ready endpoints (new connections
refused, open ones reset); `point_at(port)` is the Service following a new primary."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from typing import Any

from devstack.servers import LOOPBACK, free_port

CHUNK = 65536


class TcpForwarder:
    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self._target: int | None = target_port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.WriteTransport] = set()

    def start(self) -> TcpForwarder:
        self._thread.start()
        self._call(self._listen())
        return self

    def cut(self) -> None:
        """Stop listening (connections refused) and reset every open connection."""
        self._call(self._cut())

    def point_at(self, target_port: int) -> None:
        """Listen again, forwarding new connections to `target_port`."""
        self._target = target_port
        self._call(self._listen())

    def close(self) -> None:
        self._call(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def _call(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(10)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, LOOPBACK, self.port)

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        target = self._target
        try:
            if target is None:
                raise ConnectionRefusedError
            upstream_reader, upstream_writer = await asyncio.open_connection(LOOPBACK, target)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer.transport, upstream_writer.transport)
        self._transports.update(pair)
        try:
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            for transport in pair:
                transport.abort()
                self._transports.discard(transport)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.transport.abort()
