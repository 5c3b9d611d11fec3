"""The pickup board (issue 27): display links and what a board shows.

A display link is a read-only credential scoped to one store: a random secret shown once (in the
link's fragment, which browsers never send to a server), of which only the SHA-256 is stored. It
opens the board's snapshot and stream and nothing else: the board's payload is shaped here, from
the store's active orders, and carries short order numbers only (no name, code, item or amount).
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Any

import orjson
from bson import ObjectId

from server.domain import messages
from server.domain.access import Principal
from server.domain.clock import SYSTEM_CLOCK, Clock, as_utc, iso_z
from server.domain.errors import NotFound
from server.domain.lifecycle import OrderStatus
from server.models import BoardSettings, Display, Store
from server.services import order_store
from server.services.bus import MessageBus
from server.services.tokens import digest

# The prefix tells a display secret from an access token at a glance (and in a leaked log line).
SECRET_PREFIX = "opd_"
# A counter's TV has room for this many numbers a column; the oldest beyond it are left off.
COLUMN_LIMIT = 60
PREPARING = (OrderStatus.ACCEPTED.value, OrderStatus.PROCESSING.value)
_TRAILING_DIGITS = re.compile(r"(\d+)$")


def board_channel(store_id: str) -> str:
    """Board settings changes (the store's order changes come on its `store:` channel)."""
    return f"board:{store_id}"


def short_number(order_number: str) -> str:
    """The number called out at the counter: the trailing digits of the order number
    ("ORD-20261206-042" → "042"), the same rule as `shortNumber` in static/js/format.js."""
    match = _TRAILING_DIGITS.search(order_number or "")
    return match.group(1) if match else order_number


def display_view(display: Display) -> dict[str, Any]:
    return {"id": str(display.id), "storeId": display.store_id, "label": display.label,
            "createdAt": iso_z(display.created_at), "createdByName": display.created_by_name}


def display_url(origin: str, store_id: str, secret: str) -> str:
    return f"{origin}/board/{store_id}#key={secret}"


async def create_display(store: Store, principal: Principal, label: str | None, clock: Clock = SYSTEM_CLOCK
                         ) -> tuple[Display, str]:
    """A new display link for `store`; returns it and its secret (which is not stored)."""
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    display = Display(store_id=str(store.id), secret_hash=digest(secret), label=label, created_at=clock.now(),
                      created_by=principal.user_id, created_by_name=principal.name)
    await display.insert()
    return display, secret


async def list_displays(store_id: str) -> list[Display]:
    return await Display.find({"store_id": store_id}).sort("created_at").to_list()


async def revoke_display(store_id: str, display_id: str) -> None:
    """Delete the link: its next request, and the next check of an open board stream, fail."""
    if not ObjectId.is_valid(display_id):
        raise NotFound(messages.DISPLAY_NOT_FOUND)
    result = await Display.get_pymongo_collection().delete_one({"_id": ObjectId(display_id), "store_id": store_id})
    if not result.deleted_count:
        raise NotFound(messages.DISPLAY_NOT_FOUND)


async def display_store(secret: str) -> str | None:
    """The store a display secret opens, or None (unknown or revoked)."""
    if not secret.startswith(SECRET_PREFIX) or len(secret) > 100:
        return None
    found = await Display.get_pymongo_collection().find_one({"secret_hash": digest(secret)}, {"store_id": 1})
    return found["store_id"] if found else None


async def display_alive(store_id: str, secret: str) -> bool:
    return await display_store(secret) == store_id


async def announce_setting(store_id: str) -> bool:
    found = await BoardSettings.get_pymongo_collection().find_one({"store_id": store_id}, {"announce": 1})
    return bool(found and found.get("announce"))


async def set_announce(store_id: str, announce: bool, bus: MessageBus, clock: Clock = SYSTEM_CLOCK) -> bool:
    await BoardSettings.get_pymongo_collection().update_one(
        {"store_id": store_id}, {"$set": {"store_id": store_id, "announce": announce, "updated_at": clock.now()}},
        upsert=True)
    await bus.publish([board_channel(store_id)], b'{"settings":true}')
    return announce


def _moment(value: Any) -> datetime | None:
    return as_utc(value) if value else None


async def read_board(store_id: str) -> dict[str, Any] | None:
    """What the board of `store_id` shows now: short numbers being prepared (oldest first) and
    ready to collect (the newest first), the store's name and its announce setting. None: no store."""
    store = await Store.get_pymongo_collection().find_one({"_id": ObjectId(store_id)}, {"name": 1}) \
        if ObjectId.is_valid(store_id) else None
    if store is None:
        return None
    preparing: list[tuple[datetime, str]] = []
    ready: list[tuple[datetime, str]] = []
    for order in await order_store.board_rows(store_id, [*PREPARING, OrderStatus.READY.value]):
        number = short_number(order.get("order_number", ""))
        if order.get("order_status") == OrderStatus.READY.value:
            ready.append((_moment(order.get("ready_at")) or as_utc(order["created_at"]), number))
        else:
            preparing.append((_moment(order.get("accepted_at")) or as_utc(order["created_at"]), number))
    preparing.sort()
    ready.sort(reverse=True)
    return {
        "storeName": store.get("name", ""),
        "preparing": [number for _, number in preparing[:COLUMN_LIMIT]],
        "ready": [number for _, number in ready[:COLUMN_LIMIT]],
        "announce": await announce_setting(store_id),
    }


def encode_board(board: dict[str, Any]) -> bytes:
    return orjson.dumps(board)
