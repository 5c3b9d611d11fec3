"""The OpenAPI 3.1 document, written from the route table (server/http/route_table.py): each
route declares its `Operation` (server/http/contract.py), so no path is listed here. A test
validates real responses against the document.

Request bodies are the JSON Schemas of their parsing models (server/http/requests.py); answers
are described by the shapes of server/views.py that build them (`PollStatus` is `LEAN_SHAPE`),
with the names server/http/campusbite.py adds, and the others in `SCHEMAS` here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from functools import cache
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints
from pydantic.json_schema import GenerateJsonSchema
from starlette.requests import Request
from starlette.routing import BaseRoute, Mount, Route

from server.domain.trust import TrustTier
from server.http import body_rules, campusbite, requests
from server.http.contract import BOOL, INT, MONEY, NSTR, NTIME, OID, STR, TIME, ApiRoute, array, obj, ref
from server.http.responses import JSONResponse
from server.http.route_table import API_ROUTES
from server.views import (
    COMMITMENT_SHAPE, DELIVERY_SHAPE, DETAIL_SHAPE, EVENT_SHAPE, LEAN_SHAPE, MENU_ITEM_SHAPE, ORDER_STORE_SHAPE,
    DELIVERY_COUNTS_SHAPE, STORE_SHAPE, SUMMARY_SHAPE, USER_DETAILS_SHAPE, USER_SHAPE, WEBHOOK_ENDPOINT_SHAPE,
    StoreCapacity, field_types, shape_model,
)

REF_TEMPLATE = "#/components/schemas/{model}"


class _DocumentSchema(GenerateJsonSchema):
    """pydantic's JSON Schema without a generated title on every property, nor the default of an
    answer's optional field (absent is what it means)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def default_schema(self, schema: Any) -> Any:
        return self.generate_inner(schema["schema"])


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
    """The shapes of server/views.py, with the CampusBite names server/http/campusbite.py adds."""
    pickup_code = Annotated[str, StringConstraints(pattern="^[0-9]{6}$")]
    order_extras = {
        "pickupOtp": pickup_code, **{alias: pickup_code for alias in campusbite.OTP_ALIASES},
        "estimatedReadyAt": Annotated[datetime | None, Field(
            description="GET /api/orders/{id}: when an active order not yet ready should be ready, from the "
                        "store's live queue; null otherwise")],
    }
    store_extras = {
        "waitMinutes": Annotated[int, Field(
            ge=1, description="about how long an order placed now would take (GET one store)")],
        "capacity": Annotated[StoreCapacity | None, Field(
            description="a capped store's slots now (GET one store, its pace, the menu events); `nextFreeSlot` "
                        "null: full")],
        "typicalPrepMinutes": Annotated[float, Field(
            ge=0, description="the store's typical accepted → ready time, learned from its recent orders (GET one "
                              "store)")],
        **campusbite.named_types(field_types(STORE_SHAPE), campusbite.STORE_FIELD_ALIASES),
        "owner_id": Annotated[str | None, Field(description="CampusBite's owner: the caller on their own store, "
                                                            "else null")],
        "owner_name": Annotated[str, Field(description="the caller, on their own store")],
    }
    # What signing in, refreshing and `/api/users/me` add to a user (server/http/auth_routes.py).
    profile_types = {
        "isEmailVerified": Annotated[bool, Field(description="the owner followed the link mailed to the address")],
        "awaitingStore": Annotated[bool, Field(description="a store employee no admin has assigned a store yet: "
                                                           "acts for no store")],
    }
    standing_types = {"trustTier": TrustTier | None, "noShowCount": int, "orderingRestrictedUntil": datetime | None}
    signing_secret = Annotated[str, StringConstraints(pattern="^whsec_"), Field(description="shown once")]
    user_types = {**field_types(USER_SHAPE), **field_types(USER_DETAILS_SHAPE), **profile_types, **standing_types}
    return [
        shape_model("PollStatus", LEAN_SHAPE, "Seed 000's poll-status body: these 13 fields, in this order."),
        shape_model("OrderEvent", EVENT_SHAPE, "The `order` of a real-time event (REALTIME.md): the poll-status "
                                               "fields, the store and the order's version."),
        shape_model("OrderSummary", SUMMARY_SHAPE, "Seed 001's order, key for key."),
        shape_model("CreatedOrder", SUMMARY_SHAPE, "Seed 001's order, then `id` again as `_id`, where "
                                                   "CampusBite's mobile checkout reads it.",
                    also=campusbite.named_types(field_types(SUMMARY_SHAPE), campusbite.CREATED_ORDER_ALIASES)),
        shape_model("Order", DETAIL_SHAPE, "An order with its lifecycle, each field also under CampusBite's names; "
                                           "the owner sees `pickupOtp` (and CampusBite's names of it) while it is "
                                           "ready, its store's staff `pickup_otp`.",
                    also={**campusbite.named_types(field_types(DETAIL_SHAPE), campusbite.ORDER_ALIASES),
                          **campusbite.named_types(field_types(ORDER_STORE_SHAPE), campusbite.STORE_ALIASES)},
                    optional=order_extras),
        shape_model("CommitmentOrder", COMMITMENT_SHAPE, "Seed 003's `order`."),
        shape_model("MenuItem", MENU_ITEM_SHAPE, "A menu item; in menus, also under CampusBite's names.",
                    optional=campusbite.named_types(field_types(MENU_ITEM_SHAPE), campusbite.MENU_ITEM_ALIASES)),
        shape_model("Store", STORE_SHAPE, "A store; also under CampusBite's names where its clients read stores.",
                    optional=store_extras, closed=False),
        shape_model("WebhookDelivery", DELIVERY_SHAPE, "One line of an endpoint's delivery log."),
        shape_model("User", USER_SHAPE, "An account; its details when it has them, and where its clients read "
                                        "users, CampusBite's names.",
                    optional={**field_types(USER_DETAILS_SHAPE), **profile_types,
                              **campusbite.named_types(user_types, campusbite.USER_ALIASES)}, closed=False),
        shape_model("WebhookEndpoint", WEBHOOK_ENDPOINT_SHAPE, "A partner's webhook endpoint, with its deliveries "
                                                                "by state; its signing secret only once.",
                    also=field_types(DELIVERY_COUNTS_SHAPE), optional={"secret": signing_secret}, closed=False),
    ]


