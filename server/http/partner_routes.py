"""The partner payment-status API (`/v1`, PARTNER.md): seed 004's shapes over our orders."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.domain import messages
from server.domain.access import may_place_orders
from server.domain.errors import ApiError
from server.http import context
from server.http.body import ascii_int, read_body
from server.http.requests import CreateOrderRequest
from server.http.responses import JSONResponse
from server.http.security import authenticate
from server.services.partners import client_is_active
from server.views import partner_status, partner_view

if TYPE_CHECKING:
    from server.models import Order

MAX_WAIT_SECONDS = 30


def error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse({"error": exc.message}, status_code=exc.status_code, headers=exc.headers)


def internal_error() -> JSONResponse:
    return JSONResponse({"error": messages.PARTNER_INTERNAL_ERROR}, status_code=500)


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


routes = [
    Route("/v1/order", create_order, methods=["POST"]),
    Route("/v1/order/{order_id}", get_order, methods=["GET"]),
]
