"""`/api/orders/*`: thin handlers that parse, authorise, call the order service and shape."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from bson import ObjectId

from server import metrics
from server.domain import messages
from server.domain.access import CUSTOMER_ROLES, Principal, Role, compares_pickup_code, sees_pickup_code
from server.domain.lifecycle import OrderStatus
from server.domain.errors import NotFound
from server.http import context
from server.http import campusbite
from server.http.body import query_int, read_body
from server.http.errors import ApiError
from server.http.contract import (
    COMMON, CONFLICT, LIMIT, ORDER_NOT_FOUND, PAGE, STATUS_LIST, STR, ApiRoute, Operation, answer, array, bounded,
    envelope, json_content, query_param, ref, refusal, success,
)
from server.http.poll_fast_path import etag_matches
from server.http.responses import JSONResponse, ok
from server.http.security import authenticate
from server.http.requests import (CheckoutSessionRequest, CreateOrderRequest, ItemMarkRequest, PaymentStatusRequest,
                                  StatusRequest, VerifyOtpRequest)
from server.domain.cart import CartLine
from server.services.snapshots import OrderSnapshot, poll_body
from server.views import (
    ESTIMATE_SHAPE, commitment_view, lean_order, order_detail, order_page_view, order_summary, renamed, shaped,
)

if TYPE_CHECKING:
    from server.models import Order

MAX_WAIT_SECONDS = 30


def _detail(request: Request, order: Order, principal: Principal) -> dict[str, Any]:
    otp = None
    ready = order.order_status == OrderStatus.READY
    if ready and sees_pickup_code(principal, str(order.user_id)):
        otp = context.runtime(request).orders.pickup_otp(order)
    detail = order_detail(order, otp, names=campusbite.ORDER_NAMES)
    if ready and compares_pickup_code(principal, str(order.store_id)):
        code = context.runtime(request).orders.pickup_otp(order)
        if code is not None:
            detail = campusbite.staff_pickup_code(detail, code)
    return detail


async def checkout_session(request: Request) -> Response:
    principal = await authenticate(request, *CUSTOMER_ROLES)
    body = await read_body(request, CheckoutSessionRequest)
    cart = [CartLine(line.menu_item_id, line.quantity) for line in body.items]
    session = await context.runtime(request).checkout.checkout_session(principal, body.store_id, cart,
                                                              body.special_instructions)
    return ok(renamed(session, campusbite.CHECKOUT_SESSION_NAMES))


async def create_order(request: Request) -> Response:
    principal = await authenticate(request, *CUSTOMER_ROLES)
    body = await read_body(request, CreateOrderRequest)
    order, created = await context.runtime(request).checkout.create_order(principal, body.checkout_token, body.transaction_id)
    if created:
        return ok(order_summary(order, names=campusbite.CREATED_ORDER_ALIASES), status_code=201,
                  message=messages.ORDER_PLACED)
    return ok(order_summary(order, names=campusbite.CREATED_ORDER_ALIASES), status_code=200,
              message=messages.ORDER_EXISTS)


async def list_orders(request: Request) -> Response:
    principal = await authenticate(request)
    params = request.query_params
    statuses = [s for s in (params.get("status") or "").split(",") if s]
    for status in statuses:
        if status not in tuple(OrderStatus):
            raise ApiError(400, messages.ORDER_STATUS_FILTER_INVALID.format(choices=", ".join(OrderStatus)))
    page = query_int(params.get("page"), "page", 1, 1, 10_000)
    limit = query_int(params.get("limit"), "limit", 20, 1, 100)
    store_id = params.get("storeId")
    if store_id is not None and not ObjectId.is_valid(store_id):
        raise ApiError(400, messages.STORE_ID_INVALID)
    orders, total = await context.runtime(request).orders.list_orders(principal, statuses, page, limit, store_id)
    return JSONResponse(order_page_view([_detail(request, order, principal) for order in orders], page, limit, total))


async def get_order(request: Request) -> Response:
    principal = await authenticate(request)
    runtime = context.runtime(request)
    order = await runtime.orders.visible_order(principal, request.path_params["order_id"])
    return ok({**_detail(request, order, principal),
               **shaped(await runtime.ready_times.for_order(order), ESTIMATE_SHAPE)})


async def _current_snapshot(request: Request, principal: Principal, order_id: str) -> tuple[OrderSnapshot | None, bytes, str]:
    """The poll answer: from the per-process snapshot when fresh, else from the database."""
    runtime = context.runtime(request)
    snapshot = runtime.snapshots.get(order_id)
    if snapshot is not None and (snapshot.next_deadline_at is None or snapshot.next_deadline_at > runtime.clock.now()):
        runtime.orders.authorise(principal, snapshot.user_id, snapshot.store_id)
        metrics.POLL_CACHE.labels("snapshot").inc()
        return snapshot, snapshot.body, snapshot.etag
    if not ObjectId.is_valid(order_id):
        raise ApiError(404, messages.ORDER_NOT_FOUND)
    await runtime.snapshots.track(order_id)
    try:
        order = await runtime.orders.visible_order(principal, order_id)
    except NotFound:
        await runtime.snapshots.forget(order_id)
        raise
    metrics.POLL_CACHE.labels("database").inc()
    snapshot = runtime.snapshots.store(order)
    if snapshot is not None:
        return snapshot, snapshot.body, snapshot.etag
    return None, poll_body(lean_order(order)), f'"{order.id}-{order.version}"'


async def poll_status(request: Request) -> Response:
    principal = await authenticate(request)
    runtime = context.runtime(request)
    order_id = request.path_params["order_id"]
    wait = query_int(request.query_params.get("wait"), "wait", 0, 1, MAX_WAIT_SECONDS)
    snapshot, body, etag = await _current_snapshot(request, principal, order_id)
    retry = runtime.poll_limiter.retry_after(principal.user_id, order_id)
    if retry is not None:
        raise ApiError(429, messages.POLL_TOO_FAST.format(seconds=retry), headers={"Retry-After": str(retry)})
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if_none_match = request.headers.get("if-none-match")
    if etag_matches(if_none_match, etag):
        if wait and not (snapshot and snapshot.terminal):
            if snapshot is not None:
                await runtime.snapshots.wait_for_change(snapshot, wait)
            snapshot, body, etag = await _current_snapshot(request, principal, order_id)
            headers["ETag"] = etag
        if etag_matches(if_none_match, etag):
            return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


async def update_payment_status(request: Request) -> Response:
    principal = await authenticate(request, Role.STORE_EMPLOYEE)
    body = await read_body(request, PaymentStatusRequest)
    order, message = await context.runtime(request).lifecycle.update_payment(
        principal, request.path_params["order_id"], body.payment_status, body.transaction_id)
    return ok(_detail(request, order, principal), message=message)


async def update_status(request: Request) -> Response:
    principal = await authenticate(request, Role.STORE_EMPLOYEE)
    body = await read_body(request, StatusRequest)
    order = await context.runtime(request).lifecycle.update_status(
        principal, request.path_params["order_id"], OrderStatus(body.status), body.reason)
    return ok(_detail(request, order, principal), message=messages.STATUS_UPDATED)


async def verify_otp(request: Request) -> Response:
    principal = await authenticate(request, Role.STORE_EMPLOYEE)
    otp = (await read_body(request, VerifyOtpRequest)).otp  # None: `manualConfirm` without a code
    order = await context.runtime(request).lifecycle.verify_otp(principal, request.path_params["order_id"], otp)
    return ok(_detail(request, order, principal),
              message=messages.OTP_VERIFIED if otp is not None else messages.MANUAL_PICKUP_CONFIRMED)


async def cancel_order(request: Request) -> Response:
    principal = await authenticate(request, *CUSTOMER_ROLES)
    order = await context.runtime(request).lifecycle.cancel_by_customer(principal, request.path_params["order_id"])
    return ok(_detail(request, order, principal), message=messages.ORDER_CANCELLED)


async def confirm_commitment(request: Request) -> Response:
    principal = await authenticate(request, *CUSTOMER_ROLES)
    order = await context.runtime(request).lifecycle.confirm_commitment(principal, request.path_params["order_id"])
    return JSONResponse(commitment_view(order, messages.COMMITMENT_CONFIRMED, _detail(request, order, principal)))


async def mark_item(request: Request) -> Response:
    """Strike an item as done on the kitchen display; every screen of the store follows."""
    principal = await authenticate(request, Role.STORE_EMPLOYEE)
    body = await read_body(request, ItemMarkRequest)
    index = request.path_params["index"]
    if not index.isdigit() or len(index) > 3:
        raise ApiError(400, messages.ITEM_INDEX_INVALID.format(index=index[:10]))
    order = await context.runtime(request).lifecycle.mark_item(principal, request.path_params["order_id"], int(index),
                                                        body.marked)
    return ok(_detail(request, order, principal), message=messages.ITEM_MARKED)


async def undo_ready(request: Request) -> Response:
    """Put an order marked ready by mistake back to preparing, within `READY_UNDO_SECONDS`."""
    principal = await authenticate(request, Role.STORE_EMPLOYEE)
    order = await context.runtime(request).lifecycle.undo_ready(principal, request.path_params["order_id"])
    return ok(_detail(request, order, principal), message=messages.READY_UNDONE)


async def recall(request: Request) -> Response:
    """The last orders that left the caller's store's board (ready, picked up, cancelled)."""
    principal = await authenticate(request, Role.STORE_EMPLOYEE)
    if not principal.store_id:
        raise ApiError(403, messages.FORBIDDEN_ROLE)
    orders = await context.runtime(request).lifecycle.recall(principal, principal.store_id)
    return ok([_detail(request, order, principal) for order in orders])


routes = [
    ApiRoute("/api/orders/checkout-session", checkout_session, "POST", Operation(
        "Price a cart and issue a checkout token (customers)", {"200": success(ref("CheckoutSession")), **COMMON},
        body=CheckoutSessionRequest)),
    ApiRoute("/api/orders", create_order, "POST", Operation(
        "Create the order of a checkout session (seed 001)", {
            "201": success(ref("CreatedOrder"), "Created", message=True),
            "200": success(ref("CreatedOrder"), "This checkout's existing order", message=True),
            **COMMON, "409": refusal("Transaction id taken, or the cart changed")}, body=CreateOrderRequest)),
    ApiRoute("/api/orders", list_orders, "GET", Operation(
        "The caller's orders (staff: their store's), newest first", {
            "200": answer("OK", ref("OrderPage")), **COMMON}, params=(
            query_param("status", STATUS_LIST, "comma-separated"), PAGE, LIMIT,
            query_param("storeId", {"type": "string", "pattern": "^[0-9a-fA-F]{24}$"}, "admins")))),
    ApiRoute("/api/orders/recall", recall, "GET", Operation(
        "The kitchen's recall (store staff): the last 20 orders of the caller's store that left its board "
        "(ready, picked up, cancelled), most recently changed first", {
            "200": success(array(ref("Order"))), **COMMON})),
    ApiRoute("/api/orders/{order_id}", get_order, "GET", Operation(
        "One order; the owner sees `pickupOtp` while ready", {
            "200": success(ref("Order")), **COMMON, **ORDER_NOT_FOUND})),
    ApiRoute("/api/orders/{order_id}/items/{index}/mark", mark_item, "PUT", Operation(
        "Strike an item as done on the kitchen display, or take the mark back (that store's staff); "
        "published as an order change", {
            "200": success(ref("Order"), message=True), **COMMON, **ORDER_NOT_FOUND, **CONFLICT},
        body=ItemMarkRequest, params=({"name": "index", "in": "path", "required": True,
                                       "schema": {"type": "string", "pattern": "^[0-9]{1,3}$"},
                                       "description": "the item's index in `items`"},))),
    ApiRoute("/api/orders/{order_id}/undo-ready", undo_ready, "POST", Operation(
        "Put an order marked ready by mistake back to preparing (that store's staff), within "
        "`READY_UNDO_SECONDS` of its ready; recorded in `readyUndos`, and the customer is told", {
            "200": success(ref("Order"), message=True), **COMMON, **ORDER_NOT_FOUND,
            "409": refusal("Not ready, or the undo window is over")})),
    ApiRoute("/api/orders/{order_id}/poll-status", poll_status, "GET", Operation(
        "Lean status for polling (seed 000)", {
            "200": {"description": "OK", "headers": {"ETag": {"schema": STR}},
                    **json_content(envelope(ref("PollStatus")))},
            "304": {"description": "Unchanged since If-None-Match"},
            **COMMON, **ORDER_NOT_FOUND, "429": refusal("Polled too often; see Retry-After")},
        params=(query_param("wait", bounded(1, MAX_WAIT_SECONDS)),
                {"name": "If-None-Match", "in": "header", "schema": STR}))),
    ApiRoute("/api/orders/{order_id}/payment-status", update_payment_status, "PATCH", Operation(
        "Verify or fail payment (that store's staff)", {
            "200": success(ref("Order"), message=True), **COMMON, **ORDER_NOT_FOUND, **CONFLICT},
        body=PaymentStatusRequest)),
    ApiRoute("/api/orders/{order_id}/status", update_status, "PATCH", Operation(
        "Move an order along its lifecycle (that store's staff)", {
            "200": success(ref("Order"), message=True), **COMMON, **ORDER_NOT_FOUND, **CONFLICT},
        body=StatusRequest)),
    ApiRoute("/api/orders/{order_id}/verify-otp", verify_otp, "POST", Operation(
        "Complete pickup with the customer's code, or by hand (`manualConfirm: true`, recorded as "
        "`pickupMethod: manual`)", {
            "200": success(ref("Order"), message=True), **COMMON, **ORDER_NOT_FOUND, **CONFLICT,
            "429": refusal("Too many wrong codes")}, body=VerifyOtpRequest)),
    ApiRoute("/api/orders/{order_id}/cancel", cancel_order, "POST", Operation(
        "Cancel an unpaid placed order (owner)", {
            "200": success(ref("Order"), message=True), **COMMON, **ORDER_NOT_FOUND, **CONFLICT})),
    ApiRoute("/api/orders/{order_id}/confirm-commitment", confirm_commitment, "POST", Operation(
        "Confirm pickup commitment (seed 003)", {
            "200": answer("Confirmed", ref("Commitment")), **COMMON, **ORDER_NOT_FOUND})),
]
