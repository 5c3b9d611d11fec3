"""Stores and their menus."""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from server.domain import messages
from server.domain.access import Principal, may_run_store
from server.domain.clock import utcnow
from server.domain.errors import ApiError
from server.models import MenuItem, Store


async def find_store(store_id: str) -> Store:
    store = await Store.get(store_id) if ObjectId.is_valid(store_id) else None
    if store is None:
        raise ApiError(404, messages.STORE_NOT_FOUND)
    return store


def authorise_store_staff(principal: Principal, store_id: str) -> None:
    """Menu writes: that store's employees, or an admin."""
    if not may_run_store(principal, store_id):
        raise ApiError(403, messages.FORBIDDEN_ROLE)


async def list_stores(include_inactive: bool) -> list[Store]:
    query = {} if include_inactive else {"is_active": True}
    return await Store.find(query).sort("name").to_list()


async def create_store(name: str, location: str, upi_id: str, is_active: bool) -> Store:
    store = Store(name=name, location=location, upi_id=upi_id, is_active=is_active, created_at=utcnow())
    return await store.insert()


async def menu_of(store: Store, include_unavailable: bool) -> list[MenuItem]:
    query: dict[str, Any] = {"store_id": str(store.id)}
    if not include_unavailable:
        query["is_available"] = True
    return await MenuItem.find(query).sort("name").to_list()


async def add_menu_item(store: Store, name: str, price_paise: int, category: str | None,
                        is_available: bool) -> MenuItem:
    now = utcnow()
    item = MenuItem(store_id=str(store.id), name=name, price_paise=price_paise, category=category,
                    is_available=is_available, created_at=now, updated_at=now)
    return await item.insert()


async def find_menu_item(item_id: str) -> MenuItem:
    item = await MenuItem.get(item_id) if ObjectId.is_valid(item_id) else None
    if item is None:
        raise ApiError(404, messages.MENU_ITEM_NOT_FOUND)
    return item


async def update_menu_item(item: MenuItem, changes: dict[str, Any]) -> MenuItem:
    if changes:
        changes["updated_at"] = utcnow()
        await MenuItem.get_pymongo_collection().update_one({"_id": item.id}, {"$set": changes})
        item = item.model_copy(update=changes)
    return item
