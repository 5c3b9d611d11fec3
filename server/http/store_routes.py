"""`/api/stores` and the menu."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from server.domain import messages
from server.domain.access import Role
from starlette.responses import Response

from server.http import context
from server.http import campusbite
from server.http.body import read_body
from server.http.errors import ApiError
from server.http.contract import (
    COMMON, MENU_ITEM_NOT_FOUND, STORE_NOT_FOUND, ApiRoute, Operation, array, obj, ref, success,
)
from server.http.requests import (
    CreateStoreRequest, MenuItemPatch, MenuItemRequest, StorePaceRequest, StoreUpdateRequest,
)
from server.http.responses import ok
from server.http.security import STORE_RUNNERS, authenticate
from server.services import catalog
from server.views import STORE_LOAD_SHAPE, StoreLoad, menu_item_view, shaped, store_view


async def list_stores(request: Request) -> Response:
    stores = await catalog.list_stores(include_inactive=False)
    return ok(campusbite.store_list([store_view(store) for store in stores], await campusbite.optional_caller(request)))


async def get_store(request: Request) -> Response:
    store = await catalog.find_store(request.path_params["store_id"])
    ready_times = context.runtime(request).ready_times
    wait = await ready_times.wait_minutes(str(store.id))
    load = StoreLoad(wait, await ready_times.typical_minutes(str(store.id)))
    shown = {**await catalog.store_with_capacity(store, context.runtime(request).clock.now()),
             **shaped(load, STORE_LOAD_SHAPE)}
    return ok(campusbite.store_fields(shown, await campusbite.optional_caller(request)))


async def create_store(request: Request) -> Response:
    await authenticate(request, Role.ADMIN)
    body = await read_body(request, CreateStoreRequest)
    store = await catalog.create_store(name=body.name, location=body.location, upi_id=body.upi_id,
                                       is_active=body.is_active, description=body.description)
    return ok(store_view(store), status_code=201)


async def update_store(request: Request) -> Response:
    """Edit a store, or open and close it: that store's staff, or an admin."""
    principal = await authenticate(request, *STORE_RUNNERS)
    store = await catalog.find_store(request.path_params["store_id"])
    catalog.authorise_store_staff(principal, str(store.id))
    changes = (await read_body(request, StoreUpdateRequest)).changes()
    if not changes:
        raise ApiError(400, messages.STORE_UPDATE_EMPTY)
    store = await catalog.update_store(store, changes, context.runtime(request).broker)
    return ok(store_view(store))


async def update_pace(request: Request) -> Response:
    """The kitchen declares itself busy (+N minutes on every estimate) or pauses new orders."""
    principal = await authenticate(request, *STORE_RUNNERS)
    store = await catalog.find_store(request.path_params["store_id"])
    catalog.authorise_store_staff(principal, str(store.id))
    body = await read_body(request, StorePaceRequest)
    changes: dict[str, Any] = {name: value for name, value in (("delay_minutes", body.delay_minutes),
                                                               ("is_paused", body.paused)) if value is not None}
    if "items_per_slot" in body.model_fields_set:
        changes["items_per_slot"] = body.items_per_slot  # None: the cap is removed
    closing = "closes_at" in body.model_fields_set
    if not changes and not closing:
        raise ApiError(400, messages.STORE_PACE_EMPTY)
    runtime = context.runtime(request)
    if closing:  # first: a closing refused leaves the rest unchanged too
        store = await runtime.store_closing.set_closing(store, body.closes_at)
    if changes:
        store = await catalog.update_store(store, changes, runtime.broker)
    runtime.ready_times.store_changed(str(store.id))
    return ok({**await catalog.store_with_capacity(store, runtime.clock.now()),
               "waitMinutes": await runtime.ready_times.wait_minutes(str(store.id))})


async def get_menu(request: Request) -> Response:
    store = await catalog.find_store(request.path_params["store_id"])
    caller = await campusbite.optional_caller(request)
    every_item = request.query_params.get("all") == "true" or campusbite.menu_lists_every_item(caller)
    items = await catalog.menu_of(store, include_unavailable=every_item)
    return ok(campusbite.menu_list([menu_item_view(item, names=campusbite.MENU_ITEM_ALIASES) for item in items],
                                   caller))


