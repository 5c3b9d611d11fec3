"""The partner payment-status API (`/v1`, PARTNER.md): seed 004's shapes over our orders."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from server.domain import messages
from server.domain.access import may_place_orders

from server.http import context
from server.http.body import ascii_int, read_body
from server.http.errors import REFUSALS, ApiError, Refusal, headers_of, status_of
from server.http.ops_routes import OUTAGES, outage_refusal
from server.http.contract import ApiRoute, Operation, answer, bounded, query_param, ref
from server.http.requests import CreateOrderRequest
from server.http.responses import JSONResponse
from server.http.security import authenticate
from server.services.partners import client_is_active
from server.views import partner_status, partner_view

if TYPE_CHECKING:
    from server.models import Order

MAX_WAIT_SECONDS = 30


@with_config(ConfigDict(extra="forbid"))
class PartnerError(TypedDict):
    """Seed 004's error body."""

    error: str


def error_response(refusal: Refusal) -> JSONResponse:
    """Seed 004's error body, `{"error": message}`, with the status the `/api` routes give the same refusal."""
    body: PartnerError = {"error": refusal.message}
    return JSONResponse(body, status_code=status_of(refusal), headers=headers_of(refusal))


def internal_error() -> JSONResponse:
    body: PartnerError = {"error": messages.PARTNER_INTERNAL_ERROR}
    return JSONResponse(body, status_code=500)


Endpoint = Callable[[Request], Awaitable[Response]]


class PartnerRoute(ApiRoute):
    """A `/v1` route: whatever refuses a request it matched (a refusal, an unreachable database, a
    method it does not serve) is answered in seed 004's shape, not the `/api` envelope."""

    def __init__(self, path: str, endpoint: Endpoint, method: str, operation: Operation) -> None:
        super().__init__(path, _answering_refusals(endpoint), method, operation)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            refusal = ApiError(405, messages.METHOD_NOT_ALLOWED, headers={"Allow": ", ".join(sorted(self.methods))})
            await error_response(refusal)(scope, receive, send)
            return
        await super().handle(scope, receive, send)


def _answering_refusals(endpoint: Endpoint) -> Endpoint:
    @functools.wraps(endpoint)
    async def answer(request: Request) -> Response:
        try:
            return await endpoint(request)
        except REFUSALS as refusal:
            return error_response(refusal)
        except OUTAGES as exc:
            return error_response(outage_refusal(request, exc))
    return answer


def owns_unmatched(path: str) -> bool:
    """Whether a path no route matched is under the partner API, whose 404 is in its shape too."""
    return path.startswith("/v1/")


def serves(scope: Scope) -> bool:
    """Whether the request came through a partner route (RequestEdge answers a bug in its shape)."""
    return isinstance(scope.get("route"), PartnerRoute)


async def _check_client(request: Request) -> None:
    """499 without `X-Client-ID`, 498 for an unknown or revoked one; before the bearer token."""
    client_id = request.headers.get("x-client-id")
    if not client_id:
        raise ApiError(499, messages.PARTNER_CLIENT_MISSING)
    if not await client_is_active(client_id):
        raise ApiError(498, messages.PARTNER_CLIENT_UNKNOWN)


async def _wait_while_started(request: Request, order: Order, seconds: int) -> Order:
    """Hold until the order leaves STARTED or `seconds` pass, woken by its own events."""
    runtime = context.runtime(request)
    order_id = str(order.id)
    clock = runtime.clock
    deadline = clock.monotonic() + seconds
    await runtime.snapshots.track(order_id)
    # Read again after subscribing: a change made between the first read and the
    # subscription published no event we could hear.
    order = await runtime.orders.reread(order)
    while partner_status(order) == "STARTED":
        remaining = deadline - clock.monotonic()
        if remaining <= 0:
            break
        snapshot = runtime.snapshots.store(order) or runtime.snapshots.get(order_id)
        if snapshot is not None and snapshot.version > order.version:
            order = await runtime.orders.reread(order)
            continue
        if snapshot is None:
            await clock.sleep(min(remaining, 0.5))
        else:
            await runtime.snapshots.wait_for_change(snapshot, remaining)
        order = await runtime.orders.reread(order)
    return order


def _wait_seconds(request: Request) -> int:
    raw = request.query_params.get("wait")
    if raw is None:  # an empty `?wait=` is no number of seconds: refused below
        return 0
    seconds = ascii_int(raw)
    if seconds is None or not 1 <= seconds <= MAX_WAIT_SECONDS:
        raise ApiError(400, messages.PARTNER_WAIT_INVALID.format(maximum=MAX_WAIT_SECONDS))
    return seconds


async def get_order(request: Request) -> Response:
    await _check_client(request)
    principal = await authenticate(request)
    wait = _wait_seconds(request)
    order = await context.runtime(request).orders.visible_order(
        principal, request.path_params["order_id"], forbidden=messages.PARTNER_ORDER_FORBIDDEN,
        not_found=messages.PARTNER_ORDER_NOT_FOUND)
    if wait:
        order = await _wait_while_started(request, order, wait)
    return JSONResponse(partner_view(order, context.runtime(request).settings.zone))


async def create_order(request: Request) -> Response:
    await _check_client(request)
    principal = await authenticate(request)
    if not may_place_orders(principal):
        raise ApiError(403, messages.FORBIDDEN_ROLE)
    runtime = context.runtime(request)
    body = await read_body(request, CreateOrderRequest)
    order, created = await runtime.checkout.create_order(
        principal, body.checkout_token, body.transaction_id,
        partner_client_id=request.headers["x-client-id"])
    return JSONResponse(partner_view(order, runtime.settings.zone), status_code=201 if created else 200)


PARTNER_ERRORS = {code: answer(text, ref("PartnerError")) for code, text in {
    "400": "Bad input", "401": "Bearer token missing, expired or invalid", "403": "Not this user's order",
    "404": "Order not found", "498": "Unknown or revoked X-Client-ID", "499": "X-Client-ID absent",
    "500": "Unexpected error"}.items()}
CLIENT_ID = {"name": "X-Client-ID", "in": "header", "required": True,
             "schema": {"type": "string", "minLength": 1, "maxLength": 100}}

routes = [
    PartnerRoute("/v1/order", create_order, "POST", Operation(
        "Partner: create an order from a checkout token", {
            "201": answer("Created", ref("PartnerOrder")),
            "200": answer("This checkout's existing order", ref("PartnerOrder")), **PARTNER_ERRORS},
        tag="partner", body=CreateOrderRequest, params=(CLIENT_ID,))),
    PartnerRoute("/v1/order/{order_id}", get_order, "GET", Operation(
        "Partner: payment status of an order (seed 004)", {"200": answer("OK", ref("PartnerOrder")), **PARTNER_ERRORS},
        tag="partner", params=(CLIENT_ID, query_param("wait", bounded(1, MAX_WAIT_SECONDS))))),
]
