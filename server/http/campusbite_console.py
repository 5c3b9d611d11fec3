"""CampusBite's staff console: its menu and store settings.

The console sends FormData (with an optional image) or JSON, in its own field names, and toggles
availability without a body. Each is parsed into OrderPulse's request model, so the rules and
messages are the same as on OrderPulse's own routes. OrderPulse keeps no images, item
descriptions or opening hours: those fields are read and dropped (README).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from server.domain import messages
from server.http import context
from server.http.errors import ApiError
from server.http import campusbite
from server.http.body import ascii_int, read_json
from server.http.body_rules import Body, parse
from server.http.contract import (
    COMMON, MENU_ITEM_NOT_FOUND, NULL, STORE_NOT_FOUND, ApiRoute, Operation, obj, ref, success,
)
from server.http.requests import MenuItemPatch, MenuItemRequest, StoreSettingsRequest
from server.http.responses import ok
from server.http.security import STORE_RUNNERS, authenticate
from server.services import catalog
from server.views import menu_item_view, store_view

if TYPE_CHECKING:
    from server.models import MenuItem

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
    from a text input), read by the JSON number rule (`body_rules.json_number`) before the price rule."""
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


def _menu_item(item: MenuItem) -> dict[str, Any]:
    return menu_item_view(item, names=campusbite.MENU_ITEM_ALIASES)


async def console_add_menu_item(request: Request) -> Response:
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


async def _staff_item(request: Request) -> MenuItem:
    principal = await authenticate(request, *STORE_RUNNERS)
    item = await catalog.find_menu_item(request.path_params["item_id"])
    catalog.authorise_store_staff(principal, str(item.store_id))
    return item


async def console_update_menu_item(request: Request) -> Response:
    """`PUT /api/menu/{id}`: the fields sent change."""
    item = await _staff_item(request)
    changes = _parse_console(MenuItemPatch, _menu_body(await _console_fields(request))).changes()
    if not changes:
        raise ApiError(400, messages.MENU_ITEM_UPDATE_EMPTY)
    item = await catalog.update_menu_item(item, changes, context.runtime(request).broker)
    return ok({"menuItem": _menu_item(item)}, message=messages.MENU_ITEM_UPDATED)


async def console_toggle_availability(request: Request) -> Response:
    """`PATCH /api/menu/{id}/availability`: sold out becomes available and back."""
    item = await _staff_item(request)
    item = await catalog.update_menu_item(item, {"is_available": not item.is_available},
                                          context.runtime(request).broker)
    return ok({"menuItem": _menu_item(item)}, message=messages.MENU_ITEM_UPDATED)


async def console_delete_menu_item(request: Request) -> Response:
    """`DELETE /api/menu/{id}`: orders keep their own copy of each item, so none is affected."""
    item = await _staff_item(request)
    await catalog.delete_menu_item(item, context.runtime(request).broker)
    return ok(None, message=messages.MENU_ITEM_DELETED)


async def console_update_store(request: Request) -> Response:
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
    view = {**store_view(store, names=campusbite.STORE_FIELD_ALIASES), "owner_id": principal.user_id,
            "owner_name": principal.name}
    return ok({"store": view}, message=messages.STORE_UPDATED)


routes = [
    ApiRoute("/api/menu", console_add_menu_item, "POST", Operation(
        "CampusBite's console: add an item to the caller's store (JSON, or FormData in its snake_case names; an "
        "image is dropped; an admin names `store_id`)", {
            "201": success(obj({"menuItem": ref("MenuItem")}), "Created", message=True), **COMMON,
            **STORE_NOT_FOUND}, tag="campusbite", body=MenuItemRequest)),
    ApiRoute("/api/menu/{item_id}", console_update_menu_item, "PUT", Operation(
        "CampusBite's console: change a menu item (JSON, or FormData in its snake_case names; an image is "
        "dropped)", {"200": success(obj({"menuItem": ref("MenuItem")}), message=True), **COMMON,
                     **MENU_ITEM_NOT_FOUND}, tag="campusbite", body=MenuItemPatch)),
    ApiRoute("/api/menu/{item_id}", console_delete_menu_item, "DELETE", Operation(
        "CampusBite's console: remove a menu item (orders keep their copy)", {
            "200": success(NULL, message=True), **COMMON, **MENU_ITEM_NOT_FOUND}, tag="campusbite")),
    ApiRoute("/api/menu/{item_id}/availability", console_toggle_availability, "PATCH", Operation(
        "CampusBite's console: sold out becomes available and back", {
            "200": success(obj({"menuItem": ref("MenuItem")}), message=True), **COMMON, **MENU_ITEM_NOT_FOUND},
        tag="campusbite")),
    ApiRoute("/api/stores/{store_id}", console_update_store, "PUT", Operation(
        "CampusBite's settings page: name, description, UPI id (JSON, or FormData in its snake_case names; images "
        "and opening hours are dropped)", {
            "200": success(obj({"store": ref("Store")}), message=True), **COMMON, **STORE_NOT_FOUND},
        tag="campusbite", body=StoreSettingsRequest)),
]
