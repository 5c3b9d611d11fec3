"""The OpenAPI 3.1 document of every HTTP route; a test validates real responses against it.

Request bodies are the JSON Schemas of their parsing models (server/http/requests.py), and the
lean order shape that of `server.views.LEAN_SHAPE`; the other answers are described here.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model
from pydantic.json_schema import GenerateJsonSchema

from server.domain.access import Role
from server.domain.lifecycle import CancellationReason, OrderStatus, PaymentStatus, PickupMethod
from server.http import body_rules, campusbite, requests
from server.services.partners import MAX_CLIENT_ID_LENGTH
from server.views import EVENT_SHAPE, LEAN_SHAPE, ShapeField

STR = {"type": "string"}
NSTR = {"type": ["string", "null"]}
TIME = {"type": "string", "format": "date-time"}
NTIME = {"type": ["string", "null"], "format": "date-time"}
BOOL = {"type": "boolean"}
INT = {"type": "integer"}
MONEY = {"type": "number", "minimum": 0}
OID = body_rules.OBJECT_ID


def bounded(minimum: int, maximum: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum, "maximum": maximum}


SSE_EVENT = {"type": "object", "required": ["data"], "description": "one event of the stream (REALTIME.md)",
             "properties": {"event": {"enum": ["snapshot", "order", "eta"]},
                            "id": {"type": "string", "pattern": "^[0-9]+$"},
                            "data": {"type": "string", "description": "a JSON object; an `order` event's `order` is "
                                                                      "an `OrderEvent` (store staff also get the "
                                                                      "kitchen's fields)"}}}
SSE_STREAM = {"description": "text/event-stream", "content": {"text/event-stream": {"schema": SSE_EVENT}}}
MENU_EVENT = {"type": "object", "required": ["data"], "description": "the store and its whole menu (API.md)",
              "properties": {"event": {"const": "menu"}, "id": {"type": "string", "pattern": "^[0-9]+$"},
                             "data": {"type": "string", "description": "a JSON object: revision, store, menu"}}}
MENU_STREAM = {"description": "text/event-stream", "content": {"text/event-stream": {"schema": MENU_EVENT}}}
# CampusBite's notification stream: unnamed events (an EventSource's `message`), no ids.
NOTIFICATION_EVENT = {"type": "object", "required": ["data"], "properties": {
    "event": {"const": "message"},
    "data": {"type": "string", "description": "a JSON object, `{type: connected, ...}` or `{type: order_update, ...}`"}}}
NOTIFICATION_STREAM = {"description": "text/event-stream",
                       "content": {"text/event-stream": {"schema": NOTIFICATION_EVENT}}}
PAGE = {"name": "page", "in": "query", "schema": bounded(1, 10_000)}
LIMIT = {"name": "limit", "in": "query", "schema": bounded(1, 100)}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: dict[str, Any], optional: dict[str, Any] | None = None, closed: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": {**required, **(optional or {})},
                              "required": list(required)}
    if closed:
        schema["additionalProperties"] = False
    return schema


def envelope(data: dict[str, Any], message: bool = False) -> dict[str, Any]:
    required: dict[str, Any] = {"success": {"const": True}, "data": data}
    if message:
        required["message"] = STR
    return obj(required, {"message": STR})


ORDER_STATUS = {"type": "string", "enum": [s.value for s in OrderStatus]}
PAYMENT_STATUS = {"type": "string", "enum": [s.value for s in PaymentStatus]}
REASON = {"type": ["string", "null"], "enum": [r.value for r in CancellationReason] + [None]}
_STATUS_NAME = "|".join(s.value for s in OrderStatus)
STATUS_LIST = {"type": "string", "pattern": f"^({_STATUS_NAME})?(,({_STATUS_NAME})?)*$"}
REF_TEMPLATE = "#/components/schemas/{model}"


class _DocumentSchema(GenerateJsonSchema):
    """pydantic's JSON Schema without a generated title on every property."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def shape_model(name: str, shape: tuple[ShapeField, ...], description: str) -> type[BaseModel]:
    """A shape of `server.views` as a closed pydantic model, for its JSON Schema."""
    return create_model(name, __config__=ConfigDict(extra="forbid"), __doc__=description,
                        **{field.name: (field.type, ...) for field in shape})


def model_schemas(models: list[type[BaseModel]]) -> dict[str, Any]:
    """Each model's JSON Schema under its name, and beside them the schemas they refer to."""
    schemas: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=REF_TEMPLATE, schema_generator=_DocumentSchema)
        for name, definition in {**schema.pop("$defs", {}), model.__name__: schema}.items():
            if schemas.setdefault(name, definition) != definition:
                raise ValueError(f"two different schemas are named {name}")
    return schemas


def _request_models() -> list[type[BaseModel]]:
    return [value for value in vars(requests).values() if isinstance(value, type)
            and issubclass(value, body_rules.RequestModel) and value is not body_rules.RequestModel]


def _shape_models() -> list[type[BaseModel]]:
    return [shape_model("PollStatus", LEAN_SHAPE, "Seed 000's poll-status body: these 13 fields, in this order."),
            shape_model("OrderEvent", EVENT_SHAPE, "The `order` of a real-time event (REALTIME.md): the "
                                                   "poll-status fields, the store and the order's version.")]

