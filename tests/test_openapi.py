"""`/openapi.json` stays true: real responses of every route validate against it."""

from __future__ import annotations

import jsonschema
import pytest
from jsonschema import Draft202012Validator
from starlette.routing import Route

from server.app import create_app
from server.http import body_rules, campusbite, requests
from server.http.openapi import openapi_document
from server.http.security import reads_authorization
from server.models import MenuItem, Order, Store
from server.views import (
    LEAN_FIELDS, commitment_order, event_order, lean_order, menu_item_view, order_detail, order_item_view,
    order_summary, store_view,
)


def check(document: dict, path: str, method: str, response) -> None:
    spec = document["paths"][path][method]["responses"][str(response.status_code)]
    if response.status_code == 304 or "content" not in spec:
        return
    media = next(iter(spec["content"]))
    if media != "application/json":
        assert response.headers["content-type"].startswith(media.split(";")[0])
        return
    schema = {**spec["content"]["application/json"]["schema"], "components": document["components"]}
    # `#/components/...` references resolve within this wrapper document.
    Draft202012Validator(schema).validate(response.json())


def test_the_document_is_valid_openapi_3_1_shape():
    document = openapi_document()
    assert document["openapi"] == "3.1.0"
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation["responses"], (path, method)
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_every_route_of_the_app_is_documented(make_settings):
    app = create_app(make_settings())
    documented = {(path, method) for path, item in openapi_document()["paths"].items() for method in item}
    served = {(route.path, method.lower()) for route in app.routes if isinstance(route, Route)
              for method in route.methods or () if method != "HEAD"}
    api_routes = {(path, method) for path, method in served
                  if path.startswith(("/api", "/v1", "/healthz", "/readyz", "/metrics"))}
    assert api_routes == documented, api_routes ^ documented


async def test_every_route_that_checks_a_presented_token_documents_its_401(api):
    """A presented token is checked on every /api route but those whose credential is in the body or
    path (issue 24): each says so, and a public route's bearer token is optional."""
    document = openapi_document()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if reads_authorization(path):
                assert "401" in operation["responses"] and {"bearer": []} in operation["security"], (method, path)
    assert document["paths"]["/api/stores"]["get"]["security"] == [{}, {"bearer": []}]
    refused = await api.get("/api/stores", headers={"Authorization": "Bearer not-a-jwt"})
    check(document, "/api/stores", "get", refused)
    assert refused.status_code == 401


async def test_real_responses_match_the_document(api):
    doc = openapi_document()
    store = await api.store()
    customer = await api.customer()
    admin = await api.admin()
    order = await api.place_order(customer, store, transaction_id="UPI87654321")
    oid = order["id"]
    base = f"/api/orders/{oid}"
    calls = [
        ("/api/stores", "get", await api.get("/api/stores")),
        ("/api/stores/{store_id}", "get", await api.get(f"/api/stores/{store.id}")),
        ("/api/stores/{store_id}", "get", await api.get("/api/stores/65f7a8b9c1234567890abcde")),
        ("/api/stores/{store_id}/menu", "get", await api.get(f"/api/stores/{store.id}/menu")),
        ("/api/users/me", "get", await api.get("/api/users/me", customer)),
        ("/api/users/me", "get", await api.get("/api/users/me")),
        ("/api/orders/checkout-session", "post", await api.checkout(customer, store)),
        ("/api/orders", "get", await api.get("/api/orders", customer)),
        ("/api/orders/{order_id}", "get", await api.get(base, customer)),
        ("/api/orders/{order_id}", "get", await api.get("/api/orders/65f7a8b9c1234567890abcde", customer)),
        ("/api/orders/{order_id}/poll-status", "get", await api.get(f"{base}/poll-status", customer)),
        ("/api/orders/{order_id}/confirm-commitment", "post", await api.post(f"{base}/confirm-commitment", customer)),
        ("/api/orders/{order_id}/payment-status", "patch",
         await api.patch(f"{base}/payment-status", store.staff, json={"paymentStatus": "success"})),
        ("/api/orders/{order_id}/status", "patch", await api.patch(f"{base}/status", store.staff,
                                                                   json={"status": "processing"})),
        ("/api/orders/{order_id}/status", "patch", await api.patch(f"{base}/status", store.staff,
                                                                   json={"status": "processing"})),
        ("/api/orders/{order_id}/status", "patch", await api.patch(f"{base}/status", store.staff,
                                                                   json={"status": "ready"})),
        ("/api/orders/{order_id}", "get", await api.get(base, customer)),
        ("/api/orders/{order_id}/verify-otp", "post", await api.post(f"{base}/verify-otp", store.staff,
                                                                     json={"otp": "abcdef"})),
        ("/api/orders/{order_id}/verify-otp", "post",
         await api.post(f"{base}/verify-otp", store.staff, json={"otp": await api.otp_of(customer, oid)})),
        ("/api/orders/{order_id}/cancel", "post", await api.post(f"{base}/cancel", customer)),
        ("/api/orders", "post", await api.post("/api/orders", customer, json={})),
        ("/api/auth/login", "post", await api.post("/api/auth/login", json={"email": "x@y.z", "password": "nope"})),
        ("/api/auth/refresh", "post", await api.post("/api/auth/refresh", json={"refreshToken": customer.refresh_token})),
        ("/api/auth/logout", "post", await api.post("/api/auth/logout", json={"refreshToken": "unknown"})),
        ("/api/admin/users", "post", await api.post("/api/admin/users", admin, json={
            "name": "A Staff", "email": "astaff@campus.test", "password": "correct-horse-1",
            "role": "store_employee", "storeId": store.id})),
        ("/api/stores", "post", await api.post("/api/stores", admin, json={"name": "S", "location": "L", "upiId": "u@upi"})),
        ("/api/stores/{store_id}/menu", "post", await api.post(f"/api/stores/{store.id}/menu", store.staff,
                                                               json={"name": "Tea", "price": 12.5})),
        ("/api/menu/{item_id}", "patch", await api.patch(f"/api/menu/{store.menu[0]['id']}", store.staff,
                                                         json={"price": 130})),
        ("/healthz", "get", await api.get("/healthz")),
        ("/readyz", "get", await api.get("/readyz")),
        ("/metrics", "get", await api.get("/metrics")),
    ]
    second = await api.place_order(customer, store)
    calls.append(("/api/orders/{order_id}/cancel", "post", await api.post(f"/api/orders/{second['id']}/cancel",
                                                                          customer)))
    statuses = set()
    for path, method, response in calls:
        try:
            check(doc, path, method, response)
        except (KeyError, jsonschema.ValidationError) as exc:
            pytest.fail(f"{method.upper()} {path} → {response.status_code}: {exc}\n{response.text[:500]}")
        statuses.add((path, response.status_code))
    assert len(statuses) >= 25


