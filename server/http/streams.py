"""The stream routes: `GET /ws` and the two Server-Sent Events routes, with who may open them.

Authentication and HTTP answers are here; what a socket or a stream does once open is
server/realtime (session.py, sse.py).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Coroutine
from typing import Any

from starlette.requests import Request
from starlette.routing import WebSocketRoute
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from server import uvicorn_adapter
from server.domain import messages
from server.domain.access import Principal
from server.http import context
from server.http.body import ascii_int
from server.http.errors import REFUSALS, ApiError
from server.http.contract import (
    COMMON, ORDER_NOT_FOUND, STORE_NOT_FOUND, STREAMS_PER_ACCOUNT, STREAM_AUTH, ApiRoute, Operation, event_stream,
)
from server.http.security import authenticate, has_token
from server.realtime import frames, session, sse
from server.realtime.frames import CLOSE_UNAUTHORISED, FrameRefused

_STREAM_CALLER = "orderpulse.stream_caller"


class WebSocketApp:
    """The `/ws` ASGI app; plain ASGI so the session can reach the connection under it."""

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Coroutine[Any, Any, None]:
        # Not a coroutine itself: the session's is the only frame kept for an open socket, and
        # signing in is a call it makes and is done with.
        websocket = WebSocket(scope, receive=receive, send=send)
        runtime = context.runtime(websocket)
        return session.serve(websocket, runtime.hub, functools.partial(_sign_in, websocket), runtime.settings,
                             uvicorn_adapter.socket_of(receive))


async def _sign_in(websocket: WebSocket) -> Principal | None:
    """Accept the socket and learn its caller: a token in the request, else the first frame.
    None when the socket ended first (closed 4401 for a missing or bad token)."""
    runtime = context.runtime(websocket)
    await websocket.accept()
    try:
        if has_token(websocket, allow_query=True):
            principal = await authenticate(websocket, allow_query=True)
        else:
            first_frame = await _first_frame_principal(websocket, runtime.settings.ws_auth_timeout_seconds)
            if first_frame is None:
                return None
            principal = first_frame
    except REFUSALS:
        await websocket.close(CLOSE_UNAUTHORISED)
        return None
    _forget_request(websocket)
    return principal


def _forget_request(websocket: WebSocket) -> None:
    """The upgrade request's headers and query string (a `?token=` among them) are read only to
    sign in; the scope, and Starlette's parsed copies of them, would otherwise hold them, and the
    token, for as long as the socket is open (about 1 KiB a socket with a token in the query)."""
    scope = websocket.scope
    del scope["headers"][:]
    scope["query_string"] = b""
    for parsed in ("_headers", "_query_params", "_url"):  # Starlette's caches, parsed again if read
        websocket.__dict__.pop(parsed, None)


async def _first_frame_principal(websocket: WebSocket, timeout: float) -> Principal | None:
    """The caller named by the socket's first frame, `{"type": "auth", "token": "..."}`, which
    keeps the token out of the URL (and so out of every proxy's and server's request log).
    None when the peer left first; 401 for any other first frame, a bad token or the deadline."""
    try:
        message = await asyncio.wait_for(websocket.receive(), timeout)
    except TimeoutError:
        raise ApiError(401, messages.WS_AUTH_REQUIRED) from None
    if message["type"] == "websocket.disconnect":
        return None
    try:
        frame = frames.parse(message.get("text") or "")
    except FrameRefused:
        frame = None
    if frame is None or frame.type != "auth" or frame.token is None:
        raise ApiError(401, messages.WS_AUTH_REQUIRED)
    principal = await context.runtime(websocket).accounts.authenticate(frame.token)
    await websocket.send_text(frames.authenticated(frame.id))
    return principal


# --- Server-Sent Events ---------------------------------------------------------------------------

async def _stream_principal(request: Request) -> Principal:
    """The caller of an event stream: a single-use `?ticket=` (what a browser's EventSource can
    send without putting its access token in the URL), else the bearer header or `?token=`.
    Verified once per request (a ticket works only once), and kept under a key of its own: the
    one `security.py` keeps a verified bearer under holds the header beside it."""
    principal = request.scope.get(_STREAM_CALLER)
    if principal is None:
        ticket = request.query_params.get("ticket")
        if ticket:
            principal = await context.runtime(request).accounts.redeem_stream_ticket(ticket)
        else:
            principal = await authenticate(request, allow_query=True)
        request.scope[_STREAM_CALLER] = principal
    return principal


def _last_event_id(request: Request) -> int | None:
    """The version a client resumes from; our event ids are always ASCII whole numbers, so any
    other value was not sent by this server and is refused (400) rather than guessed at."""
    raw = request.headers.get("last-event-id") or request.query_params.get("lastEventId")
    if not raw:
        return None
    version = ascii_int(raw.strip())
    if version is None:
        raise ApiError(400, messages.LAST_EVENT_ID_INVALID)
    return version


async def _event_stream(request: Request, subscribe: sse.Subscribe) -> sse.EventStream:
    runtime = context.runtime(request)
    principal = await _stream_principal(request)
    resume_from = _last_event_id(request)
    # A refusal (forbidden, not found, rate limited) is answered by the app's handler, server/http/errors.py.
    return await sse.open_stream(runtime.hub, runtime.settings, principal, subscribe, resume_from)


async def order_events(request: Request) -> Response:
    order_id = request.path_params["order_id"]
    principal = await _stream_principal(request)
    await context.runtime(request).orders.visible_order(principal, order_id)  # REST's 404 and 403
    return await _event_stream(request, lambda hub, sub: hub.subscribe_orders(sub, [order_id]))


async def store_events(request: Request) -> Response:
    store_id = request.path_params["store_id"]
    return await _event_stream(request, lambda hub, sub: hub.subscribe_store(sub, store_id))


async def menu_events(request: Request) -> Response:
    """A store's menu as it changes; public, like the menu itself (no caller to authenticate)."""
    runtime = context.runtime(request)
    stream = await sse.open_menu_stream(runtime.hub.catalog, request.path_params["store_id"],
                                        runtime.settings.sse_heartbeat_seconds)
    if stream is None:
        raise ApiError(404, messages.STORE_NOT_FOUND)
    return stream


