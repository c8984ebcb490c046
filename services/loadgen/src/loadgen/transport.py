"""HTTP clients behind one small interface; failures are mapped to the report's error kinds."""

from __future__ import annotations

import errno
from typing import Protocol

import aiohttp
import httpx

JSON_HEADERS = {"content-type": "application/json"}


class TransportError(Exception):
    """A request that got no HTTP response; `kind` is connect, timeout, reset or other."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


def _headers(body: bytes | None, traceparent: str | None) -> dict[str, str] | None:
    headers = dict(JSON_HEADERS) if body is not None else {}
    if traceparent is not None:
        headers["traceparent"] = traceparent
    return headers or None


class Transport(Protocol):
    async def request(
        self, method: str, url: str, body: bytes | None, traceparent: str | None = None
    ) -> tuple[int, bytes]: ...

    async def close(self) -> None: ...


class AiohttpTransport:
    """aiohttp with one connection per in-flight request allowed (the open model needs them)."""

    def __init__(self, max_connections: int, timeout: float) -> None:
        connector = aiohttp.TCPConnector(limit=max_connections, ttl_dns_cache=30)
        self.session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=timeout),
            auto_decompress=False,
        )

    async def request(
        self, method: str, url: str, body: bytes | None, traceparent: str | None = None
    ) -> tuple[int, bytes]:
        headers = _headers(body, traceparent)
        try:
            async with self.session.request(method, url, data=body, headers=headers) as response:
                return response.status, await response.read()
        except TimeoutError as exc:
            raise TransportError("timeout", f"timed out: {url}") from exc
        except aiohttp.ClientConnectorError as exc:
            raise TransportError("connect", str(exc)) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
            raise TransportError("reset", str(exc) or type(exc).__name__) from exc
        except aiohttp.ClientOSError as exc:
            kind = "reset" if exc.errno in (errno.ECONNRESET, errno.EPIPE) else "other"
            raise TransportError(kind, str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise TransportError("other", str(exc) or type(exc).__name__) from exc

    async def close(self) -> None:
        await self.session.close()


class HttpxTransport:
    """httpx.AsyncClient, kept for the benchmark's comparison and as a fallback."""

    def __init__(self, max_connections: int, timeout: float) -> None:
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self.client = httpx.AsyncClient(limits=limits, timeout=timeout)

    async def request(
        self, method: str, url: str, body: bytes | None, traceparent: str | None = None
    ) -> tuple[int, bytes]:
        headers = _headers(body, traceparent)
        try:
            response = await self.client.request(method, url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise TransportError("timeout", f"timed out: {url}") from exc
        except httpx.ConnectError as exc:
            raise TransportError("connect", str(exc)) from exc
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise TransportError("reset", str(exc) or type(exc).__name__) from exc
        except httpx.HTTPError as exc:
            raise TransportError("other", str(exc) or type(exc).__name__) from exc
        return response.status_code, response.content

    async def close(self) -> None:
        await self.client.aclose()


CLIENTS = ("aiohttp", "httpx")


def make_transport(client: str, max_connections: int, timeout: float) -> Transport:
    if client == "httpx":
        return HttpxTransport(max_connections, timeout)
    return AiohttpTransport(max_connections, timeout)
