"""The OpenAPI 3.1 document, written from the route table (server/http/route_table.py): each
route declares its `Operation` (server/http/contract.py), so no path is listed here. A test
validates real responses against the document.

Request bodies are the JSON Schemas of their parsing models (server/http/requests.py); answers
are described by what builds them: the shapes of server/views.py (`PollStatus` is `LEAN_SHAPE`),
rendered with the names server/http/campusbite.py adds where its clients read them, and the typed
bodies the code returns (`responses.Error`, `views.CheckoutSession`, ...). No answer's schema is
written here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from server.http import body_rules, campusbite, partner_routes, requests, responses
from server.http.contract import OPTIONAL_SECURITY, PRESENTED_TOKEN_REFUSED, ApiRoute
from server.http.responses import JSONResponse
from server.http.route_table import API_ROUTES
from server.http.security import reads_authorization
from server.views import (
    AWAITING_STORE_SHAPE, COMMITMENT_ANSWER_SHAPE, COMMITMENT_SHAPE, DELIVERY_COUNTS_SHAPE, DELIVERY_SHAPE,
    DETAIL_SHAPE, DOCUMENT_SCHEMA, ESTIMATE_SHAPE, EVENT_SHAPE, LEAN_SHAPE, MENU_ITEM_SHAPE, ORDER_PAGE_SHAPE,
    ORDER_STORE_SHAPE, PICKUP_CODE_SHAPE, PROFILE_SHAPE, PROFILE_STANDING_SHAPE, SESSION_SHAPE, SIGNING_SECRET_SHAPE,
    STORE_CAPACITY_TYPES, STORE_LOAD_SHAPE, STORE_SHAPE, SUMMARY_SHAPE, USER_DETAILS_SHAPE, USER_SHAPE,
    WEBHOOK_ENDPOINT_SHAPE, AdminUser, CheckoutSession, Customer, CustomerPage, NoShow, PartnerClient, PartnerOrder,
    UserPage, field_types, shape_model,
)

REF_TEMPLATE = "#/components/schemas/{model}"


class _DocumentSchema(GenerateJsonSchema):
    """pydantic's JSON Schema without a generated title on every property, nor the default of an
    answer's optional field (absent is what it means)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def default_schema(self, schema: Any) -> Any:
        return self.generate_inner(schema["schema"])



def type_schemas(types: Mapping[str, Any]) -> dict[str, Any]:
    """Each type's JSON Schema under its name (a model or a typed dict), and beside them the schemas
    they refer to."""
    schemas: dict[str, Any] = {}
    for name, kind in types.items():
        schema = _referring(TypeAdapter(kind).json_schema(ref_template=REF_TEMPLATE, schema_generator=_DocumentSchema))
        for defined, definition in {**schema.pop("$defs", {}), name: schema}.items():
            if schemas.setdefault(defined, definition) != definition:
                raise ValueError(f"two different schemas are named {defined}")
    return schemas


def _referring(schema: Any) -> Any:
    """`schema` with each field typed `views.document_ref` referring to the schema it names."""
    if isinstance(schema, dict):
        if DOCUMENT_SCHEMA in schema:
            return {"$ref": REF_TEMPLATE.format(model=schema[DOCUMENT_SCHEMA])}
        return {key: _referring(value) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_referring(value) for value in schema]
    return schema


def model_schemas(models: list[type[BaseModel]]) -> dict[str, Any]:
    """Each model's JSON Schema under its name, and beside them the schemas they refer to."""
    return type_schemas({model.__name__: model for model in models})


def _request_models() -> list[type[BaseModel]]:
    return [value for value in vars(requests).values() if isinstance(value, type)
            and issubclass(value, body_rules.RequestModel) and value is not body_rules.RequestModel]


