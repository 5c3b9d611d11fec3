"""CampusBite's own clients (its React web app and its mobile app) on OrderPulse, in one place.

Everything here adds to OrderPulse's answers and never changes them: the route names those
clients call (`/api/users/profile`, `/api/auth/refresh-token`, `/api/notifications/subscribe`),
and the field names they read, repeated beside OrderPulse's (snake_case as CampusBite's backend
formats an order, `storeName`, `owner_id`, `data.order`). The seed bodies (poll-status, create
order, confirm-commitment's `order`) stay exactly as they are.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.routing import Route

from server.domain import messages
from server.domain.access import Principal, Role
from server.domain.errors import ApiError
from server.http import auth_routes
from server.http.security import authenticate
from server.realtime import sse
from server.realtime.events import OrderChange
from server.services.subscriptions import SubscriptionRefused

# CampusBite's name of an order field -> the OrderPulse field of `GET /api/orders/{id}` it repeats.
ORDER_ALIASES: dict[str, str] = {
    "_id": "id",
    "status": "orderStatus",
    "order_status": "orderStatus",
    "order_number": "orderNumber",
    "payment_status": "paymentStatus",
    "payment_reference": "paymentReference",
    "payment_method": "paymentMethod",
    "total_amount": "totalAmount",
    "transaction_id": "transactionId",
    "special_instructions": "specialInstructions",
    "requires_commitment": "requiresCommitment",
    "is_commitment_confirmed": "isCommitmentConfirmed",
    "commitment_confirmed_at": "commitmentConfirmedAt",
    "commitment_deadline_at": "commitmentDeadlineAt",
    "paid_at": "paidAt",
    "ready_at": "readyAt",
    "ready_expires_at": "readyExpiresAt",
    # The pickup code is good for as long as the ready order waits for its customer.
    "otpExpiresAt": "readyExpiresAt",
    "otp_expires_at": "readyExpiresAt",
    "is_otp_verified": "isOtpVerified",
    "picked_up_at": "pickedUpAt",
    "pickup_method": "pickupMethod",
    "cancelled_at": "cancelledAt",
    "cancellation_reason": "cancellationReason",
    # OrderPulse keeps only the customer's first name on an order (what the counter calls out).
    "customer_name": "customerFirstName",
    "created_at": "createdAt",
    "updated_at": "updatedAt",
}
# Present only when the caller may see the code (the order's customer, while it is ready).
OTP_ALIASES: dict[str, str] = {"pickup_otp": "pickupOtp", "otp": "pickupOtp"}
# Read from the order's `store` object.
STORE_ALIASES: dict[str, str] = {"storeName": "name", "store_name": "name", "storeId": "id", "store_id": "id"}
# The staff console's names of a store's and a menu item's fields.
STORE_FIELD_ALIASES: dict[str, str] = {"_id": "id", "is_active": "isActive", "upi_id": "upiId",
                                       "created_at": "createdAt"}
MENU_ITEM_ALIASES: dict[str, str] = {"_id": "id", "store_id": "storeId", "is_available": "isAvailable",
                                     "created_at": "createdAt", "updated_at": "updatedAt"}


def _aliased(shown: dict[str, Any], aliases: dict[str, str]) -> dict[str, Any]:
    return {**shown, **{alias: shown[source] for alias, source in aliases.items() if source in shown}}


def order(detail: dict[str, Any]) -> dict[str, Any]:
    """An order detail with CampusBite's names of its fields beside OrderPulse's."""
    extra = {alias: detail[source] for alias, source in {**ORDER_ALIASES, **OTP_ALIASES}.items()
             if source in detail}
    extra.update({alias: detail["store"][source] for alias, source in STORE_ALIASES.items()})
    return {**detail, **extra}


def user(profile: dict[str, Any]) -> dict[str, Any]:
    """A signed-in user as CampusBite's mobile app matches it (`_id`, its store's `owner_id`)."""
    return {**profile, "_id": profile["id"]}


def checkout_session(session: dict[str, Any]) -> dict[str, Any]:
    """CampusBite's checkout reads the commitment rule as `requiresCommitmentBeforePrep`."""
    policy = session["noShowPolicy"]
    return {**session, "noShowPolicy": {**policy, "requiresCommitmentBeforePrep": policy["requiresCommitment"]}}