# The answers no shape of server/views.py builds yet.
SCHEMAS: dict[str, Any] = {
    "Error": obj({"success": {"const": False}, "message": STR}, {"errors": {"type": "array"}}),
    "Profile": {"allOf": [ref("User"), obj({"trustTier": {"enum": ["good", "watch", "restricted", None]},
                                            "noShowCount": INT, "orderingRestrictedUntil": NTIME})]},
    "Session": obj({"accessToken": STR, "refreshToken": STR, "user": ref("User")}),
    "AdminUser": {"allOf": [ref("User"), obj({"isActive": BOOL}, {
        "requestedStore": {**NSTR, "description": "the store a store employee named when signing up"}})]},
    "UserPage": obj({"users": {"type": "array", "items": ref("AdminUser")}, "page": INT, "limit": INT,
                     "total": INT, "pages": INT}),
    "Customer": {"allOf": [ref("AdminUser"), obj({"trustTier": {"enum": ["good", "watch", "restricted"]},
                                                  "noShowCount": INT, "orderingRestrictedUntil": NTIME})]},
    "CustomerPage": obj({"customers": {"type": "array", "items": ref("Customer")}, "page": INT, "limit": INT,
                         "total": INT, "pages": INT}),
    "NoShow": obj({"orderId": OID, "orderNumber": STR, "storeId": OID, "recordedAt": NTIME, "clearedAt": NTIME,
                   "clearedBy": NSTR, "clearedByName": NSTR, "clearedReason": NSTR}),
    "PartnerClient": obj({"clientId": STR, "name": STR, "isActive": BOOL, "createdAt": TIME, "revokedAt": NTIME}),
    "OrderPage": obj({"success": {"const": True}, "data": {"type": "array", "items": ref("Order")},
                      "pagination": obj({"total": INT, "page": INT, "limit": INT, "totalPages": INT})}),
    "CheckoutSession": obj({
        "checkoutToken": STR, "paymentReference": STR, "expiresInSeconds": INT, "totalAmount": MONEY,
        "items": array(ref("OrderLine")), "specialInstructions": NSTR,
        "store": obj({"id": OID, "name": STR, "location": STR, "upiId": STR}),
        "noShowPolicy": obj({"trustTier": {"enum": ["good", "watch", "restricted"]}, "noShowCount": INT,
                             "requiresCommitment": BOOL, "requiresCommitmentBeforePrep": BOOL,
                             "commitmentWindowMinutes": {"type": "number"},
                             "unpaidTimeoutMinutes": {"type": "number"}, "readyTimeoutMinutes": {"type": "number"}}),
        "payment": obj({"mode": {"const": "direct_store_upi"}, "upiLink": STR}),
    }, {"slot": {"oneOf": [{"type": "null"}, obj({"deferred": BOOL, "readyAround": NTIME})],
                 "description": "a capped store: whether this order goes to a later 15-minute slot, and when "
                                "it would then be ready"}}),
    "Commitment": obj({"success": {"const": True}, "message": STR, "order": ref("CommitmentOrder"),
                       "data": obj({"order": ref("Order")}, closed=True)}, closed=True),
    "PartnerOrder": obj({
        "requestId": STR, "orderId": OID, "status": {"enum": ["STARTED", "COMPLETED", "FAILED", "EXPIRED"]},
        "paidAt": NSTR, "metadata": obj({"paymentId": NSTR, "txHash": {"type": "null"}, "note": NSTR})}),
    "PartnerError": obj({"error": STR}, closed=True),
}


def operations(routes: Sequence[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Each documented route's path, method and operation, walking mounts as Starlette's
    `SchemaGenerator.get_endpoints` does; a route without an `Operation` is no part of the API."""
    for route in routes:
        if isinstance(route, Mount):
            yield from operations(route.routes, prefix + route.path)
        elif isinstance(route, ApiRoute):
            yield prefix + route.path, route.method.lower(), route.operation.document(list(route.param_convertors))


@cache
def openapi_document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for path, method, operation in operations(API_ROUTES):
        if method in paths.setdefault(path, {}):
            raise ValueError(f"{method.upper()} {path} is declared twice")
        paths[path][method] = operation
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


async def openapi_json(request: Request):
    return JSONResponse(openapi_document())


routes = [Route("/openapi.json", openapi_json, methods=["GET"])]
