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
from server.http import context
from server.http import auth_routes
from server.http.body import ascii_int, read_json
from server.http.requests import Body, MenuItemPatch, MenuItemRequest, StoreSettingsRequest, parse
from server.http.responses import ok
from server.http.security import STORE_RUNNERS, authenticate
from server.http.security import optional_caller as optional_caller
from server.realtime import sse
from server.realtime.events import OrderChange
from server.services import catalog
from server.services.subscriptions import SubscriptionRefused
from server.views import menu_item_view, store_view

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
# A signed-in user as its profile screens read them (CampusBite's backend formats a user so).
USER_ALIASES: dict[str, str] = {"_id": "id", "register_number": "registerNumber", "employee_id": "employeeId",
                                "phone_number": "phoneNumber", "is_email_verified": "isEmailVerified",
                                "no_show_count": "noShowCount", "trust_tier": "trustTier",
                                "ordering_restricted_until": "orderingRestrictedUntil", "store_id": "storeId",
                                "created_at": "createdAt"}


def _aliased(shown: dict[str, Any], aliases: dict[str, str]) -> dict[str, Any]:
    return {**shown, **{alias: shown[source] for alias, source in aliases.items() if source in shown}}


def order(detail: dict[str, Any]) -> dict[str, Any]:
    """An order detail with CampusBite's names of its fields beside OrderPulse's."""
    extra = {alias: detail[source] for alias, source in {**ORDER_ALIASES, **OTP_ALIASES}.items()
             if source in detail}
    extra.update({alias: detail["store"][source] for alias, source in STORE_ALIASES.items()})
    return {**detail, **extra}


def user(profile: dict[str, Any]) -> dict[str, Any]:
    """A signed-in user with CampusBite's names beside OrderPulse's (`_id`, matched against its
    store's `owner_id`; `trust_tier`, `no_show_count`, `is_email_verified` on its profile screen)."""
    return _aliased(profile, USER_ALIASES)


def created_order(summary: dict[str, Any]) -> dict[str, Any]:
    """Seed 001's order, key for key, then `_id`, where CampusBite's mobile checkout reads the new order's id."""
    return {**summary, "_id": summary["id"]}


def staff_pickup_code(detail: dict[str, Any], otp: str) -> dict[str, Any]:
    """A ready order as its store's staff get it: `pickup_otp`, the expected code CampusBite's staff
    page shows in its pickup dialog to compare with the customer's (as CampusBite's backend sends
    it to the store). Only that name: OrderPulse's own kitchen asks for the code instead."""
    return {**detail, "pickup_otp": otp}


def checkout_session(session: dict[str, Any]) -> dict[str, Any]:
    """CampusBite's checkout reads the commitment rule as `requiresCommitmentBeforePrep`."""
    policy = session["noShowPolicy"]
    return {**session, "noShowPolicy": {**policy, "requiresCommitmentBeforePrep": policy["requiresCommitment"]}}


def store_fields(store: dict[str, Any], caller: Principal | None) -> dict[str, Any]:
    """A store with CampusBite's names of its fields, for every caller. OrderPulse stores have staff,
    not one owner: `owner_id` (with `owner_name`) names the caller on their own store, which is how
    CampusBite's console finds "my store", and is null on any other."""
    own = caller is not None and caller.is_staff and caller.store_id == store["id"]
    owner = {"owner_id": caller.user_id, "owner_name": caller.name} if own and caller else {"owner_id": None}
    return {**_aliased(store, STORE_FIELD_ALIASES), **owner}


def store_list(stores: list[dict[str, Any]], caller: Principal | None) -> dict[str, Any] | list[dict[str, Any]]:
    """`GET /api/stores`: a bare list, as OrderPulse's pages read it; for store staff, CampusBite's
    console shape, `{stores: [...]}`."""
    shown = [store_fields(store, caller) for store in stores]
    if caller is None or caller.role != Role.STORE_EMPLOYEE:
        return shown
    return {"stores": shown}


