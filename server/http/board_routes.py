"""The pickup board (issue 27): display links (`/api/stores/{id}/displays`), the board's snapshot
and stream, and its settings.

A board authenticates with the header `X-Display-Key: <secret>` (the secret of a display link); no
other route reads that header, and the secret is no bearer token, so every other route refuses it. The store's staff and admins
may open the board with their bearer token too (a preview from the kitchen).
"""

from __future__ import annotations

from starlette.requests import Request

from server.domain import messages
from server.domain.access import Principal
from starlette.responses import Response

from server.http import context
from server.http.body import read_body
from server.http.errors import ApiError
from server.http.contract import (
    BOOL, COMMON, NSTR, OID, STORE_NOT_FOUND, STR, TIME, ApiRoute, Operation, array, event_stream, obj, refusal,
    success,
)
from server.http.requests import BoardSettingsRequest, DisplayRequest
from server.http.responses import ok
from server.http.security import STORE_RUNNERS, authenticate
from server.realtime.board_feed import open_board_stream
from server.services import board, catalog
from server.services.tokens import digest

DISPLAY_HEADER = "x-display-key"
# Open board streams one display link may hold in a process: a TV, a second screen, a reconnect
# overlapping the stream it replaces.
STREAMS_PER_LINK = 4


def _display_secret(request: Request) -> str | None:
    secret = request.headers.get(DISPLAY_HEADER)
    return secret.strip() if secret is not None else None


async def _staff(request: Request) -> tuple[Principal, str]:
    principal = await authenticate(request, *STORE_RUNNERS)
    store = await catalog.find_store(request.path_params["store_id"])
    catalog.authorise_store_staff(principal, str(store.id))
    return principal, str(store.id)


async def _board_reader(request: Request) -> tuple[str, str | None]:
    """The store whose board the caller may read, and the display secret it used (None: staff)."""
    store_id = request.path_params["store_id"]
    secret = _display_secret(request)
    if secret is None:
        return (await _staff(request))[1], None
    if await board.display_store(secret) != store_id:
        raise ApiError(401, messages.DISPLAY_KEY_INVALID)
    return store_id, secret


async def create_display(request: Request) -> Response:
    principal, store_id = await _staff(request)
    body = await read_body(request, DisplayRequest)
    store = await catalog.find_store(store_id)
    runtime = context.runtime(request)
    display, secret = await board.create_display(store, principal, body.label, clock=runtime.clock)
    url = board.display_url(runtime.settings.link_origin, store_id, secret)
    return ok({**board.display_view(display), "url": url}, status_code=201)


async def list_displays(request: Request) -> Response:
    _, store_id = await _staff(request)
    return ok([board.display_view(display) for display in await board.list_displays(store_id)])


async def revoke_display(request: Request) -> Response:
    _, store_id = await _staff(request)
    await board.revoke_display(store_id, request.path_params["display_id"])
    return ok({"id": request.path_params["display_id"], "revoked": True})


async def get_board(request: Request) -> Response:
    store_id, _ = await _board_reader(request)
    snapshot = await board.read_board(store_id)
    if snapshot is None:
        raise ApiError(404, messages.STORE_NOT_FOUND)
    return ok(snapshot, headers={"Cache-Control": "no-store"})


async def update_board_settings(request: Request) -> Response:
    _, store_id = await _staff(request)
    body = await read_body(request, BoardSettingsRequest)
    if body.announce is None:
        raise ApiError(400, messages.BOARD_SETTINGS_EMPTY)
    runtime = context.runtime(request)
    announce = await board.set_announce(store_id, body.announce, runtime.broker, clock=runtime.clock)
    return ok({"announce": announce})


async def board_events(request: Request) -> Response:
    store_id, secret = await _board_reader(request)
    runtime = context.runtime(request)

    async def still_allowed() -> bool:
        return secret is None or await board.display_alive(store_id, secret)

    link = digest(secret) if secret is not None else None
    if link is not None and not runtime.board_feed.admit(link, STREAMS_PER_LINK):
        raise ApiError(429, messages.BOARD_STREAMS_PER_LINK.format(most=STREAMS_PER_LINK), headers={"Retry-After": "5"})
    stream = await open_board_stream(runtime.board_feed, store_id, runtime.settings.board_heartbeat_seconds,
                                     still_allowed, link)
    if stream is None:
        raise ApiError(404, messages.STORE_NOT_FOUND)
    return stream


DISPLAY_KEY = {"name": "X-Display-Key", "in": "header", "schema": {"type": "string", "maxLength": 200},
               "description": "the secret of a display link (the `key` in its URL's fragment); without it, "
                              "the store's staff or an admin with their bearer token"}
DISPLAY = obj({"id": OID, "storeId": OID, "label": NSTR, "createdAt": TIME, "createdByName": STR})
BOARD = obj({"storeName": STR, "preparing": array(STR), "ready": array(STR), "announce": BOOL}, closed=True)
BOARD_EVENT = {"type": "object", "required": ["data"], "description": "REALTIME.md, \"The pickup board\"",
               "properties": {"event": {"enum": ["board", "alive", "revoked"]},
                              "data": {"type": "string", "description": "a JSON object: `board` the Board shape, "
                                                                        "`alive` `{heartbeatSeconds}`"}}}

routes = [
    ApiRoute("/api/stores/{store_id}/displays", create_display, "POST", Operation(
        "Make a display link for the store's pickup board (that store's staff, admins): its `url` carries the "
        "secret and is shown only in this answer", {
            "201": success({**DISPLAY, "properties": {**DISPLAY["properties"], "url": STR},
                            "required": [*DISPLAY["required"], "url"]}, "Created"), **COMMON, **STORE_NOT_FOUND},
        tag="stores", body=DisplayRequest)),
    ApiRoute("/api/stores/{store_id}/displays", list_displays, "GET", Operation(
        "The store's display links, without their secrets (that store's staff, admins)", {
            "200": success(array(DISPLAY)), **COMMON, **STORE_NOT_FOUND}, tag="stores")),
    ApiRoute("/api/stores/{store_id}/displays/{display_id}", revoke_display, "DELETE", Operation(
        "Revoke a display link: its boards stop at their next heartbeat (that store's staff, admins)", {
            "200": success(obj({"id": STR, "revoked": {"const": True}})), **COMMON,
            "404": refusal("Store or display link not found")}, tag="stores")),
    ApiRoute("/api/stores/{store_id}/board", get_board, "GET", Operation(
        "What the store's pickup board shows: short order numbers only (a display link's `X-Display-Key`, or "
        "that store's staff and admins)", {"200": success(BOARD), **COMMON, **STORE_NOT_FOUND}, tag="realtime",
        params=(DISPLAY_KEY,))),
    ApiRoute("/api/stores/{store_id}/board", update_board_settings, "PATCH", Operation(
        "The pickup board's settings: `announce` reads new ready numbers aloud (that store's staff, admins)", {
            "200": success(obj({"announce": BOOL}, closed=True)), **COMMON, **STORE_NOT_FOUND}, tag="stores",
        body=BoardSettingsRequest)),
    ApiRoute("/api/stores/{store_id}/board/events", board_events, "GET", Operation(
        "Server-Sent Events of the store's pickup board: `board` now and on every change, `alive` at least every "
        "BOARD_HEARTBEAT_SECONDS, `revoked` when the link stops working", {
            "200": event_stream(BOARD_EVENT), **COMMON, **STORE_NOT_FOUND,
            "429": refusal(f"The display link already has {STREAMS_PER_LINK} boards open in this process; see "
                           "Retry-After")}, tag="realtime", params=(DISPLAY_KEY,))),
]