# One event of an order or store stream (REALTIME.md).
ORDER_EVENT = {"type": "object", "required": ["data"], "description": "one event of the stream (REALTIME.md)",
               "properties": {"event": {"enum": ["snapshot", "order", "eta"]},
                              "id": {"type": "string", "pattern": "^[0-9]+$"},
                              "data": {"type": "string", "description": "a JSON object; an `order` event's `order` "
                                                                        "is an `OrderEvent` (store staff also get "
                                                                        "the kitchen's fields)"}}}
MENU_EVENT = {"type": "object", "required": ["data"], "description": "the store and its whole menu (API.md)",
              "properties": {"event": {"const": "menu"}, "id": {"type": "string", "pattern": "^[0-9]+$"},
                             "data": {"type": "string", "description": "a JSON object: revision, store, menu"}}}

routes = [
    WebSocketRoute("/ws", WebSocketApp()),
    ApiRoute("/api/orders/{order_id}/events", order_events, "GET", Operation(
        "Server-Sent Events of one order", {
            "200": event_stream(ORDER_EVENT), **COMMON, **ORDER_NOT_FOUND, **STREAMS_PER_ACCOUNT},
        tag="realtime", params=STREAM_AUTH)),
    ApiRoute("/api/stores/{store_id}/events", store_events, "GET", Operation(
        "Server-Sent Events of a store's orders (its staff)", {
            "200": event_stream(ORDER_EVENT), **COMMON, **STORE_NOT_FOUND, **STREAMS_PER_ACCOUNT},
        tag="realtime", params=STREAM_AUTH)),
    ApiRoute("/api/stores/{store_id}/menu/events", menu_events, "GET", Operation(
        "Server-Sent Events of a store's menu (public): a `menu` event with the store and its whole menu now "
        "and after every change, its id the catalog revision", {
            "200": event_stream(MENU_EVENT), **STORE_NOT_FOUND}, tag="realtime", auth=False)),
]
