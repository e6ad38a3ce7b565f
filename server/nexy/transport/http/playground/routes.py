"""The playground's HTTP routes: the page, its static files, the turn socket, the memory view.

Registered only when the playground is on (``server.playground``); otherwise none of these
paths exist and ``/playground`` answers 404 like any unknown path.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
from aiohttp import web

from nexy.transport.grpc.requests import RequestError, check_hardware_id
from nexy.transport.http.playground.site import Playground, Refused
from nexy.transport.http.playground.turn_socket import turn_socket

STATIC = Path(__file__).with_name("static")
# The page loads only its own files; a stray injected script or a foreign image cannot run.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def playground_routes(pg: Playground) -> list[web.AbstractRouteDef]:
    """Every playground route, for ``web.Application.add_routes``."""

    async def page(_: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html", headers=_PAGE_HEADERS)

    async def socket(request: web.Request) -> web.StreamResponse:
        return await turn_socket(pg, request)

    async def memory(request: web.Request) -> web.Response:
        hardware_id = _device(pg, request, request.query.get("hardware_id", ""))
        snapshot = await pg.memory.read(hardware_id)
        return web.json_response(
            {
                "hardware_id": hardware_id,
                "facts": list(snapshot.facts),
                "recent": [exchange.to_json() for exchange in snapshot.recent],
            }
        )

    async def forget(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, 'send {"hardware_id": …}') from None
        given = body.get("hardware_id") if isinstance(body, dict) else None
        hardware_id = _device(pg, request, given if isinstance(given, str) else "")
        # "" is "everything": the facts and the recent exchanges, as "forget everything" does.
        removed = await pg.memory.forget(hardware_id, "")
        return web.json_response({"hardware_id": hardware_id, "facts_removed": removed})

    return [
        web.get("/playground", page),
        web.get("/playground/", page),
        web.static("/playground/static", STATIC),
        web.get("/playground/ws", _guarded(pg, socket)),
        web.get("/playground/api/memory", _guarded(pg, memory)),
        web.post("/playground/api/forget", _guarded(pg, forget)),
    ]


def _device(pg: Playground, request: web.Request, given: str) -> str:
    """The canonical device id, once the caller may act for it (the gRPC checks, in order)."""
    pg.check_token(request, None, given)
    try:
        return check_hardware_id(given)
    except RequestError as exc:
        raise Refused(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None


def _guarded(pg: Playground, handler: Handler) -> Handler:
    """Refuse foreign pages first; turn a refusal into its HTTP status and a JSON reason."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            pg.check_page(request)
            return await handler(request)
        except Refused as exc:
            body = {"code": exc.code.name, "message": exc.message}
            return web.Response(
                status=_HTTP_STATUS.get(exc.code, 400),
                text=json.dumps(body),
                content_type="application/json",
            )

    return guarded