ORDER_ITEM = obj({"menuItemId": OID, "name": STR, "price": MONEY, "quantity": INT, "total": MONEY})
ORDER_SUMMARY = {
    "id": OID, "orderNumber": STR, "paymentReference": {"type": "string", "pattern": "^CBPAY[0-9A-F]{10}$"},
    "totalAmount": MONEY, "paymentStatus": PAYMENT_STATUS, "orderStatus": ORDER_STATUS, "paymentMethod": STR,
    "transactionId": NSTR, "items": {"type": "array", "items": ORDER_ITEM}, "specialInstructions": NSTR,
    "isCommitmentConfirmed": BOOL, "commitmentDeadlineAt": NTIME,
    "store": obj({"id": OID, "name": STR, "location": STR}), "createdAt": TIME, "updatedAt": TIME,
}
ORDER_DETAIL_EXTRA = {
    "requiresCommitment": BOOL, "commitmentConfirmedAt": NTIME, "paidAt": NTIME, "acceptedAt": NTIME,
    "preparingAt": NTIME, "readyAt": NTIME,
    "readyExpiresAt": NTIME, "isOtpVerified": BOOL, "pickedUpAt": NTIME, "cancelledAt": NTIME,
    "cancellationReason": REASON, "customerFirstName": STR, "version": INT,
    "pickupMethod": {"type": ["string", "null"], "enum": [m.value for m in PickupMethod] + [None]},
    "pickedUpBy": {"oneOf": [{"type": "null"}, obj({"id": OID, "name": STR}, closed=True)],
                   "description": "the staff member who handed the order over"},
    "itemMarks": {"type": "array", "items": {"type": "integer", "minimum": 0},
                  "description": "indexes in `items` the kitchen has struck as done"},
    "readyUndos": {"type": "array", "items": obj({"at": TIME, "by": obj({"id": OID, "name": STR}, closed=True),
                                                  "readyAt": NTIME}, closed=True),
                   "description": "each time the kitchen put the ready order back to preparing: when, who, and "
                                  "when it had been marked ready"},
    "slotDeferred": {"type": "boolean", "description": "the store's cap was hit: the order was counted in a later "
                                                       "15-minute slot than the one it was placed in"},
}
PICKUP_OTP = {"type": "string", "pattern": "^[0-9]{6}$"}
# CampusBite's names of the same fields (server/http/campusbite.py), each typed as its source.
_ORDER_FIELDS = {**ORDER_SUMMARY, **ORDER_DETAIL_EXTRA}
CAMPUSBITE_ORDER = {
    **{alias: _ORDER_FIELDS[source] for alias, source in campusbite.ORDER_ALIASES.items()},
    **{alias: _ORDER_FIELDS["store"]["properties"][source] for alias, source in campusbite.STORE_ALIASES.items()},
}

