"""HEAD and OPTIONS with one meaning everywhere, ahead of Litestar's routing.

HEAD is answered wherever GET is, as GET without its body (same status and headers); OPTIONS
answers 204 with `Allow` listing exactly the path's methods, and every 405 lists the same set
(`allow_header`, used by the problem mapper). Litestar 2.25 answers HEAD with 405 on GET routes
and builds OPTIONS' `Allow` from only some of a path's handlers, so this wraps the app's ASGI
handler (`app.asgi_handler`); any other request passes straight through.
"""

from __future__ import annotations

from typing import cast

from litestar import Litestar
from litestar.enums import ScopeType
from litestar.exceptions import MethodNotAllowedException, NotFoundException
from litestar.types import ASGIApp, HTTPScope, Message, Method, Receive, Scope, Send
from litestar.utils import normalize_path

# Not an HTTP method: asking the router for it makes it name the methods a path offers.
_PROBE_METHOD = "TASKFLOW-ALLOW-PROBE"
_ORDER = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class MethodSemantics:
    def __init__(self, app: Litestar, handler: ASGIApp) -> None:
        self._app = app
        self._handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self._handler(scope, receive, send)
            return
        method = scope["method"]
        if method == "OPTIONS" and (allowed := self._allowed(scope["path"])) is not None:
            await _answer_options(allowed, send)
        elif method == "HEAD":
            as_get = cast("HTTPScope", {**scope, "method": "GET"})
            await self._handler(as_get, receive, _headers_only(send))
        else:
            await self._handler(scope, receive, send)

    def _allowed(self, path: str) -> list[str] | None:
        """The methods `path` offers (HEAD with GET, and OPTIONS), or None for no such path."""
        try:
            self._app.asgi_router.handle_routing(
                normalize_path(path), cast("Method", _PROBE_METHOD)
            )
        except MethodNotAllowedException as exc:
            methods = {m.strip() for m in (exc.headers or {}).get("allow", "").split(",") if m}
        except NotFoundException:
            return None
        else:
            return None  # an ASGI mount answers every method itself
        return allowed_methods(methods)


def allowed_methods(methods: set[str]) -> list[str]:
    """A route's methods as `Allow` names them: HEAD wherever GET is, OPTIONS always."""
    methods = {*methods, "OPTIONS"}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods, key=lambda m: _ORDER.index(m) if m in _ORDER else len(_ORDER))


def allow_header(value: str) -> str:
    """Litestar's `Allow` of a 405, completed the same way."""
    return ", ".join(allowed_methods({m.strip() for m in value.split(",") if m.strip()}))


async def _answer_options(allowed: list[str], send: Send) -> None:
    headers = [(b"allow", ", ".join(allowed).encode()), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def _headers_only(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] != "http.response.body":
            await send(message)
        elif not message.get("more_body", False):  # the GET body ends: end the HEAD answer empty
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    return sending
