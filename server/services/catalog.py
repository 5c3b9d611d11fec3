"""Stores and their menus, and the catalog event published whenever either changes.

Each change of a store or one of its menu items publishes the store's whole menu on
`catalog:{storeId}`, numbered by an atomic per-store counter taken after the write: a message
with a higher `revision` always holds every change of the lower ones, so a page that keeps the
highest revision it saw never goes back, however many processes publish at once.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import orjson
from bson import ObjectId
from pymongo import ReturnDocument

from server.domain import messages
from server.domain.access import Principal, may_run_store
from server.domain.clock import iso_z, utcnow
from server.domain.errors import Forbidden, NotFound
from server.models import Counter, MenuItem, Store
from server.services import slots
from server.services.bus import MessageBus
from server.services.changes import catalog_channel
from server.services.outage import upserted
from server.views import menu_item_view, store_view

log = logging.getLogger("orderpulse.catalog")


async def find_store(store_id: str) -> Store:
    store = await Store.get(store_id) if ObjectId.is_valid(store_id) else None
    if store is None:
        raise NotFound(messages.STORE_NOT_FOUND)
    return store


def authorise_store_staff(principal: Principal, store_id: str) -> None:
    """Menu writes: that store's employees, or an admin."""
    if not may_run_store(principal, store_id):
        raise Forbidden(messages.FORBIDDEN_ROLE)


async def list_stores(include_inactive: bool) -> list[Store]:
    query = {} if include_inactive else {"is_active": True}
    return await Store.find(query).sort("name").to_list()


async def create_store(name: str, location: str, upi_id: str, is_active: bool,
                       description: str | None = None) -> Store:
    store = Store(name=name, location=location, description=description, upi_id=upi_id, is_active=is_active,
                  created_at=utcnow())
    return await store.insert()


async def update_store(store: Store, changes: dict[str, Any], bus: MessageBus) -> Store:
    """Set `changes` (stored names; a None `description` removes it) and publish the change."""
    if changes:
        unset = {name: "" for name, value in changes.items() if value is None}
        update: dict[str, Any] = {"$set": {name: value for name, value in changes.items() if value is not None}}
        if unset:
            update["$unset"] = unset
        if not update["$set"]:
            del update["$set"]
        await Store.get_pymongo_collection().update_one({"_id": store.id}, update)
        store = store.model_copy(update=changes)
        await publish_store_changed(bus, str(store.id))
    return store


async def menu_of(store: Store, include_unavailable: bool) -> list[MenuItem]:
    query: dict[str, Any] = {"store_id": str(store.id)}
    if not include_unavailable:
        query["is_available"] = True
    return await MenuItem.find(query).sort("name").to_list()


async def add_menu_item(store: Store, name: str, price_paise: int, category: str | None,
                        is_available: bool, bus: MessageBus, cap_weight: int = 1) -> MenuItem:
    now = utcnow()
    item = MenuItem(store_id=str(store.id), name=name, price_paise=price_paise, category=category,
                    is_available=is_available, cap_weight=cap_weight, created_at=now, updated_at=now)
    item = await item.insert()
    await publish_store_changed(bus, str(store.id))
    return item


async def find_menu_item(item_id: str) -> MenuItem:
    item = await MenuItem.get(item_id) if ObjectId.is_valid(item_id) else None
    if item is None:
        raise NotFound(messages.MENU_ITEM_NOT_FOUND)
    return item


async def delete_menu_item(item: MenuItem, bus: MessageBus) -> None:
    """Remove an item from its store's menu; orders keep their own copy of what they contain."""
    await MenuItem.get_pymongo_collection().delete_one({"_id": item.id})
    await publish_store_changed(bus, str(item.store_id))


async def update_menu_item(item: MenuItem, changes: dict[str, Any], bus: MessageBus) -> MenuItem:
    if changes:
        changes["updated_at"] = utcnow()
        await MenuItem.get_pymongo_collection().update_one({"_id": item.id}, {"$set": changes})
        item = item.model_copy(update=changes)
        await publish_store_changed(bus, item.store_id)
    return item


async def _catalog_revision(store_id: str, bump: bool) -> int:
    counter_id = f"catalog:{store_id}"
    collection = Counter.get_pymongo_collection()
    if not bump:
        document = await collection.find_one({"_id": counter_id})
        return int(document["seq"]) if document else 0
    document = upserted(await collection.find_one_and_update(
        {"_id": counter_id}, {"$inc": {"seq": 1}}, upsert=True, return_document=ReturnDocument.AFTER))
    return int(document["seq"])


async def menu_snapshot(store_id: str, *, bump: bool = False) -> dict[str, Any] | None:
    """The store and its whole menu (sold-out items too) with the catalog revision it holds;
    None when there is no such store. `bump` takes a new revision first (a change was written)."""
    if not ObjectId.is_valid(store_id):
        return None
    revision = await _catalog_revision(store_id, bump)
    store = await Store.get(store_id)
    if store is None:
        return None
    items = await MenuItem.find({"store_id": store_id}).sort("name").to_list()
    return {"storeId": store_id, "revision": revision, "store": await store_with_capacity(store),
            "menu": [menu_item_view(item) for item in items]}


async def store_with_capacity(store: Store, now: datetime | None = None) -> dict[str, Any]:
    """The store as clients see it, with its order cap's state at `now` when it has one (`capacity`)."""
    view = store_view(store)
    room = await slots.capacity(store, now or utcnow())
    view["capacity"] = None if room is None else {
        "itemsPerSlot": room["itemsPerSlot"], "slotStart": iso_z(room["slotStart"]), "slotItems": room["slotItems"],
        "nextFreeSlot": iso_z(room["nextFreeSlot"]),
        # The current slot is full: new orders go to `nextFreeSlot`, or none is taken (null).
        "deferring": room["nextFreeSlot"] != room["slotStart"]}
    return view


async def publish_store_changed(bus: MessageBus, store_id: str) -> None:
    """Tell every process's menu watchers that this store or its menu changed (call after the
    write). A failed publish is logged, not raised: the write stands, and a page that missed it
    catches up on its next reconnect's snapshot."""
    try:
        snapshot = await menu_snapshot(store_id, bump=True)
        if snapshot is not None:
            await bus.publish([catalog_channel(store_id)], orjson.dumps(snapshot))
    except Exception:
        log.warning("catalog change of store %s was not published", store_id)