SCHEMAS: dict[str, Any] = {
    "Error": obj({"success": {"const": False}, "message": STR}, {"errors": {"type": "array"}}),
    "User": obj({"id": OID, "name": STR, "email": STR, "role": {"enum": [role.value for role in Role]},
                 "storeId": {"type": ["string", "null"]}, "createdAt": TIME},
                {"registerNumber": STR, "employeeId": STR, "phoneNumber": STR,
                 "isEmailVerified": {**BOOL, "description": "the owner followed the link mailed to the address"},
                 "awaitingStore": {**BOOL, "description": "a store employee no admin has assigned a store yet: "
                                                          "acts for no store"},
                 **{alias: {"description": f"CampusBite's name of `{source}`"}
                    for alias, source in campusbite.USER_ALIASES.items()}}),
    "Profile": {"allOf": [ref("User"), obj({"trustTier": {"enum": ["good", "watch", "restricted", None]},
                                            "noShowCount": INT, "orderingRestrictedUntil": NTIME})]},
    "Session": obj({"accessToken": STR, "refreshToken": STR, "user": ref("User")}),
    "AdminUser": {"allOf": [ref("User"), obj({"isActive": BOOL}, {
        "requestedStore": {**NSTR, "description": "the store a store employee named when signing up"}})]},
    "UserPage": obj({"users": {"type": "array", "items": ref("AdminUser")}, "page": INT, "limit": INT,
                     "total": INT, "pages": INT}),
    "Store": obj({"id": OID, "name": STR, "location": STR, "description": NSTR, "upiId": STR, "isActive": BOOL,
                  "createdAt": TIME, "delayMinutes": {"type": "number", "minimum": 0}, "isPaused": BOOL},
                 {"waitMinutes": {"type": "integer", "minimum": 1,
                                  "description": "about how long an order placed now would take (GET one store)"},
                  "itemsPerSlot": {"type": ["integer", "null"], "minimum": 1,
                                   "description": "items taken per 15-minute slot; null: no cap"},
                  "capacity": {"oneOf": [{"type": "null"}, obj({
                      "itemsPerSlot": INT, "slotStart": TIME, "slotItems": INT, "nextFreeSlot": NTIME,
                      "deferring": BOOL})], "description": "a capped store's slots now (GET one store, its "
                                                             "pace, the menu events); `nextFreeSlot` null: full"},
                  "typicalPrepMinutes": {"type": "number", "minimum": 0,
                                         "description": "the store's typical accepted → ready time, learned from "
                                                        "its recent orders (GET one store)"},
                  **{alias: {"description": f"CampusBite's name of `{source}`"}
                     for alias, source in campusbite.STORE_FIELD_ALIASES.items()},
                  "owner_id": {**NSTR, "description": "CampusBite's owner: the caller on their own store, else null"},
                  "owner_name": {**STR, "description": "the caller, on their own store"}}),
    "Customer": {"allOf": [ref("AdminUser"), obj({"trustTier": {"enum": ["good", "watch", "restricted"]},
                                                  "noShowCount": INT, "orderingRestrictedUntil": NTIME})]},
    "CustomerPage": obj({"customers": {"type": "array", "items": ref("Customer")}, "page": INT, "limit": INT,
                         "total": INT, "pages": INT}),
    "NoShow": obj({"orderId": OID, "orderNumber": STR, "storeId": OID, "recordedAt": NTIME, "clearedAt": NTIME,
                   "clearedBy": NSTR, "clearedByName": NSTR, "clearedReason": NSTR}),
    "PartnerClient": obj({"clientId": STR, "name": STR, "isActive": BOOL, "createdAt": TIME, "revokedAt": NTIME}),
    "WebhookEndpoint": obj({"endpointId": STR, "clientId": STR, "url": STR, "events": {"type": "array", "items": STR},
                            "enabled": BOOL, "disabledReason": NSTR, "disabledAt": NTIME, "createdAt": TIME,
                            "secretsSigning": INT, "pendingDeliveries": INT, "failedDeliveries": INT},
                           {"secret": {"type": "string", "pattern": "^whsec_", "description": "shown once"}}),
    "WebhookDelivery": obj({"eventId": STR, "endpointId": STR, "orderId": OID, "version": INT, "type": STR,
                            "status": {"enum": ["pending", "delivering", "succeeded", "failed"]},
                            "attempts": {"type": "array", "items": obj({
                                "at": TIME, "statusCode": {"type": ["integer", "null"]},
                                "latencyMs": {"type": "number"}, "error": NSTR})},
                            "nextAttemptAt": NTIME, "createdAt": TIME, "finishedAt": NTIME}),
    "MenuItem": obj({"id": OID, "storeId": OID, "name": STR, "price": MONEY, "category": NSTR,
                     "isAvailable": BOOL, "createdAt": TIME, "updatedAt": TIME},
                    {"capWeight": {"type": "integer", "minimum": 1,
                                   "description": "items of the store's per-slot cap one counts for"},
                     **{alias: {"description": f"CampusBite's name of `{source}`"}
                        for alias, source in campusbite.MENU_ITEM_ALIASES.items()}}),
    "OrderSummary": obj(ORDER_SUMMARY, closed=True),
    "CreatedOrder": obj({**ORDER_SUMMARY, "_id": {**OID, "description": "`id` again, where CampusBite's mobile "
                                                                        "checkout reads it"}}, closed=True),
    "Order": obj({**ORDER_SUMMARY, **ORDER_DETAIL_EXTRA, **CAMPUSBITE_ORDER},
                 {"pickupOtp": PICKUP_OTP, **{alias: PICKUP_OTP for alias in campusbite.OTP_ALIASES},
                  "estimatedReadyAt": {**NTIME, "description": "GET /api/orders/{id}: when an active order not "
                                                               "yet ready should be ready, from the store's live "
                                                               "queue; null otherwise"}}, closed=True),
    "OrderPage": obj({"success": {"const": True}, "data": {"type": "array", "items": ref("Order")},
                      "pagination": obj({"total": INT, "page": INT, "limit": INT, "totalPages": INT})}),
    "CheckoutSession": obj({
        "checkoutToken": STR, "paymentReference": STR, "expiresInSeconds": INT, "totalAmount": MONEY,
        "items": {"type": "array", "items": ORDER_ITEM}, "specialInstructions": NSTR,
        "store": obj({"id": OID, "name": STR, "location": STR, "upiId": STR}),
        "noShowPolicy": obj({"trustTier": {"enum": ["good", "watch", "restricted"]}, "noShowCount": INT,
                             "requiresCommitment": BOOL, "requiresCommitmentBeforePrep": BOOL,
                             "commitmentWindowMinutes": {"type": "number"},
                             "unpaidTimeoutMinutes": {"type": "number"}, "readyTimeoutMinutes": {"type": "number"}}),
        "payment": obj({"mode": {"const": "direct_store_upi"}, "upiLink": STR}),
    }, {"slot": {"oneOf": [{"type": "null"}, obj({"deferred": BOOL, "readyAround": NTIME})],
                 "description": "a capped store: whether this order goes to a later 15-minute slot, and when "
                                "it would then be ready"}}),
    "Commitment": obj({"success": {"const": True}, "message": STR, "order": obj({
        "id": OID, "orderNumber": STR, "status": ORDER_STATUS, "requiresCommitment": BOOL,
        "commitmentConfirmedAt": NTIME, "commitmentDeadline": NTIME, "totalAmount": MONEY,
        "paymentStatus": PAYMENT_STATUS}, closed=True),
        "data": obj({"order": ref("Order")}, closed=True)}, closed=True),
    "PartnerOrder": obj({
        "requestId": STR, "orderId": OID, "status": {"enum": ["STARTED", "COMPLETED", "FAILED", "EXPIRED"]},
        "paidAt": NSTR, "metadata": obj({"paymentId": NSTR, "txHash": {"type": "null"}, "note": NSTR})}),
    "PartnerError": obj({"error": STR}, closed=True),
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, **_json(ref("Error"))}


AUTH = [{"bearer": []}]
ID = lambda name: {"name": name, "in": "path", "required": True, "schema": STR}  # noqa: E731
COMMON = {"400": _error("Bad input"), "401": _error("No, invalid or expired token"),
          "403": _error("Not allowed"), "413": _error("Body over 64 KiB")}


def op(summary: str, responses: dict[str, Any], *, auth: bool = True, body: type[BaseModel] | None = None,
       params: list[dict[str, Any]] | None = None, tag: str = "orders") -> dict[str, Any]:
    """One operation; `body` is the request model that parses its body (server/http/requests.py)."""
    operation: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if auth:
        operation["security"] = AUTH
    if body is not None:
        operation["requestBody"] = {"required": True, **_json(ref(body.__name__))}
    if params:
        operation["parameters"] = params
    return operation


def ok(schema: dict[str, Any], description: str = "OK", message: bool = False) -> dict[str, Any]:
    return {"description": description, **_json(envelope(schema, message))}


ORDER_NOT_FOUND = {"404": _error("Order not found")}
CONFLICT = {"409": _error("Conflict: the order changed, or the request does not fit its state")}
STREAMS_PER_ACCOUNT = {"429": _error("The account's open sockets and streams, or its subscribes, are at their "
                                     "budget (REALTIME.md); Retry-After: 1")}
PARTNER_ERRORS = {code: {"description": text, **_json(ref("PartnerError"))} for code, text in {
    "400": "Bad input", "401": "Bearer token missing, expired or invalid", "403": "Not this user's order",
    "404": "Order not found", "498": "Unknown or revoked X-Client-ID", "499": "X-Client-ID absent",
    "500": "Unexpected error"}.items()}
