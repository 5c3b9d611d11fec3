"""`/api/stores` and the menu."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from server.domain.access import Role
from server.domain.money import InvalidAmount, rupees_to_paise
from server.domain.errors import ApiError
from server.http.body import Fields, request_fields
from server.http.responses import ok
from server.http.security import authenticate
from server.services import catalog
from server.views import menu_item_view, store_view


def _price(fields: Fields) -> int:
    try:
        return rupees_to_paise(fields.raw("price"))
    except InvalidAmount as exc:
        raise ApiError(400, str(exc)) from None


async def list_stores(request: Request):
    stores = await catalog.list_stores(include_inactive=False)
    return ok([store_view(store) for store in stores])


async def get_store(request: Request):
    store = await catalog.find_store(request.path_params["store_id"])
    return ok(store_view(store))


async def create_store(request: Request):
    await authenticate(request, Role.ADMIN)
    fields = await request_fields(request)
    store = await catalog.create_store(
        name=fields.string("name", max_length=100), location=fields.string("location", max_length=200),
        upi_id=fields.string("upiId", max_length=100), is_active=fields.boolean("isActive", True))
    return ok(store_view(store), status_code=201)


async def get_menu(request: Request):
    store = await catalog.find_store(request.path_params["store_id"])
    items = await catalog.menu_of(store, include_unavailable=request.query_params.get("all") == "true")
    return ok([menu_item_view(item) for item in items])


async def add_menu_item(request: Request):
    principal = await authenticate(request)
    store = await catalog.find_store(request.path_params["store_id"])
    catalog.authorise_store_staff(principal, str(store.id))
    fields = await request_fields(request)
    if not fields.has("price"):
        raise ApiError(400, "price is required.")
    item = await catalog.add_menu_item(
        store, name=fields.string("name", max_length=100), price_paise=_price(fields),
        category=fields.string("category", required=False, max_length=50),
        is_available=fields.boolean("isAvailable", True))
    return ok(menu_item_view(item), status_code=201)


async def update_menu_item(request: Request):
    principal = await authenticate(request)
    item = await catalog.find_menu_item(request.path_params["item_id"])
    catalog.authorise_store_staff(principal, str(item.store_id))
    fields = await request_fields(request)
    changes: dict[str, Any] = {}
    if fields.has("name"):
        changes["name"] = fields.string("name", max_length=100)
    if fields.present("price"):  # an explicit null is a wrong type, not "leave it"
        changes["price_paise"] = _price(fields)
    if fields.has("isAvailable"):
        changes["is_available"] = fields.boolean("isAvailable", item.is_available)
    if fields.has("category"):
        changes["category"] = fields.string("category", max_length=50)
    item = await catalog.update_menu_item(item, changes)
    return ok(menu_item_view(item))


routes = [
    Route("/api/stores", list_stores, methods=["GET"]),
    Route("/api/stores", create_store, methods=["POST"]),
    Route("/api/stores/{store_id}", get_store, methods=["GET"]),
    Route("/api/stores/{store_id}/menu", get_menu, methods=["GET"]),
    Route("/api/stores/{store_id}/menu", add_menu_item, methods=["POST"]),
    Route("/api/menu/{item_id}", update_menu_item, methods=["PATCH"]),
]