async def add_menu_item(request: Request) -> Response:
    principal = await authenticate(request, *STORE_RUNNERS)
    store = await catalog.find_store(request.path_params["store_id"])
    catalog.authorise_store_staff(principal, str(store.id))
    body = await read_body(request, MenuItemRequest)
    item = await catalog.add_menu_item(store, name=body.name, price_paise=body.price_paise, category=body.category,
                                       is_available=body.is_available, bus=context.runtime(request).broker,
                                       cap_weight=body.cap_weight)
    return ok(menu_item_view(item), status_code=201)


async def update_menu_item(request: Request) -> Response:
    principal = await authenticate(request, *STORE_RUNNERS)
    item = await catalog.find_menu_item(request.path_params["item_id"])
    catalog.authorise_store_staff(principal, str(item.store_id))
    changes = (await read_body(request, MenuItemPatch)).changes()
    if not changes:
        raise ApiError(400, messages.MENU_ITEM_UPDATE_EMPTY)
    item = await catalog.update_menu_item(item, changes, context.runtime(request).broker)
    return ok(menu_item_view(item))


routes = [
    ApiRoute("/api/stores", list_stores, "GET", Operation(
        "Active stores; for store staff `{stores}` with `owner_id`/`owner_name` on their own (CampusBite)", {
            "200": success({"oneOf": [array(ref("Store")), obj({"stores": array(ref("Store"))}, closed=True)],
                            "description": "staff: each store also under CampusBite's names "
                                           f"({', '.join(campusbite.STORE_FIELD_ALIASES)})"})},
        tag="stores", auth=False)),
    ApiRoute("/api/stores", create_store, "POST", Operation(
        "Create a store (admins)", {"201": success(ref("Store"), "Created"), **COMMON}, tag="stores",
        body=CreateStoreRequest)),
    ApiRoute("/api/stores/{store_id}", get_store, "GET", Operation(
        "One store", {"200": success(ref("Store")), **STORE_NOT_FOUND}, tag="stores", auth=False)),
    ApiRoute("/api/stores/{store_id}", update_store, "PATCH", Operation(
        "Edit, open or close a store (that store's staff, admins)", {
            "200": success(ref("Store")), **COMMON, **STORE_NOT_FOUND}, tag="stores", body=StoreUpdateRequest)),
    ApiRoute("/api/stores/{store_id}/pace", update_pace, "PATCH", Operation(
        "The kitchen's pace (that store's staff, or admins): `delayMinutes` is added to every ready-time "
        "estimate; while `paused`, checkout refuses new orders; `itemsPerSlot` caps the items taken per "
        "15-minute slot (null: no cap): a full slot sends checkouts to the next with room, and an order "
        "gives its items back once ready or cancelled; `closesAt` closes the store for payments: no new orders "
        "from then on, every unpaid order due by then (null: open again)", {
            "200": success(ref("Store")), **COMMON, **STORE_NOT_FOUND}, tag="stores", body=StorePaceRequest)),
    ApiRoute("/api/stores/{store_id}/menu", get_menu, "GET", Operation(
        "A store's available menu (`?all=true` includes unavailable items); signed in as a student, faculty "
        "member or store employee, CampusBite's `{menuItems}` of every item, each with its `is_available`", {
            "200": success({"oneOf": [array(ref("MenuItem")), obj({"menuItems": array(ref("MenuItem"))}, closed=True)],
                            "description": "each item also under CampusBite's names "
                                           f"({', '.join(campusbite.MENU_ITEM_ALIASES)})"}),
            **STORE_NOT_FOUND}, tag="stores", auth=False)),
    ApiRoute("/api/stores/{store_id}/menu", add_menu_item, "POST", Operation(
        "Add a menu item (that store's staff, admins)", {
            "201": success(ref("MenuItem"), "Created"), **COMMON, **STORE_NOT_FOUND}, tag="stores",
        body=MenuItemRequest)),
    ApiRoute("/api/menu/{item_id}", update_menu_item, "PATCH", Operation(
        "Change a menu item", {"200": success(ref("MenuItem")), **COMMON, **MENU_ITEM_NOT_FOUND}, tag="stores",
        body=MenuItemPatch)),
]