BUSY_HASHING = "Too many password checks in progress; see Retry-After"
CLIENT_ID = {"name": "X-Client-ID", "in": "header", "required": True,
             "schema": {"type": "string", "minLength": 1, "maxLength": 100}}
STREAM_AUTH = [{"name": "ticket", "in": "query", "schema": STR,
                "description": "single-use, from POST /api/auth/stream-ticket (for EventSource)"},
               {"name": "token", "in": "query", "schema": STR, "description": "deprecated: use a ticket"}]


# The pickup board and the store's day in numbers (issue 27).
DISPLAY_KEY = {"name": "X-Display-Key", "in": "header", "schema": {"type": "string", "maxLength": 200},
               "description": "the secret of a display link (the `key` in its URL's fragment); without it, "
                              "the store's staff or an admin with their bearer token"}
DISPLAY = obj({"id": OID, "storeId": OID, "label": NSTR, "createdAt": TIME, "createdByName": STR})
BOARD = obj({"storeName": STR, "preparing": {"type": "array", "items": STR}, "ready": {"type": "array", "items": STR},
             "announce": BOOL}, closed=True)
BOARD_EVENT = {"type": "object", "required": ["data"], "description": "REALTIME.md, \"The pickup board\"",
               "properties": {"event": {"enum": ["board", "alive", "revoked"]},
                              "data": {"type": "string", "description": "a JSON object: `board` the Board shape, "
                                                                        "`alive` `{heartbeatSeconds}`"}}}
MINUTES = {"type": ["number", "null"], "minimum": 0}
PREP = {"count": INT, "averageMinutes": MINUTES, "p90Minutes": MINUTES}
REPORT = obj({
    "storeId": OID, "storeName": STR, "date": {"type": "string", "format": "date"}, "timezone": STR, "orders": INT,
    "byStatus": {"type": "object", "additionalProperties": INT}, "revenue": MONEY, "prepTime": obj(PREP),
    "hours": {"type": "array", "items": obj({"hour": bounded(0, 23), **PREP})},
    "late": obj({"count": INT, "of": INT, "graceMinutes": {"type": "number"}}), "noShows": INT,
    "cancellations": obj({"total": INT, "byReason": {"type": "object", "additionalProperties": INT}}),
    "topItems": {"type": "array", "items": obj({"name": STR, "quantity": INT, "revenue": MONEY})}, "capHit": INT})


def _board_and_report_paths() -> dict[str, Any]:
    store = [ID("store_id")]
    missing = {"404": _error("Store not found")}
    return {
        "/api/stores/{store_id}/displays": {
            "post": op("Make a display link for the store's pickup board (that store's staff, admins): its `url` "
                       "carries the secret and is shown only in this answer", {
                           "201": ok({**DISPLAY, "properties": {**DISPLAY["properties"], "url": STR},
                                      "required": [*DISPLAY["required"], "url"]}, "Created"), **COMMON, **missing},
                       tag="stores", params=store, body=requests.DisplayRequest),
            "get": op("The store's display links, without their secrets (that store's staff, admins)", {
                "200": ok({"type": "array", "items": DISPLAY}), **COMMON, **missing}, tag="stores", params=store)},
        "/api/stores/{store_id}/displays/{display_id}": {"delete": op(
            "Revoke a display link: its boards stop at their next heartbeat (that store's staff, admins)", {
                "200": ok(obj({"id": STR, "revoked": {"const": True}})), **COMMON,
                "404": _error("Store or display link not found")}, tag="stores", params=[*store, ID("display_id")])},
        "/api/stores/{store_id}/board": {
            "get": op("What the store's pickup board shows: short order numbers only (a display link's "
                      "`X-Display-Key`, or that store's staff and admins)", {
                          "200": ok(BOARD), **COMMON, **missing}, tag="realtime", params=[*store, DISPLAY_KEY]),
            "patch": op("The pickup board's settings: `announce` reads new ready numbers aloud (that store's "
                        "staff, admins)", {"200": ok(obj({"announce": BOOL}, closed=True)), **COMMON, **missing},
                        tag="stores", params=store, body=requests.BoardSettingsRequest)},
        "/api/stores/{store_id}/board/events": {"get": op(
            "Server-Sent Events of the store's pickup board: `board` now and on every change, `alive` at least "
            "every BOARD_HEARTBEAT_SECONDS, `revoked` when the link stops working", {
                "200": {"description": "text/event-stream",
                        "content": {"text/event-stream": {"schema": BOARD_EVENT}}}, **COMMON, **missing,
                "429": _error("The display link already has 4 boards open in this process; see Retry-After")},
            tag="realtime", params=[*store, DISPLAY_KEY])},
        "/api/stores/{store_id}/report": {"get": op(
            "The store's day in numbers (that store's staff, admins): README, \"The store's day in numbers\"", {
                "200": {"description": "The report (JSON), its CSV or its chart (SVG)", "content": {
                    "application/json": {"schema": envelope(REPORT)},
                    "text/csv": {"schema": STR}, "image/svg+xml": {"schema": STR}}},
                **COMMON, **missing}, tag="stores", params=[*store, {
                    "name": "date", "in": "query", "schema": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
                    "description": "a day in the server's TIMEZONE; today when absent"}, {
                    "name": "format", "in": "query", "schema": {"enum": ["json", "csv", "svg"]}}])},
    }