def store_list(stores: list[dict[str, Any]], caller: Principal | None) -> dict[str, Any] | list[dict[str, Any]]:
    """`GET /api/stores`: a bare list, as OrderPulse's pages read it; for store staff, CampusBite's
    console shape, `{stores: [...]}`, where the caller's own store names them as its `owner_id`
    and `owner_name` (how that console finds "my store"; OrderPulse stores have staff, not one owner)."""
    if caller is None or caller.role != Role.STORE_EMPLOYEE:
        return stores
    stores = [_aliased(store, STORE_FIELD_ALIASES) for store in stores]
    own = [{**store, "owner_id": caller.user_id, "owner_name": caller.name} if store["id"] == caller.store_id
           else store for store in stores]
    return {"stores": own}


def menu_list(items: list[dict[str, Any]], caller: Principal | None) -> dict[str, Any] | list[dict[str, Any]]:
    """`GET /api/stores/{id}/menu`: for store staff, CampusBite's console shape `{menuItems: [...]}`."""
    if caller is None or caller.role != Role.STORE_EMPLOYEE:
        return items
    return {"menuItems": [_aliased(item, MENU_ITEM_ALIASES) for item in items]}


async def optional_caller(request: Request) -> Principal | None:
    """The signed-in caller of a public route; None without a valid token (the route stays public)."""
    if "authorization" not in request.headers:
        return None
    try:
        return await authenticate(request)
    except ApiError as refused:
        if refused.status_code == 401:
            return None
        raise


# --- the notification stream ---------------------------------------------------------------------

def _notification(change: OrderChange, sees_kitchen: bool) -> str:
    """One change as CampusBite's stream sends it: an unnamed event, `type: order_update`; the
    customer's wording for customers, the order's number and status for the store."""
    status, number = change.order["orderStatus"], change.order["orderNumber"]
    title, text = messages.CAMPUSBITE_NOTIFICATIONS.get(status, messages.CAMPUSBITE_NOTIFICATION_DEFAULT)
    if sees_kitchen:
        text = messages.CAMPUSBITE_STORE_NOTIFICATION.format(number=number, title=title)
    payload = {
        "type": "order_update", "title": title, "message": text.format(status=status),
        "data": {"orderId": change.order_id, "orderNumber": number, "status": status,
                 "paymentStatus": change.order["paymentStatus"], "version": change.version},
        "timestamp": change.order["updatedAt"],
    }
    return f"data: {orjson.dumps(payload).decode()}\n\n"


def _connected(entries: list[dict[str, Any]], frame_id: Any = None) -> str:
    """The stream's first event (and, after a resync, again): CampusBite's handshake, carrying the
    current state of what the stream watches, which that client ignores and refetches."""
    payload = {"type": "connected", "message": messages.CAMPUSBITE_STREAM_CONNECTED, "orders": entries}
    return f"data: {orjson.dumps(payload).decode()}\n\n"


async def _watch_for(hub, subscriber) -> list[dict[str, Any]]:
    """A customer watches their own orders, new ones included; staff their store's board."""
    principal = subscriber.principal
    if principal.is_customer:
        return await hub.subscribe_mine(subscriber)
    if principal.store_id:
        return await hub.subscribe_store(subscriber, principal.store_id)
    return []


async def notifications(request: Request):
    """`GET /api/notifications/subscribe?token=`: the same hub, authorisation and resync as the
    other streams; the query's token is redacted from every log line (server/logging_filter.py)."""
    runtime = request.app.state.runtime
    ticket = request.query_params.get("ticket")
    if ticket:
        principal = await runtime.accounts.redeem_stream_ticket(ticket)
    else:
        principal = await authenticate(request, allow_query=True)
    try:
        return await sse.open_stream(runtime.hub, runtime.settings, principal, _watch_for, None,
                                     render=_notification, render_first=_connected)
    except SubscriptionRefused as refused:
        raise ApiError(403, refused.message) from None


# Looked up when called: auth_routes imports this module for `user`, so it may still be loading here.
async def profile(request: Request):
    return await auth_routes.me(request)


async def refresh_token(request: Request):
    return await auth_routes.refresh(request)


routes = [
    Route("/api/users/profile", profile, methods=["GET"]),
    Route("/api/auth/refresh-token", refresh_token, methods=["POST"]),
    Route("/api/notifications/subscribe", notifications, methods=["GET"]),
]