def _references(node) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [ref for value in node.values() for ref in _references(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _references(value)]
    return []


def test_every_reference_in_the_document_resolves():
    document = openapi_document()
    references = set(_references(document))
    assert references
    for reference in references:
        assert reference.startswith("#/components/schemas/"), reference
        assert reference.rsplit("/", 1)[1] in document["components"]["schemas"], reference


def test_every_request_body_is_the_schema_of_the_model_that_parses_it():
    document = openapi_document()
    schemas = document["components"]["schemas"]
    bodies: set[str] = set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if "requestBody" not in operation:
                continue
            name = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
            bodies.add(name)
            model = getattr(requests, name)
            assert issubclass(model, body_rules.RequestModel), (path, method)
            # The model's own fields, by their JSON names, are what the document lists.
            listed = schemas[name]["properties"] if "properties" in schemas[name] else \
                {key: None for variant in schemas[name]["oneOf"] for key in variant["properties"]}
            assert list(listed) == [field.alias for field in model.model_fields.values()], name
    # Every parsing model is some route's body, or a part of one (a cart line, a push key pair).
    models = {name for name, value in vars(requests).items() if isinstance(value, type)
              and issubclass(value, body_rules.RequestModel) and value is not body_rules.RequestModel}
    parts = {ref.rsplit("/", 1)[1] for name in bodies for ref in _refs(schemas[name])}
    assert models == bodies | parts, models ^ (bodies | parts)


def _refs(schema) -> list[str]:
    if isinstance(schema, dict):
        return ([schema["$ref"]] if "$ref" in schema else []) + [r for v in schema.values() for r in _refs(v)]
    if isinstance(schema, list):
        return [r for v in schema for r in _refs(v)]
    return []


async def test_the_lean_shape_is_one_definition_for_the_poll_body_the_events_and_the_document(api):
    schemas = openapi_document()["components"]["schemas"]
    store = await api.store()
    customer = await api.customer()
    placed = await api.place_order(customer, store)
    order = await Order.get(placed["id"])
    poll = (await api.get(f"/api/orders/{placed['id']}/poll-status", customer)).json()["data"]
    assert list(poll) == list(lean_order(order)) == list(LEAN_FIELDS) == list(schemas["PollStatus"]["properties"])
    assert schemas["PollStatus"]["required"] == list(LEAN_FIELDS)
    assert list(event_order(order)) == [*LEAN_FIELDS, "storeId", "version"] == list(schemas["OrderEvent"]["properties"])
    Draft202012Validator({**schemas["OrderEvent"], "components": {"schemas": schemas}}).validate(event_order(order))



async def test_each_answer_shape_builds_what_the_document_requires_of_it(api):
    # A shape of server/views.py both builds an answer and, as a model, is its schema in the document.
    schemas = openapi_document()["components"]["schemas"]
    store = await api.store()
    customer = await api.customer()
    placed = await api.place_order(customer, store)
    order = await Order.get(placed["id"])
    menu_item = await MenuItem.get(store.menu[0]["id"])
    built = {"OrderSummary": order_summary(order), "Order": order_detail(order, None),
             "OrderLine": order_item_view(order.items[0]), "CommitmentOrder": commitment_order(order),
             "MenuItem": menu_item_view(menu_item), "Store": store_view(await Store.get(store.id))}
    for name, answer in built.items():
        assert list(answer) == schemas[name]["required"][:len(answer)], name
        Draft202012Validator({**schemas[name], "components": {"schemas": schemas}}).validate(
            order_detail(order, None, names=campusbite.ORDER_NAMES) if name == "Order" else answer)
