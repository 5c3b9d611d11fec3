"""`/api/admin/webhooks`: partner webhook endpoints, their delivery logs and replays (README,
"Webhooks"). Admins only: every route checks the caller before anything else."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from server.domain import messages
from server.domain.access import Role
from server.domain.clock import parse_iso
from server.http import context
from server.http.body import query_int, read_body
from server.http.errors import ApiError
from server.http.contract import (
    COMMON, INT, NULL, ApiRoute, Operation, array, bounded, obj, query_param, ref, refusal, success,
)
from server.http.requests import WebhookEndpointRequest, WebhookReplayRequest
from server.http.responses import ok
from server.http.security import authenticate
from server.services import webhooks
from server.services.partners import MAX_CLIENT_ID_LENGTH
from server.views import SIGNING_SECRET_SHAPE, shaped, webhook_delivery_view, webhook_endpoint_view


if TYPE_CHECKING:
    from server.models import WebhookEndpoint

ENDPOINT_NOT_FOUND = {"404": refusal("Endpoint not found")}


def _now(request: Request) -> datetime:
    return context.runtime(request).clock.now()


async def _view(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return webhook_endpoint_view(endpoint, await webhooks.delivery_counts(endpoint.endpoint_id))


async def list_endpoints(request: Request) -> Response:
    """Every endpoint (or one client's, `?clientId=`), newest first, with pending and failed counts."""
    await authenticate(request, Role.ADMIN)
    client_id = request.query_params.get("clientId") or None
    if client_id is not None and len(client_id) > MAX_CLIENT_ID_LENGTH:
        raise ApiError(400, messages.QUERY_TOO_LONG.format(name="clientId", maximum=MAX_CLIENT_ID_LENGTH))
    return ok([await _view(endpoint) for endpoint in await webhooks.list_endpoints(client_id)])


async def add_endpoint(request: Request) -> Response:
    """Register an endpoint; its signing secret is in this answer and never again."""
    await authenticate(request, Role.ADMIN)
    body = await read_body(request, WebhookEndpointRequest)
    runtime = context.runtime(request)
    endpoint, secret = await webhooks.add_endpoint(runtime.settings, body.client_id, body.url, body.events,
                                                   _now(request))
    return ok({**await _view(endpoint), **shaped(secret, SIGNING_SECRET_SHAPE)}, status_code=201)


async def remove_endpoint(request: Request) -> Response:
    await authenticate(request, Role.ADMIN)
    await webhooks.remove_endpoint(request.path_params["endpoint_id"])
    return ok(None, message=messages.WEBHOOK_REMOVED)


async def rotate_secret(request: Request) -> Response:
    """A new secret, shown once; the old one also signs for WEBHOOK_ROTATION_GRACE_HOURS."""
    await authenticate(request, Role.ADMIN)
    grace = timedelta(hours=context.runtime(request).settings.webhook_rotation_grace_hours)
    endpoint, secret = await webhooks.rotate_secret(request.path_params["endpoint_id"], grace, _now(request))
    return ok({**await _view(endpoint), **shaped(secret, SIGNING_SECRET_SHAPE)}, message=messages.WEBHOOK_ROTATED)


async def enable_endpoint(request: Request) -> Response:
    await authenticate(request, Role.ADMIN)
    endpoint = await webhooks.enable_endpoint(request.path_params["endpoint_id"])
    return ok(await _view(endpoint), message=messages.WEBHOOK_ENABLED)


async def list_deliveries(request: Request) -> Response:
    """An endpoint's delivery log, newest first: each attempt's status code, latency and error."""
    await authenticate(request, Role.ADMIN)
    limit = query_int(request.query_params.get("limit"), "limit", 50, 1, 500)
    order_id = request.query_params.get("orderId") or None
    found = await webhooks.deliveries(request.path_params["endpoint_id"], limit=limit, order_id=order_id)
    return ok([webhook_delivery_view(delivery) for delivery in found])


def _moment(text: str | None, field: str) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_iso(text)
    except ValueError:
        raise ApiError(400, messages.WEBHOOK_TIME_INVALID.format(field=field)) from None


async def replay(request: Request) -> Response:
    """Send finished deliveries again under their webhook-id: by event, by order, or made in a time range."""
    await authenticate(request, Role.ADMIN)
    body = await read_body(request, WebhookReplayRequest)
    count = await webhooks.replay(request.path_params["endpoint_id"], _now(request), event=body.event_id,
                                  order_id=body.order_id, since=_moment(body.since, "since"),
                                  until=_moment(body.until, "until"))
    return ok({"replayed": count}, message=messages.WEBHOOK_REPLAYED.format(count=count))


routes = [
    ApiRoute("/api/admin/webhooks", list_endpoints, "GET", Operation(
        "Partner webhook endpoints, newest first (admins)", {"200": success(array(ref("WebhookEndpoint"))), **COMMON},
        tag="admin", params=(query_param("clientId", {"type": "string", "maxLength": MAX_CLIENT_ID_LENGTH}),))),
    ApiRoute("/api/admin/webhooks", add_endpoint, "POST", Operation(
        "Register a webhook endpoint for a partner client; the answer holds its signing secret, shown once "
        "(admins)", {"201": success(ref("WebhookEndpoint"), "Created"), **COMMON}, tag="admin",
        body=WebhookEndpointRequest)),
    ApiRoute("/api/admin/webhooks/{endpoint_id}", remove_endpoint, "DELETE", Operation(
        "Remove a webhook endpoint and its delivery log (admins)", {
            "200": success(NULL, message=True), **COMMON, **ENDPOINT_NOT_FOUND}, tag="admin")),
    ApiRoute("/api/admin/webhooks/{endpoint_id}/rotate", rotate_secret, "POST", Operation(
        "A new signing secret, shown once; the old one signs too for WEBHOOK_ROTATION_GRACE_HOURS (admins)", {
            "200": success(ref("WebhookEndpoint"), message=True), **COMMON, **ENDPOINT_NOT_FOUND}, tag="admin")),
    ApiRoute("/api/admin/webhooks/{endpoint_id}/enable", enable_endpoint, "POST", Operation(
        "Enable a disabled webhook endpoint: its pending deliveries go out (admins)", {
            "200": success(ref("WebhookEndpoint"), message=True), **COMMON, **ENDPOINT_NOT_FOUND}, tag="admin")),
    ApiRoute("/api/admin/webhooks/{endpoint_id}/deliveries", list_deliveries, "GET", Operation(
        "An endpoint's delivery log, newest first (admins)", {
            "200": success(array(ref("WebhookDelivery"))), **COMMON, **ENDPOINT_NOT_FOUND}, tag="admin",
        params=(query_param("orderId", {"type": "string", "maxLength": 24}), query_param("limit", bounded(1, 500))))),
    ApiRoute("/api/admin/webhooks/{endpoint_id}/replay", replay, "POST", Operation(
        "Send finished deliveries again under their webhook-id: by event, by order or by time range (admins)", {
            "200": success(obj({"replayed": INT}), message=True), **COMMON, **ENDPOINT_NOT_FOUND}, tag="admin",
        body=WebhookReplayRequest)),
]