def _named(required: Mapping[str, Any], optional: Mapping[str, Any],
           aliases: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """CampusBite's names of the fields, required where the field they repeat is."""
    return campusbite.named_types(required, aliases), campusbite.named_types(optional, aliases)


def _shape_models() -> list[type[BaseModel]]:
    """The shapes of server/views.py, with the CampusBite names server/http/campusbite.py adds."""
    pickup_code = field_types(PICKUP_CODE_SHAPE)
    order_extras = {**pickup_code, **campusbite.named_types(pickup_code, campusbite.OTP_ALIASES),
                    **field_types(ESTIMATE_SHAPE)}
    store_extras = {
        **field_types(STORE_LOAD_SHAPE), **STORE_CAPACITY_TYPES,
        **campusbite.named_types(field_types(STORE_SHAPE), campusbite.STORE_FIELD_ALIASES),
        **campusbite.STORE_OWNER_TYPES,
    }
    # What signing in, refreshing and `/api/users/me` add to a user (`views.profile_view`).
    profile_required = {**field_types(PROFILE_SHAPE), **field_types(PROFILE_STANDING_SHAPE)}
    profile_optional = {**field_types(USER_DETAILS_SHAPE), **field_types(AWAITING_STORE_SHAPE)}
    named_required, named_optional = _named({**field_types(USER_SHAPE), **profile_required}, profile_optional,
                                            campusbite.USER_ALIASES)
    user_types = {**field_types(USER_SHAPE), **profile_required, **profile_optional}
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
        shape_model("Commitment", COMMITMENT_ANSWER_SHAPE, "Seed 003's answer to a confirmed commitment, and "
                                                           "`data.order` (the full order), where CampusBite's web "
                                                           "client reads it."),
        shape_model("OrderPage", ORDER_PAGE_SHAPE, "`GET /api/orders`, CampusBite's shape: the page as `data`, "
                                                   "its place beside it."),
        shape_model("MenuItem", MENU_ITEM_SHAPE, "A menu item; in menus, also under CampusBite's names.",
                    optional=campusbite.named_types(field_types(MENU_ITEM_SHAPE), campusbite.MENU_ITEM_ALIASES)),
        shape_model("Store", STORE_SHAPE, "A store; also under CampusBite's names where its clients read stores.",
                    optional=store_extras, closed=False),
        shape_model("WebhookDelivery", DELIVERY_SHAPE, "One line of an endpoint's delivery log."),
        shape_model("User", USER_SHAPE, "An account; its details when it has them, and where its clients read "
                                        "users, CampusBite's names.",
                    optional={**field_types(USER_DETAILS_SHAPE), **field_types(PROFILE_SHAPE),
                              **field_types(AWAITING_STORE_SHAPE),
                              **campusbite.named_types(user_types, campusbite.USER_ALIASES)}, closed=False),
        shape_model("Profile", USER_SHAPE, "The signed-in user with their trust standing (none for staff and "
                                           "admins), each field also under CampusBite's names.",
                    also={**profile_required, **named_required},
                    optional={**profile_optional, **named_optional}),
        shape_model("Session", SESSION_SHAPE, "A new session: its tokens and the user's profile."),
        AdminUser, Customer, UserPage, CustomerPage, NoShow, PartnerClient,
        shape_model("WebhookEndpoint", WEBHOOK_ENDPOINT_SHAPE, "A partner's webhook endpoint, with its deliveries "
                                                                "by state; its signing secret only once.",
                    also=field_types(DELIVERY_COUNTS_SHAPE), optional=field_types(SIGNING_SECRET_SHAPE), closed=False),
    ]


def _typed_bodies() -> dict[str, Any]:
    """The typed bodies the code builds, with the CampusBite names their handlers render them with."""
    schemas = type_schemas({"Error": responses.Error, "PartnerError": partner_routes.PartnerError,
                            "PartnerOrder": PartnerOrder, "CheckoutSession": CheckoutSession})
    _name_fields(schemas, "CheckoutSession", campusbite.CHECKOUT_SESSION_NAMES)
    return schemas


def _name_fields(schemas: dict[str, Any], name: str, names: Mapping[str, str]) -> None:
    """The schema `name` as `views.renamed` renders its answers with `names`: each name typed as the
    field it repeats, and required where that field is."""
    for alias, source in names.items():
        path, _, field = source.rpartition(".")
        into, _, alias_name = alias.rpartition(".")
        if into != path:
            raise ValueError(f"{alias} and {source} are in different objects")
        holder = schemas[name]
        for step in filter(None, path.split(".")):
            holder = holder["properties"][step]
            if "$ref" in holder:
                holder = schemas[holder["$ref"].rsplit("/", 1)[1]]
        holder["properties"][alias_name] = {**holder["properties"][field],
                                            "description": f"CampusBite's name of `{field}`"}
        if field in holder.get("required", ()):
            holder["required"].append(alias_name)


def operations(routes: Sequence[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Each documented route's path, method and operation, walking mounts as Starlette's
    `SchemaGenerator.get_endpoints` does; a route without an `Operation` is no part of the API."""
    for route in routes:
        if isinstance(route, Mount):
            yield from operations(route.routes, prefix + route.path)
        elif isinstance(route, ApiRoute):
            path = prefix + route.path
            yield path, route.method.lower(), _presented_token_checked(
                path, route.operation.document(list(route.param_convertors)))


def _presented_token_checked(path: str, operation: dict[str, Any]) -> dict[str, Any]:
    """A route that also serves anonymous callers still refuses a bad token it is sent
    (`security.PresentedCredentials`): its bearer token is optional, and that 401 is documented."""
    if "security" in operation or not reads_authorization(path):
        return operation
    return {**operation, "security": OPTIONAL_SECURITY,
            "responses": {**operation["responses"], "401": PRESENTED_TOKEN_REFUSED}}


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
    typed = _typed_bodies()
    generated = model_schemas([*_request_models(), *_shape_models()])
    clash = {name for name in set(typed) & set(generated) if typed[name] != generated[name]}
    if clash:
        raise ValueError(f"schemas named twice: {sorted(clash)}")
    return {**typed, **generated}


async def openapi_json(request: Request) -> Response:
    return JSONResponse(openapi_document())


routes = [Route("/openapi.json", openapi_json, methods=["GET"])]