def _campusbite_reader(caller: Principal | None) -> bool:
    """A signed-in student, faculty member or store employee: the roles CampusBite's clients have
    (they always send their token). Anonymous callers (OrderPulse's pages) and admins get the contract."""
    return caller is not None and not caller.is_admin


def menu_list(items: list[dict[str, Any]], caller: Principal | None) -> dict[str, Any] | list[dict[str, Any]]:
    """`GET /api/stores/{id}/menu`: the contract's bare list, each item also under CampusBite's names;
    to CampusBite's readers its shape `{menuItems: [...]}`, which holds the sold-out items too
    (`menu_lists_every_item`)."""
    shown = [_aliased(item, MENU_ITEM_ALIASES) for item in items]
    return {"menuItems": shown} if _campusbite_reader(caller) else shown


def menu_lists_every_item(caller: Principal | None) -> bool:
    """CampusBite lists sold-out items with an "Unavailable" badge (its staff, to switch them back),
    so its shape holds every item, each with `is_available`."""
    return _campusbite_reader(caller)


# --- the notification stream ---------------------------------------------------------------------

def _notification(change: OrderChange, sees_kitchen: bool) -> str:
    """One change as CampusBite's stream sends it: an unnamed event, `type: order_update`; the
    customer's wording for customers, the order's number and status for the store. Built once
    per process and audience, however many streams it goes to."""
    return change.rendered(("campusbite", sees_kitchen), lambda: _render_notification(change, sees_kitchen))


def _render_notification(change: OrderChange, sees_kitchen: bool) -> str:
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
    runtime = context.runtime(request)
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


async def update_profile(request: Request):
    return await auth_routes.update_profile(request)


async def refresh_token(request: Request):
    return await auth_routes.refresh(request)


# --- the staff console's menu and store settings ----------------------------------------------
# CampusBite's console sends FormData (with an optional image) or JSON, in its own field names, and
# toggles availability without a body. Each is parsed into OrderPulse's request model, so the
# rules and messages are the same as on OrderPulse's own routes. OrderPulse keeps no images,
# item descriptions or opening hours: those fields are read and dropped (README).

CONSOLE_MAX_BYTES = 5 * 1024 * 1024  # a photo from a phone, which is then dropped


async def _console_fields(request: Request) -> dict[str, Any]:
    """The body as a flat dict: a form's text fields (files are dropped unread) or a JSON object."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return await read_json(request, context.runtime(request).settings.max_body_bytes)
    declared = ascii_int(request.headers.get("content-length"))
    if declared is None or declared > CONSOLE_MAX_BYTES:
        raise ApiError(413, messages.BODY_TOO_LARGE)
    try:
        async with request.form(max_files=4, max_fields=50) as form:
            return {key: value for key, value in form.multi_items() if isinstance(value, str)}
    except Exception as exc:  # starlette refuses a malformed form with its own exception types
        raise ApiError(400, messages.FORM_MALFORMED) from exc


def _flag(value: Any) -> Any:
    """FormData sends booleans as "true"/"false"."""
    return {"true": True, "false": False}.get(value, value) if isinstance(value, str) else value


def _parse_console(model: type[Body], body: dict[str, Any]) -> Body:
    """A console body by OrderPulse's model; its price may come as text (FormData's, or its JSON's
    from a text input), read by the JSON number rule (`requests.json_number`) before the price rule."""
    return parse(model, body, numbers_as_text=True)


def _menu_body(fields: dict[str, Any]) -> dict[str, Any]:
    names = {"name": "name", "price": "price", "category": "category", "is_available": "isAvailable",
             "isAvailable": "isAvailable"}
    body = {ours: fields[theirs] for theirs, ours in names.items() if theirs in fields}
    if "isAvailable" in body:
        body["isAvailable"] = _flag(body["isAvailable"])
    if body.get("category") == "":
        body["category"] = None
    return body


def _menu_item(item: Any) -> dict[str, Any]:
    return _aliased(menu_item_view(item), MENU_ITEM_ALIASES)


async def console_add_menu_item(request: Request):
    """`POST /api/menu`: a new item of the caller's store (an admin names the store). Who may add
    to some store is decided before the body is read: a customer's form of megabytes is refused unread."""
    principal = await authenticate(request, *STORE_RUNNERS)
    if not (principal.is_admin or principal.store_id):
        raise ApiError(403, messages.FORBIDDEN_ROLE)
    fields = await _console_fields(request)
    store = await catalog.find_store(str(fields.get("store_id") or principal.store_id or ""))
    catalog.authorise_store_staff(principal, str(store.id))
    body = _parse_console(MenuItemRequest, _menu_body(fields))
    item = await catalog.add_menu_item(store, name=body.name, price_paise=body.price_paise, category=body.category,
                                       is_available=body.is_available, bus=context.runtime(request).broker)
    return ok({"menuItem": _menu_item(item)}, status_code=201, message=messages.MENU_ITEM_ADDED)


