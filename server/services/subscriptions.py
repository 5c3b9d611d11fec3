"""What a real-time subscriber may watch, and the state it starts from.

The hub asks here before it watches anything and whenever it needs a snapshot: which orders and
stores a caller may watch (the access policy), the orders themselves, a store's live board, and
which callers' accounts are still active.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId

from server.domain import messages
from server.domain.access import Principal, may_run_store, may_see_every_order, may_see_order
from server.domain.clock import SYSTEM_CLOCK, Clock, as_utc
from server.domain.errors import Forbidden, NotFound
from server.domain.lifecycle import ACTIVE, TERMINAL, OrderStatus
from server.models import Order, Store, User
from server.services import order_store
from server.services import catalog
from server.services.ready_times import WAITING, ReadyTimes

RECENT_FINISHED = timedelta(hours=1)
FINISHED_SCAN = 500


@dataclass(frozen=True, slots=True)
class _OrderKey:
    """What a ready-time estimate is looked up by: an order's id, store and status."""

    id: str
    store_id: str
    order_status: OrderStatus


class SubscriptionService:
    def __init__(self, clock: Clock = SYSTEM_CLOCK, ready_times: ReadyTimes | None = None) -> None:
        self._clock = clock
        self._ready_times = ready_times

    async def estimates(self, orders: list[tuple[str, str, str]]) -> dict[str, datetime]:
        """Ready-time estimates of these orders, given as (id, store id, status) as the hub holds
        them (the active ones not yet ready have one), for snapshots."""
        if self._ready_times is None:
            return {}
        found: dict[str, datetime] = {}
        for order_id, store_id, status in orders:
            if status not in WAITING:
                continue
            # `for_order` reads only these three (the estimates are cached per store); a model built
            # without validation still costs ~45 us, a snapshot of 100 orders 4.5 ms.
            estimate = await self._ready_times.for_order(_OrderKey(order_id, store_id, OrderStatus(status)))
            if estimate is not None:
                found[order_id] = estimate
        return found

    @property
    def clock(self) -> Clock:
        """The runtime's clock, which also times the sockets these subscriptions feed."""
        return self._clock

    @staticmethod
    def check_orders(principal: Principal, order_ids: list[str], owners: dict[str, tuple[str, str]]) -> None:
        """Refuse the whole request if any order is not the caller's, without saying whether it
        exists (only to an admin, who may see every order, is a missing one "not found").
        `owners` is (user id, store id) of each order found, read once by the caller."""
        for order_id in order_ids:
            owner = owners.get(order_id)
            if owner is None or not may_see_order(principal, *owner):
                if owner is None and may_see_every_order(principal):
                    raise NotFound(messages.ORDER_NOT_FOUND)
                raise Forbidden(messages.WATCH_ORDER_FORBIDDEN)

    async def check_store(self, principal: Principal, store_id: str) -> None:
        if not may_run_store(principal, store_id):
            raise Forbidden(messages.WATCH_STORE_FORBIDDEN)
        if not ObjectId.is_valid(store_id) or await Store.get(store_id) is None:
            raise NotFound(messages.STORE_NOT_FOUND)

    async def orders(self, order_ids: list[str] | set[str]) -> list[Order]:
        """These orders as they are now (ids that are not order ids match nothing), in one query."""
        return await order_store.by_ids(order_ids)

    async def store_board(self, store_id: str) -> list[Order]:
        """A store's active orders and those finished in the last hour, oldest first.

        "Finished in the last hour" is decided here rather than by a date range in the query: the
        embedded nx-27017 stores dates written by `$set` as strings, which a `$gte` on a date then
        misses, and a resync snapshot without a just-cancelled order never converges. The newest
        FINISHED_SCAN finished orders bound the read.
        """
        since = self._clock.now() - RECENT_FINISHED
        active = await order_store.in_statuses({"store_id": store_id}, ACTIVE)
        recent = await order_store.finished_since({"store_id": store_id}, TERMINAL, since, FINISHED_SCAN, "_id")
        return sorted(active + recent, key=lambda order: as_utc(order.created_at))

    async def customer_orders(self, user_id: str) -> list[Order]:
        """A customer's active orders and those finished in the last hour, oldest first ("My
        orders"); like `store_board`, "the last hour" is decided here, and the read is bounded."""
        since = self._clock.now() - RECENT_FINISHED
        active = await order_store.in_statuses({"user_id": user_id}, ACTIVE)
        recent = await order_store.finished_since({"user_id": user_id}, TERMINAL, since, FINISHED_SCAN,
                                                  "created_at")
        return sorted(active + recent, key=lambda order: as_utc(order.created_at))

    async def menu(self, store_id: str) -> dict[str, Any] | None:
        """A store's whole menu with its catalog revision, for a page that follows it."""
        return await catalog.menu_snapshot(store_id)

    async def active_accounts(self, user_ids: set[str]) -> set[str]:
        """Those of these accounts that still exist and are not disabled, in one read."""
        ids = [ObjectId(user_id) for user_id in user_ids if ObjectId.is_valid(user_id)]
        documents = await User.get_pymongo_collection().find({"_id": {"$in": ids}}, {"is_active": 1}).to_list()
        return {str(d["_id"]) for d in documents if d.get("is_active", True)}
