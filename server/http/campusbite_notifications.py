"""CampusBite's notification stream, `GET /api/notifications/subscribe`: the hub's changes of the
caller's orders (staff: their store's) as its clients read them, unnamed events of `{type: ...}`."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from server.domain import messages
from server.http import context
from server.domain.errors import Forbidden, NotFound, RateLimited
from server.http.errors import ApiError
from server.http.contract import COMMON, STREAM_AUTH, ApiRoute, Operation, event_stream
from server.http.security import authenticate
from server.realtime import sse
from server.realtime.client import Subscriber
from server.realtime.events import OrderChange
from server.realtime.hub import Hub

# Unnamed events (an EventSource's `message`), no ids.
NOTIFICATION_EVENT = {"type": "object", "required": ["data"], "properties": {
    "event": {"const": "message"},
    "data": {"type": "string",
             "description": "a JSON object, `{type: connected, ...}` or `{type: order_update, ...}`"}}}


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


async def _watch_for(hub: Hub, subscriber: Subscriber) -> list[dict[str, Any]]:
    """A customer watches their own orders, new ones included; staff their store's board."""
    principal = subscriber.principal
    if principal.is_customer:
        return await hub.subscribe_mine(subscriber)
    if principal.store_id:
        return await hub.subscribe_store(subscriber, principal.store_id)
    return []


async def notifications(request: Request) -> Response:
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
    except (Forbidden, NotFound, RateLimited) as refused:  # CampusBite's client knows one refusal here: 403
        raise ApiError(403, refused.message) from None


routes = [
    ApiRoute("/api/notifications/subscribe", notifications, "GET", Operation(
        "CampusBite's notification stream: unnamed events, `{type: connected}` first, then one `{type: "
        "order_update, title, message, data: {orderId, orderNumber, status, paymentStatus, version}}` per change "
        "of the caller's orders (staff: their store's)", {"200": event_stream(NOTIFICATION_EVENT), **COMMON},
        tag="campusbite", params=STREAM_AUTH)),
]