@cache
def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/api/auth/register": {"post": op("Register a student, a faculty member, or a store employee who acts for "
                                          "no store until an admin assigns one", {
            "201": ok(ref("Session"), "Registered"), **COMMON, "409": _error("Email taken"),
            "503": _error(BUSY_HASHING)}, auth=False, tag="auth",
            body=requests.RegisterRequest)},
        "/api/auth/login": {"post": op("Sign in", {"200": ok(ref("Session")), **COMMON,
                                                   "429": _error("Too many failed sign-ins; see Retry-After"),
                                                   "503": _error(BUSY_HASHING)},
                                       auth=False, tag="auth", body=requests.LoginRequest)},
        "/api/auth/refresh": {"post": op("Rotate a refresh token", {"200": ok(ref("Session")), **COMMON},
                                         auth=False, tag="auth", body=requests.RefreshRequest)},
        "/api/auth/logout": {"post": op("Revoke a refresh token's family", {"200": ok({"type": "null"}, message=True),
                                                                            **COMMON}, auth=False, tag="auth",
                                        body=requests.RefreshRequest)},
        "/api/auth/forgot-password": {"post": op(
            "Mail a password reset link (the same answer whether or not the email has an account)", {
                "200": ok({"type": "null"}, message=True), **COMMON,
                "429": _error("Too many mails asked for from this address; see Retry-After")},
            auth=False, tag="auth", body=requests.ForgotPasswordRequest)},
        "/api/auth/reset-password/{token}": {"post": op(
            "Set a new password with a mailed link (once, within ACCOUNT_LINK_MINUTES); every session ends", {
                "200": ok({"type": "null"}, message=True), **COMMON, "503": _error(BUSY_HASHING)},
            auth=False, tag="auth", body=requests.ResetPasswordRequest, params=[ID("token")])},
        "/api/auth/verify-email/{token}": {"post": op("Verify the account's email with a mailed link", {
            "200": ok({"type": "null"}, message=True), "400": _error("Invalid, used or expired link")},
            auth=False, tag="auth", params=[ID("token")])},
        "/api/auth/resend-verification": {"post": op("Mail the caller a new verification link", {
            "200": ok({"type": "null"}, message=True), **COMMON}, tag="auth")},
        "/api/users/me": {"get": op("The caller's profile and trust tier", {"200": ok(ref("Profile")), **COMMON},
                                    tag="auth")},
        "/api/users/profile": {"get": op("`/api/users/me` under CampusBite's name", {"200": ok(ref("Profile")),
                                                                                    **COMMON}, tag="campusbite"),
                               "put": op("Change the caller's name, phone number or (students) register number; "
                                         "a change of email or role is a 400", {
                                   "200": ok(ref("Profile"), message=True), **COMMON}, tag="campusbite",
                                         body=requests.ProfileUpdateRequest)},
        "/api/auth/refresh-token": {"post": op("`/api/auth/refresh` under CampusBite's name", {
            "200": ok(ref("Session")), **COMMON}, auth=False, tag="campusbite", body=requests.RefreshRequest)},
        "/api/notifications/subscribe": {"get": op(
            "CampusBite's notification stream: unnamed events, `{type: connected}` first, then one "
            "`{type: order_update, title, message, data: {orderId, orderNumber, status, paymentStatus, version}}` "
            "per change of the caller's orders (staff: their store's)", {"200": NOTIFICATION_STREAM, **COMMON},
            tag="campusbite", params=STREAM_AUTH)},
        "/api/push/public-key": {"get": op("The VAPID public key for `pushManager.subscribe` (Web Push)", {
            "200": ok(obj({"publicKey": {"type": "string", "description": "base64url, uncompressed P-256"}}))},
            auth=False, tag="push")},
        "/api/push/subscriptions": {
            "post": op("Notify this device of the caller's order moments (accepted, ready, pickup reminder, "
                       "cancelled); the body is `PushSubscription.toJSON()`, its `keys.p256dh` a point on P-256. "
                       "An account keeps at most `PUSH_MAX_SUBSCRIPTIONS_PER_ACCOUNT` (10) devices: a new one "
                       "past it replaces the least recently registered", {
                "201": ok(obj({"id": OID}), "Subscribed", message=True), **COMMON}, tag="push",
                body=requests.PushSubscribeRequest),
            "delete": op("Stop notifying this device", {
                "200": ok({"type": "null"}, message=True), **COMMON, "404": _error("Not the caller's subscription")},
                tag="push", body=requests.PushUnsubscribeRequest)},
        "/api/auth/stream-ticket": {"post": op("A 30-second, single-use `?ticket=` for one event stream", {
            "201": ok(obj({"ticket": STR, "expiresInSeconds": INT}), "Issued"), **COMMON}, tag="auth")},
        "/api/admin/users/{user_id}": {"patch": op("Disable or re-enable an account (admins)", {
            "200": ok(ref("AdminUser")), **COMMON, "404": _error("User not found"),
            "409": _error("The last active admin")}, tag="admin",
            params=[ID("user_id")], body=requests.AdminUserPatch)},
        "/api/admin/users/{user_id}/role": {"put": op("Make a member of staff an admin or a store employee (admins)", {
            "200": ok(ref("AdminUser")), **COMMON, "404": _error("User or store not found"),
            "409": _error("The last active admin")}, tag="admin",
            params=[ID("user_id")], body=requests.AdminRoleRequest)},
        "/api/admin/users": {"get": op("Accounts, newest first (admins)", {"200": ok(ref("UserPage")), **COMMON},
                                       tag="admin", params=[
                                           {"name": "role", "in": "query", "schema": {"enum": ["", *(role.value for role in Role)]}},
                                           {"name": "search", "in": "query", "schema": {"type": "string",
                                                                                       "maxLength": 100},
                                            "description": "part of a name or email"},
                                           {"name": "awaitingStore", "in": "query", "schema": {"enum": ["true", "false"]},
                                            "description": "true: only store employees who signed up and wait for "
                                                           "an admin to assign a store"},
                                           PAGE, LIMIT]),
                             "post": op("Create store staff or an admin (admins)", {
            "201": ok(ref("User"), "Created"), **COMMON, "404": _error("Store not found"),
            "409": _error("Email taken")}, tag="admin",
            body=requests.AdminUserRequest)},
        "/api/admin/stores": {"get": op("Every store, closed ones too (admins)", {
            "200": ok({"type": "array", "items": ref("Store")}), **COMMON}, tag="admin")},
        "/api/admin/customers": {"get": op("Students and faculty with their trust standing (admins)", {
            "200": ok(ref("CustomerPage")), **COMMON}, tag="admin", params=[
                {"name": "search", "in": "query", "schema": {"type": "string", "maxLength": 100},
                 "description": "part of a name or email"}, PAGE, LIMIT])},
        "/api/admin/customers/{user_id}/no-shows": {"get": op(
            "A customer's standing and recorded no-shows, cleared ones too (admins)", {
                "200": ok(obj({"customer": ref("Customer"), "noShows": {"type": "array", "items": ref("NoShow")}})),
                **COMMON, "404": _error("Customer not found")}, tag="admin", params=[ID("user_id")])},
        "/api/admin/orders/{order_id}/clear-no-show": {"post": op(
            "Clear a wrongly recorded no-show, with the reason; trust is recomputed (admins)", {
                "200": ok(obj({"noShow": ref("NoShow"), "customer": ref("Customer")}), message=True), **COMMON,
                **ORDER_NOT_FOUND, "409": _error("No no-show recorded on this order")}, tag="admin",
            params=[ID("order_id")], body=requests.ClearNoShowRequest)},
        "/api/admin/clients": {
            "get": op("Partner clients of /v1 (admins)", {"200": ok({"type": "array", "items": ref("PartnerClient")}),
                                                          **COMMON}, tag="admin"),
            "post": op("Register a partner client; its id is its X-Client-ID (admins)", {
                "201": ok(ref("PartnerClient"), "Created"), **COMMON}, tag="admin", body=requests.AdminClientRequest)},
        "/api/admin/webhooks": {
            "get": op("Partner webhook endpoints, newest first (admins)", {
                "200": ok({"type": "array", "items": ref("WebhookEndpoint")}), **COMMON}, tag="admin",
                params=[{"name": "clientId", "in": "query", "schema": {"type": "string", "maxLength": MAX_CLIENT_ID_LENGTH}}]),
            "post": op("Register a webhook endpoint for a partner client; the answer holds its signing secret, "
                       "shown once (admins)", {"201": ok(ref("WebhookEndpoint"), "Created"), **COMMON},
                       tag="admin", body=requests.WebhookEndpointRequest)},
        "/api/admin/webhooks/{endpoint_id}": {"delete": op("Remove a webhook endpoint and its delivery log (admins)", {
            "200": ok({"type": "null"}, message=True), **COMMON, "404": _error("Endpoint not found")},
            tag="admin", params=[ID("endpoint_id")])},
        "/api/admin/webhooks/{endpoint_id}/rotate": {"post": op(
            "A new signing secret, shown once; the old one signs too for WEBHOOK_ROTATION_GRACE_HOURS (admins)", {
                "200": ok(ref("WebhookEndpoint"), message=True), **COMMON, "404": _error("Endpoint not found")},
            tag="admin", params=[ID("endpoint_id")])},
        "/api/admin/webhooks/{endpoint_id}/enable": {"post": op(
            "Enable a disabled webhook endpoint: its pending deliveries go out (admins)", {
                "200": ok(ref("WebhookEndpoint"), message=True), **COMMON, "404": _error("Endpoint not found")},
            tag="admin", params=[ID("endpoint_id")])},
        "/api/admin/webhooks/{endpoint_id}/deliveries": {"get": op(
            "An endpoint's delivery log, newest first (admins)", {
                "200": ok({"type": "array", "items": ref("WebhookDelivery")}), **COMMON,
                "404": _error("Endpoint not found")}, tag="admin", params=[
                    ID("endpoint_id"), {"name": "orderId", "in": "query", "schema": {"type": "string", "maxLength": 24}},
                    {"name": "limit", "in": "query", "schema": bounded(1, 500)}])},
        "/api/admin/webhooks/{endpoint_id}/replay": {"post": op(
            "Send finished deliveries again under their webhook-id: by event, by order or by time range (admins)", {
                "200": ok(obj({"replayed": INT}), message=True), **COMMON, "404": _error("Endpoint not found")},
            tag="admin", params=[ID("endpoint_id")], body=requests.WebhookReplayRequest)},
        "/api/admin/clients/{client_id}/revoke": {"post": op("Revoke a partner client id (admins)", {
            "200": ok(ref("PartnerClient"), message=True), **COMMON, "404": _error("Partner client not found")},
            tag="admin", params=[ID("client_id")])},
        "/api/stores": {
            "get": op("Active stores; for store staff `{stores}` with `owner_id`/`owner_name` on their own (CampusBite)",
                      {"200": ok({"oneOf": [{"type": "array", "items": ref("Store")},
                                            obj({"stores": {"type": "array", "items": ref("Store")}}, closed=True)],
                                  "description": "staff: each store also under CampusBite's names "
                                                 f"({', '.join(campusbite.STORE_FIELD_ALIASES)})"})},
                      auth=False, tag="stores"),
            "post": op("Create a store (admins)", {"201": ok(ref("Store"), "Created"), **COMMON}, tag="stores",
                       body=requests.CreateStoreRequest),
        },
        "/api/stores/{store_id}/pace": {"patch": op(
            "The kitchen's pace (that store's staff, or admins): `delayMinutes` is added to every ready-time "
            "estimate; while `paused`, checkout refuses new orders; `itemsPerSlot` caps the items taken per "
            "15-minute slot (null: no cap): a full slot sends checkouts to the next with room, and an order "
            "gives its items back once ready or cancelled", {
                "200": ok(ref("Store")), **COMMON, "404": _error("Store not found")}, tag="stores",
            params=[ID("store_id")], body=requests.StorePaceRequest)},
        "/api/stores/{store_id}": {"get": op("One store", {"200": ok(ref("Store")), "404": _error("Store not found")},
                                             auth=False, tag="stores", params=[ID("store_id")]),
                                   "patch": op("Edit, open or close a store (that store's staff, admins)", {
                                       "200": ok(ref("Store")), **COMMON, "404": _error("Store not found")},
                                       tag="stores", params=[ID("store_id")], body=requests.StoreUpdateRequest),
                                   "put": op("CampusBite's settings page: name, description, UPI id (JSON, or "
                                             "FormData in its snake_case names; images and opening hours are "
                                             "dropped)", {
                                       "200": ok(obj({"store": ref("Store")}), message=True), **COMMON,
                                       "404": _error("Store not found")}, tag="campusbite",
                                       params=[ID("store_id")], body=requests.StoreSettingsRequest)},
        "/api/stores/{store_id}/menu": {
            "get": op("A store's available menu (`?all=true` includes unavailable items); signed in as a "
                      "student, faculty member or store employee, CampusBite's `{menuItems}` of every item, "
                      "each with its `is_available`",
                      {"200": ok({"oneOf": [{"type": "array", "items": ref("MenuItem")},
                                            obj({"menuItems": {"type": "array", "items": ref("MenuItem")}},
                                                closed=True)],
                                  "description": "each item also under CampusBite's names "
                                                 f"({', '.join(campusbite.MENU_ITEM_ALIASES)})"}),
                       "404": _error("Store not found")},
                      auth=False, tag="stores", params=[ID("store_id")]),
            "post": op("Add a menu item (that store's staff, admins)", {
                "201": ok(ref("MenuItem"), "Created"), **COMMON, "404": _error("Store not found")}, tag="stores",
                params=[ID("store_id")], body=requests.MenuItemRequest),
        },
        "/api/menu/{item_id}": {"patch": op("Change a menu item", {"200": ok(ref("MenuItem")), **COMMON,
                                                                   "404": _error("Menu item not found")},
                                            tag="stores", params=[ID("item_id")],
                                            body=requests.MenuItemPatch),
                                "put": op("CampusBite's console: change a menu item (JSON, or FormData in its "
                                          "snake_case names; an image is dropped)", {
                                    "200": ok(obj({"menuItem": ref("MenuItem")}), message=True), **COMMON,
                                    "404": _error("Menu item not found")}, tag="campusbite", params=[ID("item_id")],
                                    body=requests.MenuItemPatch),
                                "delete": op("CampusBite's console: remove a menu item (orders keep their copy)", {
                                    "200": ok({"type": "null"}, message=True), **COMMON,
                                    "404": _error("Menu item not found")}, tag="campusbite", params=[ID("item_id")])},
        "/api/menu/{item_id}/availability": {"patch": op(
            "CampusBite's console: sold out becomes available and back", {
                "200": ok(obj({"menuItem": ref("MenuItem")}), message=True), **COMMON,
                "404": _error("Menu item not found")}, tag="campusbite", params=[ID("item_id")])},
        "/api/menu": {"post": op(
            "CampusBite's console: add an item to the caller's store (JSON, or FormData in its snake_case "
            "names; an image is dropped; an admin names `store_id`)", {
                "201": ok(obj({"menuItem": ref("MenuItem")}), "Created", message=True), **COMMON,
                "404": _error("Store not found")}, tag="campusbite", body=requests.MenuItemRequest)},
        "/api/orders/checkout-session": {"post": op("Price a cart and issue a checkout token (customers)", {
            "200": ok(ref("CheckoutSession")), **COMMON}, body=requests.CheckoutSessionRequest)},
        "/api/orders": {
            "post": op("Create the order of a checkout session (seed 001)", {
                "201": ok(ref("CreatedOrder"), "Created", message=True),
                "200": ok(ref("CreatedOrder"), "This checkout's existing order", message=True),
                **COMMON, "409": _error("Transaction id taken, or the cart changed")},
                body=requests.CreateOrderRequest),
            "get": op("The caller's orders (staff: their store's), newest first", {
                "200": {"description": "OK", **_json(ref("OrderPage"))}, **COMMON},
                      params=[{"name": "status", "in": "query", "schema": STATUS_LIST, "description": "comma-separated"},
                              PAGE, LIMIT,
                              {"name": "storeId", "in": "query", "schema": {"type": "string",
                                                                            "pattern": "^[0-9a-fA-F]{24}$"},
                               "description": "admins"}]),
        },
        "/api/orders/recall": {"get": op(
            "The kitchen's recall (store staff): the last 20 orders of the caller's store that left its board "
            "(ready, picked up, cancelled), most recently changed first", {
                "200": ok({"type": "array", "items": ref("Order")}), **COMMON})},
        "/api/orders/{order_id}/items/{index}/mark": {"put": op(
            "Strike an item as done on the kitchen display, or take the mark back (that store's staff); "
            "published as an order change", {
                "200": ok(ref("Order"), message=True), **COMMON, **ORDER_NOT_FOUND, **CONFLICT},
            params=[ID("order_id"), {"name": "index", "in": "path", "required": True,
                                     "schema": {"type": "string", "pattern": "^[0-9]{1,3}$"},
                                     "description": "the item's index in `items`"}],
            body=requests.ItemMarkRequest)},
        "/api/orders/{order_id}/undo-ready": {"post": op(
            "Put an order marked ready by mistake back to preparing (that store's staff), within "
            "`READY_UNDO_SECONDS` of its ready; recorded in `readyUndos`, and the customer is told", {
                "200": ok(ref("Order"), message=True), **COMMON, **ORDER_NOT_FOUND,
                "409": _error("Not ready, or the undo window is over")}, params=[ID("order_id")])},
        "/api/orders/{order_id}": {"get": op("One order; the owner sees `pickupOtp` while ready", {
            "200": ok(ref("Order")), **COMMON, **ORDER_NOT_FOUND}, params=[ID("order_id")])},
        "/api/orders/{order_id}/poll-status": {"get": op("Lean status for polling (seed 000)", {
            "200": {"description": "OK", "headers": {"ETag": {"schema": STR}}, **_json(envelope(ref("PollStatus")))},
            "304": {"description": "Unchanged since If-None-Match"},
            **COMMON, **ORDER_NOT_FOUND, "429": _error("Polled too often; see Retry-After")},
            params=[ID("order_id"), {"name": "wait", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                                               "maximum": 30}},
                    {"name": "If-None-Match", "in": "header", "schema": STR}])},
        "/api/orders/{order_id}/payment-status": {"patch": op("Verify or fail payment (that store's staff)", {
            "200": ok(ref("Order"), message=True), **COMMON, **ORDER_NOT_FOUND, **CONFLICT},
            params=[ID("order_id")], body=requests.PaymentStatusRequest)},
        "/api/orders/{order_id}/status": {"patch": op("Move an order along its lifecycle (that store's staff)", {
            "200": ok(ref("Order"), message=True), **COMMON, **ORDER_NOT_FOUND, **CONFLICT},
            params=[ID("order_id")], body=requests.StatusRequest)},
        "/api/orders/{order_id}/verify-otp": {"post": op("Complete pickup with the customer's code, or by hand "
                                                         "(`manualConfirm: true`, recorded as `pickupMethod: manual`)", {
            "200": ok(ref("Order"), message=True), **COMMON, **ORDER_NOT_FOUND, **CONFLICT,
            "429": _error("Too many wrong codes")}, params=[ID("order_id")],
            body=requests.VerifyOtpRequest)},
        "/api/orders/{order_id}/cancel": {"post": op("Cancel an unpaid placed order (owner)", {
            "200": ok(ref("Order"), message=True), **COMMON, **ORDER_NOT_FOUND, **CONFLICT}, params=[ID("order_id")])},
        "/api/orders/{order_id}/confirm-commitment": {"post": op("Confirm pickup commitment (seed 003)", {
            "200": {"description": "Confirmed", **_json(ref("Commitment"))}, **COMMON, **ORDER_NOT_FOUND},
            params=[ID("order_id")])},
        "/api/orders/{order_id}/events": {"get": op("Server-Sent Events of one order", {
            "200": SSE_STREAM, **COMMON, **ORDER_NOT_FOUND, **STREAMS_PER_ACCOUNT}, tag="realtime",
            params=[ID("order_id"), *STREAM_AUTH])},
        "/api/stores/{store_id}/events": {"get": op("Server-Sent Events of a store's orders (its staff)", {
            "200": SSE_STREAM, **COMMON, "404": _error("Store not found"), **STREAMS_PER_ACCOUNT}, tag="realtime",
            params=[ID("store_id"), *STREAM_AUTH])},
        "/api/payments/upi-qr": {"get": op(
            "A `upi://pay` link (the checkout session's `payment.upiLink`) as a QR code, for paying from a "
            "second device (public; SVG)", {
                "200": {"description": "The QR code", "content": {"image/svg+xml": {"schema": STR}}},
                "400": _error("link is not a upi://pay link of at most 512 characters")},
            auth=False, tag="orders", params=[{"name": "link", "in": "query", "required": True, "schema": {
                "type": "string", "pattern": "^upi://pay\\?[ -~]*$", "maxLength": 512}}])},
        "/api/stores/{store_id}/menu/events": {"get": op(
            "Server-Sent Events of a store's menu (public): a `menu` event with the store and its whole "
            "menu now and after every change, its id the catalog revision", {
                "200": MENU_STREAM, "404": _error("Store not found")}, auth=False, tag="realtime",
            params=[ID("store_id")])},
        "/v1/order": {"post": op("Partner: create an order from a checkout token", {
            "201": {"description": "Created", **_json(ref("PartnerOrder"))},
            "200": {"description": "This checkout's existing order", **_json(ref("PartnerOrder"))},
            **PARTNER_ERRORS}, tag="partner", params=[CLIENT_ID], body=requests.CreateOrderRequest)},
        "/v1/order/{order_id}": {"get": op("Partner: payment status of an order (seed 004)", {
            "200": {"description": "OK", **_json(ref("PartnerOrder"))}, **PARTNER_ERRORS}, tag="partner",
            params=[ID("order_id"), CLIENT_ID, {"name": "wait", "in": "query",
                                                "schema": {"type": "integer", "minimum": 1, "maximum": 30}}])},
        **_board_and_report_paths(),
        "/healthz": {"get": op("Process alive", {"200": {"description": "OK", **_json(obj({"status": STR}))}},
                               auth=False, tag="operations")},
        "/readyz": {"get": op("MongoDB answers and stores a write, and the broker answers", {
            "200": {"description": "Ready", **_json(obj({"status": STR, "database": BOOL, "storage": BOOL,
                                                          "broker": BOOL}))},
            "503": {"description": "Not ready", **_json(obj({"status": STR, "database": BOOL, "storage": BOOL,
                                                              "broker": BOOL}, {"reason": STR}))}},
            auth=False, tag="operations")},
        "/metrics": {"get": op("Prometheus metrics", {"200": {"description": "text/plain exposition",
                                                              "content": {"text/plain": {"schema": STR}}}},
                               auth=False, tag="operations")},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "OrderPulse", "version": "0.1.0",
                 "description": "Real-time order tracking for campus food outlets. WebSocket: `GET /ws` (see README).",
                 "x-logo": {"url": "/static/img/logo.svg", "altText": "OrderPulse"}},
        "paths": paths,
        "components": {"schemas": _components(),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }


def _components() -> dict[str, Any]:
    generated = model_schemas([*_request_models(), *_shape_models()])
    clash = set(generated) & set(SCHEMAS)
    if clash:
        raise ValueError(f"schemas named twice: {sorted(clash)}")
    return {**SCHEMAS, **generated}
