"""Web Push subscriptions (issue 12): the pages subscribe a device to its owner's order moments."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from server.domain import messages
from server.http import context
from server.http.body import read_body
from server.http.contract import COMMON, NULL, OID, ApiRoute, Operation, obj, refusal, success
from server.http.requests import PushSubscribeRequest, PushUnsubscribeRequest
from server.http.responses import ok
from server.http.security import authenticate

if TYPE_CHECKING:
    from server.services.push import PushNotifier


def _push(request: Request) -> PushNotifier:
    return context.runtime(request).push


async def public_key(request: Request) -> Response:
    """The VAPID public key a page passes to `pushManager.subscribe` as `applicationServerKey`."""
    return ok({"publicKey": _push(request).vapid.public_key})


async def subscribe(request: Request) -> Response:
    principal = await authenticate(request)
    body = await read_body(request, PushSubscribeRequest)
    subscription = await _push(request).subscribe(principal.user_id, body.endpoint, body.keys.p256dh, body.keys.auth)
    return ok({"id": str(subscription.id)}, status_code=201, message=messages.PUSH_SUBSCRIBED)


async def unsubscribe(request: Request) -> Response:
    principal = await authenticate(request)
    body = await read_body(request, PushUnsubscribeRequest)
    await _push(request).unsubscribe(principal.user_id, body.endpoint)
    return ok(None, message=messages.PUSH_UNSUBSCRIBED)


routes = [
    ApiRoute("/api/push/public-key", public_key, "GET", Operation(
        "The VAPID public key for `pushManager.subscribe` (Web Push)", {
            "200": success(obj({"publicKey": {"type": "string", "description": "base64url, uncompressed P-256"}}))},
        tag="push", auth=False)),
    ApiRoute("/api/push/subscriptions", subscribe, "POST", Operation(
        "Notify this device of the caller's order moments (accepted, ready, pickup reminder, cancelled); the body "
        "is `PushSubscription.toJSON()`, its `keys.p256dh` a point on P-256. An account keeps at most "
        "`PUSH_MAX_SUBSCRIPTIONS_PER_ACCOUNT` (10) devices: a new one past it replaces the least recently "
        "registered", {"201": success(obj({"id": OID}), "Subscribed", message=True), **COMMON}, tag="push",
        body=PushSubscribeRequest)),
    ApiRoute("/api/push/subscriptions", unsubscribe, "DELETE", Operation(
        "Stop notifying this device", {
            "200": success(NULL, message=True), **COMMON, "404": refusal("Not the caller's subscription")},
        tag="push", body=PushUnsubscribeRequest)),
]