async def _staff_item(request: Request):
    principal = await authenticate(request, *STORE_RUNNERS)
    item = await catalog.find_menu_item(request.path_params["item_id"])
    catalog.authorise_store_staff(principal, str(item.store_id))
    return item


async def console_update_menu_item(request: Request):
    """`PUT /api/menu/{id}`: the fields sent change."""
    item = await _staff_item(request)
    changes = _parse_console(MenuItemPatch, _menu_body(await _console_fields(request))).changes()
    if not changes:
        raise ApiError(400, messages.MENU_ITEM_UPDATE_EMPTY)
    item = await catalog.update_menu_item(item, changes, context.runtime(request).broker)
    return ok({"menuItem": _menu_item(item)}, message=messages.MENU_ITEM_UPDATED)


async def console_toggle_availability(request: Request):
    """`PATCH /api/menu/{id}/availability`: sold out becomes available and back."""
    item = await _staff_item(request)
    item = await catalog.update_menu_item(item, {"is_available": not item.is_available},
                                          context.runtime(request).broker)
    return ok({"menuItem": _menu_item(item)}, message=messages.MENU_ITEM_UPDATED)


async def console_delete_menu_item(request: Request):
    """`DELETE /api/menu/{id}`: orders keep their own copy of each item, so none is affected."""
    item = await _staff_item(request)
    await catalog.delete_menu_item(item, context.runtime(request).broker)
    return ok(None, message=messages.MENU_ITEM_DELETED)


async def console_update_store(request: Request):
    """`PUT /api/stores/{id}`: the settings page's name, description and UPI id."""
    principal = await authenticate(request, *STORE_RUNNERS)
    store = await catalog.find_store(request.path_params["store_id"])
    catalog.authorise_store_staff(principal, str(store.id))
    fields = await _console_fields(request)
    body = {ours: fields[theirs] for theirs, ours in (("name", "name"), ("description", "description"),
                                                      ("upi_id", "upiId"), ("upiId", "upiId"),
                                                      ("location", "location"), ("is_active", "isActive"),
                                                      ("isActive", "isActive")) if theirs in fields}
    if "isActive" in body:
        body["isActive"] = _flag(body["isActive"])
    changes = _parse_console(StoreSettingsRequest, body).changes()
    store = await catalog.update_store(store, changes, context.runtime(request).broker)
    # An admin saving the settings is shown as its owner, as its staff are.
    view = {**_aliased(store_view(store), STORE_FIELD_ALIASES), "owner_id": principal.user_id,
            "owner_name": principal.name}
    return ok({"store": view}, message=messages.STORE_UPDATED)


routes = [
    Route("/api/menu", console_add_menu_item, methods=["POST"]),
    Route("/api/menu/{item_id}", console_update_menu_item, methods=["PUT"]),
    Route("/api/menu/{item_id}", console_delete_menu_item, methods=["DELETE"]),
    Route("/api/menu/{item_id}/availability", console_toggle_availability, methods=["PATCH"]),
    Route("/api/stores/{store_id}", console_update_store, methods=["PUT"]),
    Route("/api/users/profile", profile, methods=["GET"]),
    Route("/api/users/profile", update_profile, methods=["PUT"]),
    Route("/api/auth/refresh-token", refresh_token, methods=["POST"]),
    Route("/api/notifications/subscribe", notifications, methods=["GET"]),
]

