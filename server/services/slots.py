"""Order caps that regulate themselves (issue 27).

A store with `items_per_slot` takes at most that many items (each menu item counts for its
`cap_weight`) in each 15-minute slot. Each store-slot has a counter document; a checkout claims
its items with one conditional `$inc` whose filter is the room left, so concurrent checkouts on
any number of processes never pass the cap. A full slot sends the checkout to the next slot with
room ("ready around 12:55"), or refuses it when none within the lookahead has any. An order gives
its items back when it is ready or cancelled (the kitchen's work on it is over), so a store whose
queue drains takes orders in the current slot again by itself; a manual pause still wins, as
checkout refuses a paused store before it asks for a slot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument

from server.domain import messages
from server.domain.clock import as_utc
from server.domain.errors import Conflict, Invalid, OrderPulseError
from server.domain.lifecycle import OrderStatus
from server.domain.slots import LOOKAHEAD_SLOTS, SLOT, slot_key, slots_from
from server.models import Counter, Order, Store
from server.services import order_store

log = logging.getLogger("orderpulse.slots")

# The kitchen's work on an order is over: its items leave the slot they were counted in.
_RELEASING = frozenset({OrderStatus.READY, OrderStatus.PICKED_UP, OrderStatus.CANCELLED})


@dataclass(frozen=True)
class SlotClaim:
    start: datetime
    weight: int
    deferred: bool
    filled: bool = False  # this claim left no room for even one more item in its slot


def _refusal(kind: type[OrderPulseError], store: Store, weight: int) -> OrderPulseError:
    cap = store.items_per_slot or 0
    if weight > cap:
        return kind(messages.SLOT_ORDER_TOO_LARGE.format(store_name=store.name, cap=cap))
    return kind(messages.SLOTS_FULL.format(store_name=store.name,
                                           minutes=int(SLOT.total_seconds() // 60) * LOOKAHEAD_SLOTS))


async def _counts(store_id: str, starts: list[datetime]) -> dict[datetime, int]:
    keys = {slot_key(store_id, start): start for start in starts}
    found = await Counter.get_pymongo_collection().find({"_id": {"$in": list(keys)}}).to_list(None)
    counts = {start: 0 for start in starts}
    for document in found:
        counts[keys[document["_id"]]] = int(document.get("seq", 0))
    return counts


async def first_free(store: Store, weight: int, now: datetime) -> datetime | None:
    """The slot a checkout of `weight` items would be counted in now (nothing claimed); None when
    the store has no cap, Invalid when no slot has room."""
    cap = store.items_per_slot
    if cap is None:
        return None
    starts = slots_from(now)
    counts = await _counts(str(store.id), starts)
    for start in starts:
        if counts[start] + weight <= cap:
            return start
    raise _refusal(Invalid, store, weight)


async def claim(store: Store, weight: int, now: datetime) -> SlotClaim | None:
    """Count `weight` items in the first slot with room for them; None when the store has no cap.
    Conflict when no slot within the lookahead has room (the cart was fine a moment ago)."""
    cap = store.items_per_slot
    if cap is None:
        return None
    if weight > cap:
        raise _refusal(Conflict, store, weight)
    collection = Counter.get_pymongo_collection()
    starts = slots_from(now)
    for index, start in enumerate(starts):
        key = slot_key(str(store.id), start)
        # The counter exists first (an upsert whose filter is a room test would insert a duplicate
        # when the slot is full); then the claim is one conditional increment.
        await collection.update_one({"_id": key}, {"$inc": {"seq": 0}}, upsert=True)
        taken = await collection.find_one_and_update({"_id": key, "seq": {"$lte": cap - weight}},
                                                     {"$inc": {"seq": weight}}, projection={"seq": 1},
                                                     return_document=ReturnDocument.AFTER)
        if taken is not None:
            return SlotClaim(start, weight, deferred=index > 0, filled=int(taken.get("seq", 0)) + 1 > cap)
    raise _refusal(Conflict, store, weight)


async def give_back(store_id: str, claimed: SlotClaim) -> None:
    """Return a claim no order was made from (the checkout's order existed already)."""
    await Counter.get_pymongo_collection().update_one({"_id": slot_key(store_id, claimed.start)},
                                                      {"$inc": {"seq": -claimed.weight}})


async def capacity(store: Store, now: datetime) -> dict[str, Any] | None:
    """What the menu page shows of a capped store: the items counted in the current slot and the
    start of the first slot that still takes a one-item order (None: fully booked)."""
    cap = store.items_per_slot
    if cap is None:
        return None
    starts = slots_from(now)
    counts = await _counts(str(store.id), starts)
    free = next((start for start in starts if counts[start] + 1 <= cap), None)
    return {"itemsPerSlot": cap, "slotStart": starts[0], "slotItems": counts[starts[0]], "nextFreeSlot": free}


class SlotReleaser:
    """Told of every published change: an order that no longer needs the kitchen gives its items
    back to its slot, exactly once (the first process to clear its `slot_held` gives them), and a
    slot that had no room left gets the store's catalog event, so menu pages see it reopen."""

    def __init__(self, reopened: Callable[[str], Awaitable[None]]) -> None:
        self._reopened = reopened  # publishes the store's catalog event
        self._tasks: set[asyncio.Task[None]] = set()

    def order_changed(self, order: Order) -> None:
        if not order.slot_held or order.slot_start is None or order.order_status not in _RELEASING:
            return
        task = asyncio.create_task(self._release(order, order.slot_start), name=f"slot-release-{order.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def releases_done(self) -> None:
        """Wait for the releases started so far (at shutdown, and for tests proving one ran once)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _release(self, order: Order, slot_start: datetime) -> None:
        try:
            if not await order_store.release_slot(order):
                return
            before = await Counter.get_pymongo_collection().find_one_and_update(
                {"_id": slot_key(str(order.store_id), as_utc(slot_start))},
                {"$inc": {"seq": -(order.slot_weight or 0)}}, return_document=ReturnDocument.BEFORE)
            store = await Store.get(order.store_id)
            cap = store.items_per_slot if store is not None else None
            if before is not None and cap is not None and int(before.get("seq", 0)) + 1 > cap:
                await self._reopened(str(order.store_id))
        except Exception:  # the database is away: the slot stays counted until its quarter hour ends
            log.warning("the slot of order %s was not given back", order.id)

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
